"""A policy edit reaches every worker on the very next request, and every node.

Each worker process keeps its own compiled policies. The first test holds S3 connections
pinned to each of the two workers (it asks the kernel which process owns each one),
warms every cache, edits the organization's policies through the control plane and
sends the next request on every held connection; the second does the same over fresh
connections, many times. On PostgreSQL a second node with its own data directory
shares only the database: it learns of edits through NOTIFY (or its poll of the change
counter), so it is held to that bound rather than to the next request.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support.api import wait_for
from tests.support.harness import CofferServer, connection_owner, worker_processes
from tests.support.policies import delete, ensure_ok, policy, statement
from tests.support.s3 import REGION, s3_client, unique

POLL_SECONDS = 0.5
BOUND = 10 * POLL_SECONDS + 5  # a correctness bound for another node, not a speed measurement


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {"workers": 2, "env": {"COFFER_CACHE_POLL_SECONDS": str(POLL_SECONDS)}}


@pytest.fixture(scope="module")
def setup(server: CofferServer) -> tuple[dict[str, Any], str]:
    key = server.mint_key(duration=0)
    bucket = unique("prop")
    s3 = s3_client(server, key)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    return key, bucket


def send(client: httpx.Client, base: str, key: dict[str, Any], path: str) -> httpx.Response:
    """A SigV4-signed GET (botocore's signer) sent on `client`'s connection."""
    request = AWSRequest(method="GET", url=base + path, data=b"")
    S3SigV4Auth(Credentials(key["accessKeyId"], key["secretKey"]), "s3", REGION).add_auth(request)
    return client.get(base + path, headers=dict(request.prepare().headers.items()))


def get(client: httpx.Client, base: str, key: dict[str, Any], path: str) -> int:
    return send(client, base, key, path).status_code


def deny_k(bucket: str) -> dict[str, Any]:
    """Refuses reading `k` and listing the bucket (the other node has no blobs: it only lists)."""
    return policy(
        "deny-k",
        statement("no-k", ["s3:GetObject", "s3:ListBucket"], [f"{bucket}/k", bucket], ["*"], effect="Deny"),
    )


def test_every_worker_honours_an_edit_on_its_next_request(
    server: CofferServer, setup: tuple[dict[str, Any], str]
) -> None:
    key, bucket = setup
    procs = worker_processes(server, server.s3_port)
    assert len(procs) == 2
    held: dict[int, httpx.Client] = {}
    spare: list[httpx.Client] = []
    try:
        for _ in range(60):
            if len(held) == len(procs):
                break
            client = httpx.Client(timeout=30)
            r = send(client, server.s3_url, key, f"/{bucket}/k")
            assert r.status_code == 200  # this also warms that worker's caches
            pid = connection_owner(
                procs, server.s3_port, r.extensions["network_stream"].get_extra_info("client_addr")[1]
            )
            if pid is not None and pid not in held:
                held[pid] = client
            else:
                spare.append(client)
        assert len(held) == 2, "could not reach both workers"
        for _ in range(3):
            ensure_ok(server, deny_k(bucket))
            assert [get(c, server.s3_url, key, f"/{bucket}/k") for c in held.values()] == [403, 403]
            assert delete(server, "deny-k").status_code == 200
            assert [get(c, server.s3_url, key, f"/{bucket}/k") for c in held.values()] == [200, 200]
    finally:
        for client in [*held.values(), *spare]:
            client.close()


def test_fresh_connections_see_every_edit(server: CofferServer, setup: tuple[dict[str, Any], str]) -> None:
    key, bucket = setup
    for _ in range(8):
        ensure_ok(server, deny_k(bucket))
        with httpx.Client(timeout=30) as c:
            assert get(c, server.s3_url, key, f"/{bucket}/k") == 403
        assert delete(server, "deny-k").status_code == 200
        with httpx.Client(timeout=30) as c:
            assert get(c, server.s3_url, key, f"/{bucket}/k") == 200


def test_another_node_follows_within_the_notification_bound(
    server: CofferServer,
    setup: tuple[dict[str, Any], str],
    backend: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    if backend != "postgres":
        pytest.skip("several nodes share a PostgreSQL database")
    key, bucket = setup
    master_key = (server.data_dir / "master.key").read_text().strip()
    other = CofferServer(
        data_dir=tmp_path_factory.mktemp("coffer-node-b") / "data",
        database_url=server.database_url,
        env={"COFFER_MASTER_KEY": master_key, "COFFER_CACHE_POLL_SECONDS": str(POLL_SECONDS)},
    ).start()
    # Node B shares the database, not the data directory: it lists (metadata), it does not serve blobs.
    try:
        with httpx.Client(timeout=30) as c:
            assert get(c, other.s3_url, key, f"/{bucket}") == 200
            ensure_ok(server, deny_k(bucket))  # through node A's control plane
            assert wait_for(lambda: get(c, other.s3_url, key, f"/{bucket}") == 403, timeout=BOUND)
            assert delete(other, "deny-k", token=server.admin_token).status_code == 200  # through node B
            assert get(c, other.s3_url, key, f"/{bucket}") == 200
            assert wait_for(lambda: get(c, server.s3_url, key, f"/{bucket}/k") == 200, timeout=BOUND)
    finally:
        other.stop()
