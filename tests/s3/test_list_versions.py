"""Versioned buckets end to end: ListObjectVersions (order, paging, prefixes, encoding, errors)
and version-aware GET / HEAD / DELETE / DeleteObjects / CopyObject, with boto3, raw signed
requests, the aws CLI and rclone."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.clients import Cli
from tests.support.harness import CofferServer
from tests.support.s3 import NS, assert_s3_error, client_error, new_bucket, signed, unique


def _versioned(s3: Any, prefix: str = "ver") -> str:
    name = new_bucket(s3, prefix, versioned=True)
    return name


def _entries(
    server: CofferServer, key: dict[str, Any], bucket: str, query: str = ""
) -> list[tuple[str, ...]]:
    """(element, Key, VersionId, IsLatest) of a raw ListObjectVersions page, in document order."""
    r = signed(server, key, "GET", f"/{bucket}", query="versions" + (f"&{query}" if query else ""))
    assert r.status_code == 200, r.text
    root = ET.fromstring(r.content)
    out = []
    for child in root:
        tag = child.tag.removeprefix(NS)
        if tag in ("Version", "DeleteMarker"):
            out.append(
                (
                    tag,
                    child.findtext(f"{NS}Key") or "",
                    child.findtext(f"{NS}VersionId") or "",
                    child.findtext(f"{NS}IsLatest") or "",
                )
            )
    return out


@pytest.fixture(scope="module")
def history(s3: Any) -> dict[str, Any]:
    """A bucket with a known history: a (3 versions), b (1 version, then a delete marker),
    c/d (2 versions), c/e (1 version)."""
    bucket = _versioned(s3, "hist")
    ids: dict[str, list[str]] = {}
    for k, n in (("a", 3), ("b", 1), ("c/d", 2), ("c/e", 1)):
        ids[k] = [
            s3.put_object(Bucket=bucket, Key=k, Body=f"{k}-{i}".encode())["VersionId"] for i in range(n)
        ]
    marker = s3.delete_object(Bucket=bucket, Key="b")
    assert marker["DeleteMarker"] is True
    return {"bucket": bucket, "ids": ids, "marker": marker["VersionId"]}


def test_order_is_keys_ascending_and_each_key_newest_first(
    server: CofferServer, key: dict[str, Any], history: dict[str, Any]
) -> None:
    ids = history["ids"]
    expected = [
        ("Version", "a", ids["a"][2], "true"),
        ("Version", "a", ids["a"][1], "false"),
        ("Version", "a", ids["a"][0], "false"),
        ("DeleteMarker", "b", history["marker"], "true"),
        ("Version", "b", ids["b"][0], "false"),
        ("Version", "c/d", ids["c/d"][1], "true"),
        ("Version", "c/d", ids["c/d"][0], "false"),
        ("Version", "c/e", ids["c/e"][0], "true"),
    ]
    assert _entries(server, key, history["bucket"]) == expected


def test_boto3_sees_versions_and_delete_markers_with_their_fields(s3: Any, history: dict[str, Any]) -> None:
    page = s3.list_object_versions(Bucket=history["bucket"])
    assert page["IsTruncated"] is False and page["MaxKeys"] == 1000
    versions = page["Versions"]
    assert [v["Key"] for v in versions] == ["a", "a", "a", "b", "c/d", "c/d", "c/e"]
    first = versions[0]
    assert first["Size"] == 3 and first["ETag"].startswith('"') and first["StorageClass"] == "STANDARD"
    assert first["Owner"]["ID"].startswith("coreweave/")
    assert [(m["Key"], m["IsLatest"]) for m in page["DeleteMarkers"]] == [("b", True)]
    # ListObjectsV2 still sees only the live keys.
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=history["bucket"])["Contents"]] == ["a", "c/d", "c/e"]


@pytest.mark.parametrize("page_size", [1, 2, 3])
def test_paging_visits_every_version_exactly_once(
    server: CofferServer, key: dict[str, Any], s3: Any, history: dict[str, Any], page_size: int
) -> None:
    everything = _entries(server, key, history["bucket"])
    seen: list[tuple[str, ...]] = []
    query = f"max-keys={page_size}"
    while True:
        r = signed(server, key, "GET", f"/{history['bucket']}", query=f"versions&{query}")
        root = ET.fromstring(r.content)
        page = _entries(server, key, history["bucket"], query)
        assert len(page) <= page_size
        seen += page
        if root.findtext(f"{NS}IsTruncated") != "true":
            assert root.find(f"{NS}NextKeyMarker") is None
            break
        key_marker = root.findtext(f"{NS}NextKeyMarker")
        version_marker = root.findtext(f"{NS}NextVersionIdMarker")
        assert key_marker == page[-1][1] and version_marker == page[-1][2]
        query = f"max-keys={page_size}&key-marker={key_marker}&version-id-marker={version_marker}"
    assert seen == everything
    # boto3's paginator walks the same pages.
    pages = s3.get_paginator("list_object_versions").paginate(
        Bucket=history["bucket"], PaginationConfig={"PageSize": page_size}
    )
    count = sum(len(p.get("Versions", [])) + len(p.get("DeleteMarkers", [])) for p in pages)
    assert count == len(everything)


def test_key_marker_alone_skips_every_version_of_that_key(s3: Any, history: dict[str, Any]) -> None:
    page = s3.list_object_versions(Bucket=history["bucket"], KeyMarker="a")
    assert [v["Key"] for v in page["Versions"]] == ["b", "c/d", "c/d", "c/e"]
    assert page["KeyMarker"] == "a"


def test_prefix_and_delimiter_roll_up(s3: Any, history: dict[str, Any]) -> None:
    page = s3.list_object_versions(Bucket=history["bucket"], Delimiter="/")
    assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["c/"]
    assert {v["Key"] for v in page["Versions"]} == {"a", "b"}
    inside = s3.list_object_versions(Bucket=history["bucket"], Prefix="c/", Delimiter="/")
    assert [v["Key"] for v in inside["Versions"]] == ["c/d", "c/d", "c/e"]
    assert "CommonPrefixes" not in inside
    # A page that ends on a common prefix resumes after it.
    first = s3.list_object_versions(Bucket=history["bucket"], Delimiter="/", KeyMarker="b", MaxKeys=1)
    assert [p["Prefix"] for p in first["CommonPrefixes"]] == ["c/"] and first["IsTruncated"] is False


def test_encoding_type_url(server: CofferServer, key: dict[str, Any], s3: Any) -> None:
    bucket = _versioned(s3, "enc")
    s3.put_object(Bucket=bucket, Key="dir one/ünï cødé", Body=b"x")
    r = signed(
        server, key, "GET", f"/{bucket}", query="versions&encoding-type=url&delimiter=%2F&prefix=dir%20one%2F"
    )
    root = ET.fromstring(r.content)
    assert root.findtext(f"{NS}EncodingType") == "url"
    assert root.findtext(f"{NS}Prefix") == "dir%20one/"
    assert root.findtext(f"{NS}Version/{NS}Key") == "dir%20one/%C3%BCn%C3%AF%20c%C3%B8d%C3%A9"


def test_listing_errors(server: CofferServer, key: dict[str, Any], history: dict[str, Any]) -> None:
    path = f"/{history['bucket']}"
    r = signed(server, key, "GET", path, query=f"versions&version-id-marker={history['ids']['a'][0]}")
    assert_s3_error(r, 400, "InvalidArgument")
    assert "without a key marker" in r.text
    r = signed(server, key, "GET", path, query="versions&key-marker=a&version-id-marker=not-a-version")
    assert_s3_error(r, 400, "InvalidArgument")
    r = signed(server, key, "GET", path, query="versions&max-keys=-1")
    assert_s3_error(r, 400, "InvalidArgument")
    r = signed(server, key, "GET", path, query="versions&encoding-type=base64")
    assert_s3_error(r, 400, "InvalidArgument")
    r = signed(server, key, "GET", "/no-such-bucket-here", query="versions")
    assert_s3_error(r, 404, "NoSuchBucket")


def test_unversioned_bucket_lists_null_versions(s3: Any) -> None:
    name = new_bucket(s3, "plain")
    s3.put_object(Bucket=name, Key="k", Body=b"1")
    s3.put_object(Bucket=name, Key="k", Body=b"22")
    page = s3.list_object_versions(Bucket=name)
    assert [(v["Key"], v["VersionId"], v["IsLatest"], v["Size"]) for v in page["Versions"]] == [
        ("k", "null", True, 2)
    ]
    assert s3.get_object(Bucket=name, Key="k", VersionId="null")["Body"].read() == b"22"


def test_deleting_the_latest_version_promotes_the_previous_one(s3: Any) -> None:
    bucket = _versioned(s3)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    gone = s3.delete_object(Bucket=bucket, Key="k", VersionId=v2)
    assert gone["VersionId"] == v2 and "DeleteMarker" not in gone
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"one" and got["VersionId"] == v1
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [(v1, True)]


def test_delete_marker_versions(server: CofferServer, key: dict[str, Any], s3: Any) -> None:
    bucket = _versioned(s3)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    marker = s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
    # GET / HEAD of the delete marker by version: 405 with x-amz-delete-marker.
    r = signed(server, key, "GET", f"/{bucket}/k", query=f"versionId={marker}")
    assert_s3_error(r, 405, "MethodNotAllowed")
    assert r.headers["x-amz-delete-marker"] == "true" and r.headers["x-amz-version-id"] == marker
    r = signed(server, key, "HEAD", f"/{bucket}/k", query=f"versionId={marker}")
    assert r.status_code == 405 and r.headers["x-amz-delete-marker"] == "true" and r.content == b""
    # Without a version: 404 NoSuchKey, also marked.
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="k")
    assert client_error(err.value)[0] == 404
    assert err.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"
    # Removing the marker by its version id brings the object back.
    removed = s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    assert removed["DeleteMarker"] is True and removed["VersionId"] == marker
    assert s3.get_object(Bucket=bucket, Key="k")["VersionId"] == v1


def test_unknown_and_malformed_version_ids(server: CofferServer, key: dict[str, Any], s3: Any) -> None:
    bucket = _versioned(s3)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    unknown = "0" * 32
    r = signed(server, key, "GET", f"/{bucket}/k", query=f"versionId={unknown}")
    assert_s3_error(r, 404, "NoSuchVersion")
    assert f"<VersionId>{unknown}</VersionId>" in r.text
    for method in ("GET", "DELETE"):
        r = signed(server, key, method, f"/{bucket}/k", query="versionId=not%20a%20version")
        assert_s3_error(r, 400, "InvalidArgument")
    # A versioned bucket has no null version until one is written while suspended.
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket=bucket, Key="k", VersionId="null")
    assert client_error(err.value) == (404, "NoSuchVersion")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"null one")
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"null one"
    assert len(s3.list_object_versions(Bucket=bucket)["Versions"]) == 2
    # Nothing changed on any failure.
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"null one"


def test_delete_objects_by_version(s3: Any) -> None:
    bucket = _versioned(s3)
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"two")["VersionId"]
    marker = s3.delete_object(Bucket=bucket, Key="j")["VersionId"]
    result = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "k", "VersionId": v1}, {"Key": "j", "VersionId": marker}, {"Key": "k"}]},
    )
    deleted = {(d["Key"], d.get("VersionId")): d for d in result["Deleted"]}
    assert ("k", v1) in deleted and "DeleteMarker" not in deleted[("k", v1)]
    assert deleted[("j", marker)]["DeleteMarker"] is True
    assert deleted[("j", marker)]["DeleteMarkerVersionId"] == marker
    new_marker = deleted[("k", None)]
    assert new_marker["DeleteMarker"] is True and new_marker["DeleteMarkerVersionId"] not in (v1, v2)
    listing = s3.list_object_versions(Bucket=bucket)
    assert [v["VersionId"] for v in listing["Versions"]] == [v2]
    assert [m["Key"] for m in listing["DeleteMarkers"]] == ["k"]


def test_copy_from_a_version_and_headers(s3: Any) -> None:
    bucket = _versioned(s3)
    v1 = s3.put_object(Bucket=bucket, Key="src", Body=b"first")["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"second")
    copied = s3.copy_object(
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src", "VersionId": v1}
    )
    assert copied["CopySourceVersionId"] == v1 and copied["VersionId"] not in (v1, None)
    assert s3.get_object(Bucket=bucket, Key="dst", VersionId=copied["VersionId"])["Body"].read() == b"first"
    with pytest.raises(ClientError) as err:
        s3.copy_object(
            Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src", "VersionId": "f" * 32}
        )
    assert client_error(err.value) == (404, "NoSuchVersion")


def test_aws_cli_versions(aws: Cli, s3: Any, tmp_path: Path) -> None:
    bucket = unique("cliver")
    aws("s3api", "create-bucket", "--bucket", bucket)
    aws("s3api", "put-bucket-versioning", "--bucket", bucket, "--versioning-configuration", "Status=Enabled")
    src = tmp_path / "body.txt"
    ids = []
    for text in ("first", "second"):
        src.write_text(text)
        ids.append(
            aws("s3api", "put-object", "--bucket", bucket, "--key", "doc.txt", "--body", str(src))[
                "VersionId"
            ]
        )
    listed = aws("s3api", "list-object-versions", "--bucket", bucket)
    assert [(v["VersionId"], v["IsLatest"]) for v in listed["Versions"]] == [(ids[1], True), (ids[0], False)]
    out = tmp_path / "out.txt"
    got = aws("s3api", "get-object", "--bucket", bucket, "--key", "doc.txt", "--version-id", ids[0], str(out))
    assert got["VersionId"] == ids[0] and out.read_text() == "first"
    deleted = aws("s3api", "delete-object", "--bucket", bucket, "--key", "doc.txt", "--version-id", ids[1])
    assert deleted["VersionId"] == ids[1]
    assert s3.get_object(Bucket=bucket, Key="doc.txt")["Body"].read() == b"first"
    bad = aws(
        "s3api",
        "get-object",
        "--bucket",
        bucket,
        "--key",
        "doc.txt",
        "--version-id",
        "f" * 32,
        str(out),
        check=False,
    )
    assert bad.returncode != 0 and "NoSuchVersion" in bad.stderr
    bad = aws(
        "s3api", "head-object", "--bucket", bucket, "--key", "doc.txt", "--version-id", "zz", check=False
    )
    assert bad.returncode != 0 and "400" in bad.stderr


def test_rclone_lists_and_reads_old_versions(rclone: Cli, s3: Any) -> None:
    bucket = _versioned(s3, "rcver")
    s3.put_object(Bucket=bucket, Key="notes.txt", Body=b"old text")
    s3.put_object(Bucket=bucket, Key="notes.txt", Body=b"new text")
    assert rclone("backend", "versioning", f"coffer:{bucket}").stdout.strip() == "Enabled"
    names = rclone("lsf", "--s3-versions", f"coffer:{bucket}").stdout.split()
    assert "notes.txt" in names and len(names) == 2
    old = next(n for n in names if n != "notes.txt")
    assert old.startswith("notes-v") and old.endswith(".txt")
    assert rclone("cat", "--s3-versions", f"coffer:{bucket}/{old}").stdout == "old text"
    assert rclone("cat", f"coffer:{bucket}/notes.txt").stdout == "new text"
    # Without --s3-versions only the current version is listed.
    assert rclone("lsf", f"coffer:{bucket}").stdout.split() == ["notes.txt"]
