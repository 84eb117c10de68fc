"""CheckBucketPolicyLockout, Coffer's extension: would saving this bucket policy lock me out?

`POST /v1/cwobject/auth/bucket-policy-lockout` with `{"bucketName", "policy"}` answers, for
the caller, whether under the proposed policy they could still list the bucket, read its
objects and replace its policy, each decided by the S3 face's own decision
(`Authorizer.decide_s3`) for a key of the caller, as the console's keys and the keys
CreateAccessKey mints are: the caller's principal, organization and groups
(coffer/policy/lockout.py). Nothing is saved: PutBucketPolicy stays the S3 call CoreWeave
defines. Like AuthCanI it needs no permission (callers ask only about themselves); a
bucket of another organization is as unknown as one that does not exist (only a bucket's
own organization may set its policy).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from starlette.responses import JSONResponse

from coffer.api.http import Call, Operation, require_string
from coffer.api.management import own_bucket
from coffer.api.schema import NONEMPTY_STRING, bucket_request, obj
from coffer.errors import InvalidArgument
from coffer.identity.models import AccessKey, Caller, KeySource, utcnow
from coffer.policy import RPC_ACTIONS, Decision, MalformedPolicy
from coffer.policy.lockout import Check, Lockout, Probe, would_lock_out
from coffer.web.http import call, json_body, origin_of

LOCKOUT_PATH = "/v1/cwobject/auth/bucket-policy-lockout"


def caller_key(caller: Caller) -> AccessKey:
    """The caller as the S3 face sees a key minted for it: its principal and organization,
    its groups (multiAttributes.groups), no role. Never stored; it decides, it signs nothing."""
    groups = list(caller.user.groups)
    return AccessKey(
        access_key_id="",
        org_id=caller.org_id,
        principal_name=caller.principal_name,
        user_id=caller.user.id,
        source=KeySource.JWT,
        role=None,
        attributes={},
        multi_attributes={"groups": groups} if groups else {},
        created_at=utcnow(),
        expires_at=None,
        revoked_at=None,
        suspended=False,
    )


def _policy_text(body: dict[str, Any]) -> str:
    """The proposed policy: its JSON text as PutBucketPolicy would carry it, or the object."""
    policy = body.get("policy")
    if isinstance(policy, dict):
        policy = json.dumps(policy)
    if not isinstance(policy, str) or not policy.strip():
        raise InvalidArgument.field("policy", "is required: the bucket policy document (JSON text or object)")
    return policy  # bounded by the JSON body's limit; the parser refuses one over 20 KiB


def _check_json(c: Check) -> dict[str, Any]:
    after = c.after
    out: dict[str, Any] = {
        "action": c.action,
        "resource": c.resource,
        "allowedNow": c.now.allowed,
        "allowedAfter": after.allowed,
        "lockedOut": c.locked_out,
        "rule": after.rule.value,
    }
    if c.locked_out and after.statement:
        out["statement"] = after.statement  # a Sid of the proposed policy
    return out


def lockout_json(report: Lockout, principal: str) -> dict[str, Any]:
    return {
        "bucketName": report.bucket,
        "principalName": principal,
        "lockedOut": bool(report.locked_out),
        "checks": [_check_json(c) for c in report.checks],
    }


async def check_lockout(c: Call) -> JSONResponse:
    body = await json_body(c.request)
    name = require_string(body, "bucketName")
    proposed = _policy_text(body)
    caller, node, origin = c.caller, c.node, origin_of(c.request)

    def check() -> Lockout:
        bucket = own_bucket(node, caller.org_id, name)
        key = caller_key(caller)

        def decide(probe: Probe, text: str | None) -> Decision:
            return node.authz.decide_s3(key, probe, dataclasses.replace(bucket, policy=text), origin)

        try:
            return would_lock_out(decide, bucket.name, proposed, bucket.policy)
        except MalformedPolicy as exc:  # PutBucketPolicy's own answer, in its words
            raise InvalidArgument.field("policy", f"MalformedPolicy: {exc.reason}") from None

    report = await call(check)
    return JSONResponse(lockout_json(report, caller.principal_name))


operations = [
    Operation(
        "CheckBucketPolicyLockout",
        "POST",
        LOCKOUT_PATH,
        RPC_ACTIONS["CheckBucketPolicyLockout"],
        check_lockout,
    )
]


# --- OpenAPI -------------------------------------------------------------------------------
_CHECK = obj(
    ["action", "resource", "allowedNow", "allowedAfter", "lockedOut", "rule"],
    action={"type": "string", "example": "s3:ListBucket"},
    resource={"type": "string", "example": "my-bucket"},
    allowedNow={"type": "boolean", "description": "under the bucket's current policy"},
    allowedAfter={"type": "boolean", "description": "under the proposed policy"},
    lockedOut={"type": "boolean", "description": "refused by the proposed policy"},
    rule={"type": "string", "description": "the evaluation rule that decides it (docs/policies.md)"},
    statement={"type": "string", "description": "the Sid of the proposed policy's deciding Deny"},
)
OPENAPI: dict[str, dict[str, Any]] = {
    "CheckBucketPolicyLockout": {
        "summary": "Coffer extension: would this bucket policy lock the caller out of the bucket?",
        "body": bucket_request(
            policy={
                "oneOf": [NONEMPTY_STRING, {"type": "object"}],
                "description": "the bucket policy document, as PutBucketPolicy would carry it",
            },
        ),
        "response": obj(
            ["bucketName", "principalName", "lockedOut", "checks"],
            bucketName={"type": "string"},
            principalName={"type": "string"},
            lockedOut={"type": "boolean", "description": "true when any check is locked out"},
            checks={"type": "array", "items": _CHECK},
        ),
        "errors": {
            "400": "INVALID_ARGUMENT (3): no bucketName or policy, or a policy PutBucketPolicy would refuse "
            "(the message starts with MalformedPolicy)",
            "404": "NOT_FOUND (5): no bucket of that name in the caller's organization",
        },
    },
}
