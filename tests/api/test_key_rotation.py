"""Rotation with overlap (RotateAccessKey, a Coffer extension): a successor key at once, the
old key refused from the end of the overlap on, the audit trail linking the two.

Real servers on both backends; a thread PUTs with boto3 throughout a rotation, switching to
the new key when it sees it, as a job reading a rotated secret would.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import assert_status, field_violation, wait_for
from tests.support.harness import CofferServer, three_nodes
from tests.support.s3 import client_error, new_bucket, s3_client

AK = "/v1/cwobject/access-key"
ROTATE = "/v1/cwobject/coffer/access-key/rotate"
OVERLAP = 4  # seconds


def rotate(server: CofferServer, key_id: str, overlap: Any, token: str | None = None) -> Any:
    with server.api(token) as c:
        return c.post(ROTATE, json={"accessKey": key_id, "overlapSeconds": overlap})


def get(server: CofferServer, key_id: str, ext: str = "") -> dict[str, Any]:
    with server.api() as c:
        r = c.get(f"{AK}/{key_id}", headers={"X-Coffer-Extensions": ext} if ext else {})
    assert r.status_code == 200, r.text
    info: dict[str, Any] = r.json()["info"]
    return info


class Uploader(threading.Thread):
    """PUTs continuously with the current key; `switch()` hands it the successor."""

    def __init__(self, server: CofferServer, key: dict[str, Any], bucket: str) -> None:
        super().__init__(daemon=True)
        self.server, self.bucket = server, bucket
        self.client = s3_client(server, key)
        self.key_id = key["accessKeyId"]
        self.used: dict[str, int] = {}
        self.failures: list[str] = []
        self.stop = threading.Event()
        self._next: dict[str, Any] | None = None

    def switch(self, key: dict[str, Any]) -> None:
        self._next = key

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            if self._next is not None:  # a job picks up the rotated secret between two requests
                self.client, self.key_id, self._next = (
                    s3_client(self.server, self._next),
                    self._next["accessKeyId"],
                    None,
                )
            try:
                self.client.put_object(Bucket=self.bucket, Key=f"loop/{n}", Body=b"x" * 1024)
                self.used[self.key_id] = self.used.get(self.key_id, 0) + 1
            except Exception as exc:  # every failure counts against the rotation
                self.failures.append(f"{self.key_id}: {exc}")
            n += 1


def test_rotation_under_a_running_upload_loop(server: CofferServer) -> None:
    old = server.mint_key(name="ci-job", team="storage")
    bucket = new_bucket(s3_client(server, old), "rot")
    loop = Uploader(server, old, bucket)
    loop.start()
    try:
        assert wait_for(lambda: loop.used.get(old["accessKeyId"], 0) >= 5, timeout=30)
        r = rotate(server, old["accessKeyId"], OVERLAP)
        assert r.status_code == 200, r.text
        new = r.json()
        revoke_at = datetime.strptime(new["rotation"]["revokeAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        assert new["accessKeyId"] != old["accessKeyId"] and new["secretKey"] != old["secretKey"]
        assert new["attributes"] == {"name": "ci-job", "team": "storage"}
        assert new["principalName"] == old["principalName"]
        assert new["rotation"]["predecessor"] == old["accessKeyId"]
        # Both keys work during the overlap: the loop keeps the old one a while, then switches.
        old_before = loop.used[old["accessKeyId"]]
        assert wait_for(lambda: loop.used[old["accessKeyId"]] >= old_before + 3, timeout=OVERLAP)
        s3_client(server, new).head_bucket(Bucket=bucket)
        loop.switch(new)
        assert wait_for(lambda: loop.used.get(new["accessKeyId"], 0) >= 5, timeout=30)
        # The old key is refused as soon as the overlap is over, while the loop goes on.
        while datetime.now(UTC) < revoke_at:
            time.sleep(0.05)
        with pytest.raises(Exception) as refused:
            s3_client(server, old).head_bucket(Bucket=bucket)
        assert client_error(refused.value)[0] == 403
        with pytest.raises(Exception) as listing:
            s3_client(server, old).list_buckets()
        assert client_error(listing.value) == (403, "InvalidAccessKeyId")
        after = loop.used[new["accessKeyId"]]
        assert wait_for(lambda: loop.used[new["accessKeyId"]] >= after + 3, timeout=30)
    finally:
        loop.stop.set()
        loop.join(30)
    assert loop.failures == []

    old_info, new_info = (
        get(server, old["accessKeyId"], "rotation"),
        get(server, new["accessKeyId"], "rotation"),
    )
    assert old_info["status"] == "REVOKED" and new_info["status"] == "ACTIVE"
    assert old_info["rotation"]["successor"] == new["accessKeyId"]
    assert new_info["rotation"] == {"revokeAt": None, "predecessor": old["accessKeyId"], "successor": None}
    assert "rotation" not in get(server, old["accessKeyId"])  # CoreWeave's answer, untouched
    with server.api() as c:
        revoked = c.get(AK, params={"status": "REVOKED", "limit": 1000}).json()["info"]
        active = c.get(AK, params={"status": "ACTIVE", "limit": 1000}).json()["info"]
    assert old["accessKeyId"] in {i["accessKeyId"] for i in revoked}
    assert old["accessKeyId"] not in {i["accessKeyId"] for i in active}

    (event,) = server.audit("access_key_rotated", access_key_id=old["accessKeyId"])
    assert event["successor_access_key_id"] == new["accessKeyId"]
    assert event["revoke_at"] == new["rotation"]["revokeAt"]
    (minted,) = server.audit("access_key_minted", access_key_id=new["accessKeyId"])
    assert minted["action"] == "cwobject:RotateAccessKey"


def test_a_rotated_key_cannot_be_rotated_again_and_its_successor_can(server: CofferServer) -> None:
    old = server.mint_key()
    first = rotate(server, old["accessKeyId"], 3600)
    assert first.status_code == 200, first.text
    assert_status(rotate(server, old["accessKeyId"], 3600), 400, 9)
    second = rotate(server, first.json()["accessKeyId"], 0)  # 0: the key is refused at once
    assert second.status_code == 200, second.text
    with pytest.raises(Exception) as refused:
        s3_client(server, first.json()).list_buckets()
    assert client_error(refused.value) == (403, "InvalidAccessKeyId")
    s3_client(server, second.json()).list_buckets()


def test_a_temporary_key_rotates_into_one_of_the_same_lifetime(server: CofferServer) -> None:
    old = server.mint_key(duration=600)
    new = rotate(server, old["accessKeyId"], 60).json()
    lifetime = datetime.strptime(new["expiry"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) - datetime.now(UTC)
    assert 590 <= lifetime.total_seconds() <= 600


@pytest.mark.parametrize(
    "overlap",
    [None, -1, "1h", 30 * 86400 + 1, True, 1.5],
    ids=["absent", "negative", "text", "too-long", "bool", "float"],
)
def test_bad_overlaps_are_refused(server: CofferServer, overlap: Any) -> None:
    key = server.mint_key()
    body = assert_status(rotate(server, key["accessKeyId"], overlap), 400, 3)
    assert field_violation(body)["field"] == "overlapSeconds"
    assert get(server, key["accessKeyId"], "rotation")["rotation"] is None


def test_who_may_rotate(server: CofferServer) -> None:
    mine = server.mint_key()
    _, member = server.create_user("rotating-member")
    _, other_admin = server.create_user("rotating-admin", admin=True)
    # Another principal's key: even an admin creates keys only for itself.
    theirs = server.mint_key(token=other_admin)
    assert_status(rotate(server, theirs["accessKeyId"], 60), 403, 7)
    # A member without cwobject:CreateAccessKey / RevokeAccessKeyByAccessKey is refused by the door.
    assert_status(rotate(server, theirs["accessKeyId"], 60, token=member), 403, 7)
    assert_status(rotate(server, "CWNOSUCHKEYATALL", 60), 404, 5)
    with server.api() as c:
        c.post("/v1/cwobject/revoke-access-key/access-key", json={"accessKey": mine["accessKeyId"]})
    assert_status(rotate(server, mine["accessKeyId"], 60), 400, 9)


def test_the_rotate_operation_is_in_the_openapi(server: CofferServer) -> None:
    with server.api() as c:
        spec = c.get("/openapi.json").json()
    op = spec["paths"][ROTATE]["post"]
    assert op["operationId"] == "CWObject_RotateAccessKey"
    assert set(op["requestBody"]["content"]["application/json"]["schema"]["required"]) == {
        "accessKey",
        "overlapSeconds",
    }


@pytest.mark.postgres
def test_the_old_key_ends_on_every_node(pg_reason: str | None, tmp_path: Path) -> None:
    """Rotated through node A; node C (sharing only the database) refuses the old key from
    the end of the overlap on, with no job run anywhere."""
    if pg_reason:
        pytest.skip(pg_reason)
    with three_nodes(tmp_path) as nodes:
        a, c = nodes["a"], nodes["c"]
        old = a.mint_key()
        on_c = s3_client(c, old)
        on_c.list_buckets()  # cached as valid on C
        new = rotate(a, old["accessKeyId"], 3).json()
        revoke_at = datetime.strptime(new["rotation"]["revokeAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        s3_client(c, new).list_buckets()
        while datetime.now(UTC) < revoke_at - timedelta(seconds=1):
            on_c.list_buckets()  # the overlap: still fine on C
            time.sleep(0.2)
        while datetime.now(UTC) < revoke_at:
            time.sleep(0.02)
        with pytest.raises(Exception) as refused:
            on_c.list_buckets()
        assert client_error(refused.value) == (403, "InvalidAccessKeyId")


def test_the_successor_keeps_the_scope(server: CofferServer) -> None:
    scope = {
        "statements": [
            {"name": "ci", "effect": "Allow", "actions": ["s3:GetObject"], "resources": ["b/ci/*"]}
        ]
    }
    with server.api() as c:
        r = c.post(AK, json={"durationSeconds": 0, "scope": scope, "attributes": {"name": "scoped"}})
    assert r.status_code == 200, r.text
    old = r.json()
    new = rotate(server, old["accessKeyId"], 60).json()
    before, after = get(server, old["accessKeyId"], "scope"), get(server, new["accessKeyId"], "scope")
    assert after["scope"] == before["scope"] and after["scope"]["statements"][0]["resources"] == ["b/ci/*"]
    assert after["attributes"] == {"name": "scoped"}
