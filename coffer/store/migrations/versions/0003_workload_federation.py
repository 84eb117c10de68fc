"""workload identity federation: configs, replay cache, key provenance

Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coffer.store.migrations.columns import edited, org_id, required, timestamp

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "federation_configs",
        *required(config_id=sa.String(36)),
        *org_id(),
        *required(kind=sa.String(8), name=sa.String(255), lookup=sa.Text(), document=sa.Text()),
        *edited(),
        timestamp("deactivated_at", nullable=True),
        sa.PrimaryKeyConstraint("config_id"),
        sa.UniqueConstraint("org_id", "kind", "name", name="uq_federation_configs_name"),
    )
    op.create_index(
        "ix_federation_configs_lookup", "federation_configs", ["org_id", "kind", "lookup"], unique=True
    )
    op.create_table(
        "federation_replay",
        *required(key=sa.String(64)),
        timestamp("expires_at"),
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
