"""organization settings and limits (SetOrganizationSettings, buckets and bytes per organization)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

One row per organization that changed any of its settings; NULL limits mean the server-wide
defaults (`max_buckets_per_org`, `max_bytes_per_org`). Bucket settings need no schema: they
live in the bucket row's `settings` JSON column.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coffer.store.migrations.columns import optional, org_id, required, timestamp

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "org_settings",
        *org_id(),
        *required(
            control_plane_audit_logging_enabled=sa.Boolean(), bucket_audit_logging_enabled=sa.Boolean()
        ),
        *optional(max_buckets=sa.Integer(), capacity_cap_bytes=sa.BigInteger()),
        timestamp("updated_at"),
        sa.PrimaryKeyConstraint("org_id"),
    )


def downgrade() -> None:
    op.drop_table("org_settings")
