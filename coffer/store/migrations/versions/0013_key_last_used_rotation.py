"""access-key last-used records and rotation links

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05

`access_key_last_used` holds one row per key that was ever used: the newest use a node
flushed (an upsert keeps the newest time, so nodes and workers flushing in any order agree).
It is a table of its own so that flushing never rewrites, locks or bloats `access_keys` rows.
`access_keys.revoke_at` is a revocation scheduled by a rotation (the auth check honours it
from that instant, no background job needed); `rotated_from` names the key a successor
replaced.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coffer.store.migrations.columns import required, timestamp

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    op.create_table(
        "access_key_last_used",
        *required(access_key_id=sa.String(32)),
        timestamp("used_at"),
        *required(operation=sa.String(64), source_ip=sa.String(64), face=sa.String(16)),
        sa.PrimaryKeyConstraint("access_key_id"),
    )
    with op.batch_alter_table("access_keys") as batch:
        batch.add_column(timestamp("revoke_at", nullable=True))
        batch.add_column(sa.Column("rotated_from", sa.String(length=32), nullable=True))
        batch.create_index("ix_access_keys_rotated_from", ["rotated_from"])


def downgrade() -> None:
    with op.batch_alter_table("access_keys") as batch:
        batch.drop_index("ix_access_keys_rotated_from")
        batch.drop_column("rotated_from")
        batch.drop_column("revoke_at")
    op.drop_table("access_key_last_used")
