"""GetObjectAttributes, x-amz-checksum-mode, and multipart checksums (COMPOSITE and
FULL_OBJECT) as boto3 sends them by default and on request, plus the aws CLI."""

from __future__ import annotations

import base64
import hashlib
import io
import zlib
from pathlib import Path
from typing import Any

import pytest
from awscrt import checksums as crt
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from tests.support.clients import Cli
from tests.support.harness import CofferServer
from tests.support.s3 import assert_s3_error, client_error, new_bucket, signed, unique

MIB = 1 << 20
PART = 5 * MIB
DATA = hashlib.sha256(b"seed").digest() * (11 * MIB // 32)  # 11 MiB: parts of 5, 5 and 1 MiB
CONFIG = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=2)
ALL = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def digest(alg: str, data: bytes) -> bytes:
    if alg == "CRC32":
        return zlib.crc32(data).to_bytes(4, "big")
    if alg == "CRC32C":
        return crt.crc32c(data).to_bytes(4, "big")
    if alg == "CRC64NVME":
        return crt.crc64nvme(data).to_bytes(8, "big")
    return hashlib.new(alg.lower(), data).digest()


def composite(alg: str, parts: list[bytes]) -> str:
    return f"{b64(digest(alg, b''.join(digest(alg, p) for p in parts)))}-{len(parts)}"


PARTS = [DATA[:PART], DATA[PART : 2 * PART], DATA[2 * PART :]]


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    return new_bucket(s3, "attr")


def test_single_part_object(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="small", Body=b"hello", ChecksumAlgorithm="SHA256")
    attrs = s3.get_object_attributes(Bucket=bucket, Key="small", ObjectAttributes=ALL)
    assert attrs["ETag"] == put["ETag"].strip('"')  # unquoted, as S3 answers
    assert attrs["Checksum"] == {
        "ChecksumSHA256": b64(hashlib.sha256(b"hello").digest()),
        "ChecksumType": "FULL_OBJECT",
    }
    assert attrs["StorageClass"] == "STANDARD" and attrs["ObjectSize"] == 5
    assert "ObjectParts" not in attrs  # only multipart objects have parts
    assert attrs["LastModified"] == s3.head_object(Bucket=bucket, Key="small")["LastModified"]
    only = s3.get_object_attributes(Bucket=bucket, Key="small", ObjectAttributes=["ObjectSize"])
    assert only["ObjectSize"] == 5 and "ETag" not in only and "Checksum" not in only


def test_checksum_mode_returns_the_stored_checksum(
    server: CofferServer, key: dict[str, Any], s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="sdk", Body=b"abc")  # boto3 sends a CRC32 by default
    head = s3.head_object(Bucket=bucket, Key="sdk", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == b64(digest("CRC32", b"abc")) and head["ChecksumType"] == "FULL_OBJECT"
    assert not any(k.startswith("Checksum") for k in s3.head_object(Bucket=bucket, Key="sdk"))
    got = s3.get_object(Bucket=bucket, Key="sdk", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"abc" and got["ChecksumCRC32"] == head["ChecksumCRC32"]
    # A body sent with no checksum at all gets S3's default, CRC64NVME.
    r = signed(server, key, "PUT", f"/{bucket}/raw", body=b"abc")
    assert r.status_code == 200 and "x-amz-checksum-crc64nvme" not in r.headers
    r = signed(server, key, "HEAD", f"/{bucket}/raw", headers={"x-amz-checksum-mode": "ENABLED"})
    assert r.headers["x-amz-checksum-crc64nvme"] == b64(digest("CRC64NVME", b"abc"))
    assert r.headers["x-amz-checksum-type"] == "FULL_OBJECT"


def _check_composite(s3: Any, bucket: str, key: str, alg: str) -> None:
    want = composite(alg, PARTS)
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head[f"Checksum{alg}"] == want and head["ChecksumType"] == "COMPOSITE"
    attrs = s3.get_object_attributes(Bucket=bucket, Key=key, ObjectAttributes=ALL)
    assert attrs["Checksum"] == {f"Checksum{alg}": want.rsplit("-", 1)[0], "ChecksumType": "COMPOSITE"}
    parts = attrs["ObjectParts"]
    assert parts["TotalPartsCount"] == 3 and parts["IsTruncated"] is False
    assert [(p["PartNumber"], p["Size"], p[f"Checksum{alg}"]) for p in parts["Parts"]] == [
        (i + 1, len(data), b64(digest(alg, data))) for i, data in enumerate(PARTS)
    ]
    assert attrs["ObjectSize"] == len(DATA) and attrs["ETag"].endswith("-3")
    # GET of one part with checksum mode answers that part's checksum.
    part = s3.get_object(Bucket=bucket, Key=key, PartNumber=2, ChecksumMode="ENABLED")
    assert part[f"Checksum{alg}"] == b64(digest(alg, PARTS[1])) and part["PartsCount"] == 3
    assert part["Body"].read() == PARTS[1]


def test_boto3_default_multipart_upload(s3: Any, bucket: str) -> None:
    """boto3's transfer manager with its defaults: CRC32, COMPOSITE."""
    s3.upload_fileobj(io.BytesIO(DATA), bucket, "default", Config=CONFIG)
    _check_composite(s3, bucket, "default", "CRC32")
    body = io.BytesIO()
    s3.download_fileobj(bucket, "default", body)
    assert body.getvalue() == DATA


@pytest.mark.parametrize("alg", ["SHA256", "CRC32C"])
def test_boto3_multipart_with_checksum_algorithm(s3: Any, bucket: str, alg: str) -> None:
    s3.upload_fileobj(
        io.BytesIO(DATA), bucket, f"mp-{alg}", Config=CONFIG, ExtraArgs={"ChecksumAlgorithm": alg}
    )
    _check_composite(s3, bucket, f"mp-{alg}", alg)


def _upload_parts(s3: Any, bucket: str, key: str, upload_id: str, alg: str) -> list[dict[str, Any]]:
    parts = []
    for number, data in enumerate(PARTS, start=1):
        r = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data, ChecksumAlgorithm=alg
        )
        assert r[f"Checksum{alg}"] == b64(digest(alg, data))
        parts.append({"PartNumber": number, "ETag": r["ETag"], f"Checksum{alg}": r[f"Checksum{alg}"]})
    return parts


@pytest.mark.parametrize("alg", ["CRC32", "CRC32C", "CRC64NVME"])
def test_full_object_checksum_type(s3: Any, bucket: str, alg: str) -> None:
    key = f"full-{alg}"
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=alg, ChecksumType="FULL_OBJECT")
    assert up["ChecksumAlgorithm"] == alg and up["ChecksumType"] == "FULL_OBJECT"
    parts = _upload_parts(s3, bucket, key, up["UploadId"], alg)
    whole = b64(digest(alg, DATA))
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": parts},
        ChecksumType="FULL_OBJECT",
        **{f"Checksum{alg}": whole},
    )
    assert done[f"Checksum{alg}"] == whole and done["ChecksumType"] == "FULL_OBJECT"
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head[f"Checksum{alg}"] == whole and head["ChecksumType"] == "FULL_OBJECT"
    attrs = s3.get_object_attributes(Bucket=bucket, Key=key, ObjectAttributes=["Checksum"])
    assert attrs["Checksum"] == {f"Checksum{alg}": whole, "ChecksumType": "FULL_OBJECT"}


def test_transfer_manager_with_a_full_object_checksum(s3: Any, bucket: str) -> None:
    whole = b64(digest("CRC32", DATA))
    s3.upload_fileobj(io.BytesIO(DATA), bucket, "tm-full", Config=CONFIG, ExtraArgs={"ChecksumCRC32": whole})
    head = s3.head_object(Bucket=bucket, Key="tm-full", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == whole and head["ChecksumType"] == "FULL_OBJECT"


def test_wrong_declared_checksum_commits_nothing(s3: Any, bucket: str) -> None:
    key = "wrong-full"
    up = s3.create_multipart_upload(
        Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
    )
    parts = _upload_parts(s3, bucket, key, up["UploadId"], "CRC32")
    wrong = b64(digest("CRC32", DATA + b"!"))

    def complete(**checksum: str) -> Any:
        return s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=up["UploadId"], MultipartUpload={"Parts": parts}, **checksum
        )

    with pytest.raises(ClientError) as err:
        complete(ChecksumCRC32=wrong, ChecksumType="FULL_OBJECT")
    assert client_error(err.value) == (400, "BadDigest")
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key=key)
    assert client_error(err.value)[0] == 404
    # The upload is still there and completes with the right checksum.
    assert [
        p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key=key, UploadId=up["UploadId"])["Parts"]
    ] == [1, 2, 3]
    with pytest.raises(ClientError) as err:
        complete(ChecksumCRC32=b64(digest("CRC32", DATA)), ChecksumType="COMPOSITE")
    assert client_error(err.value) == (400, "InvalidRequest")
    complete(ChecksumCRC32=b64(digest("CRC32", DATA)))
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(DATA)


def test_full_object_refused_for_sha(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.create_multipart_upload(
            Bucket=bucket, Key="x", ChecksumAlgorithm="SHA256", ChecksumType="FULL_OBJECT"
        )
    assert client_error(err.value) == (400, "InvalidRequest")


def test_object_parts_paging(server: CofferServer, key: dict[str, Any], s3: Any, bucket: str) -> None:
    s3.upload_fileobj(
        io.BytesIO(DATA), bucket, "paged", Config=CONFIG, ExtraArgs={"ChecksumAlgorithm": "SHA1"}
    )
    first = s3.get_object_attributes(Bucket=bucket, Key="paged", ObjectAttributes=["ObjectParts"], MaxParts=2)
    parts = first["ObjectParts"]
    assert [p["PartNumber"] for p in parts["Parts"]] == [1, 2]
    assert parts["IsTruncated"] is True and parts["NextPartNumberMarker"] == 2 and parts["MaxParts"] == 2
    rest = s3.get_object_attributes(
        Bucket=bucket, Key="paged", ObjectAttributes=["ObjectParts"], MaxParts=2, PartNumberMarker=2
    )["ObjectParts"]
    assert [p["PartNumber"] for p in rest["Parts"]] == [3] and rest["IsTruncated"] is False
    assert rest["Parts"][0]["ChecksumSHA1"] == b64(digest("SHA1", PARTS[2]))
    r = signed(
        server,
        key,
        "GET",
        f"/{bucket}/paged",
        query="attributes",
        headers={"x-amz-object-attributes": "ObjectParts", "x-amz-max-parts": "lots"},
    )
    assert_s3_error(r, 400, "InvalidArgument")


def test_attribute_errors(server: CofferServer, key: dict[str, Any], s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="e", Body=b"x")
    r = signed(server, key, "GET", f"/{bucket}/e", query="attributes")
    assert_s3_error(r, 400, "InvalidArgument")
    r = signed(
        server, key, "GET", f"/{bucket}/e", query="attributes", headers={"x-amz-object-attributes": "Colour"}
    )
    assert_s3_error(r, 400, "InvalidArgument")
    assert "Invalid attribute name specified." in r.text
    with pytest.raises(ClientError) as err:
        s3.get_object_attributes(Bucket=bucket, Key="absent", ObjectAttributes=["ETag"])
    assert client_error(err.value) == (404, "NoSuchKey")
    with pytest.raises(ClientError) as err:
        s3.get_object_attributes(Bucket=bucket, Key="e", VersionId="f" * 32, ObjectAttributes=["ETag"])
    assert client_error(err.value) == (404, "NoSuchVersion")


def test_versioned_attributes(s3: Any) -> None:
    bucket = new_bucket(s3, "attrver", versioned=True)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"first")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"second!")["VersionId"]
    old = s3.get_object_attributes(Bucket=bucket, Key="k", VersionId=v1, ObjectAttributes=["ObjectSize"])
    assert old["ObjectSize"] == 5 and old["VersionId"] == v1
    new = s3.get_object_attributes(Bucket=bucket, Key="k", ObjectAttributes=["ObjectSize"])
    assert new["ObjectSize"] == 7 and new["VersionId"] == v2


def test_aws_cli_attributes_and_checksums(aws: Cli, tmp_path: Path) -> None:
    bucket = unique("cliattr")
    aws("s3api", "create-bucket", "--bucket", bucket)
    body = tmp_path / "f.bin"
    body.write_bytes(b"aws cli body")
    f_bin = ("--bucket", bucket, "--key", "f.bin")
    put = aws("s3api", "put-object", *f_bin, "--body", str(body), "--checksum-algorithm", "SHA256")
    want = b64(hashlib.sha256(b"aws cli body").digest())
    assert put["ChecksumSHA256"] == want
    attrs = aws(
        "s3api", "get-object-attributes", *f_bin, "--object-attributes", "ETag", "Checksum", "ObjectSize"
    )
    assert attrs["Checksum"]["ChecksumSHA256"] == want and attrs["ObjectSize"] == 12
    assert attrs["ETag"] == hashlib.md5(b"aws cli body").hexdigest()
    head = aws("s3api", "head-object", *f_bin, "--checksum-mode", "ENABLED")
    assert head["ChecksumSHA256"] == want
    big = tmp_path / "big.bin"
    big.write_bytes(DATA)
    aws("s3", "cp", str(big), f"s3://{bucket}/big.bin")  # the CLI's own multipart upload
    big_bin = ("--bucket", bucket, "--key", "big.bin")
    attrs = aws(
        "s3api", "get-object-attributes", *big_bin, "--object-attributes", "ObjectParts", "ObjectSize"
    )
    assert attrs["ObjectSize"] == len(DATA) and attrs["ObjectParts"]["TotalPartsCount"] >= 2
    nope = ("--bucket", bucket, "--key", "nope")
    bad = aws("s3api", "get-object-attributes", *nope, "--object-attributes", "ETag", check=False)
    assert bad.returncode != 0 and "NoSuchKey" in bad.stderr
