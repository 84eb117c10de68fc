"""The blob store: object bodies as files under <data-dir>/blobs, never named after keys.

Layout: `<root>/<aa>/<bb>/<blob-id>` where the id is 32 hex digits and `aa`, `bb` are its
first four (a process's writers share a random shard for runs of ids, `new_id`; the rest
is random); temp files live in `<root>/.tmp/` on the same filesystem so that publishing
is one `rename`. A blob becomes durable in `finish()`: the file is fsynced, renamed into
place, and the directory is fsynced; a body held whole in memory at finish (a small PUT)
is created under its final name instead, with no rename. Only then may metadata point at it.

Work happens in a thread pool in steps of WRITE_BUFFER bytes: the file write (with the
cheap CRCs) and each cryptographic digest of a buffer run concurrently (hashlib and
awscrt release the GIL), so MD5 and SHA-256 use both cores and the event loop never
blocks on disk. Steps are double-buffered: while one buffer is written and hashed, the
next one is received from the socket, and writeback of what was written starts at once
(sync_file_range) so that the final fsync finds little left to flush. Reads are read
ahead by one chunk the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import os
import re
import secrets
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from pathlib import Path
from typing import TypeVar

from coffer.checksums import Hasher, is_algorithm, new_hasher
from coffer.datadir import fsync_dir
from coffer.storage.errors import BlobUnavailable, InsufficientStorage, InvalidRange
from coffer.storage.models import BlobInfo, PartRef

__all__ = ["ALGORITHMS", "BlobStore", "BlobWriter"]

log = logging.getLogger("coffer.blobs")

WRITE_BUFFER = 1 << 20  # buffer this much before a thread hop (write + hashes in parallel)
READ_CHUNK = 1 << 20  # bytes per chunk and thread hop on reads; a stalled reader pins two (sent, ahead)
_INLINE_MAX = 256 << 10  # a final buffer this small is written and hashed inline in finish()
_FULL_DISK = frozenset({errno.ENOSPC, errno.EDQUOT})
_NO_COPY_FILE_RANGE = frozenset(
    {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF}
)
_BLOB_ID = re.compile(r"[0-9a-f]{32}")
_SHARD_RUN = 256  # consecutive blob ids of a process that share a shard directory (see new_id)
_FORGET_DISCARDED = 4096  # unclaimed/discarded blob ids remembered (see BlobStore.claim)
TMP_DIR = ".tmp"
PINS_DIR = ".pins"  # hard links that keep a long read's files alive (see BlobStore.pin)

T = TypeVar("T")


# Algorithms a writer can compute while it writes: md5, sha256, sha1, crc32, crc32c, crc64nvme.
# The hashers come from the one checksum registry, coffer.checksums.
ALGORITHMS = ("md5", "sha256", "sha1", "crc32", "crc32c", "crc64nvme")


def check_algorithms(algorithms: Iterable[str]) -> tuple[str, ...]:
    """Deduplicated, validated digest names in a stable order; ValueError for unknown ones."""
    wanted = {a.lower() for a in algorithms}
    unknown = sorted(a for a in wanted if not is_algorithm(a))
    if unknown:
        raise ValueError(f"unknown digest algorithm(s): {', '.join(unknown)}")
    return tuple(a for a in ALGORITHMS if a in wanted)


def is_blob_id(value: str) -> bool:
    return bool(_BLOB_ID.fullmatch(value))


def _write_all(fd: int, data: bytes | memoryview) -> None:
    """os.write until everything is written (a write may be short)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_sync_file_range = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing [offset, offset+length) back now (Linux; a hint:
    durability still comes from the fsync in finish)."""
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def _storage_error(exc: OSError) -> Exception:
    """A full disk is the caller's problem to hear about (507); anything else is ours."""
    if exc.errno in _FULL_DISK:
        return InsufficientStorage()
    return exc


class BlobWriter:
    """Streams one body into a temp file, hashing as it goes (hashes run in parallel threads)."""

    size: int

    def __init__(self, store: BlobStore, algorithms: Iterable[str]) -> None:
        self._store = store
        self.algorithms = check_algorithms(algorithms)
        self._hashers: dict[str, Hasher] = {a: new_hasher(a) for a in self.algorithms}
        # CRCs run at ~10 GB/s: they ride along with the file write instead of a thread hop each.
        self._inline = [h for a, h in self._hashers.items() if a.startswith("crc")]
        self._threaded = [h for a, h in self._hashers.items() if not a.startswith("crc")]
        self._written = 0
        self.blob_id = store.new_id()
        self._tmp = store.tmp_path / self.blob_id
        self._fd: int | None = None
        self._buf: list[bytes] = []
        self._buffered = 0
        self._done = False
        self._published = False
        self._inflight: list[Future[None]] = []
        self.size = 0

    # async API (the S3 face) -------------------------------------------------------------
    async def write(self, data: bytes) -> None:
        """Append. A full buffer is written and hashed while the caller goes on receiving,
        so a full disk raises InsufficientStorage from a later write or from
        finish (nothing is published either way)."""
        self._check_open()
        if not data:
            return
        self._buf.append(data if isinstance(data, bytes) else bytes(data))
        self._buffered += len(data)
        self.size += len(data)
        if self._buffered >= WRITE_BUFFER:
            chunk = self._take()
            try:
                await self._settle()  # the previous buffer first: writes and digests keep order
                self._start(chunk)  # this one runs while the caller receives the next
            except OSError as exc:
                await self._run(self._discard)
                raise _storage_error(exc) from exc

    async def finish(self) -> BlobInfo:
        """fsync, publish atomically under a fresh blob id, fsync the directory; return digests."""
        self._check_open()
        chunk = self._take()
        try:
            await self._settle()
            if len(chunk) > _INLINE_MAX:
                self._start(chunk)
                await self._settle()
                chunk = b""
            return await self._run(self._finish_sync, chunk)
        except OSError as exc:
            await self._run(self._discard)
            raise _storage_error(exc) from exc

    async def abort(self) -> None:
        """Discard the temp file. Safe to call twice or after a failed write.

        After `finish()` it also removes the published blob, unless the metadata store has
        already claimed it (`BlobStore.claim`): a body that failed a late check (Content-MD5,
        trailing checksum) leaves nothing behind, and a committed one is never touched.
        """
        self._buf = []
        await self._run(self._abandon)

    @property
    def small(self) -> bool:
        """Nothing in flight and little buffered: `finish_sync` costs about what one thread
        hop does, so a caller may run it in the same hop as the metadata commit."""
        return not self._inflight and self._buffered <= _INLINE_MAX

    # sync API (copies, CLI, tests) ----------------------------------------------------------
    def write_sync(self, data: bytes) -> None:
        """Blocking `write`, for callers already off the event loop."""
        self._check_open()
        try:
            self._write_and_hash(data)
        except OSError as exc:
            self._discard()
            raise _storage_error(exc) from exc
        self.size += len(data)

    def finish_sync(self) -> BlobInfo:
        self._check_open()
        try:
            return self._finish_sync(self._take())
        except OSError as exc:
            self._discard()
            raise _storage_error(exc) from exc

    # internals -----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._done:
            raise RuntimeError("blob writer already finished or aborted")

    def _take(self) -> bytes:
        chunk = self._buf[0] if len(self._buf) == 1 else b"".join(self._buf)
        self._buf = []
        self._buffered = 0
        return chunk

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._store.pool, fn, *args)

    def _start(self, chunk: bytes) -> None:
        """Write `chunk` (and feed the CRCs) in one worker thread, feed each other hasher in
        its own. The futures are kept until they settle: if the request is cancelled
        mid-flush, `abort` waits for a running write before it closes the descriptor."""
        pool = self._store.pool
        self._inflight = [pool.submit(self._write_chunk, chunk)]
        self._inflight += [pool.submit(h.update, chunk) for h in self._threaded]

    async def _settle(self) -> None:
        """Wait for the buffer in flight, if any; raise what its write or digests raised."""
        if not self._inflight:
            return
        results = await asyncio.gather(*map(asyncio.wrap_future, self._inflight), return_exceptions=True)
        self._inflight = []
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        return self._fd

    def _put(self, fd: int, chunk: bytes) -> None:
        """Write all of `chunk`. On a full disk the collector may free space (see
        BlobStore.relieved); then the write goes on once from where it stopped, since the
        body it came from cannot be read again."""
        try:
            _write_all(fd, chunk)
        except OSError as exc:
            if not self._store.relieved(exc):
                raise
            done = os.lseek(fd, 0, os.SEEK_CUR) - self._written  # a failed write() writes nothing
            _write_all(fd, memoryview(chunk)[done:])
        self._written += len(chunk)

    def _write_chunk(self, chunk: bytes) -> None:
        fd = self._open()
        offset = self._written
        self._put(fd, chunk)
        for h in self._inline:
            h.update(chunk)
        _start_writeback(fd, offset, len(chunk))

    def _write_and_hash(self, chunk: bytes) -> None:
        fd = self._open()
        if chunk:
            self._put(fd, chunk)
            for h in self._hashers.values():
                h.update(chunk)

    def _finish_sync(self, chunk: bytes) -> BlobInfo:
        # Nothing written yet: the whole body is `chunk`, so it is created under its final
        # name, and no rename follows the fsync. A crash mid-write leaves a torn file that no
        # row points at, for the orphan scan, as a blob whose commit never came does; and
        # on ext4 the file's fsync commits its directory entry too, so the directory's
        # fsync finds little left to do.
        whole = self._fd is None
        if whole:
            self._tmp = self._store.prepare(self.blob_id)
        self._write_and_hash(chunk)
        fd = self._open()
        os.fsync(fd)
        self._fd = None
        os.close(fd)
        if whole:
            self._store.sync_entry(self.blob_id)
        else:
            self._store.publish(self._tmp, self.blob_id)
        self._store.note_unclaimed(self.blob_id)
        self._published = True
        self._done = True
        return BlobInfo(
            blob=self.blob_id,
            size=self.size,
            digests={name: h.digest() for name, h in self._hashers.items()},
        )

    def _abandon(self) -> None:
        if self._published:
            self._store.release(self.blob_id)
        else:
            self._discard()

    def _discard(self) -> None:
        self._done = True
        if self._inflight:  # a cancelled flush: let its threads finish with the descriptor
            wait_futures(self._inflight)
            self._inflight = []
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)


class _Span:
    """One contiguous byte range of one part file."""

    __slots__ = ("blob", "fd", "length", "offset")

    def __init__(self, blob: str, offset: int, length: int) -> None:
        self.blob = blob
        self.offset = offset
        self.length = length
        self.fd = -1


class _SpanReader:
    """Reads consecutive spans in chunks that cross part boundaries."""

    def __init__(self, spans: list[_Span]) -> None:
        self._spans = spans
        self._index = 0
        self._pos = spans[0].offset if spans else 0

    @property
    def done(self) -> bool:
        return self._index >= len(self._spans)

    def read(self, limit: int) -> bytes:
        pieces: list[bytes] = []
        wanted = limit
        while wanted and not self.done:
            span = self._spans[self._index]
            left = span.offset + span.length - self._pos
            data = os.pread(span.fd, min(wanted, left), self._pos)
            if not data:
                raise BlobUnavailable(f"blob {span.blob} is shorter than its recorded size")
            pieces.append(data)
            wanted -= len(data)
            self._pos += len(data)
            if len(data) == left:
                self._index += 1
                if not self.done:
                    self._pos = self._spans[self._index].offset
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class _DirSync:
    """fsyncs of one directory, shared: a writer whose entry was made before a running
    fsync began waits for the next one, which one waiter runs for every writer waiting.
    Concurrent writers into one shard (see BlobStore.new_id) pay one fsync among them."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._cond = threading.Condition()
        self._asked = 0  # writers that asked so far
        self._synced = 0  # writers covered by a completed fsync
        self._running = False

    def sync(self) -> None:
        with self._cond:
            self._asked += 1
            mine = self._asked
            while self._synced < mine:
                if self._running:
                    self._cond.wait()
                    continue
                self._running, covers = True, self._asked
                self._cond.release()
                try:
                    fsync_dir(self._path)
                finally:
                    self._cond.acquire()
                    self._running = False
                    self._cond.notify_all()  # on failure a waiter tries itself
                self._synced = max(self._synced, covers)


class BlobStore:
    def __init__(self, root: Path, *, threads: int | None = None) -> None:
        self.root = Path(root)
        self.tmp_path = self.root / TMP_DIR
        # Owner-only whatever the umask: bodies are 0600, and the tree's listing is no one else's either.
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.tmp_path.mkdir(mode=0o700, exist_ok=True)
        self._dirs_lock = threading.Lock()
        self._ids_lock = threading.Lock()
        self._syncs: dict[str, _DirSync] = {}  # by shard (`aabb`): the durable ones (_ensure_dir)
        self._shard, self._shard_left = "", 0  # see new_id()
        self._threads = threads or max(8, 4 * (os.cpu_count() or 2))
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        # Blobs a writer published that no metadata claimed yet (True), or that its writer
        # discarded before any claim (False, remembered for a while): see claim().
        self._unclaimed: OrderedDict[str, bool] = OrderedDict()
        self._claims_lock = threading.Lock()
        # Set by the collector: frees space when a write finds the disk full (see relieved()).
        self.on_full: Callable[[], bool] | None = None
        self._spares_readers: bool | None = None
        # Set by the collector from its grace: a read still streaming after `pin_after`
        # seconds pins its files, for `pin_ttl` seconds at a time (see pin()).
        self.pin_after = 60.0
        self.pin_ttl = 600.0

    @property
    def pool(self) -> ThreadPoolExecutor:
        """Blob I/O threads, apart from the default executor that runs SQL for the faces."""
        if self._pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="coffer-blob")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # space -----------------------------------------------------------------------------------
    def relieved(self, exc: OSError) -> bool:
        """A write failed with `exc`: if the disk is full, have the collector free what it
        may now. True when it did, so the one write may be tried again. Blocking: blob and
        worker threads only."""
        return exc.errno in _FULL_DISK and self.on_full is not None and self.on_full()

    def free_space(self) -> tuple[int, int]:
        """(bytes an unprivileged writer may still use, size) of the blobs' filesystem."""
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize

    def unlink_spares_readers(self) -> bool:
        """Does a reader that opened a blob keep reading it after another process unlinks
        it? POSIX says so for a local filesystem. Shared storage does not promise it to
        readers on other hosts (NFS: their reads fail with ESTALE), so there, and where the
        filesystem cannot be told, the answer is no."""
        if self._spares_readers is None:
            self._spares_readers = is_local_filesystem(filesystem_type(self.root))
        return self._spares_readers

    def writer(self, algorithms: Iterable[str] = ("md5",)) -> BlobWriter:
        return BlobWriter(self, algorithms)

    def put(self, data: bytes, algorithms: Iterable[str] = ("md5",)) -> BlobInfo:
        """Store a body already in memory (blocking); for the CLI, copies and tests."""
        w = self.writer(algorithms)
        w.write_sync(data)
        return w.finish_sync()

    # paths ---------------------------------------------------------------------------------
    def path(self, blob: str) -> Path:
        """Where a blob lives; ValueError for anything but a blob id (no path games)."""
        if not is_blob_id(blob):
            raise ValueError(f"not a blob id: {blob!r}")
        return self.root / blob[:2] / blob[2:4] / blob

    def exists(self, blob: str) -> bool:
        return self.path(blob).is_file()

    def new_id(self) -> str:
        """A fresh blob id for this store's writers. Runs of `_SHARD_RUN` ids share their
        `aa/bb` directory (the other 112 bits stay random; each run's shard is random): a
        shard directory costs one or two directory fsyncs the first time a process uses it,
        and a fresh store would otherwise pay them on nearly every write for its first
        65,536 shards."""
        with self._ids_lock:
            if self._shard_left <= 0:
                self._shard, self._shard_left = secrets.token_hex(2), _SHARD_RUN
            self._shard_left -= 1
            return self._shard + secrets.token_hex(14)

    def prepare(self, blob: str) -> Path:
        """The final path of `blob`, its directories made durable: a writer that has the
        whole body creates it there (see BlobWriter._finish_sync)."""
        path = self.path(blob)
        self._ensure_dir(blob)
        return path

    def publish(self, tmp: Path, blob: str) -> None:
        """Rename a synced temp file into place and make the rename durable."""
        final = self.prepare(blob)
        os.rename(tmp, final)
        self.sync_entry(blob)

    def sync_entry(self, blob: str) -> None:
        """Make the directory entry of `blob` (just created or renamed) durable, sharing the
        directory's fsync with the writers waiting for the same one."""
        self._syncs[blob[:4]].sync()

    def _ensure_dir(self, blob: str) -> None:
        """Create <aa>/<bb> once; fsync each parent so the new entries survive a crash."""
        shard = blob[:4]
        if shard in self._syncs:
            return
        with self._dirs_lock:
            outer = self.root / blob[:2]
            for parent, child in ((self.root, outer), (outer, outer / blob[2:4])):
                with contextlib.suppress(FileExistsError):
                    os.mkdir(child, 0o700)
                fsync_dir(parent)
            self._syncs.setdefault(shard, _DirSync(outer / blob[2:4]))

    # ownership hand-over between a writer and the metadata store --------------------------
    def note_unclaimed(self, blob: str) -> None:
        """A writer published `blob`; until claimed, its writer's abort may remove it."""
        with self._claims_lock:
            self._unclaimed[blob] = True
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        # A forgotten entry only means a later abort leaves that blob to the orphan scan.
        while len(self._unclaimed) > _FORGET_DISCARDED:
            self._unclaimed.popitem(last=False)

    def claim(self, blob: str) -> None:
        """The metadata store takes a published blob over; from now on its writer's abort
        leaves it alone. If the writer already discarded it (a request cancelled while its
        commit was being scheduled), refuse, so no row ever points at a deleted file."""
        with self._claims_lock:
            state = self._unclaimed.pop(blob, None)
            if state is False:
                self._unclaimed[blob] = False
                raise BlobUnavailable("the uploaded body was discarded before it was stored")

    def release(self, blob: str) -> None:
        """A writer gives up a published blob: unlink it unless it has been claimed."""
        with self._claims_lock:
            if not self._unclaimed.get(blob):
                return
            self._unclaimed[blob] = False
            self._forget_oldest()
        self.unlink(blob)

    def unlink(self, blob: str) -> bool:
        """Remove a blob file; False if it was already gone. Only for unreferenced blobs."""
        try:
            os.unlink(self.path(blob))
            return True
        except FileNotFoundError:
            return False

    discard = unlink  # a blob that was published but whose metadata never committed

    # pins: long reads across nodes -----------------------------------------------------------
    def pin(self, blobs: Iterable[str], held: Iterable[Path] = ()) -> list[Path]:
        """Hard-link each blob as `.pins/<blob>.<expiry>.<random>`, so the file outlives the
        collector unlinking its name, whichever node does that: the inode lives while a link
        does, and an NFS client's handle on it stays valid (an unlink elsewhere of the last
        link is what turns a reader's handle ESTALE). Expires after `pin_ttl` seconds
        unless renewed (`held`: the pins being renewed, linked from, then removed, since
        the blob's own name may be gone by then); the collector removes expired pins."""
        pins = self.root / PINS_DIR
        pins.mkdir(mode=0o700, exist_ok=True)
        expires = int(time.time() + self.pin_ttl) + 1
        old = {link.name.split(".")[0]: link for link in held}
        made = []
        for blob in dict.fromkeys(blobs):
            link = pins / f"{blob}.{expires}.{secrets.token_hex(4)}"
            try:
                os.link(old.get(blob) or self.path(blob), link)
            except FileNotFoundError:
                continue  # already unlinked: only where unlinking spares an open file (local)
            made.append(link)
        self.unpin(old.values())
        return made

    @staticmethod
    def unpin(links: Iterable[Path]) -> None:
        for link in links:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)

    def remove_expired_pins(self, now: float) -> int:
        """Unlink pins whose expiry (in their name) is before `now`: their reader is gone."""
        removed = 0
        for entry in _scandir(self.root / PINS_DIR):
            fields = entry.name.split(".")
            if len(fields) == 3 and fields[1].isdigit() and int(fields[1]) < now:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed += 1
        return removed

    # reading -------------------------------------------------------------------------------
    @staticmethod
    def _spans(parts: list[PartRef], start: int, end: int | None) -> list[_Span]:
        total = sum(p.size for p in parts)
        if total == 0 and start == 0:
            return []
        last = total - 1 if end is None else min(end, total - 1)
        if start < 0 or start >= total or last < start:
            raise InvalidRange()
        spans: list[_Span] = []
        base = 0
        for part in parts:
            lo, hi = max(start, base), min(last, base + part.size - 1)
            if lo <= hi:
                spans.append(_Span(part.blob, lo - base, hi - lo + 1))
            base += part.size
        return spans

    def _open_spans(self, spans: list[_Span]) -> None:
        """Open every file up front: a delete only unlinks, so an open file stays readable."""
        try:
            for span in spans:
                try:
                    span.fd = os.open(self.path(span.blob), os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    raise BlobUnavailable(f"blob {span.blob} is missing") from None
        except BaseException:
            self._close_spans(spans)
            raise

    @staticmethod
    def _close_spans(spans: list[_Span]) -> None:
        for span in spans:
            if span.fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(span.fd)
                span.fd = -1

    def read(self, parts: list[PartRef], start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes [start, end] (inclusive; None = to the end) across the parts, in large chunks.

        Every part file is opened before the first byte is yielded, so a concurrent delete
        (which only unlinks) never cuts a running GET short. A range that starts past the
        end raises InvalidRange here, before anything is streamed.
        """
        return self._stream(self._spans(parts, start, end))

    async def _stream(self, spans: list[_Span]) -> AsyncIterator[bytes]:
        """Chunks of the spans, the next one read (in a worker thread) while this one is sent."""
        if not spans:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.pool, self._open_spans, spans)
        reader = _SpanReader(spans)
        ahead: Future[bytes] | None = None
        # A read that outlasts `pin_after` pins its files (and renews the pins) so that no
        # node's collector can take them from under it (see pin()).
        pins: list[Path] = []
        repin_at = time.monotonic() + self.pin_after
        try:
            ahead = self.pool.submit(reader.read, READ_CHUNK)
            while ahead is not None:
                chunk = await asyncio.wrap_future(ahead)
                ahead = None if reader.done else self.pool.submit(reader.read, READ_CHUNK)
                if ahead is not None and time.monotonic() >= repin_at:
                    blobs = [s.blob for s in spans]
                    pins = await loop.run_in_executor(self.pool, self.pin, blobs, pins)
                    repin_at = time.monotonic() + self.pin_ttl / 2
                yield chunk
        finally:
            if ahead is not None and not ahead.done():
                # Stopped early (client gone, cancelled): close once the read in flight ends.
                ahead.add_done_callback(lambda _: self._close_spans(spans))
            else:
                self._close_spans(spans)
            self.unpin(pins)

    def read_sync(self, parts: list[PartRef], start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Blocking `read`, for callers off the event loop (copies, checks, tests)."""
        spans = self._spans(parts, start, end)
        if not spans:
            return
        self._open_spans(spans)
        try:
            reader = _SpanReader(spans)
            while not reader.done:
                yield reader.read(READ_CHUNK)
        finally:
            self._close_spans(spans)

    def read_bytes(self, parts: list[PartRef], start: int = 0, end: int | None = None) -> bytes:
        """Blocking: bytes [start, end] in memory, for small objects (one open, one pread per part)."""
        return b"".join(self.read_sync(parts, start, end))

    # copying -------------------------------------------------------------------------------
    def copy(
        self,
        parts: list[PartRef],
        start: int = 0,
        end: int | None = None,
        algorithms: Iterable[str] = ("md5",),
    ) -> BlobInfo:
        """A new durable blob holding bytes [start, end] of `parts` (CopyObject, UploadPartCopy).

        Blocking. The bytes move with `copy_file_range` (in the kernel, or a reflink on
        filesystems that offer one); digests, if asked for, are computed from the source
        in parallel threads. A full disk (ENOSPC/EDQUOT) gets the collector's help and one
        more try; then InsufficientStorage, and nothing is published.
        """
        algs = check_algorithms(algorithms)
        spans = self._spans(parts, start, end)
        self._open_spans(spans)  # once: the source stays readable whatever a collection does
        try:
            try:
                return self._copy(spans, algs)
            except OSError as exc:
                if not self.relieved(exc):
                    raise _storage_error(exc) from exc
            try:  # once more, from the start: the failed copy left nothing behind
                return self._copy(spans, algs)
            except OSError as exc:
                raise _storage_error(exc) from exc
        finally:
            self._close_spans(spans)

    def _copy(self, spans: list[_Span], algs: tuple[str, ...]) -> BlobInfo:
        blob = self.new_id()
        tmp = self.tmp_path / blob
        fd = -1
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            size = 0
            for span in spans:
                _copy_range(span.fd, fd, span.offset, span.length)
                size += span.length
            digests = self._digest_spans(spans, algs)
            os.fsync(fd)
            os.close(fd)
            fd = -1
            self.publish(tmp, blob)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return BlobInfo(blob=blob, size=size, digests=digests)

    def _digest_spans(self, spans: list[_Span], algs: tuple[str, ...]) -> dict[str, bytes]:
        hashers = {a: new_hasher(a) for a in algs}
        if not hashers:
            return {}
        reader = _SpanReader(spans)
        while not reader.done:
            chunk = reader.read(WRITE_BUFFER)
            if len(hashers) == 1:
                next(iter(hashers.values())).update(chunk)
            else:
                for future in [self.pool.submit(h.update, chunk) for h in hashers.values()]:
                    future.result()
        return {a: h.digest() for a, h in hashers.items()}

    # housekeeping --------------------------------------------------------------------------
    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        """(blob id, mtime) of every published blob; a full walk, for the orphan scan."""
        for outer in _scandir(self.root):
            if len(outer.name) != 2 or not outer.is_dir(follow_symlinks=False):
                continue
            for inner in _scandir(Path(outer.path)):
                if not inner.is_dir(follow_symlinks=False):
                    continue
                for entry in _scandir(Path(inner.path)):
                    if is_blob_id(entry.name):
                        with contextlib.suppress(FileNotFoundError):
                            yield entry.name, entry.stat(follow_symlinks=False).st_mtime

    def remove_stale_temp(self, older_than: float) -> int:
        """Unlink temp files not written to since `older_than` (a crashed or abandoned write)."""
        removed = 0
        for entry in _scandir(self.tmp_path):
            try:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) and st.st_mtime < older_than:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


# Filesystems shared between hosts, where an unlink by one host may cut off a reader on
# another (fuse.* too: sshfs, s3fs, JuiceFS, ...). Anything else is taken as local.
_SHARED_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "lustre", "gpfs", "beegfs"}
    | {"ocfs2", "gfs2", "afs", "9p", "virtiofs", "fuse"}
)
_MOUNTINFO = Path("/proc/self/mountinfo")


def is_local_filesystem(fstype: str | None) -> bool:
    """False for shared filesystems and for an unknown one."""
    if not fstype:
        return False
    return fstype not in _SHARED_FILESYSTEMS and not fstype.startswith("fuse.")


def filesystem_type(path: Path) -> str | None:
    """The type of the filesystem holding `path` ("ext4", "nfs4"), from Linux's
    /proc/self/mountinfo; None where that cannot be read."""
    try:
        st = os.stat(path)
        text = _MOUNTINFO.read_text()
    except OSError:
        return None
    return mount_type(text, os.major(st.st_dev), os.minor(st.st_dev), os.path.realpath(path))


def mount_type(mountinfo: str, major: int, minor: int, path: str) -> str | None:
    """The filesystem type in `mountinfo` of device major:minor, or failing that (a btrfs
    subvolume has a device number of its own) of the longest mount point above `path`."""
    device = f"{major}:{minor}"
    by_device = None
    best: tuple[int, str] | None = None
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        sep = fields.index("-", 6) if "-" in fields[6:] else len(fields)
        if sep + 1 >= len(fields):
            continue
        fstype = fields[sep + 1]
        if fields[2] == device:
            by_device = fstype
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= best[0]):
            best = (len(point), fstype)  # a later mount on the same point hides the earlier
    return by_device or (best[1] if best else None)


def _scandir(path: Path) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            yield from it
    except FileNotFoundError:
        return


def _copy_range(src: int, dst: int, offset: int, length: int) -> None:
    """Append src[offset:offset+length] to dst, in the kernel where possible."""
    copy_file_range = getattr(os, "copy_file_range", None)
    while length > 0 and copy_file_range is not None:
        try:
            n = copy_file_range(src, dst, min(length, 1 << 30), offset)
        except OSError as exc:
            if exc.errno not in _NO_COPY_FILE_RANGE:
                raise
            break
        if n == 0:
            raise BlobUnavailable("source blob is shorter than its recorded size")
        offset += n
        length -= n
    while length > 0:
        data = os.pread(src, min(length, READ_CHUNK), offset)
        if not data:
            raise BlobUnavailable("source blob is shorter than its recorded size")
        _write_all(dst, data)
        offset += len(data)
        length -= len(data)
