"""Request and response plumbing shared by every control-plane route.

Each control-plane RPC is one `Operation`: its gRPC method name, HTTP method and path,
and the policy action it needs. `routes()` groups operations by path into Starlette
routes whose endpoint is the one door every call passes: authenticate the bearer token,
authorize the action, then hand the handler a `Call`. Handlers never check permissions.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from coffer import metrics
from coffer.authbudget import Throttled
from coffer.authz import Origin
from coffer.console.cookies import cookie_session_token
from coffer.errors import CofferError, InvalidArgument, Kind, PermissionDenied, Unauthenticated
from coffer.identity.models import ApiToken, Caller, User
from coffer.limits import MAX_JSON_BODY
from coffer.logs import audit
from coffer.node import Node
from coffer.web import protocol

T = TypeVar("T")


def rfc3339(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def status_json(
    kind: Kind, message: str, details: list[dict[str, Any]] | None = None, *, http_status: int | None = None
) -> JSONResponse:
    """google.rpc.Status as gRPC-gateway renders it: {code, message, details}."""
    return JSONResponse(
        {"code": kind.grpc_code, "message": message, "details": details or []},
        status_code=http_status or kind.http_status,
    )


def error_response(exc: CofferError) -> JSONResponse:
    resp = status_json(exc.kind, exc.message, exc.details)
    if exc.kind is Kind.UNAUTHENTICATED:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="coffer"'
    if isinstance(exc, Throttled):
        resp.headers["Retry-After"] = str(exc.retry_after)
    return resp


_CONNECTION_ERRORS = {
    protocol.HEAD_TOO_LARGE: (431, Kind.INVALID_ARGUMENT),
    protocol.HEAD_TIMEOUT: (408, Kind.INVALID_ARGUMENT),
    protocol.CAP_REFUSED: (503, Kind.UNAVAILABLE),
}


def connection_refusal(reason: str, detail: str) -> protocol.Response | None:
    """What the API port answers when the connection layer refuses a request (no app ran)."""
    known = _CONNECTION_ERRORS.get(reason)
    if known is None:
        return None
    status, kind = known
    body = json.dumps({"code": kind.grpc_code, "message": detail, "details": []}).encode()
    headers = [(b"content-type", b"application/json")]
    if reason == protocol.CAP_REFUSED:
        headers.append((b"retry-after", b"1"))
    return status, headers, body


def method_not_allowed(method: str, path: str, allow: Iterable[str]) -> JSONResponse:
    """HTTP 405 carrying gRPC UNIMPLEMENTED (12), the code gRPC-gateway gives a method it has no binding for.

    gRPC-gateway itself answers 501 here; Coffer keeps the code but uses the status HTTP
    defines for the case, with the Allow header (see docs/api.md).
    """
    allowed = sorted(set(allow))
    resp = status_json(
        Kind.UNIMPLEMENTED,
        f"method {method} is not allowed on {path}; allowed: {', '.join(allowed)}",
        http_status=405,
    )
    resp.headers["Allow"] = ", ".join(allowed)
    return resp


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


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated("an API access token is required: send 'Authorization: Bearer <token>'")
    return value.strip()


def request_token(request: Request) -> str:
    """The API token of a request: the bearer token, or else the console's session cookie.

    The cookie counts only without an Authorization header, and on a state-changing
    method only with a matching X-CSRF-Token (see coffer.console.cookies).
    """
    if "authorization" not in request.headers:
        token = cookie_session_token(request.method, request.cookies, request.headers)
        if token is not None:
            return token
    return bearer_token(request)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def origin_of(request: Request) -> Origin:
    """aws:SourceIp and aws:SecureTransport of a control-plane request."""
    return Origin(source_ip=_client(request), secure=request.url.scheme == "https")


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
        api_token, user = await verify_token(node, _client(request), token)
    except (Unauthenticated, PermissionDenied) as exc:
        audit(
            "denied",
            plane="control",
            action=action,
            method=request.method,
            path=request.url.path,
            client=_client(request),
            reason=exc.message,
            status=exc.kind.http_status,
        )
        csrf = isinstance(exc, PermissionDenied)
        metrics.auth_failed(metrics.face_of(request.url.path), metrics.control_auth_reason(exc.message, csrf))
        raise
    caller = Caller(user=user, token_id=api_token.id)
    request.state.principal = caller.principal_name
    return caller


@dataclass(frozen=True)
class Call:
    """What a handler gets: the request, this node, and the authenticated caller."""

    request: Request
    node: Node
    caller_or_none: Caller | None

    @property
    def caller(self) -> Caller:
        if self.caller_or_none is None:  # pragma: no cover - only anonymous operations lack one
            raise Unauthenticated("this operation needs an authenticated caller")
        return self.caller_or_none


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class Operation:
    """One control-plane RPC: `<service>_<name>` in the OpenAPI, `action` in policies.

    `action` is None for AuthCanI, where callers ask about themselves, and for the anonymous
    federation exchanges, where the credential in the request is the authority."""

    name: str
    method: str
    path: str
    action: str | None
    handler: Handler
    anonymous: bool = False
    service: str = "CWObject"


class _Dispatch:
    """The ASGI endpoint of one path: picks the operation by method, authenticates, authorizes.

    A plain ASGI app rather than a function so Starlette routes every method here and the
    405 answer (and its Allow header) comes from the operation table.
    """

    def __init__(self, path: str, by_method: dict[str, Operation]) -> None:
        self.path = path
        self.by_method = by_method

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.dispatch(request)
        await response(scope, receive, send)

    async def dispatch(self, request: Request) -> Response:
        op = self.by_method.get(request.method)
        if op is None:
            return method_not_allowed(request.method, self.path, self.by_method)
        request.state.operation = op.name
        caller = None
        if not op.anonymous:
            caller = await authenticate(request, op.action or op.name)
            if op.action is not None:
                node = node_of(request)
                await cached_call(node, node.authz.authorize_control, caller, op.action, origin_of(request))
        return await op.handler(Call(request, node_of(request), caller))


def routes(operations: Iterable[Operation]) -> list[Route]:
    """One Starlette route per path; the method is dispatched here so a 405 can list every allowed one."""
    by_path: dict[str, dict[str, Operation]] = {}
    for op in operations:
        methods = by_path.setdefault(op.path, {})
        if op.method in methods:
            raise ValueError(f"two operations for {op.method} {op.path}")
        methods[op.method] = op
    return [
        Route(path, _Dispatch(path, ops), name="+".join(o.name for o in ops.values()))
        for path, ops in by_path.items()
    ]


def require_string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None or value == "":
        raise InvalidArgument.field(name, "is required")
    if not isinstance(value, str):
        raise InvalidArgument.field(name, "must be a string")
    return value
