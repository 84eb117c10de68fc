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

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Row

from coffer.errors import S3Error
from coffer.s3.sigv4 import checksums as cks
from coffer.storage.blobs import BlobStore, is_blob_id
from coffer.storage.models import (
    NULL_VERSION,
    BlobInfo,
    Bucket,
    ListedObject,
    ObjectListing,
    ObjectVersion,
    Part,
    PartRef,
    Upload,
)
from coffer.store.changes import ChangeWatcher
from coffer.store.db import Database
from coffer.store.schema import buckets, dead_blobs, multipart_parts, multipart_uploads, objects

log = logging.getLogger("coffer.storage")

T = TypeVar("T")
AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"

# CoreWeave AI Object Storage limits (reference §6.5, §6.6).
MAX_KEY_BYTES = 1024
MAX_PART_NUMBER = 10_000
MAX_PART_SIZE = 5 << 30
MIN_PART_SIZE = 5 << 20
MAX_OBJECT_SIZE = MAX_PART_NUMBER * MAX_PART_SIZE  # 48.828125 TiB
MAX_BUCKETS_PER_ORG = 1000
MAX_LIST = 1000

# Availability zones that accept CAIOS buckets (reference §6.2), used when settings name none.
COREWEAVE_ZONES: tuple[str, ...] = (
    "US-CENTRAL-05A",
    "US-CENTRAL-06A",
    "US-CENTRAL-07A",
    "US-CENTRAL-08A",
    "US-CENTRAL-08B",
    "US-EAST-01A",
    "US-EAST-02A",
    "US-EAST-03A",
    "US-EAST-04A",
    "US-EAST-04B",
    "US-EAST-06A",
    "US-EAST-08A",
    "US-EAST-13A",
    "US-EAST-14A",
    "US-EAST-15A",
    "US-EAST-17A",
    "RNO2A",
    "US-WEST-01A",
    "US-WEST-04A",
    "US-WEST-09B",
    "US-WEST-10A",
    "CA-EAST-01A",
    "EU-NORTH-05A",
    "EU-SOUTH-03B",
    "EU-SOUTH-04A",
)

DEAD_BLOB_GRACE = timedelta(minutes=10)  # a GET that read metadata opens its files well within this
STALE_TEMP_AGE = timedelta(hours=1)  # a temp file idle this long belongs to a dead writer
ORPHAN_MIN_AGE = timedelta(hours=1)  # a published blob this old and unreferenced was never committed
GC_INTERVAL = 60.0
ORPHAN_SCAN_INTERVAL = 6 * 3600.0

_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_RESERVED_PREFIXES = ("cw-", "vip-", "log-stitcher-ch-")
_RESERVED_NAMES = frozenset({"int"})
_VERSION_ID = re.compile(r"[0-9a-f]{32}")
_UPLOAD_ID = re.compile(r"[0-9a-f]{48}")
_VERSIONING = frozenset({"", "Enabled", "Suspended"})
_BUCKET_FIELDS = frozenset({"policy", "versioning", "tags", "cors", "settings"})
_RETRIES = 8
_GC_BATCH = 500
_BUCKET_CACHE_MAX = 10_000


@dataclass(frozen=True)
class DeleteResult:
    version_id: str | None  # the version removed, or of the delete marker created
    delete_marker: bool


@dataclass(frozen=True)
class CompletedPart:
    """One <Part> of a CompleteMultipartUpload body."""

    part_number: int
    etag: str  # as sent: quoted or not
    checksums: dict[str, str]  # {"CRC32C": base64, ...} as sent


@dataclass(frozen=True)
class UploadListing:
    uploads: list[Upload]
    common_prefixes: list[str]
    is_truncated: bool
    next_key_marker: str | None
    next_upload_id_marker: str | None


@dataclass(frozen=True)
class PartListing:
    parts: list[Part]
    is_truncated: bool
    next_part_number_marker: int | None


# --- validation and small helpers ----------------------------------------------------------


def validate_bucket_name(name: str, *, allow_reserved: bool = False) -> None:
    """CoreWeave's rules: 3-63 of a-z 0-9 -, alphanumeric at both ends, no dots, not xn--,
    not a reserved prefix (cw-, vip-, log-stitcher-ch-) and not `int`."""
    bad = (
        not isinstance(name, str)
        or not _BUCKET_NAME.fullmatch(name)
        or name.startswith("xn--")
        or (not allow_reserved and (name.startswith(_RESERVED_PREFIXES) or name in _RESERVED_NAMES))
    )
    if bad:
        raise S3Error("InvalidBucketName", fields={"BucketName": str(name)[:255]})


def validate_key(key: str) -> None:
    """1..1024 UTF-8 bytes, no NUL (which neither dialect can store in text)."""
    if not key:
        raise S3Error("InvalidArgument", "An object key must not be empty.")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise S3Error("InvalidArgument", "An object key must be valid UTF-8.") from None
    if size > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", fields={"Size": str(size), "MaxSizeAllowed": str(MAX_KEY_BYTES)})
    if "\x00" in key:
        raise S3Error("InvalidArgument", "An object key must not contain NUL characters.")


def _check_version_id(version_id: str) -> None:
    if version_id != NULL_VERSION and not _VERSION_ID.fullmatch(version_id):
        raise S3Error(
            "InvalidArgument",
            "Invalid version id specified",
            fields={"ArgumentName": "versionId", "ArgumentValue": version_id[:128]},
        )


def new_version_id() -> str:
    """32 hex digits: microseconds since the epoch, then randomness; unique and time-ordered."""
    return f"{time.time_ns() // 1000:014x}{secrets.token_hex(9)}"


def new_upload_id() -> str:
    """48 hex digits starting with the creation time, so (key, upload id) is initiation order."""
    return f"{time.time_ns() // 1000:014x}{secrets.token_hex(17)}"


def quote_etag(etag: str) -> str:
    e = etag.strip()
    if len(e) >= 2 and e.startswith('"') and e.endswith('"'):
        return e
    return f'"{e}"'


def bare_etag(etag: str) -> str:
    """An ETag without weak marker or quotes, for comparisons (clients send either form)."""
    e = etag.strip()
    if e.startswith("W/"):
        e = e[2:]
    return e.strip('"').lower()


def successor(prefix: str) -> str | None:
    """The least string greater than every string that starts with `prefix`.

    Code-point order equals UTF-8 byte order, so bumping the last code point gives the
    exclusive upper bound of the prefix's key range under both SQLite's BINARY and
    PostgreSQL's "C" collation, and it is always valid UTF-8 (surrogates are skipped;
    U+10FFFF carries into the previous character). None means "no upper bound".
    """
    chars = list(prefix)
    while chars:
        nxt = ord(chars[-1]) + 1
        if nxt == 0xD800:
            nxt = 0xE000
        if nxt <= 0x10FFFF:
            chars[-1] = chr(nxt)
            return "".join(chars)
        chars.pop()
    return None


def parse_zones(value: str, default_zone: str = "") -> list[str]:
    """Comma-separated zones, upper-cased; empty means CoreWeave's list. The default zone is
    always accepted, so a configuration cannot refuse its own default."""
    zones = [z.strip().upper() for z in value.split(",") if z.strip()] or list(COREWEAVE_ZONES)
    default = default_zone.strip().upper()
    if default and default not in zones:
        zones.append(default)
    return zones


def utcnow() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _part_json(part: PartRef) -> dict[str, Any]:
    entry: dict[str, Any] = {"blob": part.blob, "size": part.size}
    if part.etag:
        entry["etag"] = part.etag
    if part.checksums:
        entry["checksums"] = dict(part.checksums)
    return entry


def _parts_from_json(value: Any) -> list[PartRef]:
    return [
        PartRef(
            blob=p["blob"], size=int(p["size"]), etag=p.get("etag", ""), checksums=p.get("checksums") or {}
        )
        for p in value or []
    ]


def _blobs_of(parts_json: Any) -> list[str]:
    return [p["blob"] for p in parts_json or [] if p.get("blob")]


def _checksum_algorithm(checksums: Mapping[str, str] | None) -> str | None:
    for name in checksums or {}:
        if name != "type":
            return name
    return None


def _bucket_from_row(row: AnyRow) -> Bucket:
    return Bucket(
        name=row.name,
        org_id=row.org_id,
        owner_principal=row.owner_principal,
        zone=row.zone,
        created_at=_as_utc(row.created_at),
        versioning=row.versioning or "",
        policy=row.policy,
        tags=row.tags,
        cors=row.cors,
        settings=dict(row.settings or {}),
    )


def _version_from_row(row: AnyRow) -> ObjectVersion:
    return ObjectVersion(
        bucket=row.bucket,
        key=row.key,
        version_id=row.version_id,
        seq=int(row.seq),
        is_latest=bool(row.is_latest),
        is_delete_marker=bool(row.is_delete_marker),
        size=int(row.size),
        etag=row.etag,
        last_modified=_as_utc(row.last_modified),
        owner_principal=row.owner_principal,
        storage_class=row.storage_class,
        headers=dict(row.headers or {}),
        checksums=dict(row.checksums or {}),
        parts=_parts_from_json(row.parts),
        tags=row.tags,
    )


def _upload_from_row(row: AnyRow) -> Upload:
    return Upload(
        upload_id=row.upload_id,
        bucket=row.bucket,
        key=row.key,
        initiated=_as_utc(row.initiated),
        owner_principal=row.owner_principal,
        storage_class=row.storage_class,
        headers=dict(row.headers or {}),
        checksum_algorithm=row.checksum_algorithm,
        checksum_type=row.checksum_type,
        tags=row.tags,
    )


def _part_from_row(row: AnyRow) -> Part:
    return Part(
        part_number=int(row.part_number),
        blob=row.blob,
        size=int(row.size),
        etag=row.etag,
        checksums=dict(row.checksums or {}),
        last_modified=_as_utc(row.last_modified),
    )


def _is_latest() -> sa.ColumnElement[bool]:
    # Spelled exactly like the partial index predicate so SQLite's planner can use it.
    return objects.c.is_latest == sa.true()


_OBJECT_LISTING_COLUMNS = (
    objects.c.key,
    objects.c.last_modified,
    objects.c.etag,
    objects.c.size,
    objects.c.storage_class,
    objects.c.owner_principal,
    objects.c.checksums,
)

_LATEST_COLUMNS = (
    objects.c.version_id,
    objects.c.seq,
    objects.c.etag,
    objects.c.is_delete_marker,
    objects.c.parts,
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
        self.dead_blob_grace = dead_blob_grace
        self._local_changes = 0
        self._bucket_cache: dict[str, Bucket | None] = {}
        self._cache_token: object = None
        self._gc_thread: threading.Thread | None = None
        self._gc_stop = threading.Event()

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
                time.sleep(0.001 * (2**attempt) * (1 + secrets.randbelow(100) / 100))
        raise AssertionError("unreachable")

    def _retire(self, conn: Connection, blobs: Iterable[str]) -> None:
        """Hand blobs no row references any more to the collector, in the caller's transaction."""
        now = utcnow()
        rows = [{"blob": b, "dead_since": now} for b in dict.fromkeys(blobs) if b]
        if not rows:
            return
        insert = (pg_dialect.insert if self.db.dialect == "postgresql" else sqlite_dialect.insert)(dead_blobs)
        conn.execute(insert.on_conflict_do_nothing(index_elements=["blob"]), rows)

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
        versioning = conn.execute(
            sa.select(buckets.c.versioning)
            .where(buckets.c.name == name)
            .with_for_update(read=True, key_share=True)
        ).scalar()
        if versioning is None:
            raise S3Error("NoSuchBucket", fields={"BucketName": name})
        return str(versioning)

    @staticmethod
    def _latest(conn: Connection, bucket: str, key: str) -> AnyRow | None:
        return conn.execute(
            sa.select(*_LATEST_COLUMNS)
            .where(objects.c.bucket == bucket, objects.c.key == key, _is_latest())
            .with_for_update()
        ).first()

    def _drop_version(self, conn: Connection, bucket: str, key: str, version_id: str) -> bool:
        """Delete one version row and retire its blobs; False if there was none."""
        parts = conn.execute(
            objects.delete()
            .where(objects.c.bucket == bucket, objects.c.key == key, objects.c.version_id == version_id)
            .returning(objects.c.parts)
        ).first()
        if parts is None:
            return False
        self._retire(conn, _blobs_of(parts[0]))
        return True

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
        conn.execute(objects.insert().values(**row))
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
            parts=_parts_from_json(row["parts"]),
            tags=row["tags"],
        )

    @staticmethod
    def _check_preconditions(
        key: str, current: AnyRow | None, if_match: str | None, if_none_match: str | None
    ) -> None:
        """Conditional writes: If-None-Match: * refuses an existing key; If-Match wants the
        current ETag (or any current object for `*`), and NoSuchKey when there is none."""
        exists = current is not None and not current.is_delete_marker
        if if_none_match is not None:
            wanted = {bare_etag(e) for e in if_none_match.split(",")}
            if exists and ("*" in wanted or bare_etag(current.etag) in wanted):  # type: ignore[union-attr]
                raise S3Error("PreconditionFailed", fields={"Condition": "If-None-Match"})
        if if_match is not None:
            if not exists:
                raise S3Error("NoSuchKey", fields={"Key": key})
            wanted = {bare_etag(e) for e in if_match.split(",")}
            if "*" not in wanted and bare_etag(current.etag) not in wanted:  # type: ignore[union-attr]
                raise S3Error("PreconditionFailed", fields={"Condition": "If-Match"})

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
        return _bucket_from_row(row) if row is not None else None

    def get_bucket(self, name: str) -> Bucket:
        """NoSuchBucket if absent. Cached in memory; invalidated on every bucket change."""
        token = self._token()
        cache = self._bucket_cache
        if token != self._cache_token or len(cache) > _BUCKET_CACHE_MAX:
            cache = {}
            self._bucket_cache = cache
            self._cache_token = token
        if name in cache:
            hit = cache[name]
        else:
            hit = cache[name] = self._load_bucket(name)
        if hit is None:
            raise S3Error("NoSuchBucket", fields={"BucketName": name})
        return hit

    def list_buckets(self, org_id: str) -> list[Bucket]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(buckets).where(buckets.c.org_id == org_id).order_by(buckets.c.name)
            ).all()
        return [_bucket_from_row(r) for r in rows]

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
            return _bucket_from_row(fresh)

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
            "parts": [_part_json(p) for p in parts],
            "tags": dict(tags) if tags is not None else None,
        }

        def tx(conn: Connection) -> ObjectVersion:
            versioning = self._lock_bucket(conn, bucket)
            current = self._latest(conn, bucket, key)
            self._check_preconditions(key, current, if_match, if_none_match)
            return self._commit_version(conn, versioning, current, values)

        return self._transact(tx)

    def get_object(self, bucket: str, key: str, version_id: str | None = None) -> ObjectVersion:
        """NoSuchKey / NoSuchVersion; the latest being a delete marker is NoSuchKey with
        header x-amz-delete-marker: true (a versioned GET of a marker: MethodNotAllowed)."""
        self.get_bucket(bucket)
        validate_key(key)
        where = [objects.c.bucket == bucket, objects.c.key == key]
        if version_id is None:
            where.append(_is_latest())
        else:
            _check_version_id(version_id)
            where.append(objects.c.version_id == version_id)
        with self.db.read() as conn:
            row = conn.execute(sa.select(objects).where(*where)).first()
        if row is None:
            if version_id is None:
                raise S3Error("NoSuchKey", fields={"Key": key})
            raise S3Error("NoSuchVersion", fields={"Key": key, "VersionId": version_id})
        if row.is_delete_marker:
            marker_headers = {"x-amz-delete-marker": "true", "x-amz-version-id": row.version_id}
            if version_id is None:
                raise S3Error("NoSuchKey", fields={"Key": key}, headers=marker_headers)
            raise S3Error("MethodNotAllowed", headers={**marker_headers, "Allow": "DELETE"})
        return _version_from_row(row)

    def delete_object(self, bucket: str, key: str, version_id: str | None = None) -> DeleteResult:
        """Idempotent: deleting a missing key succeeds.

        Without a version id: unversioned buckets drop the object; Enabled buckets add a
        delete marker; Suspended ones replace the null version with a null delete marker.
        With one: that version goes for good, and the next newest becomes the latest."""
        validate_key(key)
        if version_id is not None:
            _check_version_id(version_id)

        def tx(conn: Connection) -> DeleteResult:
            versioning = self._lock_bucket(conn, bucket)
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
        row = conn.execute(
            sa.select(objects.c.is_latest, objects.c.is_delete_marker)
            .where(objects.c.bucket == bucket, objects.c.key == key, objects.c.version_id == version_id)
            .with_for_update()
        ).first()
        if row is None:
            return DeleteResult(version_id=version_id, delete_marker=False)
        self._drop_version(conn, bucket, key, version_id)
        if row.is_latest:
            newest = conn.execute(
                sa.select(objects.c.version_id)
                .where(objects.c.bucket == bucket, objects.c.key == key)
                .order_by(objects.c.seq.desc())
                .limit(1)
                .with_for_update()
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
        source_alg = _checksum_algorithm(source.checksums)
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
        upper = successor(prefix) if prefix else None
        low, inclusive = (prefix, True) if prefix > after else (after, False)
        contents: list[ListedObject] = []
        prefixes: list[str] = []
        last: str | None = None
        truncated = False

        with self.db.read() as conn:
            while not truncated:
                need = max_keys - len(contents) - len(prefixes)
                query = sa.select(*_OBJECT_LISTING_COLUMNS).where(
                    objects.c.bucket == bucket,
                    _is_latest(),
                    objects.c.is_delete_marker == sa.false(),
                    objects.c.key >= low if inclusive else objects.c.key > low,
                )
                if upper is not None:
                    query = query.where(objects.c.key < upper)
                rows = conn.execute(query.order_by(objects.c.key).limit(need + 1)).all()
                jumped = False
                for row in rows:
                    key: str = row.key
                    cut = key.find(delimiter, len(prefix)) if delimiter else -1
                    common = key[: cut + len(delimiter)] if cut >= 0 else None
                    if common is not None and common <= after:
                        # start-after points inside this prefix: it was listed before; skip it.
                        nxt = successor(common)
                        if nxt is None:
                            break
                        low, inclusive, jumped = nxt, True, True
                        break
                    if len(contents) + len(prefixes) == max_keys:
                        truncated = True
                        break
                    if common is None:
                        contents.append(
                            ListedObject(
                                key=key,
                                last_modified=_as_utc(row.last_modified),
                                etag=row.etag,
                                size=int(row.size),
                                storage_class=row.storage_class,
                                owner_principal=row.owner_principal,
                                checksum_algorithm=_checksum_algorithm(row.checksums),
                            )
                        )
                        last, low, inclusive = key, key, False
                        continue
                    prefixes.append(common)
                    last = common
                    nxt = successor(common)
                    if nxt is None:
                        break
                    low, inclusive, jumped = nxt, True, True
                    break
                if not jumped and not truncated:
                    break  # the range is exhausted
                if upper is not None and low >= upper:
                    break
        return ObjectListing(
            contents=contents,
            common_prefixes=prefixes,
            is_truncated=truncated,
            next_marker=last if truncated else None,
        )

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
        algorithm, ctype = self._checksum_spec(checksum_algorithm, checksum_type)
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

    @staticmethod
    def _checksum_spec(algorithm: str | None, ctype: str | None) -> tuple[str | None, str | None]:
        if algorithm is None:
            if ctype is not None:
                raise S3Error(
                    "InvalidRequest", "The x-amz-checksum-type header requires x-amz-checksum-algorithm."
                )
            return None, None
        name = cks.from_display_name(algorithm)
        if name is None or name == "md5":
            raise S3Error("InvalidRequest", f"Checksum algorithm {algorithm[:32]!r} is not supported.")
        kind = (ctype or "").strip().upper() or ("FULL_OBJECT" if name == "crc64nvme" else "COMPOSITE")
        if kind not in {"COMPOSITE", "FULL_OBJECT"}:
            raise S3Error("InvalidRequest", f"Checksum type {ctype!r} is not supported.")
        if kind == "FULL_OBJECT" and name not in cks.CRC_ALGORITHMS:
            raise S3Error(
                "InvalidRequest",
                f"The FULL_OBJECT checksum type cannot be used with the {name} checksum algorithm.",
            )
        if kind == "COMPOSITE" and name == "crc64nvme":
            raise S3Error(
                "InvalidRequest",
                "The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm.",
            )
        return cks.display_name(name), kind

    def get_upload(self, bucket: str, key: str, upload_id: str) -> Upload:
        """NoSuchUpload unless the id names an in-progress upload of that bucket and key."""
        row = None
        if _UPLOAD_ID.fullmatch(upload_id):
            with self.db.read() as conn:
                row = conn.execute(
                    sa.select(multipart_uploads).where(multipart_uploads.c.upload_id == upload_id)
                ).first()
        if row is None or row.bucket != bucket or row.key != key:
            raise S3Error("NoSuchUpload", fields={"UploadId": upload_id[:128]})
        return _upload_from_row(row)

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
        parts = [_part_from_row(r) for r in rows[:max_parts]]
        truncated = len(rows) > max_parts
        return PartListing(
            parts=parts,
            is_truncated=truncated,
            next_part_number_marker=parts[-1].part_number if truncated else None,
        )

    def complete_upload(
        self, upload: Upload, parts: list[CompletedPart], *, if_none_match: str | None = None
    ) -> ObjectVersion:
        """InvalidPartOrder, InvalidPart (unknown part or ETag mismatch), EntityTooSmall (a
        part other than the last under 5 MiB); ETag "md5-of-md5s-N". The object's parts
        point at the part blobs: nothing is copied. Uploaded parts the list leaves out are
        retired. With a checksum algorithm the object gets a COMPOSITE checksum (the
        checksum of the parts' raw checksums, "-N") or a FULL_OBJECT one (the parts'
        CRCs combined), as the upload declared."""
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
            chosen = self._match_parts(parts, stored)
            values = {
                "bucket": upload.bucket,
                "key": upload.key,
                "is_delete_marker": False,
                "size": sum(p.size for p in chosen),
                "etag": _multipart_etag(chosen),
                "last_modified": utcnow(),
                "owner_principal": upload.owner_principal,
                "storage_class": upload.storage_class,
                "headers": dict(upload.headers),
                "checksums": _multipart_checksums(upload, chosen),
                "parts": [_part_json(p) for p in chosen],
                "tags": dict(upload.tags) if upload.tags is not None else None,
            }
            current = self._latest(conn, upload.bucket, upload.key)
            self._check_preconditions(upload.key, current, None, if_none_match)
            version = self._commit_version(conn, versioning, current, values)
            used = {p.part_number for p in parts}
            self._retire(conn, [r.blob for n, r in stored.items() if n not in used])
            conn.execute(multipart_parts.delete().where(multipart_parts.c.upload_id == upload.upload_id))
            conn.execute(multipart_uploads.delete().where(multipart_uploads.c.upload_id == upload.upload_id))
            return version

        return self._transact(tx)

    @staticmethod
    def _match_parts(requested: list[CompletedPart], stored: Mapping[int, AnyRow]) -> list[PartRef]:
        chosen: list[PartRef] = []
        for i, cp in enumerate(requested):
            row = stored.get(cp.part_number)
            if row is None or bare_etag(cp.etag) != bare_etag(row.etag):
                raise S3Error(
                    "InvalidPart", fields={"PartNumber": str(cp.part_number), "ETag": cp.etag[:128]}
                )
            have = dict(row.checksums or {})
            for name, value in (cp.checksums or {}).items():
                if name in have and have[name] != value:
                    raise S3Error(
                        "InvalidPart",
                        f"The {name} checksum of part {cp.part_number} does not match the uploaded part.",
                        fields={"PartNumber": str(cp.part_number)},
                    )
            if i < len(requested) - 1 and int(row.size) < MIN_PART_SIZE:
                raise S3Error(
                    "EntityTooSmall",
                    fields={
                        "ProposedSize": str(row.size),
                        "MinSizeAllowed": str(MIN_PART_SIZE),
                        "PartNumber": str(cp.part_number),
                        "ETag": row.etag,
                    },
                )
            chosen.append(PartRef(blob=row.blob, size=int(row.size), etag=row.etag, checksums=have))
        total = sum(p.size for p in chosen)
        if total > MAX_OBJECT_SIZE:
            raise S3Error(
                "EntityTooLarge", fields={"ProposedSize": str(total), "MaxSizeAllowed": str(MAX_OBJECT_SIZE)}
            )
        return chosen

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
        u = multipart_uploads.c
        upper = successor(prefix) if prefix else None
        # The cursor: keys after `low` (or from it, if inclusive), or within `low` after an upload id.
        low, inclusive, after_id = (
            key_marker,
            False,
            (upload_id_marker if key_marker and upload_id_marker else None),
        )
        if prefix > key_marker:
            low, inclusive, after_id = prefix, True, None
        uploads: list[Upload] = []
        prefixes: list[str] = []
        last: tuple[str, str | None] | None = None
        truncated = False
        with self.db.read() as conn:
            while not truncated:
                need = max_uploads - len(uploads) - len(prefixes)
                if after_id is not None:
                    position = sa.or_(u.key > low, sa.and_(u.key == low, u.upload_id > after_id))
                else:
                    position = u.key >= low if inclusive else u.key > low
                query = sa.select(multipart_uploads).where(u.bucket == bucket, position)
                if upper is not None:
                    query = query.where(u.key < upper)
                rows = conn.execute(query.order_by(u.key, u.upload_id).limit(need + 1)).all()
                jumped = False
                for row in rows:
                    cut = row.key.find(delimiter, len(prefix)) if delimiter else -1
                    common = row.key[: cut + len(delimiter)] if cut >= 0 else None
                    if common is not None and common <= key_marker:
                        nxt = successor(common)
                        if nxt is None:
                            break
                        low, inclusive, after_id, jumped = nxt, True, None, True
                        break
                    if len(uploads) + len(prefixes) == max_uploads:
                        truncated = True
                        break
                    if common is None:
                        uploads.append(_upload_from_row(row))
                        last = (row.key, row.upload_id)
                        low, inclusive, after_id = row.key, False, row.upload_id
                        continue
                    prefixes.append(common)
                    last = (common, None)
                    nxt = successor(common)
                    if nxt is None:
                        break
                    low, inclusive, after_id, jumped = nxt, True, None, True
                    break
                if not jumped and not truncated:
                    break
        return UploadListing(
            uploads=uploads,
            common_prefixes=prefixes,
            is_truncated=truncated,
            next_key_marker=last[0] if truncated and last else None,
            next_upload_id_marker=last[1] if truncated and last else None,
        )

    # housekeeping ----------------------------------------------------------------------
    def collect_garbage(self, *, older_than: datetime | None = None, orphans: bool = False) -> int:
        """Unlink retired blobs and stale temp files; returns how many were removed.

        Retired blobs go once retired longer than the grace period (10 minutes), temp
        files once idle for an hour. With `orphans`, every published blob older than an
        hour that no object, part or retirement row mentions is removed too: the leftover
        of a crash between publishing a blob and committing its metadata. An explicit
        `older_than` replaces all three cut-offs."""
        now = utcnow()
        removed = self._collect_dead(older_than or now - self.dead_blob_grace)
        removed += self.blobs.remove_stale_temp((older_than or now - STALE_TEMP_AGE).timestamp())
        if orphans:
            removed += self._collect_orphans(older_than or now - ORPHAN_MIN_AGE)
        return removed

    def _collect_dead(self, cutoff: datetime) -> int:
        removed = 0
        while True:
            with self.db.read() as conn:
                batch = list(
                    conn.execute(
                        sa.select(dead_blobs.c.blob)
                        .where(dead_blobs.c.dead_since < cutoff)
                        .order_by(dead_blobs.c.dead_since)
                        .limit(_GC_BATCH)
                    ).scalars()
                )
            if not batch:
                return removed
            for blob in batch:
                if is_blob_id(blob) and self.blobs.unlink(blob):
                    removed += 1
            with self.db.write() as conn:
                conn.execute(dead_blobs.delete().where(dead_blobs.c.blob.in_(batch)))
            if len(batch) < _GC_BATCH:
                return removed

    def _collect_orphans(self, cutoff: datetime) -> int:
        limit = cutoff.timestamp()
        candidates = {blob for blob, mtime in self.blobs.iter_blobs() if mtime < limit}
        if not candidates:
            return 0
        for blob in self._referenced_blobs():
            candidates.discard(blob)
        removed = 0
        for blob in candidates:
            if self.blobs.unlink(blob):
                removed += 1
        if removed:
            log.info("removed %d orphaned blob(s)", removed)
        return removed

    def _referenced_blobs(self) -> Iterator[str]:
        """Every blob id any row mentions, from one consistent snapshot (so a part moving
        into an object mid-scan is seen in one place or the other)."""
        with contextlib.ExitStack() as stack:
            conn = stack.enter_context(self.db.engine.connect())
            if self.db.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            stack.enter_context(conn.begin())
            streamed = conn.execution_options(yield_per=1000)
            for (parts,) in streamed.execute(
                sa.select(objects.c.parts).where(objects.c.is_delete_marker == sa.false())
            ):
                yield from _blobs_of(parts)
            yield from streamed.execute(sa.select(multipart_parts.c.blob)).scalars()
            yield from streamed.execute(sa.select(dead_blobs.c.blob)).scalars()

    def start_collector(
        self, interval: float = GC_INTERVAL, orphan_interval: float = ORPHAN_SCAN_INTERVAL
    ) -> None:
        """Collect now and then every `interval` seconds in a daemon thread; scan for
        orphans on start and every `orphan_interval`. One process per host collects at a
        time (a lock file beside the blobs), the others skip their turn."""
        if self._gc_thread is not None:
            return
        self._gc_stop.clear()
        self._gc_thread = threading.Thread(
            target=self._collector_loop, args=(interval, orphan_interval), name="coffer-gc", daemon=True
        )
        self._gc_thread.start()

    def stop_collector(self) -> None:
        self._gc_stop.set()
        thread, self._gc_thread = self._gc_thread, None
        if thread is not None:
            thread.join(timeout=30)

    def _collector_loop(self, interval: float, orphan_interval: float) -> None:
        next_orphan_scan = 0.0
        while not self._gc_stop.is_set():
            scan = time.monotonic() >= next_orphan_scan
            try:
                with _host_lock(self.blobs.root / ".gc.lock") as held:
                    if held:
                        removed = self.collect_garbage(orphans=scan)
                        if scan:
                            next_orphan_scan = time.monotonic() + orphan_interval
                        if removed:
                            log.info("garbage collector removed %d file(s)", removed)
            except Exception:
                log.exception("garbage collection failed; retrying in %.0fs", interval)
            self._gc_stop.wait(interval)


@contextlib.contextmanager
def _host_lock(path: os.PathLike[str] | str) -> Iterator[bool]:
    """A non-blocking flock: yields whether this process got it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _multipart_etag(parts: list[PartRef]) -> str:
    """S3's multipart ETag: the MD5 of the parts' binary MD5s, then "-<part count>"."""
    md5 = hashlib.md5(usedforsecurity=False)
    for p in parts:
        raw = bare_etag(p.etag)
        try:
            md5.update(bytes.fromhex(raw))
        except ValueError:
            md5.update(raw.encode())
    return f'"{md5.hexdigest()}-{len(parts)}"'


def _multipart_checksums(upload: Upload, parts: list[PartRef]) -> dict[str, str]:
    """The object's checksum from its parts' (empty if any part lacks one)."""
    display = upload.checksum_algorithm
    alg = cks.from_display_name(display) if display else None
    if not display or alg is None:
        return {}
    try:
        raws = [cks.from_header_value(alg, p.checksums[display]) for p in parts]
    except (KeyError, ValueError):
        log.warning(
            "upload %s: a part lacks its %s checksum; the object gets none", upload.upload_id, display
        )
        return {}
    if upload.checksum_type == "FULL_OBJECT":
        combined = cks.combine_crc(alg, zip(raws, (p.size for p in parts), strict=True))
        return {display: cks.to_header_value(alg, combined), "type": "FULL_OBJECT"}
    composite = cks.compute(alg, b"".join(raws))
    return {display: f"{cks.to_header_value(alg, composite)}-{len(parts)}", "type": "COMPOSITE"}
