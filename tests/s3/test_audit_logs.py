"""Audit logs into the organization's bucket (reference §6.10), end to end on a real server.

With `audit_flush_seconds = 1`, control-plane changes (keys minted and revoked, policies,
federation configurations, settings) and S3 requests on buckets with auditLoggingEnabled
appear as gzip-compressed JSON lines under `control-plane/` and `data-plane/` of
`cw-<org-id>-audit-logs` within seconds, read back with boto3 with every reference field;
nothing is logged while the switches are off; and nobody can write, delete or reconfigure
the audit bucket, or create a bucket of its shape.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.auditlogs import (
    CONTROL,
    CONTROL_FIELDS,
    DATA,
    DATA_FIELDS,
    audit_bucket,
    audit_objects,
    audit_records,
    set_bucket_logging,
    set_org_logging,
    wait_for_records,
)
from tests.support.harness import CofferServer
from tests.support.idp import rsa_key
from tests.support.policies import (
    create_user,
    ensure_ok,
    org_of,
    policy,
    s3_of,
    statement,
)
from tests.support.policies import delete as delete_policy
from tests.support.s3 import client_error, new_bucket, s3_client, unique

FLUSH = 1.0
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
KEY_PATH = re.compile(r"(control|data)-plane/\d{4}/\d\d/\d\d/\d\d/[A-Za-z0-9-]+\.json\.gz")


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {"extra_args": ["--audit-flush-seconds", str(FLUSH)]}


@pytest.fixture(scope="module")
def org(server: CofferServer, key: dict[str, Any]) -> str:
    return org_of(server, key)


@pytest.fixture(scope="module")
def admin(key: dict[str, Any]) -> str:
    """The bootstrap admin's principal (`coreweave/<uid>`), who makes every change here."""
    return str(key["principalName"])


def member(server: CofferServer, name: str) -> tuple[str, Any]:
    """A new user of the organization with a key (minting needs a policy) and no S3 rights."""
    principal, token = create_user(server, unique(name))
    mint_policy = statement("mint", ["cwobject:CreateAccessKey"], ["*"], [principal])
    ensure_ok(server, policy(unique("mint"), mint_policy))
    return principal, s3_of(server, token)


def mint(server: CofferServer, duration: int = 0) -> str:
    return str(server.mint_key(duration=duration, name=unique("k"))["accessKeyId"])


def revoke(server: CofferServer, key_id: str) -> None:
    with server.api() as c:
        r = c.post("/v1/cwobject/revoke-access-key/access-key", json={"accessKey": key_id})
    assert r.status_code == 200, r.text


def by_identifier(records: list[dict[str, Any]], identifier: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("identifier") == identifier]


def by_request(records: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("requestId") == request_id]


def request_id(response: dict[str, Any]) -> str:
    return str(response["ResponseMetadata"]["RequestId"])


def quiet_period() -> None:
    """Long enough for several flushes: what was going to appear has appeared."""
    time.sleep(FLUSH * 3.5)


# --- control plane -------------------------------------------------------------------------------
def test_control_plane_events_land_in_the_bucket(server: CofferServer, s3: Any, org: str, admin: str) -> None:
    set_org_logging(server, control=True)
    minted = mint(server, duration=3600)
    revoked = mint(server)
    revoke(server, revoked)
    name = unique("audited-policy")
    ensure_ok(server, policy(name, statement("s", ["s3:GetObject"], ["nothing/*"], ["coreweave/nobody"])))
    delete_policy(server, name)
    with server.api() as c:
        r = c.post(
            "/v1beta1/workload-federation/oidc-configs",
            json={
                "name": unique("cfg"),
                "audience": unique("aud"),
                "issuerUrl": f"https://{unique('idp')}.example.test/oidc",
                "jwks": {"keys": [rsa_key("audit-log-test").jwk("k1")]},
            },
        )
    assert r.status_code == 200, r.text
    config_id = r.json()["config"]["uid"]
    bucket = new_bucket(s3, "settings")
    assert set_bucket_logging(server, bucket, True).status_code == 200

    wanted = {minted, revoked, name, config_id, bucket}
    records = wait_for_records(
        s3,
        org,
        CONTROL,
        lambda rs: wanted <= {r["identifier"] for r in rs} and len(by_identifier(rs, name)) == 2,
    )
    for record in records:
        assert CONTROL_FIELDS <= set(record), record
        assert STAMP.fullmatch(record["timestamp"]), record
    [created] = [r for r in by_identifier(records, minted) if r["event"] == "access_key_minted"]
    assert created["action"] == "cwobject:CreateAccessKey"
    assert created["principal"] == admin
    assert created["principalRole"] == "ObjectStorageAdmin"
    assert created["duration_seconds"] == 3600
    gone = {r["event"]: r for r in by_identifier(records, revoked)}
    assert gone["access_key_minted"]["duration_seconds"] == 0
    assert gone["access_key_revoked"]["action"] == "cwobject:RevokeAccessKeyByAccessKey"
    assert gone["access_key_revoked"]["principal"] == admin
    assert gone["access_key_revoked"]["duration_seconds"] is None
    assert [r["action"] for r in by_identifier(records, name)] == [
        "cwobject:EnsureAccessPolicy",
        "cwobject:DeleteAccessPolicy",
    ]
    [config] = by_identifier(records, config_id)
    assert config["action"] == "cwobject:CreateOIDCConfig" and config["event"] == "federation_config_changed"
    [settings] = by_identifier(records, bucket)
    assert settings["action"] == "cwobject:SetBucketSettings" and settings["principal"] == admin
    # Turning control-plane logging on is itself on record, under the organization's id.
    switched = [r for r in by_identifier(records, org) if r["action"] == "cwobject:SetOrganizationSettings"]
    assert switched and switched[0]["principal"] == admin
    # Every object is gzip-compressed JSON lines under a date/hour partition.
    for key in audit_objects(s3, org, CONTROL):
        assert KEY_PATH.fullmatch(key), key
    head = s3.head_object(Bucket=audit_bucket(org), Key=next(iter(audit_objects(s3, org, CONTROL))))
    assert head["ContentType"] == "application/gzip"


def test_no_control_plane_events_while_the_switch_is_off(server: CofferServer, s3: Any, org: str) -> None:
    set_org_logging(server, control=True)
    set_org_logging(server, control=False)
    unlogged = mint(server)
    revoke(server, unlogged)
    quiet_period()
    records = audit_records(s3, org, CONTROL)
    assert by_identifier(records, unlogged) == []
    # ... but switching it off is on record (the reference lists enabling and disabling).
    switches = [r for r in by_identifier(records, org) if r["action"] == "cwobject:SetOrganizationSettings"]
    assert len(switches) >= 2


# --- data plane ----------------------------------------------------------------------------------
def test_data_plane_events_for_audited_buckets(
    server: CofferServer, s3: Any, key: dict[str, Any], org: str, admin: str
) -> None:
    set_org_logging(server, data=True)
    audited, plain = new_bucket(s3, "audited"), new_bucket(s3, "plain")
    assert set_bucket_logging(server, audited, True).status_code == 200
    ids: dict[str, str] = {}
    ids["PutObject"] = request_id(s3.put_object(Bucket=audited, Key="dir/a.txt", Body=b"hello"))
    ids["GetObject"] = request_id(s3.get_object(Bucket=audited, Key="dir/a.txt"))
    ids["ListObjectsV2"] = request_id(s3.list_objects_v2(Bucket=audited))
    ids["DeleteObject"] = request_id(s3.delete_object(Bucket=audited, Key="dir/a.txt"))
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=audited, Key="dir/a.txt")
    ids["GetObject404"] = missing.value.response["ResponseMetadata"]["RequestId"]
    ids["ListBuckets"] = request_id(s3.list_buckets())
    created = unique("created")
    ids["CreateBucket"] = request_id(s3.create_bucket(Bucket=created))
    plain_ids = [
        request_id(s3.put_object(Bucket=plain, Key="b.txt", Body=b"x")),
        request_id(s3.get_object(Bucket=plain, Key="b.txt")),
        request_id(s3.list_objects_v2(Bucket=plain)),
        request_id(s3.delete_object(Bucket=plain, Key="b.txt")),
    ]

    records = wait_for_records(s3, org, DATA, lambda rs: all(by_request(rs, i) for i in ids.values()))
    arn = f"arn:aws:iam::{org}:{admin}"
    host = f"127.0.0.1:{server.s3_port}"
    expected = {
        "PutObject": ("s3:PutObject", f"arn:aws:s3:::{audited}/dir/a.txt", audited, 200),
        "GetObject": ("s3:GetObject", f"arn:aws:s3:::{audited}/dir/a.txt", audited, 200),
        "ListObjectsV2": ("s3:ListBucket", f"arn:aws:s3:::{audited}", audited, 200),
        "DeleteObject": ("s3:DeleteObject", f"arn:aws:s3:::{audited}/dir/a.txt", audited, 204),
        "GetObject404": ("s3:GetObject", f"arn:aws:s3:::{audited}/dir/a.txt", audited, 404),
        "ListBuckets": ("s3:ListAllMyBuckets", "arn:aws:s3:::*", None, 200),
        "CreateBucket": ("s3:CreateBucket", f"arn:aws:s3:::{created}", created, 200),
    }
    for name, rid in ids.items():
        [record] = by_request(records, rid)
        assert DATA_FIELDS <= set(record), record
        action, resource, bucket_name, status = expected[name]
        assert record["action"] == action, record
        assert record["aws:arn"] == resource, record
        assert record["bucketName"] == bucket_name, record
        assert record["status"] == status, record
        assert record["principal"] == arn
        assert record["accessKeyId"] == key["accessKeyId"]
        assert record["sourceIp"] == "127.0.0.1"
        assert record["host"] == host
        assert STAMP.fullmatch(record["timestamp"])
    for rid in plain_ids:  # a bucket without auditLoggingEnabled logs nothing
        assert by_request(records, rid) == []
    for key_name in audit_objects(s3, org, DATA):
        assert KEY_PATH.fullmatch(key_name), key_name


def test_no_data_plane_events_while_the_org_switch_is_off(server: CofferServer, s3: Any, org: str) -> None:
    set_org_logging(server, data=True)
    audited = new_bucket(s3, "switch")
    assert set_bucket_logging(server, audited, True).status_code == 200
    on = request_id(s3.put_object(Bucket=audited, Key="on", Body=b"1"))
    wait_for_records(s3, org, DATA, lambda rs: bool(by_request(rs, on)))
    set_org_logging(server, data=False)
    off = [
        request_id(s3.put_object(Bucket=audited, Key="off", Body=b"2")),
        request_id(s3.get_object(Bucket=audited, Key="off")),
        request_id(s3.list_buckets()),
    ]
    quiet_period()
    records = audit_records(s3, org, DATA)
    assert all(by_request(records, rid) == [] for rid in off)
    set_org_logging(server, data=True)
    again = request_id(s3.get_object(Bucket=audited, Key="off"))
    wait_for_records(s3, org, DATA, lambda rs: bool(by_request(rs, again)))


def test_denied_requests_on_an_audited_bucket_are_logged(server: CofferServer, s3: Any, org: str) -> None:
    """A refused request is a record too, with the refusing status and who tried."""
    set_org_logging(server, data=True)
    audited = new_bucket(s3, "denied")
    assert set_bucket_logging(server, audited, True).status_code == 200
    principal, stranger = member(server, "nobody")  # no S3 rights: every S3 call is refused
    with pytest.raises(ClientError) as err:
        stranger.get_object(Bucket=audited, Key="secret")
    assert client_error(err.value) == (403, "AccessDenied")
    rid = err.value.response["ResponseMetadata"]["RequestId"]
    [record] = wait_for_records(s3, org, DATA, lambda rs: bool(by_request(rs, rid)))[-1:]
    assert record["requestId"] == rid and record["status"] == 403
    assert record["principal"] == f"arn:aws:iam::{org}:{principal}"


# --- the bucket itself ---------------------------------------------------------------------------
def _refused(call: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as err:
        call()
    return client_error(err.value)


def test_the_audit_bucket_cannot_be_written_or_deleted(server: CofferServer, s3: Any, org: str) -> None:
    set_org_logging(server, control=True)
    marker = mint(server)
    wait_for_records(s3, org, CONTROL, lambda rs: bool(by_identifier(rs, marker)))
    bucket = audit_bucket(org)
    existing = next(iter(audit_objects(s3, org, CONTROL)))
    denied = (403, "AccessDenied")
    assert _refused(lambda: s3.put_object(Bucket=bucket, Key="forged.json.gz", Body=b"x")) == denied
    assert _refused(lambda: s3.put_object(Bucket=bucket, Key=existing, Body=b"x")) == denied
    assert _refused(lambda: s3.delete_object(Bucket=bucket, Key=existing)) == denied
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": existing}]})
    assert [e["Code"] for e in result.get("Errors", [])] == ["AccessDenied"]
    assert (
        _refused(
            lambda: s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": existing})
        )
        == denied
    )
    assert _refused(lambda: s3.create_multipart_upload(Bucket=bucket, Key="mpu")) == denied
    assert (
        _refused(lambda: s3.put_object_tagging(Bucket=bucket, Key=existing, Tagging={"TagSet": []})) == denied
    )
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": f"arn:aws:s3:::{bucket}/*"}
        ],
    }
    assert _refused(lambda: s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))) == denied
    assert _refused(lambda: s3.delete_bucket_policy(Bucket=bucket)) == denied
    assert (
        _refused(
            lambda: s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        )
        == denied
    )
    assert (
        _refused(
            lambda: s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]})
        )
        == denied
    )
    assert _refused(lambda: s3.delete_bucket(Bucket=bucket)) == denied
    r = set_bucket_logging(server, bucket, True)  # nor reconfigured through the control plane
    assert r.status_code == 403, r.text
    # Reading is what the organization's policies allow (the bootstrap admin: s3:*).
    assert s3.get_object(Bucket=bucket, Key=existing)["Body"].read()
    assert any(o["Key"] == existing for o in s3.list_objects_v2(Bucket=bucket)["Contents"])


def test_reserved_bucket_names_cannot_be_created(server: CofferServer, s3: Any, org: str) -> None:
    for name in (audit_bucket(org), audit_bucket("someoneelse1"), "cw-anything"):
        with pytest.raises(ClientError) as err:
            s3.create_bucket(Bucket=name)
        assert client_error(err.value) == (400, "InvalidBucketName")
        assert "reserved" in err.value.response["Error"]["Message"]


def test_reading_needs_the_organization_policy(server: CofferServer, s3: Any, org: str) -> None:
    set_org_logging(server, control=True)
    marker = mint(server)
    wait_for_records(s3, org, CONTROL, lambda rs: bool(by_identifier(rs, marker)))
    bucket = audit_bucket(org)
    principal, auditor = member(server, "auditor")
    assert _refused(lambda: auditor.list_objects_v2(Bucket=bucket))[0] == 403
    name = unique("audit-readers")
    ensure_ok(
        server,
        policy(
            name,
            statement(
                "read-audit-logs", ["s3:GetObject", "s3:ListBucket"], [bucket, f"{bucket}/*"], [principal]
            ),
        ),
    )
    try:
        records = audit_records(auditor, org, CONTROL)
        assert by_identifier(records, marker)
        # Allowed to read is not allowed to write: the policy grants no more, and storage refuses anyway.
        assert _refused(lambda: auditor.put_object(Bucket=bucket, Key="x", Body=b"x"))[0] == 403
    finally:
        delete_policy(server, name)
    assert s3_client(server, server.mint_key()).list_objects_v2(Bucket=bucket)["KeyCount"] >= 1


def test_the_audit_bucket_refuses_acl_cors_settings_and_form_writes(
    server: CofferServer, s3: Any, org: str
) -> None:
    """Beyond the writes above: ACLs, CORS, Block Public Access, ownership controls, a
    form (POST) upload and an UploadPart to an invented upload are all refused too."""
    import httpx

    set_org_logging(server, control=True)
    marker = mint(server)
    wait_for_records(s3, org, CONTROL, lambda rs: bool(by_identifier(rs, marker)))
    bucket = audit_bucket(org)
    existing = next(iter(audit_objects(s3, org, CONTROL)))
    calls = [
        # (ACL "private" is accepted as a no-op, as on any BucketOwnerEnforced bucket.)
        lambda: s3.put_object_acl(Bucket=bucket, Key=existing, ACL="public-read"),
        lambda: s3.put_bucket_acl(Bucket=bucket, ACL="public-read"),
        lambda: s3.put_bucket_cors(
            Bucket=bucket,
            CORSConfiguration={"CORSRules": [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]},
        ),
        lambda: s3.delete_bucket_cors(Bucket=bucket),
        lambda: s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration=dict.fromkeys(
                ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), False
            ),
        ),
        lambda: s3.delete_public_access_block(Bucket=bucket),
        lambda: s3.put_bucket_ownership_controls(
            Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
        ),
        lambda: s3.delete_bucket_ownership_controls(Bucket=bucket),
        lambda: s3.delete_bucket_tagging(Bucket=bucket),
    ]
    for call in calls:
        with pytest.raises(ClientError) as err:
            call()
        assert client_error(err.value)[0] in (403, 404, 400, 501), err.value.response
        assert client_error(err.value)[1] != "InternalError"
    before = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    post = s3.generate_presigned_post(bucket, existing, ExpiresIn=60)
    r = httpx.post(post["url"], data=post["fields"], files={"file": ("f", b"forged")})
    assert r.status_code == 403, r.text
    after = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {k: v for k, v in after.items() if k in before} == before
    assert s3.get_bucket_acl(Bucket=bucket)["Grants"]
