"""access-key scopes (inline policies narrower than the owner)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

`access_keys.scope` is a scoped key's inline policy, the validated `{"statements": [...]}`
document (coffer/policy/scope.py); NULL for a key as wide as its owner. It is written once,
at minting, and never changed (decision 0185).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    with op.batch_alter_table("access_keys") as batch:
        batch.add_column(sa.Column("scope", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("access_keys") as batch:
        batch.drop_column("scope")
