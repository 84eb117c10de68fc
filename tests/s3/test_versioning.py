"""Versioned buckets end to end: version ids on PUT/GET/HEAD/DELETE/copy, delete markers."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.harness import CofferServer
from tests.support.s3 import assert_s3_error, client_error, new_bucket, signed


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    name = new_bucket(s3, "ver")
    assert "Status" not in s3.get_bucket_versioning(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    return name


def test_unversioned_bucket_sends_no_version_id(s3: Any) -> None:
    name = new_bucket(s3, "plain")
    put = s3.put_object(Bucket=name, Key="k", Body=b"x")
    assert "VersionId" not in put
    assert "VersionId" not in s3.get_object(Bucket=name, Key="k")


def test_versions_and_delete_markers(s3: Any, bucket: str) -> None:
    v1 = s3.put_object(Bucket=bucket, Key="doc", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="doc", Body=b"two")["VersionId"]
    assert v1 and v2 and v1 != v2
    latest = s3.get_object(Bucket=bucket, Key="doc")
    assert latest["Body"].read() == b"two" and latest["VersionId"] == v2
    old = s3.get_object(Bucket=bucket, Key="doc", VersionId=v1)
    assert old["Body"].read() == b"one" and old["VersionId"] == v1
    assert s3.head_object(Bucket=bucket, Key="doc", VersionId=v1)["ContentLength"] == 3
    deleted = s3.delete_object(Bucket=bucket, Key="doc")
    assert deleted["DeleteMarker"] is True and deleted["VersionId"] not in (v1, v2)
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="doc")
    assert client_error(err.value) == (404, "NoSuchKey")
    assert err.value.response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-delete-marker") == "true"
    assert s3.get_object(Bucket=bucket, Key="doc", VersionId=v2)["Body"].read() == b"two"
    removed = s3.delete_object(Bucket=bucket, Key="doc", VersionId=v1)
    assert removed["VersionId"] == v1
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="doc", VersionId=v1)
    assert client_error(err.value)[0] == 404


def test_copy_from_a_version(s3: Any, bucket: str) -> None:
    v1 = s3.put_object(Bucket=bucket, Key="src", Body=b"first")["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"second")
    result = s3.copy_object(
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src", "VersionId": v1}
    )
    assert result["CopySourceVersionId"] == v1 and result["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"first"


def test_bad_versioning_document(server: CofferServer, key: dict[str, Any], bucket: str) -> None:
    body = b"<VersioningConfiguration><Status>Sometimes</Status></VersioningConfiguration>"
    r = signed(server, key, "PUT", f"/{bucket}", query="versioning", body=body)
    assert_s3_error(r, 400, "MalformedXML")
    r = signed(server, key, "PUT", f"/{bucket}", query="versioning", body=b"<VersioningConfiguration")
    assert_s3_error(r, 400, "MalformedXML")


def test_suspend(s3: Any) -> None:
    name = new_bucket(s3, "susp", versioned=True)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Suspended"
    assert s3.put_object(Bucket=name, Key="k", Body=b"x").get("VersionId") == "null"
