"""object ACLs: an acl column on objects and on multipart uploads

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

With Object Ownership other than BucketOwnerEnforced a bucket has ACLs on, and each object
carries its own: `objects.acl` holds {"owner": canonical id, "grants": [...]}
(coffer/policy/acl.py), NULL for objects written with ACLs off. A multipart upload records
the ACL and owner its object gets at completion in `multipart_uploads.acl`. Bucket-level
ownership, ACL and public access block live in `buckets.settings`, which needs no change.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


TABLES = ("objects", "multipart_uploads")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("acl", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("acl")
