"""The machine's own limits, measured in the same run as the servers they bound.

Hashing: hashlib with 1 MiB chunks on one core (hashlib releases the GIL for large
buffers, so two threads run two digests on two cores). Disk: N bytes written in 1 MiB
chunks then one fsync; durable small-file creates: create + write 4 KiB + fsync file +
fsync directory, at concurrency 1 and 16. SQLite: one-row transactions in WAL mode with
synchronous=FULL, the pragmas Coffer's embedded store uses.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from awscrt import checksums as crt

CHUNK = 1 << 20


def random_buffer(size: int) -> bytes:
    """`size` bytes that no hash or compressor can shortcut (one random MiB tiled, 64 MiB max)."""
    seed = os.urandom(min(size, 64 * CHUNK))
    return (seed * (size // len(seed) + 1))[:size]


def _best(reps: int, fn: Callable[[], float]) -> float:
    """Highest rate of `reps` runs (each returns bytes or operations per second)."""
    return max(fn() for _ in range(max(1, reps)))


def hash_rate(name: str, data: bytes, reps: int = 3) -> float:
    """Bytes/s of one digest over `data` in 1 MiB updates, on one core."""
    view = memoryview(data)

    def once() -> float:
        if name == "crc64nvme":
            t0 = time.perf_counter()
            crc = 0
            for off in range(0, len(view), CHUNK):
                crc = crt.crc64nvme(view[off : off + CHUNK], crc)
            return len(view) / (time.perf_counter() - t0)
        h = hashlib.new(name)
        t0 = time.perf_counter()
        for off in range(0, len(view), CHUNK):
            h.update(view[off : off + CHUNK])
        h.digest()
        return len(view) / (time.perf_counter() - t0)

    return _best(reps, once)


def md5_sha256_parallel(data: bytes, reps: int = 3) -> float:
    """Bytes/s of a stream hashed by MD5 and SHA-256 at once, each in its own thread."""
    view = memoryview(data)

    def digest(name: str) -> None:
        h = hashlib.new(name)
        for off in range(0, len(view), CHUNK):
            h.update(view[off : off + CHUNK])

    def once() -> float:
        threads = [threading.Thread(target=digest, args=(n,)) for n in ("md5", "sha256")]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return len(view) / (time.perf_counter() - t0)

    return _best(reps, once)


def md5_sha256_series(data: bytes, reps: int = 2) -> float:
    """Bytes/s when one core computes both digests, one after the other per chunk."""
    view = memoryview(data)

    def once() -> float:
        a, b = hashlib.md5(), hashlib.sha256()
        t0 = time.perf_counter()
        for off in range(0, len(view), CHUNK):
            a.update(view[off : off + CHUNK])
            b.update(view[off : off + CHUNK])
        return len(view) / (time.perf_counter() - t0)

    return _best(reps, once)


def disk_write_sync(directory: Path, size: int, reps: int = 2) -> float:
    """Bytes/s writing `size` bytes in 1 MiB chunks to a new file, fsync included."""
    chunk = os.urandom(CHUNK)

    def once() -> float:
        path = directory / f"disk-{os.getpid()}-{time.monotonic_ns()}"
        t0 = time.perf_counter()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            for _ in range(size // CHUNK):
                os.write(fd, chunk)
            os.fsync(fd)
        finally:
            os.close(fd)
        rate = size / (time.perf_counter() - t0)
        path.unlink()
        return rate

    return _best(reps, once)


def small_file_creates(directory: Path, count: int, concurrency: int) -> float:
    """Durable 4 KiB creates per second: create, write, fsync the file, fsync the directory."""
    data = os.urandom(4096)
    work = directory / f"small-{concurrency}-{time.monotonic_ns()}"
    work.mkdir()

    def one(i: int) -> None:
        fd = os.open(work / f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        dfd = os.open(work, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(count)))
    rate = count / (time.perf_counter() - t0)
    for entry in os.scandir(work):
        os.unlink(entry.path)
    work.rmdir()
    return rate


def sqlite_commits(directory: Path, count: int) -> float:
    """One-row durable transactions per second (WAL, synchronous=FULL): the single-writer
    ceiling for anything that commits one row per request on the embedded store."""
    path = directory / f"commits-{time.monotonic_ns()}.db"
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)")
        payload = "x" * 300
        t0 = time.perf_counter()
        for i in range(count):
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t VALUES (?, ?)", (f"key-{i}", payload))
            db.execute("COMMIT")
        rate = count / (time.perf_counter() - t0)
    finally:
        db.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    return rate
