"""Fill a bucket with millions of keys, before the server starts (clearly not through S3).

The bucket is created and one real 4 KiB blob stored through the storage layer; then every
key is one row of the `objects` table pointing at that blob, written in batches of 50,000
rows, one transaction each (SQLite: executemany; PostgreSQL: COPY). The row values go
through SQLAlchemy's own bind processors for the table, so they are exactly what
`Objects.put` would have written; only the key differs.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

from coffer.config import Settings
from coffer.node import Node
from coffer.storage.models import NULL_VERSION
from coffer.storage.rules import utcnow
from coffer.store.schema import objects

BATCH = 50_000  # rows per transaction


def key_name(i: int) -> str:
    return f"k/{i:07d}"


def prefixed_key(i: int, count: int, prefixes: int) -> str:
    """The i-th of `count` keys spread evenly under `prefixes` prefixes ("p0042/k00004242"):
    sorted by i, so a start-after position is just an index."""
    return f"p{i * prefixes // count:04d}/k{i:08d}"


def bulk_bucket(
    settings: Settings,
    org_id: str,
    owner: str,
    bucket: str,
    count: int,
    key_of: Callable[[int], str] = key_name,
) -> float:
    """Create `bucket` holding keys k/0000000 ... (or `key_of(i)`; 4 KiB each, one shared
    blob); returns seconds."""
    t0 = time.perf_counter()
    node = Node.open(settings, migrate=False)
    try:
        node.storage.buckets.create(org_id=org_id, owner=owner, name=bucket, zone=None)
        data = os.urandom(4096)
        blob = node.blobs.put(data, ["md5"])
        node.blobs.claim(blob.blob)
        template: dict[str, Any] = {
            "bucket": bucket,
            "key": "",
            "version_id": NULL_VERSION,
            "seq": 1,
            "is_latest": True,
            "is_delete_marker": False,
            "size": len(data),
            "etag": f'"{hashlib.md5(data).hexdigest()}"',
            "last_modified": utcnow(),
            "owner_principal": owner,
            "storage_class": "STANDARD",
            "headers": {"content-type": "application/octet-stream"},
            "checksums": {},
            "parts": [{"blob": blob.blob, "size": len(data)}],
            "tags": None,
        }
        engine = node.db.engine
        dialect = engine.dialect
        columns = [c for c in objects.columns if c.name in template]
        values: list[Any] = []
        for column in columns:
            process = column.type.bind_processor(dialect)
            value = template[column.name]
            if process is not None and value is not None:
                value = process(value)
            if isinstance(value, dict | list):  # psycopg leaves JSON to its own adapters: COPY takes text
                value = json.dumps(value)
            values.append(value)
        key_at = [c.name for c in columns].index("key")
        names = ", ".join(f'"{c.name}"' for c in columns)

        def rows(start: int) -> list[tuple[Any, ...]]:
            out = []
            for i in range(start, min(count, start + BATCH)):
                row = list(values)
                row[key_at] = key_of(i)
                out.append(tuple(row))
            return out

        # One transaction per batch: memory and the SQLite WAL stay bounded at 10,000,000 keys.
        for start in range(0, count, BATCH):
            with engine.begin() as conn:
                if dialect.name == "sqlite":
                    marks = ", ".join("?" for _ in columns)
                    conn.exec_driver_sql(f"INSERT INTO objects ({names}) VALUES ({marks})", rows(start))
                else:  # PostgreSQL (psycopg 3): COPY
                    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
                    with cursor.copy(f"COPY objects ({names}) FROM STDIN") as copy:
                        for row in rows(start):
                            copy.write_row(row)
        if dialect.name != "sqlite":  # what autovacuum would do after a bulk load: plans see the rows
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE objects")
    finally:
        node.close()
    return time.perf_counter() - t0
