"""The extension fields of a key's hygiene on Get/List: lastUsed, rotation, createdAt, expiryInSight.

They ride on CoreWeave's answers only when asked for in `X-Coffer-Extensions`
(`coffer.api.extensions`); each costs one query for the whole page. See decision 0190.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from coffer.identity.models import AccessKey, rfc3339, utcnow
from coffer.node import Node

FIELDS = frozenset({"lastUsed", "rotation", "expiryInSight", "createdAt"})


def _rotation(key: AccessKey, successor: str | None) -> dict[str, Any] | None:
    if key.revoke_at is None and key.rotated_from is None and successor is None:
        return None
    return {
        "revokeAt": rfc3339(key.revoke_at) if key.revoke_at else None,
        "predecessor": key.rotated_from,
        "successor": successor,
    }


def add_fields(
    node: Node, org_id: str, keys: Sequence[AccessKey], infos: list[dict[str, Any]], wanted: frozenset[str]
) -> None:
    """Add the `wanted` fields of these to `infos` (one per key). Reads the store: run it in the pool."""
    if not wanted & FIELDS:
        return
    service, ids = node.keys, [k.access_key_id for k in keys]
    used = service.last_used.read(ids) if "lastUsed" in wanted else {}
    successors = service.successors(org_id, ids) if "rotation" in wanted else {}
    now = utcnow()
    for key, info in zip(keys, infos, strict=True):
        if "lastUsed" in wanted:
            use = used.get(key.access_key_id)
            info["lastUsed"] = (
                {
                    "time": rfc3339(use.time),
                    "operation": use.operation,
                    "sourceIp": use.source_ip,
                    "face": use.face,
                }
                if use
                else None
            )
        if "rotation" in wanted:
            info["rotation"] = _rotation(key, successors.get(key.access_key_id))
        if "createdAt" in wanted:
            info["createdAt"] = rfc3339(key.created_at)
        if "expiryInSight" in wanted:
            info["expiryInSight"] = service.in_sight(key, now)
