"""What an audit-log record says: the reference's fields, built from what Coffer already knows.

Two kinds of record (reference §6.10), each a flat JSON object:

- `control-plane/`: made from the audit trail's own events (`coffer.audit`), the ones that
  change who can do what: keys minted, revoked, suspended or reactivated; organization
  policies ensured or deleted; federation configurations changed; bucket and organization
  settings changed. Fields `action`, `principal`, `principalRole`, `timestamp`,
  `identifier`, `duration_seconds`, and Coffer's `event` name.
- `data-plane/`: made from an S3 request as its face saw it (`DataRequest`). Fields
  `action`, `aws:arn`, `principal`, `timestamp`, `sourceIp`, `host`, `bucketName`,
  `accessKeyId`, `requestId`, and Coffer's `operation`, `key` and `status`.

Pure: no I/O, no clock of its own (the caller passes `now`). docs/operations.md
("Audit logs in the organization's bucket") lists every field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coffer.identity.models import AccessKey

CONTROL_PLANE = "control-plane"
DATA_PLANE = "data-plane"
PLANES = (CONTROL_PLANE, DATA_PLANE)

# Audit-trail events that are control-plane records: the `cwobject:` call an event comes
# through when it does not say (the CLI's do not), and the field naming what changed.
CONTROL_EVENTS: dict[str, tuple[str, str]] = {
    "access_key_minted": ("cwobject:CreateAccessKey", "access_key_id"),
    "access_key_revoked": ("cwobject:RevokeAccessKeyByAccessKey", "access_key_id"),
    "access_key_rotated": ("cwobject:RotateAccessKey", "access_key_id"),  # Coffer extension
    "principal_keys_revoked": ("cwobject:RevokeAccessKeysByPrincipal", "principal"),
    "access_keys_suspended": ("cwobject:UpdateAccessKeyStatus", "principal"),
    "access_keys_reactivated": ("cwobject:UpdateAccessKeyStatus", "principal"),
    "access_policy_ensured": ("cwobject:EnsureAccessPolicy", "policy"),
    "access_policy_deleted": ("cwobject:DeleteAccessPolicy", "policy"),
    "federation_config_changed": ("cwobject:UpdateFederationConfig", "config_id"),
    "bucket_settings_changed": ("cwobject:SetBucketSettings", "bucket"),
    "org_settings_changed": ("cwobject:SetOrganizationSettings", "org_id"),
}
# Switching control-plane logging off is itself logged (the reference lists "audit logging
# enabled/disabled" among the events), though the switch is off once it has happened.
CONTROL_SWITCH = "control_plane_audit_logging_enabled"

# principalRole values (docs/operations.md).
ROLE_ADMIN = "ObjectStorageAdmin"
ROLE_MEMBER = "Member"
ROLE_FEDERATED = "Federated"
ROLE_OPERATOR = "Operator"
ROLE_SYSTEM = "System"

# S3 operations that are data-plane records of the bucket they address, when that bucket
# has auditLoggingEnabled: object puts, gets and deletes, and the bucket's listings.
BUCKET_OPERATIONS = frozenset(
    {
        "PutObject",
        "CopyObject",
        "PostObject",
        "CompleteMultipartUpload",
        "GetObject",
        "HeadObject",
        "DeleteObject",
        "DeleteObjects",
        "ListObjects",
        "ListObjectsV2",
        "ListObjectVersions",
        "DeleteBucket",
    }
)
# Operations on the organization's set of buckets: no bucket's settings can gate them (a
# bucket being created has none yet), so the organization's switch alone does.
ORG_OPERATIONS = frozenset({"CreateBucket", "ListBuckets"})
LOGGED_OPERATIONS = BUCKET_OPERATIONS | ORG_OPERATIONS


def timestamp(now: datetime) -> str:
    """RFC 3339 in UTC with milliseconds: `2026-12-05T18:05:09.123Z`."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def hour_of(stamp: str) -> str:
    """The key partition of a record's `timestamp`: `2026/12/05/18`."""
    return f"{stamp[0:4]}/{stamp[5:7]}/{stamp[8:10]}/{stamp[11:13]}"


def principal_role(actor: str, users: Callable[[str], Any | None]) -> str:
    """The role of the actor of a control-plane change (`users` finds a user by id, or None)."""
    kind, _, rest = actor.partition("/")
    if kind == "coreweave" and rest:
        user = users(rest)
        if user is None:
            return ROLE_MEMBER
        return ROLE_ADMIN if getattr(user, "has_storage_admin", False) else ROLE_MEMBER
    if kind in ("saml", "role") and rest:
        return ROLE_FEDERATED
    if actor.startswith("cli:"):
        return ROLE_OPERATOR
    return ROLE_SYSTEM


def is_control_event(event: str) -> bool:
    return event in CONTROL_EVENTS


def logs_switch_change(event: str, fields: Mapping[str, Any]) -> bool:
    """An organization-settings change that touched the control-plane switch: logged even
    when it turned the switch off."""
    return event == "org_settings_changed" and CONTROL_SWITCH in (fields.get("changed") or ())


def control_record(event: str, fields: Mapping[str, Any], role: str, now: datetime) -> dict[str, Any]:
    """The control-plane record of audit-trail event `event` (one of CONTROL_EVENTS)."""
    default_action, identifier = CONTROL_EVENTS[event]
    duration = fields.get("duration_seconds")
    return {
        "action": fields.get("action") or default_action,
        "principal": fields.get("actor"),
        "principalRole": role,
        "timestamp": timestamp(now),
        "identifier": fields.get(identifier),
        "duration_seconds": int(duration) if isinstance(duration, int) else None,
        "event": event,
    }


@dataclass(frozen=True)
class DataRequest:
    """An S3 request as its face saw it, for a data-plane record: `caller` is the key that
    signed it (None: anonymous), `action` the policy action it was authorized as."""

    operation: str
    action: str
    bucket: str | None
    key: str | None
    caller: AccessKey | None
    source_ip: str | None
    host: str | None
    request_id: str
    status: int

    @property
    def org_id(self) -> str | None:
        """The caller's organization."""
        return self.caller.org_id if self.caller else None


def resource_arn(bucket: str | None, key: str | None) -> str:
    if bucket is None:
        return "arn:aws:s3:::*"
    return f"arn:aws:s3:::{bucket}/{key}" if key is not None else f"arn:aws:s3:::{bucket}"


def identity_arn(caller: AccessKey | None) -> str:
    """The caller as `aws:PrincipalArn` names it (coffer.policy.engine), or `anonymous`."""
    if caller is None:
        return "anonymous"
    return f"arn:aws:iam::{caller.org_id}:{caller.principal_name}"


# The lifecycle executor's deletions (coffer/lifecycle/expiration.py): data-plane records of
# their bucket, as its requests are, the executor named as their principal.
LIFECYCLE_EVENT = "lifecycle_expired"
_LIFECYCLE_ACTIONS = {"abort_upload": "s3:AbortMultipartUpload"}


def lifecycle_record(fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The data-plane record of a `lifecycle_expired` audit-trail event."""
    bucket, key = fields.get("bucket"), fields.get("key")
    return {
        "action": _LIFECYCLE_ACTIONS.get(str(fields.get("kind")), "s3:DeleteObject"),
        "aws:arn": resource_arn(bucket, key),
        "principal": fields.get("actor"),
        "timestamp": timestamp(now),
        "sourceIp": None,
        "host": None,
        "bucketName": bucket,
        "accessKeyId": None,
        "requestId": None,
        "operation": "LifecycleExpiration",
        "key": key,
        "status": 200,
        "rule": fields.get("rule"),
        "kind": fields.get("kind"),
        "versionId": fields.get("version_id"),
    }


def data_record(request: DataRequest, now: datetime) -> dict[str, Any]:
    caller = request.caller
    return {
        "action": request.action,
        "aws:arn": resource_arn(request.bucket, request.key),
        "principal": identity_arn(caller),
        "timestamp": timestamp(now),
        "sourceIp": request.source_ip,
        "host": request.host,
        "bucketName": request.bucket,
        "accessKeyId": caller.access_key_id if caller else None,
        "requestId": request.request_id,
        "operation": request.operation,
        "key": request.key,
        "status": request.status,
    }
