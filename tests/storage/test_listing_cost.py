"""Delimiter listings at O(page + prefixes): ListObjects, ListObjectVersions and
ListMultipartUploads against a naive model (markers anywhere, inside rolled-up prefixes
too), the rows and statements a page costs (counted, never timed), and the plans of the
skip-scan's seeks, on both backends."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffer.storage import listing, versions
from coffer.store.schema import multipart_uploads, objects
from tests.support.storage import Env, SQLCounter, version_row

ALPHABET = ["a", "b", "/", "é", "😀", "-"]
keys_st = st.lists(st.text(st.sampled_from(ALPHABET), min_size=1, max_size=5), max_size=25, unique=True)
prefix_st = st.text(st.sampled_from(ALPHABET), max_size=2)
delimiter_st = st.sampled_from(["/", "é", "😀", "a/", "//", ""])
marker_st = st.text(st.sampled_from(ALPHABET), max_size=5)
EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _utf8(s: str) -> bytes:
    return s.encode()


def _rollup(key: str, prefix: str, delimiter: str) -> str | None:
    cut = key.find(delimiter, len(prefix)) if delimiter else -1
    return key[: cut + len(delimiter)] if cut >= 0 else None


def _new_bucket(env: Env) -> str:
    name = "c-" + secrets.token_hex(6)
    env.storage.buckets.create(org_id=env.org, owner="coreweave/alice", name=name, zone=None)
    return name


def _model(
    items: Sequence[tuple[str, Any]], prefix: str, delimiter: str, after: Callable[[str, Any], bool]
) -> list[tuple[str, Any]]:
    """S3's answer from items in listing order: (key, id) of every row under the prefix
    that `after` admits, and once in place of the rows under it each common prefix that
    sorts after the marker (a marker inside a prefix means the prefix was listed)."""
    out: list[tuple[str, Any]] = []
    for key, ident in items:
        if not key.startswith(prefix):
            continue
        common = _rollup(key, prefix, delimiter)
        if common is None:
            if after(key, ident):
                out.append((key, ident))
        elif after(common, None) and (not out or out[-1] != ("P", common)):
            out.append(("P", common))
    return out


# ---- ListObjects ---------------------------------------------------------------------


def _object_pages(env: Env, bucket: str, prefix: str, delimiter: str, after: str, size: int) -> list[Any]:
    got: list[Any] = []
    while True:
        page = env.storage.objects.list(
            bucket, prefix=prefix, delimiter=delimiter, after=after, max_keys=size
        )
        entries = [(o.key, None) for o in page.contents] + [("P", p) for p in page.common_prefixes]
        assert 0 < len(entries) <= size or (not entries and not page.is_truncated)
        got += sorted(entries, key=lambda e: _utf8(e[1] if e[0] == "P" else e[0]))
        if not page.is_truncated:
            return got
        assert page.next_marker is not None and page.next_marker > after
        after = page.next_marker


@EXAMPLES
@given(
    keys=keys_st, hidden=keys_st, prefix=prefix_st, delimiter=delimiter_st, marker=marker_st, data=st.data()
)
def test_objects_match_the_model(
    env: Env,
    keys: list[str],
    hidden: list[str],
    prefix: str,
    delimiter: str,
    marker: str,
    data: st.DataObject,
) -> None:
    bucket = _new_bucket(env)
    gone = [k for k in hidden if k not in keys]  # latest is a delete marker: never listed
    rows = [version_row(bucket, k, "null", 1) for k in keys]
    rows += [version_row(bucket, k, "v1", 1, is_latest=False, seq=1) for k in gone]
    rows += [version_row(bucket, k, "v2", 0, is_delete_marker=True, seq=2) for k in gone]
    if rows:
        with env.db.write() as conn:
            conn.execute(objects.insert(), rows)
    if data.draw(st.booleans()):  # start-after inside a rolled-up prefix, or at a key
        marker = data.draw(st.sampled_from(keys)) if keys else marker
    items = [(k, None) for k in sorted(keys, key=_utf8)]
    want = _model(items, prefix, delimiter, lambda k, _: k > marker)
    for size in (1, 2, 1000):
        assert _object_pages(env, bucket, prefix, delimiter, marker, size) == want, size


def test_delimiter_ending_in_the_last_code_point(env: Env, bucket: str) -> None:
    """U+10FFFF has no one-character successor, so no skip-scan: range reads, same answer."""
    top = "\U0010ffff"
    keys = [f"a{top}1", f"a{top}2", "b", f"c{top}", f"c{top}x", "d"]
    _seed_objects(env, bucket, keys)
    items = [(k, None) for k in sorted(keys, key=_utf8)]
    for marker in ("", "a", f"a{top}1", f"c{top}"):
        want = _model(items, "", top, lambda k, _, m=marker: k > m)
        assert _object_pages(env, bucket, "", top, marker, 1) == want, marker
    assert want == [("d", None)]


# ---- ListObjectVersions --------------------------------------------------------------


Page = tuple[list[tuple[str, Any]], bool, str | None, str | None]


def _paged(page: Callable[[str, str], Page], key_marker: str, id_marker: str, size: int) -> list[Any]:
    """Every entry from (key marker, id marker) on, page after page: a page's (key, id) rows
    and ("P", prefix) entries, whether it is truncated, and its next markers."""
    got: list[Any] = []
    while True:
        entries, truncated, next_key, next_id = page(key_marker, id_marker)
        assert len(entries) <= size
        # the rows of one key stay in page order; prefixes go in by key
        by_key = sorted(range(len(entries)), key=lambda i: (_utf8(_entry_key(entries[i])), i))
        got += [entries[i] for i in by_key]
        if not truncated:
            return got
        assert next_key is not None and (next_key, next_id or "") != (key_marker, id_marker)  # progress
        assert len(got) < 1000, "pages repeat"
        key_marker, id_marker = next_key, next_id or ""


def _lister(
    env: Env, bucket: str, kind: str, prefix: str, delimiter: str, size: int
) -> Callable[[str, str], Page]:
    """Pages of ListObjectVersions or ListMultipartUploads, as `_paged` reads them."""

    def page(key_marker: str, id_marker: str) -> Page:
        if kind == "versions":
            got: Any = env.storage.objects.list_versions(
                bucket,
                prefix=prefix,
                delimiter=delimiter,
                key_marker=key_marker,
                version_id_marker=id_marker,
                max_keys=size,
            )
            rows = [(v.key, v.version_id) for v in got.versions]
            next_id = got.next_version_id_marker
        else:
            got = env.storage.uploads.list(
                bucket,
                prefix=prefix,
                delimiter=delimiter,
                key_marker=key_marker,
                upload_id_marker=id_marker,
                max_uploads=size,
            )
            rows, next_id = [(u.key, u.upload_id) for u in got.uploads], got.next_upload_id_marker
        return rows + [("P", p) for p in got.common_prefixes], got.is_truncated, got.next_key_marker, next_id

    return page


@dataclass(frozen=True)
class Case:
    keys: list[str]
    counts: list[int]  # rows (versions, uploads) of each key
    prefix: str
    delimiter: str
    marker: str


cases = st.builds(
    Case,
    keys=keys_st,
    counts=st.lists(st.integers(1, 4), min_size=25, max_size=25),
    prefix=prefix_st,
    delimiter=delimiter_st,
    marker=marker_st,
)


def _entry_key(entry: tuple[str, Any]) -> str:
    return str(entry[1]) if entry[0] == "P" else entry[0]


def _vid(key_index: int, seq: int) -> str:
    return f"{key_index:04d}{seq:04d}" + "0" * 24


@EXAMPLES
@given(case=cases, data=st.data())
def test_versions_match_the_model(env: Env, case: Case, data: st.DataObject) -> None:
    keys, counts, prefix, delimiter, marker = case.keys, case.counts, case.prefix, case.delimiter, case.marker
    bucket = _new_bucket(env)
    rows = []
    for i, key in enumerate(keys):
        for seq in range(1, counts[i] + 1):
            latest = seq == counts[i]
            rows.append(
                version_row(
                    bucket, key, _vid(i, seq), seq, seq=seq, is_latest=latest, is_delete_marker=seq == 3
                )
            )
    if rows:
        with env.db.write() as conn:
            conn.execute(objects.insert(), rows)
    # listing order: keys by UTF-8, each key newest (highest seq) first
    items = [(r["key"], r["version_id"]) for r in sorted(rows, key=lambda r: (_utf8(r["key"]), -r["seq"]))]
    seq_of = {(r["key"], r["version_id"]): r["seq"] for r in rows}
    vid_marker = ""
    if rows and data.draw(st.booleans()):  # resume inside a key's versions (maybe under a prefix)
        marker, vid_marker = data.draw(st.sampled_from(items))
    cut = seq_of.get((marker, vid_marker))

    def after(key: str, vid: Any) -> bool:
        if vid is not None and key == marker and cut is not None:
            return seq_of[(key, vid)] < cut
        return key > marker

    want = _model(items, prefix, delimiter, after)
    for size in (1, 3, 1000):
        page = _lister(env, bucket, "versions", prefix, delimiter, size)
        assert _paged(page, marker, vid_marker, size) == want, size


# ---- ListMultipartUploads ------------------------------------------------------------


def _upload_rows(bucket: str, keys: Sequence[str], counts: Sequence[int]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "upload_id": f"{j:04d}-{i:04d}-" + secrets.token_hex(4),
            "bucket": bucket,
            "key": key,
            "initiated": now + timedelta(seconds=j),
            "owner_principal": "coreweave/alice",
            "storage_class": "STANDARD",
            "headers": {},
        }
        for i, key in enumerate(keys)
        for j in range(counts[i])
    ]


@EXAMPLES
@given(case=cases, data=st.data())
def test_uploads_match_the_model(env: Env, case: Case, data: st.DataObject) -> None:
    keys, counts, prefix, delimiter, marker = case.keys, case.counts, case.prefix, case.delimiter, case.marker
    bucket = _new_bucket(env)
    rows = _upload_rows(bucket, keys, counts)
    if rows:
        with env.db.write() as conn:
            conn.execute(multipart_uploads.insert(), rows)
    items = sorted(((r["key"], r["upload_id"]) for r in rows), key=lambda e: (_utf8(e[0]), e[1]))
    id_marker = ""
    if rows and data.draw(st.booleans()):
        marker, id_marker = data.draw(st.sampled_from(items))

    def after(key: str, upload_id: Any) -> bool:
        if upload_id is not None and key == marker and id_marker:
            return bool(upload_id > id_marker)
        return key > marker

    want = _model(items, prefix, delimiter, after)
    for size in (1, 2, 1000):
        page = _lister(env, bucket, "uploads", prefix, delimiter, size)
        assert _paged(page, marker, id_marker, size) == want, size


# ---- cost: rows read and statements, counted -----------------------------------------


_WALK = listing.walk  # the real one, however many times a test patches it


class Reads:
    """Rows the listing's reads returned (range reads: the rows; skip-scans: the keys,
    one index seek each) and the SELECT statements it ran."""

    def __init__(self) -> None:
        self.rows = 0
        self.statements = 0


@contextmanager
def _counting(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Reads]:
    reads = Reads()

    def counted_walk(fetch: Any, start: Any, scope: Any, **kw: Any) -> Any:
        def counted_fetch(cursor: Any, n: int) -> Any:
            rows = fetch(cursor, n)
            reads.rows += len(rows)
            return rows

        skip = kw.get("skip")
        if skip is not None:

            def counted_skip(cursor: Any, n: int) -> Any:
                keys, exhausted = skip(cursor, n)
                reads.rows += len(keys)
                return keys, exhausted

            kw["skip"] = counted_skip
        return _WALK(counted_fetch, start, scope, **kw)

    monkeypatch.setattr(listing, "walk", counted_walk)
    monkeypatch.setattr(versions, "walk", counted_walk)
    with SQLCounter(env.db) as sql:
        yield reads
    reads.statements = len(sql.statements)


def _tree(prefixes: int, per: int, top: int = 0) -> list[str]:
    keys = [f"p{p:04d}/k{i:06d}" for p in range(prefixes) for i in range(per)]
    return keys + [f"p{p:04d}-top" for p in range(top)]


def _seed_objects(env: Env, bucket: str, keys: list[str]) -> None:
    rows = [version_row(bucket, k, "null", 1) for k in keys]
    with env.db.write() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(objects.insert(), rows[i : i + 5000])


def _root_cost(env: Env, monkeypatch: pytest.MonkeyPatch, per: int, **kw: Any) -> tuple[Reads, Any]:
    bucket = _new_bucket(env)
    _seed_objects(env, bucket, _tree(100, per, top=kw.pop("top", 0)))
    env.storage.buckets.get(bucket)  # the bucket lookup, cached: not counted below
    with _counting(env, monkeypatch) as reads:
        page = env.storage.objects.list(bucket, delimiter="/", **kw)
    return reads, page


def test_root_listing_costs_the_prefixes_not_the_keys(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """100 prefixes of 10 keys and of 100 keys: the same rows and statements (before the
    skip-scan, each prefix read up to a page of its keys: ~100 x 1,001 rows)."""
    small, page = _root_cost(env, monkeypatch, 10)
    assert page.common_prefixes == [f"p{p:04d}/" for p in range(100)] and not page.is_truncated
    big, page = _root_cost(env, monkeypatch, 100)
    assert len(page.common_prefixes) == 100 and not page.contents and not page.is_truncated
    assert (big.rows, big.statements) == (small.rows, small.statements)
    # one range read that meets the first prefix, then one skip-scan through the rest
    assert big.statements == 2
    assert big.rows <= listing.FIRST_READ + 100


def test_page_of_prefixes_and_keys_reads_the_page(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefixes with plain keys between them, a page of 50 out of the middle, a start-after
    inside a rolled-up prefix: rows read stay O(page), however many keys each prefix has."""
    costs = []
    for per in (20, 200):
        reads, page = _root_cost(env, monkeypatch, per, top=100, max_keys=50, after="p0010/k000005")
        assert page.is_truncated and len(page.contents) + len(page.common_prefixes) == 50
        assert (
            page.common_prefixes[0] == "p0011/" and page.contents[0].key == "p0011-top"
        )  # "-" sorts before "/"
        costs.append((reads.rows, reads.statements))
    assert costs[0] == costs[1]
    rows, statements = costs[0]
    # each plain key costs a range read of FIRST_READ rows, each prefix a skip-scan
    assert rows <= 50 * (listing.FIRST_READ + 1) + listing.FIRST_READ
    assert statements <= 2 * 50 + 2


def test_flat_listing_with_delimiter_grows_its_reads(
    env: Env, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key rolls up: range reads grow geometrically, few statements, < 2 pages of rows."""
    _seed_objects(env, bucket, [f"d/k{i:05d}" for i in range(3000)])
    env.storage.buckets.get(bucket)
    with _counting(env, monkeypatch) as reads:
        page = env.storage.objects.list(bucket, prefix="d/", delimiter="/")
    assert len(page.contents) == 1000 and page.is_truncated
    assert reads.statements <= 4 and reads.rows <= 1001 + listing.FIRST_READ * listing.GROWTH
    with _counting(env, monkeypatch) as plain:  # no delimiter: one read of a page, as before
        env.storage.objects.list(bucket, prefix="d/")
    assert (plain.statements, plain.rows) == (1, 1001)


def test_versions_under_prefixes_are_not_read(env: Env, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [
        version_row(bucket, f"p{p:02d}/k{i}", _vid(i, v), 1, seq=v, is_latest=v == 20)
        for p in range(30)
        for i in range(10)
        for v in range(1, 21)
    ] + [version_row(bucket, "top", _vid(0, v), 1, seq=v, is_latest=v == 5) for v in range(1, 6)]
    with env.db.write() as conn:
        conn.execute(objects.insert(), rows)
    env.storage.buckets.get(bucket)
    with _counting(env, monkeypatch) as reads:
        page = env.storage.objects.list_versions(bucket, delimiter="/")
    assert page.common_prefixes == [f"p{p:02d}/" for p in range(30)] and len(page.versions) == 5
    assert reads.rows <= listing.FIRST_READ + 31 + 5 and reads.statements <= 4
    # resuming at a version of a key under a prefix: the prefix was listed, not re-read
    with _counting(env, monkeypatch) as reads:
        page = env.storage.objects.list_versions(
            bucket, delimiter="/", key_marker="p03/k4", version_id_marker=_vid(4, 7)
        )
    assert page.common_prefixes[0] == "p04/" and len(page.common_prefixes) == 26
    assert reads.rows <= 2 * listing.FIRST_READ + 27 + 5 and reads.statements <= 5


def test_uploads_under_prefixes_are_not_read(env: Env, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [f"p{p:02d}/k{i}" for p in range(30) for i in range(20)] + ["top"]
    with env.db.write() as conn:
        conn.execute(multipart_uploads.insert(), _upload_rows(bucket, keys, [3] * len(keys)))
    env.storage.buckets.get(bucket)
    with _counting(env, monkeypatch) as reads:
        page = env.storage.uploads.list(bucket, delimiter="/", max_uploads=10)
    assert page.common_prefixes == [f"p{p:02d}/" for p in range(10)] and page.is_truncated
    assert reads.rows <= listing.FIRST_READ + 12 and reads.statements <= 3


# ---- the skip-scan's seeks use the indexes -------------------------------------------


def _step_plan(env: Env, statement: str, params: Any) -> tuple[str, str]:
    """The whole plan of a skip-scan, and the part that runs per recursive step."""
    with env.db.read() as conn:
        if env.backend == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, tuple(params)).all()
            lines = [str(r[-1]) for r in rows]
            mark = "CORRELATED SCALAR SUBQUERY"
        else:  # tiny tables favour a sequential scan; ask whether the index *can* serve it
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            lines = [r[0] for r in conn.exec_driver_sql("EXPLAIN (ANALYZE) " + statement, params).all()]
            mark = "SubPlan"
    at = next(i for i, line in enumerate(lines) if mark in line)
    return "\n".join(lines), "\n".join(lines[at : at + 4])


@pytest.mark.parametrize(
    ("kind", "index"),
    [("objects", "ix_objects_latest"), ("versions", "objects"), ("uploads", "ix_uploads_bucket_key")],
)
def test_skip_scan_seeks_by_index(env: Env, bucket: str, kind: str, index: str) -> None:
    keys = [f"p{p}/k{i}" for p in range(5) for i in range(5)]
    _seed_objects(env, bucket, keys)
    with env.db.write() as conn:
        conn.execute(multipart_uploads.insert(), _upload_rows(bucket, keys, [1] * len(keys)))
    s = env.storage
    list_page = {
        "objects": lambda: s.objects.list(bucket, delimiter="/"),
        "versions": lambda: s.objects.list_versions(bucket, delimiter="/"),
        "uploads": lambda: s.uploads.list(bucket, delimiter="/"),
    }[kind]
    with SQLCounter(env.db) as sql:
        assert len(list_page().common_prefixes) == 5
    statement, params = next(st for st in sql.statements if "RECURSIVE" in st[0].upper())
    plan, step = _step_plan(env, statement, params)
    assert "INDEX" in step.upper() and index in step and "key" in step, plan
    if env.backend == "sqlite":  # a seek (SEARCH) on the key, never a SCAN of the table
        assert "SEARCH" in step and "SCAN objects" not in plan and "SCAN multipart_uploads" not in plan, plan
    else:
        assert "Index Cond" in step and "Seq Scan" not in plan, plan
