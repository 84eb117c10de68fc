"""Usage end to end: a real server, boto3 writes of every kind, the counters GetBucketInfo
reports against what the rows add up to (`coffer admin usage verify`), and SIGKILLs in the
middle of writes of every kind leaving no drift."""

from __future__ import annotations

import io
import json
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from coffer.config import normalize_database_url
from coffer.store.db import Database
from coffer.store.schema import bucket_usage
from tests.support.harness import CofferServer
from tests.support.s3 import new_bucket, s3_client

MIB = 1 << 20


def usage(server: CofferServer, bucket: str) -> dict[str, int]:
    """GetBucketInfo's usage, by measurement type, after `coffer admin usage verify` found
    the counters equal to the rows' recomputation."""
    verified = json.loads(server.cli("admin", "usage", "verify", "--bucket", bucket, "--json").stdout)
    assert verified["drift"] == [] and verified["checked"] == 1
    with server.api() as c:
        r = c.get(f"/v1/cwobject/bucket-info/{bucket}")
    assert r.status_code == 200, r.text
    return {u["measurementType"]: int(u["value"]) for u in r.json()["info"]["usage"]}


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


def test_usage_follows_puts_overwrites_and_deletes(server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3, "usage")
    assert nonzero(usage(server, bucket)) == {}
    s3.put_object(Bucket=bucket, Key="a", Body=b"x" * 1000)
    s3.put_object(Bucket=bucket, Key="b", Body=b"y" * 24)
    assert nonzero(usage(server, bucket)) == {
        "STANDARD_BYTES": 1024,
        "STANDARD_OBJECTS": 2,
        "TOTAL_BYTES": 1024,
    }
    s3.put_object(Bucket=bucket, Key="a", Body=b"z" * 10, StorageClass="STANDARD_IA")  # overwrite + class
    s3.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "b"})
    assert nonzero(usage(server, bucket)) == {
        "STANDARD_BYTES": 48,
        "STANDARD_OBJECTS": 2,
        "STANDARD_IA_BYTES": 10,
        "STANDARD_IA_OBJECTS": 1,
        "TOTAL_BYTES": 58,
    }
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "none"}]})
    assert nonzero(usage(server, bucket)) == {"STANDARD_BYTES": 24, "STANDARD_OBJECTS": 1, "TOTAL_BYTES": 24}


def test_usage_follows_versions_and_delete_markers(server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3, "usage-v", versioned=True)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"1" * 100)["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"2" * 50)
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    assert nonzero(usage(server, bucket)) == {
        "STANDARD_NONCURRENT_BYTES": 150,
        "STANDARD_NONCURRENT_OBJECTS": 2,
        "STANDARD_DELETE_MARKERS": 1,
        "TOTAL_BYTES": 150,
    }
    s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)  # the newest version is current again
    s3.delete_object(Bucket=bucket, Key="k", VersionId=v1)
    assert nonzero(usage(server, bucket)) == {"STANDARD_BYTES": 50, "STANDARD_OBJECTS": 1, "TOTAL_BYTES": 50}
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"3" * 7)  # a null version over the kept one
    s3.put_object(Bucket=bucket, Key="k", Body=b"4" * 9)  # replaces the null version
    assert nonzero(usage(server, bucket)) == {
        "STANDARD_BYTES": 9,
        "STANDARD_OBJECTS": 1,
        "STANDARD_NONCURRENT_BYTES": 50,
        "STANDARD_NONCURRENT_OBJECTS": 1,
        "TOTAL_BYTES": 59,
    }


def test_usage_follows_multipart_uploads(server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3, "usage-mp")
    done = s3.create_multipart_upload(Bucket=bucket, Key="done")["UploadId"]
    dropped = s3.create_multipart_upload(Bucket=bucket, Key="dropped")["UploadId"]
    parts = []
    for n, size in ((1, 5 * MIB), (2, 1000)):
        etag = s3.upload_part(Bucket=bucket, Key="done", UploadId=done, PartNumber=n, Body=b"p" * size)[
            "ETag"
        ]
        parts.append({"PartNumber": n, "ETag": etag})
    s3.upload_part(Bucket=bucket, Key="done", UploadId=done, PartNumber=2, Body=b"q" * 10)  # replaced
    parts[1]["ETag"] = s3.upload_part(Bucket=bucket, Key="done", UploadId=done, PartNumber=2, Body=b"r" * 20)[
        "ETag"
    ]
    s3.upload_part(Bucket=bucket, Key="dropped", UploadId=dropped, PartNumber=1, Body=b"d" * 300)
    s3.put_object(Bucket=bucket, Key="src", Body=b"s" * 200)
    s3.upload_part_copy(
        Bucket=bucket,
        Key="dropped",
        UploadId=dropped,
        PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "src"},
    )
    assert nonzero(usage(server, bucket)) == {
        "STANDARD_BYTES": 200,
        "STANDARD_OBJECTS": 1,
        "INCOMPLETE_UPLOADS": 2,
        "INCOMPLETE_UPLOAD_BYTES": 5 * MIB + 20 + 300 + 200,
        "TOTAL_BYTES": 5 * MIB + 20 + 300 + 400,
    }
    s3.complete_multipart_upload(Bucket=bucket, Key="done", UploadId=done, MultipartUpload={"Parts": parts})
    s3.abort_multipart_upload(Bucket=bucket, Key="dropped", UploadId=dropped)
    assert nonzero(usage(server, bucket)) == {
        "STANDARD_BYTES": 5 * MIB + 220,
        "STANDARD_OBJECTS": 2,
        "TOTAL_BYTES": 5 * MIB + 220,
    }


def test_verify_reports_drift_exits_1_and_fix_repairs_it(server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3, "drift")
    s3.put_object(Bucket=bucket, Key="k", Body=b"x" * 10)
    url = server.database_url or f"sqlite:///{server.data_dir / 'coffer.db'}"
    db = Database(normalize_database_url(url))
    try:
        with db.write() as conn:  # what only a bug or a hand edit could do
            conn.execute(bucket_usage.update().where(bucket_usage.c.bucket == bucket).values(objects=7))
    finally:
        db.dispose()
    found = server.cli("admin", "usage", "verify", "--bucket", bucket, check=False)
    assert found.returncode == 1
    assert bucket in found.stdout and "objects" in found.stdout and "1 drifted" in found.stdout
    whole = json.loads(server.cli("admin", "usage", "verify", "--json", check=False).stdout)
    assert whole["drift"] == [
        {"bucket": bucket, "storageClass": "STANDARD", "counter": "objects", "stored": 7, "actual": 1}
    ]
    fixed = server.cli("admin", "usage", "verify", "--fix")
    assert fixed.stdout.strip().endswith("1 fixed")
    assert server.audit("usage_fixed")[-1]["buckets"] == [bucket]
    assert usage(server, bucket)["STANDARD_OBJECTS"] == 1
    missing = server.cli("admin", "usage", "verify", "--bucket", "no-such-bucket-here", check=False)
    assert missing.returncode != 0 and "bucket" in missing.stderr.lower()


# --- SIGKILL in the middle of writes -------------------------------------------------------------


class SlowBody(io.RawIOBase):
    """A body of `size` bytes that trickles out: still streaming when the kill comes."""

    def __init__(self, size: int) -> None:
        self.size, self.pos = size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), 64 << 10, self.size - self.pos)
        if n <= 0:
            return 0
        time.sleep(0.02)
        buffer[:n] = b"s" * n
        self.pos += n
        return n


def one_write(s3: Any, plain: str, versioned: str, rng: random.Random) -> None:
    """A random write of any kind, into either bucket."""
    bucket = rng.choice((plain, versioned))
    key = f"k{rng.randrange(6)}"
    roll = rng.random()
    if roll < 0.3:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x" * rng.choice((0, 10, 5000, 300_000)))
    elif roll < 0.4:
        s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": plain, "Key": "seed"})
    elif roll < 0.55:
        s3.delete_object(Bucket=bucket, Key=key)
    elif roll < 0.6:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"k{n}"} for n in range(3)]})
    elif roll < 0.7 and bucket == versioned:
        versions = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
        if versions:
            s3.delete_object(Bucket=bucket, Key=key, VersionId=rng.choice(versions)["VersionId"])
    else:
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        parts = []
        for n in range(1, rng.randint(1, 3) + 1):
            body = b"p" * (5 * MIB if n < 3 and rng.random() < 0.3 else 1000)
            etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=n, Body=body)["ETag"]
            parts.append({"PartNumber": n, "ETag": etag})
        fate = rng.random()
        if fate < 0.6:
            s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts[:1]}
            )
        elif fate < 0.85:
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)


@pytest.fixture
def crash_buckets(server: CofferServer, s3: Any) -> Iterator[tuple[str, str]]:
    plain, versioned = new_bucket(s3, "crash"), new_bucket(s3, "crash-v", versioned=True)
    s3.put_object(Bucket=plain, Key="seed", Body=b"seed" * 100)
    yield plain, versioned


@pytest.mark.slow
def test_sigkill_in_the_middle_of_writes_leaves_no_drift(
    server: CofferServer, key: dict[str, Any], crash_buckets: tuple[str, str]
) -> None:
    """Writers of every kind (puts, copies, deletes, version deletes, multi-object deletes,
    part uploads, completes, aborts) and two slow bodies mid-stream, SIGKILLed at a random
    moment, three times: after each restart every bucket's counters equal its rows."""
    plain, versioned = crash_buckets
    rng = random.Random()
    for _ in range(3):
        stop = threading.Event()
        done = [0]
        failures: list[BaseException] = []

        def writer(seed: int) -> None:
            s3, mine = s3_client(server, key), random.Random(seed)
            while not stop.is_set():
                try:
                    one_write(s3, plain, versioned, mine)
                    done[0] += 1
                except (ClientError, BotoCoreError) as exc:
                    if stop.is_set():
                        return
                    failures.append(exc)

        def slow(kind: str) -> None:
            s3 = s3_client(server, key)
            try:
                if kind == "put":
                    s3.put_object(Bucket=plain, Key="slow", Body=SlowBody(4 * MIB), ContentLength=4 * MIB)
                else:
                    upload = s3.create_multipart_upload(Bucket=versioned, Key="slow")["UploadId"]
                    s3.upload_part(
                        Bucket=versioned,
                        Key="slow",
                        UploadId=upload,
                        PartNumber=1,
                        Body=SlowBody(4 * MIB),
                        ContentLength=4 * MIB,
                    )
            except (ClientError, BotoCoreError):
                pass

        threads = [threading.Thread(target=writer, args=(rng.random(),)) for _ in range(4)]
        threads += [threading.Thread(target=slow, args=(kind,)) for kind in ("put", "part")]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while done[0] < 8 and time.monotonic() < deadline:  # the writers are under way
            time.sleep(0.05)
        time.sleep(rng.uniform(0.05, 1.0))
        server.kill()
        stop.set()
        for t in threads:
            t.join(60)
        server.start()
        result = server.cli("admin", "usage", "verify", check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip().endswith(" 0 drifted"), result.stdout
        assert done[0] > 0, failures[:3]
    for bucket in (plain, versioned):
        usage(server, bucket)
