"""The background executor: every bucket task, on every bucket, bounded, resumable, one node at a time.

Each (bucket, task) has a row in `bucket_task_state`: a lease (`holder` until `lease_until`),
the cursor of the pass in progress and when the last pass finished. A node takes the lease
with one conditional UPDATE (free, expired, or already its own), which both dialects
serialise on the row; it renews it with the cursor after every step, and gives it up at the
end of the pass. A node that dies (SIGKILL) stops renewing, so after `lease_seconds` another
node (or the same one restarted) takes over from the last saved cursor. A node that lost its
lease (paused past its expiry) notices at its next save and stops; the step it was in cannot
do harm, since every deletion is re-checked in its own transaction (coffer/lifecycle/expiration.py).

A pass of a bucket starts at most once per `interval` over all nodes (`last_pass`), and runs
step after step of `budget` keys until the task says the bucket is done.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection

from coffer import metrics
from coffer.lifecycle.tasks import BucketTask
from coffer.storage.rules import utcnow
from coffer.store.db import Database
from coffer.store.errors import OutageLog, StoreUnavailable
from coffer.store.schema import bucket_task_state

log = logging.getLogger("coffer.lifecycle")

_ERROR_LOG_SECONDS = 60.0
_FIRST_PASS_SECONDS = 30.0


@dataclass
class BucketPass:
    """What one (bucket, task) got in a pass: counts summed over its steps; `busy` when
    another node held its lease, `complete` when the bucket's pass reached its end, `failed`
    when a step raised (logged; the next pass resumes from the last saved cursor)."""

    bucket: str
    task: str
    counts: dict[str, int] = field(default_factory=dict)
    steps: int = 0
    seconds: float = 0.0
    complete: bool = False
    busy: bool = False
    failed: bool = False


def holder_name() -> str:
    """This process, unique across hosts and restarts (a restarted node waits out its old lease)."""
    return f"{socket.gethostname()[:48]}:{os.getpid()}:{secrets.token_hex(4)}"


class Executor:
    def __init__(
        self,
        db: Database,
        tasks: Sequence[BucketTask],
        *,
        interval: float,
        budget: int,
        lease_seconds: float,
    ) -> None:
        self.db = db
        self.tasks = list(tasks)
        self.interval = interval
        self.budget = budget
        self.lease = timedelta(seconds=lease_seconds)
        self.holder = holder_name()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error_logged = 0.0
        self._outage = OutageLog(log, "lifecycle executor")  # an outage: one line, not a traceback a pass

    # --- the background thread ------------------------------------------------------------
    def start(self) -> None:
        """Passes every `interval` seconds in a daemon thread; an interval of 0 runs none."""
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="coffer-lifecycle", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the step in progress, hand its bucket back (cursor kept), and stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        # The first pass soon after start (buckets another node passed recently are skipped
        # cheaply, by `last_pass`), not a whole interval later.
        delay = min(self.interval, _FIRST_PASS_SECONDS)
        while not self._stop.wait(delay):
            delay = self.interval
            try:
                self.run_pass()
                self._outage.ok()
            except StoreUnavailable as exc:
                self._outage.failed(exc)
            except Exception:
                now = time.monotonic()
                if now - self._error_logged >= _ERROR_LOG_SECONDS:
                    self._error_logged = now
                    log.exception("lifecycle pass failed; the next one retries")

    # --- a pass ---------------------------------------------------------------------------------
    def run_pass(self, bucket: str | None = None, *, force: bool = False) -> list[BucketPass]:
        """One pass of every task over its buckets (or over `bucket` alone). Without `force`
        a bucket whose last pass finished less than `interval` ago waits for the next one."""
        done: list[BucketPass] = []
        for task in self.tasks:
            names = sorted(task.buckets())
            if bucket is not None:
                names = [name for name in names if name == bucket]
            for name in names:
                if self._stop.is_set():
                    return done
                try:
                    done.append(self._run_bucket(task, name, force=force))
                except StoreUnavailable as exc:  # the database is away: so it is for every bucket
                    self._outage.failed(exc)
                    done.append(BucketPass(name, task.name, failed=True))
                    return done
                except Exception:  # the store failed: this bucket waits for the next pass, not the others
                    log.exception("%s pass on %s failed; its cursor is kept", task.name, name)
                    done.append(BucketPass(name, task.name, failed=True))
            if bucket is None:
                self._forget(set(names), task.name)
        return done

    def _run_bucket(self, task: BucketTask, bucket: str, *, force: bool) -> BucketPass:
        result = BucketPass(bucket, task.name)
        started = time.monotonic()
        cursor, fresh = self._acquire(bucket, task.name, force=force)
        if fresh is None:
            result.busy = True
            return result
        if not fresh:
            return result
        try:
            while not self._stop.is_set():
                step = task.step(bucket, cursor, utcnow(), self.budget)
                result.steps += 1
                for name, count in step.counts.items():
                    result.counts[name] = result.counts.get(name, 0) + count
                    if count and name in metrics.LIFECYCLE_ACTION_NAMES:
                        metrics.LIFECYCLE_ACTIONS.labels(task.name, name).inc(count)
                cursor = step.cursor
                if not self._save(bucket, task.name, cursor):
                    log.warning("lost the %s lease on %s; another node carries on", task.name, bucket)
                    return result
                if cursor is None:
                    result.complete = True
                    break
        finally:
            self._release(bucket, task.name, complete=result.complete)
        seconds = result.seconds = time.monotonic() - started
        if result.complete:
            metrics.LIFECYCLE_PASS_SECONDS.labels(task.name).observe(seconds)
        log.info(
            "%s pass on %s: %s in %d step(s), %.2f s%s",
            task.name,
            bucket,
            ", ".join(f"{n}={c}" for n, c in sorted(result.counts.items())) or "nothing",
            result.steps,
            seconds,
            "" if result.complete else " (paused)",
            extra={
                "bucket": bucket,
                "task": task.name,
                "counts": result.counts,
                "seconds": round(seconds, 3),
            },
        )
        return result

    # --- the lease and the cursor ------------------------------------------------------------
    def _acquire(self, bucket: str, task: str, *, force: bool) -> tuple[str | None, bool | None]:
        """Take the lease: (the saved cursor, True) to run; (None, False) when the bucket's
        last pass is recent (lease not kept); (None, None) when another node holds it."""
        now = utcnow()
        state = bucket_task_state.c

        def tx(conn: Connection) -> tuple[str | None, bool | None]:
            key = (state.bucket == bucket) & (state.task == task)
            if conn.execute(sa.select(state.bucket).where(key)).first() is None:
                dialect = pg_dialect if self.db.dialect == "postgresql" else sqlite_dialect
                conn.execute(  # another node may be making it at the same moment
                    dialect.insert(bucket_task_state)
                    .values(bucket=bucket, task=task)
                    .on_conflict_do_nothing(index_elements=["bucket", "task"])
                )
            taken = conn.execute(
                bucket_task_state.update()
                .where(
                    key,
                    sa.or_(state.holder.is_(None), state.lease_until < now, state.holder == self.holder),
                )
                .values(holder=self.holder, lease_until=now + self.lease)
            ).rowcount
            if taken != 1:
                return None, None
            row = conn.execute(sa.select(state.cursor, state.last_pass).where(key)).one()
            if row.cursor is None and not force and row.last_pass is not None:
                last = row.last_pass if row.last_pass.tzinfo else row.last_pass.replace(tzinfo=now.tzinfo)
                if last + timedelta(seconds=self.interval) > now:
                    conn.execute(bucket_task_state.update().where(key).values(holder=None, lease_until=None))
                    return None, False
            if row.cursor is None:
                conn.execute(bucket_task_state.update().where(key).values(pass_started=now))
            return row.cursor, True

        with self.db.write() as conn:
            return tx(conn)

    def _save(self, bucket: str, task: str, cursor: str | None) -> bool:
        """Save the cursor and renew the lease, if it is still ours."""
        now = utcnow()
        state = bucket_task_state.c
        values: dict[str, object] = {"cursor": cursor, "lease_until": now + self.lease}
        if cursor is None:
            values["last_pass"] = now
        with self.db.write() as conn:
            saved = conn.execute(
                bucket_task_state.update()
                .where(state.bucket == bucket, state.task == task, state.holder == self.holder)
                .values(**values)
            ).rowcount
        return saved == 1

    def _release(self, bucket: str, task: str, *, complete: bool) -> None:
        state = bucket_task_state.c
        try:
            with self.db.write() as conn:
                conn.execute(
                    bucket_task_state.update()
                    .where(state.bucket == bucket, state.task == task, state.holder == self.holder)
                    .values(holder=None, lease_until=None)
                )
        except sa.exc.SQLAlchemyError:  # the lease runs out by itself
            log.warning("could not release the %s lease on %s", task, bucket, exc_info=not complete)

    def _forget(self, buckets: set[str], task: str) -> None:
        """Drop the state rows of buckets the task no longer has (deleted, configuration gone)."""
        state = bucket_task_state.c
        with self.db.write() as conn:
            names = set(conn.execute(sa.select(state.bucket).where(state.task == task)).scalars())
            gone = names - buckets
            if gone:
                conn.execute(bucket_task_state.delete().where(state.task == task, state.bucket.in_(gone)))
