"""Properties of the evaluator over generated policies and requests (hypothesis)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffer.policy import (
    CompiledBucketPolicy,
    Decision,
    MalformedPolicy,
    OrgPolicySet,
    RequestContext,
    Rule,
    compile_bucket_policy,
    compile_org_policies,
    evaluate,
    is_global,
    parse_bucket_policy,
    parse_org_policy,
)
from coffer.policy.org import _SMALL_LIST
from tests.policy.builders import NOW, ORG, OTHER_ORG

BUCKET = "b1"
PRINCIPALS = ["coreweave/alice", "coreweave/bob", "saml/ops"]
ROLES = ["role/Admin", "role/Viewer"]
ORG_PRINCIPALS = ["*", "*", "*", *PRINCIPALS, *ROLES]  # weighted towards matching
ORG_ACTIONS = [
    "*",
    "s3:*",
    "s3:Get*",
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListBucket",
    "s3:ListAllMyBuckets",
    "s3:PutBucketPolicy",
    "cwobject:*",
    "cwobject:CreateAccessKey",
]
ORG_RESOURCES = ["*", "*", "*", "b1", "b1/*", "b1/pub*", "b2", "b2/*", "b?/*", "b1*"]
# (action, resource) pairs a router could produce.
REQUESTS = [
    ("s3:GetObject", "b1/pub/x"),
    ("s3:GetObject", "b1/secret"),
    ("s3:PutObject", "b1/pub/y"),
    ("s3:DeleteObject", "b1/k"),
    ("s3:ListBucket", "b1"),
    ("s3:GetBucketPolicy", "b1"),
    ("s3:ListAllMyBuckets", "*"),
    ("s3:PutBucketPolicy", "b1"),
    ("cwobject:CreateAccessKey", "*"),
    ("cwobject:ListAccessKeyInfo", "*"),
]
BUCKET_PRINCIPALS: list[Any] = [
    "*",
    {"CW": "*"},
    {"CW": "coreweave/alice"},
    {"AWS": f"arn:aws:iam::{OTHER_ORG}:coreweave/bob"},
    {"AWS": f"arn:aws:iam::{OTHER_ORG}:root"},
    {"CW": ["role/Admin", "saml/ops"]},
]
BUCKET_ACTIONS = ["s3:*", "s3:Get*", "s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObject"]
BUCKET_RESOURCES = [["b1", "b1/*"], ["b1/*"], ["b1/pub*"], ["b1"], ["b1/secret"]]
CONDITIONS: list[dict[str, Any] | None] = [
    None,
    None,
    {"StringEquals": {"cw:PrincipalOrgID": ORG}},
    {"StringNotEquals": {"cw:PrincipalOrgID": ORG}},
    {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    {"Bool": {"aws:SecureTransport": "false"}},
    {"ForAnyValue:StringEquals": {f"iam:{ORG}:groups": "data"}},
]

names = st.integers(min_value=0, max_value=999).map(lambda i: f"s{i:03d}")
org_statement = st.fixed_dictionaries(
    {
        "name": names,
        "effect": st.sampled_from(["Allow", "Allow", "Allow", "Deny"]),
        "actions": st.lists(st.sampled_from(ORG_ACTIONS), min_size=1, max_size=3),
        "resources": st.lists(st.sampled_from(ORG_RESOURCES), min_size=1, max_size=3),
        "principals": st.lists(st.sampled_from(ORG_PRINCIPALS), min_size=1, max_size=2),
    }
)


@st.composite
def org_policy_docs(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(min_value=0, max_value=4) | st.integers(min_value=1, max_value=4))
    docs = []
    for i in range(count):
        statements = draw(st.lists(org_statement, min_size=1, max_size=4, unique_by=lambda s: s["name"]))
        docs.append({"version": "v1alpha1", "name": f"p{i}", "statements": statements})
    return docs


@st.composite
def bucket_statement(draw: st.DrawFn) -> dict[str, Any]:
    resources = draw(st.sampled_from(BUCKET_RESOURCES))
    actions = draw(st.lists(st.sampled_from(BUCKET_ACTIONS), min_size=1, max_size=2))
    if not any(a == "s3:*" for a in actions):
        # keep every statement valid: include an action of each resource kind in use
        actions = [*actions, "s3:*"] if len(resources) > 1 else actions
    out: dict[str, Any] = {
        "Effect": draw(st.sampled_from(["Allow", "Allow", "Deny"])),
        "Principal": draw(st.sampled_from(BUCKET_PRINCIPALS)),
        "Action": actions,
        "Resource": [f"arn:aws:s3:::{r}" for r in resources],
    }
    sid = draw(st.one_of(st.none(), names))
    if sid is not None:
        out["Sid"] = sid
    condition = draw(st.sampled_from(CONDITIONS))
    if condition is not None:
        out["Condition"] = condition
    return out


def _parse_bucket(statements: list[dict[str, Any]]) -> CompiledBucketPolicy | None:
    try:
        policy = parse_bucket_policy(json.dumps({"Version": "2012-10-17", "Statement": statements}), BUCKET)
    except MalformedPolicy:
        return None  # a generated combination S3 itself refuses (action/resource kinds)
    return compile_bucket_policy(policy)


@st.composite
def bucket_policies(draw: st.DrawFn) -> list[dict[str, Any]] | None:
    if draw(st.booleans()):
        return None
    statements = draw(st.lists(bucket_statement(), min_size=1, max_size=4))
    sids = [s["Sid"] for s in statements if "Sid" in s]
    if len(sids) != len(set(sids)):
        for i, s in enumerate(statements):
            s.pop("Sid", None)
            if i % 2:
                s["Sid"] = f"u{i}"
    return statements


@st.composite
def contexts(draw: st.DrawFn) -> RequestContext:
    principal = draw(st.sampled_from([*PRINCIPALS, *PRINCIPALS, None]))
    if principal is None:
        return RequestContext(now=NOW, source_ip=draw(st.sampled_from(["10.1.1.1", "192.0.2.1"])))
    org_id = draw(st.sampled_from([ORG, ORG, OTHER_ORG]))
    return RequestContext(
        principal=principal,
        org_id=org_id,
        aliases=tuple(draw(st.lists(st.sampled_from(ROLES), max_size=2, unique=True))),
        groups=tuple(draw(st.lists(st.sampled_from(["data", "ops"]), max_size=2, unique=True))),
        storage_admin=draw(st.booleans()),
        source_ip=draw(st.sampled_from(["10.1.1.1", "192.0.2.1", "2001:db8::1"])),
        secure=draw(st.sampled_from([True, False, None])),
        now=NOW,
        resource_org_id=ORG,
    )


@dataclass
class Scenario:
    action: str
    resource: str
    ctx: RequestContext
    org_docs: list[dict[str, Any]]
    bucket_statements: list[dict[str, Any]] | None

    def org(self, extra: list[dict[str, Any]] | None = None) -> OrgPolicySet:
        return compile_org_policies(parse_org_policy(d) for d in [*self.org_docs, *(extra or [])])

    def decide(
        self,
        org: OrgPolicySet | None = None,
        bucket: CompiledBucketPolicy | str | None = "default",
        ctx: RequestContext | None = None,
    ) -> Decision:
        policy = self.bucket() if bucket == "default" else bucket
        assert not isinstance(policy, str)
        return evaluate(
            self.action, self.resource, ctx or self.ctx, self.org() if org is None else org, policy
        )

    def bucket(self) -> CompiledBucketPolicy | None:
        return None if self.bucket_statements is None else _parse_bucket(self.bucket_statements)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    action, resource = draw(st.sampled_from(REQUESTS))
    return Scenario(action, resource, draw(contexts()), draw(org_policy_docs()), draw(bucket_policies()))


def outcome(d: Decision) -> tuple[bool, Rule, str | None, str | None]:
    """A decision without its prose (which may cite an unnamed statement's position)."""
    return (d.allowed, d.rule, d.policy, d.statement)


PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(scenarios())
def test_explicit_org_deny_always_wins(s: Scenario) -> None:
    if s.ctx.storage_admin and s.action.startswith("cwobject:"):
        return  # the one documented exception: admins hold every cwobject: action
    target = "*" if s.ctx.anonymous else s.ctx.principal
    assert target is not None
    guard = {
        "version": "v1alpha1",
        "name": "zz-guard",
        "statements": [
            {
                "name": "deny",
                "effect": "Deny",
                "actions": [s.action],
                "resources": [s.resource],
                "principals": [target],
            }
        ],
    }
    decision = s.decide(org=s.org([guard]))
    assert not decision.allowed
    assert decision.rule in (Rule.ORG_DENY, Rule.ANONYMOUS_GLOBAL, Rule.CROSS_ORG_GLOBAL, Rule.UNKNOWN_ACTION)


@PROPERTY_SETTINGS
@given(scenarios())
def test_explicit_bucket_deny_always_wins_for_bucket_scoped_actions(s: Scenario) -> None:
    if is_global(s.action):
        return
    deny = {
        "Sid": "zz-deny",
        "Effect": "Deny",
        "Principal": "*",
        "Action": s.action,
        "Resource": f"arn:aws:s3:::{s.resource}",
    }
    bucket = _parse_bucket([*(s.bucket_statements or []), deny])
    assert bucket is not None or s.bucket_statements is not None
    if bucket is None:
        return
    decision = s.decide(bucket=bucket)
    assert not decision.allowed


@PROPERTY_SETTINGS
@given(scenarios(), org_statement.map(lambda st_: {**st_, "effect": "Allow"}))
def test_adding_an_org_allow_never_removes_access(s: Scenario, extra: dict[str, Any]) -> None:
    before = s.decide()
    after = s.decide(org=s.org([{"version": "v1alpha1", "name": "zz-extra", "statements": [extra]}]))
    if before.allowed:
        assert after.allowed, (before.reason, after.reason)


@PROPERTY_SETTINGS
@given(scenarios(), bucket_statement().map(lambda b: {**b, "Effect": "Allow", "Sid": "zz-extra"}))
def test_adding_a_bucket_allow_never_removes_access(s: Scenario, extra: dict[str, Any]) -> None:
    if s.bucket_statements is None:
        return  # creating a policy where there was none is not "adding an Allow"
    base = [{k: v for k, v in b.items() if not (k == "Sid" and v == "zz-extra")} for b in s.bucket_statements]
    before_policy = _parse_bucket(base)
    after_policy = _parse_bucket([*base, extra])
    if before_policy is None or after_policy is None:
        return
    if s.decide(bucket=before_policy).allowed:
        assert s.decide(bucket=after_policy).allowed


@PROPERTY_SETTINGS
@given(scenarios())
def test_without_org_policies_no_s3_access(s: Scenario) -> None:
    decision = s.decide(org=compile_org_policies([]))
    if s.action.startswith("s3:"):
        assert not decision.allowed
    else:
        assert decision.allowed == (s.ctx.storage_admin and not s.ctx.anonymous)


@PROPERTY_SETTINGS
@given(scenarios())
def test_global_actions_ignore_bucket_policies(s: Scenario) -> None:
    if not is_global(s.action):
        return
    assert s.decide() == s.decide(bucket=None)


@PROPERTY_SETTINGS
@given(scenarios())
def test_admin_role_never_changes_s3_decisions(s: Scenario) -> None:
    if not s.action.startswith("s3:"):
        return
    assert s.decide(ctx=replace(s.ctx, storage_admin=True)) == s.decide(
        ctx=replace(s.ctx, storage_admin=False)
    )


@PROPERTY_SETTINGS
@given(scenarios(), st.randoms(use_true_random=False))
def test_decisions_are_deterministic_and_order_independent(s: Scenario, rnd: Any) -> None:
    first = s.decide()
    assert s.decide() == first
    shuffled_docs = [
        dict(d, statements=rnd.sample(d["statements"], len(d["statements"]))) for d in s.org_docs
    ]
    rnd.shuffle(shuffled_docs)
    shuffled_bucket = None
    if s.bucket_statements is not None:
        shuffled_bucket = rnd.sample(s.bucket_statements, len(s.bucket_statements))
    other = Scenario(s.action, s.resource, s.ctx, shuffled_docs, shuffled_bucket)
    assert outcome(other.decide()) == outcome(first)


# --- the org-policy index agrees with a plain scan ---------------------------------------

INDEX_RESOURCES = [
    "*",
    "?",
    "b1",
    "b1/*",
    "b1/a*",
    "b1/a/?",
    "b1*",
    "b?/*",
    "b?",
    "*/a*",
    "*z",
    "b2/*",
    "c*/x",
]
INDEX_REQUESTS = ["b1", "b1/a", "b1/a/b", "b1/z", "b2", "b2/z", "b10", "c9/x", "*", "zz"]
INDEX_KEYS = st.sampled_from([("*",), ("*", "coreweave/alice"), ("*", "coreweave/alice", "role/Admin")])


def index_statements(
    action: str, resources: Any, *, min_size: int, max_size: int, max_principals: int | None = None
) -> Any:
    """Org statements named uniquely for the index tests: `action` on 1-3 of `resources`."""
    return st.lists(
        st.fixed_dictionaries(
            {
                "name": names,
                "effect": st.sampled_from(["Allow", "Deny"]),
                "actions": st.just([action]),
                "resources": st.lists(resources, min_size=1, max_size=3),
                "principals": st.lists(
                    st.sampled_from(["*", "coreweave/alice", "role/Admin"]),
                    min_size=1,
                    max_size=max_principals,
                ),
            }
        ),
        min_size=min_size,
        max_size=max_size,
        unique_by=lambda s: s["name"],
    )


def assert_index_is_a_linear_scan(
    statements: list[dict[str, Any]], requests: list[str], keys: tuple[str, ...]
) -> None:
    """For every request and effect, the index's first match is the first statement by name
    that a linear scan finds."""
    from coffer.policy.org import Effect
    from coffer.policy.patterns import glob_match

    policies = compile_org_policies(
        [parse_org_policy({"version": "v1alpha1", "name": "p", "statements": statements})]
    )
    ordered = sorted(statements, key=lambda s: s["name"])
    for resource in requests:
        for effect in Effect:
            expected = next(
                (
                    s["name"]
                    for s in ordered
                    if s["effect"] == effect.value
                    and set(s["principals"]) & set(keys)
                    and any(glob_match(r, resource) for r in s["resources"])
                ),
                None,
            )
            found = policies.first_match(effect, "s3:getobject", resource, keys)
            assert (found.name if found else None) == expected, (resource, effect)


@settings(max_examples=150, deadline=None)
@given(
    index_statements("s3:*", st.sampled_from(INDEX_RESOURCES), min_size=1, max_size=40),
    st.sampled_from(INDEX_REQUESTS),
    INDEX_KEYS,
)
def test_index_matches_a_linear_scan(
    statements: list[dict[str, Any]], resource: str, keys: tuple[str, ...]
) -> None:
    assert_index_is_a_linear_scan(statements, [resource], keys)


# Generated resource patterns and requests: wildcards in the bucket part, in the key part, `?`
# standing for `/`, and always more statements than the index leaves unnarrowed.
_CHARS = "ab1*?"
gen_bucket_part = st.text(alphabet=_CHARS, min_size=1, max_size=3)
gen_pattern = st.one_of(
    st.just("*"),
    gen_bucket_part,
    st.tuples(gen_bucket_part, st.text(alphabet=_CHARS + "/", min_size=1, max_size=4)).map("/".join),
)
gen_request = st.one_of(st.just("*"), st.text(alphabet="ab1/*?", min_size=1, max_size=6))


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    index_statements("s3:GetObject", gen_pattern, min_size=_SMALL_LIST + 1, max_size=30, max_principals=3),
    st.lists(gen_request, min_size=1, max_size=8),
    INDEX_KEYS,
)
def test_index_matches_a_linear_scan_on_generated_patterns(
    statements: list[dict[str, Any]], requests: list[str], keys: tuple[str, ...]
) -> None:
    assert_index_is_a_linear_scan(statements, requests, keys)
