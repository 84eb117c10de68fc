"""ACLs, Object Ownership and Object Lock: every bucket behaves as an S3 bucket with ACLs
disabled (BucketOwnerEnforced), and Object Lock answers NotImplemented; boto3 and the aws CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.support.clients import Cli
from tests.support.harness import CofferServer
from tests.support.policies import open_to_everyone, org_of
from tests.support.s3 import assert_s3_error, client_error, new_bucket, signed, unique

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
LOCK_ON = {"ObjectLockEnabled": "Enabled"}


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    name = new_bucket(s3, "acl")
    s3.put_object(Bucket=name, Key="obj", Body=b"x")
    return name


def _owner_only(acl: dict[str, Any]) -> str:
    owner = acl["Owner"]["ID"]
    assert owner.startswith("coreweave/")
    assert acl["Grants"] == [
        {
            "Grantee": {"ID": owner, "DisplayName": owner, "Type": "CanonicalUser"},
            "Permission": "FULL_CONTROL",
        }
    ]
    return str(owner)


def test_get_acls_show_the_owners_full_control(s3: Any, bucket: str) -> None:
    owner = _owner_only(s3.get_bucket_acl(Bucket=bucket))
    assert _owner_only(s3.get_object_acl(Bucket=bucket, Key="obj")) == owner
    with pytest.raises(ClientError) as err:
        s3.get_object_acl(Bucket=bucket, Key="absent")
    assert client_error(err.value) == (404, "NoSuchKey")


def test_put_acls_accept_only_owner_full_control(server: CofferServer, key: dict[str, Any], s3: Any,
                                                 bucket: str) -> None:  # fmt: skip
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    s3.put_object_acl(Bucket=bucket, Key="obj", ACL="private")
    s3.put_object_acl(Bucket=bucket, Key="obj", ACL="bucket-owner-full-control")
    for canned in ("public-read", "public-read-write", "authenticated-read"):
        with pytest.raises(ClientError) as err:
            s3.put_bucket_acl(Bucket=bucket, ACL=canned)
        assert client_error(err.value) == (400, "AccessControlListNotSupported")
        with pytest.raises(ClientError) as err:
            s3.put_object_acl(Bucket=bucket, Key="obj", ACL=canned)
        assert client_error(err.value) == (400, "AccessControlListNotSupported")
    with pytest.raises(ClientError) as err:
        s3.put_bucket_acl(Bucket=bucket, GrantRead=f'uri="{ALL_USERS}"')
    assert client_error(err.value) == (400, "AccessControlListNotSupported")
    # A document granting the owner FULL_CONTROL and nothing else is what S3 accepts too.
    acl = s3.get_bucket_acl(Bucket=bucket)
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={"Owner": acl["Owner"], "Grants": acl["Grants"]})
    public = acl["Grants"] + [{"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"}]
    with pytest.raises(ClientError) as err:
        s3.put_object_acl(
            Bucket=bucket, Key="obj", AccessControlPolicy={"Owner": acl["Owner"], "Grants": public}
        )
    assert client_error(err.value) == (400, "AccessControlListNotSupported")
    r = signed(server, key, "PUT", f"/{bucket}", query="acl", body=b"<AccessControlPolicy><Owner>")
    assert_s3_error(r, 400, "MalformedACLError")
    r = signed(server, key, "PUT", f"/{bucket}", query="acl")
    assert_s3_error(r, 400, "MissingSecurityHeader")
    _owner_only(s3.get_bucket_acl(Bucket=bucket))  # nothing changed


def test_acl_headers_on_writes(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="private", Body=b"x", ACL="private")
    s3.put_object(Bucket=bucket, Key="bofc", Body=b"x", ACL="bucket-owner-full-control")
    refused = [
        lambda: s3.put_object(Bucket=bucket, Key="pub", Body=b"x", ACL="public-read"),
        lambda: s3.put_object(Bucket=bucket, Key="pub", Body=b"x", GrantRead=f'uri="{ALL_USERS}"'),
        lambda: s3.create_multipart_upload(Bucket=bucket, Key="pub", ACL="public-read"),
        lambda: s3.copy_object(Bucket=bucket, Key="pub", CopySource={"Bucket": bucket, "Key": "obj"},
                               ACL="public-read-write"),
    ]  # fmt: skip
    for call in refused:
        with pytest.raises(ClientError) as err:
            call()
        assert client_error(err.value) == (400, "AccessControlListNotSupported")
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="pub")
    assert client_error(err.value)[0] == 404
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_create_bucket_refusals_create_nothing(s3: Any) -> None:
    cases = [
        ({"ACL": "public-read"}, (400, "InvalidBucketAclWithObjectOwnership")),
        ({"GrantFullControl": f'uri="{ALL_USERS}"'}, (400, "InvalidBucketAclWithObjectOwnership")),
        ({"ObjectLockEnabledForBucket": True}, (501, "NotImplemented")),
        ({"ObjectOwnership": "Nobody"}, (400, "InvalidArgument")),
    ]
    for extra, expected in cases:
        name = unique("nob")
        with pytest.raises(ClientError) as err:
            s3.create_bucket(Bucket=name, **extra)
        assert client_error(err.value) == expected
        with pytest.raises(ClientError) as err:
            s3.head_bucket(Bucket=name)
        assert client_error(err.value)[0] == 404
    name = unique("okb")
    s3.create_bucket(Bucket=name, ACL="private", ObjectOwnership="BucketOwnerEnforced")
    assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_ownership_controls(s3: Any, bucket: str) -> None:
    """BucketOwnerEnforced is the default; the other rules (ACLs on) are tests/s3/test_acls.py's."""
    rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    with pytest.raises(ClientError) as err:
        s3.put_bucket_ownership_controls(
            Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "X"}]}
        )
    assert client_error(err.value) == (400, "MalformedXML")


def test_object_lock_is_not_implemented(
    server: CofferServer, key: dict[str, Any], s3: Any, bucket: str
) -> None:
    calls = [
        lambda: s3.get_object_lock_configuration(Bucket=bucket),
        lambda: s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=LOCK_ON),
        lambda: s3.get_object_retention(Bucket=bucket, Key="obj"),
        lambda: s3.put_object_retention(Bucket=bucket, Key="obj", Retention={"Mode": "GOVERNANCE",
                                        "RetainUntilDate": "2099-01-01T00:00:00Z"}),
        lambda: s3.get_object_legal_hold(Bucket=bucket, Key="obj"),
        lambda: s3.put_object_legal_hold(Bucket=bucket, Key="obj", LegalHold={"Status": "ON"}),
        lambda: s3.put_object(Bucket=bucket, Key="locked", Body=b"x", ObjectLockMode="COMPLIANCE",
                              ObjectLockRetainUntilDate="2099-01-01T00:00:00Z"),
        lambda: s3.put_object(Bucket=bucket, Key="locked", Body=b"x", ObjectLockLegalHoldStatus="ON"),
        lambda: s3.create_multipart_upload(Bucket=bucket, Key="locked", ObjectLockLegalHoldStatus="ON"),
    ]  # fmt: skip
    for call in calls:
        with pytest.raises(ClientError) as err:
            call()
        assert client_error(err.value) == (501, "NotImplemented")
        assert "Object Lock is not supported by Coffer" in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="locked")
    assert client_error(err.value)[0] == 404


def test_versioned_object_acl(s3: Any) -> None:
    name = new_bucket(s3, "aclver", versioned=True)
    v1 = s3.put_object(Bucket=name, Key="k", Body=b"1")["VersionId"]
    got = s3.get_object_acl(Bucket=name, Key="k", VersionId=v1)
    _owner_only(got)
    assert got["ResponseMetadata"]["HTTPHeaders"]["x-amz-version-id"] == v1
    with pytest.raises(ClientError) as err:
        s3.get_object_acl(Bucket=name, Key="k", VersionId="0" * 32)
    assert client_error(err.value) == (404, "NoSuchVersion")


def test_aws_cli_acls_and_object_lock(aws: Cli, tmp_path: Path) -> None:
    name = unique("cliacl")
    aws("s3api", "create-bucket", "--bucket", name)
    acl = aws("s3api", "get-bucket-acl", "--bucket", name)
    assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL"]
    body = tmp_path / "f.txt"
    body.write_text("x")
    aws("s3", "cp", str(body), f"s3://{name}/private.txt", "--acl", "private")
    aws(
        "s3api",
        "put-object-acl",
        "--bucket",
        name,
        "--key",
        "private.txt",
        "--acl",
        "bucket-owner-full-control",
    )
    refused = aws("s3", "cp", str(body), f"s3://{name}/public.txt", "--acl", "public-read", check=False)
    assert refused.returncode != 0 and "AccessControlListNotSupported" in refused.stderr
    refused = aws("s3api", "put-bucket-acl", "--bucket", name, "--acl", "public-read", check=False)
    assert refused.returncode != 0 and "AccessControlListNotSupported" in refused.stderr
    controls = aws("s3api", "get-bucket-ownership-controls", "--bucket", name)
    assert controls["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    lock = aws("s3api", "get-object-lock-configuration", "--bucket", name, check=False)
    assert lock.returncode != 0 and "NotImplemented" in lock.stderr
    assert aws("s3", "ls", f"s3://{name}/").split()[-1] == "private.txt"


def test_public_read_is_a_bucket_policy(server: CofferServer, key: dict[str, Any], s3: Any) -> None:
    """What the docs tell users to do instead of `public-read`: a bucket policy granting "*"
    s3:GetObject (the organization must allow "*" too, as for every anonymous request)."""
    name = new_bucket(s3, "public")
    s3.put_object(Bucket=name, Key="site/index.html", Body=b"<h1>hi</h1>")
    with pytest.raises(ClientError) as err:
        s3.put_bucket_acl(Bucket=name, ACL="public-read")
    assert client_error(err.value) == (400, "AccessControlListNotSupported")
    url = f"{server.s3_url}/{name}/site/index.html"
    assert httpx.get(url, timeout=30).status_code == 403
    open_to_everyone(
        server, s3, name, "site/", "s3:GetObject", org=org_of(server, key), sid="public", name="site"
    )
    try:
        r = httpx.get(url, timeout=30)
        assert r.status_code == 200 and r.content == b"<h1>hi</h1>"
        assert httpx.put(url, content=b"defaced", timeout=30).status_code == 403
    finally:
        with server.api() as c:
            assert c.delete("/v1/cwobject/access-policy/public-site").status_code == 200
    assert s3.get_object(Bucket=name, Key="site/index.html")["Body"].read() == b"<h1>hi</h1>"
    _owner_only(s3.get_bucket_acl(Bucket=name))  # the ACL never changed
