"""curl's own SigV4 signer (`--aws-sigv4 "aws:amz:<region>:s3"`) against a real server.

curl before 8.1 (Debian 12 ships 7.88) neither sends nor signs x-amz-content-sha256 and signs
over the empty payload's hash even for `-T` uploads; curl 8.1+ sends UNSIGNED-PAYLOAD (or the
hash of an in-memory body). Coffer accepts both shapes, so these commands work on either.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from tests.support.curl import Curl
from tests.support.data import MIB, PatternStream, sha256_file
from tests.support.s3 import NS, new_bucket


@pytest.fixture(scope="module")
def bucket(boto: Any) -> str:
    return new_bucket(boto, "curl")


def test_put_get_head_list_delete(curl: Curl, bucket: str, boto: Any, tmp_path: Path) -> None:
    src = tmp_path / "upload.bin"
    stream = PatternStream(9 * MIB + 1, seed=6)
    with src.open("wb") as f:
        for chunk in stream.chunks():
            f.write(chunk)
    digest = stream.sha256.hexdigest()

    put = curl(f"/{bucket}/dir/upload.bin", "-T", str(src))
    assert put.status == 200, put.body
    assert put.headers["etag"] == f'"{hashlib.md5(src.read_bytes()).hexdigest()}"'

    out = tmp_path / "download.bin"
    get = curl(f"/{bucket}/dir/upload.bin", output=out)
    assert get.status == 200
    assert sha256_file(out) == digest

    head = curl(f"/{bucket}/dir/upload.bin", "-I")
    assert head.status == 200
    assert head.headers["content-length"] == str(9 * MIB + 1)
    assert head.headers["etag"] == put.headers["etag"]

    ranged = curl(f"/{bucket}/dir/upload.bin", "-r", "100-199")
    assert ranged.status == 206 and ranged.body == out.read_bytes()[100:200]

    # A key with a space and non-ASCII characters, percent-encoded on the command line.
    small = tmp_path / "small.txt"
    small.write_bytes(b"small")
    assert curl(f"/{bucket}/dir/h%C3%A9llo%20w%C3%B6rld.txt", "-T", str(small)).status == 200
    assert boto.get_object(Bucket=bucket, Key="dir/héllo wörld.txt")["Body"].read() == b"small"

    listing = curl(f"/{bucket}?list-type=2&prefix=dir/&max-keys=1")
    assert listing.status == 200
    root = ElementTree.fromstring(listing.body)
    assert root.findtext(f"{NS}KeyCount") == "1"
    assert root.findtext(f"{NS}IsTruncated") == "true"
    token = root.findtext(f"{NS}NextContinuationToken")
    assert token
    first = [c.findtext(f"{NS}Key") for c in root.iter(f"{NS}Contents")]
    rest = curl(f"/{bucket}?list-type=2&prefix=dir/&continuation-token={token}")
    second = [c.findtext(f"{NS}Key") for c in ElementTree.fromstring(rest.body).iter(f"{NS}Contents")]
    assert first + second == ["dir/héllo wörld.txt", "dir/upload.bin"]

    deleted = curl(f"/{bucket}/dir/upload.bin", "-X", "DELETE")
    assert deleted.status == 204
    gone = curl(f"/{bucket}/dir/upload.bin")
    assert gone.status == 404 and gone.code() == "NoSuchKey"


def test_signed_payload_hash(curl: Curl, bucket: str, boto: Any, tmp_path: Path) -> None:
    src = tmp_path / "signed.txt"
    src.write_bytes(b"a body whose hash is signed\n")
    real = hashlib.sha256(src.read_bytes()).hexdigest()
    put = curl(f"/{bucket}/signed.txt", "-T", str(src), "-H", f"x-amz-content-sha256: {real}")
    assert put.status == 200, put.body
    assert boto.get_object(Bucket=bucket, Key="signed.txt")["Body"].read() == src.read_bytes()

    wrong = hashlib.sha256(b"something else").hexdigest()
    refused = curl(f"/{bucket}/other.txt", "-T", str(src), "-H", f"x-amz-content-sha256: {wrong}")
    assert refused.status == 400 and refused.code() == "XAmzContentSHA256Mismatch"
    assert curl(f"/{bucket}/other.txt", "-I").status == 404  # nothing was stored


def test_wrong_secret_and_unknown_key(curl: Curl, bucket: str, key: dict[str, Any]) -> None:
    secret = key["secretKey"]
    wrong = secret[:-1] + ("y" if secret.endswith("x") else "x")
    bad_secret = curl(f"/{bucket}?list-type=2", user=f"{key['accessKeyId']}:{wrong}")
    assert bad_secret.status == 403 and bad_secret.code() == "SignatureDoesNotMatch"
    unknown = curl(f"/{bucket}?list-type=2", user=f"CWNOSUCHKEYAAAAA:{key['secretKey']}")
    assert unknown.status == 403 and unknown.code() == "InvalidAccessKeyId"
