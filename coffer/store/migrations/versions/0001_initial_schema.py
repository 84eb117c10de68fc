"""initial schema

Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from coffer.store.migrations.columns import (
    lifetime,
    object_key,
    optional,
    org_id,
    required,
    timestamp,
    user_id,
)

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "change_counter",
        *required(name=sa.String(32), value=sa.BigInteger()),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "dead_blobs",
        *required(blob=sa.String(64)),
        timestamp("dead_since"),
        sa.PrimaryKeyConstraint("blob"),
    )
    op.create_index("ix_dead_blobs_since", "dead_blobs", ["dead_since"])
    op.create_table(
        "multipart_parts",
        *required(upload_id=sa.String(64), part_number=sa.Integer(), blob=sa.String(64)),
        *required(size=sa.BigInteger(), etag=sa.Text(), checksums=sa.JSON()),
        timestamp("last_modified"),
        sa.PrimaryKeyConstraint("upload_id", "part_number"),
    )
    op.create_table(
        "multipart_uploads",
        *required(upload_id=sa.String(64), bucket=sa.String(63)),
        object_key(),
        timestamp("initiated"),
        *required(owner_principal=sa.Text(), storage_class=sa.String(32), headers=sa.JSON()),
        *optional(checksum_algorithm=sa.String(16), checksum_type=sa.String(16), tags=sa.JSON()),
        sa.PrimaryKeyConstraint("upload_id"),
    )
    op.create_index("ix_uploads_bucket_key", "multipart_uploads", ["bucket", "key", "upload_id"])

    op.create_table(
        "objects",
        *required(bucket=sa.String(63)),
        object_key(),
        *required(version_id=sa.String(64), seq=sa.BigInteger().with_variant(sa.Integer(), "sqlite")),
        *required(is_latest=sa.Boolean(), is_delete_marker=sa.Boolean(), size=sa.BigInteger()),
        *required(etag=sa.Text()),
        timestamp("last_modified"),
        *required(owner_principal=sa.Text(), storage_class=sa.String(32), headers=sa.JSON()),
        *required(checksums=sa.JSON(), parts=sa.JSON()),
        *optional(tags=sa.JSON()),
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
        *required(id=sa.String(32), name=sa.Text()),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "principal_suspensions",
        *required(org_id=sa.String(32), principal_name=sa.Text()),
        timestamp("suspended_at"),
        sa.PrimaryKeyConstraint("org_id", "principal_name"),
    )
    op.create_table(
        "access_keys",
        *required(access_key_id=sa.String(32)),
        *org_id(),
        *required(principal_name=sa.Text()),
        *optional(user_id=sa.String(32)),
        *required(secret_ciphertext=sa.LargeBinary()),
        *optional(session_token_hash=sa.LargeBinary(32)),
        *required(source=sa.String(16)),
        *optional(role=sa.Text()),
        *required(attributes=sa.JSON(), multi_attributes=sa.JSON()),
        *lifetime(),
        sa.PrimaryKeyConstraint("access_key_id"),
    )
    op.create_index("ix_access_keys_org_created", "access_keys", ["org_id", "created_at"])
    op.create_index("ix_access_keys_principal_name", "access_keys", ["principal_name"])

    op.create_table(
        "buckets",
        *required(name=sa.String(63)),
        *org_id(),
        *required(owner_principal=sa.Text(), zone=sa.String(32)),
        timestamp("created_at"),
        *required(versioning=sa.String(16)),
        *optional(policy=sa.Text(), tags=sa.JSON(), cors=sa.Text()),
        *required(settings=sa.JSON()),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index("ix_buckets_org", "buckets", ["org_id", "name"])

    op.create_table(
        "users",
        *required(id=sa.String(32)),
        *org_id(),
        *required(name=sa.Text(), is_storage_admin=sa.Boolean()),
        timestamp("created_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "name", name="uq_users_org_name"),
    )
    op.create_table(
        "api_tokens",
        *required(id=sa.String(32)),
        *user_id(),
        *required(token_hash=sa.LargeBinary(32), name=sa.Text()),
        *lifetime(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "group_members",
        *user_id(),
        *required(group_name=sa.Text()),
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
