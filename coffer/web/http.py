"""HTTP plumbing both faces of the API port share (control plane and console), and the meters
every face wraps its requests in.

- ASGI meters: `RequestMeter` counts the request body bytes a handler reads, `ResponseMeter`
  the status and body bytes it sends (and whether the response started); the request
  middlewares of the API port (`RequestMetrics`, `AccessLog`) and the S3 app use them.
- Request helpers: the node of a request, its client and origin, a bounded JSON body, the
  thread-pool hop for blocking core calls (`call`, `cached_call`).
- Authentication of the API port: a bearer token, or else the console's session cookie with
  its CSRF token for state-changing methods, behind the failed-authentication budget.

It imports no face: `coffer.api` and `coffer.console` both import it, and neither imports the
other (`coffer.server` puts them together).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coffer import logs, metrics
from coffer.authz import Origin
from coffer.errors import InvalidArgument, PermissionDenied, Unauthenticated
from coffer.identity.models import ApiToken, Caller, User
from coffer.limits import MAX_JSON_BODY

if TYPE_CHECKING:
    from coffer.node import Node

T = TypeVar("T")


# --- meters -------------------------------------------------------------------------------------
class RequestMeter:
    """A `receive` that counts the request body bytes it passes on."""

    __slots__ = ("receive", "received")

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.received = 0

    async def __call__(self) -> Message:
        message = await self.receive()
        body = message.get("body")
        if body:
            self.received += len(body)
        return message


class ResponseMeter:
    """A `send` that records the response status and counts the body bytes it passes on.

    `started` tells whether the response head is out: after that, an error can only cut the
    connection, not be answered."""

    __slots__ = ("send", "sent", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 0
        self.sent = 0

    @property
    def started(self) -> bool:
        return self.status != 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        elif message["type"] == "http.response.body":
            self.sent += len(message.get("body", b""))
        await self.send(message)


class _Observer:
    """ASGI middleware that runs each HTTP request through the meters and reports it with
    `ended` once it is over, answered or not (no status recorded counts as 500)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        received, response = RequestMeter(receive), ResponseMeter(send)
        try:
            await self.app(scope, received, response)
        finally:
            self.ended(scope, started, received, response)

    def ended(self, scope: Scope, started: float, received: RequestMeter, response: ResponseMeter) -> None:
        raise NotImplementedError


class RequestMetrics(_Observer):
    """ASGI middleware of the control-plane port: counts and times every request.

    The operation is the control-plane RPC the dispatcher recorded in the request state,
    else the name of the route that matched (console pages, /healthz), else `unrouted`."""

    def ended(self, scope: Scope, started: float, received: RequestMeter, response: ResponseMeter) -> None:
        face = metrics.face_of(scope["path"])
        status = response.status or 500
        metrics.observe(face, _operation(scope), status, started, received.received, response.sent)


def _operation(scope: Scope) -> str:
    state = scope.get("state")
    if state:
        name = state.get("operation")
        if name:
            return str(name)
    route = scope.get("route")
    return str(getattr(route, "name", None) or metrics.UNROUTED)


class AccessLog(_Observer):
    """ASGI middleware: one `coffer.access` line per HTTP request, without query or headers.

    A face adds what only it knows under `scope["state"]["access"]` (the S3 face: operation,
    bucket, key, error code, access key id), so each request has exactly one line."""

    def __init__(self, app: ASGIApp, plane: str) -> None:
        super().__init__(app)
        self.plane = plane

    def ended(self, scope: Scope, started: float, received: RequestMeter, response: ResponseMeter) -> None:
        state: MutableMapping[str, Any] = scope.get("state") or {}
        client = scope.get("client")
        logs.access_log.info(
            "request",
            extra={
                "plane": self.plane,
                "method": scope.get("method", ""),
                "path": scope.get("path", ""),
                "status": response.status or 500,
                "bytes": response.sent,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "client": client[0] if client else None,
                "principal": state.get("principal"),
                **state.get("access", {}),
            },
        )


# --- requests -----------------------------------------------------------------------------------
def node_of(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking core call off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)


async def cached_call(node: Node, fn: Callable[..., T], *args: Any) -> T:
    """A core call answered from memory almost every time (token lookup, policy decision),
    run on the event loop when a miss is only a local read (SQLite), as the S3 face does
    for its key lookups and decisions: a trip to a worker thread and back costs more CPU
    than the call under concurrent requests. Elsewhere (PostgreSQL) it hops."""
    if node.db.inline_reads:
        return fn(*args)
    return await run_in_threadpool(fn, *args)


def client_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def origin_of(request: Request) -> Origin:
    """aws:SourceIp and aws:SecureTransport of a request on the API port."""
    return Origin(source_ip=client_of(request), secure=request.url.scheme == "https")


def _too_large() -> InvalidArgument:
    return InvalidArgument(f"request body is larger than {MAX_JSON_BODY} bytes")


async def json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object; absent means {}. Any Content-Type is read as JSON, as gRPC-gateway does."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_JSON_BODY:
        raise _too_large()
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BODY:
            raise _too_large()
    if not raw.strip():
        return {}
    try:
        data = json.loads(bytes(raw))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, json.JSONDecodeError) else "it could not be decoded"
        raise InvalidArgument(f"request body is not valid JSON: {reason}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"request body must be a JSON object, not {type(data).__name__}")
    return data


def required_field(body: Mapping[str, Any], name: str, kind: type[T], problem: str) -> T:
    """A body field that must be there, of `kind`, and not empty; else 400 naming it."""
    value = body.get(name)
    if not isinstance(value, kind) or not value:
        raise InvalidArgument.field(name, problem)
    return value


# --- the console's session cookie and its CSRF token ----------------------------------------------
# A console session is an ordinary API access token (see `coffer.console.session`), carried
# in an HttpOnly, SameSite=Strict cookie instead of an `Authorization` header. Because a
# browser attaches cookies on its own, every state-changing request that authenticates by
# the cookie must also carry `X-CSRF-Token`: a value derived from the session token that
# only a page of this origin can have read (from `GET /console/api/session`). It is
# compared in constant time. Requests with an `Authorization` header never look at the
# cookie at all, so API clients are unaffected.

# Over TLS the cookie takes the __Host- prefix: the browser then insists on Secure,
# Path=/ and no Domain, so no sibling host can plant or shadow it.
COOKIE = "coffer-session"
SECURE_COOKIE = "__Host-coffer-session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CSRF_CONTEXT = b"coffer-console-csrf-v1"


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: HMAC-SHA256 of a fixed context under the session token.

    Stateless, so every worker and node agrees without sharing anything; knowing it
    grants nothing that the (HttpOnly) session token does not already grant.
    """
    return hmac.new(session_token.encode("utf-8"), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, presented: str | None) -> bool:
    if not presented:
        return False
    expected = csrf_token(session_token).encode("ascii")
    return hmac.compare_digest(expected, presented.encode("utf-8", "surrogateescape"))


def cookie_name(secure: bool) -> str:
    return SECURE_COOKIE if secure else COOKIE


def session_cookie(cookies: Mapping[str, str]) -> str | None:
    """The session token a request's cookies carry, if any."""
    return cookies.get(SECURE_COOKIE) or cookies.get(COOKIE) or None


def cookie_session_token(method: str, cookies: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
    """The session token from the cookie, with the CSRF check for state-changing methods.

    None when there is no session cookie. PermissionDenied (403) when the method changes
    state and `X-CSRF-Token` is missing or wrong.
    """
    token = session_cookie(cookies)
    if token is None:
        return None
    if method.upper() not in SAFE_METHODS and not csrf_matches(token, headers.get(CSRF_HEADER)):
        raise PermissionDenied(
            "this request authenticates with the console session cookie but lacks a valid "
            "X-CSRF-Token header; reload the console and try again"
        )
    return token


# --- authentication -------------------------------------------------------------------------------
def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated("an API access token is required: send 'Authorization: Bearer <token>'")
    return value.strip()


def request_token(request: Request) -> str:
    """The API token of a request: the bearer token, or else the console's session cookie.

    The cookie counts only without an Authorization header, and on a state-changing
    method only with a matching X-CSRF-Token.
    """
    if "authorization" not in request.headers:
        token = cookie_session_token(request.method, request.cookies, request.headers)
        if token is not None:
            return token
    return bearer_token(request)


async def verify_token(
    node: Node, client: str | None, token: str, *, face: str = "api"
) -> tuple[ApiToken, User]:
    """`authenticate_token` behind the failed-authentication budget (coffer.authbudget): a
    source over it is refused (429) before the token is hashed, and a refused token counts."""
    budget = node.auth_budget
    budget.admit(client, face=face)
    try:
        return await cached_call(node, node.directory.authenticate_token, token)
    except Unauthenticated:
        budget.failed(client, face=face)
        raise


async def authenticate(request: Request, action: str) -> Caller:
    """The caller behind the bearer token (or console session cookie); a failure is audited
    (without the token) and is a 401, or a 403 for a cookie request without its CSRF token."""
    node = node_of(request)
    try:
        token = request_token(request)
        api_token, user = await verify_token(node, client_of(request), token)
    except (Unauthenticated, PermissionDenied) as exc:
        node.audit(
            "denied",
            plane="control",
            action=action,
            method=request.method,
            path=request.url.path,
            client=client_of(request),
            reason=exc.message,
            status=exc.kind.http_status,
        )
        csrf = isinstance(exc, PermissionDenied)
        metrics.auth_failed(metrics.face_of(request.url.path), metrics.control_auth_reason(exc.message, csrf))
        raise
    caller = Caller(user=user, token_id=api_token.id)
    request.state.principal = caller.principal_name
    return caller
