"""completed multipart uploads, remembered for retried completions

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05

A retried CompleteMultipartUpload (same upload id, same parts) answers as the first one
did (the same ETag and version id) instead of NoSuchUpload: each completion records the
upload here, and rows older than COMPLETED_UPLOAD_RETENTION are pruned as new ones come
(coffer/storage/uploads.py; docs/decisions/0120-conditional-writes.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coffer.store.migrations.columns import object_key, required, timestamp

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "completed_uploads",
        *required(upload_id=sa.String(64), bucket=sa.String(63)),
        object_key(),
        *required(version_id=sa.String(64), etag=sa.Text(), parts_digest=sa.String(64)),
        timestamp("completed_at"),
        sa.PrimaryKeyConstraint("upload_id"),
    )
    op.create_index("ix_completed_uploads_completed_at", "completed_uploads", ["completed_at"])


def downgrade() -> None:
    op.drop_index("ix_completed_uploads_completed_at", table_name="completed_uploads")
    op.drop_table("completed_uploads")
