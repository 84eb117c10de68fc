"""`--access-log`: one structured line per request on both ports, never a query string or header."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.support.harness import CofferServer


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"  # this module runs on SQLite only


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {"extra_args": ["--access-log"]}


def access_lines(server: CofferServer) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.log().splitlines() if '"logger":"coffer.access"' in line]


def s3_health_logged(server: CofferServer) -> list[dict[str, Any]]:
    """The access lines once the S3 health probe's is among them: a line is written after its
    response is out, so the client may read the response first."""
    for _ in range(100):
        lines = access_lines(server)
        if any(e["plane"] == "s3" and e["path"] == "/_coffer/healthz" for e in lines):
            break
        time.sleep(0.05)
    return lines


def test_one_line_per_request_without_query_or_headers(server: CofferServer) -> None:
    secret_query = "X-Amz-Signature=deadbeefdeadbeef"
    with server.api() as c:
        c.get(f"/v1/cwobject/access-key?limit=5&{secret_query}")
        c.post("/v1/cwobject/access-key", json={"durationSeconds": -1})
    httpx.get(server.api_url + "/v1/cwobject/access-key", headers={"Authorization": "Bearer cwt_wrong"})
    httpx.get(f"{server.s3_url}/_coffer/healthz?{secret_query}")
    lines = s3_health_logged(server)
    api = [e for e in lines if e["plane"] == "api" and e["path"] == "/v1/cwobject/access-key"]
    assert [(e["method"], e["status"]) for e in api[-3:]] == [("GET", 200), ("POST", 400), ("GET", 401)]
    users = json.loads(server.cli("admin", "user", "list", "--json").stdout)
    admin = next(u for u in users if u["name"] == "admin")
    assert api[-3]["principal"] == admin["principalName"] and api[-1]["principal"] is None
    assert all(e["client"] == "127.0.0.1" and e["duration_ms"] >= 0 and e["bytes"] > 0 for e in api[-3:])
    assert any(e["plane"] == "s3" and e["path"] == "/_coffer/healthz" and e["status"] == 200 for e in lines)
    log = server.log()
    assert "deadbeef" not in log and server.admin_token not in log and "cwt_wrong" not in log
