"""The storage core without HTTP: `Env` (a migrated metadata store, blobs and Storage) and
its helpers; the `env` and `bucket` fixtures are in tests.support.fixtures_storage."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from coffer.storage.blobs import BlobStore
from coffer.storage.models import BlobInfo, ObjectVersion, PartRef
from coffer.storage.service import Storage, parse_zones
from coffer.store.changes import ChangeWatcher
from coffer.store.db import Database
from coffer.store.schema import dead_blobs, organizations


@dataclass
class Env:
    backend: str
    url: str
    db: Database
    changes: ChangeWatcher
    blobs: BlobStore
    storage: Storage
    root: Path
    org: str

    def new_storage(self, **kw: object) -> Storage:
        """A second Storage over the same store, as another worker process would have."""
        return Storage(
            self.db,
            self.blobs,
            zones=parse_zones(""),
            default_zone="US-EAST-04A",
            changes=ChangeWatcher(self.db, self.root / "run"),
            **kw,  # type: ignore[arg-type]
        )

    def new_org(self) -> str:
        org = secrets.token_hex(5)
        with self.db.write() as conn:
            conn.execute(organizations.insert().values(id=org, name=org, created_at=datetime.now(UTC)))
        return org

    def dead(self) -> set[str]:
        with self.db.read() as conn:
            return set(conn.execute(sa.select(dead_blobs.c.blob)).scalars())

    def put(self, bucket: str, key: str, data: bytes, **kw: object) -> ObjectVersion:
        info = self.blobs.put(data, ["md5"])
        return self.storage.objects.put(
            bucket,
            key,
            info,
            etag=info.digests["md5"].hex(),
            headers=kw.pop("headers", {}),  # type: ignore[arg-type]
            checksums=kw.pop("checksums", {}),  # type: ignore[arg-type]
            owner=str(kw.pop("owner", "coreweave/alice")),
            **kw,  # type: ignore[arg-type]
        )

    def read(self, parts: list[PartRef], start: int = 0, end: int | None = None) -> bytes:
        return b"".join(self.blobs.read_sync(parts, start, end))


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


async def write_blob(blobs: BlobStore, data: bytes, algorithms: list[str], step: int = 65536) -> BlobInfo:
    w = blobs.writer(algorithms)
    for i in range(0, len(data), step):
        await w.write(data[i : i + step])
    return await w.finish()


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


class SQLCounter:
    """Counts statements (and transactions) the engine runs while active."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.statements: list[tuple[str, object]] = []
        self.commits = 0

    def _on_execute(self, conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA")):
            self.statements.append((statement, parameters))

    def _on_commit(self, conn):  # type: ignore[no-untyped-def]
        self.commits += 1

    def __enter__(self) -> SQLCounter:
        sa.event.listen(self.db.engine, "before_cursor_execute", self._on_execute)
        sa.event.listen(self.db.engine, "commit", self._on_commit)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(self.db.engine, "before_cursor_execute", self._on_execute)
        sa.event.remove(self.db.engine, "commit", self._on_commit)

    def selects(self) -> list[tuple[str, object]]:
        return [s for s in self.statements if s[0].lstrip().upper().startswith("SELECT")]


def version_row(bucket: str, key: str, version: str, size: int, **kw: object) -> dict[str, object]:
    """An objects row for a test to insert straight into the table (seeding many rows, or
    rows written before a migration)."""
    return {
        "bucket": bucket,
        "key": key,
        "version_id": version,
        "seq": 1,
        "is_latest": True,
        "is_delete_marker": False,
        "size": size,
        "etag": '"x"',
        "last_modified": datetime.now(UTC),
        "owner_principal": "p",
        "storage_class": "STANDARD",
        "headers": {},
        "checksums": {},
        "parts": [],
        "tags": None,
        **kw,
    }
