"""Would saving a bucket policy lock its author out? (docs/policies.md, "The lock-out trap")

CoreWeave's rule: once a bucket has a policy, only what it allows is allowed, even for the
principals of the organization that owns the bucket (step 2 of `coffer.policy.engine`). A
policy that grants a team read access and forgets its author takes the author's own reads
away the moment it is saved. The console and `coffer bucket policy set` ask this module
first and warn; the S3 call itself stays as CoreWeave defines it.

`would_lock_out` puts the same questions to the same decision the S3 face makes (the
caller's `decide`, in the server `Authorizer.decide_s3`), once under the proposed policy and
once under the bucket's current one: may the author still list the bucket, read its objects,
and replace its policy? An action is *locked out* when the proposed policy is what refuses
it (a Deny in it, nothing in it allowing, or RestrictPublicBuckets), not when the
organization's policies refuse it whatever the bucket policy says.

`s3:PutBucketPolicy` is global (organization policies alone decide it), so a bucket policy
never takes it away: the author who saves a locking policy can always replace it, which is
why reads are what the warning is mostly about. It is asked all the same, so the answer
follows the evaluator rather than a second copy of its rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from coffer.policy.bucket import parse_bucket_policy
from coffer.policy.engine import Decision, Rule

# An object key no policy is likely to name by its own prefix: GetObject is asked about "an
# object of the bucket", so a policy that lets its author read only `public/*` still warns.
PROBE_KEY = "coffer-lockout-check/any-object"
# The decisions that are the bucket policy's doing (step 2 of the evaluation).
POLICY_RULES = frozenset({Rule.BUCKET_DENY, Rule.BUCKET_IMPLICIT_DENY, Rule.RESTRICTED_PUBLIC_BUCKET})


@dataclass(frozen=True)
class Probe:
    """One S3 request the author would make, in the shape the authorizer takes
    (`coffer.authz.S3Operation`)."""

    name: str
    action: str
    resource: str
    bucket: str
    key: str | None = None
    version_id: str | None = None
    query: Mapping[str, str] = field(default_factory=dict)


def probes(bucket: str) -> tuple[Probe, ...]:
    """List the bucket, read one of its objects, replace its policy."""
    return (
        Probe("ListObjectsV2", "s3:ListBucket", bucket, bucket),
        Probe("GetObject", "s3:GetObject", f"{bucket}/{PROBE_KEY}", bucket, PROBE_KEY),
        Probe("PutBucketPolicy", "s3:PutBucketPolicy", bucket, bucket),
    )


# (the request, the bucket policy text to decide it under; None: no policy) -> the decision
Decide = Callable[[Probe, str | None], Decision]


@dataclass(frozen=True)
class Check:
    """One action: the decision today and the one the proposed policy would make."""

    action: str
    resource: str
    now: Decision
    after: Decision

    @property
    def locked_out(self) -> bool:
        """Refused under the proposed policy, and by that policy."""
        return not self.after.allowed and self.after.rule in POLICY_RULES


@dataclass(frozen=True)
class Lockout:
    bucket: str
    checks: tuple[Check, ...]

    @property
    def locked_out(self) -> tuple[Check, ...]:
        """The actions the proposed policy would refuse its author (empty: it is safe)."""
        return tuple(c for c in self.checks if c.locked_out)


def would_lock_out(decide: Decide, bucket: str, proposed: str, current: str | None) -> Lockout:
    """What the policy text `proposed` would leave its author on `bucket`, whose policy is
    `current` today (None: it has none). `decide` is the authorizer's decision for the
    author. A policy PutBucketPolicy would refuse raises MalformedPolicy, as it does there."""
    parse_bucket_policy(proposed, bucket)
    asked = probes(bucket)
    # Every proposed decision first, then every current one: the authorizer caches one
    # compiled policy per bucket, and it ends on the one in force.
    after = [decide(p, proposed) for p in asked]
    now = [decide(p, current) for p in asked]
    return Lockout(
        bucket, tuple(Check(p.action, p.resource, n, a) for p, n, a in zip(asked, now, after, strict=True))
    )
