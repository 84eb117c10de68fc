"""The blob store on its own: layout, digests, durability steps, ranged reads, copies, errors."""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest

from coffer import checksums as cks
from coffer.s3.errors import from_storage
from coffer.storage import blobs as blobs_mod
from coffer.storage.blobs import READ_CHUNK, WRITE_BUFFER, BlobStore
from coffer.storage.errors import StorageError
from coffer.storage.models import PartRef
from tests.support.storage import write_blob


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    s = BlobStore(tmp_path / "blobs")
    yield s
    s.close()


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.name != ".gc.lock"]


def test_layout_is_random_ids_in_two_level_shards(store: BlobStore) -> None:
    info = asyncio.run(write_blob(store, b"some/key/../../etc/passwd", ["md5"]))
    path = store.path(info.blob)
    assert path == store.root / info.blob[:2] / info.blob[2:4] / info.blob
    assert path.read_bytes() == b"some/key/../../etc/passwd"
    assert len(info.blob) == 32 and int(info.blob, 16) >= 0
    assert list((store.root / ".tmp").iterdir()) == []
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")


@pytest.mark.parametrize("size", [0, 1, 4096, (1 << 20) - 1, 1 << 20, (3 << 20) + 12345])
def test_all_digests_match_reference(store: BlobStore, size: int) -> None:
    data = os.urandom(size)
    algs = ["md5", "sha256", "sha1", "crc32", "crc32c", "crc64nvme"]
    info = asyncio.run(write_blob(store, data, algs, step=70_001))
    assert info.size == size
    assert info.digests["md5"] == hashlib.md5(data).digest()
    assert info.digests["sha256"] == hashlib.sha256(data).digest()
    assert info.digests["sha1"] == hashlib.sha1(data).digest()
    for alg in ("crc32", "crc32c", "crc64nvme"):
        assert info.digests[alg] == cks.compute(alg, data), alg
    assert store.path(info.blob).read_bytes() == data


def test_unknown_algorithm_is_a_programming_error(store: BlobStore) -> None:
    with pytest.raises(ValueError):
        store.writer(["md4"])


def _record_syncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        calls.append("fsync-dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync-file")
        real_fsync(fd)

    def rename(a: object, b: object) -> None:
        calls.append("rename")
        real_rename(a, b)  # type: ignore[arg-type]

    monkeypatch.setattr(blobs_mod.os, "fsync", fsync)
    monkeypatch.setattr(blobs_mod.os, "rename", rename)
    return calls


def test_streamed_body_fsyncs_file_then_renames_then_fsyncs_directory(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _record_syncs(monkeypatch)
    store.put(b"warm the shard directories up")
    calls.clear()
    data = os.urandom(2 * WRITE_BUFFER + 5)  # written to the temp file before finish
    info = asyncio.run(write_blob(store, data, ["md5"], step=WRITE_BUFFER))
    assert store.path(info.blob).read_bytes() == data
    # a fresh shard may add directory syncs before the rename; the order around it is fixed
    i = calls.index("rename")
    assert "fsync-file" in calls[:i] and calls[i + 1 :] == ["fsync-dir"]


def test_small_body_is_created_under_its_final_name(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body whole in memory at finish: no temp file, no rename; the file, then its directory."""
    calls = _record_syncs(monkeypatch)
    store.put(b"warm the shard directories up")  # the same shard: ids come in runs (new_id)
    calls.clear()
    info = asyncio.run(write_blob(store, b"x" * 3000, ["md5"]))
    assert calls == ["fsync-file", "fsync-dir"]
    assert store.path(info.blob).read_bytes() == b"x" * 3000
    assert list(store.tmp_path.iterdir()) == []


def test_blob_ids_share_a_random_shard_for_a_run(store: BlobStore) -> None:
    ids = [store.new_id() for _ in range(4 * blobs_mod._SHARD_RUN)]
    assert len(set(ids)) == len(ids) and all(blobs_mod.is_blob_id(i) for i in ids)
    runs = [ids[i : i + blobs_mod._SHARD_RUN] for i in range(0, len(ids), blobs_mod._SHARD_RUN)]
    assert all(len({i[:4] for i in run}) == 1 for run in runs)
    assert len({run[0][:4] for run in runs}) > 1  # each run draws its shard anew


def test_concurrent_directory_syncs_share_one_fsync(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers that ask while a directory fsync runs all wait for one more, not one each."""
    import threading

    blob = store.new_id()
    store.prepare(blob)
    started, release = threading.Event(), threading.Event()
    synced: list[Path] = []
    real = blobs_mod.fsync_dir

    def slow_fsync_dir(path: Path) -> None:
        synced.append(path)
        started.set()
        release.wait(10)
        real(path)

    monkeypatch.setattr(blobs_mod, "fsync_dir", slow_fsync_dir)
    first = threading.Thread(target=store.sync_entry, args=(blob,))
    first.start()
    assert started.wait(10)
    others = [threading.Thread(target=store.sync_entry, args=(blob,)) for _ in range(8)]
    for t in others:
        t.start()
    sync = store._syncs[blob[:4]]
    while sync._asked < 9:  # every writer has asked (and waits on the running fsync)
        threading.Event().wait(0.01)
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert synced == [store.path(blob).parent] * 2


def test_abort_discards_temp_and_is_idempotent(store: BlobStore) -> None:
    async def go() -> None:
        w = store.writer()
        await w.write(b"a" * WRITE_BUFFER)  # starts a flush to the temp file
        await w.write(b"a" * WRITE_BUFFER)  # waits for it before starting the next
        assert len(list(store.tmp_path.iterdir())) == 1
        await w.abort()
        await w.abort()
        with pytest.raises(RuntimeError):
            await w.write(b"more")

    asyncio.run(go())
    assert _files(store.root) == []


def test_abort_after_finish_removes_unclaimed_blob_only(store: BlobStore) -> None:
    async def go() -> tuple[str, str]:
        w1 = store.writer()
        await w1.write(b"bad digest")
        i1 = await w1.finish()
        await w1.abort()  # e.g. Content-MD5 mismatch after the body was stored
        w2 = store.writer()
        await w2.write(b"committed")
        i2 = await w2.finish()
        store.claim(i2.blob)  # what Objects.put does first
        await w2.abort()  # e.g. the client went away after the commit
        return i1.blob, i2.blob

    gone, kept = asyncio.run(go())
    assert not store.exists(gone)
    assert store.exists(kept)
    with pytest.raises(StorageError) as err:
        store.claim(gone)  # a commit scheduled after the discard must not reference it
    assert from_storage(err.value).code == "InternalError"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_full_disk_is_insufficient_storage_and_leaves_nothing(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    before = store.put(b"precious")

    def full(fd: int, data: object) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(blobs_mod.os, "write", full)

    async def go() -> None:
        # A buffer's write runs while the next one arrives: its error comes out of the
        # next write or of finish, and nothing is left behind either way.
        w = store.writer(["md5", "sha256"])
        await w.write(b"z" * WRITE_BUFFER)
        await w.finish()

    with pytest.raises(StorageError) as err:
        asyncio.run(go())
    assert from_storage(err.value).code == "InsufficientStorage" and from_storage(err.value).status == 507
    assert list(store.tmp_path.iterdir()) == []
    assert store.path(before.blob).read_bytes() == b"precious"

    async def small() -> None:  # a small body fails in finish() instead
        w = store.writer()
        await w.write(b"tiny")
        await w.finish()

    with pytest.raises(StorageError) as err:
        asyncio.run(small())
    assert from_storage(err.value).code == "InsufficientStorage"
    assert list(store.tmp_path.iterdir()) == []


def _parts(store: BlobStore, sizes: list[int]) -> tuple[list[PartRef], bytes]:
    parts, whole = [], b""
    for n in sizes:
        data = os.urandom(n)
        info = store.put(data)
        parts.append(PartRef(info.blob, n))
        whole += data
    return parts, whole


async def _collect(
    store: BlobStore, parts: list[PartRef], start: int = 0, end: int | None = None
) -> list[bytes]:
    return [c async for c in store.read(parts, start, end)]


def test_ranged_reads_across_part_boundaries(store: BlobStore) -> None:
    parts, whole = _parts(store, [1000, 1, 0, 2500, 777])
    total = len(whole)
    cases = [(0, None), (0, 0), (999, 1000), (1000, 1001), (5, total - 5), (total - 1, None), (10, 10**9)]
    for start, end in cases:
        got = b"".join(asyncio.run(_collect(store, parts, start, end)))
        stop = total if end is None else min(end + 1, total)
        assert got == whole[start:stop], (start, end)
        assert b"".join(store.read_sync(parts, start, end)) == whole[start:stop]
    for start, end in [(total, None), (5, 4), (-1, None)]:
        with pytest.raises(StorageError) as err:
            store.read(parts, start, end)
        assert from_storage(err.value).code == "InvalidRange"
    assert asyncio.run(_collect(store, [], 0, None)) == []


def test_chunks_are_large_and_cross_part_boundaries(store: BlobStore) -> None:
    parts, whole = _parts(store, [700_000] * 9)  # 6.3 MB in parts smaller than a chunk
    chunks = asyncio.run(_collect(store, parts))
    assert b"".join(chunks) == whole
    assert all(len(c) == READ_CHUNK for c in chunks[:-1]) and READ_CHUNK >= 1 << 20
    assert len(chunks) == -(-len(whole) // READ_CHUNK)


def test_read_survives_unlink_after_start(store: BlobStore) -> None:
    parts, whole = _parts(store, [READ_CHUNK + 10, 5000, 3000])

    async def go() -> bytes:
        it = store.read(parts)
        first = await it.__anext__()
        for p in parts:  # the collector deletes the blobs mid-GET
            store.unlink(p.blob)
        rest = [c async for c in it]
        return first + b"".join(rest)

    assert asyncio.run(go()) == whole


def test_missing_blob_fails_before_any_byte(store: BlobStore) -> None:
    parts, _ = _parts(store, [100, 100])
    store.unlink(parts[1].blob)
    with pytest.raises(StorageError) as err:
        asyncio.run(_collect(store, parts))
    assert from_storage(err.value).code == "InternalError"


def _sparse_blob(store: BlobStore, size: int) -> PartRef:
    info = store.put(b"")
    os.truncate(store.path(info.blob), size)
    return PartRef(info.blob, size)


# A few chunks in flight (the one yielded, the one being read, a join across parts) and
# the interpreter's own noise; what matters is that it does not grow with the object.
FLAT = 8 * READ_CHUNK + (4 << 20)


def _streamed_peak(store: BlobStore, parts: list[PartRef]) -> tuple[int, int]:
    async def go() -> int:
        n = 0
        async for c in store.read(parts):
            n += len(c)
        return n

    tracemalloc.start()
    try:
        total = asyncio.run(go())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return total, peak


def test_memory_stays_flat_while_streaming(store: BlobStore) -> None:
    parts = [_sparse_blob(store, 40 << 20), _sparse_blob(store, 24 << 20)]
    total, peak = _streamed_peak(store, parts)
    assert total == 64 << 20
    assert peak < FLAT, peak


def test_memory_stays_flat_for_a_5_gib_object(store: BlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    # Sparse files and a pread that hands back zeroes without touching the page cache:
    # this checks the streaming logic (nothing accumulates), not the disk.
    parts = [_sparse_blob(store, 3 << 30), _sparse_blob(store, 2 << 30)]

    def pread(fd: int, n: int, offset: int) -> bytes:
        return bytes(max(0, min(n, os.fstat(fd).st_size - offset)))

    monkeypatch.setattr(blobs_mod.os, "pread", pread)
    total, peak = _streamed_peak(store, parts)
    assert total == 5 << 30
    assert peak < FLAT, peak


@pytest.mark.parametrize("kernel_copy", [True, False])
def test_copy_makes_a_new_durable_blob_with_digests(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch, kernel_copy: bool
) -> None:
    used: list[int] = []
    real = getattr(os, "copy_file_range", None)

    def fake(src: int, dst: int, count: int, offset_src: int | None = None, *a: object) -> int:
        if not kernel_copy:
            raise OSError(errno.EXDEV, "cross-device")
        used.append(count)
        assert real is not None
        return real(src, dst, count, offset_src)

    monkeypatch.setattr(blobs_mod.os, "copy_file_range", fake, raising=False)
    parts, whole = _parts(store, [3000, 5 << 20, 17])
    info = store.copy(parts, 100, len(whole) - 2, algorithms=["md5", "crc32c"])
    expected = whole[100 : len(whole) - 1]
    assert store.path(info.blob).read_bytes() == expected
    assert info.size == len(expected)
    assert info.digests["md5"] == hashlib.md5(expected).digest()
    assert base64.b64encode(info.digests["crc32c"]) == base64.b64encode(cks.compute("crc32c", expected))
    assert bool(used) == (kernel_copy and real is not None)
    assert list(store.tmp_path.iterdir()) == []
    plain = store.copy(parts, algorithms=[])
    assert plain.digests == {} and store.path(plain.blob).read_bytes() == whole


def test_copy_on_full_disk_leaves_nothing(store: BlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    parts, _ = _parts(store, [4000])
    before = set(_files(store.root))

    def full(*a: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(blobs_mod.os, "copy_file_range", full, raising=False)
    monkeypatch.setattr(blobs_mod.os, "write", full)
    with pytest.raises(StorageError) as err:
        store.copy(parts)
    assert from_storage(err.value).code == "InsufficientStorage"
    assert set(_files(store.root)) == before


def test_stale_temp_files_are_removed(store: BlobStore) -> None:
    old = store.tmp_path / ("a" * 32)
    new = store.tmp_path / ("b" * 32)
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    os.utime(old, (1000, 1000))
    assert store.remove_stale_temp(older_than=2000) == 1
    assert not old.exists() and new.exists()


def test_iter_blobs_lists_published_blobs_only(store: BlobStore) -> None:
    a, b = store.put(b"1"), store.put(b"2")
    (store.tmp_path / ("c" * 32)).write_bytes(b"temp")
    assert {blob for blob, _ in store.iter_blobs()} == {a.blob, b.blob}


def test_abort_after_cancelled_flush_waits_for_the_running_write(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that disconnects mid-flush: abort must not close the descriptor under a
    write still running in a worker thread (the number could be reused by another file)."""
    import threading

    started, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    real = blobs_mod._write_all

    def slow_write(fd: int, data: bytes | memoryview) -> None:
        started.set()
        release.wait(30)
        try:
            real(fd, data)
        except BaseException as exc:
            errors.append(exc)
            raise

    monkeypatch.setattr(blobs_mod, "_write_all", slow_write)

    async def go() -> bool:
        w = store.writer(["md5"])

        async def upload() -> None:
            await w.write(b"q" * WRITE_BUFFER)  # starts the (slow) flush
            await w.write(b"q" * WRITE_BUFFER)  # waits for it: cancelled here

        task = asyncio.create_task(upload())
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        aborting = asyncio.create_task(w.abort())
        await asyncio.sleep(0.05)
        waited = not aborting.done()
        release.set()
        await aborting
        return waited

    assert asyncio.run(go()) is True
    assert errors == []
    assert list(store.tmp_path.iterdir()) == []
