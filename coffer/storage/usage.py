"""Usage: what each bucket holds, per storage class, exact at every commit; capacity caps.

Counters (table `bucket_usage`): per bucket and storage class, current objects and bytes,
noncurrent versions and bytes, delete markers, and in-progress multipart uploads with the
bytes of their uploaded parts. They are never computed by scanning a bucket: every write
transaction collects what it changes in a `Delta` (the hooks sit where object, part and
upload rows are inserted, flipped and deleted) and `Usage.apply` adds it to the counters
just before that same transaction commits. So the counters are exactly as durable as the
rows they count, a crash included (docs/decisions/0145-usage-accounting.md).

Hot rows: one counter row per bucket would make every writer of a bucket wait for the
previous one's commit on PostgreSQL. Each (bucket, class) has up to `SHARDS` rows instead
and a transaction adds to one picked at random; a read sums them (at most SHARDS rows per
class, whatever the number of objects). SQLite serialises writers anyway: one row there.

Capacity caps (`BucketSettings.capacity_cap_bytes`, `OrgSettings.capacity_cap_bytes`): a
write (PutObject, CopyObject, POST, UploadPart(Copy), CreateMultipartUpload,
CompleteMultipartUpload) is refused with `QuotaExceeded` when the cap is 0, or when what
it stores anew would take the billed bytes (current + noncurrent + upload parts) beyond
the cap. Checked before a body streams when its length is known (`admit`), while it
streams otherwise, and always again at commit, inside the commit transaction, serialised
per capped bucket (and organization) so two racing writers never both fit into the same
room. Deletes are never refused.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from anyio import to_thread
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection

from coffer.storage.errors import NoSuchBucket, QuotaExceeded
from coffer.storage.reserved import AUDIT_BUCKET_PREFIX, is_reserved
from coffer.storage.settings import BucketSettings
from coffer.store.schema import bucket_usage, buckets, multipart_parts, multipart_uploads, objects

if TYPE_CHECKING:
    from coffer.storage.buckets import Buckets
    from coffer.storage.settings import ManagementSettings
    from coffer.storage.transact import Transactions

# Counter rows per (bucket, storage class) on PostgreSQL; a write adds to one at random.
SHARDS = 16
# The counters are the table's columns past its key (bucket, storage class, shard), in order.
COUNTERS = tuple(column.name for column in bucket_usage.c if not column.primary_key)
_INDEX = {name: i for i, name in enumerate(COUNTERS)}
_ZERO = (0,) * len(COUNTERS)
_BILLED = (bucket_usage.c.bytes + bucket_usage.c.noncurrent_bytes + bucket_usage.c.upload_bytes,)


@dataclass(frozen=True)
class ClassUsage:
    objects: int = 0
    bytes: int = 0
    noncurrent_objects: int = 0
    noncurrent_bytes: int = 0
    delete_markers: int = 0


@dataclass(frozen=True)
class BucketUsage:
    classes: dict[str, ClassUsage]  # by storage class
    uploads: int = 0  # multipart uploads in progress
    upload_bytes: int = 0  # the bytes of their uploaded parts

    @property
    def total_bytes(self) -> int:
        """Everything billed: current and noncurrent versions, and uploaded parts."""
        return self.upload_bytes + sum(c.bytes + c.noncurrent_bytes for c in self.classes.values())


@dataclass(frozen=True)
class Drift:
    """One counter that disagrees with the rows it counts (`Usage.verify`)."""

    storage_class: str
    counter: str  # one of COUNTERS
    stored: int
    actual: int


_CLASS_FIELDS = tuple(f.name for f in fields(ClassUsage))


def _usage_of(vectors: Mapping[str, tuple[int, ...]]) -> BucketUsage:
    """A BucketUsage from counter vectors by storage class (in COUNTERS order)."""
    classes = {
        cls: ClassUsage(**{name: v[_INDEX[name]] for name in _CLASS_FIELDS})
        for cls, v in sorted(vectors.items())
        if any(v[: len(_CLASS_FIELDS)])
    }
    return BucketUsage(
        classes=classes,
        uploads=sum(v[_INDEX["uploads"]] for v in vectors.values()),
        upload_bytes=sum(v[_INDEX["upload_bytes"]] for v in vectors.values()),
    )


class Delta:
    """One write transaction's changes to the counters, and the bytes it stores anew per
    bucket (what the caps check). `Transactions.run` makes one per attempt; the hooks add
    to it (`Transactions.delta(conn)`); `Usage.apply` writes it just before commit."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], list[int]] = {}
        self.writes: dict[str, int] = {}
        # (org_id, settings column) of each bucket the transaction already holds locked.
        self.locked: dict[str, tuple[str, Any]] = {}

    def __bool__(self) -> bool:
        return bool(self.counts or self.writes)

    def add(self, bucket: str, storage_class: str, **changes: int) -> None:
        row = self.counts.setdefault((bucket, storage_class), [0] * len(COUNTERS))
        for name, n in changes.items():
            row[_INDEX[name]] += n

    def version(
        self, bucket: str, storage_class: str, size: int, *, marker: bool, latest: bool, sign: int = 1
    ) -> None:
        """A version row appears (sign 1) or goes (-1): a delete marker, the current
        version or a noncurrent one."""
        if marker:
            self.add(bucket, storage_class, delete_markers=sign)
        elif latest:
            self.add(bucket, storage_class, objects=sign, bytes=sign * size)
        else:
            self.add(bucket, storage_class, noncurrent_objects=sign, noncurrent_bytes=sign * size)

    def row(self, bucket: str, row: Any, *, sign: int, latest: bool | None = None) -> None:
        """`version` for an objects row (is_delete_marker, size, storage_class, and
        is_latest unless `latest` says what it was)."""
        self.version(
            bucket,
            row.storage_class,
            int(row.size),
            marker=bool(row.is_delete_marker),
            latest=bool(row.is_latest) if latest is None else latest,
            sign=sign,
        )

    def flip(self, bucket: str, row: Any, *, latest: bool) -> None:
        """A version stops (latest False) or starts (True) being the current one."""
        self.row(bucket, row, sign=-1, latest=not latest)
        self.row(bucket, row, sign=1, latest=latest)

    def upload(self, bucket: str, storage_class: str, *, uploads: int = 0, size: int = 0) -> None:
        """Multipart uploads begun (1) or ended (-1), part bytes added or dropped."""
        self.add(bucket, storage_class, uploads=uploads, upload_bytes=size)

    def stores(self, bucket: str, size: int) -> None:
        """The transaction is a write the caps apply to, storing `size` bytes anew (0 for
        CreateMultipartUpload and CompleteMultipartUpload: its parts were counted already)."""
        self.writes[bucket] = self.writes.get(bucket, 0) + size

    def lock(self, bucket: str, org_id: str, settings: Any) -> None:
        """The bucket's row is held (key-share) by this transaction: no need to lock it again."""
        self.locked[bucket] = (org_id, settings)


class Usage:
    """`storage.usage`: the counters' reader, the caps' gate, and verify/fix."""

    def __init__(self, tx: Transactions, buckets: Buckets, settings: ManagementSettings | None) -> None:
        self.tx = tx
        self.db = tx.db
        self.buckets = buckets
        self.settings = settings
        self.shards = SHARDS if self.db.dialect == "postgresql" else 1
        dialect = pg_dialect if self.db.dialect == "postgresql" else sqlite_dialect
        insert = dialect.insert(bucket_usage)
        self._upsert = insert.on_conflict_do_update(
            index_elements=["bucket", "storage_class", "shard"],
            set_={name: bucket_usage.c[name] + insert.excluded[name] for name in COUNTERS},
        )
        tx.usage = self

    # --- reads -----------------------------------------------------------------------------
    def bucket(self, name: str) -> BucketUsage:
        """NoSuchBucket if absent. Reads at most SHARDS rows per storage class."""
        self.buckets.get(name)
        with self.db.read() as conn:
            return _usage_of(_stored(conn, name))

    def org(self, org_id: str) -> int:
        """Billed bytes over the organization's buckets (a few rows per bucket): what its
        cap counts, so not Coffer's audit-log bucket (`reserved`)."""
        with self.db.read() as conn:
            return _org_bytes(conn, org_id)

    # --- the write path ----------------------------------------------------------------------
    def apply(self, conn: Connection, delta: Delta) -> None:
        """Check the caps for the writes in `delta`, then add its counts to the counters, in
        the caller's transaction (Transactions.run, just before commit). Every bucket it
        touches is key-share locked first, so `fix` (which locks it for update) never
        interleaves with a write. Locks go in one order: buckets by name, then the cap
        locks, then the counter rows (by bucket and class): writers never deadlock here."""
        names = sorted({b for b, _ in delta.counts} | set(delta.writes))
        for name in names:
            held = delta.locked.get(name)
            org_id, settings = held if held is not None else _lock_bucket(conn, name)
            if name in delta.writes:
                self._check_caps(conn, name, org_id, settings, delta.writes[name])
        shard = secrets.randbelow(self.shards) if self.shards > 1 else 0
        rows = [
            {"bucket": b, "storage_class": cls, "shard": shard, **dict(zip(COUNTERS, v, strict=True))}
            for (b, cls), v in sorted(delta.counts.items())
            if any(v)
        ]
        if rows:  # one row (the usual case) as one statement, not an executemany
            conn.execute(self._upsert, rows[0] if len(rows) == 1 else rows)

    def _caps(
        self, name: str, org_id: str, settings: Any, conn: Connection | None = None
    ) -> list[tuple[str, str, int]]:
        """(scope, owner, cap) for the caps that apply to a bucket: its own, its org's. None
        for Coffer's own audit-log bucket, which only Coffer writes: its events are never
        refused (and the organization cannot delete them to make room)."""
        if is_reserved(name):
            return []
        caps = []
        cap = BucketSettings.from_json(settings).capacity_cap_bytes
        if cap is not None:
            caps.append(("bucket", name, cap))
        org_cap = self.settings.org(org_id, conn).capacity_cap_bytes if self.settings is not None else None
        if org_cap is not None:
            caps.append(("organization", org_id, org_cap))
        return caps

    def _check_caps(self, conn: Connection, name: str, org_id: str, settings: Any, adding: int) -> None:
        for scope, owner, cap in self._caps(name, org_id, settings, conn):
            if cap == 0:
                raise QuotaExceeded(name, scope=scope, cap=cap)
            # Writers of one capped bucket (organization) check one at a time, each seeing
            # what the previous one committed: two can never both take the last room.
            self.db.serialize(conn, f"usage-cap:{scope}:{owner}")
            used = _bucket_bytes(conn, name) if scope == "bucket" else _org_bytes(conn, owner)
            if used + adding > cap:
                raise QuotaExceeded(name, scope=scope, cap=cap)

    def room(self, name: str) -> tuple[int, str, int] | None:
        """Blocking: (bytes a new write may still store, the scope and the cap that leave
        the least) under the bucket's caps, None when uncapped; QuotaExceeded for a cap of
        0. The room may be negative: a cap lowered below what is stored."""
        bucket = self.buckets.get(name)
        caps = self._caps(name, bucket.org_id, bucket.settings)
        if not caps:
            return None
        tightest: tuple[int, str, int] | None = None
        with self.db.read() as conn:
            for scope, owner, cap in caps:
                if cap == 0:
                    raise QuotaExceeded(name, scope=scope, cap=cap)
                used = _bucket_bytes(conn, name) if scope == "bucket" else _org_bytes(conn, owner)
                if tightest is None or cap - used < tightest[0]:
                    tightest = (cap - used, scope, cap)
        return tightest

    def capped(self, name: str) -> bool:
        """Whether any cap applies to the bucket (from the bucket and settings caches)."""
        bucket = self.buckets.get(name)
        return bool(self._caps(name, bucket.org_id, bucket.settings))

    async def admit(self, name: str, length: int | None, body: AsyncIterable[bytes]) -> AsyncIterable[bytes]:
        """Before a body of `length` bytes (None: unknown) streams into the bucket:
        QuotaExceeded now when it cannot fit; a body of unknown length comes back cut off
        with QuotaExceeded as soon as it outgrows the room. The commit checks again."""
        if not self.capped(name):
            return body
        room = await to_thread.run_sync(self.room, name)
        if room is None:
            return body
        if length is None:
            return _bounded(body, name, room)
        _fits(name, length, room)
        return body

    def check(self, name: str, length: int) -> None:
        """Blocking: QuotaExceeded if a write of `length` bytes cannot fit in the bucket
        (CopyObject, before it copies anything)."""
        if self.capped(name):
            room = self.room(name)
            if room is not None:
                _fits(name, length, room)

    # --- verify / fix --------------------------------------------------------------------------
    def verify(self, name: str, *, fix: bool = False) -> list[Drift]:
        """Recompute a bucket's counters from its rows (one aggregate query per table: the
        memory it takes is a row per storage class) and compare them with the stored ones:
        every counter that differs ([] when they agree). With `fix` the counters are then
        rewritten to the recomputed values. NoSuchBucket if absent."""
        if not fix:
            with self.db.read() as conn:
                if self.db.dialect == "postgresql":  # counters and rows from one snapshot
                    conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
                if not _exists(conn, name):
                    raise NoSuchBucket(name)
                return _drift(_stored(conn, name), recount(conn, name))

        def tx(conn: Connection) -> list[Drift]:
            # For update: waits for the writers in flight (they hold it key-share, see
            # `apply`), and keeps new ones out until the counters are rewritten.
            lock = sa.select(buckets.c.name).where(buckets.c.name == name).with_for_update()
            if conn.execute(lock).first() is None:
                raise NoSuchBucket(name)
            actual = recount(conn, name)
            drift = _drift(_stored(conn, name), actual)
            if drift:
                conn.execute(bucket_usage.delete().where(bucket_usage.c.bucket == name))
                conn.execute(
                    bucket_usage.insert(),
                    [
                        {
                            "bucket": name,
                            "storage_class": cls,
                            "shard": 0,
                            **dict(zip(COUNTERS, v, strict=True)),
                        }
                        for cls, v in sorted(actual.items())
                    ],
                )
            return drift

        return self.tx.run(tx)

    def bucket_names(self) -> list[str]:
        """Every bucket's name, for a verify of the whole store."""
        with self.db.read() as conn:
            return list(conn.execute(sa.select(buckets.c.name).order_by(buckets.c.name)).scalars())


def drop_bucket(conn: Connection, name: str) -> None:
    """A deleted bucket's counters go with it (DeleteBucket's transaction)."""
    conn.execute(bucket_usage.delete().where(bucket_usage.c.bucket == name))


def _fits(name: str, length: int, room: tuple[int, str, int]) -> None:
    left, scope, cap = room
    if length > left:
        raise QuotaExceeded(name, scope=scope, cap=cap)


async def _bounded(body: AsyncIterable[bytes], name: str, room: tuple[int, str, int]) -> AsyncIterator[bytes]:
    seen = 0
    async for chunk in body:
        seen += len(chunk)
        _fits(name, seen, room)
        yield chunk


_LOCK = (
    sa.select(buckets.c.org_id, buckets.c.settings)
    .where(buckets.c.name == sa.bindparam("name"))
    .with_for_update(read=True, key_share=True)
)


def _lock_bucket(conn: Connection, name: str) -> tuple[str, Any]:
    row = conn.execute(_LOCK, {"name": name}).first()
    if row is None:
        raise NoSuchBucket(name)
    return row.org_id, row.settings


def _exists(conn: Connection, name: str) -> bool:
    return conn.execute(sa.select(buckets.c.name).where(buckets.c.name == name)).first() is not None


_STORED = (
    sa.select(bucket_usage.c.storage_class, *(sa.func.sum(bucket_usage.c[name]) for name in COUNTERS))
    .where(bucket_usage.c.bucket == sa.bindparam("bucket"))
    .group_by(bucket_usage.c.storage_class)
)
_BUCKET_BYTES = sa.select(sa.func.coalesce(sa.func.sum(*_BILLED), 0)).where(
    bucket_usage.c.bucket == sa.bindparam("bucket")
)
_ORG_BYTES = (
    sa.select(sa.func.coalesce(sa.func.sum(*_BILLED), 0))
    .select_from(buckets.join(bucket_usage, bucket_usage.c.bucket == buckets.c.name))
    .where(buckets.c.org_id == sa.bindparam("org_id"), ~buckets.c.name.startswith(AUDIT_BUCKET_PREFIX))
)


def _stored(conn: Connection, name: str) -> dict[str, tuple[int, ...]]:
    return {row[0]: tuple(int(n or 0) for n in row[1:]) for row in conn.execute(_STORED, {"bucket": name})}


def _bucket_bytes(conn: Connection, name: str) -> int:
    return int(conn.execute(_BUCKET_BYTES, {"bucket": name}).scalar_one())


def _org_bytes(conn: Connection, org_id: str) -> int:
    return int(conn.execute(_ORG_BYTES, {"org_id": org_id}).scalar_one())


def _count_if(condition: sa.ColumnElement[bool], value: Any = 1) -> Any:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, value), else_=0)), 0)


def recount(conn: Connection, name: str) -> dict[str, tuple[int, ...]]:
    """A bucket's counters recomputed from its object, upload and part rows, by class."""
    o, u, p = objects.c, multipart_uploads.c, multipart_parts.c
    live = sa.and_(o.is_latest == sa.true(), o.is_delete_marker == sa.false())
    old = sa.and_(o.is_latest == sa.false(), o.is_delete_marker == sa.false())
    found: dict[str, list[int]] = {}
    for row in conn.execute(
        sa.select(
            o.storage_class,
            _count_if(live),
            _count_if(live, o.size),
            _count_if(old),
            _count_if(old, o.size),
            _count_if(o.is_delete_marker == sa.true()),
        )
        .where(o.bucket == name)
        .group_by(o.storage_class)
    ):
        found.setdefault(row[0], [0] * len(COUNTERS))[:5] = [int(n) for n in row[1:]]
    for cls, count in conn.execute(
        sa.select(u.storage_class, sa.func.count()).where(u.bucket == name).group_by(u.storage_class)
    ):
        found.setdefault(cls, [0] * len(COUNTERS))[_INDEX["uploads"]] = int(count)
    for cls, size in conn.execute(
        sa.select(u.storage_class, sa.func.coalesce(sa.func.sum(p.size), 0))
        .select_from(multipart_parts.join(multipart_uploads, p.upload_id == u.upload_id))
        .where(u.bucket == name)
        .group_by(u.storage_class)
    ):
        found.setdefault(cls, [0] * len(COUNTERS))[_INDEX["upload_bytes"]] = int(size)
    return {cls: tuple(v) for cls, v in found.items()}


def _drift(stored: Mapping[str, tuple[int, ...]], actual: Mapping[str, tuple[int, ...]]) -> list[Drift]:
    return [
        Drift(cls, name, stored.get(cls, _ZERO)[i], actual.get(cls, _ZERO)[i])
        for cls in sorted(set(stored) | set(actual))
        for i, name in enumerate(COUNTERS)
        if stored.get(cls, _ZERO)[i] != actual.get(cls, _ZERO)[i]
    ]
