"""Listing: UTF-8 byte order on both dialects, delimiters, markers, paging, O(page) cost."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coffer.s3.errors import from_storage
from coffer.storage.errors import StorageError
from coffer.storage.models import ObjectListing
from coffer.storage.rules import successor
from coffer.store.schema import objects
from tests.support.storage import Env, SQLCounter, version_row

# Keys whose UTF-8 byte order differs from UTF-16 order and from most locale collations.
UNICODE_KEYS = [
    "A",
    "B",
    "a",
    "a b",
    "a-b",
    "a/b",
    "a0",
    "a_b",
    "z",
    "~",
    "\x7f",
    "é",
    "ø",
    "ǅ",
    "\u0149",
    "Ω",
    "ё",
    "中",
    "\ue000",
    "\uff5e",
    "\ufffd",
    "😀",
    "𝄞",
    "\U0010fffd",
]


def _seed(env: Env, bucket: str, keys: list[str]) -> None:
    """Latest-version rows straight into the table: listing reads metadata only."""
    now = datetime.now(UTC)
    etag = '"d41d8cd98f00b204e9800998ecf8427e"'
    rows = [version_row(bucket, k, "null", len(k), etag=etag, last_modified=now) for k in keys]
    with env.db.write() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(objects.insert(), rows[i : i + 5000])


def _all_pages(env: Env, bucket: str, max_keys: int, **kw: str) -> tuple[list[str], list[str], int]:
    keys: list[str] = []
    prefixes: list[str] = []
    after = kw.pop("after", "")
    pages = 0
    while True:
        page = env.storage.objects.list(bucket, after=after, max_keys=max_keys, **kw)
        pages += 1
        keys += [o.key for o in page.contents]
        prefixes += page.common_prefixes
        assert len(page.contents) + len(page.common_prefixes) <= max_keys
        if not page.is_truncated:
            assert page.next_marker is None
            return keys, prefixes, pages
        assert page.next_marker is not None
        after = page.next_marker


def _expected(keys: list[str], prefix: str = "", delimiter: str = "", after: str = "") -> list[str]:
    """The reference: sort by UTF-8 bytes, roll up, then apply the marker."""
    out: list[str] = []
    for k in sorted(keys, key=lambda s: s.encode()):
        if not k.startswith(prefix):
            continue
        cut = k.find(delimiter, len(prefix)) if delimiter else -1
        entry = k[: cut + len(delimiter)] if cut >= 0 else k
        if entry > after and (not out or out[-1] != entry):
            out.append(entry)
    return out


@given(st.text(min_size=1, max_size=6), st.text(max_size=6))
def test_successor_bounds_exactly_the_prefix(prefix: str, key: str) -> None:
    upper = successor(prefix)
    candidate = prefix + key
    assert candidate >= prefix and (upper is None or candidate < upper)
    inside = key.startswith(prefix)
    assert inside == (key >= prefix and (upper is None or key < upper))
    if upper is not None:
        upper.encode("utf-8")  # always valid UTF-8, so every driver can bind it
        assert upper.encode() > prefix.encode()


def test_successor_edges() -> None:
    assert successor("a/") == "a0"
    assert successor("\ud7ff") == "\ue000"
    assert successor("a\U0010ffff") == "b"
    assert successor("\U0010ffff") is None
    assert successor("é") == "ê"


def test_unicode_order_is_utf8_byte_order(env: Env, bucket: str) -> None:
    _seed(env, bucket, UNICODE_KEYS)
    page = env.storage.objects.list(bucket)
    want = sorted(UNICODE_KEYS, key=lambda s: s.encode())
    assert [o.key for o in page.contents] == want
    assert want.index("\uff5e") < want.index("😀")  # UTF-16 would put the emoji first
    keys, _, pages = _all_pages(env, bucket, 5)
    assert keys == want and pages == 5
    for after in ["a", "a/", "é", "\ufffd", "😀", "\U0010ffff"]:
        got = env.storage.objects.list(bucket, after=after)
        assert [o.key for o in got.contents] == _expected(UNICODE_KEYS, after=after), after


def test_unicode_prefix_and_delimiter(env: Env, bucket: str) -> None:
    keys = ["é/1", "é/2", "éa", "é😀x", "é😀y/z", "ê", "e/é", "x😀y😀z", "x😀w"]
    _seed(env, bucket, keys)
    for prefix, delimiter in [("é", ""), ("é", "/"), ("é", "😀"), ("", "😀"), ("x😀", "😀"), ("", "é")]:
        page = env.storage.objects.list(bucket, prefix=prefix, delimiter=delimiter)
        got = [o.key for o in page.contents] + page.common_prefixes
        assert sorted(got, key=lambda s: s.encode()) == _expected(keys, prefix, delimiter), (
            prefix,
            delimiter,
        )


TREE = (
    [f"photos/{y}/{m:02d}/img{i}.jpg" for y in (2023, 2024) for m in range(1, 13) for i in range(3)]
    + [f"photos/{y}/index.html" for y in (2023, 2024)]
    + ["photos/readme", "photos", "photos//double", "photos/", "/leading", "//", "a/b/c/d/e/f", "a/b/c/d/g"]
    + [f"logs/{i:03d}" for i in range(30)]
)


@pytest.mark.parametrize(
    ("prefix", "delimiter"),
    [
        ("", ""),
        ("", "/"),
        ("photos/", "/"),
        ("photos/2024/", "/"),
        ("photos", "/"),
        ("a/", "/"),
        ("a/b/c/d/", "/"),
        ("photos/20", "/"),
        ("", "//"),
        ("ph", "o"),
        ("nothing", "/"),
        ("logs/", ""),
    ],
)
def test_slash_heavy_tree_pages(env: Env, bucket: str, prefix: str, delimiter: str) -> None:
    _seed(env, bucket, TREE)
    want = _expected(TREE, prefix, delimiter)
    one = env.storage.objects.list(bucket, prefix=prefix, delimiter=delimiter)
    assert _entries(one) == want
    for size in (1, 2, 3, 7, 1000):
        keys, prefixes, pages = _all_pages(env, bucket, size, prefix=prefix, delimiter=delimiter)
        assert sorted(keys + prefixes, key=lambda s: s.encode()) == want
        assert pages == max(1, -(-len(want) // size)), size


def _entries(page: ObjectListing) -> list[str]:
    return sorted([o.key for o in page.contents] + page.common_prefixes, key=lambda s: s.encode())


def test_common_prefix_is_not_repeated_after_marker(env: Env, bucket: str) -> None:
    _seed(env, bucket, ["a/1", "a/2", "b/1", "c"])
    first = env.storage.objects.list(bucket, delimiter="/", max_keys=1)
    assert first.common_prefixes == ["a/"] and first.is_truncated and first.next_marker == "a/"
    second = env.storage.objects.list(bucket, delimiter="/", max_keys=1, after="a/")
    assert second.common_prefixes == ["b/"]
    # start-after inside a prefix: the prefix was (logically) listed already
    inside = env.storage.objects.list(bucket, delimiter="/", after="a/1")
    assert inside.common_prefixes == ["b/"] and [o.key for o in inside.contents] == ["c"]
    # without a delimiter start-after inside the prefix lists the rest of it
    flat = env.storage.objects.list(bucket, after="a/1")
    assert [o.key for o in flat.contents] == ["a/2", "b/1", "c"]


def test_max_keys_edges(env: Env, bucket: str) -> None:
    keys = [f"k{i:04d}" for i in range(1005)]
    _seed(env, bucket, keys)
    s = env.storage
    zero = s.objects.list(bucket, max_keys=0)
    assert zero.contents == [] and not zero.is_truncated and zero.next_marker is None
    one = s.objects.list(bucket, max_keys=1)
    assert [o.key for o in one.contents] == ["k0000"] and one.is_truncated and one.next_marker == "k0000"
    capped = s.objects.list(bucket, max_keys=5000)
    assert len(capped.contents) == 1000 and capped.is_truncated and capped.next_marker == "k0999"
    rest = s.objects.list(bucket, after="k0999", max_keys=1000)
    assert len(rest.contents) == 5 and not rest.is_truncated
    exact = s.objects.list(bucket, after="k0999", max_keys=5)
    assert len(exact.contents) == 5 and not exact.is_truncated  # nothing more: not truncated
    with pytest.raises(ValueError):  # the S3 face validates max-keys; a negative one is a caller's bug
        s.objects.list(bucket, max_keys=-1)


def test_listing_hides_delete_markers_and_old_versions(env: Env, bucket: str) -> None:
    s = env.storage
    s.buckets.update(bucket, versioning="Enabled")
    env.put(bucket, "keep", b"1")
    env.put(bucket, "keep", b"22")
    env.put(bucket, "gone", b"x")
    s.objects.delete(bucket, "gone")
    page = s.objects.list(bucket)
    assert [(o.key, o.size) for o in page.contents] == [("keep", 2)]
    assert page.contents[0].etag.startswith('"') and page.contents[0].owner_principal == "coreweave/alice"


def test_listing_reports_checksum_algorithm(env: Env, bucket: str) -> None:
    env.put(bucket, "c", b"x", checksums={"CRC64NVME": "AAAAAAAAAAA=", "type": "FULL_OBJECT"})
    env.put(bucket, "d", b"x")
    page = env.storage.objects.list(bucket)
    assert [(o.key, o.checksum_algorithm) for o in page.contents] == [("c", "CRC64NVME"), ("d", None)]


def test_missing_bucket(env: Env) -> None:
    with pytest.raises(StorageError) as err:
        env.storage.objects.list("no-such-bucket-" + secrets.token_hex(3))
    assert from_storage(err.value).code == "NoSuchBucket"


def _limits(sql: SQLCounter) -> list[int]:
    """The LIMIT of every listing query (the most rows it may read)."""
    out = []
    for statement, params in sql.selects():
        assert "LIMIT" in statement, statement
        values = list(params.values()) if isinstance(params, dict) else list(params)
        out.append(int(values[-2] if re.search(r"OFFSET", statement) else values[-1]))
    return out


def test_20000_keys_page_with_delimiter_reads_only_the_page(env: Env, bucket: str) -> None:
    # 40 directories of 500 keys each, plus 20 top-level keys between them
    keys = [f"dir{d:02d}/file{i:04d}" for d in range(40) for i in range(500)] + [
        f"dir{d:02d}x" for d in range(20)
    ]
    _seed(env, bucket, keys)
    s = env.storage
    s.buckets.get(bucket)
    with SQLCounter(env.db) as sql:
        page = s.objects.list(bucket, delimiter="/", max_keys=10)
    assert page.common_prefixes[:2] == ["dir00/", "dir00x"] or page.common_prefixes[0] == "dir00/"
    assert _entries(page) == _expected(keys, "", "/")[:10]
    assert page.is_truncated
    limits = _limits(sql)
    assert len(limits) <= 11  # one range seek per rolled-up prefix, plus one
    assert sum(limits) <= 11 * 11  # rows the queries could return: O(page), not O(bucket)

    with SQLCounter(env.db) as sql:
        all_prefixes = s.objects.list(bucket, delimiter="/")
    assert len(all_prefixes.common_prefixes) == 40 and len(all_prefixes.contents) == 20
    assert len(sql.selects()) <= 41 and sum(_limits(sql)) <= 41 * 1001

    with SQLCounter(env.db) as sql:
        deep = s.objects.list(bucket, prefix="dir17/", max_keys=3, after="dir17/file0100")
    assert [o.key for o in deep.contents] == ["dir17/file0101", "dir17/file0102", "dir17/file0103"]
    assert _limits(sql) == [4]


def test_listing_uses_the_latest_index(env: Env, bucket: str) -> None:
    """The partial index's predicate must match the query's, or the planner cannot use it."""
    _seed(env, bucket, [f"k{i}" for i in range(50)])
    with SQLCounter(env.db) as sql:
        env.storage.objects.list(bucket, max_keys=5)
    statement, params = next(s for s in sql.selects() if "FROM objects" in s[0])
    with env.db.read() as conn:
        if env.backend == "sqlite":
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, tuple(params)).all()
        else:  # tiny tables favour a sequential scan; ask whether the index *can* serve it
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = conn.exec_driver_sql("EXPLAIN " + statement, params).all()
    assert any("ix_objects_latest" in str(row) for row in plan), plan
