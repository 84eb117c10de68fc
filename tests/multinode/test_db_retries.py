"""A real deadlock (40P01) and a real serialization failure (40001) on PostgreSQL, between
two transactions run by `Transactions.run`, the one place Coffer runs write transactions:
the loser is retried (with jittered backoff, a bounded number of times) and both commit,
each exactly once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from coffer.storage.transact import Transactions
from coffer.store.db import Database
from coffer.store.schema import change_counter
from tests.support.harness import create_pg_database, drop_pg_database, postgres_available

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(postgres_available() is not None, reason=str(postgres_available())),
]


@pytest.fixture(scope="module")
def tx() -> Iterator[Transactions]:
    url = create_pg_database()
    db = Database(url)
    try:
        db.migrate()
        with db.write() as conn:
            conn.execute(
                change_counter.insert(), [{"name": "row-a", "value": 0}, {"name": "row-b", "value": 0}]
            )
        yield Transactions(db)
    finally:
        db.dispose()
        drop_pg_database(url)


def _bump(conn: Connection, name: str) -> None:
    conn.execute(
        change_counter.update().where(change_counter.c.name == name).values(value=change_counter.c.value + 1)
    )


def _value(tx: Transactions, name: str) -> int:
    with tx.db.read() as conn:
        return int(
            conn.execute(sa.select(change_counter.c.value).where(change_counter.c.name == name)).scalar_one()
        )


def _race(
    tx: Transactions, make: Callable[[str, threading.Barrier, list[int]], Callable[[Connection], str]]
) -> list[int]:
    """Run two transactions built by `make` at once; returns how often each body ran."""
    barrier = threading.Barrier(2, timeout=30)
    attempts = [0, 0]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            tx.run(make("ab"[i], barrier, attempts))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return attempts


def test_a_deadlock_is_retried_and_both_transactions_commit_once(tx: Transactions) -> None:
    before = _value(tx, "row-a"), _value(tx, "row-b")

    def make(me: str, barrier: threading.Barrier, attempts: list[int]) -> Callable[[Connection], str]:
        first, second = ("row-a", "row-b") if me == "a" else ("row-b", "row-a")
        index = "ab".index(me)

        def body(conn: Connection) -> str:
            attempts[index] += 1
            _bump(conn, first)
            if attempts[index] == 1:
                barrier.wait()  # both hold their first row: each now waits for the other's
            _bump(conn, second)
            return me

        return body

    attempts = _race(tx, make)
    assert sorted(attempts) == [1, 2], attempts  # PostgreSQL killed one with 40P01; Coffer reran it
    assert (_value(tx, "row-a"), _value(tx, "row-b")) == (before[0] + 2, before[1] + 2)


def test_a_serialization_failure_is_retried(tx: Transactions) -> None:
    before = _value(tx, "row-a")

    def make(me: str, barrier: threading.Barrier, attempts: list[int]) -> Callable[[Connection], str]:
        index = "ab".index(me)

        def body(conn: Connection) -> str:
            attempts[index] += 1
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            conn.execute(
                sa.select(change_counter.c.value).where(change_counter.c.name == "row-a")
            ).scalar_one()
            if attempts[index] == 1:
                barrier.wait()  # both have their snapshot; the second to update gets 40001
            _bump(conn, "row-a")
            return me

        return body

    attempts = _race(tx, make)
    assert sorted(attempts) == [1, 2], attempts
    assert _value(tx, "row-a") == before + 2
