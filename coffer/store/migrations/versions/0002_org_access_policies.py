"""organization access policies

Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coffer.store.migrations.columns import edited, org_id, required

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "org_policies",
        *org_id(),
        *required(name=sa.String(128), document=sa.Text(), etag=sa.String(64)),
        *edited(),
        sa.PrimaryKeyConstraint("org_id", "name"),
    )


def downgrade() -> None:
    op.drop_table("org_policies")
