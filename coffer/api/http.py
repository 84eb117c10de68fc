"""Request and response plumbing shared by every control-plane route."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from coffer.errors import CofferError, InvalidArgument, Kind, Unauthenticated
from coffer.identity.models import Caller
from coffer.node import Node

T = TypeVar("T")
MAX_JSON_BODY = 1 << 20


def rfc3339(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def status_json(kind: Kind, message: str, details: list[dict[str, Any]] | None = None) -> JSONResponse:
    """google.rpc.Status as gRPC-gateway renders it."""
    return JSONResponse(
        {"code": kind.grpc_code, "message": message, "details": details or []},
        status_code=kind.http_status,
    )


def error_response(exc: CofferError) -> JSONResponse:
    resp = status_json(exc.kind, exc.message, exc.details)
    if exc.kind is Kind.UNAUTHENTICATED:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="coffer"'
    return resp


def node_of(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking core call off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_JSON_BODY:
        raise InvalidArgument("request body is larger than 1 MiB")
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgument("request body must be a JSON object")
    return data


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated("an API access token is required: send 'Authorization: Bearer <token>'")
    return value.strip()


async def authenticate(request: Request) -> Caller:
    token = bearer_token(request)
    node = node_of(request)
    api_token, user = await call(node.directory.authenticate_token, token)
    caller = Caller(user=user, token_id=api_token.id)
    request.state.caller = caller
    return caller


Handler = Callable[[Request], Awaitable[Any]]


def require_string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None or value == "":
        raise InvalidArgument.field(name, "is required")
    if not isinstance(value, str):
        raise InvalidArgument.field(name, "must be a string")
    return value
