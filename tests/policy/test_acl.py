"""ACLs, Object Ownership and Block Public Access as pure values (coffer/policy/acl.py), and
the grant step of the decision (engine.evaluate with `acl`), with hypothesis where a property
says more than a table."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffer.config import OBJECT_OWNERSHIPS
from coffer.policy import Rule, evaluate
from coffer.policy.acl import (
    ACTION_PERMISSIONS,
    ALL_USERS,
    ANONYMOUS_OWNER,
    AUTHENTICATED_USERS,
    CANNED_ACLS,
    DEFAULT_PUBLIC_ACCESS_BLOCK,
    LOG_DELIVERY,
    Acl,
    AclCheck,
    Grant,
    Level,
    Ownership,
    Permission,
    PublicAccessBlock,
    actions_of,
    bucket_access,
    canned,
    canonical_id,
    make_acl,
    normalize_canonical_id,
    object_owner,
    parse_canonical_id,
    plain,
    private,
)
from coffer.policy.principals import Identity, PrincipalError
from tests.policy.builders import ALICE, BOB, ORG, OTHER_ORG, S3_FOR_ALL, bstmt, bucket, ctx, orgs
from tests.policy.test_properties import Scenario, scenarios

pytestmark = pytest.mark.unit

OWNER = "coreweave/owner"
PARTNER = f"arn:aws:iam::{OTHER_ORG}:{BOB}"


def who(principal: str | None, org: str | None = ORG, *aliases: str) -> Identity:
    if principal is None:
        return Identity(names=frozenset(), org_id=None, same_org=False, anonymous=True)
    return Identity(names=frozenset({principal, *aliases}), org_id=org, same_org=org == ORG, anonymous=False)


ANYONE = who(None)


# --- canonical IDs ---------------------------------------------------------------------------
principal_names = st.builds(
    lambda kind, name: f"{kind}/{name}",
    st.sampled_from(["coreweave", "role", "saml"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._:", min_size=1, max_size=20),
)
org_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)


@given(principal_names, org_ids, org_ids)
def test_canonical_ids_round_trip(principal: str, org: str, bucket_org: str) -> None:
    cid = canonical_id(principal, org, bucket_org)
    assert parse_canonical_id(cid, bucket_org).org_id == org
    assert parse_canonical_id(cid, bucket_org).name == principal
    assert normalize_canonical_id(cid, bucket_org) == cid
    # The bucket's own principals are named bare, as every Owner element shows them.
    assert (cid == principal) == (org == bucket_org)


def test_canonical_id_forms() -> None:
    assert normalize_canonical_id(f"arn:aws:iam::{ORG}:{ALICE}", ORG) == ALICE
    assert normalize_canonical_id(f"arn:aws:iam::{OTHER_ORG}:root", ORG) == f"arn:aws:iam::{OTHER_ORG}:root"
    whole = parse_canonical_id(f"arn:aws:iam::{OTHER_ORG}:root", ORG)
    assert (whole.org_id, whole.name) == (OTHER_ORG, None)
    for bad in ("*", "alice", "", "arn:aws:iam::coreweave:static/audit", "coreweave/a b", "group/x"):
        with pytest.raises(PrincipalError):
            parse_canonical_id(bad, ORG)


# --- canned ACLs and ownership ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("private", []),
        ("public-read", [Grant(Permission.READ, uri=ALL_USERS)]),
        (
            "public-read-write",
            [Grant(Permission.READ, uri=ALL_USERS), Grant(Permission.WRITE, uri=ALL_USERS)],
        ),
        ("authenticated-read", [Grant(Permission.READ, uri=AUTHENTICATED_USERS)]),
        ("bucket-owner-read", [Grant(Permission.READ, id=OWNER)]),
        ("bucket-owner-full-control", [Grant(Permission.FULL_CONTROL, id=OWNER)]),
        ("aws-exec-read", []),
        (
            "log-delivery-write",
            [Grant(Permission.WRITE, uri=LOG_DELIVERY), Grant(Permission.READ_ACP, uri=LOG_DELIVERY)],
        ),
    ],
)
def test_canned_acls(name: str, extra: list[Grant]) -> None:
    acl = canned(name, PARTNER, OWNER)
    assert acl.owner == PARTNER
    assert list(acl.grants) == [Grant(Permission.FULL_CONTROL, id=PARTNER), *extra]
    assert acl.public == name.startswith(("public-", "authenticated-"))
    # On a bucket (its owner is the bucket owner) the bucket-owner-* ones add nothing.
    if name.startswith("bucket-owner-"):
        assert canned(name, OWNER, OWNER) == private(OWNER)


def test_unknown_canned_acl_and_grant_bound() -> None:
    assert "public-read" in CANNED_ACLS
    with pytest.raises(ValueError, match="unknown canned ACL"):
        canned("world-writable", OWNER, OWNER)
    many = [Grant(Permission.READ, id=f"coreweave/u{i}") for i in range(101)]
    with pytest.raises(ValueError, match="at most 100"):
        make_acl(OWNER, many)
    assert len(make_acl(OWNER, many[:100] + many[:5]).grants) == 100  # repeats dropped


@pytest.mark.parametrize(
    ("ownership", "acl", "owner"),
    [
        (Ownership.BUCKET_OWNER_ENFORCED, None, OWNER),
        (Ownership.BUCKET_OWNER_ENFORCED, "bucket-owner-full-control", OWNER),
        (Ownership.BUCKET_OWNER_PREFERRED, "bucket-owner-full-control", OWNER),
        (Ownership.BUCKET_OWNER_PREFERRED, None, PARTNER),
        (Ownership.BUCKET_OWNER_PREFERRED, "public-read", PARTNER),
        (Ownership.OBJECT_WRITER, "bucket-owner-full-control", PARTNER),
        (Ownership.OBJECT_WRITER, None, PARTNER),
        (None, "bucket-owner-full-control", PARTNER),  # controls deleted: as ObjectWriter
    ],
)
def test_object_owner(ownership: Ownership | None, acl: str | None, owner: str) -> None:
    assert object_owner(ownership, OWNER, PARTNER, acl) == owner


def test_config_knows_the_ownerships() -> None:
    assert set(OBJECT_OWNERSHIPS) == {o.value for o in Ownership}


# --- what a bucket's settings say ---------------------------------------------------------------
def test_bucket_access_from_settings() -> None:
    legacy = bucket_access({}, OWNER)  # a bucket from before ownership could be chosen
    assert legacy.ownership is Ownership.BUCKET_OWNER_ENFORCED and not legacy.acls_enabled
    assert legacy.public_access_block is None and legacy.pab == PublicAccessBlock()
    assert legacy.acl == private(OWNER)
    deleted = bucket_access({"objectOwnership": None}, OWNER)
    assert deleted.ownership is None and deleted.acls_enabled
    settings_ = {
        "objectOwnership": "ObjectWriter",
        "publicAccessBlock": DEFAULT_PUBLIC_ACCESS_BLOCK.to_json(),
        "acl": canned("public-read", OWNER, OWNER).to_json(),
        "coreweave": {"somethingElse": True},  # another feature's key is nobody's business here
    }
    on = bucket_access(settings_, OWNER)
    assert on.acls_enabled and on.acl.public
    assert on.pab == DEFAULT_PUBLIC_ACCESS_BLOCK
    assert on.pab.to_json() == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False,
    }
    strict = bucket_access(settings_, OWNER, strict=True)
    assert not strict.acls_enabled and strict.public_access_block is None and strict.acl == private(OWNER)
    assert bucket_access({"objectOwnership": "Nonsense"}, OWNER).ownership is Ownership.BUCKET_OWNER_ENFORCED
    # What the authorizer skips without parsing: ACLs off and no RestrictPublicBuckets.
    enforced = {
        "objectOwnership": "BucketOwnerEnforced",
        "publicAccessBlock": DEFAULT_PUBLIC_ACCESS_BLOCK.to_json(),
    }
    assert plain({}) and plain(enforced)
    assert not plain(settings_) and not plain({"objectOwnership": None})
    assert not plain({"publicAccessBlock": {"RestrictPublicBuckets": True}})


grants = st.builds(
    Grant,
    st.sampled_from(list(Permission)),
    id=st.one_of(st.none(), st.sampled_from([ALICE, PARTNER, OWNER])),
).map(lambda g: g if g.id else Grant(g.permission, uri=ALL_USERS))


@given(st.lists(grants, max_size=10), st.sampled_from([OWNER, PARTNER, ANONYMOUS_OWNER]))
def test_acl_json_round_trip(entries: list[Grant], owner: str) -> None:
    acl = make_acl(owner, entries)
    assert Acl.from_json(acl.to_json()) == acl


# --- the permission -> action map ---------------------------------------------------------------
def test_permissions_map_to_the_actions_aws_documents() -> None:
    assert actions_of(Permission.READ, Level.BUCKET) == {
        "s3:listbucket",
        "s3:listbucketversions",
        "s3:listbucketmultipartuploads",
    }
    assert {"s3:putobject", "s3:deleteobject", "s3:deleteobjectversion"} <= actions_of(
        Permission.WRITE, Level.BUCKET
    )
    assert actions_of(Permission.READ_ACP, Level.BUCKET) == {"s3:getbucketacl"}
    assert actions_of(Permission.WRITE_ACP, Level.BUCKET) == {"s3:putbucketacl"}
    assert actions_of(Permission.READ, Level.OBJECT) == {"s3:getobject", "s3:getobjectversion"}
    assert actions_of(Permission.WRITE, Level.OBJECT) == set()  # WRITE on an object: not applicable
    assert actions_of(Permission.READ_ACP, Level.OBJECT) == {"s3:getobjectacl", "s3:getobjectversionacl"}
    assert actions_of(Permission.WRITE_ACP, Level.OBJECT) == {"s3:putobjectacl", "s3:putobjectversionacl"}
    for level in Level:
        every = set().union(*(actions_of(p, level) for p in Permission if p is not Permission.FULL_CONTROL))
        assert actions_of(Permission.FULL_CONTROL, level) == every
    # Nothing else: no ACL ever grants a policy, a tag, a bucket setting.
    assert "s3:putbucketpolicy" not in ACTION_PERMISSIONS
    assert "s3:putbucketownershipcontrols" not in ACTION_PERMISSIONS
    assert "s3:putobjecttagging" not in ACTION_PERMISSIONS


def _check(bucket_acl: Acl, object_acl: Acl | None = None, *, ignore_public: bool = False) -> AclCheck:
    return AclCheck(ORG, bucket_acl, (lambda: object_acl), ignore_public)


def test_grants_name_their_grantees() -> None:
    public = _check(private(OWNER), canned("public-read", OWNER, OWNER))
    assert public.allows("s3:getobject", ANYONE) == "the object ACL, its grant of READ to group " + ALL_USERS
    assert public.allows("s3:getobjectacl", ANYONE) is None
    assert public.allows("s3:putobject", ANYONE) is None  # WRITE comes from the bucket ACL
    assert (
        _check(private(OWNER), canned("public-read", OWNER, OWNER), ignore_public=True).allows(
            "s3:getobject", ANYONE
        )
        is None
    )
    authenticated = _check(canned("authenticated-read", OWNER, OWNER))
    assert authenticated.allows("s3:listbucket", ANYONE) is None
    assert authenticated.allows("s3:listbucket", who(BOB, OTHER_ORG))
    named = _check(make_acl(OWNER, [Grant(Permission.WRITE, id=PARTNER)]))
    assert named.allows("s3:putobject", who(BOB, OTHER_ORG))
    assert named.allows("s3:putobject", who(BOB, ORG)) is None  # the same name in another organization
    assert named.allows("s3:putobject", who(ALICE, OTHER_ORG)) is None
    whole = _check(make_acl(OWNER, [Grant(Permission.READ, id=f"arn:aws:iam::{OTHER_ORG}:root")]))
    assert whole.allows("s3:listbucket", who(ALICE, OTHER_ORG))
    assert whole.allows("s3:listbucket", who(ALICE, ORG)) is None
    role = _check(make_acl(OWNER, [Grant(Permission.READ, id="role/Reader")]))
    assert role.allows("s3:listbucket", who(ALICE, ORG, "role/Reader"))
    # The owner may always read and write the ACL, whatever it grants.
    bare = _check(Acl(OWNER, ()), Acl(PARTNER, ()))
    assert bare.allows("s3:getbucketacl", who(OWNER)) == f"the bucket ACL, its owner {OWNER}"
    assert bare.allows("s3:putobjectacl", who(BOB, OTHER_ORG))
    assert bare.allows("s3:getobject", who(BOB, OTHER_ORG)) is None
    assert _check(private(OWNER), None).allows("s3:getobject", ANYONE) is None  # no such object
    assert _check(Acl(ANONYMOUS_OWNER, ())).allows("s3:getbucketacl", ANYONE) is None


# --- the grant step in the decision --------------------------------------------------------------
EVERYTHING = make_acl(
    OWNER, [Grant(Permission.FULL_CONTROL, uri=ALL_USERS), Grant(Permission.WRITE, uri=ALL_USERS)]
)
# A decision an ACL grant may turn into an allow; nothing else changes.
OPENABLE = {Rule.FOREIGN_NO_BUCKET_POLICY, Rule.BUCKET_IMPLICIT_DENY}


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_an_acl_grant_never_overrides_a_deny(s: Scenario) -> None:
    """An ACL is one more Allow in step 2: it admits only callers nothing else admitted or
    refused, and never for an action outside the ACL map."""
    plain = s.decide()
    with_acl = evaluate(
        s.action, s.resource, s.ctx, s.org(), s.bucket(), acl=AclCheck(ORG, EVERYTHING, lambda: EVERYTHING)
    )
    if plain.allowed:
        assert with_acl == plain
    elif plain.rule in OPENABLE and s.action.lower() in ACTION_PERMISSIONS:
        assert with_acl.allowed and with_acl.rule is Rule.ACL_ALLOW
        assert with_acl.policy == f"acl:{s.resource.partition('/')[0]}"
    else:
        assert with_acl == plain


def test_org_and_bucket_denies_beat_a_public_read_grant() -> None:
    public = AclCheck(ORG, private(OWNER), lambda: canned("public-read", OWNER, OWNER))
    everyone = orgs(S3_FOR_ALL)
    anonymous = ctx(None, resource_org_id=ORG)
    assert evaluate("s3:GetObject", "b1/k", anonymous, everyone, acl=public).rule is Rule.ACL_ALLOW
    assert evaluate("s3:GetObject", "b1/k", anonymous, everyone).rule is Rule.FOREIGN_NO_BUCKET_POLICY
    no_reads = orgs(
        S3_FOR_ALL,
        {
            "version": "v1alpha1",
            "name": "no-reads",
            "statements": [
                {"name": "deny", "effect": "Deny", "actions": ["s3:GetObject"], "resources": ["b1/*"],
                 "principals": ["*"]},
            ],
        },
    )  # fmt: skip
    assert evaluate("s3:GetObject", "b1/k", anonymous, no_reads, acl=public).rule is Rule.ORG_DENY
    denied = bucket("b1", bstmt("Deny", "s3:GetObject", "arn:aws:s3:::b1/*"))
    assert evaluate("s3:GetObject", "b1/k", anonymous, everyone, denied, acl=public).rule is Rule.BUCKET_DENY
    # A bucket policy that does not mention the caller leaves the ACL to decide.
    others = bucket("b1", bstmt("Allow", "s3:GetObject", "arn:aws:s3:::b1/*", {"CW": ALICE}))
    assert evaluate("s3:GetObject", "b1/k", anonymous, everyone, others, acl=public).rule is Rule.ACL_ALLOW


# --- public bucket policies and RestrictPublicBuckets ---------------------------------------------
ARN = "arn:aws:s3:::b1"


def reads(principal: Any = "*", condition: dict[str, Any] | None = None) -> dict[str, Any]:
    return bstmt("Allow", "s3:GetObject", f"{ARN}/*", principal, condition=condition)


@pytest.mark.parametrize(
    ("statement", "public"),
    [
        (reads(), True),
        (reads({"CW": "*"}), True),
        (bstmt("Allow", "s3:*", [ARN, f"{ARN}/*"], {"AWS": "*"}), True),
        (bstmt("Deny", "s3:GetObject", f"{ARN}/*"), False),
        (reads({"CW": ALICE}), False),
        (reads({"AWS": f"arn:aws:iam::{OTHER_ORG}:root"}), False),
        (reads(condition={"StringEquals": {"cw:PrincipalOrgID": ORG}}), False),
        (reads(condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}), False),
        (reads(condition={"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}), True),
        (reads(condition={"StringEqualsIfExists": {"cw:PrincipalOrgID": ORG}}), True),
        (reads(condition={"StringNotEquals": {"cw:PrincipalOrgID": ORG}}), True),
        (reads(condition={"StringLike": {"aws:PrincipalArn": "*"}}), True),
        (reads(condition={"Bool": {"aws:SecureTransport": "true"}}), True),
        (bstmt("Allow", "s3:GetBucketLocation", ARN), True),  # a Get*: "exposing", as AWS counts it
        (bstmt("Allow", "s3:CreateBucket", ARN), False),  # nothing of the bucket's data or settings
        ({**reads(), "Principal": None, "NotPrincipal": {"CW": ALICE}}, True),
    ],
)
def test_what_makes_a_bucket_policy_public(statement: dict[str, Any], public: bool) -> None:
    if statement.get("Principal", "") is None:
        del statement["Principal"]
    assert bucket("b1", statement).public is public


def test_restrict_public_buckets_keeps_other_organizations_out() -> None:
    policy = bucket("b1", bstmt("Allow", "s3:GetObject", f"{ARN}/*"))
    everyone = orgs(S3_FOR_ALL)
    partner = ctx(BOB, OTHER_ORG, resource_org_id=ORG)
    anonymous = ctx(None, resource_org_id=ORG)
    own = ctx(ALICE, ORG, resource_org_id=ORG)
    for caller in (partner, anonymous):
        assert evaluate("s3:GetObject", "b1/k", caller, everyone, policy).allowed
        refused = evaluate("s3:GetObject", "b1/k", caller, everyone, policy, restrict_public=True)
        assert refused.rule is Rule.RESTRICTED_PUBLIC_BUCKET and not refused.allowed
        # ... an ACL grant included: the bucket is closed to them while its policy is public.
        grant = AclCheck(ORG, private(OWNER), lambda: canned("public-read", OWNER, OWNER))
        assert not evaluate(
            "s3:GetObject", "b1/k", caller, everyone, policy, acl=grant, restrict_public=True
        ).allowed
    assert evaluate("s3:GetObject", "b1/k", own, everyone, policy, restrict_public=True).allowed
    pinned = bucket(
        "b1",
        bstmt(
            "Allow", "s3:GetObject", f"{ARN}/*", condition={"StringEquals": {"cw:PrincipalOrgID": OTHER_ORG}}
        ),
    )
    assert evaluate("s3:GetObject", "b1/k", partner, everyone, pinned, restrict_public=True).allowed
