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


def upgrade() -> None:
    when = sa.DateTime(timezone=True)
    op.create_table(
        "bucket_task_state",
        *columns.required(bucket=sa.String(63), task=sa.String(32)),
        *columns.optional(holder=sa.String(96), lease_until=when, cursor=sa.Text()),
        *columns.optional(pass_started=when, last_pass=when),
        sa.PrimaryKeyConstraint("bucket", "task"),
    )


def downgrade() -> None:
    op.drop_table("bucket_task_state")
