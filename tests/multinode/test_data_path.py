"""The S3 data path across three nodes behind nginx (tests.support.cluster), each case repeated
in a loop with random interleavings: a multipart upload spread over the nodes, racing PUTs of
one key, racing CreateBucket from two organizations, and a delete under a streaming reader.
Random choices come from one seeded generator; the seed is printed, so a failure can be rerun."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.exceptions import BotoCoreError, ClientError

from tests.support.cluster import Cluster
from tests.support.concurrency import at_once
from tests.support.policies import create_org, create_user, ensure_ok, policy, statement
from tests.support.s3 import client_error, localhost_subdomains, new_bucket, s3_client, unique

SEED = int(os.environ.get("COFFER_TEST_SEED", time.time_ns() % 1_000_000))
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def rng() -> random.Random:
    print(f"seed {SEED} (COFFER_TEST_SEED={SEED} reruns it)")
    return random.Random(SEED)


@pytest.fixture(scope="module")
def cluster_options() -> dict[str, Any]:
    return {"extra_args": ["--s3-domain", "localhost"]}  # virtual-hosted style too


@pytest.fixture(autouse=True)
def no_internal_errors(cluster: Cluster) -> Iterator[None]:
    """Whatever a test checks, no node answered 500 or logged an error meanwhile."""
    before = len(cluster.internal_errors())
    yield
    assert cluster.internal_errors()[before:] == []


@pytest.fixture(scope="module")
def key(cluster: Cluster) -> dict[str, Any]:
    return cluster.front.mint_key()


@pytest.fixture(scope="module")
def direct(cluster: Cluster, key: dict[str, Any]) -> list[Any]:
    """One boto3 client per node, on its own address."""
    return [s3_client(node, key) for node in cluster.nodes]


def test_nginx_spreads_one_clients_requests_over_every_node(cluster: Cluster, key: dict[str, Any]) -> None:
    client = s3_client(cluster.front, key)
    marker = unique("spread")
    for _ in range(9):
        client.list_buckets(Prefix=marker)
    log = (cluster.balancer.work / "access.log").read_text().splitlines()
    used = {line.split()[-2] for line in log if marker in line}
    assert used == {f"127.0.0.1:{n.s3_port}" for n in cluster.nodes}, log[-9:]


def test_virtual_hosted_style_and_presigned_urls_through_the_balancer(
    cluster: Cluster, key: dict[str, Any]
) -> None:
    """nginx passes the Host header on as the client sent it (port and bucket name), which
    SigV4 signs and virtual-hosted addressing reads the bucket from."""
    with localhost_subdomains():
        client = s3_client(cluster.front, key, addressing_style="virtual")
        bucket = new_bucket(client, "vhost")
        for i in range(4):  # round robin: every node checks a signature over nginx's Host
            client.put_object(Bucket=bucket, Key=f"k{i}", Body=b"v" * i)
            assert client.get_object(Bucket=bucket, Key=f"k{i}")["Body"].read() == b"v" * i
        url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k3"})
        for _ in range(3):
            r = httpx.get(url, timeout=30)
            assert r.status_code == 200 and r.content == b"vvv", r.text
    log = (cluster.balancer.work / "access.log").read_text()
    assert "/k3?X-Amz-" in log  # the presigned GETs went through nginx


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_multipart_upload_spread_over_the_nodes(direct: list[Any], rng: random.Random) -> None:
    bucket = new_bucket(direct[0], "mpu")
    for round_ in range(6):
        key = f"mpu-{round_}"
        create, complete = rng.sample(range(3), 2)
        upload = direct[create].create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        count = rng.randint(2, 3)
        bodies = [os.urandom(5 * MIB) for _ in range(count - 1)] + [os.urandom(rng.randint(1, 300_000))]
        senders = [rng.randrange(3) for _ in range(count)]
        if len(set(senders)) == 1:
            senders[0] = (senders[0] + 1) % 3  # parts through at least two nodes

        def part(i: int, senders: list[int] = senders, bodies: list[bytes] = bodies, key: str = key) -> str:
            r = direct[senders[i]].upload_part(
                Bucket=bucket, Key=key, UploadId=upload, PartNumber=i + 1, Body=bodies[i]
            )
            return str(r["ETag"])

        etags = at_once(count, part)
        expected = [(i + 1, etags[i], len(bodies[i])) for i in range(count)]
        for node, client in enumerate(direct):
            parts = client.list_parts(Bucket=bucket, Key=key, UploadId=upload)["Parts"]
            assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == expected, (round_, node)
            uploads = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
            assert [(u["Key"], u["UploadId"]) for u in uploads] == [(key, upload)], (round_, node)
        direct[complete].complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e, _ in expected]},
        )
        whole = b"".join(bodies)
        for node, client in enumerate(direct):
            assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == whole, (round_, node)
            assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == [], (round_, node)


def racing_puts(
    direct: list[Any], bucket: str, key: str, rng: random.Random
) -> tuple[list[bytes], list[Any]]:
    """Three PUTs of `key`, one through each node, released together; each body of its own
    size and bytes, with its writer in the metadata and its SHA-256 as the checksum."""
    bodies = [os.urandom(rng.randint(1, 2 * MIB)) for _ in range(3)]

    def put(i: int) -> Any:
        return direct[i].put_object(
            Bucket=bucket,
            Key=key,
            Body=bodies[i],
            Metadata={"writer": str(i), "sha": hashlib.sha256(bodies[i]).hexdigest()},
            ChecksumSHA256=sha256_b64(bodies[i]),
        )

    return bodies, at_once(3, put)


def test_multipart_upload_through_the_balancer(cluster: Cluster, key: dict[str, Any]) -> None:
    """One client through nginx: its calls of one upload reach several nodes, and a streamed
    part passes unbuffered (boto3 sends it with `Expect: 100-continue`)."""
    client = s3_client(cluster.front, key)
    bucket = new_bucket(client, "mpu-lb")
    upload = client.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    bodies = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(1000)]
    parts = [
        {
            "PartNumber": n,
            "ETag": client.upload_part(Bucket=bucket, Key="k", UploadId=upload, PartNumber=n, Body=b)["ETag"],
        }
        for n, b in enumerate(bodies, 1)
    ]
    assert len(client.list_parts(Bucket=bucket, Key="k", UploadId=upload)["Parts"]) == 3
    client.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"".join(bodies)
    log = (cluster.balancer.work / "access.log").read_text().splitlines()
    used = {
        line.split()[-2] for line in log if f"uploadId={upload}" in line or f"/{bucket}/k?uploads" in line
    }
    assert len(used) >= 2, used


def test_concurrent_puts_of_one_key_leave_one_whole_body(direct: list[Any], rng: random.Random) -> None:
    bucket = new_bucket(direct[0], "race")
    for round_ in range(12):
        key = f"k-{round_}"
        bodies, _ = racing_puts(direct, bucket, key, rng)
        seen = set()
        for node, client in enumerate(direct):
            got = client.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
            body = got["Body"].read()
            writer = int(got["Metadata"]["writer"])
            assert body == bodies[writer], (round_, node, writer)
            assert got["Metadata"]["sha"] == hashlib.sha256(body).hexdigest()
            assert got["ChecksumSHA256"] == sha256_b64(body)
            assert got["ETag"].strip('"') == hashlib.md5(body).hexdigest()
            seen.add(writer)
        assert len(seen) == 1, (round_, seen)  # every node serves the same winner


def test_concurrent_puts_with_versioning_keep_every_acknowledged_version(
    direct: list[Any], rng: random.Random
) -> None:
    bucket = new_bucket(direct[0], "race-v", versioned=True)
    for round_ in range(10):
        key = f"k-{round_}"
        bodies, acks = racing_puts(direct, bucket, key, rng)
        ids = [a["VersionId"] for a in acks]
        assert len(set(ids)) == 3, ids
        client = direct[rng.randrange(3)]
        versions = client.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]
        assert sorted(v["VersionId"] for v in versions) == sorted(ids), round_
        latest = [v["VersionId"] for v in versions if v["IsLatest"]]
        assert len(latest) == 1 and latest[0] in ids
        for i, version in enumerate(ids):
            got = direct[rng.randrange(3)].get_object(Bucket=bucket, Key=key, VersionId=version)
            assert got["Body"].read() == bodies[i], (round_, i)
            assert got["Metadata"]["writer"] == str(i)
        current = direct[rng.randrange(3)].get_object(Bucket=bucket, Key=key)
        assert current["VersionId"] == latest[0]


def test_concurrent_create_bucket_from_two_organizations(cluster: Cluster, key: dict[str, Any]) -> None:
    front = cluster.front
    principal, token = create_user(front, "other-admin", org=create_org(front), admin=True)
    ensure_ok(front, policy("s3", statement("all-s3", ["s3:*"], ["*"], [principal])), token)
    other = front.mint_key(token)
    pairs = [(0, key), (1, other), (2, key)]  # (node, key): the organizations on different nodes
    for round_ in range(15):
        name = unique("contest")
        order = random.Random(SEED + round_).sample(pairs, 2)
        if order[0][1] is order[1][1]:
            order = [pairs[0], pairs[1]]
        clients = [s3_client(cluster.nodes[n], k) for n, k in order]

        def create(i: int, clients: list[Any] = clients, name: str = name) -> Any:
            try:
                clients[i].create_bucket(Bucket=name)
                return "won"
            except ClientError as exc:
                return client_error(exc)

        results = at_once(2, create)
        assert sorted(map(str, results)) == sorted(["won", str((409, "BucketAlreadyExists"))]), results
        winner = clients[results.index("won")]
        loser = clients[1 - results.index("won")]
        winner.head_bucket(Bucket=name)
        with pytest.raises(ClientError) as refused:
            loser.head_bucket(Bucket=name)
        assert client_error(refused.value)[0] == 403


def slow_read(
    client: Any, bucket: str, key: str, got: dict[str, Any], started: threading.Event, wait: float
) -> None:
    """GET `key` after `wait` seconds, reading its body slowly; into `got`: the body, the S3
    error, or the stream cut short (a clean error too); `started` once the head is in."""
    time.sleep(wait)
    try:
        resp = client.get_object(Bucket=bucket, Key=key)
        started.set()
        chunks = []
        while chunk := resp["Body"].read(64 * 1024):
            chunks.append(chunk)
            time.sleep(0.001)  # a slow reader: the delete lands mid-stream
        got["body"] = b"".join(chunks)
    except ClientError as exc:
        got["error"] = client_error(exc)
    except BotoCoreError as exc:
        got["cut"] = repr(exc)
    finally:
        started.set()


def test_delete_while_another_node_streams_the_object(direct: list[Any], rng: random.Random) -> None:
    """The reader gets the whole old body or a clean error, never a mix, however the delete
    falls: before the GET, between its head and its body, or mid-stream."""
    bucket = new_bucket(direct[0], "del")
    outcomes: dict[str, int] = {}
    for round_ in range(12):
        key = f"k-{round_}"
        old = os.urandom(rng.randint(2, 6) * MIB)
        direct[rng.randrange(3)].put_object(Bucket=bucket, Key=key, Body=old)
        reader, deleter = rng.sample(range(3), 2)
        delay = rng.choice([0.0, 0.005, 0.02, 0.1])
        started = threading.Event()
        got: dict[str, Any] = {}

        args = (direct[reader], bucket, key, got, started, rng.choice([0.0, 0.002, 0.01]))
        thread = threading.Thread(target=slow_read, args=args)
        thread.start()
        if delay:
            started.wait(10)
            time.sleep(delay)
        direct[deleter].delete_object(Bucket=bucket, Key=key)
        thread.join(60)
        assert not thread.is_alive()
        if "body" in got:
            assert got["body"] == old, (round_, len(got["body"]), len(old))
            outcomes["whole"] = outcomes.get("whole", 0) + 1
        elif "error" in got:
            assert got["error"] == (404, "NoSuchKey"), got
            outcomes["404"] = outcomes.get("404", 0) + 1
        else:
            outcomes["cut"] = outcomes.get("cut", 0) + 1
        for client in direct:
            with pytest.raises(ClientError) as gone:
                client.head_object(Bucket=bucket, Key=key)
            assert client_error(gone.value)[0] == 404
    print("delete under a reader:", outcomes)
    assert outcomes.get("whole", 0) >= 1  # a GET begun before the delete keeps its body
