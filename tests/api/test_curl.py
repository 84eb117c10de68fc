"""curl commands written for CoreWeave's API work against Coffer with only the host changed.

Each command below is spelled as CoreWeave's documentation spells it, against
https://api.coreweave.com; the test swaps the host for the server's and runs it in a
real shell with real curl.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from typing import Any

import pytest

from tests.support.api import KEY_ID, SECRET, user_token
from tests.support.harness import CofferServer

COREWEAVE = "https://api.coreweave.com"

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def run(server: CofferServer, command: str, token: str | None = None, **env: str) -> Any:
    """Run a CoreWeave-documented curl command with only the host changed; return its JSON."""
    assert command.count(COREWEAVE) == 1
    local = command.replace(COREWEAVE, server.api_url)
    environ = {**os.environ, "TOKEN": token or server.admin_token, **env}
    out = subprocess.run(
        ["bash", "-c", local], env=environ, capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(out.stdout)


def test_create_a_permanent_key(server: CofferServer) -> None:
    data = run(
        server,
        f"curl -X POST {COREWEAVE}/v1/cwobject/access-key "
        '-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" '
        "-d '{\"durationSeconds\": 0}'",
    )
    assert re.fullmatch(KEY_ID, data["accessKeyId"]) and re.fullmatch(SECRET, data["secretKey"])
    assert data["expiry"] == "1970-01-01T00:00:00Z"
    assert data["principalName"].startswith("coreweave/")


def test_create_a_temporary_named_key_then_get_and_list_it(server: CofferServer) -> None:
    created = run(
        server,
        f"curl -X POST {COREWEAVE}/v1/cwobject/access-key "
        '-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" '
        '-d \'{"durationSeconds": 3600, "attributes": {"name": "test-key"}}\'',
    )
    assert created["attributes"] == {"name": "test-key"}
    key_id = created["accessKeyId"]
    got = run(server, f'curl {COREWEAVE}/v1/cwobject/access-key/{key_id} -H "Authorization: Bearer $TOKEN"')
    assert got["info"]["accessKeyId"] == key_id and got["info"]["status"] == "ACTIVE"
    listed = run(
        server,
        f'curl -X GET "{COREWEAVE}/v1/cwobject/access-key?offset=0&limit=100" '
        '-H "Authorization: Bearer $TOKEN"',
    )
    assert key_id in {i["accessKeyId"] for i in listed["info"]}
    active = run(
        server,
        f'curl -X GET "{COREWEAVE}/v1/cwobject/access-key?status=ACCESS_KEY_STATUS_ACTIVE" '
        '-H "Authorization: Bearer $TOKEN"',
    )
    assert key_id in {i["accessKeyId"] for i in active["info"]}


def test_suspend_reactivate_and_revoke(server: CofferServer) -> None:
    principal, token = user_token(server, "curl-user", admin=True)
    key = run(
        server,
        f"curl -X POST {COREWEAVE}/v1/cwobject/access-key "
        '-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" '
        "-d '{\"durationSeconds\": 0}'",
        token=token,
    )["accessKeyId"]
    status_cmd = (
        f"curl -X PUT {COREWEAVE}/v1/cwobject/access-key-status "
        '-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" '
        '-d "{\\"principalName\\":\\"$PRINCIPAL\\",\\"status\\":\\"$STATUS\\"}"'
    )
    get_cmd = f'curl {COREWEAVE}/v1/cwobject/access-key/{key} -H "Authorization: Bearer $TOKEN"'
    assert run(server, status_cmd, PRINCIPAL=principal, STATUS="ACCESS_KEY_STATUS_SUSPENDED") == {}
    assert run(server, get_cmd)["info"]["status"] == "FULL_SUSPENDED"
    assert run(server, status_cmd, PRINCIPAL=principal, STATUS="ACCESS_KEY_STATUS_ACTIVE") == {}
    assert run(server, get_cmd)["info"]["status"] == "ACTIVE"

    revoked = run(
        server,
        f"curl -X POST {COREWEAVE}/v1/cwobject/revoke-access-key/access-key "
        '-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" '
        f'-d \'{{"accessKey": "{key}"}}\'',
    )
    assert revoked == {}
    assert run(server, get_cmd)["info"]["status"] == "REVOKED"


def test_revoke_a_principals_keys(server: CofferServer) -> None:
    principal, token = user_token(server, "curl-principal", admin=True)
    with server.api(token) as c:
        keys = [
            c.post("/v1/cwobject/access-key", json={"durationSeconds": 0}).json()["accessKeyId"] for _ in "ab"
        ]
    out = run(
        server,
        f"curl -X POST {COREWEAVE}/v1/cwobject/revoke-access-key/principal "
        '-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" '
        '-d "{\\"principalName\\": \\"$PRINCIPAL\\"}"',
        PRINCIPAL=principal,
    )
    assert out == {}
    with server.api() as c:
        assert [c.get(f"/v1/cwobject/access-key/{k}").json()["info"]["status"] for k in keys] == [
            "REVOKED"
        ] * 2


def test_api_token_exchange(server: CofferServer) -> None:
    creds = run(
        server,
        f'curl -s {COREWEAVE}/v1/cwobject/temporary-credentials/api-token -H "Authorization: Bearer $TOKEN"',
    )
    assert re.fullmatch(KEY_ID, creds["AccessKeyId"]) and re.fullmatch(SECRET, creds["SecretAccessKey"])
    assert creds["Token"] and creds["Expiration"].endswith("Z")


def test_errors_are_status_json_to_curl_too(server: CofferServer) -> None:
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-w",
            "\n%{http_code}",
            "-X",
            "POST",
            server.api_url + "/v1/cwobject/access-key",
            "-H",
            f"Authorization: Bearer {server.admin_token}",
            "-H",
            "Content-Type: application/json",
            "-d",
            '{"durationSeconds": -5}',
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    body, status = out.stdout.rsplit("\n", 1)
    assert status == "400"
    assert json.loads(body)["code"] == 3
