"""Listing in S3 order at O(page) cost: ListObjects(V2) and ListMultipartUploads here,
ListObjectVersions (`versions.py`) through the same `walk`.

Keys are compared as UTF-8 bytes on both dialects (BINARY in SQLite, COLLATE "C" on
PostgreSQL), which is also Python's code-point order. Rows are read in key order from an
index, at most one page (+1 to detect truncation) per query. When a key rolls up into a
common prefix, the next query seeks straight to the prefix's successor, so the keys
under a prefix are never read, however many there are: a page costs at most one
query per common prefix on it, plus one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coffer.storage.models import ListedObject, ObjectListing, UploadListing
from coffer.storage.rows import (
    OBJECT_LISTING_COLUMNS,
    as_utc,
    checksum_algorithm,
    latest_only,
    upload_from_row,
)
from coffer.storage.rules import successor
from coffer.store.schema import multipart_uploads, objects


@dataclass(frozen=True)
class Cursor:
    """Where the next query starts: keys after `low` (from it, if `inclusive`); for
    uploads, `after_id` also admits the rest of key `low` after that upload id; for
    versions, `below_seq` admits first the versions of `low` older than that sequence number."""

    low: str
    inclusive: bool = False
    after_id: str | None = None
    below_seq: int | None = None


Fetch = Callable[[Cursor, int], Sequence[Any]]


def walk(
    fetch: Fetch, start: Cursor, *, prefix: str, delimiter: str, marker: str, limit: int
) -> tuple[list[Any], bool]:
    """Rows (and common-prefix strings) in key order from `start`, at most `limit`, and
    whether more remain. `fetch(cursor, n)` returns up to n rows (with `.key`, and
    `.upload_id` for uploads) at or after the cursor, under `prefix`, in key order.

    A common prefix at or before `marker` was listed on an earlier page (or the marker
    points inside it): it is skipped, never repeated."""
    entries: list[Any] = []
    cursor = start
    while True:
        rows = fetch(cursor, limit - len(entries) + 1)
        seek: Cursor | None = None
        for row in rows:
            key: str = row.key
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            common = key[: cut + len(delimiter)] if cut >= 0 else None
            if common is None or common > marker:
                if len(entries) == limit:
                    return entries, True
                entries.append(row if common is None else common)
            if common is None:
                continue
            upper = successor(common)
            if upper is None:  # nothing sorts after this prefix
                return entries, False
            seek = Cursor(upper, True)
            break
        if seek is None:
            return entries, False  # the range is exhausted
        cursor = seek


def _start(prefix: str, marker: str, after_id: str | None = None) -> Cursor:
    if prefix > marker:
        return Cursor(prefix, True)
    return Cursor(marker, False, after_id)


def _position(key: sa.ColumnElement[str], cursor: Cursor, upload_id: Any = None) -> sa.ColumnElement[bool]:
    if cursor.after_id is not None and upload_id is not None:
        return sa.or_(key > cursor.low, sa.and_(key == cursor.low, upload_id > cursor.after_id))
    return key >= cursor.low if cursor.inclusive else key > cursor.low


# A listing needs only the name of an object's checksum algorithm, not its value: the
# checksums column is read as text and the name found with a regex, instead of decoding a
# JSON document per row (a third of a page's cost). Algorithm names are keys of that
# document; base64 values cannot contain quotes, so only a key can match.
_LISTING_COLUMNS = tuple(
    sa.type_coerce(c, sa.Text).label(c.name) if c.name == "checksums" else c for c in OBJECT_LISTING_COLUMNS
)
if [c.name for c in _LISTING_COLUMNS] != [
    "key",
    "last_modified",
    "etag",
    "size",
    "storage_class",
    "owner_principal",
    "checksums",
]:  # pragma: no cover - a reordering of OBJECT_LISTING_COLUMNS must be mirrored below
    raise ImportError("listing columns out of ListedObject's order")
_ALGORITHM_KEY = re.compile(r'"(CRC32C|CRC32|CRC64NVME|SHA1|SHA256)"\s*:')


def _listed_algorithm(checksums: str | Mapping[str, str] | None) -> str | None:
    if checksums is None or not isinstance(checksums, str):  # PostgreSQL's driver decodes JSON itself
        return checksum_algorithm(checksums)
    found = _ALGORITHM_KEY.search(checksums)
    return found.group(1) if found else None


def list_objects(
    conn: Connection, bucket: str, *, prefix: str, delimiter: str, after: str, max_keys: int
) -> ObjectListing:
    """One page of current, non-deleted versions (max_keys already validated, ≥ 1)."""
    upper = successor(prefix) if prefix else None

    def fetch(cursor: Cursor, n: int) -> Sequence[Any]:
        query = sa.select(*_LISTING_COLUMNS).where(
            objects.c.bucket == bucket,
            latest_only(),
            objects.c.is_delete_marker == sa.false(),
            _position(objects.c.key, cursor),
        )
        if upper is not None:
            if cursor.low >= upper:
                return []
            query = query.where(objects.c.key < upper)
        return conn.execute(query.order_by(objects.c.key).limit(n)).all()

    entries, truncated = walk(
        fetch, _start(prefix, after), prefix=prefix, delimiter=delimiter, marker=after, limit=max_keys
    )
    # Unpacked by position (the columns are in ListedObject's field order, checked at
    # import): reading a thousand rows' fields by name costs twice the whole query.
    contents = [
        ListedObject(key, as_utc(modified), etag, int(size), sclass, owner, _listed_algorithm(sums))
        for key, modified, etag, size, sclass, owner, sums in (e for e in entries if not isinstance(e, str))
    ]
    last = entries[-1] if entries else None
    return ObjectListing(
        contents=contents,
        common_prefixes=[e for e in entries if isinstance(e, str)],
        is_truncated=truncated,
        next_marker=(last if isinstance(last, str) else last.key) if truncated and last is not None else None,
    )


def list_uploads(
    conn: Connection,
    bucket: str,
    *,
    prefix: str,
    delimiter: str,
    key_marker: str,
    upload_id_marker: str,
    max_uploads: int,
) -> UploadListing:
    """One page of in-progress uploads by key, then initiation (upload ids start with
    their creation time). The upload-id marker only counts together with a key marker."""
    u = multipart_uploads.c
    upper = successor(prefix) if prefix else None

    def fetch(cursor: Cursor, n: int) -> Sequence[Any]:
        query = sa.select(multipart_uploads).where(u.bucket == bucket, _position(u.key, cursor, u.upload_id))
        if upper is not None:
            if cursor.low >= upper:
                return []
            query = query.where(u.key < upper)
        return conn.execute(query.order_by(u.key, u.upload_id).limit(n)).all()

    after_id = upload_id_marker if key_marker and upload_id_marker else None
    entries, truncated = walk(
        fetch,
        _start(prefix, key_marker, after_id),
        prefix=prefix,
        delimiter=delimiter,
        marker=key_marker,
        limit=max_uploads,
    )
    last = entries[-1] if truncated and entries else None
    return UploadListing(
        uploads=[upload_from_row(e) for e in entries if not isinstance(e, str)],
        common_prefixes=[e for e in entries if isinstance(e, str)],
        is_truncated=truncated,
        next_key_marker=None if last is None else (last if isinstance(last, str) else last.key),
        next_upload_id_marker=None if last is None or isinstance(last, str) else last.upload_id,
    )
