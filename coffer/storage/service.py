"""Storage: the façade the S3 face (and the control plane) call for buckets, objects, uploads.

All methods are blocking (they run SQL); faces call them off the event loop. Errors are
S3Error values from coffer.errors.

Write discipline: a body is a durable blob before any of these methods sees it; each
write is one metadata transaction that inserts the new row and, in the same
transaction, moves every blob it stops referencing into `dead_blobs`, where the
collector finds it after a grace period. So a crash leaves at worst an unreferenced
blob (the orphan scan's job), never a row pointing at a missing or torn body.

Concurrency: SQLite serialises writers (BEGIN IMMEDIATE). On PostgreSQL a write locks
the rows it depends on (the bucket row FOR KEY SHARE, the key's latest version FOR
UPDATE); a unique partial index allows one latest row per key, so two writers racing
on a new key collide and the loser retries its whole transaction.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection

from coffer import metrics
from coffer.errors import S3Error
from coffer.s3.sigv4 import checksums as cks
from coffer.storage import listing, versions
from coffer.storage.blobs import BlobStore
from coffer.storage.collector import DEAD_BLOB_GRACE, GC_INTERVAL, ORPHAN_SCAN_INTERVAL, Collector
from coffer.storage.models import (
    NULL_VERSION,
    BlobInfo,
    Bucket,
    CompletedPart,
    DeleteResult,
    ObjectListing,
    ObjectVersion,
    Part,
    PartListing,
    PartRef,
    Upload,
    UploadListing,
    VersionListing,
)
from coffer.storage.rows import (
    LATEST_COLUMNS,
    AnyRow,
    blobs_of,
    bucket_from_row,
    latest_only,
    part_from_row,
    part_json,
    parts_from_json,
    upload_from_row,
    version_from_row,
)
from coffer.storage.rows import (
    checksum_algorithm as algorithm_of,
)
from coffer.storage.rules import (
    COREWEAVE_ZONES,
    MAX_BUCKETS_PER_ORG,
    MAX_LIST,
    MAX_PART_NUMBER,
    MAX_PART_SIZE,
    check_declared,
    check_preconditions,
    check_version_id,
    checksum_spec,
    is_upload_id,
    key_lock_id,
    match_parts,
    multipart_checksums,
    multipart_etag,
    new_upload_id,
    new_version_id,
    parse_zones,
    quote_etag,
    utcnow,
    validate_bucket_name,
    validate_key,
)
from coffer.store.changes import ChangeWatcher
from coffer.store.db import Database
from coffer.store.schema import buckets, dead_blobs, multipart_parts, multipart_uploads, objects

# Re-exported: the faces import these from here.
__all__ = [
    "COREWEAVE_ZONES",
    "CompletedPart",
    "DeleteResult",
    "PartListing",
    "Storage",
    "UploadListing",
    "parse_zones",
    "validate_bucket_name",
    "validate_key",
]

log = logging.getLogger("coffer.storage")
_CACHE = metrics.cache("buckets")

T = TypeVar("T")

_VERSIONING = frozenset({"", "Enabled", "Suspended"})
_BUCKET_FIELDS = frozenset({"policy", "versioning", "tags", "cors", "settings"})
_RETRIES = 10
_BUCKET_CACHE_MAX = 10_000


# The hot statements, built once: executing a prebuilt statement skips SQLAlchemy's
# per-call statement construction and cache-key generation, about half the CPU of the
# metadata read behind a small GET, and much of a small PUT's commit.
_GET_LATEST = sa.select(objects).where(
    objects.c.bucket == sa.bindparam("bucket"), objects.c.key == sa.bindparam("key"), latest_only()
)
_LATEST = sa.select(*LATEST_COLUMNS).where(
    objects.c.bucket == sa.bindparam("bucket"), objects.c.key == sa.bindparam("key"), latest_only()
)
_LOCK_BUCKET = (
    sa.select(buckets.c.versioning)
    .where(buckets.c.name == sa.bindparam("name"))
    .with_for_update(read=True, key_share=True)
)
_INSERT_OBJECT = objects.insert()
_DROP_VERSION = (
    objects.delete()
    .where(
        objects.c.bucket == sa.bindparam("bucket"),
        objects.c.key == sa.bindparam("key"),
        objects.c.version_id == sa.bindparam("version_id"),
    )
    .returning(objects.c.is_latest, objects.c.is_delete_marker, objects.c.parts)
)
_GET_VERSION = sa.select(objects).where(
    objects.c.bucket == sa.bindparam("bucket"),
    objects.c.key == sa.bindparam("key"),
    objects.c.version_id == sa.bindparam("version_id"),
)


def _retryable(exc: sa.exc.DBAPIError) -> bool:
    """Unique violations from a racing writer, and PostgreSQL deadlocks/serialisation failures."""
    if isinstance(exc, sa.exc.IntegrityError):
        return True
    return getattr(exc.orig, "sqlstate", None) in {"40001", "40P01"}


class Storage:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        *,
        zones: list[str],
        default_zone: str,
        changes: ChangeWatcher | None = None,
        max_buckets: int = MAX_BUCKETS_PER_ORG,
        dead_blob_grace: timedelta = DEAD_BLOB_GRACE,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.changes = changes
        self.default_zone = default_zone.strip().upper()
        self.zones = [z.strip().upper() for z in zones if z.strip()] or list(COREWEAVE_ZONES)
        if self.default_zone and self.default_zone not in self.zones:
            self.zones.append(self.default_zone)
        self._zone_set = frozenset(self.zones)
        self.max_buckets = max_buckets
        self.collector = Collector(db, blobs, grace=dead_blob_grace)
        self._local_changes = 0
        self._bucket_cache: dict[str, Bucket | None] = {}
        self._retire_stmt: Any = None  # built on first use, for this store's dialect
        self._cache_token: object = None

    # plumbing ---------------------------------------------------------------------------
    def _transact(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` in a write transaction, retrying when a concurrent writer won a race."""
        for attempt in range(_RETRIES):
            try:
                with self.db.write() as conn:
                    return fn(conn)
            except sa.exc.DBAPIError as exc:
                if not _retryable(exc):
                    if self.db.dialect == "sqlite" and "locked" in str(exc.orig):
                        raise S3Error("SlowDown", "The metadata store is busy; please retry.") from exc
                    raise
                if attempt == _RETRIES - 1:
                    raise S3Error("SlowDown", "Conflicting concurrent writes; please retry.") from exc
                time.sleep(min(0.05, 0.001 * 2**attempt) * (1 + secrets.randbelow(100) / 100))
        raise AssertionError("unreachable")

    def _retire(self, conn: Connection, blobs: Iterable[str]) -> None:
        """Hand blobs no row references any more to the collector, in the caller's transaction."""
        now = utcnow()
        rows = [{"blob": b, "dead_since": now} for b in dict.fromkeys(blobs) if b]
        if not rows:
            return
        if self._retire_stmt is None:
            dialect = pg_dialect if self.db.dialect == "postgresql" else sqlite_dialect
            self._retire_stmt = dialect.insert(dead_blobs).on_conflict_do_nothing(index_elements=["blob"])
        conn.execute(self._retire_stmt, rows)

    def _changed(self) -> None:
        self._local_changes += 1
        if self.changes is not None:
            self.changes.changed()

    def _token(self) -> object:
        remote = self.changes.token() if self.changes is not None else None
        return (remote, self._local_changes)

    def _lock_bucket(self, conn: Connection, name: str) -> str:
        """The bucket's versioning state, with its row share-locked against a concurrent
        DeleteBucket (PostgreSQL; SQLite writers are serial anyway)."""
        versioning = conn.execute(_LOCK_BUCKET, {"name": name}).scalar()
        if versioning is None:
            raise S3Error("NoSuchBucket", fields={"BucketName": name})
        return str(versioning)

    def _lock_key(self, conn: Connection, bucket: str, key: str) -> None:
        """Serialise writers of one key until commit (PostgreSQL; SQLite writers are serial).

        Without it, racing writers would both see the same latest version and all but one
        would fail on the unique latest index and retry; with it they simply queue."""
        if self.db.dialect == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key_lock_id(bucket, key))))

    @staticmethod
    def _latest(conn: Connection, bucket: str, key: str) -> AnyRow | None:
        return conn.execute(_LATEST, {"bucket": bucket, "key": key}).first()

    def _drop_version(self, conn: Connection, bucket: str, key: str, version_id: str) -> AnyRow | None:
        """Delete one version row and retire its blobs; the row deleted, if there was one."""
        row = conn.execute(_DROP_VERSION, {"bucket": bucket, "key": key, "version_id": version_id}).first()
        if row is not None:
            self._retire(conn, blobs_of(row.parts))
        return row

    def _commit_version(
        self,
        conn: Connection,
        versioning: str,
        current: AnyRow | None,
        values: dict[str, Any],
    ) -> ObjectVersion:
        """Insert a new latest version (object or delete marker) per the bucket's versioning:
        Enabled keeps the previous versions; otherwise the new row is the null version and
        replaces (and retires) any previous null version."""
        bucket, key = values["bucket"], values["key"]
        version_id = new_version_id() if versioning == "Enabled" else NULL_VERSION
        if current is not None:
            if current.version_id == NULL_VERSION and version_id == NULL_VERSION:
                self._drop_version(conn, bucket, key, NULL_VERSION)
            else:
                conn.execute(
                    objects.update()
                    .where(
                        objects.c.bucket == bucket,
                        objects.c.key == key,
                        objects.c.version_id == current.version_id,
                    )
                    .values(is_latest=False)
                )
                if version_id == NULL_VERSION:
                    self._drop_version(conn, bucket, key, NULL_VERSION)
        row = {
            **values,
            "version_id": version_id,
            "seq": (int(current.seq) + 1) if current is not None else 1,
            "is_latest": True,
        }
        conn.execute(_INSERT_OBJECT, row)  # parameters, not .values(): no per-row cache key
        return ObjectVersion(
            bucket=bucket,
            key=key,
            version_id=version_id,
            seq=row["seq"],
            is_latest=True,
            is_delete_marker=row["is_delete_marker"],
            size=row["size"],
            etag=row["etag"],
            last_modified=row["last_modified"],
            owner_principal=row["owner_principal"],
            storage_class=row["storage_class"],
            headers=dict(row["headers"]),
            checksums=dict(row["checksums"]),
            parts=parts_from_json(row["parts"]),
            tags=row["tags"],
        )

    # buckets ---------------------------------------------------------------------------
    def create_bucket(
        self, *, org_id: str, owner: str, name: str, zone: str | None, allow_reserved: bool = False
    ) -> Bucket:
        """CoreWeave name rules (InvalidBucketName), zone must be known
        (InvalidLocationConstraint); same name, org and zone again returns the existing
        bucket; same org other zone: BucketAlreadyOwnedByYou; other org: BucketAlreadyExists.

        `allow_reserved` lets Coffer itself create reserved names (the audit-log bucket)."""
        validate_bucket_name(name, allow_reserved=allow_reserved)
        wanted_zone = (zone or self.default_zone).strip().upper()
        if wanted_zone not in self._zone_set:
            raise S3Error("InvalidLocationConstraint", fields={"LocationConstraint": (zone or "")[:64]})

        def settle(existing: Bucket) -> Bucket:
            if existing.org_id != org_id:
                raise S3Error("BucketAlreadyExists", fields={"BucketName": name})
            if existing.zone != wanted_zone:
                raise S3Error("BucketAlreadyOwnedByYou", fields={"BucketName": name})
            return existing

        existing = self._load_bucket(name)
        if existing is not None:
            return settle(existing)
        bucket = Bucket(
            name=name,
            org_id=org_id,
            owner_principal=owner,
            zone=wanted_zone,
            created_at=utcnow(),
            versioning="",
            settings={},
        )

        def tx(conn: Connection) -> None:
            count = conn.execute(
                sa.select(sa.func.count()).select_from(buckets).where(buckets.c.org_id == org_id)
            ).scalar_one()
            if count >= self.max_buckets:
                raise S3Error("TooManyBuckets")
            conn.execute(
                buckets.insert().values(
                    name=name,
                    org_id=org_id,
                    owner_principal=owner,
                    zone=wanted_zone,
                    created_at=bucket.created_at,
                    versioning="",
                    settings={},
                )
            )
            self.db.bump_changes(conn, "buckets")

        try:
            with self.db.write() as conn:
                tx(conn)
        except sa.exc.IntegrityError:
            existing = self._load_bucket(name)
            if existing is None:
                raise  # not a name clash: an unknown org (a caller's bug)
            return settle(existing)
        self._changed()
        return bucket

    def _load_bucket(self, name: str) -> Bucket | None:
        with self.db.read() as conn:
            row = conn.execute(sa.select(buckets).where(buckets.c.name == name)).first()
        return bucket_from_row(row) if row is not None else None

    def get_bucket(self, name: str) -> Bucket:
        """NoSuchBucket if absent. Cached in memory; invalidated on every bucket change."""
        token = self._token()
        cache = self._bucket_cache
        if token != self._cache_token or len(cache) > _BUCKET_CACHE_MAX:
            cache = {}
            self._bucket_cache = cache
            self._cache_token = token
        if name in cache:
            _CACHE.hit.inc()
            hit = cache[name]
        else:
            _CACHE.miss.inc()
            hit = cache[name] = self._load_bucket(name)
        if hit is None:
            raise S3Error("NoSuchBucket", fields={"BucketName": name})
        return hit

    def list_buckets(self, org_id: str) -> list[Bucket]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(buckets).where(buckets.c.org_id == org_id).order_by(buckets.c.name)
            ).all()
        return [bucket_from_row(r) for r in rows]

    def delete_bucket(self, name: str) -> None:
        """BucketNotEmpty while any object version or delete marker remains; aborts
        in-progress multipart uploads."""

        def tx(conn: Connection) -> None:
            found = conn.execute(
                sa.select(buckets.c.name).where(buckets.c.name == name).with_for_update()
            ).first()
            if found is None:
                raise S3Error("NoSuchBucket", fields={"BucketName": name})
            if conn.execute(sa.select(objects.c.key).where(objects.c.bucket == name).limit(1)).first():
                raise S3Error("BucketNotEmpty", fields={"BucketName": name})
            uploads = sa.select(multipart_uploads.c.upload_id).where(multipart_uploads.c.bucket == name)
            blobs = conn.execute(
                sa.select(multipart_parts.c.blob).where(multipart_parts.c.upload_id.in_(uploads))
            ).scalars()
            self._retire(conn, list(blobs))
            conn.execute(multipart_parts.delete().where(multipart_parts.c.upload_id.in_(uploads)))
            conn.execute(multipart_uploads.delete().where(multipart_uploads.c.bucket == name))
            conn.execute(buckets.delete().where(buckets.c.name == name))
            self.db.bump_changes(conn, "buckets")

        self._transact(tx)
        self._changed()

    def update_bucket(self, name: str, **fields: Any) -> Bucket:
        """Set policy / versioning / tags / cors / settings (None clears).

        Versioning moves between Enabled and Suspended; once either was set it cannot go
        back to "" (never enabled), as in S3 (InvalidBucketState)."""
        unknown = set(fields) - _BUCKET_FIELDS
        if unknown:
            raise TypeError(f"unknown bucket field(s): {', '.join(sorted(unknown))}")
        values = dict(fields)
        if "versioning" in values:
            versioning = values["versioning"] or ""
            if versioning not in _VERSIONING:
                raise S3Error("MalformedXML", "Versioning status must be Enabled or Suspended.")
            values["versioning"] = versioning
        if "settings" in values and values["settings"] is None:
            values["settings"] = {}

        def tx(conn: Connection) -> Bucket:
            row = conn.execute(sa.select(buckets).where(buckets.c.name == name).with_for_update()).first()
            if row is None:
                raise S3Error("NoSuchBucket", fields={"BucketName": name})
            if values.get("versioning") == "" and row.versioning:
                raise S3Error(
                    "InvalidBucketState", "Versioning cannot be disabled once enabled; suspend it instead."
                )
            if values:
                conn.execute(buckets.update().where(buckets.c.name == name).values(**values))
                self.db.bump_changes(conn, "buckets")
            fresh = conn.execute(sa.select(buckets).where(buckets.c.name == name)).one()
            return bucket_from_row(fresh)

        bucket = self._transact(tx)
        self._changed()
        return bucket

    # objects ---------------------------------------------------------------------------
    def put_object(
        self,
        bucket: str,
        key: str,
        blob: BlobInfo,
        *,
        etag: str,
        headers: dict[str, str],
        checksums: dict[str, str],
        owner: str,
        storage_class: str = "STANDARD",
        tags: dict[str, str] | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> ObjectVersion:
        """Commit a durable blob as the new current version (version id per the bucket's
        versioning: "null" when unversioned or suspended). The replaced blob, if any, is
        retired. Key rules: 1..1024 UTF-8 bytes (KeyTooLongError), no NUL.

        The blob is taken over (`BlobStore.claim`): when this raises an S3Error nothing
        was committed and the blob has been deleted."""
        self.blobs.claim(blob.blob)
        try:
            validate_key(key)
            return self._store_version(
                bucket,
                key,
                [PartRef(blob=blob.blob, size=blob.size)],
                size=blob.size,
                etag=quote_etag(etag),
                headers=headers,
                checksums=checksums,
                owner=owner,
                storage_class=storage_class,
                tags=tags,
                if_match=if_match,
                if_none_match=if_none_match,
            )
        except S3Error:
            self.blobs.unlink(blob.blob)
            raise

    def _store_version(
        self,
        bucket: str,
        key: str,
        parts: list[PartRef],
        *,
        size: int,
        etag: str,
        headers: dict[str, str],
        checksums: dict[str, str],
        owner: str,
        storage_class: str,
        tags: dict[str, str] | None,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> ObjectVersion:
        values = {
            "bucket": bucket,
            "key": key,
            "is_delete_marker": False,
            "size": size,
            "etag": etag,
            "last_modified": utcnow(),
            "owner_principal": owner,
            "storage_class": storage_class,
            "headers": dict(headers),
            "checksums": dict(checksums),
            "parts": [part_json(p) for p in parts],
            "tags": dict(tags) if tags is not None else None,
        }

        def tx(conn: Connection) -> ObjectVersion:
            versioning = self._lock_bucket(conn, bucket)
            self._lock_key(conn, bucket, key)
            current = self._latest(conn, bucket, key)
            check_preconditions(key, current, if_match, if_none_match)
            return self._commit_version(conn, versioning, current, values)

        return self._transact(tx)

    def get_object(self, bucket: str, key: str, version_id: str | None = None) -> ObjectVersion:
        """NoSuchKey / NoSuchVersion; the latest being a delete marker is NoSuchKey with
        header x-amz-delete-marker: true (a versioned GET of a marker: MethodNotAllowed)."""
        self.get_bucket(bucket)
        validate_key(key)
        params = {"bucket": bucket, "key": key}
        if version_id is None:
            query = _GET_LATEST
        else:
            check_version_id(version_id)
            query, params["version_id"] = _GET_VERSION, version_id
        with self.db.query() as conn:
            row = conn.execute(query, params).first()
        if row is None:
            if version_id is None:
                raise S3Error("NoSuchKey", fields={"Key": key})
            raise S3Error("NoSuchVersion", fields={"Key": key, "VersionId": version_id})
        if row.is_delete_marker:
            marker_headers = {"x-amz-delete-marker": "true", "x-amz-version-id": row.version_id}
            if version_id is None:
                raise S3Error("NoSuchKey", fields={"Key": key}, headers=marker_headers)
            raise S3Error("MethodNotAllowed", headers={**marker_headers, "Allow": "DELETE"})
        return version_from_row(row)

    def delete_object(self, bucket: str, key: str, version_id: str | None = None) -> DeleteResult:
        """Idempotent: deleting a missing key succeeds.

        Without a version id: unversioned buckets drop the object; Enabled buckets add a
        delete marker; Suspended ones replace the null version with a null delete marker.
        With one: that version goes for good, and the next newest becomes the latest."""
        validate_key(key)
        if version_id is not None:
            check_version_id(version_id)

        def tx(conn: Connection) -> DeleteResult:
            versioning = self._lock_bucket(conn, bucket)
            self._lock_key(conn, bucket, key)
            if version_id is not None:
                return self._delete_version(conn, bucket, key, version_id)
            current = self._latest(conn, bucket, key)
            if not versioning:
                if current is not None:
                    self._drop_version(conn, bucket, key, current.version_id)
                return DeleteResult(version_id=None, delete_marker=False)
            marker = self._commit_version(
                conn,
                versioning,
                current,
                {
                    "bucket": bucket,
                    "key": key,
                    "is_delete_marker": True,
                    "size": 0,
                    "etag": "",
                    "last_modified": utcnow(),
                    "owner_principal": "",
                    "storage_class": "STANDARD",
                    "headers": {},
                    "checksums": {},
                    "parts": [],
                    "tags": None,
                },
            )
            return DeleteResult(version_id=marker.version_id, delete_marker=True)

        return self._transact(tx)

    def _delete_version(self, conn: Connection, bucket: str, key: str, version_id: str) -> DeleteResult:
        row = self._drop_version(conn, bucket, key, version_id)
        if row is None:
            return DeleteResult(version_id=version_id, delete_marker=False)
        if row.is_latest:
            newest = conn.execute(
                sa.select(objects.c.version_id)
                .where(objects.c.bucket == bucket, objects.c.key == key)
                .order_by(objects.c.seq.desc())
                .limit(1)
            ).scalar()
            if newest is not None:
                conn.execute(
                    objects.update()
                    .where(objects.c.bucket == bucket, objects.c.key == key, objects.c.version_id == newest)
                    .values(is_latest=True)
                )
        return DeleteResult(version_id=version_id, delete_marker=bool(row.is_delete_marker))

    def copy_object(
        self,
        source: ObjectVersion,
        bucket: str,
        key: str,
        *,
        headers: dict[str, str],
        owner: str,
        storage_class: str = "STANDARD",
        tags: dict[str, str] | None = None,
        checksum_algorithm: str | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> ObjectVersion:
        """Copy bytes and checksums from `source`; `headers` are the destination's.

        A single-part source keeps its ETag and checksums. A multipart source becomes a
        single-part copy whose ETag is the MD5 of its bytes and whose checksum (the
        source's algorithm, or `checksum_algorithm`) covers the whole object."""
        validate_key(key)
        self.get_bucket(bucket)
        wanted = cks.from_display_name(checksum_algorithm) if checksum_algorithm else None
        if checksum_algorithm and (wanted is None or wanted == "md5"):
            raise S3Error("InvalidRequest", f"Unsupported checksum algorithm {checksum_algorithm[:32]!r}.")
        source_alg = algorithm_of(source.checksums)
        alg = wanted or (cks.from_display_name(source_alg) if source_alg else None)
        reuse = source.parts_count is None and (
            wanted is None or wanted == cks.from_display_name(source_alg or "")
        )
        algorithms = [] if reuse else ["md5", *([alg] if alg else [])]
        info = self.blobs.copy(source.parts, algorithms=algorithms)
        if reuse:
            etag, sums = source.etag, dict(source.checksums)
        else:
            etag = f'"{info.digests["md5"].hex()}"'
            sums = {}
            if alg:
                sums = {
                    cks.display_name(alg): cks.to_header_value(alg, info.digests[alg]),
                    "type": "FULL_OBJECT",
                }
        return self.put_object(
            bucket,
            key,
            info,
            etag=etag,
            headers=headers,
            checksums=sums,
            owner=owner,
            storage_class=storage_class,
            tags=tags,
            if_match=if_match,
            if_none_match=if_none_match,
        )

    def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        after: str = "",
        max_keys: int = 1000,
    ) -> ObjectListing:
        """Latest non-deleted versions in UTF-8 byte order after `after` (marker /
        start-after / decoded continuation token). Cost O(page), rolling common
        prefixes up without reading the keys under them: after a prefix is rolled up the
        next query starts at the prefix's successor, one indexed range seek."""
        self.get_bucket(bucket)
        if max_keys < 0:
            raise S3Error(
                "InvalidArgument", "max-keys must be non-negative.", fields={"ArgumentName": "max-keys"}
            )
        max_keys = min(max_keys, MAX_LIST)
        if max_keys == 0:
            return ObjectListing(contents=[], common_prefixes=[], is_truncated=False, next_marker=None)
        with self.db.read() as conn:
            return listing.list_objects(
                conn, bucket, prefix=prefix, delimiter=delimiter, after=after, max_keys=max_keys
            )

    def list_object_versions(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        version_id_marker: str = "",
        max_keys: int = 1000,
    ) -> VersionListing:
        """Every version and delete marker, keys ascending and each key newest first, at
        O(page) cost (see `versions.py`). A version-id marker needs a key marker
        (InvalidArgument) and must look like a version id."""
        self.get_bucket(bucket)
        if version_id_marker and not key_marker:
            raise S3Error(
                "InvalidArgument",
                "A version-id marker cannot be specified without a key marker.",
                fields={"ArgumentName": "version-id-marker", "ArgumentValue": version_id_marker[:128]},
            )
        if version_id_marker:
            check_version_id(version_id_marker)
        max_keys = min(max(max_keys, 0), MAX_LIST)
        if max_keys == 0:
            return VersionListing([], [], False, None, None)
        with self.db.read() as conn:
            return versions.list_versions(
                conn,
                bucket,
                prefix=prefix,
                delimiter=delimiter,
                key_marker=key_marker,
                version_id_marker=version_id_marker,
                max_keys=max_keys,
            )

    def set_object_tags(
        self, bucket: str, key: str, version_id: str | None, tags: dict[str, str] | None
    ) -> str:
        """Replace the tag set of the latest version (or of `version_id`); None or an empty
        set removes it. Returns the version id tagged. Errors as get_object: NoSuchKey,
        NoSuchVersion, and MethodNotAllowed for a delete marker named by version."""
        validate_key(key)
        if version_id is not None:
            check_version_id(version_id)
        stored = dict(tags) if tags else None

        def tx(conn: Connection) -> str:
            self._lock_bucket(conn, bucket)
            self._lock_key(conn, bucket, key)
            where = [objects.c.bucket == bucket, objects.c.key == key]
            where.append(latest_only() if version_id is None else objects.c.version_id == version_id)
            row = conn.execute(
                sa.select(objects.c.version_id, objects.c.is_delete_marker).where(*where)
            ).first()
            if row is None:
                if version_id is None:
                    raise S3Error("NoSuchKey", fields={"Key": key})
                raise S3Error("NoSuchVersion", fields={"Key": key, "VersionId": version_id})
            if row.is_delete_marker:
                marker = {"x-amz-delete-marker": "true", "x-amz-version-id": row.version_id}
                if version_id is None:
                    raise S3Error("NoSuchKey", fields={"Key": key}, headers=marker)
                raise S3Error("MethodNotAllowed", headers={**marker, "Allow": "DELETE"})
            target = (
                objects.c.bucket == bucket,
                objects.c.key == key,
                objects.c.version_id == row.version_id,
            )
            conn.execute(objects.update().where(*target).values(tags=stored))
            return str(row.version_id)

        return self._transact(tx)

    # multipart -------------------------------------------------------------------------
    def create_upload(
        self,
        bucket: str,
        key: str,
        *,
        owner: str,
        headers: dict[str, str],
        storage_class: str = "STANDARD",
        checksum_algorithm: str | None = None,
        checksum_type: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Upload:
        """Checksum algorithm: CRC32, CRC32C, CRC64NVME, SHA1 or SHA256; type COMPOSITE
        (not for CRC64NVME) or FULL_OBJECT (CRCs only); the type defaults to COMPOSITE,
        or FULL_OBJECT for CRC64NVME, as in S3."""
        validate_key(key)
        algorithm, ctype = checksum_spec(checksum_algorithm, checksum_type)
        upload = Upload(
            upload_id=new_upload_id(),
            bucket=bucket,
            key=key,
            initiated=utcnow(),
            owner_principal=owner,
            storage_class=storage_class,
            headers=dict(headers),
            checksum_algorithm=algorithm,
            checksum_type=ctype,
            tags=dict(tags) if tags is not None else None,
        )

        def tx(conn: Connection) -> None:
            self._lock_bucket(conn, bucket)
            conn.execute(
                multipart_uploads.insert().values(
                    upload_id=upload.upload_id,
                    bucket=bucket,
                    key=key,
                    initiated=upload.initiated,
                    owner_principal=owner,
                    storage_class=storage_class,
                    headers=upload.headers,
                    checksum_algorithm=algorithm,
                    checksum_type=ctype,
                    tags=upload.tags,
                )
            )

        self._transact(tx)
        return upload

    def get_upload(self, bucket: str, key: str, upload_id: str) -> Upload:
        """NoSuchUpload unless the id names an in-progress upload of that bucket and key."""
        row = None
        if is_upload_id(upload_id):
            with self.db.read() as conn:
                row = conn.execute(
                    sa.select(multipart_uploads).where(multipart_uploads.c.upload_id == upload_id)
                ).first()
        if row is None or row.bucket != bucket or row.key != key:
            raise S3Error("NoSuchUpload", fields={"UploadId": upload_id[:128]})
        return upload_from_row(row)

    def put_part(
        self, upload: Upload, part_number: int, blob: BlobInfo, *, etag: str, checksums: dict[str, str]
    ) -> Part:
        """1..10000 (InvalidArgument), at most 5 GiB (EntityTooLarge); replaces a part.

        The blob is taken over like put_object's. A part of an upload that declared a
        checksum algorithm gets that checksum from the blob's digests if the caller did
        not pass it, so CompleteMultipartUpload can always derive the object's."""
        self.blobs.claim(blob.blob)
        try:
            if not 1 <= part_number <= MAX_PART_NUMBER:
                raise S3Error(
                    "InvalidArgument",
                    "Part number must be an integer between 1 and 10000, inclusive",
                    fields={"ArgumentName": "partNumber", "ArgumentValue": str(part_number)},
                )
            if blob.size > MAX_PART_SIZE:
                raise S3Error(
                    "EntityTooLarge",
                    fields={"ProposedSize": str(blob.size), "MaxSizeAllowed": str(MAX_PART_SIZE)},
                )
            sums = dict(checksums)
            alg = cks.from_display_name(upload.checksum_algorithm) if upload.checksum_algorithm else None
            if alg and upload.checksum_algorithm not in sums and alg in blob.digests:
                sums[cks.display_name(alg)] = cks.to_header_value(alg, blob.digests[alg])
            part = Part(
                part_number=part_number,
                blob=blob.blob,
                size=blob.size,
                etag=quote_etag(etag),
                checksums=sums,
                last_modified=utcnow(),
            )

            def tx(conn: Connection) -> None:
                alive = conn.execute(
                    sa.select(multipart_uploads.c.upload_id)
                    .where(multipart_uploads.c.upload_id == upload.upload_id)
                    .with_for_update(read=True, key_share=True)
                ).first()
                if alive is None:
                    raise S3Error("NoSuchUpload", fields={"UploadId": upload.upload_id})
                where = (
                    multipart_parts.c.upload_id == upload.upload_id,
                    multipart_parts.c.part_number == part_number,
                )
                old = conn.execute(sa.select(multipart_parts.c.blob).where(*where).with_for_update()).first()
                values = {
                    "blob": part.blob,
                    "size": part.size,
                    "etag": part.etag,
                    "checksums": part.checksums,
                    "last_modified": part.last_modified,
                }
                if old is None:
                    conn.execute(
                        multipart_parts.insert().values(
                            upload_id=upload.upload_id, part_number=part_number, **values
                        )
                    )
                else:
                    conn.execute(multipart_parts.update().where(*where).values(**values))
                    self._retire(conn, [old.blob])

            self._transact(tx)
            return part
        except S3Error:
            self.blobs.unlink(blob.blob)
            raise

    def list_parts(self, upload: Upload, *, marker: int = 0, max_parts: int = 1000) -> PartListing:
        if max_parts < 0:
            raise S3Error(
                "InvalidArgument", "max-parts must be non-negative.", fields={"ArgumentName": "max-parts"}
            )
        max_parts = min(max_parts, MAX_LIST)
        if max_parts == 0:
            return PartListing(parts=[], is_truncated=False, next_part_number_marker=None)
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(multipart_parts)
                .where(
                    multipart_parts.c.upload_id == upload.upload_id, multipart_parts.c.part_number > marker
                )
                .order_by(multipart_parts.c.part_number)
                .limit(max_parts + 1)
            ).all()
        parts = [part_from_row(r) for r in rows[:max_parts]]
        truncated = len(rows) > max_parts
        return PartListing(
            parts=parts,
            is_truncated=truncated,
            next_part_number_marker=parts[-1].part_number if truncated else None,
        )

    def complete_upload(
        self,
        upload: Upload,
        parts: list[CompletedPart],
        *,
        if_none_match: str | None = None,
        expected_checksum: tuple[str, str] | None = None,
        expected_size: int | None = None,
    ) -> ObjectVersion:
        """InvalidPartOrder, InvalidPart (unknown part or ETag mismatch), EntityTooSmall (a
        part other than the last under 5 MiB); ETag "md5-of-md5s-N". `expected_checksum`
        (the object's checksum the client declared; "-N" optional) and `expected_size`
        must match what the parts add up to (BadDigest / InvalidRequest), or nothing is
        committed. The object's parts point at the part blobs: nothing is copied. Uploaded
        parts the list leaves out are retired. With a checksum algorithm the object gets a
        COMPOSITE checksum (the checksum of the parts' raw checksums, "-N") or a FULL_OBJECT
        one (the parts' CRCs combined), as the upload declared."""
        if not parts:
            raise S3Error("MalformedXML", "You must specify at least one part.")
        previous = 0
        for cp in parts:
            if cp.part_number <= previous:
                raise S3Error("InvalidPartOrder")
            previous = cp.part_number

        def tx(conn: Connection) -> ObjectVersion:
            alive = conn.execute(
                sa.select(multipart_uploads.c.upload_id)
                .where(multipart_uploads.c.upload_id == upload.upload_id)
                .with_for_update()
            ).first()
            if alive is None:
                raise S3Error("NoSuchUpload", fields={"UploadId": upload.upload_id})
            versioning = self._lock_bucket(conn, upload.bucket)
            self._lock_key(conn, upload.bucket, upload.key)
            stored = {
                r.part_number: r
                for r in conn.execute(
                    sa.select(
                        multipart_parts.c.part_number,
                        multipart_parts.c.blob,
                        multipart_parts.c.size,
                        multipart_parts.c.etag,
                        multipart_parts.c.checksums,
                    ).where(multipart_parts.c.upload_id == upload.upload_id)
                )
            }
            chosen = match_parts(parts, stored)
            values = {
                "bucket": upload.bucket,
                "key": upload.key,
                "is_delete_marker": False,
                "size": sum(p.size for p in chosen),
                "etag": multipart_etag(chosen),
                "last_modified": utcnow(),
                "owner_principal": upload.owner_principal,
                "storage_class": upload.storage_class,
                "headers": dict(upload.headers),
                "checksums": multipart_checksums(upload, chosen),
                "parts": [part_json(p) for p in chosen],
                "tags": dict(upload.tags) if upload.tags is not None else None,
            }
            check_declared(values, expected_checksum, expected_size)
            current = self._latest(conn, upload.bucket, upload.key)
            check_preconditions(upload.key, current, None, if_none_match)
            version = self._commit_version(conn, versioning, current, values)
            used = {p.part_number for p in parts}
            self._retire(conn, [r.blob for n, r in stored.items() if n not in used])
            conn.execute(multipart_parts.delete().where(multipart_parts.c.upload_id == upload.upload_id))
            conn.execute(multipart_uploads.delete().where(multipart_uploads.c.upload_id == upload.upload_id))
            return version

        return self._transact(tx)

    def abort_upload(self, upload: Upload) -> None:
        def tx(conn: Connection) -> None:
            alive = conn.execute(
                sa.select(multipart_uploads.c.upload_id)
                .where(multipart_uploads.c.upload_id == upload.upload_id)
                .with_for_update()
            ).first()
            if alive is None:
                raise S3Error("NoSuchUpload", fields={"UploadId": upload.upload_id})
            blobs = conn.execute(
                sa.select(multipart_parts.c.blob).where(multipart_parts.c.upload_id == upload.upload_id)
            ).scalars()
            self._retire(conn, list(blobs))
            conn.execute(multipart_parts.delete().where(multipart_parts.c.upload_id == upload.upload_id))
            conn.execute(multipart_uploads.delete().where(multipart_uploads.c.upload_id == upload.upload_id))

        self._transact(tx)

    def list_uploads(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        key_marker: str = "",
        upload_id_marker: str = "",
        max_uploads: int = 1000,
    ) -> UploadListing:
        """In-progress uploads by key, then initiation time; common prefixes roll up like
        list_objects, each skipped with one range seek."""
        self.get_bucket(bucket)
        if max_uploads < 0:
            raise S3Error(
                "InvalidArgument", "max-uploads must be non-negative.", fields={"ArgumentName": "max-uploads"}
            )
        max_uploads = min(max_uploads, MAX_LIST)
        if max_uploads == 0:
            return UploadListing([], [], False, None, None)
        with self.db.read() as conn:
            return listing.list_uploads(
                conn,
                bucket,
                prefix=prefix,
                delimiter=delimiter,
                key_marker=key_marker,
                upload_id_marker=upload_id_marker,
                max_uploads=max_uploads,
            )

    # housekeeping ----------------------------------------------------------------------
    def collect_garbage(self, *, older_than: datetime | None = None, orphans: bool = False) -> int:
        """Unlink retired blobs and stale temp files; returns how many were removed.

        Retired blobs go once retired longer than the grace period (10 minutes), temp
        files once idle for an hour. With `orphans`, every published blob older than an
        hour that no object, part or retirement row mentions is removed too: the leftover
        of a crash between publishing a blob and committing its metadata. An explicit
        `older_than` replaces all three cut-offs."""
        return self.collector.collect(older_than=older_than, orphans=orphans)

    def start_collector(
        self, interval: float = GC_INTERVAL, orphan_interval: float = ORPHAN_SCAN_INTERVAL
    ) -> None:
        """Run the collector now and every minute (every second while space is short) in a
        background thread; see collector.py."""
        self.collector.start(interval, orphan_interval)

    def stop_collector(self) -> None:
        self.collector.stop()
