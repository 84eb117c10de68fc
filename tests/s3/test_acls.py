"""Object Ownership, ACLs and Block Public Access with ACLs on: boto3, the aws CLI, curl and
raw signed requests against a real server (both backends).

Organization A (the bootstrap admin's) lets everyone use S3 in its organization policies
(step 1), so what a bucket admits is decided by its bucket policy and, with ACLs on, its ACLs
(step 2). Organization B's partner may use S3 anywhere by B's policies; A's buckets admit it
only through a bucket policy or an ACL grant.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.clients import Cli
from tests.support.harness import CofferServer
from tests.support.policies import (
    can_i,
    create_org,
    create_user,
    delete,
    denied,
    ensure_ok,
    org_of,
    policy,
    s3_of,
    statement,
)
from tests.support.s3 import assert_s3_error, client_error, signed, unique

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
DEFAULT_PAB = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": False,
    "RestrictPublicBuckets": False,
}
OPEN_PAB = dict.fromkeys(DEFAULT_PAB, False)


@dataclass
class World:
    org_a: str
    admin: str
    s3: Any
    org_b: str
    partner: str  # B's principal, as B knows it
    partner_id: str  # ... and its canonical ID seen from A's buckets
    partner_token: str
    partner_s3: Any


@pytest.fixture(scope="module")
def world(server: CofferServer, key: dict[str, Any], s3: Any) -> Iterator[World]:
    org_a = org_of(server, key)
    ensure_ok(server, policy("everyone-s3", statement("s3", ["s3:*"], ["*"], ["*"])))
    org_b = create_org(server)
    partner, token = create_user(server, unique("partner"), org=org_b, admin=True)
    ensure_ok(server, policy("b-s3", statement("all-s3", ["s3:*"], ["*"], [partner])), token)
    yield World(
        org_a=org_a,
        admin=key["principalName"],
        s3=s3,
        org_b=org_b,
        partner=partner,
        partner_id=f"arn:aws:iam::{org_b}:{partner}",
        partner_token=token,
        partner_s3=s3_of(server, token),
    )
    assert delete(server, "everyone-s3").status_code == 200


def acls_on(s3: Any, prefix: str, ownership: str = "ObjectWriter", *, open_: bool = False, **kw: Any) -> str:
    name = unique(prefix)
    s3.create_bucket(Bucket=name, ObjectOwnership=ownership, **kw)
    if open_:
        s3.delete_public_access_block(Bucket=name)
    return name


def error_of(call: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as err:
        call()
    return client_error(err.value)


def grants(acl: dict[str, Any]) -> list[tuple[str, str]]:
    """(grantee, permission) pairs of a Get*Acl answer: the ID or the group URI."""
    return [(g["Grantee"].get("ID") or g["Grantee"]["URI"], g["Permission"]) for g in acl["Grants"]]


def anonymous_curl(url: str, tmp: Path) -> tuple[int, bytes]:
    """A GET with real curl and no credentials at all."""
    out = tmp / "curl-body"
    done = subprocess.run(
        ["curl", "-sS", "-o", str(out), "-w", "%{http_code}", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(done.stdout), out.read_bytes()


def org_statement(bucket: str, org: str, effect: str, actions: list[str] | None = None) -> dict[str, Any]:
    """A bucket-policy statement about every principal of organization `org`."""
    arn = f"arn:aws:s3:::{bucket}"
    return {
        "Sid": f"{effect}-{org}",
        "Effect": effect,
        "Principal": {"CW": "*"},
        "Action": actions or ["s3:*"],
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"StringEquals": {"cw:PrincipalOrgID": org}},
    }


def share_with_b(w: World, bucket: str, *actions: str) -> None:
    """A bucket policy: A keeps everything, B's principals may do `actions` (only)."""
    statements = [
        org_statement(bucket, w.org_a, "Allow"),
        org_statement(bucket, w.org_b, "Allow", list(actions)),
    ]
    w.s3.put_bucket_policy(
        Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": statements})
    )


# --- CreateBucket ---------------------------------------------------------------------------------
def test_create_bucket_takes_ownership_and_grants(world: World) -> None:
    w, s3 = world, world.s3
    name = acls_on(s3, "own", GrantRead=f'id="{w.partner_id}"')
    rules = s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "ObjectWriter"}]
    assert s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"] == DEFAULT_PAB
    acl = s3.get_bucket_acl(Bucket=name)
    assert acl["Owner"]["ID"] == w.admin
    assert grants(acl) == [(w.partner_id, "READ")]  # explicit grants are the whole ACL, as in AWS
    assert acl["Grants"][0]["Grantee"]["Type"] == "CanonicalUser"
    # READ on the bucket is listing it, nothing more.
    assert w.partner_s3.list_objects_v2(Bucket=name)["KeyCount"] == 0
    assert denied(lambda: w.partner_s3.put_object(Bucket=name, Key="k", Body=b"x"))
    # The owner keeps reading and writing the bucket's ACL even when the ACL grants it nothing.
    s3.put_bucket_acl(Bucket=name, ACL="private")
    assert grants(s3.get_bucket_acl(Bucket=name)) == [(w.admin, "FULL_CONTROL")]
    assert denied(lambda: w.partner_s3.list_objects_v2(Bucket=name))


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"ACL": "public-read"}, (403, "AccessDenied")),  # BlockPublicAcls is on for new buckets
        ({"GrantRead": 'emailAddress="someone@example.com"'}, (400, "UnresolvableGrantByEmailAddress")),
        ({"GrantRead": 'id="nobody"'}, (400, "InvalidArgument")),
        ({"GrantRead": 'uri="http://acs.amazonaws.com/groups/global/Everyone"'}, (400, "InvalidArgument")),
        ({"ACL": "private", "GrantRead": f'uri="{AUTHENTICATED}"'}, (400, "InvalidRequest")),
        ({"ACL": "world-writable"}, (400, "InvalidArgument")),
    ],
)
def test_create_bucket_refusals_create_nothing(world: World, extra: dict[str, str], expected: Any) -> None:
    name = unique("no")
    assert error_of(lambda: world.s3.create_bucket(Bucket=name, ObjectOwnership="ObjectWriter", **extra)) == (
        expected
    )
    assert error_of(lambda: world.s3.head_bucket(Bucket=name))[0] == 404


# --- the canned-ACL flows tools use ----------------------------------------------------------------
def test_aws_cli_public_read_then_anonymous_curl(
    world: World, aws: Cli, server: CofferServer, tmp_path: Path
) -> None:
    name = unique("site")
    aws("s3api", "create-bucket", "--bucket", name, "--object-ownership", "ObjectWriter")
    page, secret = tmp_path / "index.html", tmp_path / "secret.txt"
    page.write_text("<h1>hello</h1>")
    secret.write_text("psst")
    refused = aws("s3", "cp", str(page), f"s3://{name}/index.html", "--acl", "public-read", check=False)
    assert refused.returncode != 0 and "AccessDenied" in refused.stderr  # BlockPublicAcls
    aws("s3api", "delete-public-access-block", "--bucket", name)
    aws("s3", "cp", str(page), f"s3://{name}/index.html", "--acl", "public-read")
    aws("s3", "cp", str(secret), f"s3://{name}/secret.txt")
    url = f"{server.s3_url}/{name}"
    assert anonymous_curl(f"{url}/index.html", tmp_path) == (200, b"<h1>hello</h1>")
    assert anonymous_curl(f"{url}/secret.txt", tmp_path)[0] == 403
    assert anonymous_curl(url, tmp_path)[0] == 403  # READ on the object is not READ on the bucket
    acl = aws("s3api", "get-object-acl", "--bucket", name, "--key", "index.html")
    assert grants(acl) == [(world.admin, "FULL_CONTROL"), (ALL_USERS, "READ")]
    # IgnorePublicAcls: the grant stays, and counts for nothing.
    config = "BlockPublicAcls=false,IgnorePublicAcls=true,BlockPublicPolicy=false,RestrictPublicBuckets=false"
    aws("s3api", "put-public-access-block", "--bucket", name, "--public-access-block-configuration", config)
    assert anonymous_curl(f"{url}/index.html", tmp_path)[0] == 403
    # BlockPublicAcls: public-read-write is refused, on upload and on PutObjectAcl alike.
    config = config.replace(
        "BlockPublicAcls=false,IgnorePublicAcls=true", "BlockPublicAcls=true,IgnorePublicAcls=false"
    )
    aws("s3api", "put-public-access-block", "--bucket", name, "--public-access-block-configuration", config)
    refused = aws("s3", "cp", str(page), f"s3://{name}/rw.html", "--acl", "public-read-write", check=False)
    assert refused.returncode != 0 and "AccessDenied" in refused.stderr
    refused = aws("s3api", "put-object-acl", "--bucket", name, "--key", "secret.txt", "--acl",
                  "public-read-write", check=False)  # fmt: skip
    assert refused.returncode != 0 and "AccessDenied" in refused.stderr
    assert anonymous_curl(f"{url}/index.html", tmp_path) == (200, b"<h1>hello</h1>")  # existing ACLs stand
    assert world.s3.head_object(Bucket=name, Key="secret.txt")["ContentLength"] == 4
    assert error_of(lambda: world.s3.head_object(Bucket=name, Key="rw.html"))[0] == 404


def test_object_writer_the_writer_owns_what_it_writes(world: World) -> None:
    w = world
    name = acls_on(w.s3, "writer")
    share_with_b(w, name, "s3:PutObject")
    w.partner_s3.put_object(Bucket=name, Key="from-b", Body=b"b's")
    acl = w.partner_s3.get_object_acl(Bucket=name, Key="from-b")  # the owner may always read its ACL
    assert acl["Owner"]["ID"] == w.partner_id
    assert grants(acl) == [(w.partner_id, "FULL_CONTROL")]
    assert w.s3.get_object_acl(Bucket=name, Key="from-b")["Owner"]["ID"] == w.partner_id
    listed = w.s3.list_objects_v2(Bucket=name, FetchOwner=True)["Contents"]
    assert [(o["Key"], o["Owner"]["ID"]) for o in listed] == [("from-b", w.partner_id)]
    # Its FULL_CONTROL lets the writer read it back; the bucket policy alone would not.
    assert w.partner_s3.get_object(Bucket=name, Key="from-b")["Body"].read() == b"b's"
    w.partner_s3.put_object_acl(Bucket=name, Key="from-b", ACL="bucket-owner-read")
    assert grants(w.s3.get_object_acl(Bucket=name, Key="from-b")) == [
        (w.partner_id, "FULL_CONTROL"),
        (w.admin, "READ"),
    ]
    # What A writes is A's, and B has no grant on it.
    w.s3.put_object(Bucket=name, Key="from-a", Body=b"a's")
    assert w.s3.get_object_acl(Bucket=name, Key="from-a")["Owner"]["ID"] == w.admin
    assert denied(lambda: w.partner_s3.get_object(Bucket=name, Key="from-a"))
    assert denied(lambda: w.partner_s3.get_object_acl(Bucket=name, Key="from-a"))


def test_bucket_owner_preferred_with_bucket_owner_full_control(world: World) -> None:
    w = world
    name = acls_on(w.s3, "preferred", "BucketOwnerPreferred")
    share_with_b(w, name, "s3:PutObject")
    w.partner_s3.put_object(Bucket=name, Key="handed", Body=b"x", ACL="bucket-owner-full-control")
    acl = w.s3.get_object_acl(Bucket=name, Key="handed")
    assert acl["Owner"]["ID"] == w.admin
    assert grants(acl) == [(w.admin, "FULL_CONTROL")]
    assert denied(lambda: w.partner_s3.get_object(Bucket=name, Key="handed"))  # no longer B's
    w.partner_s3.put_object(Bucket=name, Key="kept", Body=b"x")
    assert w.s3.get_object_acl(Bucket=name, Key="kept")["Owner"]["ID"] == w.partner_id
    # A multipart upload's owner and ACL are fixed at CreateMultipartUpload, applied at Complete.
    up = w.partner_s3.create_multipart_upload(Bucket=name, Key="mp", ACL="bucket-owner-full-control")
    etag = w.partner_s3.upload_part(Bucket=name, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"p")
    w.partner_s3.complete_multipart_upload(
        Bucket=name,
        Key="mp",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag["ETag"]}]},
    )
    assert w.s3.get_object_acl(Bucket=name, Key="mp")["Owner"]["ID"] == w.admin


# --- the decision ----------------------------------------------------------------------------------
def test_an_org_or_bucket_deny_beats_an_acl_grant(world: World, server: CofferServer, tmp_path: Path) -> None:
    w = world
    name = acls_on(w.s3, "deny", open_=True)
    for key in ("open/a", "secret/b"):
        w.s3.put_object(Bucket=name, Key=key, Body=b"data", ACL="public-read")
    url = f"{server.s3_url}/{name}"
    assert anonymous_curl(f"{url}/secret/b", tmp_path) == (200, b"data")
    deny = statement("no-secrets", ["s3:GetObject"], [f"{name}/secret/*"], ["*"], "Deny")
    ensure_ok(server, policy("deny-secrets", deny))
    try:
        assert anonymous_curl(f"{url}/secret/b", tmp_path)[0] == 403
        assert anonymous_curl(f"{url}/open/a", tmp_path)[0] == 200
        why = server.audit("denied", from_log=True, principal=None, resource=f"{name}/secret/b")
        assert why[-1]["rule"] == "org-deny"
    finally:
        assert delete(server, "deny-secrets").status_code == 200
    arn = f"arn:aws:s3:::{name}"
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "no-open", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
             "Resource": f"{arn}/open/*", "Condition": {"Null": {"cw:PrincipalOrgID": "true"}}},
        ],
    }  # fmt: skip
    w.s3.put_bucket_policy(Bucket=name, Policy=json.dumps(document))
    assert anonymous_curl(f"{url}/open/a", tmp_path)[0] == 403
    why = server.audit("denied", from_log=True, principal=None, resource=f"{name}/open/a")
    assert why[-1]["rule"] == "bucket-deny"
    # The policy denies nothing else, and names no one: the ACL still admits the rest.
    assert anonymous_curl(f"{url}/secret/b", tmp_path) == (200, b"data")


def test_grants_admit_another_organization_and_can_i_agrees(world: World, server: CofferServer) -> None:
    w, token = world, world.partner_token
    name = acls_on(w.s3, "grant")
    w.s3.put_object(Bucket=name, Key="shared", Body=b"s")
    w.s3.put_object(Bucket=name, Key="mine", Body=b"m")
    assert not can_i(server, ["s3:ListBucket"], [name], token)
    assert not can_i(server, ["s3:GetObject"], [f"{name}/shared"], token)
    w.s3.put_bucket_acl(Bucket=name, GrantRead=f'id="{w.partner_id}"', GrantFullControl=f'id="{w.admin}"')
    w.s3.put_object_acl(
        Bucket=name, Key="shared", GrantRead=f'id="{w.partner_id}"', GrantFullControl=f'id="{w.admin}"'
    )
    assert can_i(server, ["s3:ListBucket"], [name], token)
    assert can_i(server, ["s3:GetObject"], [f"{name}/shared"], token)
    assert not can_i(server, ["s3:GetObject"], [f"{name}/mine"], token)
    assert not can_i(server, ["s3:PutObject"], [f"{name}/new"], token)
    assert [o["Key"] for o in w.partner_s3.list_objects_v2(Bucket=name)["Contents"]] == ["mine", "shared"]
    assert w.partner_s3.get_object(Bucket=name, Key="shared")["Body"].read() == b"s"
    assert denied(lambda: w.partner_s3.get_object(Bucket=name, Key="mine"))
    # WRITE on the bucket: B may write (and owns what it writes: ObjectWriter).
    w.s3.put_bucket_acl(Bucket=name, GrantWrite=f'id="{w.partner_id}"', GrantFullControl=f'id="{w.admin}"')
    assert can_i(server, ["s3:PutObject"], [f"{name}/new"], token)
    w.partner_s3.put_object(Bucket=name, Key="new", Body=b"n")
    assert w.s3.get_object_acl(Bucket=name, Key="new")["Owner"]["ID"] == w.partner_id
    # A bucket policy Deny wins over every grant, for S3 and can-i alike.
    statements = [org_statement(name, w.org_a, "Allow"), org_statement(name, w.org_b, "Deny")]
    w.s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Statement": statements}))
    assert not can_i(server, ["s3:GetObject"], [f"{name}/shared"], token)
    assert denied(lambda: w.partner_s3.get_object(Bucket=name, Key="shared"))
    assert denied(lambda: w.partner_s3.put_object(Bucket=name, Key="new", Body=b"again"))


def test_restrict_public_buckets_and_block_public_policy(world: World) -> None:
    w = world
    name = unique("pab")
    w.s3.create_bucket(Bucket=name)  # BucketOwnerEnforced: Block Public Access concerns policies too
    w.s3.put_object(Bucket=name, Key="k", Body=b"v")
    arn = f"arn:aws:s3:::{name}"
    own = org_statement(name, w.org_a, "Allow")
    public = {
        "Sid": "all",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"{arn}/*",
    }
    assert error_of(lambda: w.s3.get_bucket_policy_status(Bucket=name)) == (404, "NoSuchBucketPolicy")
    w.s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Statement": [own]}))
    assert w.s3.get_bucket_policy_status(Bucket=name)["PolicyStatus"] == {"IsPublic": False}
    w.s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Statement": [own, public]}))
    assert w.s3.get_bucket_policy_status(Bucket=name)["PolicyStatus"] == {"IsPublic": True}
    assert w.partner_s3.get_object(Bucket=name, Key="k")["Body"].read() == b"v"
    config = {**OPEN_PAB, "RestrictPublicBuckets": True}
    w.s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=config)
    assert denied(lambda: w.partner_s3.get_object(Bucket=name, Key="k"))
    assert w.s3.get_object(Bucket=name, Key="k")["Body"].read() == b"v"
    config = {**OPEN_PAB, "BlockPublicPolicy": True}
    w.s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=config)
    assert w.partner_s3.get_object(Bucket=name, Key="k")["Body"].read() == b"v"  # an existing policy stands
    refused = lambda: w.s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Statement": [own, public]}))  # noqa: E731
    assert error_of(refused) == (403, "AccessDenied")
    w.s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Statement": [own]}))  # not public: accepted
    assert w.s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"] == config
    w.s3.delete_public_access_block(Bucket=name)
    assert error_of(lambda: w.s3.get_public_access_block(Bucket=name)) == (
        404,
        "NoSuchPublicAccessBlockConfiguration",
    )
    w.s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Statement": [own, public]}))


# --- Put/Get*Acl in detail ---------------------------------------------------------------------------
def test_access_control_policy_documents(world: World, server: CofferServer, key: dict[str, Any]) -> None:
    w, s3 = world, world.s3
    name = acls_on(s3, "doc", open_=True)
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    owner = {"ID": w.admin}
    document = {
        "Owner": owner,
        "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": w.admin}, "Permission": "FULL_CONTROL"},
            {"Grantee": {"Type": "Group", "URI": AUTHENTICATED}, "Permission": "READ"},
            {
                "Grantee": {"Type": "CanonicalUser", "ID": f"arn:aws:iam::{w.org_b}:root"},
                "Permission": "READ_ACP",
            },
        ],
    }
    s3.put_bucket_acl(Bucket=name, AccessControlPolicy=document)
    assert grants(s3.get_bucket_acl(Bucket=name)) == [
        (w.admin, "FULL_CONTROL"),
        (AUTHENTICATED, "READ"),
        (f"arn:aws:iam::{w.org_b}:root", "READ_ACP"),
    ]
    # The wire, as the SDK hides it: xsi:type on each Grantee, a Group by its URI.
    raw = signed(server, key, "GET", f"/{name}", query="acl")
    assert raw.status_code == 200
    assert 'xsi:type="Group"><URI>http://acs.amazonaws.com/groups/global/AuthenticatedUsers</URI>' in raw.text
    assert f'xsi:type="CanonicalUser"><ID>{w.admin}</ID>' in raw.text
    assert w.partner_s3.get_bucket_acl(Bucket=name)["Owner"]["ID"] == w.admin  # READ_ACP to all of B
    assert w.partner_s3.list_objects_v2(Bucket=name)["KeyCount"] == 1  # AuthenticatedUsers READ
    # The same principal spelled as an ARN of the bucket's own organization is the bare ID.
    s3.put_object_acl(Bucket=name, Key="k", GrantFullControl=f'id="arn:aws:iam::{w.org_a}:{w.admin}"')
    assert grants(s3.get_object_acl(Bucket=name, Key="k")) == [(w.admin, "FULL_CONTROL")]
    # One header may name several grantees.
    r = signed(server, key, "PUT", f"/{name}/k", query="acl",
               headers={"x-amz-grant-read": f'id="{w.partner_id}", uri="{ALL_USERS}"'})  # fmt: skip
    assert r.status_code == 200, r.text
    assert grants(s3.get_object_acl(Bucket=name, Key="k")) == [(w.partner_id, "READ"), (ALL_USERS, "READ")]

    def body(*entries: str, owner_id: str = w.admin) -> bytes:
        return (f"<AccessControlPolicy><Owner><ID>{owner_id}</ID></Owner><AccessControlList>"
                + "".join(entries) + "</AccessControlList></AccessControlPolicy>").encode()  # fmt: skip

    def grant(grantee: str, permission: str = "READ") -> str:
        return f'<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" {grantee}</Grantee>' \
            f"<Permission>{permission}</Permission></Grant>"  # fmt: skip

    email = grant('xsi:type="AmazonCustomerByEmail"><EmailAddress>a@example.com</EmailAddress>')
    canonical = grant(f'xsi:type="CanonicalUser"><ID>{w.admin}</ID>', "FULL_CONTROL")
    for payload, status, code in [
        (body(email), 400, "UnresolvableGrantByEmailAddress"),
        (body(canonical, owner_id=w.partner_id), 403, "AccessDenied"),  # an ACL never changes an owner
        (body(grant(f'xsi:type="CanonicalUser"><ID>{w.admin}</ID>', "EVERYTHING")), 400, "MalformedACLError"),
        (body(grant('xsi:type="CanonicalUser"><ID>nobody</ID>')), 400, "InvalidArgument"),
        (body(*[grant(f'xsi:type="CanonicalUser"><ID>coreweave/u{i}</ID>') for i in range(101)]), 400,
         "MalformedACLError"),
        (b"<AccessControlPolicy><Owner>", 400, "MalformedACLError"),
    ]:  # fmt: skip
        assert_s3_error(signed(server, key, "PUT", f"/{name}/k", query="acl", body=payload), status, code)
    both = signed(server, key, "PUT", f"/{name}/k", query="acl", body=body(canonical),
                  headers={"x-amz-acl": "private"})  # fmt: skip
    assert_s3_error(both, 400, "InvalidRequest")
    assert_s3_error(signed(server, key, "PUT", f"/{name}", query="acl"), 400, "MissingSecurityHeader")
    assert grants(s3.get_object_acl(Bucket=name, Key="k")) == [(w.partner_id, "READ"), (ALL_USERS, "READ")]


def test_versions_copies_and_uploads_carry_their_own_acls(
    world: World, server: CofferServer, tmp_path: Path
) -> None:
    w, s3 = world, world.s3
    name = acls_on(s3, "carry", open_=True)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=name, Key="k", Body=b"1", ACL="public-read")["VersionId"]
    v2 = s3.put_object(Bucket=name, Key="k", Body=b"2")["VersionId"]
    assert grants(s3.get_object_acl(Bucket=name, Key="k", VersionId=v1))[1:] == [(ALL_USERS, "READ")]
    assert grants(s3.get_object_acl(Bucket=name, Key="k")) == [(w.admin, "FULL_CONTROL")]
    put = s3.put_object_acl(Bucket=name, Key="k", VersionId=v2, ACL="authenticated-read")
    assert put["ResponseMetadata"]["HTTPHeaders"]["x-amz-version-id"] == v2
    assert grants(s3.get_object_acl(Bucket=name, Key="k"))[1:] == [(AUTHENTICATED, "READ")]
    # CopyObject: the destination's ACL is the copy request's own (never the source's).
    s3.copy_object(Bucket=name, Key="copy", CopySource={"Bucket": name, "Key": "k", "VersionId": v1})
    assert grants(s3.get_object_acl(Bucket=name, Key="copy")) == [(w.admin, "FULL_CONTROL")]
    s3.copy_object(Bucket=name, Key="pub-copy", CopySource={"Bucket": name, "Key": "k"}, ACL="public-read")
    assert grants(s3.get_object_acl(Bucket=name, Key="pub-copy"))[1:] == [(ALL_USERS, "READ")]
    up = s3.create_multipart_upload(Bucket=name, Key="mp", ACL="public-read")
    part = s3.upload_part(Bucket=name, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"multi")
    parts = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]}
    s3.complete_multipart_upload(Bucket=name, Key="mp", UploadId=up["UploadId"], MultipartUpload=parts)
    assert anonymous_curl(f"{server.s3_url}/{name}/mp", tmp_path) == (200, b"multi")
    assert anonymous_curl(f"{server.s3_url}/{name}/pub-copy", tmp_path) == (200, b"2")
    assert anonymous_curl(f"{server.s3_url}/{name}/copy", tmp_path)[0] == 403


# --- ownership changes ------------------------------------------------------------------------------
def test_ownership_changes_follow_aws_rules(
    world: World, server: CofferServer, key: dict[str, Any], tmp_path: Path
) -> None:
    w, s3 = world, world.s3
    name = acls_on(s3, "switch", ACL="private")
    s3.delete_public_access_block(Bucket=name)
    s3.put_bucket_acl(Bucket=name, ACL="public-read")
    s3.put_object(Bucket=name, Key="pub", Body=b"p", ACL="public-read")
    enforce = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    # A bucket ACL that grants anyone but the owner must go first, as AWS requires.
    assert error_of(lambda: s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=enforce)) == (
        400,
        "InvalidBucketAclWithObjectOwnership",
    )
    s3.put_bucket_acl(Bucket=name, ACL="private")
    s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=enforce)
    # ACLs off: object ACLs are kept but count for nothing; the bucket owner owns everything.
    assert anonymous_curl(f"{server.s3_url}/{name}/pub", tmp_path)[0] == 403
    assert grants(s3.get_object_acl(Bucket=name, Key="pub")) == [(w.admin, "FULL_CONTROL")]
    assert error_of(lambda: s3.put_object(Bucket=name, Key="x", Body=b"x", ACL="public-read")) == (
        400,
        "AccessControlListNotSupported",
    )
    s3.put_bucket_ownership_controls(
        Bucket=name, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    )
    assert anonymous_curl(f"{server.s3_url}/{name}/pub", tmp_path) == (200, b"p")
    # No controls at all: ACLs on, writers own their objects; Get answers as AWS does.
    s3.delete_bucket_ownership_controls(Bucket=name)
    assert error_of(lambda: s3.get_bucket_ownership_controls(Bucket=name)) == (
        404,
        "OwnershipControlsNotFoundError",
    )
    s3.put_object(Bucket=name, Key="after", Body=b"a", ACL="public-read")
    assert anonymous_curl(f"{server.s3_url}/{name}/after", tmp_path) == (200, b"a")
    unknown = b"<OwnershipControls><Rule><ObjectOwnership>X</ObjectOwnership></Rule></OwnershipControls>"
    for bad in (b"<OwnershipControls/>", unknown):
        r = signed(server, key, "PUT", f"/{name}", query="ownershipControls", body=bad)
        assert_s3_error(r, 400, "MalformedXML")


def test_public_access_block_documents(world: World, server: CofferServer, key: dict[str, Any]) -> None:
    name = unique("pabdoc")
    world.s3.create_bucket(Bucket=name)
    doc = (
        "<PublicAccessBlockConfiguration><BlockPublicAcls>{}</BlockPublicAcls>"
        + "</PublicAccessBlockConfiguration>"
    )
    body = doc.format("TRUE").encode()
    assert signed(server, key, "PUT", f"/{name}", query="publicAccessBlock", body=body).status_code == 200
    got = world.s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    assert got == {**OPEN_PAB, "BlockPublicAcls": True}  # absent elements are false
    bad = doc.format("yes").encode()
    r = signed(server, key, "PUT", f"/{name}", query="publicAccessBlock", body=bad)
    assert_s3_error(r, 400, "MalformedXML")
    r = signed(server, key, "DELETE", f"/{name}", query="publicAccessBlock")
    assert r.status_code == 204
    raw = signed(server, key, "GET", f"/{name}", query="publicAccessBlock")
    assert_s3_error(raw, 404, "NoSuchPublicAccessBlockConfiguration")
    assert f"<BucketName>{name}</BucketName>" in raw.text
    # Only the bucket's organization (through its policies) may change it.
    assert denied(lambda: world.partner_s3.delete_public_access_block(Bucket=name))


def test_granting_on_a_write_needs_put_object_acl(world: World, server: CofferServer) -> None:
    """x-amz-acl / x-amz-grant-* on PutObject, CopyObject or CreateMultipartUpload set an ACL:
    s3:PutObject alone may not hand out what s3:PutObjectAcl guards (as in AWS)."""
    w = world
    name = acls_on(w.s3, "grantw", open_=True)
    share_with_b(w, name, "s3:PutObject")  # B may write, not set ACLs
    everyone_in_b = f"arn:aws:iam::{w.org_b}:root"
    assert denied(
        lambda: w.partner_s3.put_object(Bucket=name, Key="k", Body=b"x", GrantRead=f"id={everyone_in_b}")
    )
    assert denied(lambda: w.partner_s3.put_object(Bucket=name, Key="k", Body=b"x", ACL="public-read"))
    assert denied(lambda: w.partner_s3.create_multipart_upload(Bucket=name, Key="k", ACL="public-read"))
    # Nothing beyond the owner and the bucket owner: PutObject is enough.
    w.partner_s3.put_object(Bucket=name, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    w.partner_s3.put_object(Bucket=name, Key="k", Body=b"x")
    # A principal of the bucket's own organization whose policies deny s3:PutObjectAcl.
    member, token = create_user(server, unique("noacl"))
    mint = statement("mint", ["cwobject:CreateAccessKey"], ["*"], [member])
    deny = statement("no-acls", ["s3:PutObjectAcl"], ["*"], [member], "Deny")
    ensure_ok(server, policy(unique("no-acls"), mint, deny))
    member_s3 = s3_of(server, token)
    assert denied(lambda: member_s3.put_object(Bucket=name, Key="m", Body=b"x", ACL="public-read"))
    source = {"Bucket": name, "Key": "k"}
    assert denied(lambda: member_s3.copy_object(Bucket=name, Key="m", CopySource=source, ACL="public-read"))
    member_s3.put_object(Bucket=name, Key="m", Body=b"x")
    assert grants(w.s3.get_object_acl(Bucket=name, Key="m")) == [(member, "FULL_CONTROL")]
