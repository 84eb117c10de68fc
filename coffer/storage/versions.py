"""ListObjectVersions in S3 order at O(page) cost.

Order: keys ascending (UTF-8 bytes, as every listing), and the versions of one key
newest first, delete markers among them. Versions of a key are ordered by `seq`, which
every write of the key increments, so "newest first" is `seq DESC`: the (bucket, key,
seq) index serves it, and both dialects sort only the versions of the key at the page's
edge (SQLite's "temp B-tree for right part of ORDER BY", PostgreSQL's incremental sort),
never the bucket.

A page resumes from (key-marker, version-id-marker): the marker version's `seq` is looked
up once, then the rest of that key is read (`seq` below it) before the next keys. The
page is walked by `listing.walk`, as every listing: with a delimiter, a run of common
prefixes is one skip-scan (one index seek per prefix, so the versions under it are never
read) and the keys between runs are range reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coffer.storage.listing import Cursor, Scope, skip_scan, walk
from coffer.storage.models import ListedVersion, VersionListing, VersionState
from coffer.storage.rows import OBJECT_LISTING_COLUMNS, checksum_algorithm, from_row, latest_only
from coffer.storage.rules import successor
from coffer.store.schema import objects

# A ListedVersion is a ListedObject with the version's own columns.
_COLUMNS = (
    *OBJECT_LISTING_COLUMNS,
    objects.c.version_id,
    objects.c.seq,
    objects.c.is_latest,
    objects.c.is_delete_marker,
)


def marker_seq(conn: Connection, bucket: str, key: str, version_id: str) -> int | None:
    """The sequence number of one version, or None if it no longer exists."""
    seq = conn.execute(
        sa.select(objects.c.seq).where(
            objects.c.bucket == bucket, objects.c.key == key, objects.c.version_id == version_id
        )
    ).scalar()
    return int(seq) if seq is not None else None


def list_versions(
    conn: Connection,
    bucket: str,
    *,
    prefix: str,
    delimiter: str,
    key_marker: str,
    version_id_marker: str,
    max_keys: int,
) -> VersionListing:
    """One page (max_keys already validated, ≥ 1). A version-id marker that no longer
    exists (deleted since the previous page) resumes after the whole key-marker key."""
    upper = successor(prefix) if prefix else None
    o = objects.c

    def in_range(key: str) -> bool:
        return upper is None or key < upper

    def fetch(cursor: Cursor, n: int) -> Sequence[Any]:
        rows: list[Any] = []
        if cursor.below_seq is not None:
            if cursor.low.startswith(prefix) and in_range(cursor.low):
                rows = list(
                    conn.execute(
                        sa.select(*_COLUMNS)
                        .where(o.bucket == bucket, o.key == cursor.low, o.seq < cursor.below_seq)
                        .order_by(o.seq.desc())
                        .limit(n)
                    ).all()
                )
            if len(rows) >= n:
                return rows
            position = o.key > cursor.low
        else:
            position = o.key >= cursor.low if cursor.inclusive else o.key > cursor.low
        if not in_range(cursor.low):
            return rows
        query = sa.select(*_COLUMNS).where(o.bucket == bucket, position)
        if upper is not None:
            query = query.where(o.key < upper)
        rows += conn.execute(query.order_by(o.key, o.seq.desc()).limit(n - len(rows))).all()
        return rows

    if prefix > key_marker:
        start = Cursor(prefix, inclusive=True)
    elif version_id_marker:
        seq = marker_seq(conn, bucket, key_marker, version_id_marker)
        start = Cursor(key_marker, below_seq=seq) if seq is not None else Cursor(key_marker)
    else:
        start = Cursor(key_marker, inclusive=not key_marker)
    scope = Scope(prefix, delimiter, key_marker, max_keys)
    skip = skip_scan(conn, o.key, (o.bucket == bucket,), scope)
    entries, truncated = walk(
        fetch, start, scope, skip=skip, after=lambda row: Cursor(row.key, below_seq=row.seq)
    )
    versions = [
        from_row(
            ListedVersion,
            row,
            checksum_algorithm=checksum_algorithm(row.checksums),
            checksum_type=(row.checksums or {}).get("type"),
        )
        for row in entries
        if not isinstance(row, str)
    ]
    last = entries[-1] if truncated and entries else None
    return VersionListing(
        versions=versions,
        common_prefixes=[e for e in entries if isinstance(e, str)],
        is_truncated=truncated,
        next_key_marker=None if last is None else (last if isinstance(last, str) else last.key),
        next_version_id_marker=None if last is None or isinstance(last, str) else last.version_id,
    )


_STATE_COLUMNS = (
    objects.c.key,
    objects.c.version_id,
    objects.c.is_latest,
    objects.c.is_delete_marker,
    objects.c.last_modified,
    objects.c.size,
    objects.c.tags,
)


def _states(rows: Sequence[Any]) -> list[VersionState]:
    return [from_row(VersionState, row) for row in rows]


_KEY_STATES = (  # built once: it runs for every deletion a lifecycle rule makes
    sa.select(*_STATE_COLUMNS)
    .where(objects.c.bucket == sa.bindparam("bucket"), objects.c.key == sa.bindparam("key"))
    .order_by(objects.c.seq.desc())
)


def key_states(conn: Connection, bucket: str, key: str) -> list[VersionState]:
    """Every version of one key, newest first."""
    return _states(conn.execute(_KEY_STATES, {"bucket": bucket, "key": key}).all())


def scan_states(conn: Connection, bucket: str, after: str, keys: int) -> list[VersionState]:
    """Every version of the next `keys` keys after `after`, keys ascending and each key
    newest first: one seek on the latest-version index for the page's last key, then one
    range read. Memory is the page's versions, never the bucket's."""
    o = objects.c
    page = (
        sa.select(o.key).where(o.bucket == bucket, o.key > after, latest_only()).order_by(o.key).limit(keys)
    ).subquery()
    last = conn.execute(sa.select(sa.func.max(page.c.key))).scalar()
    if last is None:
        return []
    query = (
        sa.select(*_STATE_COLUMNS)
        .where(o.bucket == bucket, o.key > after, o.key <= last)
        .order_by(o.key, o.seq.desc())
    )
    return _states(conn.execute(query).all())
