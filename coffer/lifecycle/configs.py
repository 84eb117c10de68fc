"""Each bucket's lifecycle configuration: stored in `bucket_lifecycle`, read through a cache.

The S3 face reads a bucket's configuration on every object write and read (the
`x-amz-expiration` header), so reads come from a per-process `ChangeCache` (a negative
answer too) that any change here, in another worker or on another node, invalidates
through the change counter, as the bucket cache does. A configuration is validated
(`rules.validate`) before it is stored; deleting a bucket deletes its row
(`Buckets.delete`).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coffer import metrics
from coffer.audit import Actor, AuditSink
from coffer.lifecycle.rules import LifecycleConfiguration, validate
from coffer.storage.errors import NoSuchBucket
from coffer.storage.reserved import check_writable
from coffer.storage.rules import utcnow
from coffer.storage.transact import Transactions
from coffer.store.changes import ChangeCache
from coffer.store.schema import bucket_lifecycle, buckets

log = logging.getLogger("coffer.lifecycle")
_CACHE = metrics.cache("lifecycle")
_CACHE_MAX = 10_000


class LifecycleConfigs:
    """`storage.lifecycle`: get, put and delete a bucket's lifecycle configuration."""

    def __init__(self, tx: Transactions, audit: AuditSink | None = None) -> None:
        self.tx = tx
        self.db = tx.db
        self.audit = audit
        self._cache: ChangeCache[str, LifecycleConfiguration | None] = ChangeCache(tx, _CACHE, _CACHE_MAX)

    def get(self, bucket: str) -> LifecycleConfiguration | None:
        """The bucket's configuration, or None (also for a bucket that does not exist)."""
        return self._cache.get(bucket, lambda: self._load(bucket))

    def put(self, bucket: str, config: LifecycleConfiguration, *, actor: Actor | None = None) -> None:
        """Replace the bucket's configuration. NoSuchBucket if absent; ReservedBucket for
        Coffer's own buckets; the `rules.validate` errors for a configuration S3 refuses."""
        check_writable(bucket)
        validate(config)
        document = config.to_json()

        def tx(conn: Connection) -> str:
            org_id = self._lock(conn, bucket)
            now = utcnow()
            updated = conn.execute(
                bucket_lifecycle.update()
                .where(bucket_lifecycle.c.bucket == bucket)
                .values(document=document, updated_at=now)
            ).rowcount
            if not updated:
                conn.execute(
                    bucket_lifecycle.insert().values(
                        bucket=bucket, document=document, created_at=now, updated_at=now
                    )
                )
            self.db.bump_changes(conn, "buckets")
            return org_id

        org_id = self.tx.run(tx)
        self.tx.changed()
        if actor is not None and self.audit is not None:
            self.audit(
                "bucket_lifecycle_changed",
                **({"action": actor.action} if actor.action else {}),
                bucket=bucket,
                rules=len(config.rules),
                actor=actor.name,
                org_id=org_id,
            )

    def delete(self, bucket: str, *, actor: Actor | None = None) -> None:
        """Remove the bucket's configuration (none is fine, as in S3). NoSuchBucket if absent."""
        check_writable(bucket)

        def tx(conn: Connection) -> tuple[str, bool]:
            org_id = self._lock(conn, bucket)
            gone = conn.execute(bucket_lifecycle.delete().where(bucket_lifecycle.c.bucket == bucket)).rowcount
            if gone:
                self.db.bump_changes(conn, "buckets")
            return org_id, bool(gone)

        org_id, gone = self.tx.run(tx)
        if not gone:
            return
        self.tx.changed()
        if actor is not None and self.audit is not None:
            action = {"action": actor.action} if actor.action else {}
            self.audit("bucket_lifecycle_deleted", **action, bucket=bucket, actor=actor.name, org_id=org_id)

    def buckets(self) -> list[str]:
        """The buckets that have a configuration, by name (the executor's work list)."""
        query = sa.select(bucket_lifecycle.c.bucket).order_by(bucket_lifecycle.c.bucket)
        with self.db.read() as conn:
            return list(conn.execute(query).scalars())

    @staticmethod
    def _lock(conn: Connection, bucket: str) -> str:
        """The bucket's organization, with its row locked against a concurrent DeleteBucket."""
        row = conn.execute(
            sa.select(buckets.c.org_id).where(buckets.c.name == bucket).with_for_update()
        ).first()
        if row is None:
            raise NoSuchBucket(bucket)
        return str(row.org_id)

    def _load(self, bucket: str) -> LifecycleConfiguration | None:
        with self.db.read() as conn:
            document = conn.execute(
                sa.select(bucket_lifecycle.c.document).where(bucket_lifecycle.c.bucket == bucket)
            ).scalar()
        if document is None:
            return None
        try:
            return LifecycleConfiguration.from_json(document)
        except (ValueError, TypeError, KeyError):
            # Stored configurations were validated; one that no longer reads applies nothing.
            log.error("the stored lifecycle configuration of bucket %s is unreadable; ignoring it", bucket)
            return None
