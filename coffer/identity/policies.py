"""Organization access policies in the store, and the compiled forms the one door evaluates.

`OrgPolicies` keeps CoreWeave's `CWObjectPolicy` documents per organization
(ListAccessPolicies, EnsureAccessPolicy, DeleteAccessPolicy) and hands the authorizer
compiled `OrgPolicySet`s and `CompiledBucketPolicy`s from memory.

Caching. Every edit bumps the change counter in its own transaction and wakes every
worker and node (`store.changes`). A cached `OrgPolicySet` is stamped with the change
token read *before* its rows were; when the token moves, the next request re-reads the
organization's `(name, etag)` pairs and recompiles only if they differ, so an edit is in
force from the very next request while unrelated changes (a key minted, a bucket
created) cost one small query, not a recompilation. Compiled bucket policies are keyed
by the policy text the (already invalidated) bucket cache returns, so a new text is
compiled on first use and an old one is never served for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from coffer import metrics
from coffer.audit import Actor, AuditSink
from coffer.errors import NotFound, ResourceExhausted
from coffer.identity.models import utcnow
from coffer.policy import (
    CompiledBucketPolicy,
    MalformedPolicy,
    OrgPolicy,
    OrgPolicySet,
    PolicyError,
    compile_bucket_policy,
    compile_org_policies,
    parse_bucket_policy,
    parse_org_policy,
)
from coffer.policy.org import POLICY_NAME, Effect, OrgStatement
from coffer.store.changes import ChangeWatcher
from coffer.store.db import Database
from coffer.store.schema import org_policies, organizations

log = logging.getLogger("coffer.policy")
_ORG_CACHE = metrics.cache("org_policies")
_BUCKET_CACHE = metrics.cache("bucket_policies")

MAX_POLICIES_PER_ORG = 200
_CACHE_MAX = 10_000
EMPTY = OrgPolicySet(())
# What a stored document that no longer parses (say, after an action was renamed) turns
# into: a Deny of everything, so a broken Deny can never silently open access. Object
# Storage Admin keeps the control plane (rule 1) and can replace or delete the policy.
_BROKEN_STATEMENT = "stored-policy-is-invalid"


def canonical_json(policy: OrgPolicy) -> str:
    return json.dumps(policy.to_dict(), separators=(",", ":"), ensure_ascii=False)


def etag_of(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def _deny_everything(name: str) -> OrgPolicy:
    statement = OrgStatement(_BROKEN_STATEMENT, Effect.DENY, ("*",), ("*",), ("*",))
    return OrgPolicy(name=name, statements=(statement,))


def _action_of(actor: Actor) -> dict[str, str]:
    """The `action` field of a policy edit made through the API (bootstrap's has none)."""
    return {"action": actor.action} if actor.action else {}


@dataclass(frozen=True)
class _Entry:
    token: tuple[int, int]
    fingerprint: tuple[tuple[str, str], ...]
    compiled: OrgPolicySet


class OrgPolicies:
    """One organization's access policies: stored, listed, and compiled for the authorizer."""

    def __init__(
        self,
        db: Database,
        changes: ChangeWatcher,
        *,
        audit: AuditSink,
        max_policies: int = MAX_POLICIES_PER_ORG,
    ) -> None:
        self.db = db
        self.changes = changes
        self.audit = audit
        self.max_policies = max_policies
        self._entries: dict[str, _Entry] = {}
        self._buckets: dict[str, tuple[str, CompiledBucketPolicy]] = {}
        self._lock = threading.Lock()

    # --- the control plane ---------------------------------------------------------------
    def list_policies(self, org_id: str) -> list[dict[str, Any]]:
        """The organization's policies as stored (validated when written), by name."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(org_policies.c.document)
                .where(org_policies.c.org_id == org_id)
                .order_by(org_policies.c.name)
            ).scalars()
            return [json.loads(doc) for doc in rows]

    def ensure(self, org_id: str, policy: OrgPolicy, *, actor: Actor | None = None) -> bool:
        """Create or replace the policy named `policy.name`; True if it was created."""
        document = canonical_json(policy)
        now = utcnow()
        with self.db.write() as conn:
            # Serialise policy edits of one organization (PostgreSQL; SQLite writers are
            # serial anyway), so the per-organization limit cannot be raced past.
            found = conn.execute(
                sa.select(organizations.c.id).where(organizations.c.id == org_id).with_for_update()
            ).first()
            if found is None:
                raise NotFound.resource("organization", org_id)
            key = (org_policies.c.org_id == org_id) & (org_policies.c.name == policy.name)
            exists = conn.execute(sa.select(org_policies.c.name).where(key)).first() is not None
            if exists:
                conn.execute(
                    org_policies.update()
                    .where(key)
                    .values(document=document, etag=etag_of(document), updated_at=now)
                )
            else:
                count = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(org_policies)
                    .where(org_policies.c.org_id == org_id)
                ).scalar_one()
                if count >= self.max_policies:
                    raise ResourceExhausted(
                        f"the organization already has {count} access policies, the most it may have "
                        f"({self.max_policies}); add statements to an existing policy or delete one"
                    )
                conn.execute(
                    org_policies.insert().values(
                        org_id=org_id,
                        name=policy.name,
                        document=document,
                        etag=etag_of(document),
                        created_at=now,
                        updated_at=now,
                    )
                )
            self.db.bump_changes(conn, "policies")
        self.changes.changed()
        if actor is not None:
            self.audit(
                "access_policy_ensured",
                **_action_of(actor),
                policy=policy.name,
                statements=len(policy.statements),
                created=not exists,
                actor=actor.name,
                org_id=org_id,
            )
        return not exists

    def delete(self, org_id: str, name: str, *, actor: Actor | None = None) -> None:
        """Delete a policy by name; NOT_FOUND if the organization has none by that name."""
        if not POLICY_NAME.fullmatch(name):  # could never have been stored: no query needed
            raise NotFound.resource("access policy", name[:128].encode("unicode_escape").decode("ascii"))
        with self.db.write() as conn:
            deleted = conn.execute(
                org_policies.delete().where((org_policies.c.org_id == org_id) & (org_policies.c.name == name))
            ).rowcount
            if not deleted:
                raise NotFound.resource("access policy", name)
            self.db.bump_changes(conn, "policies")
        self.changes.changed()
        if actor is not None:
            self.audit(
                "access_policy_deleted", **_action_of(actor), policy=name, actor=actor.name, org_id=org_id
            )

    def names_by_org(self) -> dict[str, list[str]]:
        """Every organization's policy names (for the start-up check and the CLI)."""
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(org_policies.c.org_id, org_policies.c.name).order_by(org_policies.c.name)
            ).all()
        out: dict[str, list[str]] = {}
        for org_id, name in rows:
            out.setdefault(org_id, []).append(name)
        return out

    # --- the hot path --------------------------------------------------------------------
    def compiled(self, org_id: str | None) -> OrgPolicySet:
        """The organization's compiled policies, current as of the last change token."""
        if org_id is None:
            return EMPTY
        token = self.changes.token()
        entry = self._entries.get(org_id)
        if entry is not None and entry.token == token:
            _ORG_CACHE.hit.inc()
            return entry.compiled
        _ORG_CACHE.miss.inc()
        # Stamp what is read with the token read before it: if anything changes meanwhile,
        # the token moves on and the next request looks again.
        mine = org_policies.c.org_id == org_id
        with self.db.read() as conn:
            fingerprint = tuple(
                (r.name, r.etag)
                for r in conn.execute(
                    sa.select(org_policies.c.name, org_policies.c.etag)
                    .where(mine)
                    .order_by(org_policies.c.name)
                )
            )
            if entry is not None and entry.fingerprint == fingerprint:
                compiled = entry.compiled
            else:  # read in the same transaction, so documents and fingerprint agree
                rows = conn.execute(
                    sa.select(org_policies.c.name, org_policies.c.etag, org_policies.c.document)
                    .where(mine)
                    .order_by(org_policies.c.name)
                ).all()
                fingerprint = tuple((r.name, r.etag) for r in rows)
                compiled = compile_org_policies(self._parse(org_id, r.name, r.document) for r in rows)
        with self._lock:
            if len(self._entries) >= _CACHE_MAX:
                self._entries = {}
            self._entries[org_id] = _Entry(token, fingerprint, compiled)
        return compiled

    @staticmethod
    def _parse(org_id: str, name: str, document: str) -> OrgPolicy:
        try:
            return parse_org_policy(json.loads(document))
        except (PolicyError, ValueError):
            log.error(
                "stored access policy %r of organization %s no longer validates; it denies everything "
                "until it is replaced or deleted",
                name,
                org_id,
                extra={"org_id": org_id, "policy": name},
            )
            return _deny_everything(name)

    def compiled_bucket_policy(self, bucket: str, text: str | None) -> CompiledBucketPolicy | None:
        """The compiled form of a bucket's stored policy text (None: the bucket has none)."""
        if not text:
            return None
        hit = self._buckets.get(bucket)
        if hit is not None and hit[0] == text:
            _BUCKET_CACHE.hit.inc()
            return hit[1]
        _BUCKET_CACHE.miss.inc()
        try:
            compiled = compile_bucket_policy(parse_bucket_policy(text, bucket))
        except MalformedPolicy as exc:
            # Stored before PutBucketPolicy validated: fail closed. No statement matches, so
            # only the owner's organization policies (PutBucketPolicy is global) can fix it.
            log.error(
                "stored policy of bucket %s does not validate (%s); it denies every request it decides",
                bucket,
                exc.reason,
                extra={"bucket": bucket},
            )
            compiled = CompiledBucketPolicy(bucket=bucket, statements=())
        with self._lock:
            if len(self._buckets) >= _CACHE_MAX:
                self._buckets = {}
            self._buckets[bucket] = (text, compiled)
        return compiled
