"""Metadata transactions: the retry loop, the locks, retiring blobs, and change notices.

Every storage write is one transaction run by `Transactions.run`. It inserts the new rows
and, in the same transaction, moves every blob it stops referencing into `dead_blobs`
(`retire`), where the collector finds it after a grace period. So a crash leaves at worst
an unreferenced blob (the orphan scan's job), never a row pointing at a missing or torn body.

Group commit (SQLite): concurrent `run` calls of one process share one transaction and
one durable commit. The first to arrive leads: it takes the write lock, runs every
waiting caller's function in a savepoint of its own (one that raises rolls back alone,
as its own transaction would), commits once, and wakes them. Nobody returns before the
commit that holds their rows, so what a success means is unchanged; the WAL's fsync is
shared by the group instead of paid by each (docs/decisions/0200-group-commit.md).

Concurrency: SQLite serialises writers (BEGIN IMMEDIATE). On PostgreSQL a write locks
the rows it depends on (the bucket row FOR KEY SHARE, `lock_bucket`; the key, with an
advisory lock, `lock_key`); a unique partial index allows one latest row per key, so two
writers racing on a new key collide and the loser retries its whole transaction.
"""

from __future__ import annotations

import contextvars
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection

from coffer.storage.errors import Busy, NoSuchBucket
from coffer.storage.reserved import check_writable
from coffer.storage.rules import key_lock_id, utcnow
from coffer.storage.usage import Delta
from coffer.store.changes import ChangeWatcher
from coffer.store.db import Database
from coffer.store.schema import buckets, dead_blobs

if TYPE_CHECKING:
    from coffer.storage.usage import Usage

T = TypeVar("T")

_RETRIES = 10
_DELTA = "coffer.usage"  # the key of the running transaction's Delta in `Connection.info`
_LOCK_BUCKET = (
    sa.select(buckets.c.versioning, buckets.c.org_id, buckets.c.settings)
    .where(buckets.c.name == sa.bindparam("name"))
    .with_for_update(read=True, key_share=True)
)


def _retryable(exc: sa.exc.DBAPIError) -> bool:
    """Unique violations from a racing writer, and PostgreSQL deadlocks/serialisation failures."""
    if isinstance(exc, sa.exc.IntegrityError):
        return True
    return getattr(exc.orig, "sqlstate", None) in {"40001", "40P01"}


class _Call:
    """One caller's function waiting for a group commit, and what became of it."""

    __slots__ = ("context", "error", "finished", "fn", "lead", "result", "solo", "woken")

    def __init__(self, fn: Callable[[Connection], Any]) -> None:
        self.fn = fn
        # The leader runs `fn` in its caller's context: `reserved.system_writes` is a
        # context variable, and one caller's must never lend its writes to another.
        self.context = contextvars.copy_context()
        self.woken = threading.Event()  # set after `finished` or `lead` is
        self.finished = False
        self.lead = False  # to lead the next group (it waits for its result after)
        self.solo = False  # its group's transaction failed in the database: run alone
        self.result: Any = None
        self.error: BaseException | None = None


_GROUP_MAX = 64  # callers per group commit: bounds the one transaction's length


class Transactions:
    """Write transactions of one metadata store, shared by Buckets, Objects and Uploads."""

    def __init__(self, db: Database, changes: ChangeWatcher | None = None) -> None:
        self.db = db
        self.changes = changes
        self._local_changes = 0
        self._retire_stmt: Any = None  # built on first use, for this store's dialect
        # Applies each transaction's usage Delta before it commits (set by `Usage`).
        self.usage: Usage | None = None
        self._grouped = db.dialect == "sqlite"
        self._queue: list[_Call] = []
        self._queue_lock = threading.Lock()
        self._leading = False
        self._in_group = threading.local()

    def run(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` in a write transaction, retrying when a concurrent writer won a race.
        What `fn` changed in the usage counters (`delta`) is applied, and checked against
        the capacity caps, in the same transaction just before it commits. On SQLite, `fn`
        may share that transaction and its commit with concurrent callers (group commit);
        it returns once the commit is durable either way."""
        if not self._grouped or getattr(self._in_group, "active", False):
            return self._run_alone(fn)
        call = _Call(fn)
        with self._queue_lock:
            self._queue.append(call)
            call.lead = not self._leading
            self._leading = True
        while True:
            if call.lead:
                call.lead = False
                self._lead()
            if call.finished:
                break
            call.woken.wait()
            call.woken.clear()  # a flag set before a wake is seen by the checks above
        if call.solo:
            return self._run_alone(fn)
        if call.error is not None:
            raise call.error
        result: T = call.result
        return result

    def _lead(self) -> None:
        """Run one group of waiting calls in one transaction, then hand the lead on."""
        with self._queue_lock:
            group, self._queue = self._queue[:_GROUP_MAX], self._queue[_GROUP_MAX:]
        self._in_group.active = True
        try:
            if len(group) == 1:  # nobody to share with: its own transaction, no savepoint
                self._run_one(group[0])
            else:
                self._run_group(group)
        finally:
            self._in_group.active = False
            with self._queue_lock:
                nxt = self._queue[0] if self._queue else None
                self._leading = nxt is not None
                if nxt is not None:
                    nxt.lead = True
            for call in group:
                call.finished = True
                call.woken.set()
            if nxt is not None:
                nxt.woken.set()

    def _run_one(self, call: _Call) -> None:
        try:
            call.result = call.context.run(self._run_alone, call.fn)
        except BaseException as exc:  # the caller's to raise, in its own thread
            call.error = exc

    def _run_group(self, group: list[_Call]) -> None:
        try:
            with self.db.write() as conn:
                for call in group:
                    self._run_saved(conn, call)
        except sa.exc.DBAPIError:
            # BEGIN or COMMIT failed (busy, a full disk): nothing of the group is stored,
            # and each caller runs alone with its retries, as it would have.
            for call in group:
                call.solo = True
        except BaseException as exc:
            for call in group:
                call.error = call.error or exc

    def _run_saved(self, conn: Connection, call: _Call) -> None:
        """One call of a group, in a savepoint: what it raises undoes only its own work. A
        database error makes it run alone after the group (its retry loop decides)."""
        delta = conn.info[_DELTA] = Delta()
        savepoint = conn.begin_nested()
        try:
            call.result = call.context.run(call.fn, conn)
            if delta and self.usage is not None:
                call.context.run(self.usage.apply, conn, delta)
            savepoint.commit()
        except sa.exc.DBAPIError:
            savepoint.rollback()
            call.solo = True
        except Exception as exc:
            savepoint.rollback()
            call.error = exc
        finally:
            conn.info.pop(_DELTA, None)

    def _run_alone(self, fn: Callable[[Connection], T]) -> T:
        for attempt in range(_RETRIES):
            try:
                with self.db.write() as conn:
                    delta = conn.info[_DELTA] = Delta()
                    try:
                        result = fn(conn)
                        if delta and self.usage is not None:
                            self.usage.apply(conn, delta)
                        return result
                    finally:
                        conn.info.pop(_DELTA, None)
            except sa.exc.DBAPIError as exc:
                if not _retryable(exc):
                    if self.db.dialect == "sqlite" and "locked" in str(exc.orig):
                        raise Busy("The metadata store is busy; please retry.") from exc
                    raise
                if attempt == _RETRIES - 1:
                    raise Busy("Conflicting concurrent writes; please retry.") from exc
                time.sleep(min(0.05, 0.001 * 2**attempt) * (1 + secrets.randbelow(100) / 100))
        raise AssertionError("unreachable")

    def retire(self, conn: Connection, blobs: Iterable[str]) -> None:
        """Hand blobs no row references any more to the collector, in the caller's transaction."""
        now = utcnow()
        rows = [{"blob": b, "dead_since": now} for b in dict.fromkeys(blobs) if b]
        if not rows:
            return
        if self._retire_stmt is None:
            dialect = pg_dialect if self.db.dialect == "postgresql" else sqlite_dialect
            self._retire_stmt = dialect.insert(dead_blobs).on_conflict_do_nothing(index_elements=["blob"])
        conn.execute(self._retire_stmt, rows)

    def changed(self) -> None:
        """After a committed bucket change: this process's caches and every other's go stale."""
        self._local_changes += 1
        if self.changes is not None:
            self.changes.changed()

    def token(self) -> object:
        """Changes whenever a bucket may have changed, here or in another process."""
        remote = self.changes.token() if self.changes is not None else None
        return (remote, self._local_changes)

    @staticmethod
    def delta(conn: Connection) -> Delta:
        """The usage changes of the transaction `run` is running on `conn`."""
        delta: Delta = conn.info[_DELTA]
        return delta

    @staticmethod
    def lock_bucket(conn: Connection, name: str) -> str:
        """The bucket's versioning state, with its row share-locked against a concurrent
        DeleteBucket (PostgreSQL; SQLite writers are serial anyway). Every object and
        upload write takes it, so a reserved bucket's refusal lives here (`reserved`)."""
        check_writable(name)
        row = conn.execute(_LOCK_BUCKET, {"name": name}).first()
        if row is None:
            raise NoSuchBucket(name)
        delta = conn.info.get(_DELTA)
        if delta is not None:
            delta.lock(name, row.org_id, row.settings)
        return str(row.versioning)

    def lock_key(self, conn: Connection, bucket: str, key: str) -> None:
        """Serialise writers of one key until commit (PostgreSQL; SQLite writers are serial).

        Without it, racing writers would both see the same latest version and all but one
        would fail on the unique latest index and retry; with it they simply queue."""
        if self.db.dialect == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key_lock_id(bucket, key))))
