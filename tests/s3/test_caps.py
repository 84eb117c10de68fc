"""Capacity caps end to end: a bucket's `capacityCapBytes` (SetBucketSettings) and the
organization's cap refuse writes with 403 QuotaExceeded and store nothing; deletes go on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.support.harness import CofferServer
from tests.support.s3 import REGION, assert_s3_error, client_error, new_bucket

NO_CAP = str(2**64 - 1)  # CoreWeave's uint64: a cap no bucket can reach


def set_cap(server: CofferServer, bucket: str, cap: int | str) -> None:
    with server.api() as c:
        body = {"bucketName": bucket, "settings": {"capacityCapBytes": str(cap)}}
        r = c.put("/v1/cwobject/bucket/settings", json=body)
        assert r.status_code == 200, r.text


def blob_files(server: CofferServer) -> set[Path]:
    """Every file under the blobs directory, temp files included."""
    return {p for p in (server.data_dir / "blobs").rglob("*") if p.is_file()}


def quota_exceeded(call: Any, *args: Any, **kw: Any) -> str:
    with pytest.raises(ClientError) as err:
        call(*args, **kw)
    assert client_error(err.value) == (403, "QuotaExceeded")
    return str(err.value.response["Error"]["Message"])


def keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_a_cap_of_zero_refuses_every_write_and_stores_nothing(server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3, "cap0")
    s3.put_object(Bucket=bucket, Key="src", Body=b"source bytes")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"part one")["ETag"]
    set_cap(server, bucket, 0)
    before = blob_files(server)

    message = quota_exceeded(s3.put_object, Bucket=bucket, Key="new", Body=b"x" * 1000)
    assert "0 bytes blocks all new writes" in message
    quota_exceeded(s3.put_object, Bucket=bucket, Key="empty", Body=b"")
    quota_exceeded(s3.copy_object, Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "src"})
    quota_exceeded(s3.create_multipart_upload, Bucket=bucket, Key="mp2")
    quota_exceeded(s3.upload_part, Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=2, Body=b"two")
    quota_exceeded(
        s3.upload_part_copy,
        Bucket=bucket,
        Key="mp",
        UploadId=upload_id,
        PartNumber=3,
        CopySource={"Bucket": bucket, "Key": "src"},
    )
    quota_exceeded(
        s3.complete_multipart_upload,
        Bucket=bucket,
        Key="mp",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    form = s3.generate_presigned_post(bucket, "posted")
    r = httpx.post(form["url"], data=form["fields"], files={"file": ("f", b"posted body")}, timeout=30)
    assert_s3_error(r, 403, "QuotaExceeded")

    assert keys(s3, bucket) == ["src"]
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1]
    assert blob_files(server) == before  # no blob, no temp file: nothing half-written stays

    s3.delete_object(Bucket=bucket, Key="src")  # deletes are never refused
    s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id)
    set_cap(server, bucket, NO_CAP)
    s3.put_object(Bucket=bucket, Key="new", Body=b"written again")


def test_a_cap_admits_up_to_its_bytes(server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3, "capn")
    set_cap(server, bucket, 1000)
    s3.put_object(Bucket=bucket, Key="a", Body=b"a" * 600)
    before = blob_files(server)
    quota_exceeded(s3.put_object, Bucket=bucket, Key="b", Body=b"b" * 401)
    assert blob_files(server) == before
    s3.put_object(Bucket=bucket, Key="b", Body=b"b" * 300)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    quota_exceeded(s3.upload_part, Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"p" * 101)
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"p" * 100)["ETag"]
    quota_exceeded(s3.put_object, Bucket=bucket, Key="c", Body=b"c")  # 1000 of 1000
    s3.complete_multipart_upload(  # its part is counted already: completing adds nothing
        Bucket=bucket,
        Key="mp",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    quota_exceeded(s3.copy_object, Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "mp"})
    form = s3.generate_presigned_post(bucket, "posted")
    r = httpx.post(form["url"], data=form["fields"], files={"file": ("f", b"x")}, timeout=30)
    assert_s3_error(r, 403, "QuotaExceeded")
    s3.delete_object(Bucket=bucket, Key="b")
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "mp"})
    r = httpx.post(form["url"], data=form["fields"], files={"file": ("f", b"x" * 200)}, timeout=30)
    assert r.status_code == 204, r.text
    assert sorted(keys(s3, bucket)) == ["a", "copy", "mp", "posted"]
    with server.api() as c:
        info = c.get(f"/v1/cwobject/bucket-info/{bucket}").json()["info"]
    assert info["settings"]["configuredCapacityCapBytes"] == "1000"


def test_a_body_of_unknown_length_is_cut_off_at_the_cap(
    server: CofferServer, s3: Any, key: dict[str, Any]
) -> None:
    """Transfer-Encoding: chunked (`curl -T -`): no length to check first, so the body is
    refused once it outgrows the room, and nothing of it stays."""
    bucket = new_bucket(s3, "capchunked")
    set_cap(server, bucket, 1000)
    s3.put_object(Bucket=bucket, Key="a", Body=b"a" * 900)
    before = blob_files(server)

    def put_chunked(name: str, chunks: list[bytes]) -> httpx.Response:
        url = f"{server.s3_url}/{bucket}/{name}"
        request = AWSRequest(method="PUT", url=url, headers={"Transfer-Encoding": "chunked"})
        signer = S3SigV4Auth(Credentials(key["accessKeyId"], key["secretKey"]), "s3", REGION)
        signer.payload = lambda _request: "UNSIGNED-PAYLOAD"  # type: ignore[method-assign]
        signer.add_auth(request)
        headers = {k: v for k, v in request.prepare().headers.items() if k.lower() != "content-length"}
        return httpx.put(url, content=iter(chunks), headers=headers, timeout=30)

    assert_s3_error(put_chunked("big", [b"b" * 60] * 5), 403, "QuotaExceeded")
    assert blob_files(server) == before
    assert keys(s3, bucket) == ["a"]
    assert put_chunked("fits", [b"c" * 50, b"c" * 50]).status_code == 200
    assert s3.head_object(Bucket=bucket, Key="fits")["ContentLength"] == 100


def test_the_organization_cap(server: CofferServer, s3: Any) -> None:
    """`coffer admin org limits --capacity-cap` counts every bucket of the organization."""
    first, second = new_bucket(s3, "orgcap"), new_bucket(s3, "orgcap")
    with server.api() as c:
        org = c.get("/v1/cwobject/organization/settings").json()
    used = int(org["usage"]["bytes"])

    def limit(value: str) -> None:
        server.cli("admin", "org", "limits", "--capacity-cap", value)

    limit(str(used + 100))
    try:
        s3.put_object(Bucket=first, Key="k", Body=b"x" * 60)
        message = quota_exceeded(s3.put_object, Bucket=second, Key="k", Body=b"x" * 41)
        assert "organization's capacity cap" in message
        s3.put_object(Bucket=second, Key="k", Body=b"x" * 40)
        limit("0")
        quota_exceeded(s3.put_object, Bucket=first, Key="other", Body=b"")
        s3.delete_object(Bucket=first, Key="k")
    finally:
        limit("default")
    s3.put_object(Bucket=first, Key="k", Body=b"free again")
