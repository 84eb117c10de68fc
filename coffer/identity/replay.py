"""The replay cache every worker and node shares: one-time SAML assertion IDs, in SQL.

The verifier (coffer.federation) asks for an assertion's ID once every other check passed; the
exchange records it in the mint's own transaction (`claim`). An in-process set would let the
same assertion be redeemed once per worker (and per node); a primary key in the metadata store
makes "first presentation wins" atomic everywhere.
"""

from __future__ import annotations

import hashlib
import itertools
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from coffer.store.db import Database
from coffer.store.schema import federation_replay

_PURGE_EVERY = 256


def replay_key(*parts: str) -> str:
    """A fixed-size key: assertion IDs are attacker-chosen and may be long or odd."""
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


class SqlReplayCache:
    """`ReplayCache` on the metadata store; rows are purged once they no longer matter."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._inserts = itertools.count(1)

    def check_and_store(self, key: str, *, expires_at: datetime, now: datetime) -> bool:
        with self.db.write() as conn:
            return self.claim(conn, key, expires_at=expires_at, now=now)

    def claim(self, conn: Connection, key: str, *, expires_at: datetime, now: datetime) -> bool:
        """Record `key` in the caller's write transaction; False if a live row already holds it.

        One statement, so first-presentation-wins holds across workers and nodes without a
        read-then-write race: the insert, or an update that only an expired row lets through
        (an expired row protects nothing; the verifier's time checks refuse that ID anyway).
        Called inside the mint's transaction, the ID is consumed exactly when a key is minted.
        """
        table = federation_replay
        upsert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        statement = (
            upsert(table)
            .values(key=replay_key(key), expires_at=expires_at)
            .on_conflict_do_update(
                index_elements=[table.c.key],
                set_={"expires_at": expires_at},
                where=table.c.expires_at <= now,
            )
            .returning(table.c.key)  # a row back: inserted or renewed (rowcount is -1 on psycopg)
        )
        if conn.execute(statement).first() is None:
            return False
        if next(self._inserts) % _PURGE_EVERY == 0:
            conn.execute(table.delete().where(table.c.expires_at <= now))
        return True
