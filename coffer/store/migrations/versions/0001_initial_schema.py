"""initial schema

Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coffer.store.migrations.columns import lifetime, object_key, org_id, timestamp, user_id

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "change_counter",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "dead_blobs",
        sa.Column("blob", sa.String(length=64), nullable=False),
        timestamp("dead_since"),
        sa.PrimaryKeyConstraint("blob"),
    )
    op.create_index("ix_dead_blobs_since", "dead_blobs", ["dead_since"])
    op.create_table(
        "multipart_parts",
        sa.Column("upload_id", sa.String(length=64), nullable=False),
        sa.Column("part_number", sa.Integer(), nullable=False),
        sa.Column("blob", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=False),
        sa.Column("checksums", sa.JSON(), nullable=False),
        timestamp("last_modified"),
        sa.PrimaryKeyConstraint("upload_id", "part_number"),
    )
    op.create_table(
        "multipart_uploads",
        sa.Column("upload_id", sa.String(length=64), nullable=False),
        sa.Column("bucket", sa.String(length=63), nullable=False),
        object_key(),
        timestamp("initiated"),
        sa.Column("owner_principal", sa.Text(), nullable=False),
        sa.Column("storage_class", sa.String(length=32), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("checksum_algorithm", sa.String(length=16), nullable=True),
        sa.Column("checksum_type", sa.String(length=16), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("upload_id"),
    )
    op.create_index("ix_uploads_bucket_key", "multipart_uploads", ["bucket", "key", "upload_id"])

    op.create_table(
        "objects",
        sa.Column("bucket", sa.String(length=63), nullable=False),
        object_key(),
        sa.Column("version_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("is_latest", sa.Boolean(), nullable=False),
        sa.Column("is_delete_marker", sa.Boolean(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=False),
        timestamp("last_modified"),
        sa.Column("owner_principal", sa.Text(), nullable=False),
        sa.Column("storage_class", sa.String(length=32), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("checksums", sa.JSON(), nullable=False),
        sa.Column("parts", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("bucket", "key", "version_id"),
    )
    op.create_index(
        "ix_objects_latest",
        "objects",
        ["bucket", "key"],
        unique=True,
        sqlite_where=sa.text("is_latest = 1"),
        postgresql_where=sa.text("is_latest = true"),
    )
    op.create_index("ix_objects_seq", "objects", ["bucket", "key", "seq"])

    op.create_table(
        "organizations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "principal_suspensions",
        sa.Column("org_id", sa.String(length=32), nullable=False),
        sa.Column("principal_name", sa.Text(), nullable=False),
        timestamp("suspended_at"),
        sa.PrimaryKeyConstraint("org_id", "principal_name"),
    )
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(length=32), nullable=False),
        *org_id(),
        sa.Column("principal_name", sa.Text(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("session_token_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("role", sa.Text(), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("multi_attributes", sa.JSON(), nullable=False),
        *lifetime(),
        sa.PrimaryKeyConstraint("access_key_id"),
    )
    op.create_index("ix_access_keys_org_created", "access_keys", ["org_id", "created_at"])
    op.create_index("ix_access_keys_principal_name", "access_keys", ["principal_name"])

    op.create_table(
        "buckets",
        sa.Column("name", sa.String(length=63), nullable=False),
        *org_id(),
        sa.Column("owner_principal", sa.Text(), nullable=False),
        sa.Column("zone", sa.String(length=32), nullable=False),
        timestamp("created_at"),
        sa.Column("versioning", sa.String(length=16), nullable=False),
        sa.Column("policy", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("cors", sa.Text(), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index("ix_buckets_org", "buckets", ["org_id", "name"])

    op.create_table(
        "users",
        sa.Column("id", sa.String(length=32), nullable=False),
        *org_id(),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("is_storage_admin", sa.Boolean(), nullable=False),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "name", name="uq_users_org_name"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        *user_id(),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        *lifetime(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "group_members",
        *user_id(),
        sa.Column("group_name", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "group_name"),
    )


def downgrade() -> None:
    op.drop_table("group_members")
    op.drop_table("api_tokens")
    op.drop_table("users")
    op.drop_index("ix_buckets_org", table_name="buckets")

    op.drop_table("buckets")
    op.drop_index("ix_access_keys_principal_name", table_name="access_keys")
    op.drop_index("ix_access_keys_org_created", table_name="access_keys")

    op.drop_table("access_keys")
    op.drop_table("principal_suspensions")
    op.drop_table("organizations")
    op.drop_index("ix_objects_seq", table_name="objects")
    op.drop_index("ix_objects_latest", table_name="objects")

    op.drop_table("objects")
    op.drop_index("ix_uploads_bucket_key", table_name="multipart_uploads")

    op.drop_table("multipart_uploads")
    op.drop_table("multipart_parts")
    op.drop_index("ix_dead_blobs_since", table_name="dead_blobs")

    op.drop_table("dead_blobs")
    op.drop_table("change_counter")
