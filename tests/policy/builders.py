"""Small builders so policy tests read as tables rather than JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from coffer.policy import (
    CompiledBucketPolicy,
    OrgPolicySet,
    RequestContext,
    compile_bucket_policy,
    compile_org_policies,
    parse_bucket_policy,
    parse_org_policy,
)
from tests.support.policies import statement

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
ORG = "org1"
OTHER_ORG = "org2"
ALICE = "coreweave/alice"
BOB = "coreweave/bob"


def stmt(
    name: str,
    effect: str,
    actions: list[str],
    resources: list[str],
    principals: list[str],
) -> dict[str, Any]:
    return statement(name, actions, resources, principals, effect)


def allow(name: str, actions: list[str], resources: list[str], principals: list[str]) -> dict[str, Any]:
    return stmt(name, "Allow", actions, resources, principals)


def deny(name: str, actions: list[str], resources: list[str], principals: list[str]) -> dict[str, Any]:
    return stmt(name, "Deny", actions, resources, principals)


def org_doc(name: str, *statements: dict[str, Any]) -> dict[str, Any]:
    return {"version": "v1alpha1", "name": name, "statements": list(statements)}


def orgs(*docs: dict[str, Any]) -> OrgPolicySet:
    return compile_org_policies(parse_org_policy(d) for d in docs)


def bucket_doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def bstmt(
    effect: str,
    action: str | list[str],
    resource: str | list[str],
    principal: Any = "*",
    sid: str | None = None,
    condition: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"Effect": effect, "Principal": principal, "Action": action, "Resource": resource}
    if sid is not None:
        out["Sid"] = sid
    if condition is not None:
        out["Condition"] = condition
    return out


def bucket(name: str, *statements: dict[str, Any]) -> CompiledBucketPolicy:
    return compile_bucket_policy(parse_bucket_policy(bucket_doc(*statements), name))


def ctx(principal: str | None = ALICE, org_id: str | None = ORG, **kwargs: Any) -> RequestContext:
    kwargs.setdefault("now", NOW)
    if principal is None:
        org_id = None
    return RequestContext(principal=principal, org_id=org_id, **kwargs)


# A common baseline: everyone in the org may use S3 on every bucket.
S3_FOR_ALL = org_doc("s3-for-all", allow("all-s3", ["s3:*"], ["*"], ["*"]))
