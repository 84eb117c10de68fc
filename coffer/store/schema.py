"""The one schema both dialects share. Migrations in `migrations/versions` create it.

Object keys use the C collation on PostgreSQL so that ORDER BY matches S3's UTF-8
byte order; SQLite's default BINARY collation already does.

Plain columns are stated in runs, as `name=type` keywords (`_key`, `_required`,
`_optional`), the columns every table shapes alike by a helper each; a column with a
default, an index or a foreign key of its own is a `sa.Column` of its own.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

# Object keys sort by UTF-8 bytes on every dialect.
KeyText = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
Timestamp = sa.DateTime(timezone=True)

_Column = sa.Column[Any]
_Type = sa.types.TypeEngine[Any] | type[sa.types.TypeEngine[Any]]


def _key(**types: _Type) -> list[_Column]:
    """The primary key's columns, in the order given."""
    return [sa.Column(name, type_, primary_key=True) for name, type_ in types.items()]


def _required(**types: _Type) -> list[_Column]:
    """NOT NULL columns, in the order given."""
    return [sa.Column(name, type_, nullable=False) for name, type_ in types.items()]


def _optional(**types: _Type) -> list[_Column]:
    """Nullable columns (NULL: not set), in the order given."""
    return [sa.Column(name, type_, nullable=True) for name, type_ in types.items()]


def _org_id(**kw: Any) -> _Column:
    """The organization a row belongs to."""
    return sa.Column("org_id", sa.String(32), sa.ForeignKey("organizations.id"), **kw)


def _edited() -> list[_Column]:
    """When a row was created and last changed."""
    return _required(created_at=Timestamp, updated_at=Timestamp)


def _lifetime() -> list[_Column]:
    """When a credential was made, when it expires (NULL: never) and was revoked (NULL: not yet)."""
    return [*_required(created_at=Timestamp), *_optional(expires_at=Timestamp, revoked_at=Timestamp)]


def _counters(*names: str) -> list[_Column]:
    """Counters of `bucket_usage` (usage.py's COUNTERS are these, in this order)."""
    return [sa.Column(name, sa.BigInteger, nullable=False, default=0) for name in names]


organizations = sa.Table(
    "organizations",
    metadata,
    *_key(id=sa.String(32)),
    *_required(name=sa.Text, created_at=Timestamp),
)

users = sa.Table(
    "users",
    metadata,
    *_key(id=sa.String(32)),  # the UID; principal coreweave/<UID>
    _org_id(nullable=False),
    *_required(name=sa.Text),
    sa.Column("is_storage_admin", sa.Boolean, nullable=False, default=False),
    *_required(created_at=Timestamp),
    sa.UniqueConstraint("org_id", "name", name="uq_users_org_name"),
)

group_members = sa.Table(
    "group_members",
    metadata,
    sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id"), primary_key=True),
    *_key(group_name=sa.Text),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    *_key(id=sa.String(32)),
    sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id"), nullable=False),
    sa.Column("token_hash", sa.LargeBinary(32), nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False, default=""),
    *_lifetime(),
)

access_keys = sa.Table(
    "access_keys",
    metadata,
    *_key(access_key_id=sa.String(32)),
    _org_id(nullable=False),
    sa.Column("principal_name", sa.Text, nullable=False, index=True),
    *_optional(user_id=sa.String(32)),
    *_required(secret_ciphertext=sa.LargeBinary),
    # Set only for keys handed out with a session token (container credentials).
    *_optional(session_token_hash=sa.LargeBinary(32)),
    # `source`: jwt | api-token | saml | oidc; `role`: role/<...>, usable as a policy principal.
    *_required(source=sa.String(16)),
    *_optional(role=sa.Text),
    *_required(attributes=sa.JSON, multi_attributes=sa.JSON),
    *_lifetime(),
    # The workload-federation config a SAML/OIDC key was minted through: removing or
    # deactivating the config revokes its keys (trust in that IdP is withdrawn).
    sa.Column("federation_config_id", sa.String(36), nullable=True, index=True),
    # `scope`: a scoped key's inline policy (coffer/policy/scope.py), immutable; NULL: as wide
    # as its owner (0012). `revoke_at`: a revocation a rotation scheduled, the key is refused
    # from this instant on (0013). `rotated_from`: the key this one replaced in a rotation.
    *_optional(scope=sa.JSON, revoke_at=Timestamp, rotated_from=sa.String(32)),
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
    *_key(access_key_id=sa.String(32)),
    *_required(used_at=Timestamp, operation=sa.String(64), source_ip=sa.String(64), face=sa.String(16)),
)

principal_suspensions = sa.Table(
    "principal_suspensions",
    metadata,
    *_key(org_id=sa.String(32), principal_name=sa.Text),
    *_required(suspended_at=Timestamp),
)

buckets = sa.Table(
    "buckets",
    metadata,
    *_key(name=sa.String(63)),  # globally unique, as on CoreWeave
    _org_id(nullable=False),
    *_required(owner_principal=sa.Text, zone=sa.String(32), created_at=Timestamp),
    sa.Column("versioning", sa.String(16), nullable=False, default=""),  # "" | Enabled | Suspended
    *_optional(policy=sa.Text, tags=sa.JSON, cors=sa.Text),
    *_required(settings=sa.JSON),
    sa.Index("ix_buckets_org", "org_id", "name"),
)

# Every version of every object. version_id is "null" for the null version.
objects = sa.Table(
    "objects",
    metadata,
    *_key(bucket=sa.String(63), key=KeyText, version_id=sa.String(64)),
    *_required(seq=sa.BigInteger().with_variant(sa.Integer, "sqlite"), is_latest=sa.Boolean),
    sa.Column("is_delete_marker", sa.Boolean, nullable=False, default=False),
    sa.Column("size", sa.BigInteger, nullable=False, default=0),
    sa.Column("etag", sa.Text, nullable=False, default=""),
    *_required(last_modified=Timestamp),
    sa.Column("owner_principal", sa.Text, nullable=False, default=""),
    sa.Column("storage_class", sa.String(32), nullable=False, default="STANDARD"),
    # `headers`: Content-Type, Content-Encoding, ... and x-amz-meta-* as sent. `checksums`:
    # {"CRC32": "...", ...} plus "type". `parts`: [{"blob": id, "size": n, "etag": "...",
    # "checksums": {...}}], one entry per part.
    *_required(headers=sa.JSON, checksums=sa.JSON, parts=sa.JSON),
    # `acl`: {"owner": canonical id, "grants": [...]} when written with ACLs on (coffer/policy/acl.py).
    *_optional(tags=sa.JSON, acl=sa.JSON),
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
    *_key(upload_id=sa.String(64)),
    *_required(bucket=sa.String(63), key=KeyText, initiated=Timestamp),
    sa.Column("owner_principal", sa.Text, nullable=False, default=""),
    sa.Column("storage_class", sa.String(32), nullable=False, default="STANDARD"),
    *_required(headers=sa.JSON),
    *_optional(checksum_algorithm=sa.String(16), checksum_type=sa.String(16), tags=sa.JSON),
    # The completed object's owner ({"owner": ...}) and, with ACLs on, its grants.
    *_optional(acl=sa.JSON),
    # Upload ids start with their creation time, so (key, upload_id) is S3's listing order.
    sa.Index("ix_uploads_bucket_key", "bucket", "key", "upload_id"),
)

multipart_parts = sa.Table(
    "multipart_parts",
    metadata,
    *_key(upload_id=sa.String(64), part_number=sa.Integer),
    *_required(blob=sa.String(64), size=sa.BigInteger, etag=sa.Text, checksums=sa.JSON),
    *_required(last_modified=Timestamp),
)

# Multipart uploads completed in the last COMPLETED_UPLOAD_RETENTION (coffer/storage/rules.py),
# so that a retried CompleteMultipartUpload naming the same parts (`parts_digest`) answers
# as the first did. Each completion adds its row and prunes expired ones (uploads.py).
completed_uploads = sa.Table(
    "completed_uploads",
    metadata,
    *_key(upload_id=sa.String(64)),
    *_required(bucket=sa.String(63), key=KeyText, version_id=sa.String(64), etag=sa.Text),
    *_required(parts_digest=sa.String(64)),
    sa.Column("completed_at", Timestamp, nullable=False, index=True),
)

# What each bucket holds, per storage class (coffer/storage/usage.py): every write adds its
# changes in its own transaction. Up to 16 `shard` rows per (bucket, class) on PostgreSQL,
# each write adding to one at random, so concurrent writers of a bucket do not queue on one
# row; a read sums them. One shard on SQLite, whose writers are serial anyway.
bucket_usage = sa.Table(
    "bucket_usage",
    metadata,
    *_key(bucket=sa.String(63), storage_class=sa.String(32), shard=sa.SmallInteger),
    *_counters("objects", "bytes", "noncurrent_objects", "noncurrent_bytes", "delete_markers"),
    *_counters("uploads", "upload_bytes"),  # in-progress multipart uploads, their uploaded parts
)

# Blobs whose metadata row was removed; the collector unlinks them after a grace period,
# so a GET that is still streaming one is never cut short.
dead_blobs = sa.Table(
    "dead_blobs",
    metadata,
    *_key(blob=sa.String(64)),
    *_required(dead_since=Timestamp),
    sa.Index("ix_dead_blobs_since", "dead_since"),
)

# Organization access policies (CoreWeave CWObjectPolicy): one row per (organization, name).
# `document` is the validated policy as JSON; `etag` (its SHA-256) lets a node tell whether
# its compiled copy is still current without re-reading and re-compiling every document.
org_policies = sa.Table(
    "org_policies",
    metadata,
    _org_id(primary_key=True),
    *_key(name=sa.String(128)),
    *_required(document=sa.Text, etag=sa.String(64)),
    *_edited(),
)

# Workload-federation configurations (SAML IdPs and OIDC issuers an organization trusts).
# `document` is the validated config as JSON (coffer.federation's to_json); `lookup` is the
# part that must be unique within (org, kind): a SHA-256 of the OIDC (issuer, audience) pair,
# for SAML the config id itself (SAML exchanges name their config explicitly). `kind`: saml | oidc.
federation_configs = sa.Table(
    "federation_configs",
    metadata,
    *_key(config_id=sa.String(36)),
    _org_id(nullable=False),
    *_required(kind=sa.String(8), name=sa.String(255), lookup=sa.Text, document=sa.Text),
    *_edited(),
    *_optional(deactivated_at=Timestamp),
    sa.UniqueConstraint("org_id", "kind", "name", name="uq_federation_configs_name"),
    sa.Index("ix_federation_configs_lookup", "org_id", "kind", "lookup", unique=True),
)

# One-time credentials already used (SAML assertion IDs), shared by every worker and node.
# `key` is a SHA-256 of (issuer, assertion id); a row matters only until `expires_at`.
federation_replay = sa.Table(
    "federation_replay",
    metadata,
    *_key(key=sa.String(64)),
    sa.Column("expires_at", Timestamp, nullable=False, index=True),
)

# An organization's settings (SetOrganizationSettings) and its limits, one row per organization
# that changed any; NULL limits (and an absent row) mean the server-wide defaults.
org_settings = sa.Table(
    "org_settings",
    metadata,
    _org_id(primary_key=True),
    sa.Column("control_plane_audit_logging_enabled", sa.Boolean, nullable=False, default=False),
    sa.Column("bucket_audit_logging_enabled", sa.Boolean, nullable=False, default=False),
    *_optional(max_buckets=sa.Integer, capacity_cap_bytes=sa.BigInteger),
    *_required(updated_at=Timestamp),
)

# A bucket's lifecycle configuration (PutBucketLifecycleConfiguration), one row per bucket that
# has one; `document` is the validated configuration as JSON (coffer/lifecycle/rules.py).
bucket_lifecycle = sa.Table(
    "bucket_lifecycle",
    metadata,
    *_key(bucket=sa.String(63)),
    *_required(document=sa.Text),
    *_edited(),
)

# The background executor's state per (bucket, task) (coffer/lifecycle/executor.py): the lease
# (`holder` until `lease_until`: one node at a time, and a dead holder's lease runs out), the
# cursor of the pass in progress (NULL: none), and when the last pass finished.
bucket_task_state = sa.Table(
    "bucket_task_state",
    metadata,
    *_key(bucket=sa.String(63), task=sa.String(32)),
    *_optional(holder=sa.String(96), lease_until=Timestamp, cursor=sa.Text),
    *_optional(pass_started=Timestamp, last_pass=Timestamp),
)

# A bucket's inventory configurations (PutBucketInventoryConfiguration), one row per (bucket, id):
# `document` is the validated configuration as JSON (coffer/lifecycle/inventory.py);
# `last_report_at` is when its last report was written (NULL: never), which makes the next due.
inventory_configs = sa.Table(
    "inventory_configs",
    metadata,
    *_key(bucket=sa.String(63), config_id=sa.String(64)),
    *_required(document=sa.Text),
    *_edited(),
    *_optional(last_report_at=Timestamp),
)

# A counter bumped by every change that cached state depends on (keys, tokens, policies).
change_counter = sa.Table(
    "change_counter",
    metadata,
    *_key(name=sa.String(32)),
    *_required(value=sa.BigInteger),
)
