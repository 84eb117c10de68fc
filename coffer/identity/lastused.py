"""When, how and from where each access key was last used, without a write per request.

A request only sets one dict entry in memory (newest wins); a thread per process writes
the entries at most once per `flush_seconds` and once more at shutdown, with an upsert
that keeps the newest time, so the stored value is exact within that window across every
worker and node however their flushes interleave.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from coffer.identity.models import as_utc
from coffer.store.db import Database
from coffer.store.errors import OutageLog, StoreUnavailable
from coffer.store.schema import access_key_last_used

log = logging.getLogger("coffer.identity.lastused")

# Bounds what one process holds between flushes: past it, new keys wait for the next flush
# (a key already pending is still updated in place).
MAX_PENDING = 100_000
_TABLE = access_key_last_used


@dataclass(frozen=True)
class LastUse:
    time: datetime
    operation: str
    source_ip: str
    face: str


class LastUsedTracker:
    def __init__(self, db: Database, flush_seconds: float) -> None:
        self.db = db
        self.flush_seconds = flush_seconds
        self._pending: dict[str, tuple[float, str, str, str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._periodic: list[Callable[[], None]] = []
        self._outage = OutageLog(log, "last-used flush")
        upsert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
        insert = upsert(_TABLE)
        excluded = insert.excluded
        self._upsert = insert.on_conflict_do_update(
            index_elements=[_TABLE.c.access_key_id],
            set_={name: excluded[name] for name in ("used_at", "operation", "source_ip", "face")},
            where=_TABLE.c.used_at < excluded.used_at,
        )

    def record(self, access_key_id: str, operation: str, source_ip: str, face: str) -> None:
        """The hot path: one clock read and one dict store under an uncontended lock."""
        entry = (time.time(), operation, source_ip[:64], face)
        with self._lock:
            if len(self._pending) < MAX_PENDING or access_key_id in self._pending:
                self._pending[access_key_id] = entry

    def flush(self) -> int:
        """Write what is pending; returns how many keys were written. Failed rows stay pending."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        rows = [
            {
                "access_key_id": key_id,
                "used_at": datetime.fromtimestamp(at, UTC),
                "operation": op,
                "source_ip": ip,
                "face": face,
            }
            for key_id, (at, op, ip, face) in sorted(pending.items())  # one lock order on every node
        ]
        try:
            with self.db.write() as conn:
                conn.execute(self._upsert, rows)
        except Exception as exc:
            if isinstance(exc, StoreUnavailable):
                self._outage.failed(exc)  # one line per outage, not one per flush
            else:
                log.exception("could not record the last use of %d access keys; retrying later", len(rows))
            with self._lock:
                for key_id, entry in pending.items():
                    newer = self._pending.get(key_id)
                    if newer is None or newer[0] < entry[0]:
                        self._pending[key_id] = entry
            return 0
        self._outage.ok()
        return len(rows)

    def read(self, access_key_ids: Iterable[str]) -> dict[str, LastUse]:
        ids = list(access_key_ids)
        if not ids:
            return {}
        with self.db.read() as conn:
            found = conn.execute(sa.select(_TABLE).where(_TABLE.c.access_key_id.in_(ids))).all()
        return {
            r.access_key_id: LastUse(as_utc(r.used_at) or datetime.now(UTC), r.operation, r.source_ip, r.face)
            for r in found
        }

    # --- the flush thread -------------------------------------------------------------------
    def every_flush(self, task: Callable[[], None]) -> None:
        """Run `task` on the flush thread after each flush (cheap periodic work, as the key gauges)."""
        self._periodic.append(task)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="coffer-last-used", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()
            for task in self._periodic:
                try:
                    task()
                except StoreUnavailable as exc:
                    self._outage.failed(exc)
                except Exception:
                    log.exception("periodic key task failed")

    def close(self) -> None:
        """Stop the thread and write what is left, while the store is still open."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()
