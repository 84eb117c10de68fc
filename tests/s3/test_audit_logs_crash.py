"""kill -9 between an event and its flush loses no audit-log event.

A two-worker server with an hour-long flush interval records control-plane events (keys
minted) and data-plane events (objects put and read) into its workers' spools; every
process of the server is then SIGKILLed, so no flush (not even the shutdown one) runs.
After a restart the spools are replayed into the bucket: every event is there, once. And a
graceful stop (SIGTERM) flushes every worker's spool before it exits.
"""

from __future__ import annotations

import time
from typing import Any

import psutil
import pytest

from tests.support.auditlogs import (
    CONTROL,
    DATA,
    audit_records,
    logged_bucket,
    set_org_logging,
    wait_for_records,
)
from tests.support.harness import CofferServer
from tests.support.policies import org_of
from tests.support.s3 import s3_client, unique

pytestmark = pytest.mark.slow

EVENTS = 20


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {"workers": 2, "extra_args": ["--audit-flush-seconds", "3600"]}


def kill_everything(server: CofferServer) -> None:
    """SIGKILL the workers and their supervisor: nobody gets to flush."""
    assert server.proc is not None
    workers = psutil.Process(server.proc.pid).children(recursive=True)
    for worker in workers:
        worker.kill()
    server.kill()
    psutil.wait_procs(workers, timeout=10)


def spooled_bytes(server: CofferServer) -> int:
    root = server.data_dir / "audit-spool"
    return sum(p.stat().st_size for p in root.rglob("*.jsonl")) if root.exists() else 0


def test_sigkill_before_the_flush_loses_nothing(server: CofferServer) -> None:
    owner, s3, org, bucket = logged_bucket(server, "crash-owner", "crash-audit")

    keys = [str(server.mint_key(name=unique("k"))["accessKeyId"]) for _ in range(EVENTS)]
    requests = []
    for i in range(EVENTS):
        put = s3.put_object(Bucket=bucket, Key=f"o{i}", Body=b"x" * i)
        got = s3.get_object(Bucket=bucket, Key=f"o{i}")
        requests += [put["ResponseMetadata"]["RequestId"], got["ResponseMetadata"]["RequestId"]]
    # Fresh connections land on either worker: both spools hold events.
    time.sleep(0.5)
    assert spooled_bytes(server) > 0
    assert audit_records(s3, org, CONTROL) == [] and audit_records(s3, org, DATA) == []

    kill_everything(server)
    server.start()
    s3 = s3_client(server, owner)

    control = wait_for_records(s3, org, CONTROL, lambda rs: set(keys) <= {r["identifier"] for r in rs})
    data = wait_for_records(s3, org, DATA, lambda rs: set(requests) <= {r["requestId"] for r in rs})
    minted = [r["identifier"] for r in control if r["event"] == "access_key_minted"]
    assert sorted(k for k in minted if k in keys) == sorted(keys), "each key minted once"
    seen = [r["requestId"] for r in data if r["requestId"] in requests]
    assert sorted(seen) == sorted(requests), "each request once"
    # The replayed spool segments are gone once their objects are written.
    deadline = time.monotonic() + 10
    while spooled_bytes(server) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert spooled_bytes(server) == 0


def test_a_graceful_stop_flushes(server: CofferServer) -> None:
    """SIGTERM: each worker's last flush empties its spool before it exits."""
    owner = server.mint_key(name="stop-owner")
    org = org_of(server, owner)
    set_org_logging(server, control=True)
    keys = [str(server.mint_key(name=unique("k"))["accessKeyId"]) for _ in range(5)]
    assert spooled_bytes(server) > 0
    server.stop()
    assert spooled_bytes(server) == 0, "flushed at shutdown, not left for the next start"
    server.start()
    s3 = s3_client(server, owner)
    wait_for_records(s3, org, CONTROL, lambda rs: set(keys) <= {r["identifier"] for r in rs}, timeout=5)
