"""Object and bucket tagging end to end: the ?tagging operations (version-aware), the
x-amz-tagging header on PUT / CreateMultipartUpload / CopyObject, x-amz-tagging-count,
S3's limits and errors, with boto3, raw requests and the aws CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.clients import Cli
from tests.support.harness import CofferServer
from tests.support.s3 import assert_s3_error, client_error, new_bucket, signed, unique


def _tagset(tags: dict[str, str]) -> dict[str, Any]:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}


def _tags(response: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in response["TagSet"]}


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    return new_bucket(s3, "tag")


def test_object_tagging_round_trip(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
    assert "TagCount" not in s3.head_object(Bucket=bucket, Key="k")
    tags = {"team": "ml", "env": "prod", "empty": "", "spaces and + = . _ : / @ -": "ünï cødé"}
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=_tagset(tags))
    got = s3.get_object_tagging(Bucket=bucket, Key="k")
    assert _tags(got) == tags
    assert [t["Key"] for t in got["TagSet"]] == sorted(tags)  # key order, as S3 answers
    assert s3.head_object(Bucket=bucket, Key="k")["TagCount"] == 4
    assert s3.get_object(Bucket=bucket, Key="k")["TagCount"] == 4
    # Replace, then delete.
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=_tagset({"only": "one"}))
    assert _tags(s3.get_object_tagging(Bucket=bucket, Key="k")) == {"only": "one"}
    s3.delete_object_tagging(Bucket=bucket, Key="k")
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
    # An empty tag set clears too.
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=_tagset({"a": "b"}))
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": []})
    assert "TagCount" not in s3.head_object(Bucket=bucket, Key="k")


def test_tagging_a_specific_version(s3: Any) -> None:
    bucket = new_bucket(s3, "tagver", versioned=True)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"2")["VersionId"]
    put = s3.put_object_tagging(Bucket=bucket, Key="k", VersionId=v1, Tagging=_tagset({"old": "yes"}))
    assert put["VersionId"] == v1
    assert _tags(s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=v1)) == {"old": "yes"}
    latest = s3.get_object_tagging(Bucket=bucket, Key="k")
    assert latest["TagSet"] == [] and latest["VersionId"] == v2
    assert s3.head_object(Bucket=bucket, Key="k", VersionId=v1)["TagCount"] == 1
    deleted = s3.delete_object_tagging(Bucket=bucket, Key="k", VersionId=v1)
    assert deleted["VersionId"] == v1
    assert s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=v1)["TagSet"] == []
    with pytest.raises(ClientError) as err:
        s3.put_object_tagging(Bucket=bucket, Key="k", VersionId="0" * 32, Tagging=_tagset({"a": "b"}))
    assert client_error(err.value) == (404, "NoSuchVersion")
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    with pytest.raises(ClientError) as err:
        s3.put_object_tagging(Bucket=bucket, Key="k", VersionId=marker, Tagging=_tagset({"a": "b"}))
    assert client_error(err.value) == (405, "MethodNotAllowed")
    with pytest.raises(ClientError) as err:
        s3.get_object_tagging(Bucket=bucket, Key="k")
    assert client_error(err.value) == (404, "NoSuchKey")


def test_tagging_header_on_put_multipart_and_copy(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="h", Body=b"x", Tagging="a=1&b=two%20words&flag")
    assert _tags(s3.get_object_tagging(Bucket=bucket, Key="h")) == {"a": "1", "b": "two words", "flag": ""}
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", Tagging="stage=raw")
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"p")
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert _tags(s3.get_object_tagging(Bucket=bucket, Key="mp")) == {"stage": "raw"}
    # CopyObject copies the tags by default and replaces them with REPLACE.
    s3.copy_object(Bucket=bucket, Key="copy1", CopySource={"Bucket": bucket, "Key": "h"})
    assert _tags(s3.get_object_tagging(Bucket=bucket, Key="copy1")) == {
        "a": "1",
        "b": "two words",
        "flag": "",
    }
    s3.copy_object(
        Bucket=bucket,
        Key="copy2",
        CopySource={"Bucket": bucket, "Key": "h"},
        TaggingDirective="REPLACE",
        Tagging="new=tag",
    )
    assert _tags(s3.get_object_tagging(Bucket=bucket, Key="copy2")) == {"new": "tag"}
    s3.copy_object(
        Bucket=bucket, Key="copy3", CopySource={"Bucket": bucket, "Key": "h"}, TaggingDirective="REPLACE"
    )
    assert s3.get_object_tagging(Bucket=bucket, Key="copy3")["TagSet"] == []
    with pytest.raises(ClientError) as err:
        s3.copy_object(
            Bucket=bucket, Key="copy4", CopySource={"Bucket": bucket, "Key": "h"}, TaggingDirective="MERGE"
        )
    assert client_error(err.value) == (400, "InvalidArgument")


def _xml(tags: list[tuple[str, str]]) -> bytes:
    inner = "".join(f"<Tag><Key>{k}</Key><Value>{v}</Value></Tag>" for k, v in tags)
    return f"<Tagging><TagSet>{inner}</TagSet></Tagging>".encode()


@pytest.mark.parametrize(
    ("tags", "code", "message"),
    [
        ([(f"k{i}", "v") for i in range(11)], "BadRequest", "Object tags cannot be greater than 10"),
        ([("k" * 129, "v")], "InvalidTag", "The TagKey you have provided is invalid"),
        ([("k", "v" * 257)], "InvalidTag", "The TagValue you have provided is invalid"),
        ([("", "v")], "InvalidTag", "The TagKey you have provided is invalid"),
        ([("aws:owner", "v")], "InvalidTag", "Your TagKey cannot be prefixed with aws:"),
        ([("dup", "1"), ("dup", "2")], "InvalidTag", "Cannot provide multiple Tags with the same key"),
        ([("bad{char}", "v")], "InvalidTag", "The TagKey you have provided is invalid"),
        ([("k", "semi;colon")], "InvalidTag", "The TagValue you have provided is invalid"),
    ],
)
def test_invalid_object_tag_sets_change_nothing(
    server: CofferServer,
    key: dict[str, Any],
    s3: Any,
    bucket: str,
    tags: list[tuple[str, str]],
    code: str,
    message: str,
) -> None:
    s3.put_object(Bucket=bucket, Key="limits", Body=b"x")
    s3.put_object_tagging(Bucket=bucket, Key="limits", Tagging=_tagset({"keep": "me"}))
    r = signed(server, key, "PUT", f"/{bucket}/limits", query="tagging", body=_xml(tags))
    assert_s3_error(r, 400, code)
    assert message in r.text
    assert _tags(s3.get_object_tagging(Bucket=bucket, Key="limits")) == {"keep": "me"}


def test_limits_are_inclusive(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="max", Body=b"x")
    tags = {f"{i:03d}" + "k" * 125: "v" * 256 for i in range(10)}
    s3.put_object_tagging(Bucket=bucket, Key="max", Tagging=_tagset(tags))
    assert _tags(s3.get_object_tagging(Bucket=bucket, Key="max")) == tags


def test_malformed_tagging_documents(server: CofferServer, key: dict[str, Any], s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="m", Body=b"x")
    for body in (
        b"<Tagging><TagSet>",
        b"not xml",
        b"<Other/>",
        b"<Tagging/>",
        b"<Tagging><TagSet><Tag><Key>k</Key></Tag></TagSet></Tagging>",
    ):
        r = signed(server, key, "PUT", f"/{bucket}/m", query="tagging", body=body)
        assert_s3_error(r, 400, "MalformedXML")
    r = signed(server, key, "PUT", f"/{bucket}/missing", query="tagging", body=_xml([("a", "b")]))
    assert_s3_error(r, 404, "NoSuchKey")


def test_invalid_tagging_header_stores_nothing(
    server: CofferServer, key: dict[str, Any], s3: Any, bucket: str
) -> None:
    cases = [
        ("a=1&a=2", 400, "InvalidArgument"),
        ("&".join(f"k{i}=v" for i in range(11)), 400, "BadRequest"),
        ("aws%3Ax=1", 400, "InvalidTag"),
        ("TagSet%3D%5B%7BKey%3Dstring%7D%5D", 400, "InvalidTag"),
    ]
    for value, status, code in cases:
        r = signed(server, key, "PUT", f"/{bucket}/hdr", body=b"body", headers={"x-amz-tagging": value})
        assert_s3_error(r, status, code)
        with pytest.raises(ClientError) as err:
            s3.head_object(Bucket=bucket, Key="hdr")
        assert client_error(err.value)[0] == 404
    r = signed(server, key, "POST", f"/{bucket}/hdr", query="uploads", headers={"x-amz-tagging": "a=1&a=2"})
    assert_s3_error(r, 400, "InvalidArgument")
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_bucket_tagging(server: CofferServer, key: dict[str, Any], s3: Any) -> None:
    name = new_bucket(s3, "btag")
    with pytest.raises(ClientError) as err:
        s3.get_bucket_tagging(Bucket=name)
    assert client_error(err.value) == (404, "NoSuchTagSet")
    tags = {f"key{i}": f"value{i}" for i in range(50)}
    s3.put_bucket_tagging(Bucket=name, Tagging=_tagset(tags))
    assert _tags(s3.get_bucket_tagging(Bucket=name)) == tags
    r = signed(
        server, key, "PUT", f"/{name}", query="tagging", body=_xml([(f"k{i}", "v") for i in range(51)])
    )
    assert_s3_error(r, 400, "InvalidTag")
    r = signed(server, key, "PUT", f"/{name}", query="tagging", body=_xml([("aws:cloudformation", "v")]))
    assert_s3_error(r, 400, "InvalidTag")
    r = signed(server, key, "PUT", f"/{name}", query="tagging", body=b"<Tagging><TagSet></Tagging>")
    assert_s3_error(r, 400, "MalformedXML")
    assert _tags(s3.get_bucket_tagging(Bucket=name)) == tags  # failures changed nothing
    s3.delete_bucket_tagging(Bucket=name)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_tagging(Bucket=name)
    assert client_error(err.value) == (404, "NoSuchTagSet")
    with pytest.raises(ClientError) as err:
        s3.get_bucket_tagging(Bucket=unique("absent"))
    assert client_error(err.value) == (404, "NoSuchBucket")


def test_aws_cli_tagging(aws: Cli, tmp_path: Path) -> None:
    bucket = unique("clitag")
    aws("s3api", "create-bucket", "--bucket", bucket)
    body = tmp_path / "f.txt"
    body.write_text("hello")
    aws(
        "s3api",
        "put-object",
        "--bucket",
        bucket,
        "--key",
        "f.txt",
        "--body",
        str(body),
        "--tagging",
        "a=1&b=2",
    )
    assert _tags(aws("s3api", "get-object-tagging", "--bucket", bucket, "--key", "f.txt")) == {
        "a": "1",
        "b": "2",
    }
    tagging = json.dumps(_tagset({"team": "data"}))
    aws("s3api", "put-object-tagging", "--bucket", bucket, "--key", "f.txt", "--tagging", tagging)
    assert aws("s3api", "head-object", "--bucket", bucket, "--key", "f.txt")["TagCount"] == 1
    aws("s3api", "delete-object-tagging", "--bucket", bucket, "--key", "f.txt")
    assert aws("s3api", "get-object-tagging", "--bucket", bucket, "--key", "f.txt")["TagSet"] == []
    aws("s3api", "put-bucket-tagging", "--bucket", bucket, "--tagging", json.dumps(_tagset({"cost": "lab"})))
    assert _tags(aws("s3api", "get-bucket-tagging", "--bucket", bucket)) == {"cost": "lab"}
    aws("s3api", "delete-bucket-tagging", "--bucket", bucket)
    missing = aws("s3api", "get-bucket-tagging", "--bucket", bucket, check=False)
    assert missing.returncode != 0 and "NoSuchTagSet" in missing.stderr
    too_many = json.dumps(_tagset({f"k{i}": "v" for i in range(11)}))
    bad = aws(
        "s3api",
        "put-object-tagging",
        "--bucket",
        bucket,
        "--key",
        "f.txt",
        "--tagging",
        too_many,
        check=False,
    )
    assert bad.returncode != 0 and "Object tags cannot be greater than 10" in bad.stderr
    # The s3 high-level commands pass tags through too.
    aws("s3", "cp", str(body), f"s3://{bucket}/cp.txt")
    aws("s3api", "put-object-tagging", "--bucket", bucket, "--key", "cp.txt", "--tagging", tagging)
    assert _tags(aws("s3api", "get-object-tagging", "--bucket", bucket, "--key", "cp.txt")) == {
        "team": "data"
    }
