"""bucket inventory configurations and report state

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

RESERVED (being written): helper L3 (inventory)
"""

from __future__ import annotations

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
