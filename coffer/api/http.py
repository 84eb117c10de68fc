"""The control plane's operation table plumbing and its google.rpc.Status answers.

Each control-plane RPC is one `Operation`: its gRPC method name, HTTP method and path,
and the policy action it needs. `routes()` groups operations by path into Starlette
routes whose endpoint is the one door every call passes: authenticate the bearer token,
authorize the action, then hand the handler a `Call`. Handlers never check permissions.
What the console shares with it (JSON bodies, tokens and cookies, the thread pool) is in
`coffer.web.http`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from coffer.audit import Actor
from coffer.authbudget import Throttled
from coffer.errors import CofferError, InvalidArgument, Kind, Unauthenticated
from coffer.identity.models import Caller
from coffer.node import Node
from coffer.policy import RPC_ACTIONS
from coffer.store.errors import StoreUnavailable
from coffer.web import protocol
from coffer.web.http import authenticate, cached_call, client_of, node_of, origin_of


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
    if isinstance(exc, Throttled | StoreUnavailable):
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

    def actor(self, action: str | None = None) -> Actor:
        """The caller as the core's audit trail names it, calling through `action`."""
        return Actor(self.caller.principal_name, action, client_of(self.request))


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


def rpc(name: str, method: str, path: str, handler: Handler, service: str = "CWObject") -> Operation:
    """The operation `name`, needing the policy action coffer.policy.RPC_ACTIONS names for it."""
    return Operation(name, method, path, RPC_ACTIONS[name], handler, service=service)


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
