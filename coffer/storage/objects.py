"""Objects: versions of keys, written, read, copied, tagged, deleted and listed.

A write streams the body into a blob (`write`: stream, verify, commit, or abort), then
commits one metadata transaction that inserts the new version and retires the blobs it
replaces. Reads look the version up (`get`) and stream its blobs (`open_body`,
`read_bytes`); nothing outside storage touches a blob path.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from typing import Any, Required, TypedDict, Unpack

import sqlalchemy as sa
from anyio import to_thread
from sqlalchemy.engine import Connection

from coffer import checksums as cks
from coffer.storage import listing, versions
from coffer.storage.blobs import BlobStore
from coffer.storage.bodies import Expect, StoredBody, write_body
from coffer.storage.buckets import Buckets
from coffer.storage.errors import (
    InvalidArgument,
    InvalidRequest,
    IsDeleteMarker,
    NoSuchKey,
    NoSuchVersion,
    StorageError,
)
from coffer.storage.models import (
    NULL_VERSION,
    BlobInfo,
    DeleteResult,
    ObjectListing,
    ObjectVersion,
    PartRef,
    VersionListing,
    VersionState,
)
from coffer.storage.reserved import check_writable
from coffer.storage.rows import (
    LATEST_COLUMNS,
    AnyRow,
    blobs_of,
    latest_only,
    part_json,
    parts_from_json,
    version_from_row,
)
from coffer.storage.rows import checksum_algorithm as algorithm_of
from coffer.storage.rules import (
    MAX_LIST,
    Observed,
    check_preconditions,
    check_version_id,
    new_version_id,
    page_size,
    quote_etag,
    utcnow,
    validate_key,
    version_token,
)
from coffer.storage.transact import Transactions
from coffer.store.schema import objects

# The hot statements, built once: executing a prebuilt statement skips SQLAlchemy's
# per-call statement construction and cache-key generation, about half the CPU of the
# metadata read behind a small GET, and much of a small PUT's commit.
_GET_LATEST = sa.select(objects).where(
    objects.c.bucket == sa.bindparam("bucket"), objects.c.key == sa.bindparam("key"), latest_only()
)
_LATEST = sa.select(*LATEST_COLUMNS).where(
    objects.c.bucket == sa.bindparam("bucket"), objects.c.key == sa.bindparam("key"), latest_only()
)
_INSERT_OBJECT = objects.insert()
_DROP_VERSION = (
    objects.delete()
    .where(
        objects.c.bucket == sa.bindparam("bucket"),
        objects.c.key == sa.bindparam("key"),
        objects.c.version_id == sa.bindparam("version_id"),
    )
    .returning(
        objects.c.is_latest,
        objects.c.is_delete_marker,
        objects.c.parts,
        objects.c.size,
        objects.c.storage_class,
    )
)
_GET_VERSION = sa.select(objects).where(
    objects.c.bucket == sa.bindparam("bucket"),
    objects.c.key == sa.bindparam("key"),
    objects.c.version_id == sa.bindparam("version_id"),
)


class VersionOptions(TypedDict, total=False):
    """What a writer says about the version it makes, beside its bytes (`Objects.write`,
    `put`, `copy`): stored headers, owner, storage class ("STANDARD" when absent), tags, and
    the conditions (`If-Match`, `If-None-Match`) the current version must meet, and what the
    request found when it began (`observed`, set by `write` and `copy`: see `observe`)."""

    headers: Required[dict[str, str]]
    owner: Required[str]
    storage_class: str
    tags: dict[str, str] | None
    if_match: str | None
    if_none_match: str | None
    observed: Observed | None
    acl: dict[str, Any] | None  # the version's ACL (coffer.policy.acl.Acl as JSON), if ACLs are on


def _conditional(version: VersionOptions) -> bool:
    return version.get("if_match") is not None or version.get("if_none_match") is not None


def found(row: AnyRow | None, key: str, version_id: str | None) -> AnyRow:
    """The row of an object version that was looked up, if there is one and it is not a
    delete marker. Else NoSuchKey / NoSuchVersion for a missing row; for a delete marker,
    NoSuchKey naming it when it is the latest version, IsDeleteMarker when named by id."""
    if row is None:
        if version_id is None:
            raise NoSuchKey(key)
        raise NoSuchVersion(key, version_id)
    if row.is_delete_marker:
        if version_id is None:
            raise NoSuchKey(key, delete_marker=row.version_id)
        raise IsDeleteMarker(key, row.version_id)
    return row


class Objects:
    def __init__(self, tx: Transactions, blobs: BlobStore, buckets: Buckets) -> None:
        self.tx = tx
        self.db = tx.db
        self.blobs = blobs
        self.buckets = buckets

    # version rows (also used by Uploads to commit a completed object) -----------------------
    @staticmethod
    def latest(conn: Connection, bucket: str, key: str) -> AnyRow | None:
        return conn.execute(_LATEST, {"bucket": bucket, "key": key}).first()

    def drop_version(self, conn: Connection, bucket: str, key: str, version_id: str) -> AnyRow | None:
        """Delete one version row and retire its blobs; the row deleted, if there was one."""
        row = conn.execute(_DROP_VERSION, {"bucket": bucket, "key": key, "version_id": version_id}).first()
        if row is not None:
            self.tx.retire(conn, blobs_of(row.parts))
            self.tx.delta(conn).row(bucket, row, sign=-1)
        return row

    def _set_latest(self, conn: Connection, bucket: str, key: str, row: AnyRow, *, latest: bool) -> None:
        """Mark the version `row` latest or not; the usage delta counts current and
        noncurrent versions apart, so it moves too."""
        conn.execute(
            objects.update()
            .where(objects.c.bucket == bucket, objects.c.key == key, objects.c.version_id == row.version_id)
            .values(is_latest=latest)
        )
        self.tx.delta(conn).flip(bucket, row, latest=latest)

    def commit_version(
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
                self.drop_version(conn, bucket, key, NULL_VERSION)
            else:
                self._set_latest(conn, bucket, key, current, latest=False)
                if version_id == NULL_VERSION:
                    self.drop_version(conn, bucket, key, NULL_VERSION)
        row = {
            **values,
            "version_id": version_id,
            "seq": (int(current.seq) + 1) if current is not None else 1,
            "is_latest": True,
        }
        conn.execute(_INSERT_OBJECT, row)  # parameters, not .values(): no per-row cache key
        self.tx.delta(conn).version(
            bucket, row["storage_class"], row["size"], marker=row["is_delete_marker"], latest=True
        )
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
            acl=row.get("acl"),
        )

    # bodies in and out ---------------------------------------------------------------------
    async def write(
        self,
        bucket: str,
        key: str,
        body: AsyncIterable[bytes],
        expect: Expect,
        **version: Unpack[VersionOptions],
    ) -> tuple[StoredBody, ObjectVersion]:
        """Stream `body` into a blob, verify it against `expect`, and commit it as the new
        current version (`put`); any failure leaves nothing behind (see bodies.py). A
        reserved bucket is refused before the body is read (`reserved`)."""
        check_writable(bucket)
        if self.tx.usage is not None:  # a capacity cap refuses a body too big before it streams
            body = await self.tx.usage.admit(bucket, expect.length, body)
        if _conditional(version):  # a failed condition answers before the body streams
            version["observed"] = await to_thread.run_sync(self.observe, bucket, key, version)

        def commit(stored: StoredBody) -> ObjectVersion:
            return self.put(bucket, key, stored.blob, etag=stored.etag, checksums=stored.checksums, **version)

        return await write_body(self.blobs, body, expect, commit)

    def open_body(
        self, version: ObjectVersion, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Bytes [start, end] (inclusive; None: to the end) of a version, read ahead in large
        chunks. InvalidRange here, before anything streams, for a start past the end."""
        return self.blobs.read(version.parts, start, end)

    def read_bytes(self, version: ObjectVersion, start: int = 0, end: int | None = None) -> bytes:
        """Blocking: bytes [start, end] of a small version, in memory."""
        return self.blobs.read_bytes(version.parts, start, end)

    # metadata ------------------------------------------------------------------------------
    def observe(self, bucket: str, key: str, version: VersionOptions) -> Observed:
        """Where a conditional write begins: its conditions checked against the key's
        latest version now (PreconditionFailed, NoSuchKey), and that version remembered, so
        the commit can tell a write that won the race meanwhile (`check_preconditions`)."""
        validate_key(key)
        with self.db.query() as conn:
            current = self.latest(conn, bucket, key)
        check_preconditions(key, current, version.get("if_match"), version.get("if_none_match"))
        return Observed(version_token(current))

    def put(
        self,
        bucket: str,
        key: str,
        blob: BlobInfo,
        *,
        etag: str,
        checksums: dict[str, str],
        **version: Unpack[VersionOptions],
    ) -> ObjectVersion:
        """Commit a durable blob as the new current version (version id per the bucket's
        versioning: "null" when unversioned or suspended). The replaced blob, if any, is
        retired. Key rules: 1..1024 UTF-8 bytes (KeyTooLongError), no NUL.

        The blob is taken over (`BlobStore.claim`): when this raises a StorageError nothing
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
                checksums=checksums,
                **version,
            )
        except StorageError:
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
        storage_class: str = "STANDARD",
        tags: dict[str, str] | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
        observed: Observed | None = None,
        acl: dict[str, Any] | None = None,
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
            "acl": acl,
        }

        def tx(conn: Connection) -> ObjectVersion:
            versioning = self.tx.lock_bucket(conn, bucket)
            self.tx.lock_key(conn, bucket, key)
            current = self.latest(conn, bucket, key)
            check_preconditions(key, current, if_match, if_none_match, observed)
            self.tx.delta(conn).stores(bucket, size)
            return self.commit_version(conn, versioning, current, values)

        return self.tx.run(tx)

    def get(self, bucket: str, key: str, version_id: str | None = None) -> ObjectVersion:
        """NoSuchKey / NoSuchVersion; the latest being a delete marker is NoSuchKey naming
        the marker (a versioned GET of a marker: IsDeleteMarker)."""
        self.buckets.get(bucket)
        validate_key(key)
        params = {"bucket": bucket, "key": key}
        if version_id is None:
            query = _GET_LATEST
        else:
            check_version_id(version_id)
            query, params["version_id"] = _GET_VERSION, version_id
        return version_from_row(found(self.db.fetch_one(query, params), key, version_id))

    def delete(self, bucket: str, key: str, version_id: str | None = None) -> DeleteResult:
        """Idempotent: deleting a missing key succeeds.

        Without a version id: unversioned buckets drop the object; Enabled buckets add a
        delete marker; Suspended ones replace the null version with a null delete marker.
        With one: that version goes for good, and the next newest becomes the latest."""
        validate_key(key)
        if version_id is not None:
            check_version_id(version_id)

        def tx(conn: Connection) -> DeleteResult:
            versioning = self.tx.lock_bucket(conn, bucket)
            self.tx.lock_key(conn, bucket, key)
            return self._delete_locked(conn, versioning, bucket, key, version_id)

        return self.tx.run(tx)

    def delete_if(
        self,
        bucket: str,
        deletions: Sequence[tuple[str, str | None, Callable[[list[VersionState]], bool]]],
    ) -> list[DeleteResult | None]:
        """For each (key, version id or None, still) in order, `delete(bucket, key, version)`
        only if `still(the key's versions, newest first)` holds when read under the key's
        lock, all in one transaction; each result, or None where nothing was done. For
        deletions decided on an earlier read (lifecycle rules): a write of the key since then
        (an overwrite, a re-tag, a new version) is seen here and wins. Keys are locked in the
        order given: callers give them sorted, so two such batches never deadlock."""
        for key, version_id, _ in deletions:
            validate_key(key)
            if version_id is not None:
                check_version_id(version_id)

        def tx(conn: Connection) -> list[DeleteResult | None]:
            versioning = self.tx.lock_bucket(conn, bucket)
            results: list[DeleteResult | None] = []
            for key, version_id, still in deletions:
                self.tx.lock_key(conn, bucket, key)
                if still(versions.key_states(conn, bucket, key)):
                    results.append(self._delete_locked(conn, versioning, bucket, key, version_id))
                else:
                    results.append(None)
            return results

        return self.tx.run(tx)

    def scan_versions(self, bucket: str, after: str, keys: int) -> list[VersionState]:
        """The versions of the next `keys` keys after `after` (keys ascending, each newest
        first), for a walk over a whole bucket one bounded page at a time."""
        with self.db.read() as conn:
            return versions.scan_states(conn, bucket, after, keys)

    def _delete_locked(
        self, conn: Connection, versioning: str, bucket: str, key: str, version_id: str | None
    ) -> DeleteResult:
        if version_id is not None:
            return self._delete_version(conn, bucket, key, version_id)
        current = self.latest(conn, bucket, key)
        if not versioning:
            if current is not None:
                self.drop_version(conn, bucket, key, current.version_id)
            return DeleteResult(version_id=None, delete_marker=False)
        marker = self.commit_version(
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

    def _delete_version(self, conn: Connection, bucket: str, key: str, version_id: str) -> DeleteResult:
        row = self.drop_version(conn, bucket, key, version_id)
        if row is None:
            return DeleteResult(version_id=version_id, delete_marker=False)
        if row.is_latest:
            newest = conn.execute(
                sa.select(
                    objects.c.version_id,
                    objects.c.is_delete_marker,
                    objects.c.size,
                    objects.c.storage_class,
                )
                .where(objects.c.bucket == bucket, objects.c.key == key)
                .order_by(objects.c.seq.desc())
                .limit(1)
            ).first()
            if newest is not None:
                self._set_latest(conn, bucket, key, newest, latest=True)
        return DeleteResult(version_id=version_id, delete_marker=bool(row.is_delete_marker))

    def copy(
        self,
        source: ObjectVersion,
        bucket: str,
        key: str,
        *,
        checksum_algorithm: str | None = None,
        **version: Unpack[VersionOptions],
    ) -> ObjectVersion:
        """Copy bytes and checksums from `source`; `headers` are the destination's.

        A single-part source keeps its ETag and checksums. A multipart source becomes a
        single-part copy whose ETag is the MD5 of its bytes and whose checksum (the
        source's algorithm, or `checksum_algorithm`) covers the whole object. Conditions on
        the destination are checked before any byte moves, and again at commit."""
        validate_key(key)
        check_writable(bucket)  # before any byte moves, as `write` does
        self.buckets.get(bucket)
        if _conditional(version):
            version["observed"] = self.observe(bucket, key, version)
        if self.tx.usage is not None:  # a capacity cap refuses the copy before its bytes move
            self.tx.usage.check(bucket, source.size)
        wanted = cks.from_display_name(checksum_algorithm) if checksum_algorithm else None
        if checksum_algorithm and (wanted is None or wanted == "md5"):
            raise InvalidRequest(f"Unsupported checksum algorithm {checksum_algorithm[:32]!r}.")
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
                    "type": cks.FULL_OBJECT,
                }
        return self.put(bucket, key, info, etag=etag, checksums=sums, **version)

    def list(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        after: str = "",
        max_keys: int = 1000,
    ) -> ObjectListing:
        """Latest non-deleted versions in UTF-8 byte order after `after` (marker /
        start-after / decoded continuation token). Cost O(page + prefixes), rolling common
        prefixes up without reading the keys under them: a run of prefixes is one
        skip-scan, an index seek per prefix (`listing.walk`)."""
        self.buckets.get(bucket)
        max_keys = page_size("max_keys", max_keys)
        if max_keys == 0:
            return ObjectListing(contents=[], common_prefixes=[], is_truncated=False, next_marker=None)
        with self.db.read() as conn:
            return listing.list_objects(
                conn, bucket, prefix=prefix, delimiter=delimiter, after=after, max_keys=max_keys
            )

    def list_versions(
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
        self.buckets.get(bucket)
        if version_id_marker and not key_marker:
            raise InvalidArgument(
                "A version-id marker cannot be specified without a key marker.",
                argument="version-id-marker",
                value=version_id_marker[:128],
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

    def set_tags(self, bucket: str, key: str, version_id: str | None, tags: dict[str, str] | None) -> str:
        """Replace the tag set of the latest version (or of `version_id`); None or an empty
        set removes it. Returns the version id tagged. Errors as get_object: NoSuchKey,
        NoSuchVersion, and MethodNotAllowed for a delete marker named by version."""
        stored = dict(tags) if tags else None
        return self._update_version(bucket, key, version_id, lambda row: {"tags": stored})

    def set_acl(
        self,
        bucket: str,
        key: str,
        version_id: str | None,
        change: Callable[[str, dict[str, Any] | None], dict[str, Any]],
    ) -> str:
        """Replace the ACL of the latest version (or of `version_id`) with `change(owner,
        current ACL)`, in the transaction that locks the key: an ACL document
        {"owner": ..., "grants": [...]}, whose owner becomes the version's owner. Whatever
        `change` raises aborts it. Returns the version id; errors as `set_tags`."""

        def values(row: AnyRow) -> dict[str, Any]:
            acl = change(row.owner_principal, row.acl)
            return {"acl": acl, "owner_principal": acl["owner"]}

        return self._update_version(bucket, key, version_id, values)

    def _update_version(
        self, bucket: str, key: str, version_id: str | None, values: Callable[[AnyRow], dict[str, Any]]
    ) -> str:
        """Update the latest version (or `version_id`) of a key with `values(row)`, under the
        key's lock; NoSuchKey / NoSuchVersion / IsDeleteMarker as `get`."""
        validate_key(key)
        if version_id is not None:
            check_version_id(version_id)

        def tx(conn: Connection) -> str:
            self.tx.lock_bucket(conn, bucket)
            self.tx.lock_key(conn, bucket, key)
            where = [objects.c.bucket == bucket, objects.c.key == key]
            where.append(latest_only() if version_id is None else objects.c.version_id == version_id)
            query = sa.select(
                objects.c.version_id, objects.c.is_delete_marker, objects.c.owner_principal, objects.c.acl
            ).where(*where)
            row = found(conn.execute(query).first(), key, version_id)
            target = (
                objects.c.bucket == bucket,
                objects.c.key == key,
                objects.c.version_id == row.version_id,
            )
            conn.execute(objects.update().where(*target).values(**values(row)))
            return str(row.version_id)

        return self.tx.run(tx)
