"""Multipart behaviours SDKs and tools rely on, as AWS answers them: a retried
CompleteMultipartUpload, the checksum type of multipart objects, and GetObject / HeadObject
of one part (`partNumber`); boto3, and curl where the SDK hides the wire."""

from __future__ import annotations

import base64
import hashlib
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError

from coffer.config import normalize_database_url
from coffer.storage.rules import COMPLETED_UPLOAD_RETENTION
from coffer.store.schema import completed_uploads
from tests.s3.conditional import completion, refused
from tests.support.concurrency import at_once
from tests.support.curl import Curl
from tests.support.harness import CofferServer
from tests.support.s3 import NS, bucket_fixture, client_error

MIB = 1024 * 1024
FIRST = hashlib.sha256(b"first").digest() * (5 * MIB // 32)  # a full 5 MiB part
LAST = b"the last part"


bucket = bucket_fixture("bucket", "mpc")
versioned = bucket_fixture("versioned", "mpcv", versioned=True)


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def two_parts(s3: Any, bucket: str, key: str, **create: Any) -> tuple[str, list[dict[str, Any]]]:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    parts = []
    for number, data in ((1, FIRST), (2, LAST)):
        extra = {"ChecksumAlgorithm": create["ChecksumAlgorithm"]} if "ChecksumAlgorithm" in create else {}
        done = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data, **extra
        )
        part = {"PartNumber": number, "ETag": done["ETag"]}
        part.update({k: v for k, v in done.items() if k.startswith("Checksum") and k != "ChecksumType"})
        parts.append(part)
    return upload_id, parts


# --- a retried CompleteMultipartUpload ---------------------------------------------------------


def test_a_retried_complete_answers_as_the_first(s3: Any, versioned: str) -> None:
    upload_id, parts = two_parts(s3, versioned, "retried")
    complete = completion(versioned, "retried", upload_id, parts)
    first = s3.complete_multipart_upload(**complete)
    again = s3.complete_multipart_upload(**complete)
    assert again["ETag"] == first["ETag"] and again["ETag"].endswith('-2"')
    assert again["VersionId"] == first["VersionId"]
    assert again["Bucket"] == versioned and again["Key"] == "retried"
    # its conditions held when it committed: a retry does not check them again
    assert s3.complete_multipart_upload(**complete, IfNoneMatch="*")["ETag"] == first["ETag"]
    versions = s3.list_object_versions(Bucket=versioned, Prefix="retried")["Versions"]
    assert [v["VersionId"] for v in versions] == [first["VersionId"]]  # nothing was written twice


def test_a_retry_with_other_parts_is_no_such_upload(s3: Any, bucket: str) -> None:
    upload_id, parts = two_parts(s3, bucket, "other-parts")
    complete = {"Bucket": bucket, "Key": "other-parts", "UploadId": upload_id}
    s3.complete_multipart_upload(**complete, MultipartUpload={"Parts": parts})
    fewer = {"Parts": parts[:1]}
    assert refused(s3.complete_multipart_upload, **complete, MultipartUpload=fewer) == (404, "NoSuchUpload")
    renumbered = {"Parts": [parts[0], {**parts[1], "PartNumber": 3}]}
    assert refused(s3.complete_multipart_upload, **complete, MultipartUpload=renumbered) == (
        404,
        "NoSuchUpload",
    )
    other_key = completion(bucket, "elsewhere", upload_id, parts)
    assert refused(s3.complete_multipart_upload, **other_key) == (404, "NoSuchUpload")
    # the upload itself is gone: its parts cannot be listed, nor can it be aborted
    assert refused(s3.list_parts, Bucket=bucket, Key="other-parts", UploadId=upload_id)[1] == "NoSuchUpload"
    assert refused(s3.abort_multipart_upload, **complete)[1] == "NoSuchUpload"


def test_concurrent_completes_of_one_upload_agree(s3: Any, bucket: str) -> None:
    upload_id, parts = two_parts(s3, bucket, "together")
    complete = completion(bucket, "together", upload_id, parts)

    def call(_: int) -> str | tuple[int, str]:
        try:
            etag: str = s3.complete_multipart_upload(**complete)["ETag"]
        except ClientError as exc:
            return client_error(exc)
        return etag

    results = at_once(3, call)
    assert len(set(results)) == 1 and str(results[0]).endswith('-2"'), results


def test_completed_uploads_are_forgotten_after_a_day(server: CofferServer, s3: Any, bucket: str) -> None:
    """A completion older than COMPLETED_UPLOAD_RETENTION no longer answers a retry, and the
    next completion prunes its record (aged here in the database itself)."""
    old_id, old_parts = two_parts(s3, bucket, "aged")
    s3.complete_multipart_upload(**completion(bucket, "aged", old_id, old_parts))
    url = server.database_url or f"sqlite:///{server.data_dir / 'coffer.db'}"
    engine = sa.create_engine(normalize_database_url(url))
    try:
        with engine.begin() as conn:
            where = completed_uploads.c.upload_id == old_id
            aged = datetime.now(UTC) - timedelta(seconds=COMPLETED_UPLOAD_RETENTION + 3600)
            conn.execute(completed_uploads.update().where(where).values(completed_at=aged))
        retry = completion(bucket, "aged", old_id, old_parts)
        assert refused(s3.complete_multipart_upload, **retry) == (404, "NoSuchUpload")
        new_id, new_parts = two_parts(s3, bucket, "fresh")
        s3.complete_multipart_upload(**completion(bucket, "fresh", new_id, new_parts))
        with engine.connect() as conn:
            left = conn.execute(sa.select(completed_uploads.c.upload_id)).scalars().all()
        assert old_id not in left and new_id in left
    finally:
        engine.dispose()


# --- checksum types -----------------------------------------------------------------------------


def test_composite_checksum_type_everywhere(curl: Curl, s3: Any, bucket: str) -> None:
    create = curl(f"/{bucket}/composite?uploads=", "-X", "POST", "-H", "x-amz-checksum-algorithm: CRC32")
    assert create.status == 200 and create.headers["x-amz-checksum-type"] == "COMPOSITE"
    assert create.headers["x-amz-checksum-algorithm"] == "CRC32"
    upload_id = ElementTree.fromstring(create.body).findtext(f"{NS}UploadId")
    parts = []
    for number, data in ((1, FIRST), (2, LAST)):
        done = s3.upload_part(
            Bucket=bucket,
            Key="composite",
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm="CRC32",
        )
        parts.append({"PartNumber": number, "ETag": done["ETag"], "ChecksumCRC32": done["ChecksumCRC32"]})
    raw = base64.b64decode(parts[0]["ChecksumCRC32"]) + base64.b64decode(parts[1]["ChecksumCRC32"])
    want = f"{crc32(raw)}-2"
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="composite", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert done["ChecksumCRC32"] == want and done["ChecksumType"] == "COMPOSITE"
    head = s3.head_object(Bucket=bucket, Key="composite", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == want and head["ChecksumType"] == "COMPOSITE"
    got = s3.get_object(Bucket=bucket, Key="composite", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == want and got["ChecksumType"] == "COMPOSITE"
    got["Body"].read()
    attrs = s3.get_object_attributes(Bucket=bucket, Key="composite", ObjectAttributes=["Checksum"])
    assert attrs["Checksum"] == {"ChecksumCRC32": want.rsplit("-", 1)[0], "ChecksumType": "COMPOSITE"}
    part = s3.head_object(Bucket=bucket, Key="composite", PartNumber=2, ChecksumMode="ENABLED")
    assert part["ChecksumCRC32"] == crc32(LAST) and part["ChecksumType"] == "COMPOSITE"


def test_full_object_checksum_type_everywhere(s3: Any, bucket: str) -> None:
    create = {"ChecksumAlgorithm": "CRC32", "ChecksumType": "FULL_OBJECT"}
    up = s3.create_multipart_upload(Bucket=bucket, Key="full", **create)
    assert up["ChecksumType"] == "FULL_OBJECT"
    s3.abort_multipart_upload(Bucket=bucket, Key="full", UploadId=up["UploadId"])
    upload_id, parts = two_parts(s3, bucket, "full", **create)
    want = crc32(FIRST + LAST)
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="full", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert done["ChecksumCRC32"] == want and done["ChecksumType"] == "FULL_OBJECT"
    head = s3.head_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == want and head["ChecksumType"] == "FULL_OBJECT"
    attrs = s3.get_object_attributes(Bucket=bucket, Key="full", ObjectAttributes=["Checksum"])
    assert attrs["Checksum"] == {"ChecksumCRC32": want, "ChecksumType": "FULL_OBJECT"}
    # one part of a FULL_OBJECT object has no checksum of its own to show
    part = s3.get_object(Bucket=bucket, Key="full", PartNumber=2, ChecksumMode="ENABLED")
    assert "ChecksumCRC32" not in part and "ChecksumType" not in part and part["Body"].read() == LAST


def test_a_single_part_object_is_full_object(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="single", Body=b"one piece", ChecksumAlgorithm="CRC32")
    head = s3.head_object(Bucket=bucket, Key="single", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32(b"one piece") and head["ChecksumType"] == "FULL_OBJECT"
    attrs = s3.get_object_attributes(Bucket=bucket, Key="single", ObjectAttributes=["Checksum"])
    assert attrs["Checksum"] == {"ChecksumCRC32": crc32(b"one piece"), "ChecksumType": "FULL_OBJECT"}


# --- partNumber -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def multipart(s3: Any, bucket: str) -> str:
    upload_id, parts = two_parts(s3, bucket, "parts")
    etag: str = s3.complete_multipart_upload(
        Bucket=bucket, Key="parts", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )["ETag"]
    return etag


def test_part_of_a_multipart_object(s3: Any, bucket: str, multipart: str) -> None:
    got = s3.get_object(Bucket=bucket, Key="parts", PartNumber=2)
    assert got["Body"].read() == LAST and got["PartsCount"] == 2 and got["ETag"] == multipart
    assert got["ContentRange"] == f"bytes {len(FIRST)}-{len(FIRST) + len(LAST) - 1}/{len(FIRST) + len(LAST)}"
    head = s3.head_object(Bucket=bucket, Key="parts", PartNumber=1)
    assert head["ContentLength"] == len(FIRST) and head["PartsCount"] == 2 and head["ETag"] == multipart


def test_part_one_of_an_object_not_uploaded_in_parts_is_the_whole_object(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="plain", Body=b"plain body")["ETag"]
    got = s3.get_object(Bucket=bucket, Key="plain", PartNumber=1)
    assert got["Body"].read() == b"plain body" and got["ETag"] == etag and "PartsCount" not in got
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206 and got["ContentRange"] == "bytes 0-9/10"
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    empty = s3.get_object(Bucket=bucket, Key="empty", PartNumber=1)
    assert empty["Body"].read() == b"" and empty["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_a_part_beyond_the_count_is_invalid_part_number(
    curl: Curl, s3: Any, bucket: str, multipart: str
) -> None:
    s3.put_object(Bucket=bucket, Key="plain2", Body=b"plain body")
    assert refused(s3.get_object, Bucket=bucket, Key="plain2", PartNumber=2) == (416, "InvalidPartNumber")
    assert refused(s3.head_object, Bucket=bucket, Key="plain2", PartNumber=2)[0] == 416
    assert refused(s3.get_object, Bucket=bucket, Key="parts", PartNumber=3) == (416, "InvalidPartNumber")
    reply = curl(f"/{bucket}/parts?partNumber=3")
    assert reply.status == 416 and reply.code() == "InvalidPartNumber"
    error = ElementTree.fromstring(reply.body)
    assert error.findtext("PartNumberRequested") == "3" and error.findtext("ActualPartCount") == "2"
    assert curl(f"/{bucket}/parts?partNumber=0").code() == "InvalidArgument"


def test_a_part_of_an_upload_in_progress_is_no_such_key(s3: Any, bucket: str) -> None:
    upload_id, _ = two_parts(s3, bucket, "in-progress")
    assert refused(s3.get_object, Bucket=bucket, Key="in-progress", PartNumber=1) == (404, "NoSuchKey")
    assert refused(s3.head_object, Bucket=bucket, Key="in-progress", PartNumber=1)[0] == 404
    s3.abort_multipart_upload(Bucket=bucket, Key="in-progress", UploadId=upload_id)
