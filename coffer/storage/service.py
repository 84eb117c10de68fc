"""Storage: the façade the S3 face (and the control plane) call for buckets, objects, uploads.

INTERFACE STUB: the storage work fills this in. All methods are blocking (they run SQL);
faces call them off the event loop. Errors are S3Error values from coffer.errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coffer.storage.blobs import BlobStore
from coffer.storage.models import (
    BlobInfo,
    Bucket,
    ObjectListing,
    ObjectVersion,
    Part,
    Upload,
)
from coffer.store.db import Database


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


class Storage:
    def __init__(self, db: Database, blobs: BlobStore, *, zones: list[str], default_zone: str) -> None:
        raise NotImplementedError

    # buckets ---------------------------------------------------------------------------
    def create_bucket(self, *, org_id: str, owner: str, name: str, zone: str | None) -> Bucket:
        """CoreWeave name rules (InvalidBucketName), zone must be known
        (InvalidLocationConstraint); same name, org and zone again returns the existing
        bucket; same org other zone: BucketAlreadyOwnedByYou; other org: BucketAlreadyExists."""
        raise NotImplementedError

    def get_bucket(self, name: str) -> Bucket:
        """NoSuchBucket if absent. Cached in memory; invalidated on every bucket change."""
        raise NotImplementedError

    def list_buckets(self, org_id: str) -> list[Bucket]:
        raise NotImplementedError

    def delete_bucket(self, name: str) -> None:
        """BucketNotEmpty while any object version or delete marker remains; aborts
        in-progress multipart uploads."""
        raise NotImplementedError

    def update_bucket(self, name: str, **fields: Any) -> Bucket:
        """Set policy / versioning / tags / cors / settings (None clears)."""
        raise NotImplementedError

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
        retired. Key rules: 1..1024 UTF-8 bytes (KeyTooLongError), no NUL."""
        raise NotImplementedError

    def get_object(self, bucket: str, key: str, version_id: str | None = None) -> ObjectVersion:
        """NoSuchKey / NoSuchVersion; the latest being a delete marker is NoSuchKey with
        header x-amz-delete-marker: true (a versioned GET of a marker: MethodNotAllowed)."""
        raise NotImplementedError

    def delete_object(self, bucket: str, key: str, version_id: str | None = None) -> DeleteResult:
        """Idempotent: deleting a missing key succeeds."""
        raise NotImplementedError

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
    ) -> ObjectVersion:
        """Copy bytes and checksums from `source`; `headers` are the destination's."""
        raise NotImplementedError

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
        prefixes up without reading the keys under them."""
        raise NotImplementedError

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
        raise NotImplementedError

    def get_upload(self, bucket: str, key: str, upload_id: str) -> Upload:
        """NoSuchUpload unless the id names an in-progress upload of that bucket and key."""
        raise NotImplementedError

    def put_part(
        self, upload: Upload, part_number: int, blob: BlobInfo, *, etag: str, checksums: dict[str, str]
    ) -> Part:
        """1..10000 (InvalidArgument), at most 5 GiB (EntityTooLarge); replaces a part."""
        raise NotImplementedError

    def list_parts(self, upload: Upload, *, marker: int = 0, max_parts: int = 1000) -> PartListing:
        raise NotImplementedError

    def complete_upload(
        self, upload: Upload, parts: list[CompletedPart], *, if_none_match: str | None = None
    ) -> ObjectVersion:
        """InvalidPartOrder, InvalidPart (unknown part or ETag mismatch), EntityTooSmall (a
        part other than the last under 5 MiB); ETag "md5-of-md5s-N". The object's parts
        point at the part blobs: nothing is copied."""
        raise NotImplementedError

    def abort_upload(self, upload: Upload) -> None:
        raise NotImplementedError

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
        raise NotImplementedError

    # housekeeping ----------------------------------------------------------------------
    def collect_garbage(self, *, older_than: datetime | None = None) -> int:
        """Unlink retired blobs and stale temp files; returns how many were removed."""
        raise NotImplementedError
