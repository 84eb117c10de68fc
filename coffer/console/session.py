"""Console sign-in, session and sign-out.

Signing in takes an API access token, verifies it, and mints a NEW API token for the
same user: the session. Like every token it is stored hashed; it lives
`console_session_seconds` (8 h by default) or until the sign-in token would have
expired, whichever is sooner; signing out revokes it, together with the temporary S3
keys the console minted for it. The browser holds the session only in an HttpOnly,
SameSite=Strict cookie (Secure and `__Host-` prefixed over TLS); the page never sees it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse

from coffer import metrics
from coffer.console.s3client import console_s3
from coffer.errors import InvalidArgument, PermissionDenied, Unauthenticated
from coffer.identity.models import Caller, User, rfc3339, utcnow
from coffer.policy.actions import names as action_names
from coffer.web.http import (
    COOKIE,
    SECURE_COOKIE,
    authenticate,
    call,
    client_of,
    cookie_name,
    csrf_token,
    json_body,
    node_of,
    session_cookie,
    verify_token,
)

SESSION_TOKEN_NAME = "console session"  # noqa: S105 - a label for the token list


def is_tls(request: Request) -> bool:
    """Did the browser come over TLS: directly, or through a proxy that says so?

    Trusting `X-Forwarded-Proto: https` here can only make the cookie stricter (Secure),
    never weaker, so it needs no list of trusted proxies.
    """
    forwarded = request.headers.get("x-forwarded-proto", "").split(",", 1)[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def check_same_origin(request: Request) -> None:
    """Refuse a sign-in posted from another site (login CSRF).

    A cross-site page cannot send `Content-Type: application/json` without a CORS
    preflight, which this server never grants; browsers also label the request with
    Origin and Sec-Fetch-Site, which must name this origin when present.
    """
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/json":
        raise InvalidArgument("sign-in takes a JSON body: Content-Type must be application/json")
    origin = request.headers.get("origin")
    # The host must match; the scheme may differ behind a TLS-terminating proxy.
    if origin is not None and urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower():
        raise PermissionDenied("sign-in must come from the console's own page")
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise PermissionDenied("sign-in must come from the console's own page")


def s3_endpoint_hint(request: Request) -> str:
    """The S3 URL to put in the aws-cli profile the page shows: this host, the S3 port."""
    node = node_of(request)
    host = request.url.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if node.settings.tls or is_tls(request) else "http"
    return f"{scheme}://{host}:{node.settings.s3_port}"


def _info(request: Request, user: User, session_token: str | None, expires_at: str | None) -> dict[str, Any]:
    node = node_of(request)
    return {
        "user": user.as_json(),
        "csrfToken": csrf_token(session_token) if session_token else None,
        "expiresAt": expires_at,
        "zones": list(node.storage.buckets.zones),
        "defaultZone": node.storage.buckets.default_zone,
        "s3Endpoint": s3_endpoint_hint(request),
        "maxKeyDuration": node.settings.max_key_duration,
        # Suggestions for the policy builder, from the core's one table of actions.
        "actions": ["*", "s3:*", "cwobject:*", *action_names()],
    }


async def sign_in(request: Request) -> JSONResponse:
    check_same_origin(request)
    node = node_of(request)
    body = await json_body(request)
    token = body.get("token")
    if not isinstance(token, str) or not token.strip():
        raise InvalidArgument.field("token", "is required: paste an API access token")
    client = client_of(request)
    try:
        api_token, user = await verify_token(node, client, token.strip(), face="console")
    except Unauthenticated as exc:
        node.audit(
            "denied", plane="console", action="console:SignIn", client=client, reason=exc.message, status=401
        )
        metrics.auth_failed(metrics.CONSOLE, metrics.control_auth_reason(exc.message, csrf=False))
        raise Unauthenticated(
            "that API access token was not accepted: it is unknown, expired or revoked"
        ) from None
    seconds = node.settings.console_session_seconds
    if api_token.expires_at is not None:
        seconds = min(seconds, int((api_token.expires_at - utcnow()).total_seconds()))
    if seconds < 1:
        raise Unauthenticated("that API access token is about to expire; use another one")
    plain, session = await call(
        node.directory.start_session,
        user,
        api_token,
        name=SESSION_TOKEN_NAME,
        ttl=timedelta(seconds=seconds),
        client=client,
    )
    expires = rfc3339(session.expires_at) if session.expires_at else None
    response = JSONResponse(_info(request, user, plain, expires))
    secure = is_tls(request)
    response.set_cookie(
        cookie_name(secure),
        plain,
        max_age=seconds,
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def session_info(request: Request) -> JSONResponse:
    caller = await authenticate(request, "console:Session")
    node = node_of(request)
    expires = None
    if caller.token_id:
        token = await call(node.directory.get_token, caller.token_id)
        expires = rfc3339(token.expires_at) if token.expires_at else None
    response = JSONResponse(_info(request, caller.user, session_cookie(request.cookies), expires))
    response.headers["Cache-Control"] = "no-store"
    return response


async def sign_out(request: Request) -> JSONResponse:
    if "authorization" in request.headers or session_cookie(request.cookies) is None:
        # Never revoke a bearer token by accident: only a console session signs out.
        raise InvalidArgument("sign-out ends a console session, and this request carries none")
    caller: Caller = await authenticate(request, "console:SignOut")
    keys = console_s3(request).keys
    await call(
        node_of(request).directory.end_session,
        caller,
        lambda token_id: keys.revoke_session_keys(caller.org_id, token_id),
    )
    response = JSONResponse({})
    for name in (COOKIE, SECURE_COOKIE):
        if name in request.cookies:
            response.delete_cookie(
                name, path="/", secure=name == SECURE_COOKIE, httponly=True, samesite="strict"
            )
    return response
