"""Conditional writes as AWS answers them: `If-None-Match: *` and `If-Match: <etag>` on
PutObject, CopyObject's destination and CompleteMultipartUpload (boto3), the forms AWS does
not implement (curl), and writes that race another write while in flight (a PUT held
between its head and its body: tests/s3/conditional.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from tests.s3.conditional import HeldPut, completion, refused
from tests.support.curl import Curl
from tests.support.harness import CofferServer
from tests.support.policies import create_user, ensure_ok, policy, s3_of, statement
from tests.support.s3 import bucket_fixture, unique

MIB = 1024 * 1024


bucket = bucket_fixture("bucket", "cond")
versioned = bucket_fixture("versioned", "condv", versioned=True)


def etag_of(data: bytes) -> str:
    return f'"{hashlib.md5(data).hexdigest()}"'


def body_of(s3: Any, bucket: str, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def held(
    server: CofferServer, key: dict[str, Any], bucket: str, name: str, body: bytes, **headers: str
) -> HeldPut:
    return HeldPut(server.s3_port, key, f"{server.s3_url}/{bucket}/{name}", body, headers)


# --- PutObject --------------------------------------------------------------------------------


def test_if_none_match_star_creates_once(s3: Any, bucket: str) -> None:
    first = s3.put_object(Bucket=bucket, Key="once", Body=b"first", IfNoneMatch="*")
    assert first["ETag"] == etag_of(b"first")
    assert refused(s3.put_object, Bucket=bucket, Key="once", Body=b"second", IfNoneMatch="*") == (
        412,
        "PreconditionFailed",
    )
    assert body_of(s3, bucket, "once") == b"first"
    s3.delete_object(Bucket=bucket, Key="once")
    s3.put_object(Bucket=bucket, Key="once", Body=b"again", IfNoneMatch="*")
    assert body_of(s3, bucket, "once") == b"again"


def test_a_delete_marker_is_no_object(s3: Any, versioned: str) -> None:
    s3.put_object(Bucket=versioned, Key="marked", Body=b"v1")
    s3.delete_object(Bucket=versioned, Key="marked")
    made = s3.put_object(Bucket=versioned, Key="marked", Body=b"v2", IfNoneMatch="*")
    assert made["VersionId"] and body_of(s3, versioned, "marked") == b"v2"
    assert refused(s3.put_object, Bucket=versioned, Key="marked", Body=b"v3", IfNoneMatch="*")[0] == 412


def test_if_match_swaps_only_the_version_it_names(s3: Any, bucket: str) -> None:
    old = s3.put_object(Bucket=bucket, Key="cas", Body=b"one")["ETag"]
    new = s3.put_object(Bucket=bucket, Key="cas", Body=b"two", IfMatch=old)["ETag"]
    assert new == etag_of(b"two")
    assert refused(s3.put_object, Bucket=bucket, Key="cas", Body=b"three", IfMatch=old) == (
        412,
        "PreconditionFailed",
    )
    assert body_of(s3, bucket, "cas") == b"two"
    s3.put_object(Bucket=bucket, Key="cas", Body=b"four", IfMatch=new.strip('"'))  # bare ETags match too
    s3.put_object(Bucket=bucket, Key="cas", Body=b"five", IfMatch="*")
    assert body_of(s3, bucket, "cas") == b"five"
    assert refused(s3.put_object, Bucket=bucket, Key="nothing-here", Body=b"x", IfMatch=new) == (
        404,
        "NoSuchKey",
    )


def test_if_match_needs_read_permission_too(server: CofferServer, s3: Any, bucket: str) -> None:
    """AWS: comparing the ETag reads the object, so If-Match needs s3:GetObject besides
    s3:PutObject; If-None-Match needs only s3:PutObject."""
    writer, token = create_user(server, unique("writer"), admin=True)  # admin: may mint keys, no S3
    ensure_ok(
        server, policy(unique("put-only"), statement("put", ["s3:PutObject"], [f"{bucket}/*"], [writer]))
    )
    put_only = s3_of(server, token)
    etag = s3.put_object(Bucket=bucket, Key="guarded", Body=b"x")["ETag"]
    put_only.put_object(Bucket=bucket, Key="guarded-new", Body=b"y", IfNoneMatch="*")
    assert refused(put_only.put_object, Bucket=bucket, Key="guarded", Body=b"y", IfMatch=etag) == (
        403,
        "AccessDenied",
    )
    assert body_of(s3, bucket, "guarded") == b"x"


def test_the_412_names_the_condition(curl: Curl, s3: Any, bucket: str, tmp_path: Path) -> None:
    s3.put_object(Bucket=bucket, Key="named", Body=b"x")
    src = tmp_path / "body"
    src.write_bytes(b"y")
    reply = curl(f"/{bucket}/named", "-T", str(src), "-H", "If-None-Match: *")
    assert reply.status == 412 and reply.code() == "PreconditionFailed"
    assert ElementTree.fromstring(reply.body).findtext("Condition") == "If-None-Match"


def test_forms_aws_does_not_implement(curl: Curl, s3: Any, bucket: str, tmp_path: Path) -> None:
    """If-None-Match with an ETag, or both headers at once: 501, as AWS answers (curl: the
    SDK sends neither)."""
    etag = s3.put_object(Bucket=bucket, Key="forms", Body=b"x")["ETag"]
    src = tmp_path / "body"
    src.write_bytes(b"y")
    reply = curl(f"/{bucket}/forms", "-T", str(src), "-H", f"If-None-Match: {etag}")
    assert reply.status == 501 and reply.code() == "NotImplemented", reply.body
    assert ElementTree.fromstring(reply.body).findtext("Header") == "If-None-Match"
    both = curl(f"/{bucket}/forms", "-T", str(src), "-H", "If-None-Match: *", "-H", f"If-Match: {etag}")
    assert both.status == 501 and both.code() == "NotImplemented"
    assert body_of(s3, bucket, "forms") == b"x"


# --- CopyObject ---------------------------------------------------------------------------------


def test_copy_destination_conditions(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="copy-src", Body=b"source")
    src = {"Bucket": bucket, "Key": "copy-src"}
    s3.copy_object(Bucket=bucket, Key="copy-dst", CopySource=src, IfNoneMatch="*")
    assert body_of(s3, bucket, "copy-dst") == b"source"
    again = {"Bucket": bucket, "Key": "copy-dst", "CopySource": src, "IfNoneMatch": "*"}
    assert refused(s3.copy_object, **again) == (412, "PreconditionFailed")
    dst = s3.put_object(Bucket=bucket, Key="copy-dst", Body=b"mine")["ETag"]
    stale = {"Bucket": bucket, "Key": "copy-dst", "CopySource": src, "IfMatch": etag_of(b"source")}
    assert refused(s3.copy_object, **stale) == (412, "PreconditionFailed")
    s3.copy_object(Bucket=bucket, Key="copy-dst", CopySource=src, IfMatch=dst)
    assert body_of(s3, bucket, "copy-dst") == b"source"
    missing = {"Bucket": bucket, "Key": "copy-none", "CopySource": src, "IfMatch": dst}
    assert refused(s3.copy_object, **missing) == (404, "NoSuchKey")
    # the source's own conditions are still the x-amz-copy-source-if-* ones
    wrong_source = {"Bucket": bucket, "Key": "copy-x", "CopySource": src, "CopySourceIfMatch": dst}
    assert refused(s3.copy_object, **wrong_source) == (412, "PreconditionFailed")


# --- CompleteMultipartUpload ----------------------------------------------------------------------


def upload(s3: Any, bucket: str, key: str, data: bytes) -> tuple[str, list[dict[str, Any]]]:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=data)
    return upload_id, [{"PartNumber": 1, "ETag": part["ETag"]}]


def test_complete_conditions(s3: Any, bucket: str) -> None:
    first, parts = upload(s3, bucket, "mpu-cond", b"first")
    second, parts2 = upload(s3, bucket, "mpu-cond", b"second")
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="mpu-cond", UploadId=first, MultipartUpload={"Parts": parts}, IfNoneMatch="*"
    )
    complete = completion(bucket, "mpu-cond", second, parts2)
    assert refused(s3.complete_multipart_upload, **complete, IfNoneMatch="*") == (412, "PreconditionFailed")
    assert refused(s3.complete_multipart_upload, **complete, IfMatch=etag_of(b"zzz")) == (
        412,
        "PreconditionFailed",
    )
    # a failed condition leaves the upload as it was
    assert [
        p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key="mpu-cond", UploadId=second)["Parts"]
    ] == [1]
    assert body_of(s3, bucket, "mpu-cond") == b"first"
    swapped = s3.complete_multipart_upload(**complete, IfMatch=done["ETag"])
    assert swapped["ETag"].endswith('-1"') and body_of(s3, bucket, "mpu-cond") == b"second"
    third, parts3 = upload(s3, bucket, "mpu-none", b"x")
    missing = completion(bucket, "mpu-none", third, parts3)
    assert refused(s3.complete_multipart_upload, **missing, IfMatch=done["ETag"]) == (404, "NoSuchKey")


def test_complete_refuses_the_forms_aws_does_not_implement(s3: Any, bucket: str) -> None:
    upload_id, parts = upload(s3, bucket, "mpu-forms", b"x")
    complete = completion(bucket, "mpu-forms", upload_id, parts)
    assert refused(s3.complete_multipart_upload, **complete, IfNoneMatch='"abc"') == (501, "NotImplemented")
    both = {"IfNoneMatch": "*", "IfMatch": '"abc"'}
    assert refused(s3.complete_multipart_upload, **complete, **both) == (501, "NotImplemented")
    s3.complete_multipart_upload(**complete)


# --- writes in flight ---------------------------------------------------------------------------


def test_a_failed_condition_answers_before_the_body(
    server: CofferServer, key: dict[str, Any], s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="early", Body=b"here")
    put = held(server, key, bucket, "early", b"y" * MIB, **{"If-None-Match": "*"})
    assert put.early is not None and put.early.status == 412 and put.early.code() == "PreconditionFailed"
    missing = held(server, key, bucket, "early-missing", b"y", **{"If-Match": etag_of(b"here")})
    assert missing.early is not None and missing.early.code() == "NoSuchKey"


def test_a_concurrent_create_wins_and_the_loser_gets_412(
    server: CofferServer, key: dict[str, Any], s3: Any, bucket: str
) -> None:
    """Both writers find no object; the first to commit wins, the other one's condition
    fails at its commit: 412, as AWS answers the later of two conditional writes."""
    put = held(server, key, bucket, "raced", b"held", **{"If-None-Match": "*"})
    assert put.early is None
    s3.put_object(Bucket=bucket, Key="raced", Body=b"winner", IfNoneMatch="*")
    reply = put.finish()
    assert (reply.status, reply.code()) == (412, "PreconditionFailed"), reply.body
    assert body_of(s3, bucket, "raced") == b"winner"


def test_a_concurrent_write_that_keeps_the_condition_is_a_conflict(
    server: CofferServer, key: dict[str, Any], s3: Any, bucket: str
) -> None:
    """The condition still holds at commit (the same ETag), but another write committed
    while this one was in flight: 409 ConditionalRequestConflict, and nothing is written."""
    etag = s3.put_object(Bucket=bucket, Key="swap", Body=b"same")["ETag"]
    put = held(server, key, bucket, "swap", b"mine", **{"If-Match": etag})
    assert put.early is None
    s3.put_object(Bucket=bucket, Key="swap", Body=b"same")  # a new version, the same ETag
    reply = put.finish()
    assert (reply.status, reply.code()) == (409, "ConditionalRequestConflict"), reply.body
    assert body_of(s3, bucket, "swap") == b"same"
    again = s3.put_object(Bucket=bucket, Key="swap", Body=b"mine", IfMatch=etag)  # the retry succeeds
    assert again["ETag"] == etag_of(b"mine")


def test_a_delete_during_a_create_is_a_conflict(
    server: CofferServer, key: dict[str, Any], s3: Any, versioned: str
) -> None:
    """AWS: a delete that succeeds while a conditional write is in flight makes it 409."""
    put = held(server, key, versioned, "deleted", b"new", **{"If-None-Match": "*"})
    assert put.early is None
    marker = s3.delete_object(Bucket=versioned, Key="deleted")
    assert marker["DeleteMarker"] is True
    reply = put.finish()
    assert (reply.status, reply.code()) == (409, "ConditionalRequestConflict"), reply.body
    s3.put_object(Bucket=versioned, Key="deleted", Body=b"new", IfNoneMatch="*")
    assert body_of(s3, versioned, "deleted") == b"new"


def test_an_if_match_write_whose_object_went_meanwhile_gets_404(
    server: CofferServer, key: dict[str, Any], s3: Any, bucket: str
) -> None:
    etag = s3.put_object(Bucket=bucket, Key="gone", Body=b"here")["ETag"]
    put = held(server, key, bucket, "gone", b"new", **{"If-Match": etag})
    assert put.early is None
    s3.delete_object(Bucket=bucket, Key="gone")
    reply = put.finish()
    assert (reply.status, reply.code()) == (404, "NoSuchKey"), reply.body
    assert refused(s3.head_object, Bucket=bucket, Key="gone")[0] == 404
