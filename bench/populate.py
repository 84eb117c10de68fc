"""Fill a bucket with a million keys in seconds, before the server starts (clearly not through S3).

The bucket is created and one real 4 KiB blob stored through the storage layer; then every
key is one row of the `objects` table pointing at that blob, written with one executemany in
one transaction. The row values go through SQLAlchemy's own bind processors for the table,
so they are exactly what `Objects.put` would have written; only the key differs.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from typing import Any

from coffer.config import Settings
from coffer.node import Node
from coffer.storage.models import NULL_VERSION
from coffer.storage.rules import utcnow
from coffer.store.schema import objects


def key_name(i: int) -> str:
    return f"k/{i:07d}"


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
            values.append(process(value) if process is not None and value is not None else value)
        key_at = [c.name for c in columns].index("key")
        names = ", ".join(f'"{c.name}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        if dialect.name != "sqlite":
            raise RuntimeError("bulk population is written for the embedded SQLite store")
        sql = f"INSERT INTO objects ({names}) VALUES ({marks})"
        batch = 50_000
        with engine.begin() as conn:
            for start in range(0, count, batch):
                rows = []
                for i in range(start, min(count, start + batch)):
                    row = list(values)
                    row[key_at] = key_of(i)
                    rows.append(tuple(row))
                conn.exec_driver_sql(sql, rows)
    finally:
        node.close()
    return time.perf_counter() - t0
