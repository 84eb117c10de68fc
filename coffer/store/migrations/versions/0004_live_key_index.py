"""an index for counting a principal's live access keys

Create Date: 2026-12-05

The live-key cap (max_live_keys_per_principal) counts a principal's unrevoked, unexpired
keys on every mint. The index on principal_name alone would visit every key the principal
ever had; this one lets the count touch only its unrevoked keys (SQLite reads them from
the index alone; PostgreSQL scans exactly the live ones).
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_index(
        "ix_access_keys_live", "access_keys", ["org_id", "principal_name", "revoked_at", "expires_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_access_keys_live", table_name="access_keys")
