"""A node SIGKILLed mid-upload, behind nginx: the other nodes keep serving, the client's
retry through the load balancer succeeds, and no partial object is ever visible (the key
keeps its previous body, whole, until the retry commits)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support.cluster import Cluster
from tests.support.s3 import REGION, new_bucket, s3_client

SIZE = 16 << 20
CHUNK = 256 << 10


def slow_put(cluster: Cluster, key: dict[str, Any], bucket: str, name: str, body: bytes) -> httpx.Response:
    """PUT through nginx with an unsigned payload sent at about 2.5 MiB/s, so it is still
    streaming when the node is killed."""
    url = f"{cluster.s3_url}/{bucket}/{name}"
    headers = {"Content-Length": str(len(body)), "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    request = AWSRequest(method="PUT", url=url, headers=headers)
    signer = S3SigV4Auth(Credentials(key["accessKeyId"], key["secretKey"]), "s3", REGION)
    signer.payload = lambda _request: "UNSIGNED-PAYLOAD"
    signer.add_auth(request)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), CHUNK):
            yield body[i : i + CHUNK]
            time.sleep(0.1)

    signed = {k: v for k, v in request.headers.items()}
    return httpx.put(url, content=chunks(), headers=signed, timeout=60)


def writing_node(cluster: Cluster, deadline: float) -> int:
    """The node one of whose workers holds a growing blob temp file open: the one the upload reached."""
    tmp = str(cluster.data_dir / "blobs" / ".tmp")
    while time.monotonic() < deadline:
        for i, node in enumerate(cluster.nodes):
            assert node.proc is not None
            for proc in psutil.Process(node.proc.pid).children(recursive=True):
                try:
                    # the slow upload's temp file, not a small background PUT's
                    if any(
                        f.path.startswith(tmp) and os.path.getsize(f.path) > 1 << 20
                        for f in proc.open_files()
                    ):
                        return i
                except (psutil.Error, FileNotFoundError):
                    continue
        time.sleep(0.05)
    raise AssertionError("no node is writing the upload")


def test_a_node_killed_mid_upload(cluster: Cluster) -> None:
    key = cluster.front.mint_key()
    client = s3_client(cluster.front, key)
    bucket = new_bucket(client, "kill")
    old = os.urandom(1000)
    client.put_object(Bucket=bucket, Key="obj", Body=old)
    new = os.urandom(SIZE)

    # Background traffic through nginx all along.
    stop = threading.Event()
    seen: list[tuple[float, str]] = []

    def traffic() -> None:
        c = s3_client(cluster.front, key)
        i = 0
        while not stop.is_set():
            i += 1
            try:
                c.put_object(Bucket=bucket, Key=f"bg/{i}", Body=b"x" * 100)
                assert c.get_object(Bucket=bucket, Key=f"bg/{i}")["Body"].read() == b"x" * 100
                seen.append((time.monotonic(), "ok"))
            except Exception as exc:
                seen.append((time.monotonic(), type(exc).__name__))

    background = threading.Thread(target=traffic)
    background.start()
    outcome: dict[str, Any] = {}
    upload = threading.Thread(target=lambda: outcome.update(r=_attempt(cluster, key, bucket, new)))
    upload.start()
    try:
        victim = writing_node(cluster, time.monotonic() + 20)
        time.sleep(0.5)
        cluster.kill(victim)
        killed = time.monotonic()
        upload.join(60)
        first = outcome["r"]
        assert first != 200, "the upload finished before its node was killed; make SIZE larger"
        # No partial object: the key still has its old body, whole, through every node.
        for _ in range(4):
            assert client.get_object(Bucket=bucket, Key="obj")["Body"].read() == old
        # The client's retry through the load balancer lands on a live node and succeeds.
        retried = slow_put(cluster, key, bucket, "obj", new)
        assert retried.status_code == 200, retried.text
        got = client.get_object(Bucket=bucket, Key="obj")["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(new).digest()
        time.sleep(1)
    finally:
        stop.set()
        background.join(60)
    # The other nodes kept serving: past the moment of the kill (requests then in flight on
    # the victim may fail), every background request succeeded.
    after = [outcome for t, outcome in seen if t > killed + 1]
    assert after and all(o == "ok" for o in after), after
    print(f"first attempt answered {first}; {len(after)} requests served by the survivors afterwards")
    cluster.restart(victim)


def _attempt(cluster: Cluster, key: dict[str, Any], bucket: str, body: bytes) -> int | str:
    try:
        return slow_put(cluster, key, bucket, "obj", body).status_code
    except httpx.HTTPError as exc:
        return type(exc).__name__
