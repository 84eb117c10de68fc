"""DeleteObjects end to end: batches, quiet mode, limits, required integrity header."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.harness import CofferServer
from tests.support.s3 import assert_s3_error, client_error, new_bucket, signed


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    return new_bucket(s3, "del")


def _keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_delete_objects_reports_each_key(s3: Any, bucket: str) -> None:
    for k in ("a", "b", "c & d"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    result = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "c & d"}, {"Key": "never-existed"}]}
    )
    assert sorted(d["Key"] for d in result["Deleted"]) == ["a", "c & d", "never-existed"]
    assert not result.get("Errors")
    assert _keys(s3, bucket) == ["b"]
    s3.delete_object(Bucket=bucket, Key="b")


def test_quiet_mode_lists_nothing(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="q1", Body=b"x")
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "q1"}], "Quiet": True})
    assert "Deleted" not in result and "Errors" not in result
    assert "q1" not in _keys(s3, bucket)


def test_more_than_1000_keys_is_malformed(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"k{i}"} for i in range(1001)]})
    assert client_error(err.value) == (400, "MalformedXML")


def test_exactly_1000_keys(s3: Any, bucket: str) -> None:
    result = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": f"k{i}"} for i in range(1000)], "Quiet": True}
    )
    assert result["ResponseMetadata"]["HTTPStatusCode"] == 200


BODY = b"<Delete><Object><Key>x</Key></Object></Delete>"


def test_integrity_header_required(server: CofferServer, key: dict[str, Any], bucket: str) -> None:
    r = signed(server, key, "POST", f"/{bucket}", query="delete", body=BODY)
    assert_s3_error(r, 400, "InvalidRequest")
    md5 = base64.b64encode(hashlib.md5(BODY).digest()).decode()
    r = signed(server, key, "POST", f"/{bucket}", query="delete", body=BODY, headers={"Content-MD5": md5})
    assert r.status_code == 200 and "<Deleted><Key>x</Key></Deleted>" in r.text
    sha = base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    r = signed(
        server, key, "POST", f"/{bucket}", query="delete", body=BODY, headers={"x-amz-checksum-sha256": sha}
    )
    assert r.status_code == 200
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    r = signed(server, key, "POST", f"/{bucket}", query="delete", body=BODY, headers={"Content-MD5": wrong})
    assert_s3_error(r, 400, "BadDigest")


def test_malformed_delete_body(server: CofferServer, key: dict[str, Any], bucket: str) -> None:
    for body in (b"<Delete><Object><Key>x</Key>", b"<Delete></Delete>", b"<Other/>"):
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        r = signed(server, key, "POST", f"/{bucket}", query="delete", body=body, headers={"Content-MD5": md5})
        assert_s3_error(r, 400, "MalformedXML")
