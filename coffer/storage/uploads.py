"""Multipart uploads: create, upload and copy parts, complete, abort, list.

Parts are blobs of their own; completion commits an object whose parts point at the part
blobs (nothing is copied) and retires the parts the client left out.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from anyio import to_thread
from sqlalchemy.engine import Connection

from coffer import checksums as cks
from coffer.storage import listing
from coffer.storage.blobs import BlobStore
from coffer.storage.bodies import Expect, StoredBody, write_body
from coffer.storage.buckets import Buckets
from coffer.storage.errors import (
    EntityTooLarge,
    InvalidArgument,
    InvalidPartOrder,
    MalformedDocument,
    NoSuchUpload,
    StorageError,
)
from coffer.storage.models import (
    BlobInfo,
    CompletedPart,
    ObjectVersion,
    Part,
    PartListing,
    Upload,
    UploadListing,
)
from coffer.storage.objects import Objects
from coffer.storage.rows import as_utc, part_from_row, part_json, upload_from_row
from coffer.storage.rules import (
    COMPLETED_UPLOAD_RETENTION,
    MAX_PART_NUMBER,
    MAX_PART_SIZE,
    check_declared,
    check_preconditions,
    is_upload_id,
    match_parts,
    multipart_checksums,
    multipart_etag,
    new_upload_id,
    page_size,
    parts_digest,
    quote_etag,
    upload_checksum_mode,
    utcnow,
    validate_key,
)
from coffer.storage.transact import Transactions
from coffer.storage.usage import Delta
from coffer.store.schema import completed_uploads, multipart_parts, multipart_uploads


def _lock_upload(conn: Connection, upload_id: str) -> None:
    """Lock the upload's row until commit (against a racing complete or abort); NoSuchUpload
    when it is gone."""
    alive = conn.execute(
        sa.select(multipart_uploads.c.upload_id)
        .where(multipart_uploads.c.upload_id == upload_id)
        .with_for_update()
    ).first()
    if alive is None:
        raise NoSuchUpload(upload_id)


@dataclass(frozen=True)
class CompletedUpload:
    """What a completion made, as a retried completion answers it (`Uploads.replay`)."""

    bucket: str
    key: str
    etag: str
    version_id: str


_RETENTION = timedelta(seconds=COMPLETED_UPLOAD_RETENTION)
_PRUNE_BATCH = 100  # expired rows one completion deletes: more than it adds, so they never pile up
_COMPLETED = sa.select(completed_uploads).where(completed_uploads.c.upload_id == sa.bindparam("upload_id"))


def _remember(conn: Connection, upload: Upload, version: ObjectVersion, digest: str) -> None:
    """Record a completion (for `Uploads.replay`) and prune a batch of expired ones, in the
    completion's transaction; rows another completion is pruning are skipped, not waited for."""
    now = utcnow()
    conn.execute(
        completed_uploads.insert().values(
            upload_id=upload.upload_id,
            bucket=upload.bucket,
            key=upload.key,
            version_id=version.version_id,
            etag=version.etag,
            parts_digest=digest,
            completed_at=now,
        )
    )
    expired = (
        sa.select(completed_uploads.c.upload_id)
        .where(completed_uploads.c.completed_at < now - _RETENTION)
        .limit(_PRUNE_BATCH)
        .with_for_update(skip_locked=True)
    )
    conn.execute(
        completed_uploads.delete().where(completed_uploads.c.upload_id.in_(expired.scalar_subquery()))
    )


def _drop_upload(conn: Connection, upload: Upload, delta: Delta) -> None:
    """Delete the upload and its part rows (their blobs are the caller's to retire or keep)."""
    sizes = conn.execute(
        multipart_parts.delete()
        .where(multipart_parts.c.upload_id == upload.upload_id)
        .returning(multipart_parts.c.size)
    ).scalars()
    delta.upload(upload.bucket, upload.storage_class, uploads=-1, size=-sum(sizes))
    conn.execute(multipart_uploads.delete().where(multipart_uploads.c.upload_id == upload.upload_id))


class Uploads:
    def __init__(self, tx: Transactions, blobs: BlobStore, buckets: Buckets, objects: Objects) -> None:
        self.tx = tx
        self.db = tx.db
        self.blobs = blobs
        self.buckets = buckets
        self.objects = objects

    def create(
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
        acl: dict[str, Any] | None = None,
    ) -> Upload:
        """Checksum algorithm: CRC32, CRC32C, CRC64NVME, SHA1 or SHA256; type COMPOSITE
        (not for CRC64NVME) or FULL_OBJECT (CRCs only); the type defaults to COMPOSITE,
        or FULL_OBJECT for CRC64NVME, as in S3. `acl` is what the completed object gets:
        {"owner": ...} (its owner) and, with ACLs on, "grants" (`Upload.acl`)."""
        validate_key(key)
        algorithm, ctype = upload_checksum_mode(checksum_algorithm, checksum_type)
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
            acl=acl,
        )

        def tx(conn: Connection) -> None:
            self.tx.lock_bucket(conn, bucket)
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
                    acl=acl,
                )
            )
            delta = self.tx.delta(conn)
            delta.upload(bucket, storage_class, uploads=1)
            delta.stores(bucket, 0)  # no bytes, but a write: a cap of 0 refuses it

        self.tx.run(tx)
        return upload

    def get(self, bucket: str, key: str, upload_id: str) -> Upload:
        """NoSuchUpload unless the id names an in-progress upload of that bucket and key."""
        row = None
        if is_upload_id(upload_id):
            with self.db.read() as conn:
                row = conn.execute(
                    sa.select(multipart_uploads).where(multipart_uploads.c.upload_id == upload_id)
                ).first()
        if row is None or row.bucket != bucket or row.key != key:
            raise NoSuchUpload(upload_id[:128])
        return upload_from_row(row)

    async def write_part(
        self,
        upload: Upload,
        part_number: int,
        body: AsyncIterable[bytes],
        expect: Expect,
        *,
        record_checksum: bool,
    ) -> tuple[StoredBody, Part]:
        """Stream a part's body into a blob, verify it against `expect`, and commit it
        (`put_part`). `record_checksum`: store the part's checksum with it (the client sent
        or named one, or the upload has an algorithm); any failure leaves nothing behind."""

        def commit(stored: StoredBody) -> Part:
            sums = {k: v for k, v in stored.checksums.items() if k != "type"} if record_checksum else {}
            return self.put_part(upload, part_number, stored.blob, etag=stored.etag, checksums=sums)

        if self.tx.usage is not None:  # a capacity cap refuses a body too big before it streams
            body = await self.tx.usage.admit(upload.bucket, expect.length, body)
        return await write_body(self.blobs, body, expect, commit)

    async def copy_part(
        self, upload: Upload, part_number: int, source: ObjectVersion, start: int, end: int
    ) -> Part:
        """UploadPartCopy: bytes [start, end] of `source` as a part, hashed for its ETag and
        the upload's checksum as they stream through; any failure leaves nothing behind."""
        if self.tx.usage is not None and self.tx.usage.capped(upload.bucket):
            await to_thread.run_sync(self.tx.usage.check, upload.bucket, max(end - start + 1, 0))
        algorithm = (upload.checksum_algorithm or "").lower()
        algorithms = ["md5"] + ([algorithm] if algorithm in cks.CHECKSUM_ALGORITHMS else [])
        writer = self.blobs.writer(algorithms)
        try:
            if end >= start:
                async for chunk in self.blobs.read(source.parts, start, end):
                    await writer.write(chunk)
            info = await writer.finish()
            etag = f'"{info.digests["md5"].hex()}"'
            checksums: dict[str, str] = {}
            if algorithm in cks.CHECKSUM_ALGORITHMS:
                checksums[cks.display_name(algorithm)] = cks.to_header_value(
                    algorithm, info.digests[algorithm]
                )

            def commit() -> Part:
                return self.put_part(upload, part_number, info, etag=etag, checksums=checksums)

            return await to_thread.run_sync(commit)
        except BaseException:
            await writer.abort()
            raise

    def put_part(
        self, upload: Upload, part_number: int, blob: BlobInfo, *, etag: str, checksums: dict[str, str]
    ) -> Part:
        """1..10000 (InvalidArgument), at most 5 GiB (EntityTooLarge); replaces a part.

        The blob is taken over like Objects.put's. A part of an upload that declared a
        checksum algorithm gets that checksum from the blob's digests if the caller did
        not pass it, so CompleteMultipartUpload can always derive the object's."""
        self.blobs.claim(blob.blob)
        try:
            if not 1 <= part_number <= MAX_PART_NUMBER:
                raise InvalidArgument(
                    f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive",
                    argument="partNumber",
                    value=str(part_number),
                )
            if blob.size > MAX_PART_SIZE:
                raise EntityTooLarge(MAX_PART_SIZE, size=blob.size)
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
                # The bucket before the upload, as every writer: never a deadlock with DeleteBucket.
                self.tx.lock_bucket(conn, upload.bucket)
                alive = conn.execute(
                    sa.select(multipart_uploads.c.upload_id)
                    .where(multipart_uploads.c.upload_id == upload.upload_id)
                    .with_for_update(read=True, key_share=True)
                ).first()
                if alive is None:
                    raise NoSuchUpload(upload.upload_id)
                where = (
                    multipart_parts.c.upload_id == upload.upload_id,
                    multipart_parts.c.part_number == part_number,
                )
                old = conn.execute(
                    sa.select(multipart_parts.c.blob, multipart_parts.c.size).where(*where).with_for_update()
                ).first()
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
                    self.tx.retire(conn, [old.blob])
                delta = self.tx.delta(conn)
                replaced = 0 if old is None else int(old.size)
                delta.upload(upload.bucket, upload.storage_class, size=part.size - replaced)
                delta.stores(upload.bucket, part.size)

            self.tx.run(tx)
            return part
        except StorageError:
            self.blobs.unlink(blob.blob)
            raise

    def list_parts(self, upload: Upload, *, marker: int = 0, max_parts: int = 1000) -> PartListing:
        max_parts = page_size("max_parts", max_parts)
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

    def complete(
        self,
        upload: Upload,
        parts: list[CompletedPart],
        *,
        if_match: str | None = None,
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
        one (the parts' CRCs combined), as the upload declared.

        `if_match` / `if_none_match` are checked in the transaction that commits, so a
        completion never loses a race in flight (PreconditionFailed, NoSuchKey). The upload
        is remembered for COMPLETED_UPLOAD_RETENTION, for a retried completion (`replay`)."""
        if not parts:
            raise MalformedDocument("You must specify at least one part.")
        previous = 0
        for cp in parts:
            if cp.part_number <= previous:
                raise InvalidPartOrder()
            previous = cp.part_number

        def tx(conn: Connection) -> ObjectVersion:
            versioning = self.tx.lock_bucket(conn, upload.bucket)  # the bucket first, as every writer
            _lock_upload(conn, upload.upload_id)
            self.tx.lock_key(conn, upload.bucket, upload.key)
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
            acl = upload.acl or {}  # the owner and ACL fixed at CreateMultipartUpload
            values = {
                "bucket": upload.bucket,
                "key": upload.key,
                "is_delete_marker": False,
                "size": sum(p.size for p in chosen),
                "etag": multipart_etag(chosen),
                "last_modified": utcnow(),
                "owner_principal": acl.get("owner", upload.owner_principal),
                "storage_class": upload.storage_class,
                "headers": dict(upload.headers),
                "checksums": multipart_checksums(upload, chosen),
                "parts": [part_json(p) for p in chosen],
                "tags": dict(upload.tags) if upload.tags is not None else None,
                "acl": acl if "grants" in acl else None,
            }
            check_declared(values, expected_checksum, expected_size)
            current = self.objects.latest(conn, upload.bucket, upload.key)
            check_preconditions(upload.key, current, if_match, if_none_match)
            version = self.objects.commit_version(conn, versioning, current, values)
            _remember(conn, upload, version, parts_digest(parts))
            used = {p.part_number for p in parts}
            self.tx.retire(conn, [r.blob for n, r in stored.items() if n not in used])
            delta = self.tx.delta(conn)
            _drop_upload(conn, upload, delta)
            delta.stores(upload.bucket, 0)  # its parts are counted already (but a cap of 0 refuses)
            return version

        return self.tx.run(tx)

    def replay(self, bucket: str, key: str, upload_id: str, parts: list[CompletedPart]) -> CompletedUpload:
        """A retried CompleteMultipartUpload of an upload completed in the last
        COMPLETED_UPLOAD_RETENTION with the same parts: what the first completion made (its
        conditions are not checked again: they held when it committed). NoSuchUpload for
        any other upload id, or other parts."""
        row = None
        if is_upload_id(upload_id):
            with self.db.query() as conn:
                row = conn.execute(_COMPLETED, {"upload_id": upload_id}).first()
        fresh = row is not None and as_utc(row.completed_at) > utcnow() - _RETENTION
        if (
            row is None
            or not fresh
            or (row.bucket, row.key) != (bucket, key)
            or row.parts_digest != parts_digest(parts)
        ):
            raise NoSuchUpload(upload_id[:128])
        return CompletedUpload(bucket=bucket, key=key, etag=row.etag, version_id=row.version_id)

    def abort(self, upload: Upload) -> None:
        def tx(conn: Connection) -> None:
            self.tx.lock_bucket(conn, upload.bucket)  # the bucket first, as every writer
            _lock_upload(conn, upload.upload_id)
            blobs = conn.execute(
                sa.select(multipart_parts.c.blob).where(multipart_parts.c.upload_id == upload.upload_id)
            ).scalars()
            self.tx.retire(conn, list(blobs))
            _drop_upload(conn, upload, self.tx.delta(conn))

        self.tx.run(tx)

    def list(
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
        list_objects, each skipped with one index seek."""
        self.buckets.get(bucket)
        max_uploads = page_size("max_uploads", max_uploads)
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
