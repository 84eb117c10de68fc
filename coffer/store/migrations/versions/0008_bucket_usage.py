"""bucket usage counters

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

`bucket_usage` holds, per bucket and storage class, what the bucket holds; every write
adds its changes in its own transaction from now on (coffer/storage/usage.py). The
counters of the buckets that exist already are computed here, from their rows, in the
migration's transaction, into shard 0: one aggregate per table, in the database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coffer.store.migrations.columns import required

revision = "0008"
down_revision = "0007"

COUNTERS = (
    "objects",
    "bytes",
    "noncurrent_objects",
    "noncurrent_bytes",
    "delete_markers",
    "uploads",
    "upload_bytes",
)

# Every (bucket, class) with its counters: versions, markers, then uploads and their parts,
# summed per (bucket, class). Booleans compare as 0/1 on SQLite and as booleans elsewhere.
_BACKFILL = """
INSERT INTO bucket_usage (bucket, storage_class, shard, {columns})
SELECT bucket, storage_class, 0, {sums}
FROM (
    SELECT bucket, storage_class,
        SUM(CASE WHEN is_latest AND NOT is_delete_marker THEN 1 ELSE 0 END) AS objects,
        SUM(CASE WHEN is_latest AND NOT is_delete_marker THEN size ELSE 0 END) AS bytes,
        SUM(CASE WHEN NOT is_latest AND NOT is_delete_marker THEN 1 ELSE 0 END) AS noncurrent_objects,
        SUM(CASE WHEN NOT is_latest AND NOT is_delete_marker THEN size ELSE 0 END) AS noncurrent_bytes,
        SUM(CASE WHEN is_delete_marker THEN 1 ELSE 0 END) AS delete_markers,
        0 AS uploads,
        0 AS upload_bytes
    FROM objects GROUP BY bucket, storage_class
    UNION ALL
    SELECT u.bucket, u.storage_class, 0, 0, 0, 0, 0, 1,
        COALESCE((SELECT SUM(p.size) FROM multipart_parts p WHERE p.upload_id = u.upload_id), 0)
    FROM multipart_uploads u
) AS counted
WHERE bucket IN (SELECT name FROM buckets)
GROUP BY bucket, storage_class
"""


def upgrade() -> None:
    op.create_table(
        "bucket_usage",
        *required(bucket=sa.String(63), storage_class=sa.String(32), shard=sa.SmallInteger()),
        *required(**{name: sa.BigInteger() for name in COUNTERS}),
        sa.PrimaryKeyConstraint("bucket", "storage_class", "shard"),
    )
    op.execute(
        _BACKFILL.format(columns=", ".join(COUNTERS), sums=", ".join(f"SUM({name})" for name in COUNTERS))
    )


def downgrade() -> None:
    op.drop_table("bucket_usage")
