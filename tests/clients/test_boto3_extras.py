"""boto3 paths the S3 suite does not take: the transfer manager on streams with eight
threads, and credentials that come from the API-token container-credentials exchange."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig

from tests.support.clients import client_env, run_cli
from tests.support.data import MIB, HashSink, PatternStream
from tests.support.harness import CofferServer
from tests.support.s3 import REGION, assert_s3_error, new_bucket, signed, unique


def test_transfer_manager_streams_64mib_with_eight_threads(boto: Any) -> None:
    bucket = new_bucket(boto, "xfer")
    config = TransferConfig(
        multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=8, use_threads=True
    )
    source = PatternStream(64 * MIB, seed=7)  # not seekable: parts are read in order, sent in parallel
    boto.upload_fileobj(source, bucket, "big/stream.bin", Config=config)
    assert source.pos == 64 * MIB
    head = boto.head_object(Bucket=bucket, Key="big/stream.bin")
    assert head["ContentLength"] == 64 * MIB
    assert head["ETag"].endswith('-8"'), head["ETag"]

    sink = HashSink()  # not seekable either: ranged GETs in parallel, written in order
    boto.download_fileobj(bucket, "big/stream.bin", sink, Config=config)
    assert sink.size == 64 * MIB
    assert sink.sha256.hexdigest() == source.sha256.hexdigest()

    # Part by part, as the manager wrote them.
    for number in (1, 8):
        part = boto.get_object(Bucket=bucket, Key="big/stream.bin", PartNumber=number)
        assert part["ContentLength"] == 8 * MIB and part["PartsCount"] == 8
        assert part["ContentRange"] == f"bytes {(number - 1) * 8 * MIB}-{number * 8 * MIB - 1}/{64 * MIB}"
        part["Body"].close()
    boto.delete_object(Bucket=bucket, Key="big/stream.bin")
    boto.delete_bucket(Bucket=bucket)


CONTAINER_SCRIPT = """
import json, sys
import boto3
from botocore.config import Config

endpoint, bucket, region = sys.argv[1:4]
session = boto3.session.Session()
credentials = session.get_credentials()
s3 = session.client(
    "s3",
    endpoint_url=endpoint,
    region_name=region,
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
)
tokens_sent = []
s3.meta.events.register(
    "before-send.s3.*",
    lambda request, **kw: tokens_sent.append(request.headers.get("x-amz-security-token") is not None),
)
s3.create_bucket(Bucket=bucket)
s3.put_object(Bucket=bucket, Key="from-container.txt", Body=b"written with container credentials")
listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
frozen = credentials.get_frozen_credentials()
print(json.dumps({
    "method": credentials.method,
    "accessKeyId": frozen.access_key,
    "secretKey": frozen.secret_key,
    "token": frozen.token,
    "listed": listed,
    "bucketListed": bucket in names,
    "tokensSent": tokens_sent,
}))
"""


def test_api_token_container_credentials(server: CofferServer, boto: Any, tmp_path: Path) -> None:
    """boto3 with no static keys at all: the container provider exchanges the API token for a
    temporary key with a session token, which every S3 request then carries."""
    bucket = unique("container")
    env = client_env(
        tmp_path / "home",
        AWS_CONTAINER_CREDENTIALS_FULL_URI=server.api_url + "/v1/cwobject/temporary-credentials/api-token",
        AWS_CONTAINER_AUTHORIZATION_TOKEN=f"Bearer {server.admin_token}",
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
    )
    done = run_cli([sys.executable, "-c", CONTAINER_SCRIPT, server.s3_url, bucket, REGION], env, timeout=120)
    out = json.loads(done.stdout)
    assert out["method"] == "container-role"
    assert out["token"]
    assert out["listed"] == ["from-container.txt"] and out["bucketListed"]
    assert out["tokensSent"] and all(out["tokensSent"])

    # The bucket belongs to the organization: a static key of the same org reads the object.
    body = boto.get_object(Bucket=bucket, Key="from-container.txt")["Body"].read()
    assert body == b"written with container credentials"
    with server.api() as api:
        info = api.get(f"/v1/cwobject/access-key/{out['accessKeyId']}").json()["info"]
    assert info["status"] == "ACTIVE" and info["expiry"] != "1970-01-01T00:00:00Z"

    # The key is bound to its session token: without it, or with another, it is refused.
    temp = {"accessKeyId": out["accessKeyId"], "secretKey": out["secretKey"]}
    assert_s3_error(signed(server, temp, "GET", f"/{bucket}"), 400, "InvalidToken")
    forged = signed(server, temp, "GET", f"/{bucket}", headers={"x-amz-security-token": out["token"] + "x"})
    assert_s3_error(forged, 400, "InvalidToken")
    ok = signed(server, temp, "GET", f"/{bucket}", headers={"x-amz-security-token": out["token"]})
    assert ok.status_code == 200, ok.text
