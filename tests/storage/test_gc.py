"""The collector: retired blobs after a grace period, stale temp files, orphans; the thread."""

from __future__ import annotations

import asyncio
import errno
import os
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from coffer.s3.errors import from_storage
from coffer.storage import blobs as blobs_mod
from coffer.storage import collector
from coffer.storage.errors import StorageError
from coffer.store.schema import dead_blobs
from tests.support.storage import Env


def _age(env: Env, blob: str, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(env.blobs.path(blob), (t, t))


def _soon() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=1)


def test_retired_blobs_wait_for_the_grace_period(env: Env, bucket: str) -> None:
    old = env.put(bucket, "k", b"old")
    env.put(bucket, "k", b"new")
    blob = old.parts[0].blob
    assert blob in env.dead()
    env.storage.collector.collect()  # default: 10 minutes of grace
    assert env.blobs.exists(blob) and blob in env.dead()
    assert env.storage.collector.collect(older_than=_soon()) >= 1
    assert not env.blobs.exists(blob) and blob not in env.dead()
    assert env.read(env.storage.objects.get(bucket, "k").parts) == b"new"


def test_collection_is_batched_and_tolerates_missing_files(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collector, "_GC_BATCH", 3)
    infos = [env.blobs.put(b"%d" % i) for i in range(7)]
    env.blobs.unlink(infos[0].blob)  # already gone (a previous run crashed after unlinking)
    past = datetime.now(UTC) - timedelta(hours=1)
    with env.db.write() as conn:
        conn.execute(dead_blobs.insert(), [{"blob": i.blob, "dead_since": past} for i in infos])
    assert env.storage.collector.collect() == 6
    assert not any(env.blobs.exists(i.blob) for i in infos)
    assert env.dead() & {i.blob for i in infos} == set()


def test_stale_temp_files(env: Env) -> None:
    stale = env.blobs.tmp_path / ("e" * 32)
    fresh = env.blobs.tmp_path / ("f" * 32)
    stale.write_bytes(b"abandoned")
    fresh.write_bytes(b"in progress")
    t = time.time() - 2 * 3600
    os.utime(stale, (t, t))
    env.storage.collector.collect()
    assert not stale.exists() and fresh.exists()
    fresh.unlink()


def test_orphan_scan_removes_only_unreferenced_old_blobs(env: Env, bucket: str) -> None:
    s = env.storage
    obj = env.put(bucket, "live", b"live object")
    up = s.uploads.create(bucket, "mp", owner="p", headers={})
    part_info = env.blobs.put(b"a part")
    s.uploads.put_part(up, 1, part_info, etag=part_info.digests["md5"].hex(), checksums={})
    old_orphan = env.blobs.put(b"published, never committed")
    new_orphan = env.blobs.put(b"published a moment ago; its commit may be running")
    for blob in (obj.parts[0].blob, part_info.blob, old_orphan.blob):
        _age(env, blob, 2 * 3600)
    s.collector.collect()  # no orphan scan unless asked
    assert env.blobs.exists(old_orphan.blob)
    assert s.collector.collect(orphans=True) >= 1
    assert not env.blobs.exists(old_orphan.blob)
    assert env.blobs.exists(new_orphan.blob)
    assert env.blobs.exists(obj.parts[0].blob) and env.blobs.exists(part_info.blob)
    assert env.read(s.objects.get(bucket, "live").parts) == b"live object"
    s.collector.collect(older_than=_soon(), orphans=True)
    assert not env.blobs.exists(new_orphan.blob)


def test_background_collector_runs_on_start(env: Env) -> None:
    info = env.blobs.put(b"retired long ago")
    with env.db.write() as conn:
        conn.execute(
            dead_blobs.insert().values(blob=info.blob, dead_since=datetime.now(UTC) - timedelta(hours=1))
        )
    storage = env.new_storage()
    storage.collector.start(interval=0.05)
    try:
        deadline = time.monotonic() + 30
        while env.blobs.exists(info.blob) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not env.blobs.exists(info.blob)
    finally:
        storage.collector.stop()
    assert not storage.collector.running


def test_only_one_collector_per_host_at_a_time(tmp_path: object) -> None:
    from pathlib import Path

    lock = Path(str(tmp_path)) / "gc.lock"
    with collector.host_lock(lock) as first:
        with collector.host_lock(lock) as second:
            assert first and not second
    with collector.host_lock(lock) as again:
        assert again


def test_full_disk_keeps_previous_object_and_leaves_no_temp(
    env: Env, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.put(bucket, "precious", b"the old bytes")

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    async def upload() -> None:
        w = env.blobs.writer(["md5", "sha256"])
        for _ in range(4):
            await w.write(b"n" * (1 << 20))
        await w.finish()

    monkeypatch.setattr(blobs_mod.os, "write", full)
    with pytest.raises(StorageError) as err:
        asyncio.run(upload())
    monkeypatch.undo()
    assert from_storage(err.value).code == "InsufficientStorage"
    assert list(env.blobs.tmp_path.iterdir()) == []
    assert env.read(env.storage.objects.get(bucket, "precious").parts) == b"the old bytes"


def test_dead_blob_rows_are_unique(env: Env) -> None:
    """Retiring the same blob twice (a retried transaction) must not fail the write."""
    info = env.blobs.put(b"x")
    with env.db.write() as conn:
        env.storage.tx.retire(conn, [info.blob, info.blob])
    with env.db.write() as conn:
        env.storage.tx.retire(conn, [info.blob])
    with env.db.read() as conn:
        n = conn.execute(
            sa.select(sa.func.count()).select_from(dead_blobs).where(dead_blobs.c.blob == info.blob)
        ).scalar()
    assert n == 1
