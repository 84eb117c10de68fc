"""ListObjectVersions in the storage core (no HTTP): every page sequence agrees with a
brute-force model of random histories, and a page costs a bounded number of statements
however many versions the bucket holds."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffer.s3.errors import from_storage
from coffer.storage.errors import StorageError
from coffer.storage.models import VersionListing
from tests.support.storage import Env, SQLCounter

KEYS = ["a", "a/b", "a/c", "ab", "b", "b/x/y", "é", "中/1"]
Entry = tuple[str, str]  # (key, version id) or (common prefix, "")


def _bucket(env: Env) -> str:
    name = "v-" + secrets.token_hex(6)
    env.storage.buckets.create(org_id=env.org, owner="coreweave/alice", name=name, zone=None)
    return name


def _apply(env: Env, bucket: str, steps: list[tuple[str, str, int]]) -> dict[str, list[str]]:
    """Run a history (put / delete / delete one version / suspend / enable) and keep an
    independent model of it: each key's version ids, oldest first."""
    model: dict[str, list[str]] = {}
    versioning = "Enabled"

    def add(key: str, version: str) -> None:
        ids = model.setdefault(key, [])
        if version == "null" and "null" in ids:
            ids.remove("null")
        ids.append(version)

    for op, key, pick in steps:
        if op == "put":
            add(key, env.put(bucket, key, f"{key}{pick}".encode()).version_id)
        elif op == "delete":
            result = env.storage.objects.delete(bucket, key)
            assert result.delete_marker and result.version_id
            add(key, result.version_id)
        elif op == "drop":
            ids = model.get(key, [])
            if ids:
                env.storage.objects.delete(bucket, key, ids.pop(pick % len(ids)))
        else:
            versioning = op
            env.storage.buckets.update(bucket, versioning=op)
    assert versioning in ("Enabled", "Suspended")
    return model


def _model(model: dict[str, list[str]], prefix: str, delimiter: str) -> list[Entry]:
    """The reference order: keys by UTF-8 bytes, each key's versions newest first, rolled up."""
    out: list[Entry] = []
    for key in sorted(model, key=lambda k: k.encode()):
        if not key.startswith(prefix) or not model[key]:
            continue
        cut = key.find(delimiter, len(prefix)) if delimiter else -1
        if cut >= 0:
            common = (key[: cut + len(delimiter)], "")
            if common not in out:
                out.append(common)
            continue
        out += [(key, version) for version in reversed(model[key])]
    return out


def _walk(env: Env, bucket: str, size: int, prefix: str, delimiter: str) -> list[Entry]:
    seen: list[Entry] = []
    key_marker = version_marker = ""
    for _ in range(500):
        page: VersionListing = env.storage.objects.list_versions(
            bucket, prefix=prefix, delimiter=delimiter, key_marker=key_marker,
            version_id_marker=version_marker, max_keys=size,
        )  # fmt: skip
        entries = [(v.key, v.version_id) for v in page.versions] + [(p, "") for p in page.common_prefixes]
        assert len(entries) <= size
        seen += sorted(entries, key=lambda e: (e[0].encode(), 0))
        if not page.is_truncated:
            assert page.next_key_marker is None and page.next_version_id_marker is None
            return seen
        assert page.next_key_marker is not None
        key_marker, version_marker = page.next_key_marker, page.next_version_id_marker or ""
    raise AssertionError("paging did not end")


STEP = st.one_of(
    st.tuples(
        st.sampled_from(["put", "put", "put", "delete", "drop"]), st.sampled_from(KEYS), st.integers(0, 5)
    ),
    st.tuples(st.sampled_from(["Suspended", "Enabled"]), st.just(""), st.just(0)),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(STEP, min_size=1, max_size=25),
    prefix=st.sampled_from(["", "a", "a/", "b/", "中"]),
    delimiter=st.sampled_from(["", "/"]),
    size=st.integers(1, 4),
)
def test_pages_agree_with_the_model(
    env: Env,
    steps: list[tuple[str, str, int]],
    prefix: str,
    delimiter: str,
    size: int,
) -> None:
    bucket = _bucket(env)
    env.storage.buckets.update(bucket, versioning="Enabled")
    model = _apply(env, bucket, steps)
    assert _walk(env, bucket, size, prefix, delimiter) == _model(model, prefix, delimiter)
    # The newest version of each key, and only it, is the latest.
    latest = {v.key: v.version_id for v in env.storage.objects.list_versions(bucket).versions if v.is_latest}
    assert latest == {k: ids[-1] for k, ids in model.items() if ids}


def test_latest_flags_follow_deletes(env: Env) -> None:
    bucket = _bucket(env)
    env.storage.buckets.update(bucket, versioning="Enabled")
    first = env.put(bucket, "k", b"1").version_id
    second = env.put(bucket, "k", b"2").version_id
    env.storage.objects.delete(bucket, "k", second)
    page = env.storage.objects.list_versions(bucket)
    assert [(v.version_id, v.is_latest) for v in page.versions] == [(first, True)]


def test_a_page_costs_a_bounded_number_of_statements(env: Env) -> None:
    bucket = _bucket(env)
    env.storage.buckets.update(bucket, versioning="Enabled")
    for i in range(60):
        env.put(bucket, "hot", str(i).encode())
    for i in range(40):
        env.put(bucket, f"dir{i % 4}/k{i}", b"x")
    env.storage.buckets.get(bucket)  # warm the bucket cache, as a server is
    with SQLCounter(env.db) as count:
        page = env.storage.objects.list_versions(bucket, max_keys=10)
    assert len(page.versions) == 10 and page.is_truncated
    assert len(count.selects()) == 1
    with SQLCounter(env.db) as count:
        marker = page.next_version_id_marker or ""
        env.storage.objects.list_versions(bucket, key_marker="hot", version_id_marker=marker, max_keys=10)
    assert len(count.selects()) <= 3  # the marker's seq, the rest of its key, then the next keys
    with SQLCounter(env.db) as count:
        rolled = env.storage.objects.list_versions(bucket, delimiter="/", max_keys=1000)
    assert rolled.common_prefixes == ["dir0/", "dir1/", "dir2/", "dir3/"] and len(rolled.versions) == 60
    assert len(count.selects()) <= 1 + 4  # one seek past each common prefix


def test_marker_errors(env: Env) -> None:
    bucket = _bucket(env)
    with pytest.raises(StorageError) as err:
        env.storage.objects.list_versions(bucket, version_id_marker="0" * 32)
    assert from_storage(err.value).code == "InvalidArgument"
    with pytest.raises(StorageError) as err:
        env.storage.objects.list_versions(bucket, key_marker="a", version_id_marker="nope")
    assert from_storage(err.value).code == "InvalidArgument"
    with pytest.raises(StorageError) as err:
        env.storage.objects.list_versions("no-such-" + secrets.token_hex(4))
    assert from_storage(err.value).code == "NoSuchBucket"


def test_vanished_version_marker_resumes_after_its_key(env: Env) -> None:
    bucket = _bucket(env)
    env.storage.buckets.update(bucket, versioning="Enabled")
    versions = [env.put(bucket, "a", b"x").version_id for _ in range(3)]
    env.put(bucket, "b", b"y")
    env.storage.objects.delete(bucket, "a", versions[1])
    page: Any = env.storage.objects.list_versions(bucket, key_marker="a", version_id_marker=versions[1])
    assert [v.key for v in page.versions] == ["b"]
