"""The control-plane ASGI application.

Every answer is JSON; every failure is google.rpc.Status JSON ({code, message, details})
with the HTTP status gRPC-gateway gives its code, including unknown routes (404, NOT_FOUND),
wrong methods (405, UNIMPLEMENTED) and, should a bug slip through, 500 INTERNAL without
a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from coffer import metrics
from coffer.api import accesskeys, federation, lockout, management, policies, rotation
from coffer.api.http import Operation, error_response, routes, status_json
from coffer.api.openapi import build_spec
from coffer.errors import CofferError, Kind
from coffer.node import Node
from coffer.web.http import RequestMetrics, ResponseMeter, node_of

log = logging.getLogger("coffer.api")

OPERATIONS: list[Operation] = [
    *accesskeys.operations,
    *rotation.operations,
    *policies.operations,
    *management.operations,
    *lockout.operations,
    *federation.operations,
]


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def metrics_page(request: Request) -> Response:
    """Prometheus text, unauthenticated like /healthz: it names no bucket, key or caller."""
    body = await run_in_threadpool(metrics.render, node_of(request).blobs.root)
    return Response(body, media_type=metrics.CONTENT_TYPE)


async def openapi(request: Request) -> JSONResponse:
    server_url = str(request.base_url).rstrip("/") or "/"
    spec = build_spec(OPERATIONS, server_url, node_of(request).settings.max_key_duration)
    return JSONResponse(spec)


async def on_coffer_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CofferError)
    return error_response(exc)


async def on_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no route, bad method on a plain route) in status-JSON form."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        resp = status_json(
            Kind.UNIMPLEMENTED,
            f"method {request.method} is not allowed on {request.url.path}; allowed: {allow}",
            http_status=405,
        )
        if allow:
            resp.headers["Allow"] = allow
        return resp
    if exc.status_code == 404:
        return status_json(Kind.NOT_FOUND, f"no route for {request.method} {request.url.path}")
    if exc.status_code == 400:
        return status_json(Kind.INVALID_ARGUMENT, str(exc.detail))
    return status_json(Kind.INTERNAL, str(exc.detail), http_status=exc.status_code)


class CatchAll:
    """Last line of defence: an unexpected exception is logged and answered 500 INTERNAL, no traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = ResponseMeter(send)
        try:
            await self.app(scope, receive, response)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method", ""), scope.get("path", ""))
            if not response.started and scope["type"] == "http":
                await status_json(Kind.INTERNAL, "internal error")(scope, receive, send)


def build_app(node: Node, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """The control plane, with `extra_routes` beside its own (the console's, from coffer.server)."""
    settings = node.settings
    # With a metrics port of its own, /metrics is served there and not here.
    own_metrics = settings.metrics and not settings.metrics_port
    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"], include_in_schema=False),
            *([Route("/metrics", metrics_page, methods=["GET"], name="metrics")] if own_metrics else []),
            Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
            *routes(OPERATIONS),
            *extra_routes,
        ],
        exception_handlers={CofferError: on_coffer_error, HTTPException: on_http_error},
        middleware=[Middleware(RequestMetrics), Middleware(CatchAll)],
    )
    # gRPC-gateway has no trailing-slash redirects; a stray slash is an unknown route (404 JSON).
    app.router.redirect_slashes = False
    app.state.node = node
    return app
