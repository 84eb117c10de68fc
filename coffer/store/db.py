"""The metadata store: engine set-up per dialect, migrations on start, transactions."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

from coffer.datadir import create_private_file
from coffer.store.errors import StoreUnavailable
from coffer.store.schema import change_counter

log = logging.getLogger("coffer.store")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same on every node sharing a database.
_PG_MIGRATION_LOCK = 0x0C0FFE12
# The first key of the two-key advisory locks `Database.serialize` takes (the one-key
# space of the migration lock is separate).
_PG_SERIALIZE_SPACE = 0x0C0FFE13
_PG_SERIALIZE = sa.text("SELECT pg_advisory_xact_lock(:space, hashtext(:name))")
# libpq: give up a connection attempt after this many seconds, and notice a peer that
# vanished (a partition, a host down) by TCP keepalives instead of waiting forever.
PG_CONNECT_TIMEOUT = 5
_PG_CONNECT_ARGS = {
    "connect_timeout": PG_CONNECT_TIMEOUT,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}
# SQLSTATEs of a database that is going away or not there yet: connection exceptions
# (class 08), administrator/crash shutdown and "starting up" (57P01-57P03), too many
# connections (53300).
_PG_OUTAGE_STATES = {"57P01", "57P02", "57P03", "53300"}


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
        # As many pooled connections as threads that may query at once (anyio's default
        # limiter is 40, plus the event loop): a smaller pool opens and closes overflow
        # connections (connect + pragmas) under every burst of concurrent requests.
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=48,
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
            if conn.info.get("single"):
                return  # Database.query(): one statement is its own snapshot
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")

        return engine
    # pre-ping: a pooled connection that died with a database restart is replaced at
    # checkout, so service resumes by itself once the database is back.
    engine = sa.create_engine(
        url, pool_size=10, max_overflow=20, pool_pre_ping=True, connect_args=dict(_PG_CONNECT_ARGS)
    )
    sa.event.listen(engine, "handle_error", _on_pg_error)
    return engine


def is_outage(exc: BaseException) -> bool:
    """A PostgreSQL error that says the database is unreachable, not that the statement failed."""
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig  # type: ignore[assignment]
    import psycopg

    if not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _PG_OUTAGE_STATES


def _on_pg_error(ctx: sa.engine.ExceptionContext) -> None:
    """Every PostgreSQL error passes here: an outage becomes `StoreUnavailable` (the faces'
    503), and the connection it broke, with the rest of the pool, is thrown away."""
    if ctx.is_pre_ping:
        return  # the pool reconnects once itself; a failure then comes here again
    if not is_outage(ctx.original_exception):
        return
    if ctx.connection is not None:
        ctx.is_disconnect = True
    raise StoreUnavailable() from (ctx.sqlalchemy_exception or ctx.original_exception)


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


class _WriteGate:
    """Queues SQLite writers before they ask SQLite for its write lock.

    SQLite lets one writer in at a time; the others get SQLITE_BUSY and its busy handler
    sleeps and polls (1, 2, 5, 10, ... ms), so under concurrent writes most of a commit's
    latency is sleeping. Here writers wait instead on a thread lock (within a worker) and
    an flock on a file beside the database (across the workers of a node), both of which
    wake the next writer as soon as the previous one commits. Anything else writing the
    file (the CLI, another tool) still meets SQLite's own lock and busy handler.
    """

    def __init__(self, db_path: str | None) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._path = db_path + ".write-lock" if db_path else None
        self._fd = -1

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            self._depth += 1
            try:
                if self._depth == 1 and self._path is not None:
                    if self._fd < 0:
                        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                    fcntl.flock(self._fd, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    if self._depth == 1 and self._fd >= 0:
                        fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                self._depth -= 1

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _sqlite_file(engine: Engine) -> str | None:
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


class _PointRead:
    """One SELECT compiled for SQLite: its SQL, parameter order, and per-column processors."""

    def __init__(self, statement: sa.Select[Any], dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.names = tuple(compiled.positiontup or ())
        columns = list(statement.selected_columns)
        self.row: Any = namedtuple("Row", [c.key for c in columns], rename=True)  # type: ignore[misc]
        self.processors = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]

    def fetch(self, engine: Engine, params: dict[str, Any]) -> Any:
        conn = engine.raw_connection()
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(self.sql, tuple(params[name] for name in self.names))
                raw = cursor.fetchone()
            finally:
                cursor.close()
        finally:
            conn.close()  # back to the pool
        if raw is None:
            return None
        return self.row(*[p(v) if p is not None else v for p, v in zip(self.processors, raw, strict=True)])


class Database:
    """Owns the engine. `read()` and `write()` hand out connections inside a transaction.

    `inline_reads`: a point read costs less than a trip to a worker thread (SQLite: a
    local file, tens of microseconds), so a face may run one on its event loop."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.dialect = self.engine.dialect.name
        self._lock = threading.Lock()
        db_file = _sqlite_file(self.engine)
        if db_file is not None:
            create_private_file(Path(db_file))  # SQLite gives -wal and -shm this file's mode
        self._gate = _WriteGate(db_file) if self.dialect == "sqlite" else None
        self.inline_reads = self.dialect == "sqlite"
        self._plans: dict[sa.Select[Any], _PointRead] = {}

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def query(self) -> Iterator[Connection]:
        """A connection for one read statement. On SQLite a lone statement reads one
        consistent snapshot by itself, so the BEGIN and COMMIT around it are skipped (two
        statement round trips through SQLAlchemy, a third of a point read's cost);
        elsewhere this is `read()`."""
        if self.dialect != "sqlite":
            with self.read() as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            conn.info["single"] = True
            try:
                yield conn
            finally:
                conn.info.pop("single", None)

    def fetch_one(self, statement: sa.Select[Any], params: dict[str, Any]) -> Any:
        """The first row of a point read (None if none), with attribute access as a Row.

        On SQLite the statement goes straight to a pooled DBAPI connection, compiled once,
        with the columns' own result processors: SQLAlchemy's per-execution work (connection
        and result objects, events, the compiled-cache key) was most of a small GET's CPU.
        A statement that fails there is run again the ordinary way, which raises the error
        as SQLAlchemy would. Elsewhere, or while something listens to the engine's statements
        (tests/support/storage.py counts them), this is `query()` and `execute().first()`."""
        if self.dialect == "sqlite" and not self.engine.dispatch.before_cursor_execute:
            plan = self._plans.get(statement)
            if plan is None:
                plan = self._plans[statement] = _PointRead(statement, self.engine.dialect)
            try:
                return plan.fetch(self.engine, params)
            except Exception:
                log.debug("point read failed on the DBAPI connection; running it through SQLAlchemy")
        with self.query() as conn:
            return conn.execute(statement, params).first()

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        with (
            self._gate() if self._gate is not None else contextlib.nullcontext(),
            self.engine.connect() as conn,
        ):
            conn.info["write"] = True
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info.pop("write", None)

    def migrate(self) -> None:
        migrate(self.engine)

    def serialize(self, conn: Connection, name: str) -> None:
        """Make write transactions that name the same `name` run one at a time, until commit.

        A count-then-insert (a per-principal cap) must not let two writers both see room.
        On PostgreSQL that is a transaction-scoped advisory lock (on a 32-bit hash of the
        name: a collision only queues two unrelated writers); SQLite writers already hold
        the database's one write lock (BEGIN IMMEDIATE), so there is nothing to take."""
        if self.dialect == "postgresql":
            conn.execute(_PG_SERIALIZE, {"space": _PG_SERIALIZE_SPACE, "name": name})

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
        if self._gate is not None:
            self._gate.close()
