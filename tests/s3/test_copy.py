"""CopyObject and UploadPartCopy end to end."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.s3 import client_error, new_bucket, unique


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    return new_bucket(s3, "copy")


def test_copy_keeps_metadata_by_default(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"payload", ContentType="text/x-src", Metadata={"a": "1"})
    result = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert result["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"payload").hexdigest()}"'
    assert result["CopyObjectResult"]["LastModified"]
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == b"payload"
    assert got["ContentType"] == "text/x-src" and got["Metadata"] == {"a": "1"}


def test_copy_replace_metadata_and_across_buckets(s3: Any, bucket: str) -> None:
    other = new_bucket(s3, "copy2")
    s3.put_object(Bucket=bucket, Key="dir/src 1", Body=b"x" * 1000, Metadata={"old": "y"})
    s3.copy_object(
        Bucket=other,
        Key="copied",
        CopySource={"Bucket": bucket, "Key": "dir/src 1"},
        MetadataDirective="REPLACE",
        ContentType="application/x-new",
        Metadata={"new": "z"},
    )
    got = s3.get_object(Bucket=other, Key="copied")
    assert got["Body"].read() == b"x" * 1000
    assert got["Metadata"] == {"new": "z"} and got["ContentType"] == "application/x-new"


def test_copy_onto_itself(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="self", Body=b"me", Metadata={"v": "1"})
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"})
    assert client_error(err.value) == (400, "InvalidRequest")
    assert "copy an object to itself" in err.value.response["Error"]["Message"]
    s3.copy_object(
        Bucket=bucket,
        Key="self",
        CopySource={"Bucket": bucket, "Key": "self"},
        MetadataDirective="REPLACE",
        Metadata={"v": "2"},
    )
    assert s3.head_object(Bucket=bucket, Key="self")["Metadata"] == {"v": "2"}


def test_copy_source_conditionals(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"cond")["ETag"]
    modified = s3.head_object(Bucket=bucket, Key="c")["LastModified"]
    src = {"Bucket": bucket, "Key": "c"}
    s3.copy_object(Bucket=bucket, Key="c1", CopySource=src, CopySourceIfMatch=etag)
    s3.copy_object(Bucket=bucket, Key="c2", CopySource=src, CopySourceIfNoneMatch='"nope"')
    for kwargs in (
        {"CopySourceIfMatch": '"nope"'},
        {"CopySourceIfNoneMatch": etag},
        {"CopySourceIfModifiedSince": modified + timedelta(days=1)},
        {"CopySourceIfUnmodifiedSince": modified - timedelta(days=1)},
    ):
        with pytest.raises(ClientError) as err:
            s3.copy_object(Bucket=bucket, Key="c3", CopySource=src, **kwargs)
        assert client_error(err.value) == (412, "PreconditionFailed"), kwargs


def test_copy_missing_source(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "missing"})
    assert client_error(err.value) == (404, "NoSuchKey")
    with pytest.raises(ClientError) as err:
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": unique("none"), "Key": "k"})
    assert client_error(err.value) == (404, "NoSuchBucket")


def test_bad_metadata_directive(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="d", Body=b"d")
    with pytest.raises(ClientError) as err:
        s3.copy_object(
            Bucket=bucket,
            Key="d2",
            CopySource={"Bucket": bucket, "Key": "d"},
            MetadataDirective="MERGE",  # type: ignore[arg-type]
        )
    assert client_error(err.value) == (400, "InvalidArgument")


def test_upload_part_copy_with_ranges(s3: Any, bucket: str) -> None:
    part = 5 * 1024 * 1024
    data = bytes(range(256)) * (part * 2 // 256) + b"tail"
    s3.put_object(Bucket=bucket, Key="big-src", Body=data)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    src = {"Bucket": bucket, "Key": "big-src"}
    p1 = s3.upload_part_copy(
        Bucket=bucket, Key="assembled", UploadId=upload, PartNumber=1, CopySource=src,
        CopySourceRange=f"bytes=0-{part - 1}",
    )  # fmt: skip
    p2 = s3.upload_part_copy(
        Bucket=bucket, Key="assembled", UploadId=upload, PartNumber=2, CopySource=src,
        CopySourceRange=f"bytes={part}-{len(data) - 1}",
    )  # fmt: skip
    assert p1["CopyPartResult"]["ETag"] == f'"{hashlib.md5(data[:part]).hexdigest()}"'
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="assembled",
        UploadId=upload,
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"]},
                {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]},
            ]
        },
    )
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == data
    with pytest.raises(ClientError) as err:
        s3.upload_part_copy(
            Bucket=bucket, Key="assembled2", UploadId="nope", PartNumber=1, CopySource=src,
        )  # fmt: skip
    assert client_error(err.value) == (404, "NoSuchUpload")


def test_upload_part_copy_bad_range(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="small-src", Body=b"0123456789")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="r")["UploadId"]
    src = {"Bucket": bucket, "Key": "small-src"}
    with pytest.raises(ClientError) as err:
        s3.upload_part_copy(
            Bucket=bucket,
            Key="r",
            UploadId=upload,
            PartNumber=1,
            CopySource=src,
            CopySourceRange="bytes=5-100",
        )
    assert client_error(err.value) == (416, "InvalidRange")
    with pytest.raises(ClientError) as err:
        s3.upload_part_copy(
            Bucket=bucket, Key="r", UploadId=upload, PartNumber=1, CopySource=src, CopySourceRange="items=1-2"
        )
    assert client_error(err.value) == (400, "InvalidArgument")
    ok = s3.upload_part_copy(
        Bucket=bucket, Key="r", UploadId=upload, PartNumber=1, CopySource=src, CopySourceRange="bytes=2-4"
    )
    assert ok["CopyPartResult"]["ETag"] == f'"{hashlib.md5(b"234").hexdigest()}"'
    s3.abort_multipart_upload(Bucket=bucket, Key="r", UploadId=upload)
