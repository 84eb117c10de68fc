"""The one door for control-plane authorization.

Until the policy engine lands, `cwobject:` actions need Object Storage Admin (held
directly or through the legacy `admin` group); the policy issue widens this to callers
an organization policy allows.
"""

from __future__ import annotations

from typing import Protocol

from coffer.errors import PermissionDenied, S3Error
from coffer.identity.models import AccessKey, Caller
from coffer.logs import audit
from coffer.storage.models import Bucket


def authorize_control(caller: Caller, action: str, resource: str = "*") -> None:
    if caller.user.has_storage_admin:
        return
    audit(
        "denied",
        plane="control",
        action=action,
        resource=resource,
        principal=caller.principal_name,
        org_id=caller.org_id,
        reason="caller lacks the Object Storage Admin role",
    )
    raise PermissionDenied(f"{caller.principal_name} is not allowed to perform {action}")


# --- S3 data plane -----------------------------------------------------------------------


class S3Operation(Protocol):
    """What the S3 router resolved (coffer.s3.router.Operation); the core never imports the face."""

    @property
    def name(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def resource(self) -> str: ...


# Service-level actions any authenticated key may take until the policy engine decides them.
_ANY_KEY_ACTIONS = frozenset({"s3:ListAllMyBuckets", "s3:CreateBucket"})


def authorize_s3(key: AccessKey | None, operation: S3Operation, bucket: Bucket | None) -> None:
    """The one door for S3 requests: allow, or raise S3Error AccessDenied.

    Interim rule until the policy issue lands: anonymous requests are denied; a key may
    list its buckets and create buckets (in its own organization), and may act on the
    buckets of its own organization.
    """
    reason = ""
    if key is None:
        reason = "anonymous access is not allowed"
    elif operation.action in _ANY_KEY_ACTIONS:
        return
    elif bucket is None:
        reason = "the operation needs a bucket"
    elif bucket.org_id == key.org_id:
        return
    else:
        reason = "the bucket belongs to another organization"
    audit(
        "denied",
        plane="s3",
        action=operation.action,
        operation=operation.name,
        resource=operation.resource,
        principal=key.principal_name if key else None,
        access_key_id=key.access_key_id if key else None,
        org_id=key.org_id if key else None,
        reason=reason,
    )
    raise S3Error("AccessDenied")
