"""The access-key API end to end: mint, read, page, filter, suspend, revoke, exchange.

One real server per backend; every call goes over a socket with httpx, the API token
comes from the bootstrap file or from `coffer admin` run as a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.api import KEY_ID, SECRET, assert_status, user_token, wait_for
from tests.support.harness import CofferServer

AK = "/v1/cwobject/access-key"


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def admin_principal(server: CofferServer) -> str:
    users = json.loads(server.cli("admin", "user", "list", "--json").stdout)
    (admin,) = [u for u in users if u["name"] == "admin"]
    return str(admin["principalName"])


def get_info(c: httpx.Client, key_id: str) -> dict[str, Any]:
    r = c.get(f"{AK}/{key_id}")
    assert r.status_code == 200, r.text
    info: dict[str, Any] = r.json()["info"]
    return info


def list_all(c: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    r = c.get(AK, params={"limit": 1000, **params})
    assert r.status_code == 200, r.text
    infos: list[dict[str, Any]] = r.json()["info"]
    return infos


def test_permanent_key(server: CofferServer) -> None:
    with server.api() as c:
        r = c.post(AK, json={"durationSeconds": 0, "attributes": {"name": "laptop"}})
        assert r.status_code == 200, r.text
        minted = r.json()
        assert set(minted) == {"accessKeyId", "secretKey", "principalName", "expiry", "attributes"}
        assert re.fullmatch(KEY_ID, minted["accessKeyId"])
        assert re.fullmatch(SECRET, minted["secretKey"])
        assert minted["principalName"] == admin_principal(server)
        assert minted["expiry"] == "1970-01-01T00:00:00Z"
        assert minted["attributes"] == {"name": "laptop"}

        info = get_info(c, minted["accessKeyId"])
        assert "secretKey" not in info and minted["secretKey"] not in json.dumps(info)
        assert info["status"] == "ACTIVE"
        assert info["expiry"] == "1970-01-01T00:00:00Z"
        assert info["principalName"] == minted["principalName"]
        assert info["attributes"] == {"name": "laptop"}
        orgs = json.loads(server.cli("admin", "org", "list", "--json").stdout)
        assert info["orgId"] == orgs[0]["id"]
        assert info["multiAttributes"] == {}


def test_temporary_key_expiry_is_its_duration(server: CofferServer) -> None:
    with server.api() as c:
        before = datetime.now(UTC).replace(microsecond=0)
        minted = c.post(AK, json={"durationSeconds": 300}).json()
        after = datetime.now(UTC)
        expiry = parse_time(minted["expiry"])
        assert before + timedelta(seconds=300) <= expiry <= after + timedelta(seconds=300)
        assert get_info(c, minted["accessKeyId"])["status"] == "ACTIVE"


def test_duration_may_be_a_string_and_the_cap_is_inclusive(server: CofferServer) -> None:
    with server.api() as c:
        assert c.post(AK, json={"durationSeconds": "60"}).status_code == 200
        assert c.post(AK, json={"durationSeconds": 43200}).status_code == 200
        assert_status(c.post(AK, json={"durationSeconds": 43201}), 400, 3)


def test_temporary_key_reports_expired_after_it_lapses(server: CofferServer) -> None:
    with server.api() as c:
        minted = c.post(AK, json={"durationSeconds": 2, "attributes": {"name": "short"}}).json()
        key_id = minted["accessKeyId"]
        assert get_info(c, key_id)["status"] == "ACTIVE"
        assert wait_for(lambda: get_info(c, key_id)["status"] == "EXPIRED", timeout=30, interval=0.25)
        assert key_id in {i["accessKeyId"] for i in list_all(c, status="EXPIRED")}
        assert key_id not in {i["accessKeyId"] for i in list_all(c, status="ACTIVE")}
        assert key_id not in {i["accessKeyId"] for i in list_all(c, status="ACCESS_KEY_STATUS_ACTIVE")}


def test_paging_is_stable_and_complete(server: CofferServer) -> None:
    """A fresh organization, so the key set is exactly what this test mints."""
    org_id = server.cli("admin", "org", "create", "paging-org").stdout.strip()
    server.cli("admin", "user", "create", "pager", "--admin", "--org", org_id)
    token = server.cli("admin", "token", "create", "--user", "pager").stdout.strip()
    with server.api(token) as c:
        minted = [
            c.post(AK, json={"durationSeconds": 0, "attributes": {"n": str(i)}}).json() for i in range(23)
        ]
        everything = [i["accessKeyId"] for i in list_all(c)]
        assert sorted(everything) == sorted(m["accessKeyId"] for m in minted)
        for limit in (1, 5, 7, 23, 1000):
            pages: list[str] = []
            offset = 0
            while True:
                r = c.get(AK, params={"offset": offset, "limit": limit})
                assert r.status_code == 200, r.text
                batch = [i["accessKeyId"] for i in r.json()["info"]]
                assert len(batch) <= limit
                pages += batch
                if len(batch) < limit:
                    break
                offset += limit
            assert pages == everything, f"limit={limit}"
        assert c.get(AK, params={"offset": 23, "limit": 10}).json() == {"info": []}
        assert c.get(AK, params={"offset": 4_000_000_000, "limit": 10}).json() == {"info": []}
        # The default page is offset 0; the other organization's keys never show up.
        assert {i["orgId"] for i in c.get(AK).json()["info"]} == {org_id}


def test_status_filter_spellings(server: CofferServer) -> None:
    principal, token = user_token(server, "filterer", admin=True)
    with server.api() as admin, server.api(token) as c:
        mine = c.post(AK, json={"durationSeconds": 0}).json()["accessKeyId"]
        assert (
            admin.put(
                "/v1/cwobject/access-key-status", json={"principalName": principal, "status": "SUSPENDED"}
            ).json()
            == {}
        )
        for spelling in ("SUSPENDED", "ACCESS_KEY_STATUS_SUSPENDED", "FULL_SUSPENDED"):
            suspended = list_all(admin, status=spelling)
            assert mine in {i["accessKeyId"] for i in suspended}, spelling
            assert {i["status"] for i in suspended} == {"FULL_SUSPENDED"}
        for spelling in ("ACTIVE", "ACCESS_KEY_STATUS_ACTIVE"):
            active = list_all(admin, status=spelling)
            assert mine not in {i["accessKeyId"] for i in active}
            assert {i["status"] for i in active} <= {"ACTIVE"}
        admin.put("/v1/cwobject/access-key-status", json={"principalName": principal, "status": "ACTIVE"})
        assert mine in {i["accessKeyId"] for i in list_all(admin, status="ACTIVE")}


def test_suspend_and_reactivate_a_principal(server: CofferServer) -> None:
    carol, carol_token = user_token(server, "carol", admin=True)
    with server.api() as admin, server.api(carol_token) as c:
        carols = [c.post(AK, json={"durationSeconds": d}).json()["accessKeyId"] for d in (0, 3600)]
        other = admin.post(AK, json={"durationSeconds": 0}).json()["accessKeyId"]

        r = admin.put(
            "/v1/cwobject/access-key-status",
            json={"principalName": carol, "status": "ACCESS_KEY_STATUS_SUSPENDED"},
        )
        assert r.status_code == 200 and r.json() == {}
        assert [get_info(admin, k)["status"] for k in carols] == ["FULL_SUSPENDED"] * 2
        assert get_info(admin, other)["status"] == "ACTIVE"

        # Suspension is principal-wide and covers keys minted while it holds.
        later = c.post(AK, json={"durationSeconds": 0}).json()["accessKeyId"]
        assert get_info(admin, later)["status"] == "FULL_SUSPENDED"

        r = admin.put(
            "/v1/cwobject/access-key-status",
            json={"principalName": carol, "status": "ACCESS_KEY_STATUS_ACTIVE"},
        )
        assert r.status_code == 200 and r.json() == {}
        assert [get_info(admin, k)["status"] for k in [*carols, later]] == ["ACTIVE"] * 3


def test_revoke_one_key(server: CofferServer) -> None:
    with server.api() as c:
        keep = c.post(AK, json={"durationSeconds": 0}).json()["accessKeyId"]
        gone = c.post(AK, json={"durationSeconds": 0, "attributes": {"name": "gone"}}).json()["accessKeyId"]
        r = c.post("/v1/cwobject/revoke-access-key/access-key", json={"accessKey": gone})
        assert r.status_code == 200 and r.json() == {}
        info = get_info(c, gone)  # revoked keys are still found
        assert info["status"] == "REVOKED" and info["attributes"] == {"name": "gone"}
        assert get_info(c, keep)["status"] == "ACTIVE"
        assert gone in {i["accessKeyId"] for i in list_all(c, status="REVOKED")}
        assert gone not in {i["accessKeyId"] for i in list_all(c, status="ACTIVE")}
        # Idempotent, as Terraform's destroy expects.
        again = c.post("/v1/cwobject/revoke-access-key/access-key", json={"accessKey": gone})
        assert again.status_code == 200 and again.json() == {}


def test_revoke_every_key_of_a_principal(server: CofferServer) -> None:
    dave, dave_token = user_token(server, "dave", admin=True)
    with server.api() as admin, server.api(dave_token) as c:
        daves = [c.post(AK, json={"durationSeconds": 0}).json()["accessKeyId"] for _ in range(3)]
        other = admin.post(AK, json={"durationSeconds": 0}).json()["accessKeyId"]
        r = admin.post("/v1/cwobject/revoke-access-key/principal", json={"principalName": dave})
        assert r.status_code == 200 and r.json() == {}
        assert [get_info(admin, k)["status"] for k in daves] == ["REVOKED"] * 3
        assert get_info(admin, other)["status"] == "ACTIVE"
        # Revocation acts on existing keys; the principal may mint again.
        fresh = c.post(AK, json={"durationSeconds": 0}).json()["accessKeyId"]
        assert get_info(admin, fresh)["status"] == "ACTIVE"


def test_api_token_exchange(server: CofferServer) -> None:
    with server.api() as c:
        before = datetime.now(UTC).replace(microsecond=0)
        r = c.get("/v1/cwobject/temporary-credentials/api-token")
        assert r.status_code == 200, r.text
        creds = r.json()
        assert {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} <= set(creds)
        assert re.fullmatch(KEY_ID, creds["AccessKeyId"])
        assert re.fullmatch(SECRET, creds["SecretAccessKey"])
        assert creds["Token"]
        expiry = parse_time(creds["Expiration"])
        assert before + timedelta(seconds=3600) <= expiry <= datetime.now(UTC) + timedelta(seconds=3600)
        info = get_info(c, creds["AccessKeyId"])
        assert info["status"] == "ACTIVE"
        assert info["principalName"] == admin_principal(server)


def test_aws_sdk_container_credentials_provider(server: CofferServer) -> None:
    """botocore's own container-credentials provider, configured as CoreWeave's docs say."""
    script = (
        "import json, botocore.session\n"
        "c = botocore.session.Session().get_credentials().get_frozen_credentials()\n"
        "print(json.dumps({'key': c.access_key, 'secret': c.secret_key, 'token': c.token}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in ("HOME",)} | {
        "HOME": str(server.data_dir.parent),
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": server.api_url + "/v1/cwobject/temporary-credentials/api-token",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": f"Bearer {server.admin_token}",
    }
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    creds = json.loads(out.stdout)
    assert re.fullmatch(KEY_ID, creds["key"]) and re.fullmatch(SECRET, creds["secret"])
    assert creds["token"]
    with server.api() as c:
        assert get_info(c, creds["key"])["status"] == "ACTIVE"


def test_groups_travel_as_multi_attributes(server: CofferServer) -> None:
    _, token = user_token(server, "grouped", admin=True, groups=("ml", "data-eng"))
    with server.api(token) as c:
        key = c.post(AK, json={"durationSeconds": 0}).json()["accessKeyId"]
        assert get_info(c, key)["multiAttributes"] == {"groups": {"values": ["data-eng", "ml"]}}
        creds = c.get("/v1/cwobject/temporary-credentials/api-token").json()
        assert creds["multiAttributes"] == {"groups": {"values": ["data-eng", "ml"]}}


@pytest.mark.parametrize("op", ["get", "revoke", "suspend", "revoke-principal"])
def test_other_organizations_keys_are_invisible(server: CofferServer, op: str) -> None:
    org_id = server.cli("admin", "org", "create", f"other-{op}").stdout.strip()
    server.cli("admin", "user", "create", f"outsider-{op}", "--admin", "--org", org_id)
    outsider = server.cli("admin", "token", "create", "--user", f"outsider-{op}").stdout.strip()
    with server.api() as admin, server.api(outsider) as c:
        key = admin.post(AK, json={"durationSeconds": 0}).json()
        if op == "get":
            r = c.get(f"{AK}/{key['accessKeyId']}")
        elif op == "revoke":
            r = c.post("/v1/cwobject/revoke-access-key/access-key", json={"accessKey": key["accessKeyId"]})
        elif op == "suspend":
            r = c.put(
                "/v1/cwobject/access-key-status",
                json={"principalName": key["principalName"], "status": "SUSPENDED"},
            )
        else:
            r = c.post(
                "/v1/cwobject/revoke-access-key/principal", json={"principalName": key["principalName"]}
            )
        assert_status(r, 404, 5)
        assert key["accessKeyId"] not in {i["accessKeyId"] for i in list_all(c)}
        assert get_info(admin, key["accessKeyId"])["status"] == "ACTIVE"
