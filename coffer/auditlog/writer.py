"""The flusher: spool segments into gzip-compressed JSON-lines objects in the audit buckets.

A segment's events are grouped by organization, plane and hour, and each group becomes one
object of the organization's `cw-<org-id>-audit-logs` bucket:

    control-plane/2026/12/05/18/20261205T180509Z-host-4711-a1b2c3-000001.json.gz

The name is the segment's, so writing a segment again (a flush that failed half-way, a
process killed after writing and before deleting the segment) rewrites the same objects
with the same events: replay never duplicates an event. The segment is deleted once every
group is in its bucket. A transient failure (the metadata store unreachable, busy, the disk
full) keeps the segment for the next flush; a refusal that retrying cannot cure (a storage
error such as a quota) gives the group up, counted as dropped (`unwritable`) and logged.

Objects are written through the storage core as Coffer itself (`reserved.system_writes`),
never over HTTP; the bucket is created on first use, owned by `reserved.SYSTEM_OWNER`.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coffer import metrics
from coffer.auditlog.events import PLANES, hour_of
from coffer.auditlog.spool import Segment, Spool
from coffer.storage.bodies import Expect
from coffer.storage.errors import BlobUnavailable, Busy, InsufficientStorage, NoSuchBucket, StorageError
from coffer.storage.reserved import SYSTEM_OWNER, audit_bucket_name, system_writes
from coffer.store.errors import OutageLog, StoreUnavailable

if TYPE_CHECKING:
    from coffer.storage.service import Storage

log = logging.getLogger("coffer.auditlog")

CONTENT_TYPE = "application/gzip"  # gzip-compressed JSON lines; no Content-Encoding: the file is .gz
SYNC_SECONDS = 0.2  # the most an appended event waits for its fsync
_TRANSIENT = (Busy, InsufficientStorage, BlobUnavailable)
_SPOOLED = {plane: metrics.AUDIT_EVENTS_SPOOLED.labels(plane) for plane in PLANES}
_FLUSHED = {plane: metrics.AUDIT_EVENTS_FLUSHED.labels(plane) for plane in PLANES}
_DROPPED = {
    (plane, reason): metrics.AUDIT_EVENTS_DROPPED.labels(plane, reason)
    for plane in PLANES
    for reason in metrics.AUDIT_DROP_REASONS
}


def spooled(plane: str) -> None:
    _SPOOLED[plane].inc()


def dropped(plane: str, reason: str, count: int = 1) -> None:
    _DROPPED[plane, reason].inc(count)


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    yield body


@dataclass
class _Group:
    org_id: str
    plane: str
    hour: str
    lines: list[bytes] = field(default_factory=list)


@dataclass
class FlushReport:
    """What one flush did, for its log line."""

    segments: int = 0
    objects: int = 0
    events: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    unreadable: int = 0
    failed: bool = False


class Flusher:
    """Writes spool segments into the audit buckets; runs the worker's flush thread."""

    def __init__(self, spool: Spool, storage: Storage, *, interval: float) -> None:
        self.spool = spool
        self.storage = storage
        self.interval = interval
        self._lock = threading.Lock()  # one flush at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._known_buckets: set[str] = set()
        self.full_drops: Counter[str] = Counter()  # set by the recorder, reported per flush
        self._outage = OutageLog(log, "the audit-log flush")

    # --- the thread --------------------------------------------------------------------------
    def start(self) -> None:
        """Replay what dead processes left, then flush every `interval` and fsync the spool
        every SYNC_SECONDS, until `stop`."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="coffer-audit-log", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """A last flush, then the thread ends (or, without one, a flush on a thread of its own:
        the caller may be on an event loop, which `Objects.write` cannot nest in)."""
        thread = self._thread
        if thread is None:
            thread = threading.Thread(target=self.flush_quietly, name="coffer-audit-log-final", daemon=True)
            thread.start()
        else:
            self._stop.set()
        thread.join(timeout)
        if thread.is_alive():
            log.warning(
                "the last audit-log flush did not finish in %.0f s; the spool keeps the events for the "
                "next start",
                timeout,
            )
        self._thread = None

    def _run(self) -> None:
        self.flush_quietly(adopt=True)  # replay at start
        next_flush = time.monotonic() + self.interval
        while not self._stop.wait(max(0.0, min(SYNC_SECONDS, next_flush - time.monotonic()))):
            try:
                self.spool.sync()
            except OSError as exc:
                log.error("cannot fsync the audit-log spool: %s", exc)
            if time.monotonic() >= next_flush:
                self.flush_quietly(adopt=True)
                next_flush = time.monotonic() + self.interval
        self.flush_quietly()

    def flush_quietly(self, *, adopt: bool = False) -> FlushReport | None:
        """`flush`, logging (never raising) what went wrong."""
        try:
            return self.flush(adopt=adopt)
        except Exception:
            metrics.AUDIT_FLUSH_FAILURES.inc()
            log.exception("audit-log flush failed; the spool keeps its events for the next one")
            return None

    # --- one flush ---------------------------------------------------------------------------
    def flush(self, *, adopt: bool = False) -> FlushReport:
        """Write every waiting segment (and, with `adopt`, those of dead processes first)."""
        with self._lock:
            started = time.perf_counter()
            if adopt:
                self.spool.adopt_orphans()
            report = FlushReport()
            for segment in self.spool.take():
                try:
                    if not self._flush_segment(segment, report):
                        report.failed = True  # kept for the next flush; the others go on
                    self._outage.ok()
                except StoreUnavailable as exc:  # the next flush retries them all
                    report.failed = True
                    self._outage.failed(exc)
                    break
                except Exception:  # the disk, ...: the next flush retries them all
                    report.failed = True
                    log.warning("audit-log flush stopped early", exc_info=True)
                    break
            full, self.full_drops = self.full_drops, Counter()
            report.dropped.update({f"{plane}:spool_full": n for plane, n in full.items()})
            metrics.AUDIT_SPOOL_BYTES.set(self.spool.size)
            if report.failed:
                metrics.AUDIT_FLUSH_FAILURES.inc()
            if report.segments or report.dropped or report.failed:
                self._log(report, time.perf_counter() - started)
            return report

    def _flush_segment(self, segment: Segment, report: FlushReport) -> bool:
        """Write one segment's groups; True when it is done with (and deleted)."""
        groups: dict[tuple[str, str, str], _Group] = {}
        for line in segment.read().splitlines():
            parsed = _parse(line)
            if parsed is None:
                report.unreadable += 1  # a line cut short by a crash mid-write
                continue
            org_id, plane, event = parsed
            hour = hour_of(event["timestamp"])
            group = groups.setdefault((org_id, plane, hour), _Group(org_id, plane, hour))
            group.lines.append(json.dumps(event, separators=(",", ":"), default=str).encode())
        events: Counter[str] = Counter()
        for group in groups.values():
            key = f"{group.plane}/{group.hour}/{segment.id}.json.gz"
            body = gzip.compress(b"\n".join(group.lines) + b"\n")
            try:
                self._put(group.org_id, key, body)
            except StorageError as exc:
                if isinstance(exc, _TRANSIENT):
                    log.warning("audit-log object %s not written yet: %s", key, exc)
                    return False
                log.error(
                    "audit-log events given up: %s refused %s: %s",
                    audit_bucket_name(group.org_id),
                    key,
                    exc,
                    extra={"org_id": group.org_id, "key": key, "events": len(group.lines)},
                )
                dropped(group.plane, "unwritable", len(group.lines))
                report.dropped[f"{group.plane}:unwritable"] += len(group.lines)
                continue
            events[group.plane] += len(group.lines)
            report.objects += 1
        self.spool.done(segment)
        for plane, count in events.items():
            _FLUSHED[plane].inc(count)
        report.events.update(events)
        report.segments += 1
        return True

    def _put(self, org_id: str, key: str, body: bytes) -> None:
        bucket = self._bucket(org_id)
        expect = Expect(length=len(body))
        write = self.storage.objects.write(
            bucket, key, _chunks(body), expect, headers={"content-type": CONTENT_TYPE}, owner=SYSTEM_OWNER
        )
        with system_writes():
            asyncio.run(write)

    def _bucket(self, org_id: str) -> str:
        """The organization's audit bucket, created on first use."""
        name = audit_bucket_name(org_id)
        if name in self._known_buckets:
            return name
        buckets = self.storage.buckets
        try:
            buckets.get(name)
        except NoSuchBucket:
            with system_writes():
                buckets.create(org_id=org_id, owner=SYSTEM_OWNER, name=name, zone=None, allow_reserved=True)
            log.info("created the audit-log bucket %s", name, extra={"org_id": org_id, "bucket": name})
        self._known_buckets.add(name)
        return name

    @staticmethod
    def _log(report: FlushReport, seconds: float) -> None:
        log.info(
            "audit-log flush: %d event(s) into %d object(s)",
            sum(report.events.values()),
            report.objects,
            extra={
                "segments": report.segments,
                "objects": report.objects,
                "events": dict(report.events),
                "dropped": dict(report.dropped),
                "unreadable_lines": report.unreadable,
                "incomplete": report.failed,
                "duration_ms": round(seconds * 1000, 3),
            },
        )


def _parse(line: bytes) -> tuple[str, str, dict[str, Any]] | None:
    try:
        record = json.loads(line)
        org_id, plane, event = record["org"], record["plane"], record["event"]
        if not (isinstance(org_id, str) and plane in PLANES and isinstance(event, dict)):
            return None
        hour_of(str(event["timestamp"]))
    except (ValueError, KeyError, TypeError):
        return None
    return org_id, plane, event
