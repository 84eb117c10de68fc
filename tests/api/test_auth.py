"""Who may call the control plane: 401 for no, unknown, expired or revoked tokens; 403 for non-admins.

Every refusal is a status-JSON answer and an audit line.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import assert_status, token_id_of, user_token, wait_for
from tests.support.harness import CofferServer

# Every operation with a body that would succeed for an admin, so only the caller differs.
OPERATIONS: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("POST", "/v1/cwobject/access-key", {"durationSeconds": 0}, "cwobject:CreateAccessKey"),
    ("GET", "/v1/cwobject/access-key", None, "cwobject:ListAccessKeyInfo"),
    ("GET", "/v1/cwobject/access-key/CWAAAAAAAAAAAAAA", None, "cwobject:GetAccessKeyInfo"),
    (
        "PUT",
        "/v1/cwobject/access-key-status",
        {"principalName": "coreweave/x", "status": "ACTIVE"},
        "cwobject:UpdateAccessKeyStatus",
    ),
    (
        "POST",
        "/v1/cwobject/revoke-access-key/access-key",
        {"accessKey": "CWAAAAAAAAAAAAAA"},
        "cwobject:RevokeAccessKeyByAccessKey",
    ),
    (
        "POST",
        "/v1/cwobject/revoke-access-key/principal",
        {"principalName": "coreweave/x"},
        "cwobject:RevokeAccessKeysByPrincipal",
    ),
    ("GET", "/v1/cwobject/temporary-credentials/api-token", None, "cwobject:CreateAccessKey"),
]


def send(server: CofferServer, method: str, path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    return httpx.request(method, server.api_url + path, json=body, headers=headers, timeout=30)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer cwt_two words"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "cwt_not_even_bearer"},
        {"Authorization": "Bearer cwt_unknown_token"},
    ],
    ids=["none", "empty", "bearer-only", "two-words", "basic", "raw", "unknown"],
)
def test_missing_or_unknown_token_is_401_on_every_operation(
    server: CofferServer, headers: dict[str, str]
) -> None:
    for method, path, body, _ in OPERATIONS:
        r = send(server, method, path, body, headers)
        err = assert_status(r, 401, 16)
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "token" in err["message"]


def test_401_comes_before_validation(server: CofferServer) -> None:
    """An unauthenticated caller learns nothing about what a valid body looks like."""
    r = httpx.post(server.api_url + "/v1/cwobject/access-key", content=b"{not json", timeout=30)
    assert_status(r, 401, 16)


def test_non_admin_gets_403_with_a_clear_message(server: CofferServer) -> None:
    principal, token = user_token(server, "plain-user")
    for method, path, body, action in OPERATIONS:
        r = send(server, method, path, body, {"Authorization": f"Bearer {token}"})
        err = assert_status(r, 403, 7)
        assert principal in err["message"] and action in err["message"], err
    # A bad body from a non-admin is still a 403: authorization comes before validation.
    r = send(
        server,
        "POST",
        "/v1/cwobject/access-key",
        {"durationSeconds": "x"},
        {"Authorization": f"Bearer {token}"},
    )
    assert_status(r, 403, 7)
    denied = server.audit("denied", from_log=True, principal=principal)
    assert {e["action"] for e in denied} == {a for *_, a in OPERATIONS}
    assert all(e["plane"] == "control" and e["reason"] for e in denied)


def test_legacy_admin_group_counts_as_object_storage_admin(server: CofferServer) -> None:
    principal, token = user_token(server, "legacy-admin", groups=("admin",))
    r = send(
        server,
        "POST",
        "/v1/cwobject/access-key",
        {"durationSeconds": 0},
        {"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["principalName"] == principal
    r = send(server, "GET", "/v1/cwobject/access-key", None, {"Authorization": f"Bearer {token}"})
    assert r.status_code == 200


def test_expired_api_token_is_401(server: CofferServer) -> None:
    server.cli("admin", "user", "create", "short-lived", "--admin")
    token = server.cli(
        "admin", "token", "create", "--user", "short-lived", "--expires-in", "1"
    ).stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}

    def refused() -> bool:
        r = send(server, "GET", "/v1/cwobject/access-key", None, headers)
        return r.status_code == 401

    assert wait_for(refused, timeout=30, interval=0.2)
    err = assert_status(send(server, "GET", "/v1/cwobject/access-key", None, headers), 401, 16)
    assert "expired" in err["message"]


def test_revoked_api_token_is_refused_on_the_very_next_request(server: CofferServer) -> None:
    _, token = user_token(server, "soon-revoked", admin=True)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.api_url, headers=headers, timeout=30) as c:
        for _ in range(3):  # warm every cache on the way
            assert c.get("/v1/cwobject/access-key").status_code == 200
        out = server.cli("admin", "token", "revoke", token_id_of(server, "soon-revoked"))
        assert "revoked" in out.stdout
        err = assert_status(c.get("/v1/cwobject/access-key"), 401, 16)  # same keep-alive connection
        assert "revoked" in err["message"]
    err = assert_status(send(server, "GET", "/v1/cwobject/access-key", None, headers), 401, 16)
    # Other tokens are untouched.
    with server.api() as c:
        assert c.get("/v1/cwobject/access-key").status_code == 200


def test_refusals_are_audited_without_the_token(server: CofferServer) -> None:
    bogus = "cwt_this-token-must-not-be-logged"
    send(server, "GET", "/v1/cwobject/access-key", None, {"Authorization": f"Bearer {bogus}"})
    denied = server.audit("denied", from_log=True, status=401)
    assert denied, "no audit line for a 401"
    last = denied[-1]
    assert last["action"] == "cwobject:ListAccessKeyInfo"
    assert last["path"] == "/v1/cwobject/access-key" and last["client"] == "127.0.0.1"
    assert bogus not in server.log()
