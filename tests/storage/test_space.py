"""Space comes back early when the disk is full: the write-triggered pass, the retry, the
background thread under low space, and shared storage keeping its grace.

The disk here is a test double (a full os.write, a free-space probe); tests/hardening/
test_free_space.py does the same on a real, small filesystem.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coffer.s3.errors import from_storage
from coffer.storage import blobs as blobs_mod
from coffer.storage import collector as collector_mod
from coffer.storage.blobs import WRITE_BUFFER, is_local_filesystem, mount_type
from coffer.storage.collector import Collector
from coffer.storage.errors import StorageError
from coffer.storage.models import PartRef
from coffer.store.schema import dead_blobs
from tests.support.storage import Env


def _retire(env: Env, data: bytes, seconds_ago: float) -> str:
    info = env.blobs.put(data)
    since = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    with env.db.write() as conn:
        conn.execute(dead_blobs.insert().values(blob=info.blob, dead_since=since))
    return info.blob


@pytest.fixture
def fresh(env: Env, monkeypatch: pytest.MonkeyPatch) -> Collector:
    """A collector of its own (no rate limit carried over), its hook undone afterwards."""
    monkeypatch.setattr(env.blobs, "on_full", env.blobs.on_full)
    monkeypatch.setattr(env.blobs, "unlink_spares_readers", lambda: True)
    return Collector(env.db, env.blobs)


def _full_until_gone(env: Env, blob: str, monkeypatch: pytest.MonkeyPatch, name: str = "write") -> list[int]:
    """os.<name> fails with ENOSPC for as long as `blob` is on disk; returns the failure count."""
    real: Callable[..., int] = getattr(os, name)
    failures: list[int] = []

    def maybe_full(*args: object) -> int:
        if env.blobs.exists(blob):
            failures.append(1)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args)

    monkeypatch.setattr(blobs_mod.os, name, maybe_full, raising=False)
    return failures


def test_a_full_disk_write_collects_early_and_goes_on(
    env: Env, fresh: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    reclaimable = _retire(env, b"deleted half a minute ago", 30)
    recent = _retire(env, b"deleted just now: a GET may not have opened it yet", 0)
    failures = _full_until_gone(env, reclaimable, monkeypatch)
    body = os.urandom(2 * WRITE_BUFFER + 12345)

    async def upload() -> blobs_mod.BlobInfo:
        w = env.blobs.writer(["md5"])
        for i in range(0, len(body), 65536):
            await w.write(body[i : i + 65536])
        return await w.finish()

    info = asyncio.run(upload())
    monkeypatch.undo()
    assert failures == [1], "one failed write, then the rest after the collection"
    assert env.read([PartRef(info.blob, info.size)]) == body
    assert not env.blobs.exists(reclaimable) and reclaimable not in env.dead()
    assert env.blobs.exists(recent) and recent in env.dead()


def test_a_copy_on_a_full_disk_collects_and_runs_again(
    env: Env, fresh: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = env.blobs.put(b"copy me" * 1000)
    reclaimable = _retire(env, b"deleted a minute ago", 60)
    _full_until_gone(env, reclaimable, monkeypatch, "copy_file_range")
    _full_until_gone(env, reclaimable, monkeypatch, "write")
    info = env.blobs.copy([PartRef(source.blob, source.size)])
    monkeypatch.undo()
    assert env.read([PartRef(info.blob, info.size)]) == b"copy me" * 1000
    assert not env.blobs.exists(reclaimable)


def test_with_nothing_to_collect_the_write_fails_as_before(
    env: Env, fresh: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    recent = _retire(env, b"too recent to go", 0)
    _full_until_gone(env, recent, monkeypatch)
    with pytest.raises(StorageError) as err:
        env.blobs.put(b"x" * 100)
    monkeypatch.undo()
    assert from_storage(err.value).code == "InsufficientStorage"
    assert env.blobs.exists(recent)
    assert list(env.blobs.tmp_path.iterdir()) == []


def test_shared_storage_keeps_the_whole_grace(
    env: Env, fresh: Collector, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(env.blobs, "unlink_spares_readers", lambda: False)
    held = _retire(env, b"another node may be streaming this", 60)
    _full_until_gone(env, held, monkeypatch)
    with pytest.raises(StorageError) as err:
        env.blobs.put(b"y" * 100)
    assert from_storage(err.value).code == "InsufficientStorage"
    assert env.blobs.exists(held) and held in env.dead()
    with caplog.at_level(logging.WARNING, logger="coffer.storage.gc"):
        fresh._note_pressure(True)
    assert "shared storage" in caplog.text
    fresh.collect(pressure=True)
    assert env.blobs.exists(held)


def test_one_write_triggered_pass_at_a_time(
    env: Env, fresh: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    passes: list[datetime] = []

    def slow_pass(cutoff: datetime, **kw: object) -> int:
        passes.append(cutoff)
        time.sleep(0.3)
        return 1

    monkeypatch.setattr(fresh, "_collect_dead", slow_pass)
    monkeypatch.setattr(collector_mod, "RELIEF_INTERVAL", 60.0)  # slow threads must not make it two
    answers: list[bool] = []
    threads = [threading.Thread(target=lambda: answers.append(fresh.relieve())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(passes) == 1 and answers == [True] * 8
    # the pass looked past PRESSURE_GRACE, not the ten-minute grace
    assert datetime.now(UTC) - passes[0] < collector_mod.PRESSURE_GRACE + timedelta(seconds=5)
    monkeypatch.setattr(collector_mod, "RELIEF_INTERVAL", 0.0)
    assert fresh.relieve() and len(passes) == 2


def test_low_free_space_makes_the_background_thread_collect_early(
    env: Env, fresh: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    free = {"bytes": 100 << 30}
    monkeypatch.setattr(env.blobs, "free_space", lambda: (free["bytes"], 200 << 30))
    blob = _retire(env, b"deleted three seconds ago", 3)
    assert not fresh.short_of_space()
    fresh.collect(pressure=fresh.short_of_space())
    assert env.blobs.exists(blob), "plenty of space: the ten-minute grace holds"
    fresh.start(interval=3600)  # left alone, the next pass would be an hour away
    try:
        free["bytes"] = 100 << 20  # under 1 GiB: short of space
        fresh._wake.set()
        deadline = time.monotonic() + 30
        while env.blobs.exists(blob) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not env.blobs.exists(blob), "short of space: gone a few seconds after its delete"
    finally:
        fresh.stop()


MOUNTINFO = "\n".join(
    [
        "22 27 0:21 / /proc rw,relatime - proc proc rw",
        "27 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw",
        "40 27 0:45 / /srv/coffer\\040data rw,relatime shared:20 - nfs4 fs:/export rw,vers=4.2",
        "41 40 0:46 / /srv/coffer\\040data/blobs rw - tmpfs tmpfs rw,size=8192k",
        "42 27 0:47 / /mnt/sub rw - btrfs /dev/sda1 rw,subvol=/sub",
    ]
)


def test_filesystem_type_from_mountinfo() -> None:
    assert mount_type(MOUNTINFO, 0, 45, "/anywhere") == "nfs4"  # by device first
    assert mount_type(MOUNTINFO, 0, 99, "/srv/coffer data/run") == "nfs4"  # then by mount point
    assert mount_type(MOUNTINFO, 0, 99, "/srv/coffer data/blobs/ab") == "tmpfs"
    assert mount_type(MOUNTINFO, 0, 99, "/srv/coffer database") == "ext4"
    assert mount_type(MOUNTINFO, 0, 98, "/mnt/sub/nested") == "btrfs"
    assert [is_local_filesystem(t) for t in ("ext4", "xfs", "tmpfs", "btrfs", "overlay")] == [True] * 5
    assert [is_local_filesystem(t) for t in ("nfs4", "cifs", "ceph", "fuse.sshfs", None)] == [False] * 5


def test_this_machines_filesystem_is_known(tmp_path: Path) -> None:
    if not Path("/proc/self/mountinfo").exists():
        pytest.skip("no /proc/self/mountinfo (not Linux)")
    assert blobs_mod.filesystem_type(tmp_path)
