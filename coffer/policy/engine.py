"""The decision: may this caller perform this action on this resource?

`evaluate()` implements CoreWeave's algorithm (reference §3.4, docs/policies.md):

0. Object Storage Admin may perform every `cwobject:` action, whatever the policies
   say; the role grants nothing on S3.
1. Organization policies (of the caller's organization): a matching Deny rejects; no
   policy at all, or no matching Allow, rejects (default deny).
2. Global actions (`s3:ListAllMyBuckets`, `s3:PutBucketPolicy`, every `cwobject:`)
   stop here: allowed. Otherwise the bucket policy decides: none → allow; a matching
   Deny → reject; a matching Allow → allow; nothing matches → reject. Where ACLs are on
   (`acl`, coffer/policy/acl.py), an ACL grant is one more resource-level Allow at this
   step: it admits a caller the bucket policy does not, never one it denies.
3. A scoped key (coffer/policy/scope.py): what the owner may do, the key's scope narrows:
   a matching scope Deny rejects; no matching scope Allow rejects (`intersect`).

Callers that do not belong to the bucket's organization (another organization, or
anonymous) need an explicit Allow in step 2, from the bucket policy or an ACL grant: "no
bucket policy" grants them nothing. With Block Public Access's RestrictPublicBuckets on and
a public bucket policy, nothing in step 2 admits them.

The function is pure and takes compiled policies, so the one authorization door can
cache `OrgPolicySet`s and `CompiledBucketPolicy`s and call it on every request.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from coffer.policy import actions as action_table
from coffer.policy.acl import AclCheck
from coffer.policy.actions import ActionSpec, Scope
from coffer.policy.bucket import CompiledBucketPolicy
from coffer.policy.conditions import normalize_key
from coffer.policy.org import EVERYONE, Effect, OrgPolicy, OrgPolicySet
from coffer.policy.principals import Identity
from coffer.policy.resources import GLOBAL_RESOURCE
from coffer.policy.scope import KeyScope


def utcnow() -> datetime:
    return datetime.now(UTC)


# Condition keys the engine fills from the context itself; `values` may not override them.
_DERIVED_KEYS = frozenset(
    {
        "cw:principalorgid",
        "aws:principalaccount",
        "aws:sourceip",
        "aws:securetransport",
        "aws:currenttime",
        "aws:epochtime",
        "aws:principalarn",
        "aws:username",
        "aws:userid",
    }
)


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Everything about the caller and the request that a policy may look at.

    `principal` is the caller's principal name (`coreweave/<UID>`, `role/...`,
    `saml/...`), None for an anonymous request. `aliases` are other names it answers to
    (its role `role/<name>`, its `saml/<name>`). `org_id` is the caller's organization;
    `resource_org_id` the organization that owns the target bucket (None: the same, or
    no bucket). `values` carries request-specific condition keys such as `s3:prefix`,
    `s3:max-keys` or `s3:ExistingObjectTag/<key>` (a sequence for multi-valued keys).
    """

    principal: str | None = None
    org_id: str | None = None
    aliases: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    storage_admin: bool = False
    source_ip: str | None = None
    secure: bool | None = None
    now: datetime = field(default_factory=utcnow)
    username: str | None = None
    resource_org_id: str | None = None
    values: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    _names: frozenset[str] = field(init=False, repr=False, compare=False)
    _values: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = frozenset() if self.principal is None else frozenset({self.principal, *self.aliases})
        object.__setattr__(self, "_names", names)
        normalized: dict[str, tuple[str, ...]] = {}
        for key, value in self.values.items():
            norm = normalize_key(key)
            if norm in _DERIVED_KEYS or self._is_groups_key(norm):
                raise ValueError(f"condition key {key!r} comes from the context, not from values")
            normalized[norm] = (value,) if isinstance(value, str) else tuple(value)
        object.__setattr__(self, "_values", normalized)

    @property
    def anonymous(self) -> bool:
        return self.principal is None

    @property
    def names(self) -> frozenset[str]:
        """The principal name and its aliases (empty when anonymous)."""
        return self._names

    @property
    def foreign(self) -> bool:
        """True when the caller is not a principal of the organization owning the resource."""
        if self.principal is None:
            return True
        return self.resource_org_id is not None and self.resource_org_id != self.org_id

    @staticmethod
    def _is_groups_key(norm: str) -> bool:
        return norm.startswith("iam:") and norm.endswith(":groups")

    def bucket_identity(self) -> Identity:
        """The caller as bucket-policy principals see it: short forms name the bucket's org only."""
        return Identity(
            names=self._names,
            org_id=None if self.principal is None else self.org_id,
            same_org=not self.foreign,
            anonymous=self.anonymous,
        )

    def condition_value(self, key: str) -> tuple[str, ...] | None:
        """The request's value for a normalized condition key; None when missing."""
        authenticated = self.principal is not None
        if key in ("cw:principalorgid", "aws:principalaccount"):
            return (self.org_id,) if authenticated and self.org_id else None
        if self._is_groups_key(key):
            org = key[len("iam:") : -len(":groups")]
            if authenticated and self.org_id and org == self.org_id.lower() and self.groups:
                return tuple(self.groups)
            return None
        if key == "aws:sourceip":
            return (self.source_ip,) if self.source_ip else None
        if key == "aws:securetransport":
            return None if self.secure is None else ("true" if self.secure else "false",)
        if key == "aws:currenttime":
            return (self.now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),)
        if key == "aws:epochtime":
            return (str(int(self.now.timestamp())),)
        if key == "aws:principalarn":
            if not authenticated or not self.org_id:
                return None
            return (f"arn:aws:iam::{self.org_id}:{self.principal}",)
        if key == "aws:username":
            return (self.username,) if authenticated and self.username else None
        if key == "aws:userid":
            if self.principal is None:
                return None
            return (self.principal.removeprefix("coreweave/"),)
        return self._values.get(key)


class Rule(enum.Enum):
    """Which rule of the algorithm decided; one per row of the decision table."""

    UNKNOWN_ACTION = "unknown-action"
    ADMIN_CONTROL_PLANE = "admin-control-plane"
    ANONYMOUS_GLOBAL = "anonymous-global"
    CROSS_ORG_GLOBAL = "cross-org-global"
    NO_ORG_POLICY = "no-org-policy"
    ORG_DENY = "org-deny"
    ORG_IMPLICIT_DENY = "org-implicit-deny"
    ORG_ALLOW_GLOBAL = "org-allow-global"
    NO_BUCKET_POLICY = "no-bucket-policy"
    FOREIGN_NO_BUCKET_POLICY = "foreign-no-bucket-policy"
    BUCKET_DENY = "bucket-deny"
    BUCKET_ALLOW = "bucket-allow"
    BUCKET_IMPLICIT_DENY = "bucket-implicit-deny"
    ACL_ALLOW = "acl-allow"
    RESTRICTED_PUBLIC_BUCKET = "restricted-public-bucket"
    KEY_SCOPE_DENY = "key-scope-deny"
    KEY_SCOPE_NO_ALLOW = "key-scope-no-allow"


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer and why, for the audit log (never shown to the caller)."""

    allowed: bool
    rule: Rule
    reason: str
    policy: str | None = None  # the deciding org policy, "bucket-policy:<bucket>" or "acl:<bucket>"
    statement: str | None = None  # its statement name or Sid (None for an unnamed one)


def _who(ctx: RequestContext) -> str:
    if ctx.principal is None:
        return "anonymous"
    return f"{ctx.principal} (org {ctx.org_id})" if ctx.org_id else ctx.principal


def evaluate(
    action: str,
    resource: str,
    ctx: RequestContext,
    org_policies: OrgPolicySet,
    bucket_policy: CompiledBucketPolicy | None = None,
    *,
    acl: AclCheck | None = None,
    restrict_public: bool = False,
    scope: KeyScope | None = None,
) -> Decision:
    """Decide one request: the owner's decision, narrowed by the key's `scope` if it has one.

    `resource` is `bucket`, `bucket/key` or `*` (`resources.request_resource`); actions
    on a control-plane or account scope are always evaluated against `*`.
    `org_policies` are the caller's organization's (for an anonymous caller, the
    bucket owner's); `bucket_policy` is the target bucket's, if it has one. `acl` is the
    target's ACL grants when its bucket has ACLs on; `restrict_public` is the bucket's
    RestrictPublicBuckets. See the module docstring and docs/policies.md.
    """
    spec = action_table.spec(action)
    if spec is None:
        return Decision(False, Rule.UNKNOWN_ACTION, f"denied: {action!r} is not a known action")
    if spec.scope in (Scope.CONTROL, Scope.ACCOUNT):
        resource = GLOBAL_RESOURCE
    owner = _owner_decision(spec, resource, ctx, org_policies, bucket_policy, acl, restrict_public)
    if scope is None or not owner.allowed:
        return owner
    return _intersect(owner, scope, spec.key, action, resource, ctx)


def _intersect(
    owner: Decision, scope: KeyScope, action_key: str, action: str, resource: str, ctx: RequestContext
) -> Decision:
    """A scoped key may do what both its owner and its scope allow: a Deny in either wins,
    and no Allow in the scope refuses. The owner's refusal is reported as it is (the caller
    passes only an allowed `owner`), so the `key-scope-*` rules name exactly the requests
    the scope took away."""
    verdict = scope.decide(action_key, resource, ctx.condition_value)
    if verdict.allowed:  # the owner's decision stands, as it was (allows are not audited)
        return owner
    label = "key-scope"
    if verdict.statement is not None:
        by = f"the key's scope, statement {verdict.statement!r}"
        request = f"{action} on {resource} for {_who(ctx)}, which its owner may do"
        return _denied_by(Rule.KEY_SCOPE_DENY, by, request, label, verdict.statement)
    return Decision(
        False,
        Rule.KEY_SCOPE_NO_ALLOW,
        f"denied: no statement of the key's scope allows {action} on {resource} for {_who(ctx)}, "
        "which its owner may do",
        label,
    )


def _owner_decision(
    spec: ActionSpec,
    resource: str,
    ctx: RequestContext,
    org_policies: OrgPolicySet,
    bucket_policy: CompiledBucketPolicy | None,
    acl: AclCheck | None,
    restrict_public: bool,
) -> Decision:
    """The owner's decision for one known action, `resource` already `*` for a global scope."""
    name = spec.name
    # Account-scope actions name no bucket, so like the global ones no bucket policy applies.
    org_only = spec.is_global or spec.scope is Scope.ACCOUNT
    who = _who(ctx)

    if spec.scope is Scope.CONTROL and ctx.storage_admin and not ctx.anonymous:
        return Decision(
            True,
            Rule.ADMIN_CONTROL_PLANE,
            f"allowed: {who} holds Object Storage Admin, which grants every cwobject: action",
        )
    if org_only and ctx.anonymous:
        return Decision(False, Rule.ANONYMOUS_GLOBAL, f"denied: anonymous callers may not perform {name}")
    if org_only and ctx.foreign:
        return Decision(
            False,
            Rule.CROSS_ORG_GLOBAL,
            f"denied: {name} is decided by organization policies only, and {resource} belongs to "
            f"organization {ctx.resource_org_id}, not to {who}",
        )

    # Step 1: organization policies.
    if not org_policies:
        return Decision(
            False,
            Rule.NO_ORG_POLICY,
            f"denied: no statement allowed it; the organization has no access policy (default deny) "
            f"for {who}",
        )
    keys: Iterable[str] = (EVERYONE,) if ctx.anonymous else (EVERYONE, *ctx.names)
    deny = org_policies.first_match(Effect.DENY, spec.key, resource, keys)
    if deny is not None:
        by = f"organization policy {deny.policy!r} statement {deny.name!r}"
        return _denied_by(Rule.ORG_DENY, by, f"{name} on {resource} for {who}", deny.policy, deny.name)
    allow = org_policies.first_match(Effect.ALLOW, spec.key, resource, keys)
    if allow is None:
        return Decision(
            False,
            Rule.ORG_IMPLICIT_DENY,
            f"denied: no statement allowed it; no organization policy allows {name} on {resource} for {who}",
        )
    granted = f"organization policy {allow.policy!r} statement {allow.name!r}"

    if org_only:
        return Decision(
            True,
            Rule.ORG_ALLOW_GLOBAL,
            f"allowed by {granted}: {name} is global, so bucket policies do not apply",
            allow.policy,
            allow.name,
        )

    # Step 2: the bucket policy.
    bucket = resource.partition("/")[0]
    if resource == GLOBAL_RESOURCE:  # "on every bucket" (an AuthCanI question): no one policy to ask
        if ctx.foreign:
            return Decision(
                False,
                Rule.FOREIGN_NO_BUCKET_POLICY,
                f"denied: no statement allowed it; {who} is not a principal of the organization and "
                "the request names no bucket whose policy could grant access",
            )
        return Decision(
            True,
            Rule.NO_BUCKET_POLICY,
            f"allowed by {granted}; the request names no bucket",
            allow.policy,
            allow.name,
        )
    if bucket_policy is None:
        if ctx.foreign:
            return _acl_grant(acl, spec.key, ctx, granted, bucket) or Decision(
                False,
                Rule.FOREIGN_NO_BUCKET_POLICY,
                f"denied: no statement allowed it; {who} is not a principal of the organization "
                f"owning {bucket}, and {bucket} has no bucket policy to grant access",
            )
        return Decision(
            True,
            Rule.NO_BUCKET_POLICY,
            f"allowed by {granted}; {bucket} has no bucket policy",
            allow.policy,
            allow.name,
        )
    if bucket != bucket_policy.bucket:
        raise ValueError(f"bucket policy of {bucket_policy.bucket!r} passed for resource {resource!r}")
    label = f"bucket-policy:{bucket_policy.bucket}"
    identity = ctx.bucket_identity()
    lookup = ctx.condition_value
    bucket_deny = bucket_policy.first_match(Effect.DENY, spec.key, resource, identity, lookup)
    if bucket_deny is not None:
        by = f"the bucket policy of {bucket_policy.bucket}, {bucket_deny.source.label}"
        return _denied_by(
            Rule.BUCKET_DENY, by, f"{name} on {resource} for {who}", label, bucket_deny.source.sid
        )
    if restrict_public and bucket_policy.public and ctx.foreign:
        return Decision(
            False,
            Rule.RESTRICTED_PUBLIC_BUCKET,
            f"denied: the bucket policy of {bucket_policy.bucket} is public and RestrictPublicBuckets is on, "
            f"so only principals of organization {ctx.resource_org_id} have access; {who} is not one",
            label,
        )
    bucket_allow = bucket_policy.first_match(Effect.ALLOW, spec.key, resource, identity, lookup)
    if bucket_allow is not None:
        return Decision(
            True,
            Rule.BUCKET_ALLOW,
            f"allowed by {granted} and the bucket policy of {bucket_policy.bucket}, "
            f"{bucket_allow.source.label}",
            label,
            bucket_allow.source.sid,
        )
    return _acl_grant(acl, spec.key, ctx, granted, bucket) or Decision(
        False,
        Rule.BUCKET_IMPLICIT_DENY,
        f"denied: no statement allowed it; the bucket policy of {bucket_policy.bucket} has no statement "
        f"allowing {name} on {resource} for {who}",
        label,
    )


def _denied_by(rule: Rule, by: str, request: str, policy: str, statement: str | None) -> Decision:
    """An explicit Deny's decision: every one names what denied which request the same way."""
    return Decision(False, rule, f"denied by {by}: {request}", policy, statement)


def _acl_grant(
    acl: AclCheck | None, action_key: str, ctx: RequestContext, granted: str, bucket: str
) -> Decision | None:
    """Step 2's ACL grant, when the bucket has ACLs on and one admits the caller (the
    decision names `acl:<bucket>` as its policy)."""
    if acl is None:
        return None
    grant = acl.allows(action_key, ctx.bucket_identity())
    if grant is None:
        return None
    return Decision(True, Rule.ACL_ALLOW, f"allowed by {granted} and {grant}", f"acl:{bucket}")


def org_policy_set(policies: Iterable[OrgPolicy] | OrgPolicySet) -> OrgPolicySet:
    """Accept either form where convenient (tests, the CLI); the hot path passes a set."""
    return policies if isinstance(policies, OrgPolicySet) else OrgPolicySet(policies)
