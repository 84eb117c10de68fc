"""Virtual-hosted-style addressing and CoreWeave strict mode, on a dedicated server started
with `--s3-domain localhost --strict-coreweave --access-log`.

`<bucket>.localhost` is resolved to 127.0.0.1 inside this test process (see
`localhost_subdomains` in tests.support.s3): the clients still use real sockets and send
`Host: <bucket>.localhost:<port>`, which is what the server routes on.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from tests.support.harness import CofferServer
from tests.support.s3 import client_error, s3_client, unique

ZONE = "US-EAST-04A"


pytestmark = pytest.mark.usefixtures("subdomains_resolve")


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {"extra_args": ["--s3-domain", "localhost", "--strict-coreweave", "--access-log"]}


@pytest.fixture(scope="module")
def bucket(vs3: Any) -> str:
    name = unique("vh")
    vs3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": ZONE})
    return name


def test_virtual_hosted_roundtrip(vs3: Any, bucket: str) -> None:
    put = vs3.put_object(Bucket=bucket, Key="dir/a b.txt", Body=b"virtual")
    assert put["ETag"] == f'"{hashlib.md5(b"virtual").hexdigest()}"'
    assert vs3.get_object(Bucket=bucket, Key="dir/a b.txt")["Body"].read() == b"virtual"
    assert [o["Key"] for o in vs3.list_objects_v2(Bucket=bucket)["Contents"]] == ["dir/a b.txt"]
    assert vs3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == ZONE
    assert bucket in [b["Name"] for b in vs3.list_buckets()["Buckets"]]
    vs3.delete_object(Bucket=bucket, Key="dir/a b.txt")
    assert vs3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_host_header_carries_the_bucket(vs3: Any, bucket: str, server: CofferServer) -> None:
    seen: list[str] = []
    vs3.meta.events.register("before-send.s3.PutObject", lambda request, **_: seen.append(request.url))
    vs3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert seen and seen[-1].startswith(f"http://{bucket}.localhost:{server.s3_port}/k")


def test_virtual_hosted_multipart(vs3: Any, bucket: str, tmp_path: Path) -> None:
    data = os.urandom(11 * 1024 * 1024)
    path = tmp_path / "mp.bin"
    path.write_bytes(data)
    cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    vs3.upload_file(str(path), bucket, "mp.bin", Config=cfg)
    assert vs3.get_object(Bucket=bucket, Key="mp.bin")["Body"].read() == data


def test_virtual_hosted_presigned(vs3: Any, bucket: str) -> None:
    put_url = vs3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre"}, ExpiresIn=60)
    assert put_url.startswith(f"http://{bucket}.localhost:")
    assert httpx.put(put_url, content=b"via presigned").status_code == 200
    get_url = vs3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre"}, ExpiresIn=60)
    r = httpx.get(get_url)
    assert r.status_code == 200 and r.content == b"via presigned"


def test_strict_mode_refuses_path_style(server: CofferServer, key: dict[str, Any], bucket: str) -> None:
    path_client = s3_client(server, key, addressing_style="path")
    with pytest.raises(ClientError) as err:
        path_client.list_objects_v2(Bucket=bucket)
    assert client_error(err.value) == (400, "InvalidRequest")
    assert "virtual-hosted" in err.value.response["Error"]["Message"]
    assert bucket not in str(err.value.response["Error"].get("BucketName", ""))
    # Requests without a bucket are not path-style: ListBuckets still works at the root.
    assert bucket in [b["Name"] for b in path_client.list_buckets()["Buckets"]]


def test_strict_mode_requires_location_constraint(vs3: Any) -> None:
    with pytest.raises(ClientError) as err:
        vs3.create_bucket(Bucket=unique("noloc"))
    assert client_error(err.value) == (400, "InvalidLocationConstraint")


def test_health_still_answers(server: CofferServer) -> None:
    assert httpx.get(server.s3_url + "/healthz").status_code == 200
    assert httpx.get(server.s3_url + "/_coffer/healthz").json() == {"status": "ok"}


def test_access_log_line_without_secrets(
    server: CofferServer, vs3: Any, bucket: str, key: dict[str, Any]
) -> None:
    vs3.put_object(Bucket=bucket, Key="logged", Body=b"12345")
    url = vs3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "logged"}, ExpiresIn=60)
    assert httpx.get(url).status_code == 200
    # The line is written once the response is out, so the client may get here first.
    for _ in range(100):
        lines = [json.loads(line) for line in server.log().splitlines() if '"logger":"coffer.access"' in line]
        puts = [e for e in lines if e.get("operation") == "PutObject" and e.get("key") == "logged"]
        gets = [e for e in lines if e.get("operation") == "GetObject" and e.get("key") == "logged"]
        if puts and gets:
            break
        time.sleep(0.05)
    assert len(puts) == 1 and len(gets) == 1  # one line per request, whichever middleware wrote it
    entry = gets[-1]
    assert entry["plane"] == "s3" and entry["path"] == "/logged"  # virtual-hosted: the bucket is the host
    assert entry["bucket"] == bucket and entry["status"] == 200 and entry["bytes"] == 5
    assert entry["access_key_id"] == key["accessKeyId"] and entry["duration_ms"] >= 0
    log = server.log()
    assert key["secretKey"] not in log
    assert "X-Amz-Signature" not in log and "Signature=" not in log
