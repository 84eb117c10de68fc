"""Lifecycle executor helpers: rules, a pass run by hand, the audit events of its deletions."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.support.harness import CofferServer, run_coffer

DAY_SECONDS = 1.0  # one rule-day, for every server these tests start


def executor_env(*, interval: float = 0.0, step_keys: int = 1000, lease: float = 60.0) -> dict[str, str]:
    """The environment of a server (and of `coffer lifecycle run`) with short rule-days;
    interval 0: no background passes, only the ones a test runs."""
    return {
        "COFFER_LIFECYCLE_DAY_SECONDS": str(DAY_SECONDS),
        "COFFER_LIFECYCLE_INTERVAL_SECONDS": str(interval),
        "COFFER_LIFECYCLE_STEP_KEYS": str(step_keys),
        "COFFER_LIFECYCLE_LEASE_SECONDS": str(lease),
    }


def rule(rule_id: str, *, prefix: str | None = None, **parts: Any) -> dict[str, Any]:
    """A boto3 lifecycle rule: `Filter` from `prefix` unless `parts` has one; the actions as given."""
    return {
        "ID": rule_id,
        "Status": "Enabled",
        "Filter": parts.pop("Filter", {"Prefix": prefix or ""}),
        **parts,
    }


def put_rules(s3: Any, bucket: str, *rules: dict[str, Any]) -> None:
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": list(rules)})


def put_all(s3: Any, bucket: str, keys: list[str], body: bytes, tagging: str) -> None:
    """PUT `body` at every key, eight at a time."""
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=body, Tagging=tagging), keys))


def run_pass(server: CofferServer, bucket: str | None = None, **env: Any) -> list[dict[str, Any]]:
    """`coffer lifecycle run --json` on the server's store, with the server's rule-day length."""
    args = ["lifecycle", "run", "--json", *server.store_args]
    if bucket is not None:
        args += ["--bucket", bucket]
    result = run_coffer(*args, env={**os.environ, **executor_env(**env)})
    assert result.returncode == 0, result.stderr
    passes: list[dict[str, Any]] = json.loads(result.stdout)
    return passes


def counts_of(passes: list[dict[str, Any]], bucket: str) -> dict[str, int]:
    (found,) = [p for p in passes if p["bucket"] == bucket and p["task"] == "lifecycle"]
    assert found["status"] == "done", found
    counts: dict[str, int] = found["counts"]
    return counts


def wait_days(days: float) -> None:
    """Let `days` rule-days (and a margin) pass from now: called after the writes whose
    age matters (each response came after its commit, so after its LastModified), this is
    a deterministic wait for a rule date, not a hope."""
    time.sleep(days * DAY_SECONDS + 0.05)


def expired(server: CofferServer, bucket: str, **match: Any) -> list[dict[str, Any]]:
    """The `lifecycle_expired` audit events of `bucket` in the store's audit trail."""
    return server.audit("lifecycle_expired", bucket=bucket, **match)
