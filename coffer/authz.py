"""The one door for authorization: every S3 request and every control-plane call.

A face resolves its request to one named operation with its action and resource, then
asks the `Authorizer` once. The authorizer builds the policy engine's `RequestContext`
(who is calling, from where, what the request says), fetches the compiled organization
policies and bucket policy from memory (`identity.policies`), and lets
`coffer.policy.evaluate` decide (reference §3.4, docs/policies.md). A denial is
audited with the engine's reason, which names the deciding policy and statement (or
says that none allowed it); the caller only ever sees a generic refusal.

Where a bucket has ACLs on (Object Ownership other than BucketOwnerEnforced; never in
strict CoreWeave mode), its ACL and the object's take part in step 2 as one more Allow
(`coffer.policy.acl.AclCheck`), and its Block Public Access configuration says whether
public grants count and whether a public bucket policy admits other organizations.

Whose organization policies decide: the caller's; for an anonymous S3 request, those
of the organization owning the bucket. `aws:PrincipalArn` is
`arn:aws:iam::<ORG-ID>:<principal>` (for example
`arn:aws:iam::abc123:coreweave/ueqXfgRCYGqptEXAMPLE1`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from coffer import metrics
from coffer.errors import PermissionDenied, S3Error
from coffer.identity.models import AccessKey, Caller
from coffer.identity.policies import OrgPolicies
from coffer.logs import audit
from coffer.policy import Decision, RequestContext, Scope, evaluate
from coffer.policy import actions as action_table
from coffer.policy.acl import Acl, AclCheck, bucket_access, plain, private
from coffer.policy.bucket import CompiledBucketPolicy
from coffer.storage.models import Bucket, ObjectVersion

# Operations whose query parameters become the s3:prefix / s3:delimiter / s3:max-keys keys.
LISTING_OPERATIONS = frozenset({"ListObjects", "ListObjectsV2", "ListObjectVersions", "ListMultipartUploads"})
_LISTING_KEYS = (("prefix", "s3:prefix"), ("delimiter", "s3:delimiter"), ("max-keys", "s3:max-keys"))
# Actions for which AWS defines s3:ExistingObjectTag/<key>: they act on an object that exists.
TAGGED_OBJECT_ACTIONS = frozenset(
    {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:GetObjectAcl",
        "s3:GetObjectVersionAcl",
        "s3:PutObjectAcl",
        "s3:PutObjectVersionAcl",
        "s3:GetObjectTagging",
        "s3:GetObjectVersionTagging",
        "s3:PutObjectTagging",
        "s3:PutObjectVersionTagging",
        "s3:DeleteObjectTagging",
        "s3:DeleteObjectVersionTagging",
        "s3:GetObjectAttributes",
        "s3:GetObjectVersionAttributes",
    }
)
_EXISTING_TAG = "s3:existingobjecttag/"
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
CONTROL_DENIED = (
    "{principal} is not allowed to perform {action}; an Object Storage Admin can grant it "
    "in an organization access policy"
)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from: `aws:SourceIp` and `aws:SecureTransport`."""

    source_ip: str | None = None
    secure: bool | None = None


UNKNOWN_ORIGIN = Origin()


class S3Operation(Protocol):
    """What the S3 router resolved (coffer.s3.router.Operation); the core never imports the face."""

    @property
    def name(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def resource(self) -> str: ...
    @property
    def bucket(self) -> str | None: ...
    @property
    def key(self) -> str | None: ...
    @property
    def version_id(self) -> str | None: ...
    @property
    def query(self) -> Mapping[str, str]: ...


# (bucket, key, version id) -> the object's tags, or None when it has none or does not exist.
TagLookup = Callable[[str, str, str | None], Mapping[str, str] | None]
BucketLookup = Callable[[str], Bucket | None]
# (bucket, key, version id) -> the object version, or None when it does not exist.
ObjectLookup = Callable[[str, str, str | None], ObjectVersion | None]


def key_aliases(key: AccessKey) -> tuple[str, ...]:
    """Other principal names a key answers to: its roles (`role/<name>`), if it has any.

    A SAML key carries every role its assertion named (multiAttributes `roles`)."""
    roles = [key.role] if key.role else []
    roles += key.multi_attributes.get("roles", [])
    if not roles:
        return ()
    aliases = (r if r.startswith("role/") else f"role/{r}" for r in roles)
    return tuple(dict.fromkeys(a for a in aliases if a != key.principal_name))


def uses_object_tags(policy: CompiledBucketPolicy | None) -> bool:
    """Does any statement of the bucket policy test s3:ExistingObjectTag/<key>?"""
    if policy is None:
        return False
    return any(
        c.lookup_key.startswith(_EXISTING_TAG) for s in policy.statements for c in s.condition.conditions
    )


class Authorizer:
    """Decides every request with one call to the policy engine; see the module docstring."""

    def __init__(
        self,
        policies: OrgPolicies,
        buckets: BucketLookup,
        object_tags: TagLookup | None = None,
        *,
        objects: ObjectLookup | None = None,
        acls: bool = True,
    ) -> None:
        """`objects` reads an object's ACL when a decision needs it; `acls` False (strict
        CoreWeave mode) leaves ACLs and Block Public Access out of every decision."""
        self.policies = policies
        self.buckets = buckets
        self.object_tags = object_tags
        self.objects = objects
        self.acls = acls

    def _acl_check(
        self, bucket: Bucket | None, key: str | None, version_id: str | None
    ) -> tuple[AclCheck | None, bool]:
        """(the ACL grants step 2 may consult, RestrictPublicBuckets) for a request on `bucket`."""
        if bucket is None or not self.acls or plain(bucket.settings):
            return None, False
        access = bucket_access(bucket.settings, bucket.owner_principal)
        restrict = access.pab.restrict_public_buckets
        if not access.acls_enabled:
            return None, restrict
        load = None
        lookup, name, owner = self.objects, bucket.name, bucket.owner_principal
        if key is not None and lookup is not None:

            def load() -> Acl | None:
                found = lookup(name, key, version_id)
                if found is None:
                    return None
                # Written while ACLs were off: private, owned by the bucket owner.
                return Acl.from_json(found.acl) if found.acl else private(owner)

        check = AclCheck(bucket.org_id, access.acl, load, access.pab.ignore_public_acls)
        return check, restrict

    # --- S3 ------------------------------------------------------------------------------
    def decide_s3(
        self,
        key: AccessKey | None,
        operation: S3Operation,
        bucket: Bucket | None,
        origin: Origin = UNKNOWN_ORIGIN,
        *,
        object_tags: Mapping[str, str] | None = None,
    ) -> Decision:
        """The decision for one S3 operation. `object_tags` may be passed by a caller that
        already has the object; otherwise they are looked up only when the bucket policy
        tests s3:ExistingObjectTag/<key>."""
        action = operation.action
        bucket_policy = None
        if bucket is not None:
            bucket_policy = self.policies.compiled_bucket_policy(bucket.name, bucket.policy)
        values: dict[str, str | Sequence[str]] = {}
        if operation.name in LISTING_OPERATIONS:
            for param, condition_key in _LISTING_KEYS:
                if param in operation.query:
                    values[condition_key] = operation.query[param]
        if operation.version_id is not None:
            values["s3:VersionId"] = operation.version_id
        if (
            object_tags is None
            and self.object_tags is not None
            and bucket is not None
            and operation.key is not None
            and action in TAGGED_OBJECT_ACTIONS
            and uses_object_tags(bucket_policy)
        ):
            object_tags = self.object_tags(bucket.name, operation.key, operation.version_id)
        for tag, value in (object_tags or {}).items():
            values[f"s3:ExistingObjectTag/{tag}"] = value
        if key is None:
            ctx = RequestContext(
                source_ip=origin.source_ip,
                secure=origin.secure,
                resource_org_id=bucket.org_id if bucket is not None else None,
                values=values,
            )
            # An anonymous caller is judged by the bucket owner's organization policies.
            org = self.policies.compiled(bucket.org_id if bucket is not None else None)
        else:
            ctx = self._key_context(key, origin, bucket.org_id if bucket is not None else None, values)
            org = self.policies.compiled(key.org_id)
        acl, restrict = self._acl_check(bucket, operation.key, operation.version_id)
        return evaluate(
            action,
            operation.resource,
            ctx,
            org,
            bucket_policy,
            acl=acl,
            restrict_public=restrict,
            scope=key.scope if key is not None else None,
        )

    def authorize_s3(
        self,
        key: AccessKey | None,
        operation: S3Operation,
        bucket: Bucket | None,
        origin: Origin = UNKNOWN_ORIGIN,
        *,
        object_tags: Mapping[str, str] | None = None,
    ) -> None:
        """Allow, or audit the engine's reason and raise S3Error AccessDenied (generic body)."""
        decision = self.decide_s3(key, operation, bucket, origin, object_tags=object_tags)
        metrics.decided("s3", decision.allowed, decision.rule.value)
        if decision.allowed:
            return
        audit(
            "denied",
            plane="s3",
            action=operation.action,
            operation=operation.name,
            resource=operation.resource,
            principal=key.principal_name if key else None,
            access_key_id=key.access_key_id if key else None,
            org_id=key.org_id if key else None,
            bucket_org_id=bucket.org_id if bucket else None,
            source_ip=origin.source_ip,
            rule=decision.rule.value,
            policy=decision.policy,
            statement=decision.statement,
            reason=decision.reason,
        )
        raise S3Error("AccessDenied")

    # --- the control plane ---------------------------------------------------------------
    @staticmethod
    def _caller_context(caller: Caller, origin: Origin, resource_org_id: str | None = None) -> RequestContext:
        user = caller.user
        return RequestContext(
            principal=caller.principal_name,
            org_id=caller.org_id,
            groups=tuple(user.groups),
            storage_admin=user.has_storage_admin,
            source_ip=origin.source_ip,
            secure=origin.secure,
            username=user.name,
            resource_org_id=resource_org_id,
        )

    def decide_control(self, caller: Caller, action: str, origin: Origin = UNKNOWN_ORIGIN) -> Decision:
        ctx = self._caller_context(caller, origin)
        return evaluate(action, "*", ctx, self.policies.compiled(caller.org_id))

    def authorize_control(self, caller: Caller, action: str, origin: Origin = UNKNOWN_ORIGIN) -> None:
        """Allow, or audit the reason and raise PermissionDenied (403) naming only caller and action."""
        decision = self.decide_control(caller, action, origin)
        metrics.decided("control", decision.allowed, decision.rule.value)
        if decision.allowed:
            return
        audit(
            "denied",
            plane="control",
            action=action,
            resource="*",
            principal=caller.principal_name,
            org_id=caller.org_id,
            source_ip=origin.source_ip,
            rule=decision.rule.value,
            policy=decision.policy,
            statement=decision.statement,
            reason=decision.reason,
        )
        raise PermissionDenied(CONTROL_DENIED.format(principal=caller.principal_name, action=action))

    @staticmethod
    def _key_context(
        key: AccessKey,
        origin: Origin,
        resource_org_id: str | None = None,
        values: Mapping[str, str | Sequence[str]] | None = None,
    ) -> RequestContext:
        """The key as policies see it, on S3 requests and AuthCanI questions about a key."""
        return RequestContext(
            principal=key.principal_name,
            org_id=key.org_id,
            aliases=key_aliases(key),
            groups=tuple(key.groups),
            source_ip=origin.source_ip,
            secure=origin.secure,
            resource_org_id=resource_org_id,
            values=values or {},
        )

    def can_i(
        self,
        caller: Caller,
        actions: Sequence[str],
        resources: Sequence[str],
        origin: Origin = UNKNOWN_ORIGIN,
        *,
        key: AccessKey | None = None,
    ) -> bool:
        """AuthCanI: may the caller (or, when `key` is given, that access key) perform every
        action on every resource?

        A resource is `*` or a request resource (`bucket`, `bucket/key`); when it names a
        bucket that exists, that bucket's policy, owner, ACLs (the object's too, for
        `bucket/key`) and Block Public Access take part exactly as they would for the S3
        request. A key is judged as its S3 requests are: as its principal, narrowed by its
        scope. Unknown actions are not allowed (the engine fails closed).
        """

        def subject(resource_org_id: str | None = None) -> RequestContext:
            if key is not None:
                return self._key_context(key, origin, resource_org_id)
            return self._caller_context(caller, origin, resource_org_id)

        scope = key.scope if key is not None else None
        org = self.policies.compiled(key.org_id if key is not None else caller.org_id)
        own = subject()
        for resource in resources:
            bucket = self._bucket_of(resource)
            bucket_policy = None
            ctx = own
            object_key = resource.partition("/")[2] or None
            acl, restrict = self._acl_check(bucket, object_key, None)
            if bucket is not None:
                bucket_policy = self.policies.compiled_bucket_policy(bucket.name, bucket.policy)
                ctx = subject(bucket.org_id)
            for action in actions:
                spec = action_table.spec(action)
                # Control-plane and account actions name no bucket: the resource does not bind them.
                if spec is not None and spec.scope in (Scope.CONTROL, Scope.ACCOUNT):
                    decision = evaluate(action, "*", own, org, scope=scope)
                else:
                    decision = evaluate(
                        action,
                        resource,
                        ctx,
                        org,
                        bucket_policy,
                        acl=acl,
                        restrict_public=restrict,
                        scope=scope,
                    )
                if not decision.allowed:
                    return False
        return True

    def _bucket_of(self, resource: str) -> Bucket | None:
        if resource == "*":
            return None
        name = resource.partition("/")[0]
        if not _BUCKET_NAME.fullmatch(name):
            return None
        return self.buckets(name)
