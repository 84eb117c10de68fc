"""The metadata store: engine set-up per dialect, migrations on start, transactions."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

from coffer.store.schema import change_counter

log = logging.getLogger("coffer.store")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same on every node sharing a database.
_PG_MIGRATION_LOCK = 0x0C0FFE12


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers run beside the one writer; FULL makes every commit durable.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            max_overflow=16,
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)

        # pysqlite's own transaction handling defers BEGIN; take the write lock up front
        # with BEGIN IMMEDIATE so that read-then-write transactions cannot deadlock.
        @sa.event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")

        return engine
    return sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def alembic_config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision; safe when several nodes start at once."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            conn.commit()
        try:
            command.upgrade(alembic_config(conn), "head")
            conn.commit()
        finally:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()


class Database:
    """Owns the engine. `read()` and `write()` hand out connections inside a transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.dialect = self.engine.dialect.name
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.info["write"] = True
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info.pop("write", None)

    def migrate(self) -> None:
        migrate(self.engine)

    def bump_changes(self, conn: Connection, name: str = "auth") -> None:
        """Record, inside the caller's transaction, that cached state named `name` changed."""
        updated = conn.execute(
            change_counter.update()
            .where(change_counter.c.name == name)
            .values(value=change_counter.c.value + 1)
        ).rowcount
        if not updated:
            conn.execute(change_counter.insert().values(name=name, value=1))

    def read_changes(self) -> int:
        with self.read() as conn:
            total = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(change_counter.c.value), 0))).scalar()
        return int(total or 0)

    def dispose(self) -> None:
        self.engine.dispose()
