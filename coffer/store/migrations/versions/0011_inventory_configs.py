"""bucket inventory configurations and report state

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

`inventory_configs` holds a bucket's inventory configurations
(PutBucketInventoryConfiguration), one row per (bucket, id): the validated configuration
as JSON (coffer/lifecycle/inventory.py) and when its last report was written, which says
when the next one is due. The report in progress lives in the executor's cursor
(`bucket_task_state`, task "inventory").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coffer.store.migrations import columns

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    op.create_table(
        "inventory_configs",
        *columns.required(bucket=sa.String(63), config_id=sa.String(64), document=sa.Text()),
        *columns.edited(),
        columns.timestamp("last_report_at", nullable=True),
        sa.PrimaryKeyConstraint("bucket", "config_id"),
    )


def downgrade() -> None:
    op.drop_table("inventory_configs")
