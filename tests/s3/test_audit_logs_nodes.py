"""Several nodes on one PostgreSQL database write one organization's audit logs side by side.

Nodes A and B share the data directory (and so the spool directory of this host), node C
only the database: each process spools and flushes its own events under object keys of its
own, so every event arrives exactly once whichever node served it. (C's blobs are its own in
this set-up, where a real cluster shares them: an object C wrote is read back through C.)
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support.auditlogs import (
    CONTROL,
    DATA,
    audit_objects,
    logged_bucket,
    wait_for_records,
)
from tests.support.harness import CofferServer
from tests.support.s3 import s3_client

POLL_SECONDS = 0.2


@pytest.fixture(scope="module")
def nodes_options() -> dict[str, Any]:
    return {
        "extra_args": ["--audit-flush-seconds", "1"],
        "env": {"COFFER_CACHE_POLL_SECONDS": str(POLL_SECONDS)},
    }


def test_each_node_writes_its_own_objects(nodes: dict[str, CofferServer]) -> None:
    a = nodes["a"]
    owner, s3, org, bucket = logged_bucket(a, "nodes-owner", "nodes")
    time.sleep(POLL_SECONDS * 10)  # every node has seen the settings (docs/operations.md: caches)

    minted, requests = {}, {}
    for name, node in nodes.items():
        minted[name] = node.mint_key(token=a.admin_token, name=f"via-{name}")["accessKeyId"]
        put = s3_client(node, owner).put_object(Bucket=bucket, Key=name, Body=name.encode())
        requests[name] = put["ResponseMetadata"]["RequestId"]

    readers = [s3, s3_client(nodes["c"], owner)]
    control = wait_for_records(
        readers, org, CONTROL, lambda rs: set(minted.values()) <= {r["identifier"] for r in rs}
    )
    assert sorted(r["identifier"] for r in control if r["identifier"] in minted.values()) == sorted(
        minted.values()
    )
    wait_for_records(readers, org, DATA, lambda rs: set(requests.values()) <= {r["requestId"] for r in rs})
    written_by = {
        record["requestId"]: key
        for key, records in audit_objects(readers, org, DATA).items()
        for record in records
        if record["requestId"] in requests.values()
    }
    assert len(written_by) == 3
    assert len(set(written_by.values())) == 3, "one object per node: nobody overwrote another's"
