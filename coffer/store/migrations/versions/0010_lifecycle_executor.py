"""lifecycle executor state: leases and cursors per bucket

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05

`bucket_task_state` holds, per (bucket, task) of the background executor
(coffer/lifecycle/executor.py), the lease (which node runs the task on the bucket, and
until when) and the cursor of the pass in progress, so a pass resumes where a stopped or
killed node left it. No foreign key to `buckets`: a deleted bucket's row is inert and the
executor drops it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coffer.store.migrations import columns

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bucket_task_state",
        sa.Column("bucket", sa.String(length=63), nullable=False),
        sa.Column("task", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=96), nullable=True),
        columns.timestamp("lease_until", nullable=True),
        sa.Column("cursor", sa.Text(), nullable=True),
        columns.timestamp("pass_started", nullable=True),
        columns.timestamp("last_pass", nullable=True),
        sa.PrimaryKeyConstraint("bucket", "task"),
    )


def downgrade() -> None:
    op.drop_table("bucket_task_state")
