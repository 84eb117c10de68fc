"""Capacity caps in the storage core: what a cap admits and refuses, that nothing refused is
kept, the checks before a body streams, and two racing writers never both fitting."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from coffer.storage import rules
from coffer.storage.bodies import Expect
from coffer.storage.errors import QuotaExceeded
from coffer.storage.models import CompletedPart
from coffer.storage.reserved import SYSTEM_OWNER, audit_bucket_name, system_writes
from tests.support.concurrency import at_once
from tests.support.storage import Env


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules, "MIN_PART_SIZE", 1)


def cap(env: Env, bucket: str, n: int | None) -> None:
    env.storage.settings.update_bucket(bucket, capacity_cap_bytes=n)


def blobs_on_disk(env: Env) -> set[str]:
    return {blob for blob, _ in env.blobs.iter_blobs()}


def refused(env: Env, fn: object, *args: object, **kw: object) -> QuotaExceeded:
    """`fn` raises QuotaExceeded and leaves no new blob on disk."""
    before = blobs_on_disk(env)
    with pytest.raises(QuotaExceeded) as err:
        fn(*args, **kw)  # type: ignore[operator]
    assert blobs_on_disk(env) <= before
    return err.value


def test_a_cap_of_zero_refuses_every_write_but_deletes(env: Env, bucket: str, small_parts: None) -> None:
    s = env.storage
    src = env.put(bucket, "src", b"source")
    up = s.uploads.create(bucket, "mp", owner="p", headers={})
    info = env.blobs.put(b"part", ["md5"])
    p1 = s.uploads.put_part(up, 1, info, etag=info.digests["md5"].hex(), checksums={})
    cap(env, bucket, 0)

    err = refused(env, env.put, bucket, "new", b"x")
    assert (err.scope, err.cap, err.bucket) == ("bucket", 0, bucket)
    assert "0 bytes blocks all new writes" in str(err)
    refused(env, env.put, bucket, "empty", b"")  # even an empty object
    refused(env, s.objects.copy, src, bucket, "copy", headers={}, owner="p")
    refused(env, s.uploads.create, bucket, "mp2", owner="p", headers={})
    info = env.blobs.put(b"part-2", ["md5"])
    refused(env, s.uploads.put_part, up, 2, info, etag=info.digests["md5"].hex(), checksums={})
    assert not env.blobs.exists(info.blob)
    refused(env, s.uploads.complete, up, [CompletedPart(1, p1.etag, {})])
    assert [p.part_number for p in s.uploads.list_parts(up).parts] == [1]  # the upload is intact

    keys = [o.key for o in s.objects.list(bucket).contents]
    assert keys == ["src"]
    s.objects.delete(bucket, "src")  # deletes are never refused
    s.uploads.abort(up)
    assert env.storage.usage.bucket(bucket).total_bytes == 0
    cap(env, bucket, None)
    env.put(bucket, "new", b"x")  # the cap removed, writes go again


def test_a_cap_admits_up_to_its_bytes_and_refuses_the_write_that_crosses(
    env: Env, bucket: str, small_parts: None
) -> None:
    s = env.storage
    cap(env, bucket, 10)
    env.put(bucket, "a", b"12345")
    env.put(bucket, "b", b"1234")
    refused(env, env.put, bucket, "c", b"12")  # 9 + 2 > 10
    env.put(bucket, "c", b"1")  # exactly 10
    # An overwrite must fit beside the version it replaces (it is freed only after).
    refused(env, env.put, bucket, "a", b"1")
    s.objects.delete(bucket, "a")
    up = s.uploads.create(bucket, "mp", owner="p", headers={})  # no bytes: admitted
    info = env.blobs.put(b"123456", ["md5"])
    refused(env, s.uploads.put_part, up, 1, info, etag=info.digests["md5"].hex(), checksums={})
    info = env.blobs.put(b"12345", ["md5"])
    p1 = s.uploads.put_part(up, 1, info, etag=info.digests["md5"].hex(), checksums={})
    assert env.storage.usage.bucket(bucket).total_bytes == 10
    s.uploads.complete(up, [CompletedPart(1, p1.etag, {})])  # the parts were counted already
    assert env.storage.usage.bucket(bucket).total_bytes == 10
    # A cap lowered below what is stored: no new bytes, deletes still go.
    cap(env, bucket, 3)
    refused(env, env.put, bucket, "z", b"")
    s.objects.delete(bucket, "mp")
    s.objects.delete(bucket, "b")
    env.put(bucket, "z", b"12")


def test_the_organization_cap_counts_every_bucket(env: Env) -> None:
    org = env.new_org()
    first, second = (f"org-cap-{secrets.token_hex(4)}" for _ in range(2))
    for name in (first, second):
        env.storage.buckets.create(org_id=org, owner="p", name=name, zone=None)
    env.storage.settings.update_org(org, capacity_cap_bytes=8)
    env.put(first, "k", b"12345")
    err = refused(env, env.put, second, "k", b"1234")
    assert (err.scope, err.cap) == ("organization", 8)
    assert "organization's capacity cap of 8 bytes" in str(err)
    env.put(second, "k", b"123")
    assert env.storage.usage.org(org) == 8
    env.storage.settings.update_org(org, capacity_cap_bytes=0)
    refused(env, env.put, first, "other", b"")
    # Coffer's own audit-log bucket: its writes are never refused, nor counted against the cap.
    audit = audit_bucket_name(org)
    env.storage.buckets.create(org_id=org, owner=SYSTEM_OWNER, name=audit, zone=None, allow_reserved=True)
    with system_writes():
        env.put(audit, "control-plane/events.gz", b"e" * 50)
    assert env.storage.usage.bucket(audit).total_bytes == 50
    assert env.storage.usage.org(org) == 8
    env.storage.settings.update_org(org, capacity_cap_bytes=None)
    env.put(first, "other", b"free again")


async def _chunks(sizes: list[int], sent: list[int]) -> AsyncIterator[bytes]:
    for n in sizes:
        sent.append(n)
        yield b"x" * n


def test_a_body_too_big_is_refused_before_it_streams(env: Env, bucket: str) -> None:
    cap(env, bucket, 100)
    env.put(bucket, "half", b"x" * 60)
    before = set(env.blobs.tmp_path.iterdir())

    sent: list[int] = []
    with pytest.raises(QuotaExceeded):
        asyncio.run(
            env.storage.objects.write(
                bucket, "big", _chunks([30, 30], sent), Expect(length=60), headers={}, owner="p"
            )
        )
    assert sent == []  # announced too big: not a byte read

    # Length unknown (an aws-chunked body without its decoded length, a POST's file): cut
    # off as soon as it outgrows the room, never read to the end.
    with pytest.raises(QuotaExceeded):
        asyncio.run(
            env.storage.objects.write(
                bucket, "big", _chunks([30, 30, 30, 30], sent), Expect(), headers={}, owner="p"
            )
        )
    assert sent == [30, 30]
    assert set(env.blobs.tmp_path.iterdir()) <= before
    stored, _ = asyncio.run(
        env.storage.objects.write(bucket, "fits", _chunks([40], []), Expect(), headers={}, owner="p")
    )
    assert stored.blob.size == 40


def test_racing_writers_never_both_take_the_last_room(env: Env, bucket: str) -> None:
    """Eight writers of 10 bytes at once under a cap of 35: exactly three fit, on either
    store (PostgreSQL: the capped bucket's commits check one at a time)."""
    cap(env, bucket, 35)

    def writer(n: int) -> str:
        try:
            env.put(bucket, f"k{n}", b"x" * 10)
        except QuotaExceeded:
            return "refused"
        return "stored"

    assert sorted(at_once(8, writer)) == ["refused"] * 5 + ["stored"] * 3
    assert env.storage.usage.bucket(bucket).total_bytes == 30
    assert env.storage.usage.verify(bucket) == []
