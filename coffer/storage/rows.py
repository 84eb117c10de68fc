"""Rows of the metadata store to and from the storage models, and the column sets the hot
queries read (never SELECT * of a big table where a few columns do)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias

import sqlalchemy as sa
from sqlalchemy.engine import Row

from coffer.storage.models import Bucket, ObjectVersion, Part, PartRef, Upload
from coffer.store.schema import objects

AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"


def as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def part_json(part: PartRef) -> dict[str, Any]:
    entry: dict[str, Any] = {"blob": part.blob, "size": part.size}
    if part.etag:
        entry["etag"] = part.etag
    if part.checksums:
        entry["checksums"] = dict(part.checksums)
    return entry


def parts_from_json(value: Any) -> list[PartRef]:
    return [
        PartRef(
            blob=p["blob"], size=int(p["size"]), etag=p.get("etag", ""), checksums=p.get("checksums") or {}
        )
        for p in value or []
    ]


def blobs_of(parts_json: Any) -> list[str]:
    return [p["blob"] for p in parts_json or [] if p.get("blob")]


def checksum_algorithm(checksums: Mapping[str, str] | None) -> str | None:
    for name in checksums or {}:
        if name != "type":
            return name
    return None


def bucket_from_row(row: AnyRow) -> Bucket:
    return Bucket(
        name=row.name,
        org_id=row.org_id,
        owner_principal=row.owner_principal,
        zone=row.zone,
        created_at=as_utc(row.created_at),
        versioning=row.versioning or "",
        policy=row.policy,
        tags=row.tags,
        cors=row.cors,
        settings=dict(row.settings or {}),
    )


def version_from_row(row: AnyRow) -> ObjectVersion:
    return ObjectVersion(
        bucket=row.bucket,
        key=row.key,
        version_id=row.version_id,
        seq=int(row.seq),
        is_latest=bool(row.is_latest),
        is_delete_marker=bool(row.is_delete_marker),
        size=int(row.size),
        etag=row.etag,
        last_modified=as_utc(row.last_modified),
        owner_principal=row.owner_principal,
        storage_class=row.storage_class,
        headers=dict(row.headers or {}),
        checksums=dict(row.checksums or {}),
        parts=parts_from_json(row.parts),
        tags=row.tags,
        acl=row.acl,
    )


def upload_from_row(row: AnyRow) -> Upload:
    return Upload(
        upload_id=row.upload_id,
        bucket=row.bucket,
        key=row.key,
        initiated=as_utc(row.initiated),
        owner_principal=row.owner_principal,
        storage_class=row.storage_class,
        headers=dict(row.headers or {}),
        checksum_algorithm=row.checksum_algorithm,
        checksum_type=row.checksum_type,
        tags=row.tags,
        acl=row.acl,
    )


def part_from_row(row: AnyRow) -> Part:
    return Part(
        part_number=int(row.part_number),
        blob=row.blob,
        size=int(row.size),
        etag=row.etag,
        checksums=dict(row.checksums or {}),
        last_modified=as_utc(row.last_modified),
    )


def latest_only() -> sa.ColumnElement[bool]:
    # Spelled exactly like the partial index predicate so SQLite's planner can use it.
    return objects.c.is_latest == sa.true()


OBJECT_LISTING_COLUMNS = (
    objects.c.key,
    objects.c.last_modified,
    objects.c.etag,
    objects.c.size,
    objects.c.storage_class,
    objects.c.owner_principal,
    objects.c.checksums,
)


LATEST_COLUMNS = (
    objects.c.version_id,
    objects.c.seq,
    objects.c.etag,
    objects.c.is_delete_marker,
    objects.c.parts,
    objects.c.size,  # size and class: what the version counts for (usage.Delta)
    objects.c.storage_class,
)
