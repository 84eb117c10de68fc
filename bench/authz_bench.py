"""Decision cost through the one door, end to end (not a test: numbers vary by machine).

`bench/policy_bench.py` times the engine alone. This times what every S3 request pays:
`Authorizer.authorize_s3` on a real node (SQLite in a temporary directory) whose
organization holds 100 policies of 10 statements, so it includes building the request
context, the change-token check, the cached compiled organization policies and bucket
policy, and the engine's decision. Cases:

* realistic mix, allowed (org policies only, and with a 20-statement bucket policy);
* worst-case allow and worst-case deny (every statement a candidate; see policy_bench);
* after an unrelated change (a key minted elsewhere): the first decision re-checks the
  organization's policy fingerprints in the store, without recompiling;
* after a policy edit: the first decision recompiles 1,000 statements.

Run: python -m bench.authz_bench [--iterations N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.policy_bench import (
    CALLER,
    ORG,
    POLICIES,
    STATEMENTS,
    bucket_policy_text,
    realistic,
    timed,
    worst_case,
)
from coffer.authz import Origin
from coffer.config import Settings
from coffer.errors import S3Error
from coffer.identity.models import KeySource
from coffer.node import Node
from coffer.policy import parse_org_policy
from coffer.s3.router import route


def load(node: Node, org: str, docs: list[dict[str, Any]]) -> None:
    for existing in node.policies.list_policies(org):
        node.policies.delete(org, existing["name"])
    for doc in docs:
        node.policies.ensure(org, parse_org_policy(doc))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        node = Node.open(Settings(data_dir=str(Path(tmp) / "data"), log_level="warning"))
        try:
            run(node, args.iterations)
        finally:
            node.close()


def run(node: Node, iterations: int) -> None:
    org = node.directory.create_org("bench", org_id=ORG).id
    key = node.keys.mint(
        org_id=org, principal_name=CALLER, duration_seconds=0, source=KeySource.JWT, role="role/team-1"
    ).key
    node.storage.buckets.create(org_id=org, owner=CALLER, name="data", zone=None)
    origin = Origin("10.1.2.3", True)
    read = route("GET", "data", "report.csv", {})
    authz = node.authz

    def allow() -> None:
        authz.authorize_s3(key, read, node.storage.buckets.get("data"), origin)

    def decide() -> bool:
        return authz.decide_s3(key, read, node.storage.buckets.get("data"), origin).allowed

    print(f"{POLICIES} policies x {STATEMENTS} statements; {iterations} iterations, median of 5 runs")
    print(f"{'case':60} {'decision':>8} {'us/request':>11}")

    def line(name: str, verdict: str, micros: float) -> None:
        print(f"{name:60} {verdict:>8} {micros:11.1f}")

    def report(name: str, expected: bool) -> None:
        assert decide() is expected, name
        line(name, "allow" if expected else "deny", timed(allow if expected else decide, iterations))

    load(node, org, realistic())
    report("realistic mix (authorize_s3)", True)
    node.storage.buckets.update("data", policy=bucket_policy_text())
    report("realistic mix + 20-statement bucket policy (authorize_s3)", True)
    node.storage.buckets.update("data", policy=None)
    load(node, org, worst_case("Allow"))
    report("worst-case allow (authorize_s3)", True)
    load(node, org, worst_case("Deny"))
    report("worst-case deny (decide_s3: the same minus the audit line)", False)
    try:
        allow()
        raise AssertionError("the worst-case deny allowed")
    except S3Error as exc:
        assert exc.code == "AccessDenied"

    load(node, org, realistic())
    allow()
    samples = []
    for i in range(21):
        node.keys.mint(
            org_id=org, principal_name=f"coreweave/other-{i}", duration_seconds=0, source=KeySource.JWT
        )
        start = time.perf_counter()
        allow()
        samples.append((time.perf_counter() - start) * 1e6)
    line("first request after an unrelated change (re-reads fingerprints)", "allow", sorted(samples)[10])
    samples = []
    for i in range(11):
        doc = realistic()[1]
        doc["statements"][0]["name"] = f"edited-{i}"
        node.policies.ensure(org, parse_org_policy(doc))
        start = time.perf_counter()
        allow()
        samples.append((time.perf_counter() - start) * 1e6)
    line("first request after a policy edit (recompiles 1,000 statements)", "allow", sorted(samples)[5])


if __name__ == "__main__":
    main()
