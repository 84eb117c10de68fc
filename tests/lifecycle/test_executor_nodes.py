"""The executor on many nodes and across a crash.

Two `coffer serve` processes on one PostgreSQL database and one data directory run their
background executors at once, with small steps, while a client overwrites half of the keys
the rule matched: every other key is deleted exactly once (one `lifecycle_expired` event over
both nodes' trails) and every overwritten key keeps what the client wrote.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.support.api import wait_for
from tests.support.harness import CofferServer, start_server, stop_server
from tests.support.lifecycle import executor_env, expired, put_all, put_rules, rule
from tests.support.s3 import new_bucket, s3_client

KEYS = 300
NODES_ENV = executor_env(interval=0.2, step_keys=10, lease=2)


@pytest.fixture(scope="module")
def pair(pg_reason: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[CofferServer]]:
    """Nodes A and B: one PostgreSQL database, one data directory, a log each."""
    if pg_reason:
        pytest.skip(pg_reason)
    tmp = tmp_path_factory.mktemp("lc-nodes")
    a = start_server(tmp, "postgres", env=NODES_ENV, log_path=tmp / "a.log")
    try:
        b = CofferServer(
            data_dir=a.data_dir, database_url=a.database_url, env=NODES_ENV, log_path=tmp / "b.log"
        ).start()
        try:
            yield [a, b]
        finally:
            b.stop()
    finally:
        stop_server(a)


def test_two_nodes_delete_each_object_once_and_lose_no_later_write(pair: list[CofferServer]) -> None:
    a, b = pair
    s3 = s3_client(a)
    bucket = new_bucket(s3, "nodes")
    keys = [f"k/{i:04d}" for i in range(KEYS)]
    rewritten = set(keys[::2])
    # Untagged rewrites are outside the rule: whether a rewrite lands before or after its key
    # was deleted, it must be there at the end with its new body.
    put_rules(
        s3, bucket, rule("tagged", Filter={"Tag": {"Key": "exp", "Value": "1"}}, Expiration={"Days": 1})
    )
    put_all(s3, bucket, keys, b"v1", "exp=1")
    writer = threading.Thread(
        target=put_all, args=(s3_client(b), bucket, sorted(rewritten), b"v2", ""), daemon=True
    )
    writer.start()  # the rule matches every key about a second after it was written: they race
    writer.join(120)
    assert not writer.is_alive()

    def listed() -> set[str]:
        found: set[str] = set()
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            found |= {o["Key"] for o in page.get("Contents", [])}
        return found

    assert wait_for(lambda: listed() == rewritten, timeout=60, interval=0.5), len(listed())
    for key in sorted(rewritten)[::15]:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"v2"
    by_node = [node.audit("lifecycle_expired", from_log=True, bucket=bucket) for node in (a, b)]
    deleted = [e["key"] for events in by_node for e in events]
    assert len(deleted) == len(set(deleted)), "a key was deleted twice"
    assert set(keys) - rewritten <= set(deleted) <= set(keys)
    assert all(e["actor"] == "lifecycle" for events in by_node for e in events)
    assert sorted(e["key"] for e in expired(a, bucket)) == sorted(deleted)  # the shared trail agrees
    result = a.cli("admin", "usage", "verify", "--bucket", bucket, check=False)
    assert result.returncode == 0, result.stdout
