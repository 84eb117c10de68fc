"""The app's last line of defence, driven in-process: an unexpected exception anywhere in a
request becomes InternalError (500) with request ids, is logged, and leaks no traceback."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from coffer.authbudget import AuthBudget
from coffer.config import Settings
from coffer.s3.app import S3App


class ExplodingStorage:
    def get_bucket(self, name: str) -> Any:
        raise RuntimeError("disk on fire: /secret/path")


def _app() -> S3App:
    node = SimpleNamespace(
        settings=Settings(),
        keys=SimpleNamespace(
            credentials=lambda akid: None, last_used=SimpleNamespace(record=lambda *a, **k: None)
        ),
        storage=ExplodingStorage(),
        auth_budget=AuthBudget(0, 60.0),
        audit_logs=None,
    )
    return S3App(node)  # type: ignore[arg-type]


def _call(app: S3App, method: str, path: str) -> list[dict[str, Any]]:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:1")],
        "client": ("127.0.0.1", 1),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_unexpected_exception_is_internal_error(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="coffer.s3"):
        sent = _call(_app(), "GET", "/bucket/key")
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    assert start["status"] == 500
    headers = dict(start["headers"])
    assert len(headers[b"x-amz-request-id"]) == 16 and headers[b"x-amz-id-2"]
    assert b"<Code>InternalError</Code>" in body
    assert b"Traceback" not in body and b"/secret/path" not in body
    assert any(r.exc_info for r in caplog.records), "the exception is logged with its traceback"


def test_head_internal_error_has_no_body() -> None:
    sent = _call(_app(), "HEAD", "/bucket/key")
    assert sent[0]["status"] == 500
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b""


def test_health_needs_no_store() -> None:
    sent = _call(_app(), "GET", "/_coffer/healthz")
    assert sent[0]["status"] == 200 and sent[1]["body"] == b'{"status":"ok"}'
