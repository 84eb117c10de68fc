"""A worker's audit-log spool: events on local disk until they are in the organization's bucket.

Each process that records audit-log events appends them, one JSON line per event, to a
segment file of its own under `<data-dir>/audit-spool/<host>/`:

    20261205T180509Z-host-4711-a1b2c3-000001.jsonl

(created at, host, pid, a random token, a sequence number: unique across restarts, hosts
sharing a data directory and pid reuse). Each line is one `write(2)` on a descriptor
opened with O_APPEND, so an event is in the kernel once `append` returns: a process killed
with SIGKILL loses none. The flusher thread fsyncs what changed (`sync`) at most
`writer.SYNC_SECONDS` later, which bounds what a machine crash can lose.

The process holds an exclusive `flock` on every segment it owns (the open one and those
waiting to be flushed). A segment nobody holds belongs to a process that died: the next
flush of any live process on the host adopts it (`adopt_orphans`), so what a killed worker
spooled reaches the bucket at the next start, or sooner if another worker is alive.
A new segment is created under a dot-name, locked, and only then renamed into view, so it
can never be adopted while its owner is still opening it.

The spool is bounded (`max_bytes` over the process's segments, adopted ones included):
an event that does not fit is dropped, counted (`coffer_audit_log_events_dropped_total`,
reason `spool_full`) and reported in a warning at most once per flush interval. A request
never waits for room. Segments rotate at `segment_bytes`, so one flushed object stays small.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from coffer.datadir import PRIVATE_FILE, fsync_dir, make_private_dir

log = logging.getLogger("coffer.auditlog")

SUFFIX = ".jsonl"
_FORBIDDEN = re.compile(r"[^A-Za-z0-9-]")


def host_name() -> str:
    """This host's name as spool and object keys use it (letters, digits, dashes)."""
    return _FORBIDDEN.sub("-", socket.gethostname().split(".")[0])[:40].strip("-") or "host"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@dataclass
class Segment:
    """One spool file this process holds the lock of."""

    path: Path
    fd: int
    size: int
    adopted: bool = False
    dirty: bool = field(default=False, repr=False)

    @property
    def id(self) -> str:
        """Its name without the suffix: part of every object key made from it."""
        return self.path.name[: -len(SUFFIX)]

    def read(self) -> bytes:
        with open(self.path, "rb") as fh:
            return fh.read()


class Spool:
    """The segments of one process. `append` is thread-safe and never blocks on I/O
    other than its own write."""

    def __init__(self, root: Path, *, max_bytes: int, segment_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._prefix = f"{host_name()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._seq = 0
        self._lock = threading.Lock()
        self._open: Segment | None = None
        self._pending: list[Segment] = []  # closed for appends, waiting for a flush
        self._bytes = 0  # over the open and pending segments
        self._dir_dirty = False  # a segment was created since the directory's last fsync

    @property
    def size(self) -> int:
        return self._bytes

    # --- appending -----------------------------------------------------------------------
    def append(self, line: bytes) -> bool:
        """Append one event (`line` ends with a newline); False when the spool is full."""
        with self._lock:
            if self._bytes + len(line) > self.max_bytes:
                return False
            segment = self._open
            if segment is None or segment.size >= self.segment_bytes:
                if segment is not None:
                    self._pending.append(segment)
                segment = self._open = self._new_segment()
            try:
                _write_all(segment.fd, line)
            except OSError:
                # Part of the line may be in: it ends this segment (the flush skips a torn
                # line), and the next event starts a new one.
                self._pending.append(segment)
                self._open = None
                grown = os.fstat(segment.fd).st_size - segment.size
                segment.size += grown
                self._bytes += grown
                raise
            segment.size += len(line)
            segment.dirty = True
            self._bytes += len(line)
            return True

    def _new_segment(self) -> Segment:
        make_private_dir(self.root)
        self._seq += 1
        created = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        name = f"{created}-{self._prefix}-{self._seq:06d}{SUFFIX}"
        hidden = self.root / f".{name}"
        fd = os.open(hidden, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE)
        try:
            if not _lock(fd):  # nobody else can know the name: cannot happen
                raise OSError(f"cannot lock new audit spool segment {hidden}")
            os.rename(hidden, self.root / name)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                hidden.unlink()
            raise
        self._dir_dirty = True  # the sync thread makes the new name durable (`sync`)
        return Segment(self.root / name, fd, 0)

    def sync(self) -> None:
        """fsync the open segment if it changed since the last sync (and the directory, if
        a segment was created in it): off the appending threads, which never wait for a disk."""
        with self._lock:
            new_entry, self._dir_dirty = self._dir_dirty, False
            dirty = [s for s in (*self._pending, self._open) if s is not None and s.dirty]
            fds = []
            for segment in dirty:
                segment.dirty = False
                fds.append(os.dup(segment.fd))  # the segment may be closed while this one syncs
        if new_entry:
            fsync_dir(self.root)
        for fd in fds:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    # --- flushing --------------------------------------------------------------------------
    def take(self) -> list[Segment]:
        """Close the open segment for appends (new events start a new one) and return every
        segment waiting for a flush, oldest first."""
        with self._lock:
            if self._open is not None and self._open.size:
                self._pending.append(self._open)
                self._open = None
            return list(self._pending)

    def done(self, segment: Segment) -> None:
        """The segment's events are all in their buckets (or given up): delete it."""
        with self._lock:
            with contextlib.suppress(ValueError):
                self._pending.remove(segment)
            self._bytes -= segment.size
        with contextlib.suppress(FileNotFoundError):
            segment.path.unlink()
        os.close(segment.fd)

    def adopt_orphans(self) -> int:
        """Take over the segments of processes that died; returns how many."""
        try:
            listed = os.listdir(self.root)
        except FileNotFoundError:
            return 0
        for name in listed:  # a segment its creator died opening: never written to
            if name.startswith(".") and name.endswith(SUFFIX):
                self._remove_unopened(self.root / name)
        names = sorted(p for p in listed if p.endswith(SUFFIX) and not p.startswith("."))
        with self._lock:
            held = {s.path.name for s in self._pending}
            if self._open is not None:
                held.add(self._open.path.name)
        adopted = 0
        for name in names:
            if name in held:
                continue
            path = self.root / name
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                # Locked: its owner lives. Another inode: deleted (and replaced) meanwhile.
                if not _lock(fd) or os.fstat(fd).st_ino != os.stat(path).st_ino:
                    os.close(fd)
                    continue
            except FileNotFoundError:
                os.close(fd)
                continue
            size = os.fstat(fd).st_size
            with self._lock:
                self._pending.append(Segment(path, fd, size, adopted=True))
                self._bytes += size
            adopted += 1
        if adopted:
            log.info(
                "adopted %d audit-log spool segment(s) left by stopped processes",
                adopted,
                extra={"segments": adopted, "spool": str(self.root)},
            )
        return adopted

    @staticmethod
    def _remove_unopened(path: Path) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            # Old enough that its creator is not between creating and locking it.
            if os.fstat(fd).st_mtime < time.time() - 60 and _lock(fd):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        finally:
            os.close(fd)

    def close(self) -> None:
        """Release every segment without deleting it: a later start replays what is left."""
        with self._lock:
            segments = [*self._pending, *([self._open] if self._open else [])]
            self._pending, self._open, self._bytes = [], None, 0
        for segment in segments:
            with contextlib.suppress(OSError):
                if segment.dirty:
                    os.fsync(segment.fd)
            if segment.size == 0 and not segment.adopted:
                with contextlib.suppress(FileNotFoundError):
                    segment.path.unlink()
            os.close(segment.fd)
