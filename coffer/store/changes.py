"""Cache invalidation across processes and nodes.

Every change to cached auth state (keys, tokens, suspensions, policies) bumps a counter
in the metadata store inside its own transaction. After the commit:

* the writer bumps a shared memory-mapped counter in the data directory, which every
  worker process on the same host reads on each request (a memory read, no syscall);
* on PostgreSQL it also sends NOTIFY, which a listener thread in every node turns into a
  local bump, and a poll of the stored counter every `cache_poll_seconds` covers a lost
  notification.

So a revoke is seen by the next request on the same host, and by other nodes within
the notification delay (milliseconds), bounded by the poll interval.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from coffer import metrics
from coffer.datadir import make_private_dir
from coffer.store.errors import OutageLog

if TYPE_CHECKING:
    from coffer.store.db import Database

log = logging.getLogger("coffer.changes")
K = TypeVar("K")
V = TypeVar("V")

CHANNEL = "coffer_changes"
_COUNTER = struct.Struct("<Q")


class ChangeWatcher:
    def __init__(self, db: Database, run_dir: Path, poll_seconds: float = 1.0) -> None:
        self._db = db
        make_private_dir(run_dir)
        path = run_dir / "changes"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < _COUNTER.size:
                os.ftruncate(fd, mmap.PAGESIZE)
            self._map = mmap.mmap(fd, mmap.PAGESIZE)
        finally:
            os.close(fd)
        self._remote = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._poll_seconds = poll_seconds
        self._thread: threading.Thread | None = None

    def token(self) -> tuple[int, int]:
        """A value that differs whenever anything cached may be stale."""
        return (_COUNTER.unpack_from(self._map, 0)[0], self._remote)

    def changed(self) -> None:
        """Call after a committed change: wake this host's workers and the other nodes."""
        with self._lock:
            (value,) = _COUNTER.unpack_from(self._map, 0)
            _COUNTER.pack_into(self._map, 0, value + 1)
        if self._db.dialect == "postgresql":
            try:
                with self._db.engine.connect() as conn:
                    conn.exec_driver_sql(f"NOTIFY {CHANNEL}")
                    conn.commit()
            except Exception:  # the poll covers a lost notification
                log.warning("NOTIFY failed; other nodes will see the change at their next poll")

    def start(self) -> None:
        """Listen for other nodes' changes (PostgreSQL only; SQLite is single-host)."""
        if self._db.dialect != "postgresql" or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._listen, name="coffer-changes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _bump_remote(self) -> None:
        with self._lock:
            self._remote += 1

    def _listen(self) -> None:
        import psycopg

        from coffer.store.db import PG_CONNECT_TIMEOUT

        outage = OutageLog(log, "the change listener")
        url = self._db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        last_seen = -1
        # coffer_change_lag_seconds: 0 after every read of the stored counter; while reads
        # fail, the seconds since the last one, so a listener cut off from the store shows.
        caught_up = time.monotonic()
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=PG_CONNECT_TIMEOUT) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        got = False
                        for _ in conn.notifies(timeout=self._poll_seconds, stop_after=1):
                            got = True
                        stored = self._db.read_changes()
                        caught_up = time.monotonic()
                        outage.ok()
                        metrics.CHANGE_LAG.set(0)
                        if got or stored != last_seen:
                            last_seen = stored
                            self._bump_remote()
            except Exception as exc:  # once per outage, not once per retry
                outage.failed(exc)
                metrics.CHANGE_LAG.set(time.monotonic() - caught_up)
                self._bump_remote()
                self._stop.wait(self._poll_seconds)


class Versioned(Protocol):
    def token(self) -> object:
        """A value that differs whenever anything cached may be stale."""
        ...


class ChangeCache(Generic[K, V]):
    """Answers read from the store (a negative one too), kept until the change counter moves.

    The first lookup after a change swaps in a new, empty dict rather than clearing the old
    one in place: a lookup that started before the change then writes its possibly stale
    answer into the discarded dict, never into the current one. Past `max_entries` entries
    the dict is emptied, so a flood of distinct lookups costs memory once, not for good."""

    def __init__(self, changes: Versioned, meter: metrics.CacheMeter, max_entries: int) -> None:
        self._changes = changes
        self._meter = meter
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._token: object = None
        self._entries: dict[K, V] = {}

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The answer for `key`: the cached one, else `load()`'s, remembered (an exception is not)."""
        token = self._changes.token()
        with self._lock:
            if token != self._token:
                self._entries = {}
                self._token = token
            entries = self._entries
        try:
            value = entries[key]
        except KeyError:
            pass
        else:
            self._meter.hit.inc()
            return value
        self._meter.miss.inc()
        value = load()
        if len(entries) > self._max_entries:
            entries.clear()
        entries[key] = value
        return value
