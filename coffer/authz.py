"""The one door for control-plane authorization.

Until the policy engine lands, `cwobject:` actions need Object Storage Admin (held
directly or through the legacy `admin` group); the policy issue widens this to callers
an organization policy allows.
"""

from __future__ import annotations

from coffer.errors import PermissionDenied
from coffer.identity.models import Caller
from coffer.logs import audit


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
