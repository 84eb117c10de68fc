"""The replay cache every worker and node shares: one-time SAML assertion IDs, in SQL.

The verifier (coffer.federation) asks `check_and_store` once every other check passed. An
in-process set would let the same assertion be redeemed once per worker (and per node); a
primary key in the metadata store makes "first presentation wins" atomic everywhere.
"""

from __future__ import annotations

import hashlib
import itertools
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.exc

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
        digest = replay_key(key)
        table = federation_replay
        try:
            with self.db.write() as conn:
                # An expired row no longer protects anything; let the ID be judged afresh
                # (the verifier's time checks refuse it anyway).
                conn.execute(table.delete().where(table.c.key == digest, table.c.expires_at <= now))
                seen = conn.execute(sa.select(table.c.key).where(table.c.key == digest)).first()
                if seen is not None:
                    return False
                conn.execute(table.insert().values(key=digest, expires_at=expires_at))
        except sqlalchemy.exc.IntegrityError:
            return False  # another worker or node stored it between our read and insert
        if next(self._inserts) % _PURGE_EVERY == 0:
            self.purge(now)
        return True

    def purge(self, now: datetime) -> int:
        with self.db.write() as conn:
            result = conn.execute(federation_replay.delete().where(federation_replay.c.expires_at <= now))
        return int(result.rowcount or 0)
