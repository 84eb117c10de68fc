"""Group commit (SQLite): concurrent write transactions of a process share one commit,
yet each caller sees only its own outcome, runs with its own context, and returns only
once its rows are committed. The crash tests (test_crash.py) cover durability."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coffer.storage.errors import NoSuchBucket, ReservedBucket
from coffer.storage.reserved import check_writable, system_writes
from coffer.storage.transact import Transactions
from coffer.store.schema import change_counter
from tests.support.storage import Env, SQLCounter

Fn = Callable[[Connection], Any]


def _sqlite_only(env: Env) -> Transactions:
    if env.backend != "sqlite":
        pytest.skip("PostgreSQL commits each transaction on its own")
    return env.storage.tx


@pytest.fixture
def g() -> str:
    """A prefix of this test's own counters (the store may be shared by several tests)."""
    return f"g{secrets.token_hex(3)}-"


def _counters(env: Env, prefix: str) -> dict[str, int]:
    with env.db.read() as conn:
        rows = conn.execute(sa.select(change_counter).where(change_counter.c.name.startswith(prefix)))
        return {r.name.removeprefix(prefix): r.value for r in rows}


class _Queued:
    """Runs `tx.run(fn)` in a thread of its own and keeps what it returned or raised."""

    def __init__(self, tx: Transactions, fn: Fn, *, system: bool = False) -> None:
        self.outcome: Any = None
        self.thread = threading.Thread(target=self._go, args=(tx, fn, system))

    def _go(self, tx: Transactions, fn: Fn, system: bool) -> None:
        try:
            if system:
                with system_writes():
                    self.outcome = tx.run(fn)
            else:
                self.outcome = tx.run(fn)
        except Exception as exc:
            self.outcome = exc


def _grouped(tx: Transactions, first: Fn, rest: list[tuple[Fn, bool]]) -> tuple[_Queued, list[_Queued]]:
    """Run `first` alone, and while it holds the lead queue `rest` in order (fn, system?):
    they form the next group, led by the first of them."""
    entered, release = threading.Event(), threading.Event()

    def hold(conn: Connection) -> Any:
        entered.set()
        assert release.wait(10)
        return first(conn)

    leader = _Queued(tx, hold)
    leader.thread.start()
    assert entered.wait(10)
    queued = []
    for fn, system in rest:
        q = _Queued(tx, fn, system=system)
        q.thread.start()
        queued.append(q)
        while len(tx._queue) < len(queued):  # each queued in the order given
            threading.Event().wait(0.005)
    release.set()
    for q in [leader, *queued]:
        q.thread.join(20)
        assert not q.thread.is_alive()
    return leader, queued


def _bump(env: Env, prefix: str, name: str) -> Fn:
    def fn(conn: Connection) -> str:
        env.db.bump_changes(conn, prefix + name)
        return name

    return fn


def test_concurrent_writers_share_one_commit(env: Env, g: str) -> None:
    tx = _sqlite_only(env)
    names = [f"w{i}" for i in range(8)]
    with SQLCounter(env.db) as sql:
        leader, queued = _grouped(tx, _bump(env, g, "lead"), [(_bump(env, g, n), False) for n in names])
    assert leader.outcome == "lead" and [q.outcome for q in queued] == names
    assert sql.commits == 2  # the leader's own transaction, then one for the eight queued
    assert _counters(env, g) == {n: 1 for n in ["lead", *names]}


def test_a_failing_writer_in_a_group_undoes_only_its_own_work(env: Env, g: str) -> None:
    tx = _sqlite_only(env)

    def fails(conn: Connection) -> None:
        env.db.bump_changes(conn, g + "failed")
        raise NoSuchBucket("gone")

    rest = [(_bump(env, g, "a"), False), (fails, False), (_bump(env, g, "b"), False)]
    _, (a, failed, b) = _grouped(tx, _bump(env, g, "lead"), rest)
    assert isinstance(failed.outcome, NoSuchBucket)
    assert (a.outcome, b.outcome) == ("a", "b")
    assert _counters(env, g) == {"lead": 1, "a": 1, "b": 1}


@pytest.mark.parametrize("system_leads", [True, False])
def test_each_writer_runs_in_its_own_context(env: Env, g: str, system_leads: bool) -> None:
    """A reserved bucket's writes stay Coffer's own whichever caller leads the group."""
    tx = _sqlite_only(env)

    def reserved_write(conn: Connection) -> str:
        check_writable("cw-0123456789-audit-logs")
        return "written"

    order = [True, False, True] if system_leads else [False, True, False]
    _, queued = _grouped(tx, _bump(env, g, "lead"), [(reserved_write, system) for system in order])
    for q, system in zip(queued, order, strict=True):
        if system:
            assert q.outcome == "written"
        else:
            assert isinstance(q.outcome, ReservedBucket)


def test_a_lone_writer_commits_without_savepoints(env: Env, g: str) -> None:
    tx = _sqlite_only(env)
    with SQLCounter(env.db) as sql:
        assert tx.run(_bump(env, g, "alone")) == "alone"
    assert sql.commits == 1
    assert not [s for s, _ in sql.statements if "SAVEPOINT" in s.upper()]
    assert _counters(env, g) == {"alone": 1}
