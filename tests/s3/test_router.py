"""The router names every request exactly as S3 would (pure, no server)."""

# ruff: noqa: E501 - one route per table row reads best

from __future__ import annotations

import pytest

from coffer.errors import S3Error
from coffer.s3.router import OPERATIONS, ObjectRef, route


@pytest.mark.parametrize(
    ("method", "bucket", "key", "query", "flags", "copy", "name", "action"),
    [
        ("GET", None, None, {}, (), False, "ListBuckets", "s3:ListAllMyBuckets"),
        ("GET", "b", None, {}, (), False, "ListObjects", "s3:ListBucket"),
        ("GET", "b", None, {"list-type": "2"}, (), False, "ListObjectsV2", "s3:ListBucket"),
        ("GET", "b", None, {"location": ""}, ("location",), False, "GetBucketLocation", "s3:GetBucketLocation"),
        ("GET", "b", None, {"uploads": ""}, ("uploads",), False, "ListMultipartUploads", "s3:ListBucketMultipartUploads"),
        ("GET", "b", None, {"versions": ""}, ("versions",), False, "ListObjectVersions", "s3:ListBucketVersions"),
        ("GET", "b", None, {"inventory": "", "id": "x"}, ("inventory",), False, "GetBucketInventoryConfiguration", "s3:GetInventoryConfiguration"),
        ("GET", "b", None, {"inventory": ""}, ("inventory",), False, "ListBucketInventoryConfigurations", "s3:GetInventoryConfiguration"),
        ("HEAD", "b", None, {}, (), False, "HeadBucket", "s3:ListBucket"),
        ("PUT", "b", None, {}, (), False, "CreateBucket", "s3:CreateBucket"),
        ("PUT", "b", None, {"policy": ""}, ("policy",), False, "PutBucketPolicy", "s3:PutBucketPolicy"),
        ("DELETE", "b", None, {}, (), False, "DeleteBucket", "s3:DeleteBucket"),
        ("DELETE", "b", None, {"lifecycle": ""}, ("lifecycle",), False, "DeleteBucketLifecycle", "s3:PutLifecycleConfiguration"),
        ("POST", "b", None, {"delete": ""}, ("delete",), False, "DeleteObjects", "s3:DeleteObject"),
        ("POST", "b", None, {}, (), False, "PostObject", "s3:PutObject"),
        ("GET", "b", "k", {}, (), False, "GetObject", "s3:GetObject"),
        ("GET", "b", "k", {"versionId": "v1"}, (), False, "GetObject", "s3:GetObjectVersion"),
        ("HEAD", "b", "k", {}, (), False, "HeadObject", "s3:GetObject"),
        ("GET", "b", "k", {"uploadId": "u"}, (), False, "ListParts", "s3:ListMultipartUploadParts"),
        ("GET", "b", "k", {"tagging": ""}, ("tagging",), False, "GetObjectTagging", "s3:GetObjectTagging"),
        ("GET", "b", "k", {"attributes": ""}, ("attributes",), False, "GetObjectAttributes", "s3:GetObjectAttributes"),
        ("PUT", "b", "k", {}, (), False, "PutObject", "s3:PutObject"),
        ("PUT", "b", "k", {}, (), True, "CopyObject", "s3:PutObject"),
        ("PUT", "b", "k", {"partNumber": "1", "uploadId": "u"}, (), False, "UploadPart", "s3:PutObject"),
        ("PUT", "b", "k", {"partNumber": "1", "uploadId": "u"}, (), True, "UploadPartCopy", "s3:PutObject"),
        ("PUT", "b", "k", {"tagging": ""}, ("tagging",), False, "PutObjectTagging", "s3:PutObjectTagging"),
        ("PUT", "b", "k", {"acl": ""}, ("acl",), False, "PutObjectAcl", "s3:PutObjectAcl"),
        ("POST", "b", "k", {"uploads": ""}, ("uploads",), False, "CreateMultipartUpload", "s3:PutObject"),
        ("POST", "b", "k", {"uploadId": "u"}, (), False, "CompleteMultipartUpload", "s3:PutObject"),
        ("POST", "b", "k", {"restore": ""}, ("restore",), False, "RestoreObject", "s3:RestoreObject"),
        ("DELETE", "b", "k", {}, (), False, "DeleteObject", "s3:DeleteObject"),
        ("DELETE", "b", "k", {"versionId": "v"}, (), False, "DeleteObject", "s3:DeleteObjectVersion"),
        ("DELETE", "b", "k", {"uploadId": "u"}, (), False, "AbortMultipartUpload", "s3:AbortMultipartUpload"),
        ("OPTIONS", "b", "k", {}, (), False, "PreflightRequest", ""),
    ],
)  # fmt: skip
def test_routes(
    method: str,
    bucket: str | None,
    key: str | None,
    query: dict[str, str],
    flags: tuple[str, ...],
    copy: bool,
    name: str,
    action: str,
) -> None:
    source = ObjectRef("src", "k") if copy else None
    op = route(method, bucket, key, query, flags=frozenset(flags), copy_source=source, has_copy_source=copy)
    assert op.name == name
    assert op.action == action
    assert op.bucket == bucket and op.key == key
    assert op.source == source


def test_resource_names() -> None:
    assert route("GET", None, None, {}).resource == "*"
    assert route("GET", "b", None, {}).resource == "b"
    assert route("GET", "b", "a/b c", {}).resource == "b/a/b c"


def test_every_aws_operation_has_a_name_and_action() -> None:
    for name in (
        "GetBucketLifecycle",
        "PutBucketLifecycle",
        "GetObjectLegalHold",
        "PutObjectRetention",
        "SelectObjectContent",
        "ListBucketMetricsConfigurations",
        "GetBucketWebsite",
        "PutBucketLogging",
        "CreateSession",
        "RenameObject",
    ):
        assert OPERATIONS[name].action.startswith(("s3:", "s3express:"))
        assert OPERATIONS[name].implemented is False


def test_unbuilt_subresource_is_not_mistaken_for_putobject() -> None:
    op = route("PUT", "b", "k", {"retention": ""}, flags=frozenset({"retention"}))
    assert op.name == "PutObjectRetention" and not op.implemented
    assert "Object Lock" in op.spec.reason


def test_unknown_flag_subresource_is_not_implemented() -> None:
    with pytest.raises(S3Error) as err:
        route("GET", "b", None, {"frobnicate": ""}, flags=frozenset({"frobnicate"}))
    assert err.value.code == "NotImplemented" and err.value.status == 501


def test_unknown_valued_argument_is_ignored_like_s3() -> None:
    assert route("GET", "b", "k", {"x-id": "GetObject", "foo": "bar"}).name == "GetObject"


@pytest.mark.parametrize(
    ("method", "bucket", "key", "query"),
    [
        ("PATCH", "b", "k", {}),
        ("POST", "b", "k", {}),
        ("PUT", None, None, {}),
        ("DELETE", None, None, {}),
    ],
)
def test_wrong_methods(method: str, bucket: str | None, key: str | None, query: dict[str, str]) -> None:
    with pytest.raises(S3Error) as err:
        route(method, bucket, key, query)
    assert err.value.code == "MethodNotAllowed" and err.value.status == 405
