"""bucket lifecycle configurations

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

One row per bucket that has a lifecycle configuration (PutBucketLifecycleConfiguration);
`document` is the validated configuration as JSON (coffer/lifecycle/rules.py: to_json).
Deleting the bucket deletes its row in the same transaction (coffer/storage/buckets.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coffer.store.migrations import columns

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_table(
        "bucket_lifecycle",
        *columns.required(bucket=sa.String(63), document=sa.Text()),
        *columns.edited(),
        sa.PrimaryKeyConstraint("bucket"),
    )


def downgrade() -> None:
    op.drop_table("bucket_lifecycle")
