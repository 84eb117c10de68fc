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

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_settings",
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("control_plane_audit_logging_enabled", sa.Boolean(), nullable=False),
        sa.Column("bucket_audit_logging_enabled", sa.Boolean(), nullable=False),
        sa.Column("max_buckets", sa.Integer(), nullable=True),
        sa.Column("capacity_cap_bytes", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"]),
        sa.PrimaryKeyConstraint("org_id"),
    )


def downgrade() -> None:
    op.drop_table("org_settings")
