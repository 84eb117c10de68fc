"""would_lock_out: the same questions put to the evaluator under the proposed policy and the
current one; locked out means refused by the proposed policy, not by the organization."""

from __future__ import annotations

from typing import Any

import pytest

from coffer.policy import (
    MalformedPolicy,
    OrgPolicySet,
    Rule,
    compile_bucket_policy,
    evaluate,
    parse_bucket_policy,
)
from coffer.policy.engine import Decision
from coffer.policy.lockout import PROBE_KEY, Decide, Probe, probes, would_lock_out
from tests.policy.builders import ALICE, S3_FOR_ALL, allow, bstmt, bucket_doc, ctx, deny, org_doc, orgs

pytestmark = pytest.mark.unit

B = "data"
ARNS = [f"arn:aws:s3:::{B}", f"arn:aws:s3:::{B}/*"]


def decider(org: OrgPolicySet, **context: Any) -> tuple[list[tuple[str, str | None]], Decide]:
    asked: list[tuple[str, str | None]] = []

    def decide(probe: Probe, text: str | None) -> Decision:
        asked.append((probe.action, text))
        policy = compile_bucket_policy(parse_bucket_policy(text, B)) if text else None
        return evaluate(probe.action, probe.resource, ctx(**context), org, policy)

    return asked, decide


def test_the_questions() -> None:
    assert [(p.name, p.action, p.resource, p.key) for p in probes(B)] == [
        ("ListObjectsV2", "s3:ListBucket", B, None),
        ("GetObject", "s3:GetObject", f"{B}/{PROBE_KEY}", PROBE_KEY),
        ("PutBucketPolicy", "s3:PutBucketPolicy", B, None),
    ]


def test_a_policy_for_someone_else_locks_its_author_out_of_reading_only() -> None:
    asked, decide = decider(orgs(S3_FOR_ALL))
    proposed = bucket_doc(bstmt("Allow", "s3:*", ARNS, {"CW": "role/DataTeam"}))
    report = would_lock_out(decide, B, proposed, None)
    assert [(c.action, c.now.allowed, c.after.allowed, c.locked_out) for c in report.checks] == [
        ("s3:ListBucket", True, False, True),
        ("s3:GetObject", True, False, True),
        ("s3:PutBucketPolicy", True, True, False),  # global: organization policies alone
    ]
    assert {c.after.rule for c in report.locked_out} == {Rule.BUCKET_IMPLICIT_DENY}
    # Every proposed decision first, then the current ones: the cache ends on the policy in force.
    assert [text for _, text in asked] == [proposed] * 3 + [None] * 3


def test_a_deny_is_named_and_a_prefix_grant_still_warns() -> None:
    _, decide = decider(orgs(S3_FOR_ALL))
    proposed = bucket_doc(
        bstmt("Allow", "s3:*", ARNS, {"CW": "*"}),
        bstmt("Deny", "s3:ListBucket", ARNS[0], "*", sid="NoListing"),
    )
    (check,) = would_lock_out(decide, B, proposed, None).locked_out
    assert (check.action, check.after.rule, check.after.statement) == (
        "s3:ListBucket",
        Rule.BUCKET_DENY,
        "NoListing",
    )

    only_public = bucket_doc(
        bstmt("Allow", "s3:ListBucket", ARNS[0], {"CW": "*"}),
        bstmt("Allow", "s3:GetObject", f"arn:aws:s3:::{B}/public/*", {"CW": "*"}),
    )
    report = would_lock_out(decide, B, only_public, None)
    assert [c.action for c in report.locked_out] == ["s3:GetObject"]


def test_a_safe_policy_and_the_organizations_own_refusals_are_not_lockouts() -> None:
    _, decide = decider(orgs(S3_FOR_ALL))
    safe = bucket_doc(bstmt("Allow", "s3:*", ARNS, {"CW": "*"}))
    assert would_lock_out(decide, B, safe, None).locked_out == ()

    # The organization forbids reads anyway: the bucket policy takes nothing away.
    no_reads = orgs(S3_FOR_ALL, org_doc("no-reads", deny("no-get", ["s3:GetObject"], ["*"], [ALICE])))
    _, decide = decider(no_reads)
    team_only = bucket_doc(bstmt("Allow", "s3:*", ARNS, {"CW": "role/DataTeam"}))
    report = would_lock_out(decide, B, team_only, None)
    get = next(c for c in report.checks if c.action == "s3:GetObject")
    assert not get.now.allowed and not get.after.allowed and not get.locked_out
    assert get.after.rule is Rule.ORG_DENY
    assert [c.action for c in report.locked_out] == ["s3:ListBucket"]


def test_replacing_a_locking_policy_with_another_still_warns() -> None:
    _, decide = decider(orgs(org_doc("x", allow("s3", ["s3:*"], ["*"], ["*"]))), groups=("team-a",))
    locking = bucket_doc(bstmt("Allow", "s3:*", ARNS, {"CW": "role/DataTeam"}))
    report = would_lock_out(decide, B, locking, locking)
    assert [(c.now.allowed, c.locked_out) for c in report.locked_out] == [(False, True), (False, True)]


def test_a_malformed_policy_is_refused_before_anything_is_asked() -> None:
    asked, decide = decider(orgs(S3_FOR_ALL))
    with pytest.raises(MalformedPolicy):
        would_lock_out(decide, B, '["not a policy"]', None)
    with pytest.raises(MalformedPolicy):  # a resource of another bucket, as PutBucketPolicy refuses
        would_lock_out(decide, B, bucket_doc(bstmt("Allow", "s3:*", "arn:aws:s3:::other/*")), None)
    assert asked == []
