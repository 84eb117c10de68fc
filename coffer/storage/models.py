"""Typed records of the storage domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

NULL_VERSION = "null"


@dataclass(frozen=True)
class Bucket:
    name: str
    org_id: str
    owner_principal: str
    zone: str
    created_at: datetime
    versioning: str = ""  # "" (never enabled) | "Enabled" | "Suspended"
    policy: str | None = None
    tags: dict[str, str] | None = None
    cors: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PartRef:
    """One stored piece of an object's body: a blob, in order."""

    blob: str
    size: int
    etag: str = ""
    checksums: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectVersion:
    bucket: str
    key: str
    version_id: str
    seq: int
    is_latest: bool
    is_delete_marker: bool
    size: int
    etag: str  # quoted, as S3 returns it
    last_modified: datetime
    owner_principal: str
    storage_class: str
    headers: dict[str, str]  # content-type, content-encoding, ..., x-amz-meta-*
    checksums: dict[str, str]  # {"CRC32C": base64, ...}; "type": FULL_OBJECT|COMPOSITE
    parts: list[PartRef]
    tags: dict[str, str] | None = None
    # {"owner": canonical id, "grants": [...]} (coffer.policy.acl.Acl) when written with ACLs
    # on; None: written with ACLs off (the bucket owner's, private).
    acl: dict[str, Any] | None = None

    @property
    def parts_count(self) -> int | None:
        """Multipart objects report their part count; single-part ones do not."""
        return len(self.parts) if "-" in self.etag else None


@dataclass(frozen=True)
class BlobInfo:
    """A blob that is durable on disk and published under its id."""

    blob: str
    size: int
    digests: dict[str, bytes]  # algorithm name -> raw digest (md5, sha256, crc32c, ...)


@dataclass(frozen=True)
class Upload:
    upload_id: str
    bucket: str
    key: str
    initiated: datetime
    owner_principal: str
    storage_class: str
    headers: dict[str, str]
    checksum_algorithm: str | None
    checksum_type: str | None
    tags: dict[str, str] | None = None
    # What the completed object gets: {"owner": ...} alone (ACLs off) or a whole ACL; None for
    # uploads created before ownership was recorded (the initiator owns the object).
    acl: dict[str, Any] | None = None


@dataclass(frozen=True)
class Part:
    part_number: int
    blob: str
    size: int
    etag: str  # quoted
    checksums: dict[str, str]
    last_modified: datetime


@dataclass(frozen=True)
class VersionState:
    """What a rule decides a version's fate on (`Objects.scan_versions`, `Objects.delete_if`):
    a key's versions come newest first, exactly one of them `is_latest`."""

    key: str
    version_id: str
    is_latest: bool
    is_delete_marker: bool
    last_modified: datetime
    size: int
    tags: dict[str, str] | None


@dataclass(frozen=True)
class ListedObject:
    key: str
    last_modified: datetime
    etag: str
    size: int
    storage_class: str
    owner_principal: str
    checksum_algorithm: str | None = None


@dataclass(frozen=True)
class ObjectListing:
    """One page of ListObjects / ListObjectsV2. Keys are raw (not URL-encoded)."""

    contents: list[ListedObject]
    common_prefixes: list[str]
    is_truncated: bool
    next_marker: str | None  # the last key or prefix returned, when truncated


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


@dataclass(frozen=True, kw_only=True)
class ListedVersion(ListedObject):
    """One entry of ListObjectVersions: an object version or a delete marker."""

    version_id: str
    is_latest: bool
    is_delete_marker: bool
    checksum_type: str | None = None


@dataclass(frozen=True)
class VersionListing:
    """One page of ListObjectVersions, in S3 order: keys ascending, each key's versions
    newest first; common prefixes in key order among them. Keys are raw."""

    versions: list[ListedVersion]
    common_prefixes: list[str]
    is_truncated: bool
    next_key_marker: str | None
    next_version_id_marker: str | None
