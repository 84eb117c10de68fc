"""Last use of an access key: recorded in memory, flushed every last_used_flush_seconds and at
shutdown, shown by Get/List only to a client that asks for the `lastUsed` extension field.

Real servers on both backends, boto3 traffic on the S3 port, httpx on the control plane;
the two-node test runs two (three) `coffer serve` on one PostgreSQL database.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import KEY_INFO_FIELDS, wait_for
from tests.support.harness import CofferServer, running_server
from tests.support.s3 import new_bucket, s3_client

AK = "/v1/cwobject/access-key"
FLUSH = 0.5
BOUND = 30  # seconds: a correctness bound on a loaded two-core machine, not a speed figure
COREWEAVE_FIELDS = set(KEY_INFO_FIELDS)
EXT = {"X-Coffer-Extensions": "lastUsed"}


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {"env": {"COFFER_LAST_USED_FLUSH_SECONDS": str(FLUSH)}}


def info(
    server: CofferServer, key_id: str, headers: dict[str, str] | None = None, token: str | None = None
) -> dict[str, Any]:
    with server.api(token) as c:
        r = c.get(f"{AK}/{key_id}", headers=headers or {})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["info"]
    return data


def last_used(server: CofferServer, key_id: str, token: str | None = None) -> dict[str, Any] | None:
    used: dict[str, Any] | None = info(server, key_id, EXT, token)["lastUsed"]
    return used


def parse(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def wait_for_operation(
    server: CofferServer, key_id: str, operation: str, token: str | None = None
) -> dict[str, Any]:
    assert wait_for(
        lambda: (last_used(server, key_id, token) or {}).get("operation") == operation,
        timeout=BOUND,
        interval=0.2,
    ), f"lastUsed never showed {operation}: {last_used(server, key_id, token)}"
    used = last_used(server, key_id, token)
    assert used is not None
    return used


def test_last_use_is_shown_only_when_asked_for(server: CofferServer) -> None:
    key = server.mint_key(name="tracked")
    plain = info(server, key["accessKeyId"])
    assert set(plain) == COREWEAVE_FIELDS  # CoreWeave's answer, untouched
    assert last_used(server, key["accessKeyId"]) is None  # asked for, never used

    s3 = s3_client(server, key)
    before = datetime.now(UTC).replace(microsecond=0)
    bucket = new_bucket(s3, "lu")
    s3.put_object(Bucket=bucket, Key="a", Body=b"x")
    after = datetime.now(UTC)
    used = wait_for_operation(server, key["accessKeyId"], "PutObject")
    assert used["sourceIp"] == "127.0.0.1"
    assert used["face"] == "s3"
    assert before <= parse(used["time"]) <= after + timedelta(seconds=1)

    s3.get_object(Bucket=bucket, Key="a")["Body"].read()
    assert wait_for_operation(server, key["accessKeyId"], "GetObject")["face"] == "s3"

    with server.api() as c:
        listed = c.get(AK, params={"limit": 1000}, headers={"X-Coffer-Extensions": "*"}).json()["info"]
        plain_list = c.get(AK, params={"limit": 1000}).json()["info"]
    mine = [i for i in listed if i["accessKeyId"] == key["accessKeyId"]]
    assert mine and mine[0]["lastUsed"]["operation"] == "GetObject"
    assert all(set(i) == COREWEAVE_FIELDS for i in plain_list)


def test_a_refused_signature_is_not_a_use(server: CofferServer) -> None:
    key = server.mint_key()
    bad = s3_client(server, {**key, "secretKey": key["secretKey"][::-1]})
    with pytest.raises(Exception, match="SignatureDoesNotMatch"):
        bad.list_buckets()
    good_other = server.mint_key()
    s3_client(server, good_other).list_buckets()
    wait_for_operation(server, good_other["accessKeyId"], "ListBuckets")  # a flush happened since
    assert last_used(server, key["accessKeyId"]) is None


@pytest.mark.parametrize("flush", ["3600"])
def test_the_last_use_survives_a_restart(backend: str, tmp_path: Path, flush: str) -> None:
    """With an hour between flushes, only the flush at shutdown can have written it."""
    with running_server(tmp_path, backend, env={"COFFER_LAST_USED_FLUSH_SECONDS": flush}) as srv:
        key = srv.mint_key()
        s3 = s3_client(srv, key)
        bucket = new_bucket(s3, "restart")
        s3.head_bucket(Bucket=bucket)
        assert last_used(srv, key["accessKeyId"]) is None  # still in memory only
        srv.stop()
        srv.start()
        used = last_used(srv, key["accessKeyId"])
        assert used is not None and used["operation"] == "HeadBucket", used


@pytest.mark.postgres
def test_last_use_across_nodes_is_the_newest(pg_reason: str | None, tmp_path: Path) -> None:
    """Two nodes on one PostgreSQL database: each flushes what it saw; the newest use wins,
    whichever node served it and whichever flushed last."""
    if pg_reason:
        pytest.skip(pg_reason)
    from tests.support.harness import three_nodes

    with three_nodes(tmp_path, env={"COFFER_LAST_USED_FLUSH_SECONDS": str(FLUSH)}) as nodes:
        a, c = nodes["a"], nodes["c"]
        token = a.admin_token  # C shares A's database, not its data directory
        key = a.mint_key()
        on_a, on_c = s3_client(a, key), s3_client(c, key)
        bucket = new_bucket(on_a, "nodes")
        on_c.put_object(Bucket=bucket, Key="k", Body=b"1")
        assert wait_for_operation(a, key["accessKeyId"], "PutObject")["face"] == "s3"  # C's use, seen on A
        on_a.head_object(Bucket=bucket, Key="k")
        assert wait_for_operation(c, key["accessKeyId"], "HeadObject", token)  # A's newer use, seen on C
        # Uses on both nodes in turn: whatever order the two flush in, the newest one stays.
        on_c.get_object(Bucket=bucket, Key="k")["Body"].read()
        on_a.list_objects_v2(Bucket=bucket)
        assert wait_for_operation(c, key["accessKeyId"], "ListObjectsV2", token)
        time.sleep(3 * FLUSH)  # later flushes keep it: no older use replaces it
        for node in (a, nodes["b"], c):
            assert (last_used(node, key["accessKeyId"], token) or {}).get("operation") == "ListObjectsV2"


def test_an_older_use_flushed_later_does_not_replace_a_newer_one(node: Any) -> None:
    """Two trackers on one store, as two workers or nodes: the upsert keeps the newest time."""
    from coffer.identity.lastused import LastUsedTracker

    other = LastUsedTracker(node.db, 3600)
    mine = node.keys.last_used
    other.record("CWOLDERUSEFIRST", "GetObject", "10.0.0.1", "s3")  # the older use
    mine.record("CWOLDERUSEFIRST", "PutObject", "10.0.0.2", "s3")  # the newer one
    assert mine.flush() == 1
    assert other.flush() == 1  # flushed last, and older: must not win
    used = mine.read(["CWOLDERUSEFIRST"])["CWOLDERUSEFIRST"]
    assert (used.operation, used.source_ip) == ("PutObject", "10.0.0.2")
    other.record("CWOLDERUSEFIRST", "HeadObject", "10.0.0.3", "s3")  # now the newest
    other.flush()
    assert mine.read(["CWOLDERUSEFIRST"])["CWOLDERUSEFIRST"].operation == "HeadObject"


def gauge(server: CofferServer, name: str) -> float:
    text = httpx.get(server.api_url + "/metrics", timeout=30).text
    values = [line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")]
    assert len(values) == 1, (name, values)
    return float(values[0])


def test_keys_in_sight_are_flagged_and_counted(server: CofferServer) -> None:
    """A temporary key within the warning (default: an hour) and a permanent key older than
    key_max_age_days (default 90: its creation is moved back in the store) are flagged and counted."""
    import sqlalchemy as sa

    soon = server.mint_key(duration=1800)
    later = server.mint_key(duration=7200)
    old, young = server.mint_key(), server.mint_key()
    url = server.database_url or f"sqlite:///{server.data_dir / 'coffer.db'}"
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE access_keys SET created_at = :t WHERE access_key_id = :k"),
            {"t": datetime.now(UTC) - timedelta(days=91), "k": old["accessKeyId"]},
        )
    engine.dispose()
    ext = {"X-Coffer-Extensions": "expiryInSight"}
    flags = {
        k["accessKeyId"]: info(server, k["accessKeyId"], ext)["expiryInSight"]
        for k in (soon, later, old, young)
    }
    assert flags == {
        soon["accessKeyId"]: "EXPIRES_SOON",
        later["accessKeyId"]: None,
        old["accessKeyId"]: "AGED",
        young["accessKeyId"]: None,
    }
    assert "expiryInSight" not in info(server, soon["accessKeyId"])
    # Counted after each flush (every FLUSH seconds here); other tests' keys may add to them.
    assert wait_for(lambda: gauge(server, "coffer_access_keys_aged") >= 1, timeout=BOUND)
    assert wait_for(lambda: gauge(server, "coffer_access_keys_expiring") >= 1, timeout=BOUND)
    with server.api() as c:
        c.post("/v1/cwobject/revoke-access-key/access-key", json={"accessKey": old["accessKeyId"]})
    assert info(server, old["accessKeyId"], ext)["expiryInSight"] is None  # revoked: nothing to rotate
