"""Placeholder S3 application until the S3 endpoint lands: health and NotImplemented."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from coffer.node import Node


def build_app(node: Node) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/healthz":
            body = b'{"status":"ok"}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
        else:
            body = (
                b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NotImplemented</Code>'
                b"<Message>The S3 endpoint is not built yet.</Message></Error>"
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 501,
                    "headers": [(b"content-type", b"application/xml")],
                }
            )
        await send({"type": "http.response.body", "body": body})

    return app
