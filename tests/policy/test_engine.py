"""The decision table: one row per rule of the evaluation algorithm (reference §3.4)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from coffer.policy import CompiledBucketPolicy, OrgPolicySet, RequestContext, Rule, evaluate, request_resource
from coffer.policy.acl import AclCheck, canned, private
from coffer.policy.org import compile_org_policies
from coffer.policy.scope import KeyScope, parse_scope
from tests.policy.builders import (
    ALICE,
    BOB,
    ORG,
    OTHER_ORG,
    S3_FOR_ALL,
    allow,
    bstmt,
    bucket,
    ctx,
    deny,
    org_doc,
    orgs,
)

NO_ORG_POLICIES = compile_org_policies([])


def org_only_get(sid: str, org: str) -> CompiledBucketPolicy:
    """Bucket b1's policy: statement `sid` allows s3:GetObject on its objects to any caller
    whose cw:PrincipalOrgID is `org`."""
    return bucket(
        "b1",
        bstmt(
            "Allow",
            "s3:GetObject",
            "arn:aws:s3:::b1/*",
            {"CW": "*"},
            sid=sid,
            condition={"StringEquals": {"cw:PrincipalOrgID": org}},
        ),
    )


@dataclass(frozen=True)
class Row:
    id: str
    action: str
    resource: str
    ctx: RequestContext
    org: OrgPolicySet
    bucket: CompiledBucketPolicy | None
    allowed: bool
    rule: Rule
    policy: str | None = None
    statement: str | None = None
    reason_has: str = ""
    acl: AclCheck | None = None  # the bucket has ACLs on: its grants (coffer/policy/acl.py)
    restrict_public: bool = False  # Block Public Access's RestrictPublicBuckets
    scope: KeyScope | None = None  # the request's key is scoped (coffer/policy/scope.py)


def key_scope(*statements: tuple[str, str, str, str]) -> KeyScope:
    """A key's scope from (name, effect, action, resource) rows."""
    rows = [{"name": n, "effect": e, "actions": [a], "resources": [r]} for n, e, a, r in statements]
    return parse_scope({"statements": rows})


# Bucket b1 with ACLs on, its owner's, and an object whose ACL is public-read.
PUBLIC_READ = AclCheck(ORG, private(ALICE), lambda: canned("public-read", ALICE, ALICE))


ROWS = [
    # --- preliminaries ------------------------------------------------------------------
    Row(
        "unknown action is denied, never an error",
        "s3:Teleport",
        "b1/k",
        ctx(),
        orgs(S3_FOR_ALL),
        None,
        False,
        Rule.UNKNOWN_ACTION,
        reason_has="not a known action",
    ),
    Row(
        "admin: every cwobject action without any org policy",
        "cwobject:CreateAccessKey",
        "*",
        ctx(storage_admin=True),
        NO_ORG_POLICIES,
        None,
        True,
        Rule.ADMIN_CONTROL_PLANE,
        reason_has="Object Storage Admin",
    ),
    Row(
        "admin: cwobject action even against an explicit org Deny",
        "cwobject:EnsureAccessPolicy",
        "*",
        ctx(storage_admin=True),
        orgs(org_doc("lock", deny("no-policy-edits", ["cwobject:*"], ["*"], ["*"]))),
        None,
        True,
        Rule.ADMIN_CONTROL_PLANE,
    ),
    Row(
        "admin: the role grants no S3 access (no org policy)",
        "s3:GetObject",
        "b1/k",
        ctx(storage_admin=True),
        NO_ORG_POLICIES,
        None,
        False,
        Rule.NO_ORG_POLICY,
    ),
    Row(
        "admin: the role grants no S3 access (org policy for someone else)",
        "s3:ListAllMyBuckets",
        "*",
        ctx(storage_admin=True),
        orgs(org_doc("bob", allow("bob-s3", ["s3:*"], ["*"], [BOB]))),
        None,
        False,
        Rule.ORG_IMPLICIT_DENY,
    ),
    Row(
        "anonymous callers never perform global actions",
        "s3:ListAllMyBuckets",
        "*",
        ctx(None),
        orgs(S3_FOR_ALL),
        None,
        False,
        Rule.ANONYMOUS_GLOBAL,
    ),
    Row(
        "a global action on another organization's bucket is denied (PutBucketPolicy)",
        "s3:PutBucketPolicy",
        "b1",
        ctx(resource_org_id=OTHER_ORG),
        orgs(S3_FOR_ALL),
        bucket("b1", bstmt("Allow", "s3:*", "arn:aws:s3:::b1", sid="all")),
        False,
        Rule.CROSS_ORG_GLOBAL,
        reason_has=OTHER_ORG,
    ),
    # --- step 1: organization policies ----------------------------------------------------
    Row(
        "no org policy at all: default deny, whatever the bucket policy says",
        "s3:GetObject",
        "b1/k",
        ctx(),
        NO_ORG_POLICIES,
        bucket("b1", bstmt("Allow", "s3:GetObject", "arn:aws:s3:::b1/*", sid="open")),
        False,
        Rule.NO_ORG_POLICY,
        reason_has="no statement allowed it",
    ),
    Row(
        "org Deny wins over an org Allow",
        "s3:DeleteObject",
        "b1/k",
        ctx(),
        orgs(S3_FOR_ALL, org_doc("guard", deny("no-deletes", ["s3:Delete*"], ["b1/*"], ["*"]))),
        None,
        False,
        Rule.ORG_DENY,
        "guard",
        "no-deletes",
    ),
    Row(
        "org Deny wins over a bucket-policy Allow",
        "s3:GetObject",
        "b1/k",
        ctx(),
        orgs(S3_FOR_ALL, org_doc("guard", deny("no-alice", ["s3:*"], ["*"], [ALICE]))),
        bucket("b1", bstmt("Allow", "s3:*", "arn:aws:s3:::b1/*", sid="all")),
        False,
        Rule.ORG_DENY,
        "guard",
        "no-alice",
    ),
    Row(
        "org Deny also applies to global actions",
        "s3:PutBucketPolicy",
        "b1",
        ctx(),
        orgs(S3_FOR_ALL, org_doc("guard", deny("no-policies", ["s3:PutBucketPolicy"], ["*"], ["*"]))),
        None,
        False,
        Rule.ORG_DENY,
        "guard",
        "no-policies",
    ),
    Row(
        "org policies exist but none allows this action",
        "s3:PutObject",
        "b1/k",
        ctx(),
        orgs(org_doc("read-only", allow("read", ["s3:Get*", "s3:List*"], ["*"], ["*"]))),
        None,
        False,
        Rule.ORG_IMPLICIT_DENY,
        reason_has="no statement allowed it",
    ),
    Row(
        "org policies exist but none allows this principal",
        "s3:GetObject",
        "b1/k",
        ctx(),
        orgs(org_doc("bob", allow("bob-s3", ["s3:*"], ["*"], [BOB]))),
        None,
        False,
        Rule.ORG_IMPLICIT_DENY,
    ),
    Row(
        "org policies exist but none allows this resource",
        "s3:GetObject",
        "b2/k",
        ctx(),
        orgs(org_doc("b1", allow("b1-s3", ["s3:*"], ["b1", "b1/*"], ["*"]))),
        None,
        False,
        Rule.ORG_IMPLICIT_DENY,
    ),
    # --- global actions stop after step 1 -------------------------------------------------
    Row(
        "ListAllMyBuckets is global: bucket policies are not consulted",
        "s3:ListAllMyBuckets",
        "*",
        ctx(),
        orgs(S3_FOR_ALL),
        None,
        True,
        Rule.ORG_ALLOW_GLOBAL,
        "s3-for-all",
        "all-s3",
    ),
    Row(
        "PutBucketPolicy is global: a bucket-policy Deny cannot lock the org out",
        "s3:PutBucketPolicy",
        "b1",
        ctx(),
        orgs(org_doc("admins", allow("policy-edit", ["s3:PutBucketPolicy"], ["b1"], [ALICE]))),
        bucket("b1", bstmt("Deny", "s3:*", ["arn:aws:s3:::b1", "arn:aws:s3:::b1/*"], sid="lockout")),
        True,
        Rule.ORG_ALLOW_GLOBAL,
        "admins",
        "policy-edit",
    ),
    Row(
        "PutBucketPolicy needs the bucket name or '*', not 'bucket/*'",
        "s3:PutBucketPolicy",
        "b1",
        ctx(),
        orgs(org_doc("objects", allow("objects-only", ["s3:*"], ["b1/*"], ["*"]))),
        None,
        False,
        Rule.ORG_IMPLICIT_DENY,
    ),
    Row(
        "cwobject actions are granted by an org Allow on '*'",
        "cwobject:ListBucketInfo",
        "*",
        ctx(),
        orgs(org_doc("console", allow("console", ["cwobject:ListBucketInfo"], ["*"], ["*"]))),
        None,
        True,
        Rule.ORG_ALLOW_GLOBAL,
        "console",
        "console",
    ),
    Row(
        "cwobject actions ignore a bucket-named org resource (global => '*')",
        "cwobject:GetBucketInfo",
        "b1",
        ctx(),
        orgs(org_doc("legacy", allow("legacy", ["cwobject:*"], ["b1"], ["*"]))),
        None,
        False,
        Rule.ORG_IMPLICIT_DENY,
    ),
    Row(
        "RPC method aliases name the same action (CreateAccessKeyFromJWT)",
        "cwobject:CreateAccessKeyFromJWT",
        "*",
        ctx(),
        orgs(org_doc("keys", allow("mint", ["cwobject:CreateAccessKey"], ["*"], ["*"]))),
        None,
        True,
        Rule.ORG_ALLOW_GLOBAL,
        "keys",
        "mint",
    ),
    # --- step 2: the bucket policy --------------------------------------------------------
    Row(
        "no bucket policy: the org Allow suffices",
        "s3:GetObject",
        "b1/k",
        ctx(),
        orgs(S3_FOR_ALL),
        None,
        True,
        Rule.NO_BUCKET_POLICY,
        "s3-for-all",
        "all-s3",
    ),
    Row(
        "bucket-policy Deny rejects",
        "s3:DeleteObject",
        "b1/k",
        ctx(),
        orgs(S3_FOR_ALL),
        bucket(
            "b1",
            bstmt("Allow", "s3:*", "arn:aws:s3:::b1/*", sid="all"),
            bstmt("Deny", "s3:DeleteObject", "arn:aws:s3:::b1/*", sid="keep"),
        ),
        False,
        Rule.BUCKET_DENY,
        "bucket-policy:b1",
        "keep",
    ),
    Row(
        "bucket-policy Allow accepts",
        "s3:GetObject",
        "b1/k",
        ctx(),
        orgs(S3_FOR_ALL),
        bucket("b1", bstmt("Allow", "s3:GetObject", "arn:aws:s3:::b1/*", {"CW": ALICE}, sid="alice")),
        True,
        Rule.BUCKET_ALLOW,
        "bucket-policy:b1",
        "alice",
    ),
    Row(
        "bucket policy exists but nothing matches: implicit deny",
        "s3:GetObject",
        "b1/k",
        ctx(principal=BOB),
        orgs(S3_FOR_ALL),
        bucket("b1", bstmt("Allow", "s3:GetObject", "arn:aws:s3:::b1/*", {"CW": ALICE}, sid="alice")),
        False,
        Rule.BUCKET_IMPLICIT_DENY,
        "bucket-policy:b1",
        reason_has="no statement allowed it",
    ),
    Row(
        "a question about every bucket ('*') is answered by org policies alone",
        "s3:GetObject",
        "*",
        ctx(),
        orgs(S3_FOR_ALL),
        None,
        True,
        Rule.NO_BUCKET_POLICY,
        "s3-for-all",
        "all-s3",
        reason_has="names no bucket",
    ),
    Row(
        "an account-scope action is decided by org policies alone",
        "s3:ListJobs",
        "b1",
        ctx(),
        orgs(S3_FOR_ALL),
        bucket("b1", bstmt("Deny", "s3:*", ["arn:aws:s3:::b1", "arn:aws:s3:::b1/*"], sid="all")),
        True,
        Rule.ORG_ALLOW_GLOBAL,
        "s3-for-all",
        "all-s3",
    ),
    # --- cross-organization and anonymous access -----------------------------------------
    Row(
        "cross-org: no bucket policy grants nothing",
        "s3:GetObject",
        "b1/k",
        ctx(org_id=OTHER_ORG, resource_org_id=ORG),
        orgs(S3_FOR_ALL),
        None,
        False,
        Rule.FOREIGN_NO_BUCKET_POLICY,
    ),
    Row(
        "cross-org: caller's org allows and the bucket policy allows the caller's org",
        "s3:GetObject",
        "b1/k",
        ctx(org_id=OTHER_ORG, resource_org_id=ORG),
        orgs(S3_FOR_ALL),
        org_only_get("partner", OTHER_ORG),
        True,
        Rule.BUCKET_ALLOW,
        "bucket-policy:b1",
        "partner",
    ),
    Row(
        "cross-org: the caller's own org policies must allow first",
        "s3:GetObject",
        "b1/k",
        ctx(org_id=OTHER_ORG, resource_org_id=ORG),
        orgs(org_doc("elsewhere", allow("other-bucket", ["s3:*"], ["b9/*"], ["*"]))),
        bucket("b1", bstmt("Allow", "s3:GetObject", "arn:aws:s3:::b1/*", {"CW": "*"}, sid="everyone")),
        False,
        Rule.ORG_IMPLICIT_DENY,
    ),
    Row(
        "cross-org: a short-form principal means the bucket's own org",
        "s3:GetObject",
        "b1/k",
        ctx(org_id=OTHER_ORG, resource_org_id=ORG),
        orgs(S3_FOR_ALL),
        bucket("b1", bstmt("Allow", "s3:GetObject", "arn:aws:s3:::b1/*", {"CW": ALICE}, sid="alice")),
        False,
        Rule.BUCKET_IMPLICIT_DENY,
    ),
    Row(
        "cross-org: an ARN principal pins the caller's org",
        "s3:GetObject",
        "b1/k",
        ctx(org_id=OTHER_ORG, resource_org_id=ORG),
        orgs(S3_FOR_ALL),
        bucket(
            "b1",
            bstmt(
                "Allow",
                "s3:GetObject",
                "arn:aws:s3:::b1/*",
                {"AWS": f"arn:aws:iam::{OTHER_ORG}:{ALICE}"},
                sid="alice-there",
            ),
        ),
        True,
        Rule.BUCKET_ALLOW,
        "bucket-policy:b1",
        "alice-there",
    ),
    Row(
        "cross-org: ':root' names every principal of that org",
        "s3:ListBucket",
        "b1",
        ctx(principal=BOB, org_id=OTHER_ORG, resource_org_id=ORG),
        orgs(S3_FOR_ALL),
        bucket(
            "b1",
            bstmt("Allow", "s3:ListBucket", "arn:aws:s3:::b1", {"AWS": f"arn:aws:iam::{OTHER_ORG}:root"}),
        ),
        True,
        Rule.BUCKET_ALLOW,
        "bucket-policy:b1",
        None,
    ),
    Row(
        "anonymous: no bucket policy grants nothing",
        "s3:GetObject",
        "b1/k",
        ctx(None),
        orgs(S3_FOR_ALL),
        None,
        False,
        Rule.FOREIGN_NO_BUCKET_POLICY,
    ),
    Row(
        "anonymous: a question about every bucket is never granted",
        "s3:GetObject",
        "*",
        ctx(None),
        orgs(S3_FOR_ALL),
        None,
        False,
        Rule.FOREIGN_NO_BUCKET_POLICY,
    ),
    Row(
        "anonymous: org '*' Allow plus a bucket-policy '*' Allow makes an object public",
        "s3:GetObject",
        "b1/public/k",
        ctx(None),
        orgs(S3_FOR_ALL),
        bucket("b1", bstmt("Allow", "s3:GetObject", "arn:aws:s3:::b1/public/*", "*", sid="public")),
        True,
        Rule.BUCKET_ALLOW,
        "bucket-policy:b1",
        "public",
    ),
    Row(
        "anonymous: named org principals never match anonymous",
        "s3:GetObject",
        "b1/public/k",
        ctx(None),
        orgs(org_doc("alice", allow("alice", ["s3:*"], ["*"], [ALICE]))),
        bucket("b1", bstmt("Allow", "s3:GetObject", "arn:aws:s3:::b1/public/*", "*", sid="public")),
        False,
        Rule.ORG_IMPLICIT_DENY,
    ),
    Row(
        "anonymous: cw:PrincipalOrgID is missing, so an org-restricted Allow does not match",
        "s3:GetObject",
        "b1/k",
        ctx(None),
        orgs(S3_FOR_ALL),
        org_only_get("org-only", ORG),
        False,
        Rule.BUCKET_IMPLICIT_DENY,
    ),
    # --- ACLs and Block Public Access (tests/policy/test_acl.py has the rest) --------------------
    Row(
        "a public-read object ACL admits an anonymous read no bucket policy grants",
        "s3:GetObject",
        "b1/k",
        ctx(None, resource_org_id=ORG),
        orgs(S3_FOR_ALL),
        None,
        True,
        Rule.ACL_ALLOW,
        policy="acl:b1",
        reason_has="the object ACL, its grant of READ to group http://acs.amazonaws.com/groups/global/AllUsers",
        acl=PUBLIC_READ,
    ),
    Row(
        "RestrictPublicBuckets: a public bucket policy admits no one outside the organization",
        "s3:GetObject",
        "b1/k",
        ctx(BOB, OTHER_ORG, resource_org_id=ORG),
        orgs(S3_FOR_ALL),
        bucket("b1", bstmt("Allow", "s3:GetObject", "arn:aws:s3:::b1/*")),
        False,
        Rule.RESTRICTED_PUBLIC_BUCKET,
        policy="bucket-policy:b1",
        reason_has="RestrictPublicBuckets is on",
        acl=PUBLIC_READ,
        restrict_public=True,
    ),
    # --- scoped keys: the owner's decision, narrowed by the key's scope -------------------
    Row(
        "scoped key: a Deny in the scope wins over the owner's Allow",
        "s3:DeleteObject",
        "b1/k",
        ctx(),
        orgs(S3_FOR_ALL),
        None,
        False,
        Rule.KEY_SCOPE_DENY,
        policy="key-scope",
        statement="no-deletes",
        reason_has="key's scope",
        scope=key_scope(("all", "Allow", "s3:*", "*"), ("no-deletes", "Deny", "s3:Delete*", "b1/*")),
    ),
    Row(
        "scoped key: what the scope does not allow is refused though the owner may",
        "s3:GetObject",
        "b1/k",
        ctx(),
        orgs(S3_FOR_ALL),
        None,
        False,
        Rule.KEY_SCOPE_NO_ALLOW,
        policy="key-scope",
        reason_has="no statement of the key's scope",
        scope=key_scope(("put", "Allow", "s3:PutObject", "b1/*")),
    ),
    Row(
        "scoped key: a scope of s3:* on * does not widen an owner without an org policy",
        "s3:GetObject",
        "b1/k",
        ctx(),
        NO_ORG_POLICIES,
        None,
        False,
        Rule.NO_ORG_POLICY,
        scope=key_scope(("all", "Allow", "s3:*", "*")),
    ),
    Row(
        "scoped key: allowed by both, the owner's decision stands",
        "s3:PutObject",
        "b1/k",
        ctx(),
        orgs(S3_FOR_ALL),
        None,
        True,
        Rule.NO_BUCKET_POLICY,
        reason_has="no bucket policy",
        scope=key_scope(("put", "Allow", "s3:PutObject", "b1/*")),
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_decision_table(row: Row) -> None:
    decision = evaluate(
        row.action,
        row.resource,
        row.ctx,
        row.org,
        row.bucket,
        acl=row.acl,
        restrict_public=row.restrict_public,
        scope=row.scope,
    )
    assert decision.allowed is row.allowed, decision.reason
    assert decision.rule is row.rule, decision.reason
    if row.policy is not None or row.rule in (Rule.ORG_DENY, Rule.BUCKET_DENY, Rule.BUCKET_ALLOW):
        assert decision.policy == row.policy
        assert decision.statement == row.statement
    assert row.reason_has in decision.reason
    assert decision.reason.startswith("allowed" if row.allowed else "denied")


def test_every_rule_has_a_row() -> None:
    assert {r.rule for r in ROWS} == set(Rule)


# --- resource matching ------------------------------------------------------------------

# (pattern, request resource, matches): the same for an org policy's resource pattern and a
# bucket policy's resource after arn:aws:s3:::
SHARED_RESOURCE_CASES = [
    ("b1", "b1", True),
    ("b1", "b1/k", False),
    ("b1/*", "b1/k", True),
    ("b1/*", "b1", False),
    ("b1/pre*", "b1/prefix/x", True),
    ("b1/pre*", "b1/other", False),
    ("b1/k?y", "b1/key", True),
    ("b1/Key", "b1/key", False),
]
RESOURCE_CASES = [
    *SHARED_RESOURCE_CASES,
    # (org-policy resource pattern, request resource, matches)
    ("*", "b1", True),
    ("*", "b1/a/b", True),
    ("b1/*", "b1/a/b/c", True),
    ("b1*", "b10", True),
    ("b1*", "b1/k", True),
    ("b?", "b1", True),
    ("b?", "b12", False),
    ("b1/k?y", "b1/kkey", False),
    ("b1/a.b", "b1/aXb", False),
]


@pytest.mark.parametrize(("pattern", "resource", "matches"), RESOURCE_CASES)
def test_org_resource_matching(pattern: str, resource: str, matches: bool) -> None:
    action = "s3:GetObject" if "/" in resource else "s3:ListBucket"
    policies = orgs(org_doc("p", allow("s", [action], [pattern], ["*"])))
    assert evaluate(action, resource, ctx(), policies, None).allowed is matches


BUCKET_RESOURCE_CASES = [
    *SHARED_RESOURCE_CASES,
    # (bucket-policy resource after arn:aws:s3:::, request resource, matches)
    ("b1/*", "b1/a/b", True),
]


@pytest.mark.parametrize(("pattern", "resource", "matches"), BUCKET_RESOURCE_CASES)
def test_bucket_resource_matching(pattern: str, resource: str, matches: bool) -> None:
    policy = bucket("b1", bstmt("Allow", "s3:*", f"arn:aws:s3:::{pattern}", "*", sid="s"))
    action = "s3:GetObject" if "/" in resource else "s3:ListBucket"
    decision = evaluate(action, resource, ctx(), orgs(S3_FOR_ALL), policy)
    assert decision.allowed is matches, decision.reason
    assert decision.rule is (Rule.BUCKET_ALLOW if matches else Rule.BUCKET_IMPLICIT_DENY)


def test_request_resource_forms() -> None:
    assert request_resource(None) == "*"
    assert request_resource("b1") == "b1"
    assert request_resource("b1", "a/b") == "b1/a/b"


# --- principal matching -----------------------------------------------------------------

PRINCIPAL_CASES = [
    # (policy principal, caller principal, aliases, matches)
    ("*", ALICE, (), True),
    (ALICE, ALICE, (), True),
    (ALICE, BOB, (), False),
    ("role/Admin", "saml/jdoe", ("role/Admin",), True),
    ("role/Admin", "saml/jdoe", ("role/Viewer",), False),
    ("saml/jdoe", "saml/jdoe", ("role/Admin",), True),
    ("role/https://idp.example.com:svc-data", "role/https://idp.example.com:svc-data", (), True),
    ("role/https://idp.example.com:svc-data", "role/https://idp.example.com:svc-other", (), False),
]


@pytest.mark.parametrize(("entry", "principal", "aliases", "matches"), PRINCIPAL_CASES)
def test_org_principal_matching(entry: str, principal: str, aliases: tuple[str, ...], matches: bool) -> None:
    policies = orgs(org_doc("p", allow("s", ["s3:GetObject"], ["*"], [entry])))
    caller = ctx(principal=principal, aliases=aliases)
    assert evaluate("s3:GetObject", "b1/k", caller, policies, None).allowed is matches


@pytest.mark.parametrize(("entry", "principal", "aliases", "matches"), PRINCIPAL_CASES)
def test_bucket_principal_matching_short_and_arn(
    entry: str, principal: str, aliases: tuple[str, ...], matches: bool
) -> None:
    caller = ctx(principal=principal, aliases=aliases)
    forms: list[object] = [{"CW": entry}, {"AWS": [entry]}]
    if entry != "*":
        forms.append({"AWS": f"arn:aws:iam::{ORG}:{entry}"})
    for form in forms:
        policy = bucket("b1", bstmt("Allow", "s3:GetObject", "arn:aws:s3:::b1/*", form, sid="s"))
        decision = evaluate("s3:GetObject", "b1/k", caller, orgs(S3_FOR_ALL), policy)
        assert decision.allowed is matches, (form, decision.reason)


def test_arn_principal_of_another_org_does_not_match_same_name_here() -> None:
    policy = bucket(
        "b1",
        bstmt("Allow", "s3:GetObject", "arn:aws:s3:::b1/*", {"AWS": f"arn:aws:iam::{OTHER_ORG}:{ALICE}"}),
    )
    assert not evaluate("s3:GetObject", "b1/k", ctx(), orgs(S3_FOR_ALL), policy).allowed


def test_platform_service_principal() -> None:
    policy = bucket(
        "audit",
        bstmt(
            "Allow",
            ["s3:PutObject", "s3:ListBucket"],
            ["arn:aws:s3:::audit", "arn:aws:s3:::audit/*"],
            {"CW": ["arn:aws:iam::coreweave:static/audit-logs"]},
        ),
    )
    writer = ctx(principal="static/audit-logs", resource_org_id=ORG)
    assert evaluate("s3:PutObject", "audit/x", writer, orgs(S3_FOR_ALL), policy).allowed
    assert not evaluate("s3:PutObject", "audit/x", ctx(), orgs(S3_FOR_ALL), policy).allowed


# --- Not* elements ----------------------------------------------------------------------


def test_not_principal_denies_everyone_else() -> None:
    policy = bucket(
        "b1",
        bstmt("Allow", "s3:*", ["arn:aws:s3:::b1", "arn:aws:s3:::b1/*"], sid="all"),
        {
            "Sid": "only-alice",
            "Effect": "Deny",
            "NotPrincipal": {"CW": ALICE},
            "Action": "s3:DeleteObject",
            "Resource": "arn:aws:s3:::b1/*",
        },
    )
    org = orgs(S3_FOR_ALL)
    assert evaluate("s3:DeleteObject", "b1/k", ctx(), org, policy).allowed
    bob = evaluate("s3:DeleteObject", "b1/k", ctx(principal=BOB), org, policy)
    assert (bob.allowed, bob.rule, bob.statement) == (False, Rule.BUCKET_DENY, "only-alice")
    anonymous = evaluate("s3:DeleteObject", "b1/k", ctx(None), org, policy)
    assert (anonymous.allowed, anonymous.rule) == (False, Rule.BUCKET_DENY)


def test_not_action_and_not_resource() -> None:
    policy = bucket(
        "b1",
        {
            "Sid": "read-only",
            "Effect": "Allow",
            "Principal": "*",
            "NotAction": ["s3:Put*", "s3:Delete*"],
            "Resource": ["arn:aws:s3:::b1", "arn:aws:s3:::b1/*"],
        },
        {
            "Sid": "only-public",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:GetObject",
            "NotResource": "arn:aws:s3:::b1/public/*",
        },
    )
    org = orgs(S3_FOR_ALL)
    assert evaluate("s3:GetObject", "b1/public/a", ctx(), org, policy).allowed
    secret = evaluate("s3:GetObject", "b1/secret/a", ctx(), org, policy)
    assert (secret.rule, secret.statement) == (Rule.BUCKET_DENY, "only-public")
    put = evaluate("s3:PutObject", "b1/public/a", ctx(), org, policy)
    assert put.rule is Rule.BUCKET_IMPLICIT_DENY
    assert evaluate("s3:ListBucket", "b1", ctx(), org, policy).allowed


# --- determinism of the named statement ------------------------------------------------


def test_deciding_statement_is_the_lowest_named() -> None:
    a = org_doc(
        "a-policy", deny("zz", ["s3:*"], ["*"], ["*"]), deny("aa", ["s3:GetObject"], ["b1/*"], [ALICE])
    )
    b = org_doc("b-policy", deny("00", ["s3:*"], ["*"], ["*"]))
    for docs in ((a, b), (b, a)):
        decision = evaluate("s3:GetObject", "b1/k", ctx(), orgs(*docs), None)
        assert (decision.policy, decision.statement) == ("a-policy", "aa")


def test_bucket_policy_must_match_the_resource_bucket() -> None:
    policy = bucket("b1", bstmt("Allow", "s3:GetObject", "arn:aws:s3:::b1/*"))
    with pytest.raises(ValueError, match="bucket policy of 'b1'"):
        evaluate("s3:GetObject", "b2/k", ctx(), orgs(S3_FOR_ALL), policy)


def test_context_refuses_spoofed_identity_keys() -> None:
    with pytest.raises(ValueError, match="comes from the context"):
        RequestContext(principal=ALICE, org_id=ORG, values={"cw:PrincipalOrgID": "org9"})
    with pytest.raises(ValueError, match="comes from the context"):
        RequestContext(principal=ALICE, org_id=ORG, values={f"iam:{ORG}:groups": ["admins"]})


def test_duplicate_policy_names_are_refused_when_compiling() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        orgs(S3_FOR_ALL, S3_FOR_ALL)
