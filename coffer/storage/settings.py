"""Bucket and organization settings: CoreWeave's management surface (reference §2.3, §6.6).

A bucket's settings (`BucketSettings`: audit logging, archive, capacity cap) live under the
`"coreweave"` key of the bucket row's `settings` JSON column, beside other features' keys,
so every update merges into that one key in a transaction that locks the row; reads come
from the bucket cache (`Buckets.get`).

An organization's settings (`OrgSettings`: the two audit-logging switches and its limits)
live in the `org_settings` table, one row per organization that changed any; an absent
row or a NULL limit means the server-wide default (`max_buckets_per_org`,
`max_bytes_per_org`). Reads are cached per process and dropped on any change here or in
another worker or node (the change counter, as for the bucket cache).

Archive is stored and reported only: Coffer has no colder tier yet (docs/decisions/0140).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coffer import limits, metrics
from coffer.audit import Actor, AuditSink
from coffer.errors import InvalidArgument
from coffer.storage.rules import utcnow
from coffer.store.changes import ChangeCache
from coffer.store.schema import org_settings

if TYPE_CHECKING:
    from coffer.storage.buckets import Buckets
    from coffer.storage.transact import Transactions

SECTION = "coreweave"  # the key of the bucket `settings` column this module owns
MIN_ARCHIVE_DAYS = 60
# Caps travel as uint64 (CoreWeave's type) but are stored as int64: a cap of 2^63-1 bytes
# (8 EiB) or more can never be reached, so it means "no cap" (how a cap is removed).
NO_CAP_FROM = 2**63 - 1
UINT64_MAX = 2**64 - 1
MAX_ORG_BUCKETS = 1_000_000  # the most an operator may let one organization have
_ORG_CACHE = metrics.cache("org_settings")
_ORG_CACHE_MAX = 10_000


@dataclass(frozen=True)
class BucketSettings:
    audit_logging_enabled: bool = False
    archive_enabled: bool = False
    archive_after_last_access_days: int | None = None
    capacity_cap_bytes: int | None = None  # None: no cap; 0: no new writes

    def to_json(self) -> dict[str, Any]:
        """The part of the bucket's `settings` column these settings own: merge it in."""
        return {SECTION: {k: v for k, v in dataclasses.asdict(self).items() if v is not None}}

    @classmethod
    def from_json(cls, column: Mapping[str, Any] | None) -> BucketSettings:
        """From a bucket's whole `settings` column (other keys are ignored)."""
        mine = (column or {}).get(SECTION) or {}
        days = mine.get("archive_after_last_access_days")
        cap = mine.get("capacity_cap_bytes")
        return cls(
            audit_logging_enabled=bool(mine.get("audit_logging_enabled", False)),
            archive_enabled=bool(mine.get("archive_enabled", False)),
            archive_after_last_access_days=None if days is None else int(days),
            capacity_cap_bytes=None if cap is None else int(cap),
        )


@dataclass(frozen=True)
class OrgSettings:
    control_plane_audit_logging_enabled: bool = False
    bucket_audit_logging_enabled: bool = False
    max_buckets: int = limits.MAX_BUCKETS_PER_ORG
    capacity_cap_bytes: int | None = None  # None: no cap


BUCKET_FIELDS = frozenset(f.name for f in dataclasses.fields(BucketSettings))
ORG_FIELDS = frozenset(f.name for f in dataclasses.fields(OrgSettings))
ORG_LIMITS = frozenset({"max_buckets", "capacity_cap_bytes"})


def _unknown(changes: Mapping[str, Any], known: frozenset[str], what: str) -> None:
    unknown = set(changes) - known
    if unknown:
        raise TypeError(f"unknown {what} setting(s): {', '.join(sorted(unknown))}")


def _archive_error(problem: str) -> InvalidArgument:
    return InvalidArgument(f"invalid archive settings: archive_after_last_access_days {problem}")


def merge_bucket(current: BucketSettings, changes: Mapping[str, Any]) -> BucketSettings:
    """`current` with `changes` applied, or InvalidArgument with the reference's messages.

    Days are required when archive is (or stays) enabled, at least 60, and refused while
    archive is (or stays) off; turning archive off clears them. A cap is 0..2^64-1 bytes;
    None (or 2^63-1 and more) removes it."""
    _unknown(changes, BUCKET_FIELDS, "bucket")
    merged = dataclasses.replace(current, **changes)
    days = changes.get("archive_after_last_access_days")
    if days is not None:
        if not merged.archive_enabled:
            raise _archive_error("must not be set when archive is disabled")
        if days < MIN_ARCHIVE_DAYS:
            raise _archive_error(f"must be >= {MIN_ARCHIVE_DAYS}")
        if days > limits.MAX_ARCHIVE_AFTER_DAYS:
            raise _archive_error(f"must be <= {limits.MAX_ARCHIVE_AFTER_DAYS}")
    if not merged.archive_enabled:
        merged = dataclasses.replace(merged, archive_after_last_access_days=None)
    elif merged.archive_after_last_access_days is None:
        raise _archive_error("is required when archive is enabled")
    return dataclasses.replace(merged, capacity_cap_bytes=normal_cap(merged.capacity_cap_bytes))


def normal_cap(cap: int | None) -> int | None:
    """A cap as it takes effect: None for none (also any cap of 2^63-1 bytes or more)."""
    if cap is None:
        return None
    if not 0 <= cap <= UINT64_MAX:
        raise InvalidArgument(f"capacity cap must be between 0 and {UINT64_MAX} bytes")
    return None if cap >= NO_CAP_FROM else cap


class ManagementSettings:
    """`storage.settings`: read and change bucket and organization settings."""

    def __init__(
        self,
        tx: Transactions,
        buckets: Buckets,
        *,
        max_buckets: int = limits.MAX_BUCKETS_PER_ORG,
        max_bytes: int = 0,
        audit: AuditSink | None = None,
    ) -> None:
        self.tx = tx
        self.db = tx.db
        self.buckets = buckets
        # The server-wide defaults an organization's own limits override.
        self.defaults = OrgSettings(max_buckets=max_buckets, capacity_cap_bytes=max_bytes or None)
        self.audit = audit
        self._cache: ChangeCache[str, OrgSettings] = ChangeCache(tx, _ORG_CACHE, _ORG_CACHE_MAX)

    # --- buckets ---------------------------------------------------------------------------
    def bucket(self, name: str) -> BucketSettings:
        """NoSuchBucket if absent; from the bucket cache."""
        return BucketSettings.from_json(self.buckets.get(name).settings)

    def update_bucket(self, name: str, *, actor: Actor | None = None, **changes: Any) -> BucketSettings:
        """Apply `changes` (fields of BucketSettings) to the bucket's settings, merged in one
        transaction; NoSuchBucket if absent, InvalidArgument for a bad combination."""
        _unknown(changes, BUCKET_FIELDS, "bucket")

        def change(column: Mapping[str, Any]) -> dict[str, Any]:
            return merge_bucket(BucketSettings.from_json(column), changes).to_json()[SECTION]

        bucket = self.buckets.merge_settings(name, SECTION, change)
        settings = BucketSettings.from_json(bucket.settings)
        if actor is not None and self.audit is not None:
            self.audit(
                "bucket_settings_changed",
                **_action_of(actor),
                bucket=name,
                changed=sorted(changes),
                settings=dataclasses.asdict(settings),
                actor=actor.name,
                org_id=bucket.org_id,
            )
        return settings

    # --- organizations ---------------------------------------------------------------------
    def org(self, org_id: str, conn: Connection | None = None) -> OrgSettings:
        """The organization's settings in effect (its own limits, else the server's). A miss
        reads through `conn` when given (a caller inside a write transaction: the capacity
        caps, `usage.Usage.apply`), never taking a second pooled connection."""

        def load() -> OrgSettings:
            if conn is not None:
                return self._effective(self._stored(conn, org_id))
            with self.db.read() as read:
                return self._effective(self._stored(read, org_id))

        return self._cache.get(org_id, load)

    def org_overrides(self, org_id: str) -> dict[str, int | None]:
        """The organization's own limits (None: the server default applies)."""
        with self.db.read() as conn:
            row = self._stored(conn, org_id)
        return {name: None if row is None else getattr(row, name) for name in sorted(ORG_LIMITS)}

    def max_buckets(self, conn: Connection, org_id: str) -> int:
        """The organization's bucket limit, read in the caller's transaction (CreateBucket)."""
        row = self._stored(conn, org_id)
        if row is None or row.max_buckets is None:
            return self.defaults.max_buckets
        return int(row.max_buckets)

    def update_org(self, org_id: str, *, actor: Actor | None = None, **changes: Any) -> OrgSettings:
        """Apply `changes` (fields of OrgSettings; a limit of None restores the server default)."""
        _unknown(changes, ORG_FIELDS, "organization")
        values = {k: (bool(v) if k not in ORG_LIMITS else v) for k, v in changes.items()}
        count = values.get("max_buckets")
        if count is not None and not 0 <= count <= MAX_ORG_BUCKETS:
            raise InvalidArgument(f"max_buckets must be between 0 and {MAX_ORG_BUCKETS}")
        cap = values.get("capacity_cap_bytes")
        if cap is not None:  # None: the server default; "no cap" is stored as NO_CAP_FROM
            values["capacity_cap_bytes"] = min(cap, NO_CAP_FROM) if normal_cap(cap) is None else cap

        def tx(conn: Connection) -> OrgSettings:
            row = self._stored(conn, org_id, lock=True)
            if row is None:
                conn.execute(org_settings.insert().values(org_id=org_id, updated_at=utcnow(), **values))
            elif values:
                conn.execute(
                    org_settings.update()
                    .where(org_settings.c.org_id == org_id)
                    .values(updated_at=utcnow(), **values)
                )
            self.db.bump_changes(conn, "org_settings")
            return self._effective(self._stored(conn, org_id))

        settings = self.tx.run(tx)
        self.tx.changed()
        if actor is not None and self.audit is not None:
            self.audit(
                "org_settings_changed",
                **_action_of(actor),
                changed=sorted(changes),
                settings=dataclasses.asdict(settings),
                actor=actor.name,
                org_id=org_id,
            )
        return settings

    def _stored(self, conn: Connection, org_id: str, *, lock: bool = False) -> Any:
        query = sa.select(org_settings).where(org_settings.c.org_id == org_id)
        return conn.execute(query.with_for_update() if lock else query).first()

    def _effective(self, row: Any) -> OrgSettings:
        if row is None:
            return self.defaults
        cap = row.capacity_cap_bytes
        return OrgSettings(
            control_plane_audit_logging_enabled=bool(row.control_plane_audit_logging_enabled),
            bucket_audit_logging_enabled=bool(row.bucket_audit_logging_enabled),
            max_buckets=self.defaults.max_buckets if row.max_buckets is None else int(row.max_buckets),
            capacity_cap_bytes=self.defaults.capacity_cap_bytes if cap is None else normal_cap(int(cap)),
        )


def _action_of(actor: Actor) -> dict[str, str]:
    return {"action": actor.action} if actor.action else {}
