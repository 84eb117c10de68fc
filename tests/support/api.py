"""Control-plane helpers: status-JSON assertions, key info, users and tokens, polling.
(The audit trail is `CofferServer.audit()`.)"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.support.harness import CofferServer

# gRPC code -> HTTP status, as the reference's §2.5 table maps them (405 is Coffer's choice).
GRPC_HTTP = {3: 400, 5: 404, 7: 403, 12: 405, 16: 401, 13: 500}
KEY_ID = r"^CW[A-Z]{14}$"
SECRET = r"^cwo[a-z0-9]{40}$"
# An access key's info as CoreWeave returns it (no extension asked for), in CoreWeave's order.
KEY_INFO_FIELDS = (
    "accessKeyId",
    "status",
    "principalName",
    "attributes",
    "expiry",
    "orgId",
    "multiAttributes",
)


def assert_status(resp: httpx.Response, http: int, code: int) -> dict[str, Any]:
    """The response is google.rpc.Status JSON with this gRPC code and HTTP status; returns it."""
    assert resp.status_code == http, f"{resp.status_code} {resp.text}"
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body = resp.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    assert isinstance(body["details"], list), body
    assert "Traceback" not in resp.text
    return dict(body)


def assert_unknown(c: httpx.Client, url: str) -> None:
    """GET, PATCH and DELETE of `url` (a resource that does not exist) are each 404 NOT_FOUND."""
    for r in (c.get(url), c.patch(url, json={"description": "x"}), c.delete(url)):
        assert r.status_code == 404, r.text
        assert r.json()["code"] == 5


def field_violation(body: dict[str, Any]) -> dict[str, str]:
    """The single google.rpc.BadRequest field violation of an INVALID_ARGUMENT answer."""
    (detail,) = body["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest", detail
    (violation,) = detail["fieldViolations"]
    return dict(violation)


def key_info(server: CofferServer, access_key_id: str, token: str | None = None) -> dict[str, Any]:
    """GetAccessKeyInfo's `info` for a key (as the admin, or `token`'s user)."""
    with server.api(token) as c:
        r = c.get(f"/v1/cwobject/access-key/{access_key_id}")
    assert r.status_code == 200, r.text
    info: dict[str, Any] = r.json()["info"]
    return info


def user_token(
    server: CofferServer, name: str, *, admin: bool = False, groups: tuple[str, ...] = ()
) -> tuple[str, str]:
    """(principal, token) of a new user; names must be unique per module."""
    return server.create_user(name, admin=admin, groups=groups)


def token_id_of(server: CofferServer, user: str) -> str:
    """The id of the user's only API token, from `coffer admin token list --json`."""
    rows = json.loads(server.cli("admin", "token", "list", "--user", user, "--json").stdout)
    (row,) = rows
    return str(row["id"])


def wait_for(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.1) -> bool:
    """Poll until `predicate()` holds; a correctness bound, not a speed measurement."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
