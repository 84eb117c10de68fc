"""Buckets: create, look up (cached), list, delete, and change their settings.

A bucket row carries its organization, zone, versioning state, policy, tags, CORS rules
and settings. Lookups are served from a per-process cache that any bucket change, here
or in another process (`Transactions.token`), invalidates.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coffer import metrics
from coffer.storage import usage
from coffer.storage.errors import (
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    InvalidBucketState,
    InvalidLocationConstraint,
    MalformedDocument,
    NoSuchBucket,
    TooManyBuckets,
)
from coffer.storage.models import Bucket
from coffer.storage.reserved import AUDIT_BUCKET_PREFIX, check_writable
from coffer.storage.rows import bucket_from_row
from coffer.storage.rules import COREWEAVE_ZONES, MAX_BUCKETS_PER_ORG, utcnow, validate_bucket_name
from coffer.storage.transact import Transactions
from coffer.store.changes import ChangeCache
from coffer.store.schema import (
    bucket_lifecycle,
    buckets,
    inventory_configs,
    multipart_parts,
    multipart_uploads,
    objects,
)

_CACHE = metrics.cache("buckets")
_CACHE_MAX = 10_000
_VERSIONING = frozenset({"", "Enabled", "Suspended"})
_FIELDS = frozenset({"policy", "versioning", "tags", "cors", "settings"})


def _counted(org_id: str) -> sa.Select[int]:
    """How many of the organization's buckets count against its limit: all but Coffer's own
    (`reserved`: the audit-log bucket)."""
    mine = sa.not_(buckets.c.name.startswith(AUDIT_BUCKET_PREFIX))
    return sa.select(sa.func.count()).select_from(buckets).where(buckets.c.org_id == org_id, mine)


class Buckets:
    def __init__(
        self,
        tx: Transactions,
        *,
        zones: builtins.list[str],
        default_zone: str,
        max_buckets: int = MAX_BUCKETS_PER_ORG,
    ) -> None:
        self.tx = tx
        self.db = tx.db
        self.default_zone = default_zone.strip().upper()
        self.zones = [z.strip().upper() for z in zones if z.strip()] or builtins.list(COREWEAVE_ZONES)
        if self.default_zone and self.default_zone not in self.zones:
            self.zones.append(self.default_zone)
        self._zone_set = frozenset(self.zones)
        self.max_buckets = max_buckets
        # The organization's bucket limit, read in CreateBucket's transaction (Storage sets
        # it to the organization settings' reader); else `max_buckets` for every organization.
        self.limit_of: Callable[[Connection, str], int] | None = None
        self._cache: ChangeCache[str, Bucket | None] = ChangeCache(tx, _CACHE, _CACHE_MAX)

    def create(
        self,
        *,
        org_id: str,
        owner: str,
        name: str,
        zone: str | None,
        allow_reserved: bool = False,
        settings: Mapping[str, Any] | None = None,
    ) -> Bucket:
        """CoreWeave name rules (InvalidBucketName), zone must be known
        (InvalidLocationConstraint); same name, org and zone again returns the existing
        bucket (its settings untouched); same org other zone: BucketAlreadyOwnedByYou; other
        org: BucketAlreadyExists.

        `allow_reserved` lets Coffer itself create reserved names (the audit-log bucket);
        `settings` are the new bucket's first settings (its ownership, ACL, ...)."""
        initial = dict(settings or {})
        validate_bucket_name(name, allow_reserved=allow_reserved)
        wanted_zone = (zone or self.default_zone).strip().upper()
        if wanted_zone not in self._zone_set:
            raise InvalidLocationConstraint((zone or "")[:64])

        def settle(existing: Bucket) -> Bucket:
            if existing.org_id != org_id:
                raise BucketAlreadyExists(name)
            if existing.zone != wanted_zone:
                raise BucketAlreadyOwnedByYou(name)
            return existing

        existing = self._load(name)
        if existing is not None:
            return settle(existing)
        bucket = Bucket(
            name=name,
            org_id=org_id,
            owner_principal=owner,
            zone=wanted_zone,
            created_at=utcnow(),
            versioning="",
            settings=initial,
        )

        def tx(conn: Connection) -> None:
            self.db.serialize(conn, f"buckets:{org_id}")  # two creates never both see room
            # Coffer's own buckets (the audit-log bucket) neither count nor are refused.
            count = conn.execute(_counted(org_id)).scalar_one()
            limit = self.limit_of(conn, org_id) if self.limit_of is not None else self.max_buckets
            if count >= limit and not allow_reserved:
                raise TooManyBuckets()
            conn.execute(
                buckets.insert().values(
                    name=name,
                    org_id=org_id,
                    owner_principal=owner,
                    zone=wanted_zone,
                    created_at=bucket.created_at,
                    versioning="",
                    settings=initial,
                )
            )
            self.db.bump_changes(conn, "buckets")

        try:
            with self.db.write() as conn:
                tx(conn)
        except sa.exc.IntegrityError:
            existing = self._load(name)
            if existing is None:
                raise  # not a name clash: an unknown org (a caller's bug)
            return settle(existing)
        self.tx.changed()
        return bucket

    def _load(self, name: str) -> Bucket | None:
        with self.db.read() as conn:
            row = conn.execute(sa.select(buckets).where(buckets.c.name == name)).first()
        return bucket_from_row(row) if row is not None else None

    def get(self, name: str) -> Bucket:
        """NoSuchBucket if absent. Cached in memory; invalidated on every bucket change."""
        hit = self._cache.get(name, lambda: self._load(name))
        if hit is None:
            raise NoSuchBucket(name)
        return hit

    def list(self, org_id: str, *, offset: int = 0, limit: int | None = None) -> builtins.list[Bucket]:
        """The organization's buckets by name; a page of them with `offset` and `limit`."""
        query = sa.select(buckets).where(buckets.c.org_id == org_id).order_by(buckets.c.name)
        if offset or limit is not None:
            query = query.offset(offset).limit(limit)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [bucket_from_row(r) for r in rows]

    def count(self, org_id: str) -> int:
        """How many buckets the organization has, as its bucket limit counts them (not Coffer's own)."""
        with self.db.read() as conn:
            return int(conn.execute(_counted(org_id)).scalar_one())

    def delete(self, name: str) -> None:
        """BucketNotEmpty while any object version or delete marker remains; aborts
        in-progress multipart uploads. ReservedBucket for Coffer's own (`reserved`)."""
        check_writable(name)

        def tx(conn: Connection) -> None:
            found = conn.execute(
                sa.select(buckets.c.name).where(buckets.c.name == name).with_for_update()
            ).first()
            if found is None:
                raise NoSuchBucket(name)
            if conn.execute(sa.select(objects.c.key).where(objects.c.bucket == name).limit(1)).first():
                raise BucketNotEmpty(name)
            uploads = sa.select(multipart_uploads.c.upload_id).where(multipart_uploads.c.bucket == name)
            blobs = conn.execute(
                sa.select(multipart_parts.c.blob).where(multipart_parts.c.upload_id.in_(uploads))
            ).scalars()
            self.tx.retire(conn, list(blobs))
            conn.execute(multipart_parts.delete().where(multipart_parts.c.upload_id.in_(uploads)))
            conn.execute(multipart_uploads.delete().where(multipart_uploads.c.bucket == name))
            conn.execute(buckets.delete().where(buckets.c.name == name))
            conn.execute(bucket_lifecycle.delete().where(bucket_lifecycle.c.bucket == name))
            conn.execute(inventory_configs.delete().where(inventory_configs.c.bucket == name))
            usage.drop_bucket(conn, name)
            self.db.bump_changes(conn, "buckets")

        self.tx.run(tx)
        self.tx.changed()

    def update(self, name: str, **fields: Any) -> Bucket:
        """Set policy / versioning / tags / cors / settings (None clears).

        Versioning moves between Enabled and Suspended; once either was set it cannot go
        back to "" (never enabled), as in S3 (InvalidBucketState). ReservedBucket for
        Coffer's own buckets (`reserved`)."""
        check_writable(name)
        unknown = set(fields) - _FIELDS
        if unknown:
            raise TypeError(f"unknown bucket field(s): {', '.join(sorted(unknown))}")
        values = dict(fields)
        if "versioning" in values:
            versioning = values["versioning"] or ""
            if versioning not in _VERSIONING:
                raise MalformedDocument("Versioning status must be Enabled or Suspended.")
            values["versioning"] = versioning
        if "settings" in values and values["settings"] is None:
            values["settings"] = {}

        def tx(conn: Connection) -> Bucket:
            row = conn.execute(sa.select(buckets).where(buckets.c.name == name).with_for_update()).first()
            if row is None:
                raise NoSuchBucket(name)
            if values.get("versioning") == "" and row.versioning:
                raise InvalidBucketState("Versioning cannot be disabled once enabled; suspend it instead.")
            if values:
                conn.execute(buckets.update().where(buckets.c.name == name).values(**values))
                self.db.bump_changes(conn, "buckets")
            fresh = conn.execute(sa.select(buckets).where(buckets.c.name == name)).one()
            return bucket_from_row(fresh)

        bucket = self.tx.run(tx)
        self.tx.changed()
        return bucket

    def merge_settings(
        self, name: str, section: str, change: Callable[[Mapping[str, Any]], dict[str, Any]]
    ) -> Bucket:
        """Replace the `section` key of the bucket's settings with `change(settings)`, in one
        transaction that locks the row: the other keys (other features') stay as they are.
        NoSuchBucket if absent; whatever `change` raises aborts the transaction; ReservedBucket
        for Coffer's own buckets (`reserved`)."""
        check_writable(name)

        def tx(conn: Connection) -> Bucket:
            row = conn.execute(sa.select(buckets).where(buckets.c.name == name).with_for_update()).first()
            if row is None:
                raise NoSuchBucket(name)
            current = dict(row.settings or {})
            merged = {**current, section: change(current)}
            if merged != current:
                conn.execute(buckets.update().where(buckets.c.name == name).values(settings=merged))
                self.db.bump_changes(conn, "buckets")
            return dataclasses.replace(bucket_from_row(row), settings=merged)

        bucket = self.tx.run(tx)
        self.tx.changed()
        return bucket
