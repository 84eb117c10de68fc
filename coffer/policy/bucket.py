"""AWS-style bucket policies: parse and validate (as S3 PutBucketPolicy does), then compile.

`parse_bucket_policy(text, bucket)` is pure and raises `MalformedPolicy(reason)` (`coffer.policy.errors`)
with the reasons S3 gives ("Policy has invalid resource", "Invalid principal in policy",
"Missing required field Statement", ...). Every Resource must name the policy's own
bucket, and only `s3:` actions are accepted: bucket policies grant S3 permissions only
(reference §3.1). `compile_bucket_policy` produces what `engine.evaluate` consumes, and
tells whether the policy is public as Block Public Access reads it (`public`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from coffer.policy.actions import ACTIONS, S3_SERVICE, ActionError, Scope, expand
from coffer.policy.conditions import EMPTY, ConditionBlock, ConditionError, Lookup, parse_condition_block
from coffer.policy.errors import MalformedPolicy
from coffer.policy.org import Effect
from coffer.policy.patterns import GlobSet, PatternError, check_pattern, compile_glob
from coffer.policy.principals import (
    BucketPrincipal,
    Identity,
    PrincipalError,
    PrincipalMatcher,
    parse_bucket_principal,
)
from coffer.policy.resources import ResourceError, arn_to_short

BUCKET_POLICY_VERSIONS = ("2012-10-17", "2008-10-17")
DEFAULT_VERSION = "2008-10-17"  # what AWS assumes when Version is absent
MAX_POLICY_BYTES = 20 * 1024
_TOP_FIELDS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_FIELDS = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)
_PRINCIPAL_KINDS = ("AWS", "CW")
_INVALID_JSON = "Policies must be valid JSON and the first byte must be '{'"


def _malformed(reason: str) -> MalformedPolicy:
    return MalformedPolicy(reason)


@dataclass(frozen=True, slots=True)
class BucketStatement:
    """One validated statement. Exactly one of each Principal/Action/Resource pair is set."""

    number: int  # 1-based position in the document, for messages
    sid: str | None
    effect: Effect
    principal: tuple[BucketPrincipal, ...] | None
    not_principal: tuple[BucketPrincipal, ...] | None
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None  # short form: "bucket", "bucket/key*"
    not_resources: tuple[str, ...] | None
    condition: ConditionBlock
    canonical: str  # the statement as sorted JSON: an order-free tie-break for unnamed ones

    @property
    def label(self) -> str:
        return f"Sid {self.sid!r}" if self.sid else f"statement #{self.number} (no Sid)"


@dataclass(frozen=True, slots=True)
class BucketPolicy:
    """A validated bucket policy; `text` is what GetBucketPolicy returns."""

    bucket: str
    version: str
    id: str | None
    statements: tuple[BucketStatement, ...]
    text: str

    def compile(self) -> CompiledBucketPolicy:
        return compile_bucket_policy(self)


def _strings(raw: Any, reason: str) -> list[str]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(isinstance(x, str) for x in items):
        raise _malformed(reason)
    return list(items)


def _bounded(values: list[str], reason: str, what: str) -> list[str]:
    """Values within coffer.limits' pattern bounds, so evaluating one costs a known amount."""
    for value in values:
        try:
            check_pattern(value, what)
        except PatternError as exc:
            raise _malformed(f"{reason}: {exc}") from None
    return values


def _principals(raw: Any) -> tuple[BucketPrincipal, ...]:
    reason = "Invalid principal in policy"
    if raw == "*":
        return (BucketPrincipal(everyone=True),)
    if not isinstance(raw, dict) or not raw:
        raise _malformed(reason)
    out: list[BucketPrincipal] = []
    for kind, values in raw.items():
        if kind not in _PRINCIPAL_KINDS:
            raise _malformed(reason)
        for value in _bounded(_strings(values, reason), reason, "principal"):
            try:
                out.append(parse_bucket_principal(value))
            except PrincipalError:
                raise _malformed(reason) from None
    return tuple(out)


def _actions(raw: Any) -> tuple[str, ...]:
    reason = "Policy has invalid action"
    entries = _bounded(_strings(raw, reason), reason, "action")
    for entry in entries:
        try:
            expand(entry, (S3_SERVICE,))
        except ActionError:
            raise _malformed(reason) from None
    return tuple(entries)


def _resources(raw: Any, bucket: str) -> tuple[str, ...]:
    reason = "Policy has invalid resource"
    try:
        return tuple(arn_to_short(arn, bucket) for arn in _bounded(_strings(raw, reason), reason, "resource"))
    except ResourceError:
        raise _malformed(reason) from None


def _exactly_one(raw: dict[str, Any], field: str) -> Any:
    """(positive, negative) for Principal/NotPrincipal and friends: exactly one present."""
    has, has_not = field in raw, f"Not{field}" in raw
    if has and has_not:
        raise _malformed(f"Statement cannot contain both {field} and Not{field}")
    if not has and not has_not:
        raise _malformed(f"Missing required field {field}")
    return raw[field] if has else None, raw[f"Not{field}"] if has_not else None


def _expanded(entries: Iterable[str]) -> frozenset[str]:
    out: set[str] = set()
    for entry in entries:
        out |= expand(entry, (S3_SERVICE,))
    return frozenset(out)


def _check_applies(actions: tuple[str, ...], resources: tuple[str, ...]) -> None:
    """S3 refuses a statement none of whose actions applies to any of its resources."""
    kinds = {Scope.OBJECT if "/" in r else Scope.BUCKET for r in resources}
    if not any(ACTIONS[key].scope in kinds for key in _expanded(actions)):
        raise _malformed("Action does not apply to any resource(s) in statement")


def _statement(raw: Any, number: int, bucket: str) -> BucketStatement:
    if not isinstance(raw, dict):
        raise _malformed(_INVALID_JSON)
    for field in raw:
        if field not in _STATEMENT_FIELDS:
            raise _malformed(f"Unknown field {field}")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise _malformed("Statement Sid must be a string")
    if "Effect" not in raw:
        raise _malformed("Missing required field Effect")
    try:
        effect = Effect(raw["Effect"])
    except (ValueError, TypeError):
        raise _malformed(f"Invalid effect: {raw['Effect']}") from None
    principal_raw, not_principal_raw = _exactly_one(raw, "Principal")
    action_raw, not_action_raw = _exactly_one(raw, "Action")
    resource_raw, not_resource_raw = _exactly_one(raw, "Resource")
    principal = _principals(principal_raw) if principal_raw is not None else None
    not_principal = _principals(not_principal_raw) if not_principal_raw is not None else None
    actions = _actions(action_raw) if action_raw is not None else None
    not_actions = _actions(not_action_raw) if not_action_raw is not None else None
    resources = _resources(resource_raw, bucket) if resource_raw is not None else None
    not_resources = _resources(not_resource_raw, bucket) if not_resource_raw is not None else None
    if actions is not None and resources is not None:
        _check_applies(actions, resources)
    condition = EMPTY
    if "Condition" in raw:
        try:
            condition = parse_condition_block(raw["Condition"])
        except ConditionError as exc:
            raise _malformed(str(exc)) from None
    return BucketStatement(
        number=number,
        sid=sid or None,
        effect=effect,
        principal=principal,
        not_principal=not_principal,
        actions=actions,
        not_actions=not_actions,
        resources=resources,
        not_resources=not_resources,
        condition=condition,
        canonical=json.dumps(raw, sort_keys=True, separators=(",", ":")),
    )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON objects with a repeated key are ambiguous (which one wins?), so they are refused."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _malformed(f"Duplicate field {key}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise _malformed(_INVALID_JSON)


def parse_bucket_policy(text: str | bytes, bucket: str) -> BucketPolicy:
    """Validate a bucket policy document for `bucket`; raises MalformedPolicy with S3's reason."""
    raw_bytes = text.encode() if isinstance(text, str) else bytes(text)
    if len(raw_bytes) > MAX_POLICY_BYTES:
        raise _malformed(f"Policy exceeds the maximum allowed document size of {MAX_POLICY_BYTES} bytes")
    try:
        decoded = raw_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed(_INVALID_JSON) from None
    if not decoded.lstrip().startswith("{"):
        raise _malformed(_INVALID_JSON)
    try:
        doc = json.loads(decoded, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (json.JSONDecodeError, RecursionError):
        raise _malformed(_INVALID_JSON) from None
    for field in doc:
        if field not in _TOP_FIELDS:
            raise _malformed(f"Unknown field {field}")
    version = doc.get("Version", DEFAULT_VERSION)
    if version not in BUCKET_POLICY_VERSIONS:
        raise _malformed("The policy must contain a valid version string")
    policy_id = doc.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise _malformed("Policy Id must be a string")
    raw_statements = doc.get("Statement")
    if isinstance(raw_statements, dict):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list) or not raw_statements:
        raise _malformed("Missing required field Statement")
    statements = tuple(_statement(raw, i + 1, bucket) for i, raw in enumerate(raw_statements))
    sids = [s.sid for s in statements if s.sid]
    if len(sids) != len(set(sids)):
        raise _malformed("Statement IDs (SID) in a single policy must be unique")
    return BucketPolicy(bucket=bucket, version=version, id=policy_id, statements=statements, text=decoded)


# --- compiled form -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledBucketStatement:
    source: BucketStatement
    effect: Effect
    principals: PrincipalMatcher
    principals_negated: bool
    actions: frozenset[str]  # canonical keys
    actions_negated: bool
    resources: GlobSet
    resources_negated: bool
    condition: ConditionBlock

    @property
    def order(self) -> tuple[str, str]:
        return (self.source.sid or "", self.source.canonical)

    def applies(self, action: str, resource: str, who: Identity, lookup: Lookup) -> bool:
        """Does this statement cover the request? Cheap tests first, conditions last."""
        if (action in self.actions) == self.actions_negated:
            return False
        if self.resources.matches(resource) == self.resources_negated:
            return False
        if self.principals.matches(who) == self.principals_negated:
            return False
        return not self.condition or self.condition.evaluate(lookup)


@dataclass(frozen=True, slots=True)
class CompiledBucketPolicy:
    """What step 2 of the evaluation consults for one bucket."""

    bucket: str
    statements: tuple[CompiledBucketStatement, ...]  # sorted by `order`
    public: bool = False  # some statement opens the bucket to anyone (`is_public_statement`)

    def first_match(
        self, effect: Effect, action: str, resource: str, who: Identity, lookup: Lookup
    ) -> CompiledBucketStatement | None:
        for stmt in self.statements:
            if stmt.effect is effect and stmt.applies(action, resource, who, lookup):
                return stmt
        return None


def compile_bucket_policy(policy: BucketPolicy) -> CompiledBucketPolicy:
    """Compile for `engine.evaluate`; cache per bucket and rebuild when the policy changes."""
    compiled: list[CompiledBucketStatement] = []
    for s in policy.statements:
        principals = s.principal if s.principal is not None else s.not_principal
        actions = s.actions if s.actions is not None else s.not_actions
        resources = s.resources if s.resources is not None else s.not_resources
        assert principals is not None and actions is not None and resources is not None
        compiled.append(
            CompiledBucketStatement(
                source=s,
                effect=s.effect,
                principals=PrincipalMatcher(list(principals)),
                principals_negated=s.principal is None,
                actions=_expanded(actions),
                actions_negated=s.actions is None,
                resources=GlobSet(resources),
                resources_negated=s.resources is None,
                condition=s.condition,
            )
        )
    compiled.sort(key=lambda c: c.order)
    public = any(is_public_statement(c) for c in compiled)
    return CompiledBucketPolicy(bucket=policy.bucket, statements=tuple(compiled), public=public)


# --- "public", as Block Public Access defines it -------------------------------------------
# Condition keys that, held to fixed values, pin a statement to known callers: AWS's list,
# with CoreWeave's cw:PrincipalOrgID beside aws:PrincipalOrgID.
_PINNING_KEYS = frozenset(
    {
        "cw:principalorgid",
        "aws:principalorgid",
        "aws:principalaccount",
        "aws:principalarn",
        "aws:sourceip",
        "aws:sourcearn",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourceowner",
        "aws:sourceaccount",
        "aws:userid",
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
    }
)
# AWS's "bad actions": those that expose a bucket's data or configuration to reads or writes.
_EXPOSING = tuple(
    compile_glob(p)
    for p in ("s3:get*", "s3:list*", "s3:abortmultipartupload", "s3:delete*", "s3:put*", "s3:restoreobject")
)
_S3_KEYS = frozenset(key for key, spec in ACTIONS.items() if spec.service == S3_SERVICE)


def is_public_statement(stmt: CompiledBucketStatement) -> bool:
    """An Allow that names everyone (`*`, or any NotPrincipal), grants an exposing action
    (`s3:Get*`, `s3:List*`, `s3:Put*`, `s3:Delete*`, ...) and has no condition pinning it to
    fixed organizations, principals, source addresses or ARNs (AWS's "meaning of public").
    Named principals, even of other organizations, are not public."""
    if stmt.effect is not Effect.ALLOW:
        return False
    if not stmt.principals_negated and not stmt.principals.everyone:
        return False
    granted = _S3_KEYS - stmt.actions if stmt.actions_negated else stmt.actions
    if not any(test(action) for action in granted for test in _EXPOSING):
        return False
    return not any(c.lookup_key in _PINNING_KEYS and c.pins() for c in stmt.condition.conditions)
