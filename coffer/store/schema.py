"""The one schema both dialects share. Migrations in `migrations/versions` create it.

Object keys use the C collation on PostgreSQL so that ORDER BY matches S3's UTF-8
byte order; SQLite's default BINARY collation already does.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Object keys sort by UTF-8 bytes on every dialect.
KeyText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
Timestamp = sa.DateTime(timezone=True)

organizations = sa.Table(
    "organizations",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # the UID; principal coreweave/<UID>
    sa.Column("org_id", sa.String(32), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("is_storage_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.UniqueConstraint("org_id", "name", name="uq_users_org_name"),
)

group_members = sa.Table(
    "group_members",
    metadata,
    sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("group_name", sa.Text, primary_key=True),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id"), nullable=False),
    sa.Column("token_hash", sa.LargeBinary(32), nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False, default=""),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=True),
    sa.Column("revoked_at", Timestamp, nullable=True),
)

access_keys = sa.Table(
    "access_keys",
    metadata,
    sa.Column("access_key_id", sa.String(32), primary_key=True),
    sa.Column("org_id", sa.String(32), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("principal_name", sa.Text, nullable=False, index=True),
    sa.Column("user_id", sa.String(32), nullable=True),
    sa.Column("secret_ciphertext", sa.LargeBinary, nullable=False),
    # Set only for keys handed out with a session token (container credentials).
    sa.Column("session_token_hash", sa.LargeBinary(32), nullable=True),
    sa.Column("source", sa.String(16), nullable=False),  # jwt | api-token | saml | oidc
    sa.Column("role", sa.Text, nullable=True),  # role/<...> usable as a policy principal
    sa.Column("attributes", sa.JSON, nullable=False),
    sa.Column("multi_attributes", sa.JSON, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=True),  # NULL = permanent
    sa.Column("revoked_at", Timestamp, nullable=True),
    # The workload-federation config a SAML/OIDC key was minted through: removing or
    # deactivating the config revokes its keys (trust in that IdP is withdrawn).
    sa.Column("federation_config_id", sa.String(36), nullable=True, index=True),
    # A scoped key's inline policy (coffer/policy/scope.py), immutable; NULL: as wide as its owner (0012).
    sa.Column("scope", sa.JSON, nullable=True),
    # A revocation a rotation scheduled: the key is refused from this instant on (0013).
    sa.Column("revoke_at", Timestamp, nullable=True),
    # The key this one replaced in a rotation.
    sa.Column("rotated_from", sa.String(32), nullable=True),
    sa.Index("ix_access_keys_org_created", "org_id", "created_at"),
    sa.Index("ix_access_keys_rotated_from", "rotated_from"),
    # The live-key cap's count (coffer.identity.accesskeys): live keys only.
    sa.Index("ix_access_keys_live", "org_id", "principal_name", "revoked_at", "expires_at"),
)

# The newest use of each key that a node flushed (coffer/identity/lastused.py): written at
# most once per key per `last_used_flush_seconds` by each worker, never per request.
access_key_last_used = sa.Table(
    "access_key_last_used",
    metadata,
    sa.Column("access_key_id", sa.String(32), primary_key=True),
    sa.Column("used_at", Timestamp, nullable=False),
    sa.Column("operation", sa.String(64), nullable=False),
    sa.Column("source_ip", sa.String(64), nullable=False),
    sa.Column("face", sa.String(16), nullable=False),
)

principal_suspensions = sa.Table(
    "principal_suspensions",
    metadata,
    sa.Column("org_id", sa.String(32), primary_key=True),
    sa.Column("principal_name", sa.Text, primary_key=True),
    sa.Column("suspended_at", Timestamp, nullable=False),
)

buckets = sa.Table(
    "buckets",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),  # globally unique, as on CoreWeave
    sa.Column("org_id", sa.String(32), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("owner_principal", sa.Text, nullable=False),
    sa.Column("zone", sa.String(32), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("versioning", sa.String(16), nullable=False, default=""),  # "" | Enabled | Suspended
    sa.Column("policy", sa.Text, nullable=True),
    sa.Column("tags", sa.JSON, nullable=True),
    sa.Column("cors", sa.Text, nullable=True),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Index("ix_buckets_org", "org_id", "name"),
)

# Every version of every object. version_id is "null" for the null version.
objects = sa.Table(
    "objects",
    metadata,
    sa.Column("bucket", sa.String(63), primary_key=True),
    sa.Column("key", KeyText, primary_key=True),
    sa.Column("version_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
    sa.Column("is_latest", sa.Boolean, nullable=False),
    sa.Column("is_delete_marker", sa.Boolean, nullable=False, default=False),
    sa.Column("size", sa.BigInteger, nullable=False, default=0),
    sa.Column("etag", sa.Text, nullable=False, default=""),
    sa.Column("last_modified", Timestamp, nullable=False),
    sa.Column("owner_principal", sa.Text, nullable=False, default=""),
    sa.Column("storage_class", sa.String(32), nullable=False, default="STANDARD"),
    # Content-Type, Content-Encoding, ... and x-amz-meta-* as sent.
    sa.Column("headers", sa.JSON, nullable=False),
    sa.Column("checksums", sa.JSON, nullable=False),  # {"CRC32": "...", ...} plus "type"
    # [{"blob": id, "size": n, "etag": "...", "checksums": {...}}]; one entry per part.
    sa.Column("parts", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=True),
    # {"owner": canonical id, "grants": [...]} when written with ACLs on (coffer/policy/acl.py).
    sa.Column("acl", sa.JSON, nullable=True),
    # Exactly one latest row per key (a concurrent second writer gets a unique violation and
    # retries); lookups and listings of current versions walk this partial index in key order,
    # so pages cost O(page). The predicate is spelled as each dialect's SQLAlchemy renders
    # `objects.c.is_latest == true()`, which SQLite needs to match the index to the query.
    sa.Index(
        "ix_objects_latest",
        "bucket",
        "key",
        unique=True,
        sqlite_where=sa.text("is_latest = 1"),
        postgresql_where=sa.text("is_latest = true"),
    ),
    # Versions of one key newest first (ListObjectVersions, promoting the next latest).
    sa.Index("ix_objects_seq", "bucket", "key", "seq"),
)

multipart_uploads = sa.Table(
    "multipart_uploads",
    metadata,
    sa.Column("upload_id", sa.String(64), primary_key=True),
    sa.Column("bucket", sa.String(63), nullable=False),
    sa.Column("key", KeyText, nullable=False),
    sa.Column("initiated", Timestamp, nullable=False),
    sa.Column("owner_principal", sa.Text, nullable=False, default=""),
    sa.Column("storage_class", sa.String(32), nullable=False, default="STANDARD"),
    sa.Column("headers", sa.JSON, nullable=False),
    sa.Column("checksum_algorithm", sa.String(16), nullable=True),
    sa.Column("checksum_type", sa.String(16), nullable=True),
    sa.Column("tags", sa.JSON, nullable=True),
    # The completed object's owner ({"owner": ...}) and, with ACLs on, its grants.
    sa.Column("acl", sa.JSON, nullable=True),
    # Upload ids start with their creation time, so (key, upload_id) is S3's listing order.
    sa.Index("ix_uploads_bucket_key", "bucket", "key", "upload_id"),
)

multipart_parts = sa.Table(
    "multipart_parts",
    metadata,
    sa.Column("upload_id", sa.String(64), primary_key=True),
    sa.Column("part_number", sa.Integer, primary_key=True),
    sa.Column("blob", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("etag", sa.Text, nullable=False),
    sa.Column("checksums", sa.JSON, nullable=False),
    sa.Column("last_modified", Timestamp, nullable=False),
)

# Multipart uploads completed in the last COMPLETED_UPLOAD_RETENTION (coffer/storage/rules.py),
# so that a retried CompleteMultipartUpload naming the same parts (`parts_digest`) answers
# as the first did. Each completion adds its row and prunes expired ones (uploads.py).
completed_uploads = sa.Table(
    "completed_uploads",
    metadata,
    sa.Column("upload_id", sa.String(64), primary_key=True),
    sa.Column("bucket", sa.String(63), nullable=False),
    sa.Column("key", KeyText, nullable=False),
    sa.Column("version_id", sa.String(64), nullable=False),
    sa.Column("etag", sa.Text, nullable=False),
    sa.Column("parts_digest", sa.String(64), nullable=False),
    sa.Column("completed_at", Timestamp, nullable=False, index=True),
)

# What each bucket holds, per storage class (coffer/storage/usage.py): every write adds its
# changes in its own transaction. Up to 16 `shard` rows per (bucket, class) on PostgreSQL,
# each write adding to one at random, so concurrent writers of a bucket do not queue on one
# row; a read sums them. One shard on SQLite, whose writers are serial anyway.
bucket_usage = sa.Table(
    "bucket_usage",
    metadata,
    sa.Column("bucket", sa.String(63), primary_key=True),
    sa.Column("storage_class", sa.String(32), primary_key=True),
    sa.Column("shard", sa.SmallInteger, primary_key=True),
    sa.Column("objects", sa.BigInteger, nullable=False, default=0),  # current versions
    sa.Column("bytes", sa.BigInteger, nullable=False, default=0),
    sa.Column("noncurrent_objects", sa.BigInteger, nullable=False, default=0),
    sa.Column("noncurrent_bytes", sa.BigInteger, nullable=False, default=0),
    sa.Column("delete_markers", sa.BigInteger, nullable=False, default=0),
    sa.Column("uploads", sa.BigInteger, nullable=False, default=0),  # in-progress multipart uploads
    sa.Column("upload_bytes", sa.BigInteger, nullable=False, default=0),  # their uploaded parts
)

# Blobs whose metadata row was removed; the collector unlinks them after a grace period,
# so a GET that is still streaming one is never cut short.
dead_blobs = sa.Table(
    "dead_blobs",
    metadata,
    sa.Column("blob", sa.String(64), primary_key=True),
    sa.Column("dead_since", Timestamp, nullable=False),
    sa.Index("ix_dead_blobs_since", "dead_since"),
)

# Organization access policies (CoreWeave CWObjectPolicy): one row per (organization, name).
# `document` is the validated policy as JSON; `etag` (its SHA-256) lets a node tell whether
# its compiled copy is still current without re-reading and re-compiling every document.
org_policies = sa.Table(
    "org_policies",
    metadata,
    sa.Column("org_id", sa.String(32), sa.ForeignKey("organizations.id"), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# Workload-federation configurations (SAML IdPs and OIDC issuers an organization trusts).
# `document` is the validated config as JSON (coffer.federation's to_json); `lookup` is the
# part that must be unique within (org, kind): a SHA-256 of the OIDC (issuer, audience) pair,
# for SAML the config id itself (SAML exchanges name their config explicitly).
federation_configs = sa.Table(
    "federation_configs",
    metadata,
    sa.Column("config_id", sa.String(36), primary_key=True),
    sa.Column("org_id", sa.String(32), sa.ForeignKey("organizations.id"), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # saml | oidc
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("lookup", sa.Text, nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("deactivated_at", Timestamp, nullable=True),
    sa.UniqueConstraint("org_id", "kind", "name", name="uq_federation_configs_name"),
    sa.Index("ix_federation_configs_lookup", "org_id", "kind", "lookup", unique=True),
)

# One-time credentials already used (SAML assertion IDs), shared by every worker and node.
# `key` is a SHA-256 of (issuer, assertion id); a row matters only until `expires_at`.
federation_replay = sa.Table(
    "federation_replay",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("expires_at", Timestamp, nullable=False, index=True),
)

# An organization's settings (SetOrganizationSettings) and its limits, one row per organization
# that changed any; NULL limits (and an absent row) mean the server-wide defaults.
org_settings = sa.Table(
    "org_settings",
    metadata,
    sa.Column("org_id", sa.String(32), sa.ForeignKey("organizations.id"), primary_key=True),
    sa.Column("control_plane_audit_logging_enabled", sa.Boolean, nullable=False, default=False),
    sa.Column("bucket_audit_logging_enabled", sa.Boolean, nullable=False, default=False),
    sa.Column("max_buckets", sa.Integer, nullable=True),
    sa.Column("capacity_cap_bytes", sa.BigInteger, nullable=True),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# A bucket's lifecycle configuration (PutBucketLifecycleConfiguration), one row per bucket that
# has one; `document` is the validated configuration as JSON (coffer/lifecycle/rules.py).
bucket_lifecycle = sa.Table(
    "bucket_lifecycle",
    metadata,
    sa.Column("bucket", sa.String(63), primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

# The background executor's state per (bucket, task) (coffer/lifecycle/executor.py): the lease
# (`holder` until `lease_until`: one node at a time, and a dead holder's lease runs out), the
# cursor of the pass in progress (NULL: none), and when the last pass finished.
bucket_task_state = sa.Table(
    "bucket_task_state",
    metadata,
    sa.Column("bucket", sa.String(63), primary_key=True),
    sa.Column("task", sa.String(32), primary_key=True),
    sa.Column("holder", sa.String(96), nullable=True),
    sa.Column("lease_until", Timestamp, nullable=True),
    sa.Column("cursor", sa.Text, nullable=True),
    sa.Column("pass_started", Timestamp, nullable=True),
    sa.Column("last_pass", Timestamp, nullable=True),
)

# A bucket's inventory configurations (PutBucketInventoryConfiguration), one row per (bucket, id):
# `document` is the validated configuration as JSON (coffer/lifecycle/inventory.py);
# `last_report_at` is when its last report was written (NULL: never), which makes the next due.
inventory_configs = sa.Table(
    "inventory_configs",
    metadata,
    sa.Column("bucket", sa.String(63), primary_key=True),
    sa.Column("config_id", sa.String(64), primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("last_report_at", Timestamp, nullable=True),
)

# A counter bumped by every change that cached state depends on (keys, tokens, policies).
change_counter = sa.Table(
    "change_counter",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)
