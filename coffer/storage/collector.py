"""The garbage collector: the only code that deletes published blobs.

Writes never unlink what they replace; they move it into `dead_blobs` in their own
transaction. The collector unlinks those after a grace period (a GET that has read the
metadata opens its files well within it, and an open file survives an unlink), removes
temp files a dead writer left, and, when asked, scans for orphans: published blobs
that no row mentions, left by a crash between publishing and committing.

Short of space (a write found the disk full, or less than LOW_SPACE_FRACTION or
LOW_SPACE_BYTES is free, whichever is smaller) the grace shrinks to PRESSURE_GRACE and
passes run every PRESSURE_INTERVAL, so deleting objects frees space within seconds
rather than ten minutes. That is safe where an unlinked file stays readable by whoever
opened it, which POSIX promises on a local filesystem: a reader that has opened its
files loses nothing, and one that has read metadata but not opened yet does so within
milliseconds, far inside PRESSURE_GRACE. Shared storage promises it only to the host
that unlinks (an NFS reader on another node gets ESTALE), so there the grace stays whole
and a full store waits for it (BlobStore.unlink_spares_readers decides).

A write that finds the disk full asks for a pass at once (`relieve`, in the writer's
thread, one at a time per process, at most every RELIEF_INTERVAL) and, if it freed
anything, tries once more.

Across nodes (shared storage): a GET opens its files within milliseconds of reading the
metadata, and its blobs are unlinked no sooner than the grace after the delete that
retired them. A GET still streaming after `pin_after` (a quarter of the grace, at most a
minute) hard-links its files under `.pins/` and renews the links while it reads
(`BlobStore.pin`), so the collector of any node may unlink a retired blob's name but its
file lives until the last reader lets go; a pin whose reader died expires after the grace
and is removed here. Writers need nothing: a temp file is written to continuously (body
idle timeout 30 s, stale after an hour), and a published blob is committed or released at
once (orphans must be an hour old). See docs/decisions/0180-faults-and-shared-storage.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import sqlalchemy as sa

from coffer.storage.blobs import BlobStore, is_blob_id
from coffer.storage.rows import blobs_of
from coffer.storage.rules import utcnow
from coffer.store.db import Database
from coffer.store.errors import OutageLog, StoreUnavailable
from coffer.store.schema import dead_blobs, multipart_parts, objects

log = logging.getLogger("coffer.storage.gc")

DEAD_BLOB_GRACE = timedelta(minutes=10)  # a GET that read metadata opens its files well within this
STALE_TEMP_AGE = timedelta(hours=1)  # a temp file idle this long belongs to a dead writer
ORPHAN_MIN_AGE = timedelta(hours=1)  # a published blob this old and unreferenced was never committed
GC_INTERVAL = 60.0
PRESSURE_GRACE = timedelta(seconds=5)  # short of space, on a local filesystem (see above)
PRESSURE_INTERVAL = 1.0  # seconds between passes while short of space
PRESSURE_HOLD = 60.0  # seconds a full-disk write keeps the collector in that mode
RELIEF_INTERVAL = 1.0  # seconds between write-triggered passes in one process
PIN_AFTER_MAX = 60.0  # seconds into a read after which it pins its files, at the latest
LOW_SPACE_FRACTION = 0.05  # short of space: less than this share of the filesystem free,
LOW_SPACE_BYTES = 1 << 30  # or less than this, whichever is smaller
ORPHAN_SCAN_INTERVAL = 6 * 3600.0
_GC_BATCH = 500


@contextlib.contextmanager
def host_lock(path: os.PathLike[str] | str) -> Iterator[bool]:
    """A non-blocking flock: yields whether this process got it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


class Collector:
    def __init__(self, db: Database, blobs: BlobStore, *, grace: timedelta = DEAD_BLOB_GRACE) -> None:
        self.db = db
        self.blobs = blobs
        self.grace = grace
        blobs.pin_after = min(PIN_AFTER_MAX, grace.total_seconds() / 4)
        blobs.pin_ttl = grace.total_seconds()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._relief_lock = threading.Lock()
        self._last_relief = -RELIEF_INTERVAL
        self._last_relief_freed = False
        self._pressure_until = 0.0
        self._pressed = False
        blobs.on_full = self.relieve

    def collect(
        self, *, older_than: datetime | None = None, orphans: bool = False, pressure: bool = False
    ) -> int:
        """Unlink retired blobs and stale temp files; returns how many were removed.

        Retired blobs go once retired longer than the grace period (10 minutes), temp
        files once idle for an hour. With `orphans`, every published blob older than an
        hour that no object, part or retirement row mentions is removed too: the leftover
        of a crash between publishing a blob and committing its metadata. An explicit
        `older_than` replaces all three cut-offs; `pressure` shortens the grace where that
        is safe."""
        now = utcnow()
        removed = self._collect_dead(older_than or now - self.dead_grace(pressure))
        removed += self.blobs.remove_stale_temp((older_than or now - STALE_TEMP_AGE).timestamp())
        removed += self.blobs.remove_expired_pins(now.timestamp())
        if orphans:
            removed += self._collect_orphans(older_than or now - ORPHAN_MIN_AGE)
        return removed

    # space -------------------------------------------------------------------------------
    def dead_grace(self, pressure: bool) -> timedelta:
        """How long a retired blob is kept: shorter when space is short, unless shared storage."""
        if pressure and self.blobs.unlink_spares_readers():
            return min(self.grace, PRESSURE_GRACE)
        return self.grace

    def short_of_space(self) -> bool:
        """A write found the disk full lately, or little is free."""
        if time.monotonic() < self._pressure_until:
            return True
        try:
            free, total = self.blobs.free_space()
        except OSError:
            return False
        return free < min(LOW_SPACE_BYTES, total * LOW_SPACE_FRACTION)

    def relieve(self) -> bool:
        """A write found the disk full: collect now what may go, and say whether anything
        did (the write then tries once more). Runs in the writer's thread, never on an
        event loop; one pass at a time per process, and a write arriving within
        RELIEF_INTERVAL of the last pass takes that pass's answer instead of another."""
        self._pressure_until = time.monotonic() + PRESSURE_HOLD
        self._wake.set()  # the background thread switches to PRESSURE_INTERVAL
        with self._relief_lock:
            if time.monotonic() - self._last_relief < RELIEF_INTERVAL:
                return self._last_relief_freed
            try:
                # One batch: enough to let this write on; the background thread does the rest.
                removed = self._collect_dead(utcnow() - self.dead_grace(True), batches=1)
                freed = removed > 0
                if removed:
                    log.info("the disk was full: removed %d retired blob(s)", removed)
            except Exception:
                log.exception("collecting on a full disk failed")
                freed = True  # what was unlinked before the failure may be enough
            self._last_relief, self._last_relief_freed = time.monotonic(), freed
            return freed

    def _note_pressure(self, pressure: bool) -> None:
        """One line when the store becomes short of space and one when it no longer is."""
        if pressure == self._pressed:
            return
        self._pressed = pressure
        if not pressure:
            log.info("the blob store has space again; retired blobs wait out the full grace")
        elif self.blobs.unlink_spares_readers():
            log.warning(
                "the blob store is short of space: retired blobs are removed after %.0f s, not %.0f s",
                min(self.grace, PRESSURE_GRACE).total_seconds(),
                self.grace.total_seconds(),
            )
        else:
            log.warning(
                "the blob store is short of space, and on shared storage (or storage whose kind "
                "is unknown) retired blobs must wait out the full %.0f s grace: space freed by "
                "deletes comes back only then",
                self.grace.total_seconds(),
            )

    def _collect_dead(self, cutoff: datetime, *, batches: int | None = None) -> int:
        """Unlink first, then forget: a crash in between only means a second, harmless unlink."""
        removed = 0
        while batches is None or batches > 0:
            batches = None if batches is None else batches - 1
            with self.db.read() as conn:
                batch = list(
                    conn.execute(
                        sa.select(dead_blobs.c.blob)
                        .where(dead_blobs.c.dead_since < cutoff)
                        .order_by(dead_blobs.c.dead_since)
                        .limit(_GC_BATCH)
                    ).scalars()
                )
            if not batch:
                return removed
            for blob in batch:
                if is_blob_id(blob) and self.blobs.unlink(blob):
                    removed += 1
            with self.db.write() as conn:
                conn.execute(dead_blobs.delete().where(dead_blobs.c.blob.in_(batch)))
            if len(batch) < _GC_BATCH:
                return removed
        return removed

    def _collect_orphans(self, cutoff: datetime) -> int:
        limit = cutoff.timestamp()
        candidates = {blob for blob, mtime in self.blobs.iter_blobs() if mtime < limit}
        if not candidates:
            return 0
        for blob in self._referenced_blobs():
            candidates.discard(blob)
        removed = sum(1 for blob in candidates if self.blobs.unlink(blob))
        if removed:
            log.info("removed %d orphaned blob(s)", removed)
        return removed

    def _referenced_blobs(self) -> Iterator[str]:
        """Every blob id any row mentions, from one consistent snapshot (so a part moving
        into an object mid-scan is seen in one place or the other)."""
        with contextlib.ExitStack() as stack:
            conn = stack.enter_context(self.db.engine.connect())
            if self.db.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            stack.enter_context(conn.begin())
            streamed = conn.execution_options(yield_per=1000)
            for (parts,) in streamed.execute(
                sa.select(objects.c.parts).where(objects.c.is_delete_marker == sa.false())
            ):
                yield from blobs_of(parts)
            yield from streamed.execute(sa.select(multipart_parts.c.blob)).scalars()
            yield from streamed.execute(sa.select(dead_blobs.c.blob)).scalars()

    # the background thread ------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, interval: float = GC_INTERVAL, orphan_interval: float = ORPHAN_SCAN_INTERVAL) -> None:
        """Collect now and every `interval` seconds in a daemon thread; scan for orphans on
        start and every `orphan_interval`. One process per host collects at a time (a lock
        file beside the blobs); the others skip their turn."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, args=(interval, orphan_interval), name="coffer-gc", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=30)

    def _loop(self, interval: float, orphan_interval: float) -> None:
        next_orphan_scan = 0.0
        outage = OutageLog(log, "the garbage collector")
        while not self._stop.is_set():
            scan = time.monotonic() >= next_orphan_scan
            pressure = self.short_of_space()
            self._note_pressure(pressure)
            try:
                with host_lock(self.blobs.root / ".gc.lock") as held:
                    if held:
                        removed = self.collect(orphans=scan, pressure=pressure)
                        if scan:
                            next_orphan_scan = time.monotonic() + orphan_interval
                        if removed:
                            log.info("garbage collector removed %d file(s)", removed)
                outage.ok()
            except StoreUnavailable as exc:
                outage.failed(exc)
            except Exception:
                log.exception("garbage collection failed; retrying in %.0fs", interval)
            self._wake.wait(min(interval, PRESSURE_INTERVAL) if pressure else interval)
            self._wake.clear()
