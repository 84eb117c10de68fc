"""Listing in S3 order at O(page) cost: ListObjects(V2) and ListMultipartUploads here,
ListObjectVersions (`versions.py`) through the same `walk`.

Keys are compared as UTF-8 bytes on both dialects (BINARY in SQLite, COLLATE "C" on
PostgreSQL), which is also Python's code-point order. Rows are read in key order from an
index, at most one page (+1 to detect truncation) per query.

With a delimiter, the keys under a common prefix must not be read, however many there
are. A range read cannot stop at a prefix's end, and one query per prefix costs a round
trip each (100 prefixes: 100 statements). So a delimiter page is one recursive query that
skip-scans the index (`skip_steps`): each step seeks the first key at or after the
previous step's successor — the key itself, or its common prefix's `successor` when it
rolls up — so the database reads one index entry per prefix and per key on the page, and
the page costs O(page + prefixes) rows in one statement (decision 0195).
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


@dataclass(frozen=True)
class Scope:
    """What one page lists: keys under `prefix`, rolled up at `delimiter`, after `marker`,
    at most `limit` entries."""

    prefix: str
    delimiter: str
    marker: str
    limit: int

    @property
    def upper(self) -> str | None:
        """The exclusive upper bound of the prefix's keys (None: no bound)."""
        return successor(self.prefix) if self.prefix else None


Fetch = Callable[[Cursor, int], Sequence[Any]]
# The keys of a skip-scan from the cursor, at most n: common prefixes' first keys, then
# the first key that does not roll up, if any; and whether the range is exhausted.
Skip = Callable[[Cursor, int], tuple[Sequence[str], bool]]

# With a delimiter, range reads start this small and grow this much while their rows do
# not roll up: a run of k plain keys costs O(log k) statements and reads < 8k + 16 rows,
# and the rows read past a prefix's first key, wasted, are < 16 per run of prefixes.
FIRST_READ = 16
GROWTH = 8


def walk(
    fetch: Fetch,
    start: Cursor,
    scope: Scope,
    *,
    skip: Skip | None = None,
    after: Callable[[Any], Cursor] | None = None,
) -> tuple[list[Any], bool]:
    """Rows (and common-prefix strings) in key order from `start`, at most `limit`, and
    whether more remain. `fetch(cursor, n)` returns up to n rows (with `.key`, and
    `.upload_id` for uploads) at or after the cursor, under `prefix`, in key order.

    With a delimiter and a `skip` (with `after(row)`, the cursor just past a row), range
    reads alternate with skip-scans: a range read that meets a key that rolls up hands
    over to a skip-scan from the prefix's successor, which runs through the consecutive
    prefixes and hands back at the first plain key. Without them, every read asks for the
    rest of the page and a roll-up seeks past its prefix with the next read.

    A common prefix at or before `marker` was listed on an earlier page (or the marker
    points inside it): it is skipped, never repeated."""
    prefix, delimiter, marker, limit = scope.prefix, scope.delimiter, scope.marker, scope.limit
    entries: list[Any] = []
    adaptive = bool(delimiter) and skip is not None and after is not None
    reads = FIRST_READ

    def rollup(key: str) -> str | None:
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        return key[: cut + len(delimiter)] if cut >= 0 else None

    def add(entry: Any) -> bool:
        """Whether the page was already full (so more remain)."""
        if not isinstance(entry, str) or entry > marker:
            if len(entries) == limit:
                return True
            entries.append(entry)
        return False

    cursor = start
    while True:
        want = limit - len(entries) + 1
        n = min(want, reads) if adaptive else want
        rows = fetch(cursor, n)
        seek: Cursor | None = None
        for row in rows:
            common = rollup(row.key)
            if add(row if common is None else common):
                return entries, True
            if common is None:
                continue
            upper = successor(common)
            if upper is None:  # nothing sorts after this prefix
                return entries, False
            seek = Cursor(upper, True)
            break
        if seek is None:
            if len(rows) < n:
                return entries, False  # the range is exhausted
            assert after is not None  # a full read leaves the page short only when adaptive
            cursor, reads = after(rows[-1]), reads * GROWTH
            continue
        if not adaptive:
            cursor = seek
            continue
        assert skip is not None
        while True:  # skip-scans through consecutive common prefixes
            # Every prefix from here sorts after the marker: only the first key read after
            # it can roll up into a prefix the marker points into, and add() skipped that.
            keys, exhausted = skip(seek, limit - len(entries) + 1)
            plain = None
            offset, width = len(prefix), len(delimiter)
            for key in keys:  # rollup() and add() inlined: a page may hold 1,000 prefixes
                cut = key.find(delimiter, offset)
                if cut < 0:
                    plain = key
                    break
                if len(entries) == limit:
                    return entries, True
                entries.append(key[: cut + width])
            if plain is not None:
                cursor, reads = Cursor(plain, True), FIRST_READ
                break
            last = rollup(keys[-1]) if keys else None
            upper = successor(last) if last is not None else None
            if exhausted or upper is None:
                return entries, False
            seek = Cursor(upper, True)


def skip_scan(
    conn: Connection, key: sa.ColumnElement[str], where: Sequence[sa.ColumnElement[bool]], scope: Scope
) -> Skip | None:
    """A `Skip` over the rows `where` selects: one recursive query whose every step is one
    index seek, to the key at or after the previous step's common prefix's successor (the
    prefix minus its last character, plus that character bumped: a constant, as the prefix
    ends with the delimiter). The recursion stops at the first key that does not roll up,
    or after n steps. None when no skip-scan serves the listing (no delimiter, or one that
    ends in U+10FFFF, whose bump is no single character)."""
    prefix, delimiter, upper = scope.prefix, scope.delimiter, scope.upper
    bump = successor(delimiter[-1]) if delimiter else None
    if bump is None or len(bump) != 1:
        return None
    find = sa.func.strpos if conn.dialect.name == "postgresql" else sa.func.instr

    def first(position: sa.ColumnElement[bool]) -> sa.ScalarSelect[Any]:
        query = sa.select(key).where(*where, position)
        if upper is not None:
            query = query.where(key < upper)
        return query.order_by(key).limit(1).scalar_subquery()

    def skip(cursor: Cursor, n: int) -> tuple[Sequence[str], bool]:
        seed = sa.select(sa.literal(1, sa.Integer).label("n"), first(_position(key, cursor)).label("k"))
        steps = seed.cte("steps", recursive=True)
        w = steps.alias("w")
        cut = find(sa.func.substr(w.c.k, len(prefix) + 1), delimiter)
        successor_of_prefix = sa.func.substr(w.c.k, 1, cut + (len(prefix) + len(delimiter) - 2)).concat(bump)
        steps = steps.union_all(
            sa.select(w.c.n + 1, first(key >= successor_of_prefix)).where(cut > 0, w.c.n < n)
        )
        query = sa.select(steps.c.k).where(steps.c.k.is_not(None)).order_by(steps.c.n)
        keys = conn.execute(query).scalars().all()
        # fewer than n keys, the last rolling up: the recursion ended on the range's end
        return keys, len(keys) < n and (not keys or keys[-1].find(delimiter, len(prefix)) >= 0)

    return skip


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

    where = (objects.c.bucket == bucket, latest_only(), objects.c.is_delete_marker == sa.false())

    scope = Scope(prefix, delimiter, after, max_keys)
    skip = skip_scan(conn, objects.c.key, where, scope)
    entries, truncated = walk(
        fetch, _start(prefix, after), scope, skip=skip, after=lambda row: Cursor(row.key)
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
    scope = Scope(prefix, delimiter, key_marker, max_uploads)
    skip = skip_scan(conn, u.key, (u.bucket == bucket,), scope)
    entries, truncated = walk(
        fetch,
        _start(prefix, key_marker, after_id),
        scope,
        skip=skip,
        after=lambda row: Cursor(row.key, after_id=row.upload_id),
    )
    last = entries[-1] if truncated and entries else None
    return UploadListing(
        uploads=[upload_from_row(e) for e in entries if not isinstance(e, str)],
        common_prefixes=[e for e in entries if isinstance(e, str)],
        is_truncated=truncated,
        next_key_marker=None if last is None else (last if isinstance(last, str) else last.key),
        next_upload_id_marker=None if last is None or isinstance(last, str) else last.upload_id,
    )
