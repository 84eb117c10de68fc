"""The control-plane ASGI application."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from coffer.api import accesskeys
from coffer.api.http import error_response, status_json
from coffer.api.openapi import build_spec
from coffer.errors import CofferError, Kind
from coffer.node import Node

log = logging.getLogger("coffer.api")


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(build_spec(request.app.router.routes))


async def on_coffer_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CofferError)
    return error_response(exc)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        resp = status_json(
            Kind.UNIMPLEMENTED, f"method {request.method} is not allowed on {request.url.path}"
        )
        resp.status_code = 405
        return resp
    if exc.status_code == 404:
        return status_json(Kind.NOT_FOUND, f"no route for {request.method} {request.url.path}")
    return JSONResponse({"code": 2, "message": str(exc.detail), "details": []}, status_code=exc.status_code)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return status_json(Kind.INTERNAL, "internal error")


class CatchAll:
    """Last line of defence: no traceback ever reaches a client."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: dict) -> None:  # type: ignore[type-arg]
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error")
            if not started and scope["type"] == "http":
                await status_json(Kind.INTERNAL, "internal error")(scope, receive, send)


def build_app(node: Node) -> Starlette:
    routes = [
        Route("/healthz", healthz, methods=["GET"], include_in_schema=False),
        Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
        *accesskeys.routes,
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            CofferError: on_coffer_error,
            HTTPException: on_http_error,
            Exception: on_unexpected,
        },
        middleware=[Middleware(CatchAll)],
    )
    app.state.node = node
    return app
