"""ListObjects v1 and v2 end to end: prefixes, delimiters, pagination, url encoding, errors."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import pytest
from botocore.exceptions import ClientError

from tests.support.harness import CofferServer
from tests.support.s3 import NS, assert_s3_error, client_error, new_bucket, signed, unique

KEYS = ["a/1", "a/2", "a/b/3", "b/4", "c", "d e", "f+g", "z/\u00e9"]


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    name = new_bucket(s3, "list")
    for k in KEYS:
        s3.put_object(Bucket=name, Key=k, Body=k.encode())
    return name


def test_v2_all(s3: Any, bucket: str, key: dict[str, Any]) -> None:
    result = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in result["Contents"]] == sorted(KEYS, key=lambda k: k.encode())
    assert result["KeyCount"] == len(KEYS) and result["IsTruncated"] is False
    first = result["Contents"][0]
    assert first["Size"] == 3 and first["ETag"].startswith('"') and first["StorageClass"] == "STANDARD"
    assert "Owner" not in first
    owned = s3.list_objects_v2(Bucket=bucket, FetchOwner=True)["Contents"][0]
    assert owned["Owner"]["ID"] == key["principalName"]


def test_v2_prefix_delimiter(s3: Any, bucket: str) -> None:
    result = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in result["CommonPrefixes"]] == ["a/", "b/", "z/"]
    assert [o["Key"] for o in result["Contents"]] == ["c", "d e", "f+g"]
    assert result["KeyCount"] == 6
    nested = s3.list_objects_v2(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in nested["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in nested["CommonPrefixes"]] == ["a/b/"]


def test_v2_pagination_with_tokens(s3: Any, bucket: str) -> None:
    seen: list[str] = []
    kwargs: dict[str, Any] = {"Bucket": bucket, "MaxKeys": 3}
    pages = 0
    while True:
        page = s3.list_objects_v2(**kwargs)
        pages += 1
        seen += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        assert page["MaxKeys"] == 3 and page["KeyCount"] == 3
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
    assert seen == sorted(KEYS, key=lambda k: k.encode()) and pages == 3
    paginator = s3.get_paginator("list_objects_v2")
    assert sum(
        len(p.get("Contents", []))
        for p in paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 2})
    ) == len(KEYS)


def test_v2_start_after(s3: Any, bucket: str) -> None:
    result = s3.list_objects_v2(Bucket=bucket, StartAfter="c")
    assert [o["Key"] for o in result["Contents"]] == ["d e", "f+g", "z/\u00e9"]
    assert result["StartAfter"] == "c"


def test_v1_marker_and_next_marker(s3: Any, bucket: str) -> None:
    page = s3.list_objects(Bucket=bucket, MaxKeys=2)
    assert [o["Key"] for o in page["Contents"]] == ["a/1", "a/2"] and page["IsTruncated"]
    assert "NextMarker" not in page  # only with a delimiter
    rest = s3.list_objects(Bucket=bucket, Marker="a/2")
    assert rest["Contents"][0]["Key"] == "a/b/3"
    assert rest["Contents"][0]["Owner"]["ID"]
    delimited = s3.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=2)
    assert delimited["IsTruncated"] and delimited["NextMarker"] == "b/"
    all_keys = [
        o["Key"]
        for p in s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 3})
        for o in p["Contents"]
    ]
    assert all_keys == sorted(KEYS, key=lambda k: k.encode())


def test_encoding_type_url(server: CofferServer, key: dict[str, Any], bucket: str) -> None:
    r = signed(server, key, "GET", f"/{bucket}", query="list-type=2&encoding-type=url&prefix=d%20")
    root = ElementTree.fromstring(r.content)
    assert root.find(NS + "EncodingType").text == "url"
    assert root.find(NS + "Prefix").text == "d%20"
    assert [e.text for e in root.iter(NS + "Key")] == ["d%20e"]
    r = signed(server, key, "GET", f"/{bucket}", query="encoding-type=url&prefix=z")
    assert [e.text for e in ElementTree.fromstring(r.content).iter(NS + "Key")] == ["z/%C3%A9"]
    # boto3 asks for url encoding and decodes it for the caller.
    assert_s3_error(
        signed(server, key, "GET", f"/{bucket}", query="encoding-type=base64"), 400, "InvalidArgument"
    )


def test_boto3_decodes_url_encoded_keys(s3: Any, bucket: str) -> None:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="f")["Contents"]]
    assert keys == ["f+g"]


@pytest.mark.parametrize("value", ["-1", "abc", "1.5"])
def test_bad_max_keys(server: CofferServer, key: dict[str, Any], bucket: str, value: str) -> None:
    r = signed(server, key, "GET", f"/{bucket}", query=f"list-type=2&max-keys={value}")
    assert_s3_error(r, 400, "InvalidArgument")


def test_max_keys_zero_and_clamped(s3: Any, bucket: str) -> None:
    zero = s3.list_objects_v2(Bucket=bucket, MaxKeys=0)
    assert zero["KeyCount"] == 0 and "Contents" not in zero
    big = s3.list_objects_v2(Bucket=bucket, MaxKeys=5000)
    assert big["MaxKeys"] == 1000 and big["KeyCount"] == len(KEYS)


def test_bad_continuation_token(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as err:
        s3.list_objects_v2(Bucket=bucket, ContinuationToken="!!!not-a-token!!!")
    assert client_error(err.value) == (400, "InvalidArgument")


def test_list_missing_bucket(s3: Any) -> None:
    with pytest.raises(ClientError) as err:
        s3.list_objects_v2(Bucket=unique("gone"))
    assert client_error(err.value) == (404, "NoSuchBucket")
