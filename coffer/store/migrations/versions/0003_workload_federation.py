"""workload identity federation: configs, replay cache, key provenance

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_configs",
        sa.Column("config_id", sa.String(length=36), nullable=False),
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("lookup", sa.Text(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"]),
        sa.PrimaryKeyConstraint("config_id"),
        sa.UniqueConstraint("org_id", "kind", "name", name="uq_federation_configs_name"),
    )
    op.create_index(
        "ix_federation_configs_lookup", "federation_configs", ["org_id", "kind", "lookup"], unique=True
    )
    op.create_table(
        "federation_replay",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_federation_replay_expires_at", "federation_replay", ["expires_at"])
    with op.batch_alter_table("access_keys") as batch:
        batch.add_column(sa.Column("federation_config_id", sa.String(length=36), nullable=True))
    op.create_index("ix_access_keys_federation_config_id", "access_keys", ["federation_config_id"])


def downgrade() -> None:
    op.drop_index("ix_access_keys_federation_config_id", table_name="access_keys")
    with op.batch_alter_table("access_keys") as batch:
        batch.drop_column("federation_config_id")
    op.drop_index("ix_federation_replay_expires_at", table_name="federation_replay")
    op.drop_table("federation_replay")
    op.drop_index("ix_federation_configs_lookup", table_name="federation_configs")
    op.drop_table("federation_configs")
