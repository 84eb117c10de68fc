"""Policies enforced on S3, end to end: boto3 and plain httpx against a real server.

Organization policies first, then the bucket policy (reference §3.4); prefixes, Deny over
Allow, conditions (s3:prefix, s3:max-keys, groups, object tags, cw:PrincipalOrgID),
another organization, anonymous callers, edits in force on the very next request, and
MalformedPolicy with S3's reasons.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.support.harness import CofferServer
from tests.support.policies import (
    create_org,
    create_user,
    delete,
    denied,
    ensure_ok,
    listed,
    org_of,
    policy,
    s3_of,
    statement,
)
from tests.support.s3 import client_error, new_bucket, s3_client, signed, unique

ARN = "arn:aws:s3:::"


@dataclass
class World:
    org_a: str
    admin: str  # principal of the bootstrap admin
    s3: Any  # the admin's client
    data: str  # a bucket with reports/ and private/ objects
    other: str  # a second bucket of the same organization
    reader: str
    reader_s3: Any
    reader_key: dict[str, Any]
    grouped: str
    grouped_s3: Any
    org_b: str
    partner: str
    partner_s3: Any
    partner_plain_s3: Any  # a user of organization B that no B policy names


@pytest.fixture(scope="module")
def world(server: CofferServer) -> Iterator[World]:
    admin_key = server.mint_key(duration=0)
    s3 = s3_client(server, admin_key)
    admin = admin_key["principalName"]
    data, other = unique("data"), unique("other")
    for bucket in (data, other):
        s3.create_bucket(Bucket=bucket)
    for key in ("reports/a.csv", "reports/sub/b.csv", "private/x"):
        s3.put_object(Bucket=data, Key=key, Body=key.encode())
    s3.put_object(Bucket=other, Key="reports/a.csv", Body=b"elsewhere")

    reader, reader_token = create_user(server, unique("reader"))
    grouped, grouped_token = create_user(server, unique("analyst"), groups=("analysts",))
    # Non-admins need cwobject:CreateAccessKey to mint their keys; it grants nothing on S3.
    ensure_ok(
        server,
        policy("key-minting", statement("mint", ["cwobject:CreateAccessKey"], ["*"], [reader, grouped])),
    )
    reader_key = server.mint_key(token=reader_token)
    org_b = create_org(server)
    partner, partner_token = create_user(server, unique("partner"), org=org_b, admin=True)
    plain, plain_token = create_user(server, unique("partner-plain"), org=org_b)
    ensure_ok(server, policy("b-s3", statement("all-s3", ["s3:*"], ["*"], [partner])), partner_token)
    ensure_ok(
        server,
        policy("b-keys", statement("mint", ["cwobject:CreateAccessKey"], ["*"], [plain])),
        partner_token,
    )
    yield World(
        org_a=org_of(server, admin_key),
        admin=admin,
        s3=s3,
        data=data,
        other=other,
        reader=reader,
        reader_s3=s3_client(server, reader_key),
        reader_key=reader_key,
        grouped=grouped,
        grouped_s3=s3_of(server, grouped_token),
        org_b=org_b,
        partner=partner,
        partner_s3=s3_of(server, partner_token),
        partner_plain_s3=s3_of(server, plain_token),
    )


def reader_policy(w: World, *extra: dict[str, Any]) -> dict[str, Any]:
    return policy(
        "reader",
        statement(
            "read-reports", ["s3:GetObject", "s3:ListBucket"], [w.data, f"{w.data}/reports/*"], [w.reader]
        ),
        *extra,
    )


def body(s3: Any, bucket: str, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def owner_statement(w: World, bucket: str) -> dict[str, Any]:
    """Once a bucket has a policy it decides, so the tests' policies keep the owner organization in."""
    return bucket_statement(
        "owner-org",
        "Allow",
        {"CW": "*"},
        "s3:*",
        [f"{ARN}{bucket}", f"{ARN}{bucket}/*"],
        {"StringEquals": {"cw:PrincipalOrgID": w.org_a}},
    )


def bucket_statement(
    sid: str, effect: str, principal: Any, action: Any, resource: Any, condition: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One statement of a bucket policy, in AWS's JSON."""
    found = {"Sid": sid, "Effect": effect, "Principal": principal, "Action": action, "Resource": resource}
    if condition is not None:
        found["Condition"] = condition
    return found


def bucket_policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_read_only_on_one_prefix_and_nothing_else(server: CofferServer, world: World) -> None:
    w, r = world, world.reader_s3
    assert denied(lambda: r.get_object(Bucket=w.data, Key="reports/a.csv")), "no policy names the reader yet"
    ensure_ok(server, reader_policy(w))
    try:
        assert body(r, w.data, "reports/a.csv") == b"reports/a.csv"
        assert body(r, w.data, "reports/sub/b.csv") == b"reports/sub/b.csv"
        assert r.head_object(Bucket=w.data, Key="reports/a.csv")["ContentLength"] == len(b"reports/a.csv")
        listing = r.list_objects_v2(Bucket=w.data, Prefix="reports/")
        assert [o["Key"] for o in listing["Contents"]] == ["reports/a.csv", "reports/sub/b.csv"]
        refused = {
            "put": lambda: r.put_object(Bucket=w.data, Key="reports/new.csv", Body=b"x"),
            "delete": lambda: r.delete_object(Bucket=w.data, Key="reports/a.csv"),
            "other prefix": lambda: r.get_object(Bucket=w.data, Key="private/x"),
            "other bucket": lambda: r.get_object(Bucket=w.other, Key="reports/a.csv"),
            "list other bucket": lambda: r.list_objects_v2(Bucket=w.other),
            "copy": lambda: r.copy_object(
                Bucket=w.data, Key="reports/copy.csv", CopySource={"Bucket": w.data, "Key": "reports/a.csv"}
            ),
            "list buckets": r.list_buckets,
            "create bucket": lambda: r.create_bucket(Bucket=unique("mine")),
            "bucket policy": lambda: r.put_bucket_policy(
                Bucket=w.data, Policy=bucket_policy(owner_statement(w, w.data))
            ),
        }
        for what, call in refused.items():
            assert denied(call), what
        assert [o["Key"] for o in w.s3.list_objects_v2(Bucket=w.data)["Contents"]] == [
            "private/x",
            "reports/a.csv",
            "reports/sub/b.csv",
        ], "nothing the reader was refused happened"
        # ListBuckets is global: granted on "*" only, and then lists the organization's buckets.
        ensure_ok(
            server, reader_policy(w, statement("list-buckets", ["s3:ListAllMyBuckets"], ["*"], [w.reader]))
        )
        names = [b["Name"] for b in r.list_buckets()["Buckets"]]
        assert {w.data, w.other} <= set(names)
    finally:
        assert delete(server, "reader").status_code == 200


def test_an_edit_is_in_force_on_the_very_next_request(server: CofferServer, world: World) -> None:
    w, r = world, world.reader_s3
    ensure_ok(server, reader_policy(w))
    try:
        for _ in range(3):
            assert body(r, w.data, "reports/a.csv") == b"reports/a.csv"
            ensure_ok(
                server, policy("reader", statement("list-only", ["s3:ListBucket"], [w.data], [w.reader]))
            )
            assert denied(lambda: r.get_object(Bucket=w.data, Key="reports/a.csv"))
            assert r.list_objects_v2(Bucket=w.data)["KeyCount"] == 3
            ensure_ok(server, reader_policy(w))
        assert delete(server, "reader").status_code == 200
        assert denied(lambda: r.get_object(Bucket=w.data, Key="reports/a.csv"))
        ensure_ok(server, reader_policy(w))
        assert body(r, w.data, "reports/a.csv") == b"reports/a.csv"
        # A bucket policy edit, too.
        w.s3.put_bucket_policy(Bucket=w.data, Policy=bucket_policy(owner_statement(w, w.data)))
        assert body(r, w.data, "reports/a.csv") == b"reports/a.csv"  # the reader is of the owner org
        deny_reader = bucket_statement(
            "not-the-reader", "Deny", {"AWS": w.reader}, "s3:GetObject", f"{ARN}{w.data}/*"
        )
        w.s3.put_bucket_policy(Bucket=w.data, Policy=bucket_policy(owner_statement(w, w.data), deny_reader))
        assert denied(lambda: r.get_object(Bucket=w.data, Key="reports/a.csv"))
        assert body(w.s3, w.data, "reports/a.csv") == b"reports/a.csv"
        w.s3.delete_bucket_policy(Bucket=w.data)
        assert body(r, w.data, "reports/a.csv") == b"reports/a.csv"
    finally:
        delete(server, "reader")


def test_multi_object_delete_is_decided_key_by_key(server: CofferServer, world: World) -> None:
    w, r = world, world.reader_s3
    for key in ("tmp/1", "tmp/2"):
        w.s3.put_object(Bucket=w.data, Key=key, Body=b"t")
    ensure_ok(
        server, policy("reader", statement("tidy", ["s3:DeleteObject"], [f"{w.data}/tmp/*"], [w.reader]))
    )
    try:
        objects = [{"Key": "tmp/1"}, {"Key": "private/x"}, {"Key": "tmp/2"}]
        result = r.delete_objects(Bucket=w.data, Delete={"Objects": objects})
        assert sorted(d["Key"] for d in result["Deleted"]) == ["tmp/1", "tmp/2"]
        assert [(e["Key"], e["Code"]) for e in result["Errors"]] == [("private/x", "AccessDenied")]
    finally:
        assert delete(server, "reader").status_code == 200
    assert body(w.s3, w.data, "private/x") == b"private/x"
    assert [o["Key"] for o in w.s3.list_objects_v2(Bucket=w.data, Prefix="tmp/").get("Contents", [])] == []


def test_a_deny_on_a_prefix_beats_a_wildcard_allow(server: CofferServer, world: World) -> None:
    w, r = world, world.reader_s3
    ensure_ok(
        server,
        policy(
            "reader",
            statement("everything", ["s3:*"], ["*"], [w.reader]),
            statement(
                "not-private", ["s3:GetObject", "s3:PutObject"], [f"{w.data}/private/*"], ["*"], "Deny"
            ),
        ),
    )
    try:
        assert body(r, w.data, "reports/a.csv") == b"reports/a.csv"
        r.put_object(Bucket=w.data, Key="reports/by-reader.csv", Body=b"r")
        r.delete_object(Bucket=w.data, Key="reports/by-reader.csv")
        assert denied(lambda: r.get_object(Bucket=w.data, Key="private/x"))
        assert denied(lambda: r.put_object(Bucket=w.data, Key="private/y", Body=b"y"))
        # The Deny names "*": it binds the admin too, whose starter policy allows s3:*.
        assert denied(lambda: w.s3.get_object(Bucket=w.data, Key="private/x"))
        # The caller sees S3's generic refusal; the audit log names the deciding statement.
        resp = signed(server, w.reader_key, "GET", f"/{w.data}/private/x")
        assert resp.status_code == 403
        assert "<Code>AccessDenied</Code>" in resp.text and "<Message>Access Denied</Message>" in resp.text
        assert "not-private" not in resp.text and "reader" not in resp.text
        denials = server.audit(
            "denied", from_log=True, principal=w.reader, resource=f"{w.data}/private/x", rule="org-deny"
        )
        assert denials and denials[-1]["policy"] == "reader" and denials[-1]["statement"] == "not-private"
        assert "'not-private'" in denials[-1]["reason"]
    finally:
        assert delete(server, "reader").status_code == 200
    assert body(w.s3, w.data, "private/x") == b"private/x"


def test_bucket_policy_conditions_on_the_listing(server: CofferServer, world: World) -> None:
    w, r = world, world.reader_s3
    bucket = new_bucket(w.s3, "cond")
    w.s3.put_object(Bucket=bucket, Key="reports/a", Body=b"a")
    ensure_ok(server, policy("reader", statement("list", ["s3:ListBucket"], [bucket], [w.reader])))
    try:
        listing = bucket_statement(
            "reader-lists-reports",
            "Allow",
            {"AWS": [w.reader]},
            "s3:ListBucket",
            f"{ARN}{bucket}",
            {
                "StringLike": {"s3:prefix": ["reports/", "reports/*"]},
                "NumericLessThanEquals": {"s3:max-keys": 100},
            },
        )
        # Only the admin is let in unconditionally; the rest of the organization by the conditions.
        owner = {**owner_statement(w, bucket), "Principal": {"AWS": w.admin}}
        w.s3.put_bucket_policy(Bucket=bucket, Policy=bucket_policy(owner, listing))
        assert r.list_objects_v2(Bucket=bucket, Prefix="reports/", MaxKeys=10)["KeyCount"] == 1
        assert denied(lambda: r.list_objects_v2(Bucket=bucket, Prefix="private/", MaxKeys=10))
        assert denied(lambda: r.list_objects_v2(Bucket=bucket, Prefix="reports/", MaxKeys=1000))
        assert denied(lambda: r.list_objects_v2(Bucket=bucket))  # no prefix, no max-keys: conditions fail
        assert w.s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 1  # the owner statement has no condition
    finally:
        assert delete(server, "reader").status_code == 200


def test_groups_travel_with_the_key_into_conditions(server: CofferServer, world: World) -> None:
    w = world
    bucket = new_bucket(w.s3, "grp")
    w.s3.put_object(Bucket=bucket, Key="k", Body=b"for analysts")
    ensure_ok(
        server, policy("readers", statement("read", ["s3:GetObject"], [f"{bucket}/*"], [w.reader, w.grouped]))
    )
    try:
        analysts = bucket_statement(
            "analysts",
            "Allow",
            {"CW": "*"},
            "s3:GetObject",
            f"{ARN}{bucket}/*",
            {"ForAnyValue:StringEquals": {f"iam:{w.org_a}:groups": ["analysts"]}},
        )
        w.s3.put_bucket_policy(
            Bucket=bucket,
            Policy=bucket_policy({**owner_statement(w, bucket), "Principal": {"AWS": w.admin}}, analysts),
        )
        assert body(w.grouped_s3, bucket, "k") == b"for analysts"
        assert denied(lambda: w.reader_s3.get_object(Bucket=bucket, Key="k"))
    finally:
        assert delete(server, "readers").status_code == 200


def test_existing_object_tags_are_condition_keys(server: CofferServer, world: World) -> None:
    w = world
    bucket = new_bucket(w.s3, "tags")
    w.s3.put_object(Bucket=bucket, Key="secret", Body=b"s")
    w.s3.put_object_tagging(
        Bucket=bucket, Key="secret", Tagging={"TagSet": [{"Key": "classification", "Value": "secret"}]}
    )
    w.s3.put_object(Bucket=bucket, Key="plain", Body=b"p")
    no_secrets = bucket_statement(
        "no-secrets",
        "Deny",
        "*",
        "s3:GetObject",
        f"{ARN}{bucket}/*",
        {"StringEquals": {"s3:ExistingObjectTag/classification": "secret"}},
    )
    w.s3.put_bucket_policy(Bucket=bucket, Policy=bucket_policy(owner_statement(w, bucket), no_secrets))
    assert body(w.s3, bucket, "plain") == b"p"
    assert denied(lambda: w.s3.get_object(Bucket=bucket, Key="secret"))
    w.s3.delete_object_tagging(Bucket=bucket, Key="secret")
    assert body(w.s3, bucket, "secret") == b"s"


def test_another_organization_reads_through_the_bucket_policy(server: CofferServer, world: World) -> None:
    w, partner = world, world.partner_s3
    bucket = new_bucket(w.s3, "shared")
    w.s3.put_object(Bucket=bucket, Key="data.csv", Body=b"shared data")
    # No bucket policy: the partner's own organization allows s3:*, but that is not enough.
    assert denied(lambda: partner.get_object(Bucket=bucket, Key="data.csv"))
    assert denied(lambda: partner.list_objects_v2(Bucket=bucket))

    def grant(org: str) -> str:
        return bucket_policy(
            owner_statement(w, bucket),
            bucket_statement(
                "partner-read",
                "Allow",
                {"CW": "*"},
                ["s3:GetObject", "s3:ListBucket"],
                [f"{ARN}{bucket}", f"{ARN}{bucket}/*"],
                {"StringEquals": {"cw:PrincipalOrgID": [org]}},
            ),
        )

    w.s3.put_bucket_policy(Bucket=bucket, Policy=grant(w.org_b))
    assert body(partner, bucket, "data.csv") == b"shared data"
    assert [o["Key"] for o in partner.list_objects_v2(Bucket=bucket)["Contents"]] == ["data.csv"]
    assert denied(lambda: partner.put_object(Bucket=bucket, Key="from-b", Body=b"x"))
    assert denied(lambda: partner.delete_object(Bucket=bucket, Key="data.csv"))
    # Only the owner organization may set a bucket's policy, whatever B's policies allow.
    assert denied(lambda: partner.put_bucket_policy(Bucket=bucket, Policy=grant(w.org_b)))
    assert denied(lambda: partner.delete_bucket_policy(Bucket=bucket))
    # B's own organization policies must allow it too: a B user no B policy names is refused.
    assert denied(lambda: w.partner_plain_s3.get_object(Bucket=bucket, Key="data.csv"))
    assert bucket not in [b["Name"] for b in partner.list_buckets()["Buckets"]]
    (refusal,) = server.audit("denied", from_log=True, operation="PutBucketPolicy", principal=w.partner)
    assert refusal["rule"] == "cross-org-global" and refusal["bucket_org_id"] == w.org_a
    # The grant names the organization: another organization id lets B in no more.
    w.s3.put_bucket_policy(Bucket=bucket, Policy=grant("some-other-org"))
    assert denied(lambda: partner.get_object(Bucket=bucket, Key="data.csv"))
    assert body(w.s3, bucket, "data.csv") == b"shared data"


def test_anonymous_reads_need_the_bucket_policy_and_an_org_allow(server: CofferServer, world: World) -> None:
    w = world
    bucket = new_bucket(w.s3, "pub")
    w.s3.put_object(Bucket=bucket, Key="public/hello.txt", Body=b"hello, world")
    w.s3.put_object(Bucket=bucket, Key="secret/no.txt", Body=b"no")
    url = f"{server.s3_url}/{bucket}/public/hello.txt"

    def anonymous_get() -> httpx.Response:
        return httpx.get(url, timeout=30)

    assert anonymous_get().status_code == 403
    public = bucket_statement("public-read", "Allow", "*", "s3:GetObject", f"{ARN}{bucket}/public/*")
    w.s3.put_bucket_policy(Bucket=bucket, Policy=bucket_policy(owner_statement(w, bucket), public))
    refused = anonymous_get()
    assert refused.status_code == 403 and "<Code>AccessDenied</Code>" in refused.text
    # Organization policies come first: none of them opens the bucket to "*".
    why = [
        d["rule"]
        for d in server.audit("denied", from_log=True, principal=None, resource=f"{bucket}/public/hello.txt")
    ]
    assert why == ["org-implicit-deny", "org-implicit-deny"]

    ensure_ok(
        server,
        policy("public", statement("anyone-reads-public", ["s3:GetObject"], [f"{bucket}/public/*"], ["*"])),
    )
    try:
        ok = anonymous_get()
        assert ok.status_code == 200 and ok.content == b"hello, world"
        assert "authorization" not in {k.lower() for k in ok.request.headers}
        for method, path in (
            ("GET", f"/{bucket}/secret/no.txt"),
            ("GET", f"/{bucket}"),
            ("PUT", f"/{bucket}/public/new.txt"),
            ("DELETE", f"/{bucket}/public/hello.txt"),
            ("GET", "/"),
            ("PUT", f"/{unique('anon')}"),
        ):
            r = httpx.request(
                method, server.s3_url + path, content=b"x" if method == "PUT" else None, timeout=30
            )
            assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text, (method, path, r.text)
        w.s3.delete_bucket_policy(Bucket=bucket)
        assert anonymous_get().status_code == 403  # the bucket's consent is gone
        why = [
            d["rule"]
            for d in server.audit(
                "denied", from_log=True, principal=None, resource=f"{bucket}/public/hello.txt"
            )
        ]
        assert why[-1] == "foreign-no-bucket-policy"
    finally:
        assert delete(server, "public").status_code == 200
    assert body(w.s3, bucket, "public/hello.txt") == b"hello, world"


def test_put_bucket_policy_is_global_so_the_owner_cannot_lock_itself_out(
    server: CofferServer, world: World
) -> None:
    w = world
    bucket = new_bucket(w.s3, "lock")
    w.s3.put_object(Bucket=bucket, Key="k", Body=b"k")
    deny_all = bucket_statement("nobody", "Deny", "*", "s3:*", [f"{ARN}{bucket}", f"{ARN}{bucket}/*"])
    w.s3.put_bucket_policy(Bucket=bucket, Policy=bucket_policy(deny_all))
    assert denied(lambda: w.s3.get_object(Bucket=bucket, Key="k"))
    assert denied(lambda: w.s3.get_bucket_policy(Bucket=bucket))
    assert denied(lambda: w.s3.delete_bucket_policy(Bucket=bucket))
    # s3:PutBucketPolicy is decided by organization policies alone.
    w.s3.put_bucket_policy(Bucket=bucket, Policy=bucket_policy(owner_statement(w, bucket)))
    assert body(w.s3, bucket, "k") == b"k"
    w.s3.delete_bucket_policy(Bucket=bucket)
    # A principal of the owner organization without s3:PutBucketPolicy may not.
    assert denied(lambda: w.reader_s3.put_bucket_policy(Bucket=bucket, Policy=bucket_policy(deny_all)))


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("not json", "Policies must be valid JSON and the first byte must be '{'"),
        ('{"Version": "2012-10-17"}', "Missing required field Statement"),
        ('{"Version": "2012-10-17", "Statement": [], "Extra": 1}', "Unknown field Extra"),
        ('{"Version": "2012-10-17", "Version": "2012-10-17", "Statement": []}', "Duplicate field Version"),
        ("RESOURCE:arn:aws:s3:::another-bucket/*", "Policy has invalid resource"),
        ("ACTION:s3:Gte*", "Policy has invalid action"),
        ("ACTION:cwobject:CreateAccessKey", "Policy has invalid action"),
        ('PRINCIPAL:{"Service": "s3.amazonaws.com"}', "Invalid principal in policy"),
        ("EFFECT:allow", "Invalid effect: allow"),
        ("RESOURCE_BUCKET:s3:GetObject", "Action does not apply to any resource(s) in statement"),
        (
            'CONDITION:{"NumericLessThan": {"s3:max-keys": "ten"}}',
            "Condition NumericLessThan on s3:max-keys needs a number, got 'ten'",
        ),
        ('CONDITION:{"StringEqualz": {"s3:prefix": "a"}}', "Unknown condition operator StringEqualz"),
        ("BIG", "Policy exceeds the maximum allowed document size of 20480 bytes"),
    ],
)
def test_malformed_policy_names_the_reason(world: World, document: str, reason: str) -> None:
    w = world
    bucket = w.other
    good: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"{ARN}{bucket}/*",
    }
    kind, _, value = document.partition(":")
    if kind in ("RESOURCE", "ACTION", "EFFECT", "RESOURCE_BUCKET", "PRINCIPAL", "CONDITION"):
        changed = dict(good)
        if kind == "RESOURCE":
            changed["Resource"] = value
        elif kind == "ACTION":
            changed["Action"] = value
        elif kind == "EFFECT":
            changed["Effect"] = value
        elif kind == "RESOURCE_BUCKET":
            changed.update(Action=value, Resource=f"{ARN}{bucket}")
        elif kind == "PRINCIPAL":
            changed["Principal"] = json.loads(value)
        else:
            changed["Condition"] = json.loads(value)
        document = bucket_policy(changed)
    elif kind == "BIG":
        document = bucket_policy(*({**good, "Sid": f"s{i}"} for i in range(300)))
    with pytest.raises(ClientError) as err:
        w.s3.put_bucket_policy(Bucket=bucket, Policy=document)
    assert client_error(err.value) == (400, "MalformedPolicy")
    assert err.value.response["Error"]["Message"] == reason
    with pytest.raises(ClientError) as err:
        w.s3.get_bucket_policy(Bucket=bucket)
    assert client_error(err.value) == (404, "NoSuchBucketPolicy")  # nothing was stored


def test_without_any_organization_policy_s3_refuses_even_the_admin(
    server: CofferServer, world: World
) -> None:
    w = world
    saved = listed(server)
    assert saved, "the starter policy and the tests' policies"
    try:
        for p in saved:
            assert delete(server, p["name"]).status_code == 200
        for what, call in {
            "get": lambda: w.s3.get_object(Bucket=w.data, Key="reports/a.csv"),
            "list": lambda: w.s3.list_objects_v2(Bucket=w.data),
            "list buckets": w.s3.list_buckets,
            "create": lambda: w.s3.create_bucket(Bucket=unique("none")),
            "put policy": lambda: w.s3.put_bucket_policy(
                Bucket=w.data, Policy=bucket_policy(owner_statement(w, w.data))
            ),
        }.items():
            assert denied(call), what
        assert server.audit("denied", from_log=True, principal=w.admin, rule="no-org-policy")
        # Object Storage Admin keeps the control plane, so the organization can recover.
        assert listed(server) == []
    finally:
        for p in saved:
            ensure_ok(server, p)
    assert body(w.s3, w.data, "reports/a.csv") == b"reports/a.csv"
