"""Decision cost of the policy engine, in microseconds (not a test: numbers vary by machine).

Builds 100 organization policies of 10 statements each and times `evaluate()` on:

* worst-case allow: every one of the 1,000 statements names the action and the caller
  (twice: by name and by role), and has resource patterns in the request's bucket that
  fail only at their end; the 500 Deny statements all miss, and only the last Allow
  (by name) matches, so every candidate is examined;
* worst-case deny: the same, with the deciding Deny ordered last;
* a realistic mix: statements spread over 50 principals and 100 buckets;
* the worst-case allow followed by a 20-statement bucket policy with conditions.

Run: python -m bench.policy_bench [--iterations N]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from coffer.policy import (
    OrgPolicySet,
    RequestContext,
    compile_bucket_policy,
    compile_org_policies,
    evaluate,
    parse_bucket_policy,
    parse_org_policy,
)

POLICIES = 100
STATEMENTS = 10
CALLER = "coreweave/alice"
ORG = "org1"


def statement(
    name: str, effect: str, actions: list[str], resources: list[str], principals: list[str]
) -> dict[str, Any]:
    return {
        "name": name,
        "effect": effect,
        "actions": actions,
        "resources": resources,
        "principals": principals,
    }


def worst_case(deciding_effect: str) -> list[dict[str, Any]]:
    """Every statement is a candidate for (s3:GetObject, alice, data/...); one matches, ordered last.

    Each miss names the request's bucket and fails only at its last character, so no
    index can rule it out and every one costs a full pattern match.
    """
    docs: list[dict[str, Any]] = []
    for p in range(POLICIES):
        stmts = []
        for s in range(STATEMENTS):
            effect = "Deny" if s % 2 else "Allow"
            resource = f"data/*.csv-{p}-{s}"
            last = p == POLICIES - 1 and s >= STATEMENTS - 2
            if last and effect == deciding_effect:
                resource = "data/*"
            if effect == "Allow" and deciding_effect == "Deny" and last:
                resource = "data/*"  # an Allow that would match too: the Deny must still win
            stmts.append(
                statement(
                    f"s{s:02d}",
                    effect,
                    ["s3:Get*", "s3:List*"],
                    [resource, f"d*/*.csv{s}"],
                    [CALLER, "role/team-1"],
                )
            )
        docs.append({"version": "v1alpha1", "name": f"p{p:03d}", "statements": stmts})
    return docs


def realistic() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for p in range(POLICIES):
        stmts: list[dict[str, Any]] = []
        for s in range(STATEMENTS):
            n = p * STATEMENTS + s
            stmts.append(
                statement(
                    f"s{s:02d}",
                    "Deny" if n % 7 == 0 else "Allow",
                    ["s3:GetObject", "s3:PutObject", "s3:ListBucket"] if n % 3 else ["s3:*"],
                    [f"bucket-{n % 100}", f"bucket-{n % 100}/team-{n % 5}/*"],
                    [f"coreweave/user-{n % 50}", f"role/team-{n % 5}"],
                )
            )
        docs.append({"version": "v1alpha1", "name": f"p{p:03d}", "statements": stmts})
    docs[0]["statements"][0] = statement("s00", "Allow", ["s3:GetObject"], ["data/*"], [CALLER])
    return docs


def bucket_policy_text() -> str:
    statements: list[dict[str, Any]] = []
    for i in range(19):
        statements.append(
            {
                "Sid": f"deny-{i:02d}",
                "Effect": "Deny",
                "Principal": {"CW": "*"},
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"arn:aws:s3:::data/secret-{i}/*",
                "Condition": {
                    "NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]},
                    "StringNotEquals": {"cw:PrincipalOrgID": ORG},
                },
            }
        )
    statements.append(
        {
            "Sid": "org-read",
            "Effect": "Allow",
            "Principal": {"CW": "*"},
            "Action": "s3:Get*",
            "Resource": "arn:aws:s3:::data/*",
            "Condition": {
                "StringEquals": {"cw:PrincipalOrgID": ORG},
                "Bool": {"aws:SecureTransport": "true"},
            },
        }
    )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def compile_docs(docs: list[dict[str, Any]]) -> tuple[OrgPolicySet, float]:
    start = time.perf_counter()
    policies = compile_org_policies(parse_org_policy(d) for d in docs)
    return policies, (time.perf_counter() - start) * 1000


def timed(fn: Callable[[], object], iterations: int) -> float:
    """Median of five runs, in microseconds per call."""
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(iterations):
            fn()
        runs.append((time.perf_counter() - start) / iterations * 1e6)
    return sorted(runs)[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()
    ctx = RequestContext(
        principal=CALLER,
        org_id=ORG,
        aliases=("role/team-1",),
        source_ip="192.0.2.10",
        secure=True,
        now=datetime.now(UTC),
    )
    bucket = compile_bucket_policy(parse_bucket_policy(bucket_policy_text(), "data"))

    allow_set, allow_ms = compile_docs(worst_case("Allow"))
    deny_set, deny_ms = compile_docs(worst_case("Deny"))
    mixed_set, mixed_ms = compile_docs(realistic())

    cases: list[tuple[str, OrgPolicySet, Any, bool, float]] = [
        ("worst-case allow (org only)", allow_set, None, True, allow_ms),
        ("worst-case deny (org only)", deny_set, None, False, deny_ms),
        ("realistic mix (org only)", mixed_set, None, True, mixed_ms),
        ("worst-case allow + 20-statement bucket policy", allow_set, bucket, True, allow_ms),
    ]
    print(f"{POLICIES} policies x {STATEMENTS} statements; {args.iterations} iterations, median of 5 runs")
    print(f"{'case':48} {'decision':>9} {'us/decision':>12} {'compile ms':>11}")
    for name, policies, bucket_policy, expected, compile_ms in cases:
        decision = evaluate("s3:GetObject", "data/report.csv", ctx, policies, bucket_policy)
        assert decision.allowed is expected, (name, decision.reason)

        def run(policies: OrgPolicySet = policies, bucket_policy: Any = bucket_policy) -> object:
            return evaluate("s3:GetObject", "data/report.csv", ctx, policies, bucket_policy)

        micros = timed(run, args.iterations)
        verdict = "allow" if decision.allowed else "deny"
        print(f"{name:48} {verdict:>9} {micros:12.1f} {compile_ms:11.1f}")


if __name__ == "__main__":
    main()
