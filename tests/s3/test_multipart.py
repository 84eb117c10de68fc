"""Multipart uploads end to end: boto3 upload_file with threads, the low-level calls, errors."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from tests.support.harness import CofferServer
from tests.support.s3 import assert_s3_error, client_error, new_bucket, signed

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    return new_bucket(s3, "mpu")


def test_upload_file_in_parallel_parts(s3: Any, bucket: str, tmp_path: Path) -> None:
    data = os.urandom(17 * MIB + 123)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=4)
    s3.upload_file(str(path), bucket, "big.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-4"')
    out = tmp_path / "out.bin"
    s3.download_file(bucket, "big.bin", str(out), Config=config)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
    part2 = s3.get_object(Bucket=bucket, Key="big.bin", PartNumber=2)
    assert part2["Body"].read() == data[5 * MIB : 10 * MIB]
    assert part2["PartsCount"] == 4 and part2["ContentRange"] == f"bytes {5 * MIB}-{10 * MIB - 1}/{len(data)}"


def test_low_level_flow_list_parts_and_uploads(s3: Any, bucket: str) -> None:
    created = s3.create_multipart_upload(
        Bucket=bucket, Key="low", ContentType="text/x-mp", Metadata={"m": "1"}
    )
    upload = created["UploadId"]
    assert created["Bucket"] == bucket and created["Key"] == "low"
    first = os.urandom(5 * MIB)
    p1 = s3.upload_part(Bucket=bucket, Key="low", UploadId=upload, PartNumber=1, Body=first)
    p2 = s3.upload_part(Bucket=bucket, Key="low", UploadId=upload, PartNumber=2, Body=b"last")
    assert p1["ETag"] == f'"{hashlib.md5(first).hexdigest()}"'
    parts = s3.list_parts(Bucket=bucket, Key="low", UploadId=upload)
    assert [(p["PartNumber"], p["Size"]) for p in parts["Parts"]] == [(1, 5 * MIB), (2, 4)]
    page = s3.list_parts(Bucket=bucket, Key="low", UploadId=upload, MaxParts=1)
    assert page["IsTruncated"] and page["NextPartNumberMarker"] == 1
    uploads = s3.list_multipart_uploads(Bucket=bucket)
    assert (upload, "low") in [(u["UploadId"], u["Key"]) for u in uploads["Uploads"]]
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="low",
        UploadId=upload,
        MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]
        },
    )
    assert done["ETag"].endswith('-2"') and done["Key"] == "low" and done["Bucket"] == bucket
    got = s3.get_object(Bucket=bucket, Key="low")
    assert got["Body"].read() == first + b"last"
    assert got["ContentType"] == "text/x-mp" and got["Metadata"] == {"m": "1"}
    assert upload not in [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def test_abort(s3: Any, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="ab")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="ab", UploadId=upload, PartNumber=1, Body=b"x")
    aborted = s3.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=upload)
    assert aborted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as err:
        s3.list_parts(Bucket=bucket, Key="ab", UploadId=upload)
    assert client_error(err.value) == (404, "NoSuchUpload")


@pytest.mark.parametrize("number", ["0", "10001", "abc"])
def test_bad_part_number(
    server: CofferServer, key: dict[str, Any], s3: Any, bucket: str, number: str
) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="pn")["UploadId"]
    r = signed(server, key, "PUT", f"/{bucket}/pn", query=f"partNumber={number}&uploadId={upload}", body=b"x")
    assert_s3_error(r, 400, "InvalidArgument")


def test_unknown_upload(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.upload_part(Bucket=bucket, Key="k", UploadId="no-such-upload", PartNumber=1, Body=b"x")
    assert client_error(err.value) == (404, "NoSuchUpload")


def test_complete_errors(server: CofferServer, key: dict[str, Any], s3: Any, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="ce")["UploadId"]
    small = s3.upload_part(Bucket=bucket, Key="ce", UploadId=upload, PartNumber=1, Body=b"small")
    last = s3.upload_part(Bucket=bucket, Key="ce", UploadId=upload, PartNumber=2, Body=b"last")
    cases = [
        ([{"PartNumber": 1, "ETag": '"0000"'}], "InvalidPart"),
        (
            [{"PartNumber": 2, "ETag": last["ETag"]}, {"PartNumber": 1, "ETag": small["ETag"]}],
            "InvalidPartOrder",
        ),
        (
            [{"PartNumber": 1, "ETag": small["ETag"]}, {"PartNumber": 2, "ETag": last["ETag"]}],
            "EntityTooSmall",
        ),
    ]
    for parts, code in cases:
        with pytest.raises(ClientError) as err:
            s3.complete_multipart_upload(
                Bucket=bucket, Key="ce", UploadId=upload, MultipartUpload={"Parts": parts}
            )
        assert client_error(err.value) == (400, code)
    for body in (b"<CompleteMultipartUpload></CompleteMultipartUpload>", b"<CompleteMultipartUpload><Part>"):
        r = signed(server, key, "POST", f"/{bucket}/ce", query=f"uploadId={upload}", body=body)
        assert_s3_error(r, 400, "MalformedXML")
    single = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="ce",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": small["ETag"]}]},
    )
    assert single["ETag"].endswith('-1"')
    assert s3.get_object(Bucket=bucket, Key="ce")["Body"].read() == b"small"
