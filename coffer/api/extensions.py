"""Coffer's extension fields on CoreWeave's wire format, and the header that asks for them.

CoreWeave's responses stay byte for byte what a client that knows only CoreWeave's API
expects: a field Coffer adds appears in a response only when the request names it in
`X-Coffer-Extensions` (comma-separated names, or `*` for all). Extension request fields
are simply accepted. Unknown names are ignored, so a newer client may ask an older server.
See docs/api.md, "Coffer's extension fields", and decision 0185.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HEADER = "x-coffer-extensions"
ALL = "*"

# Every extension response field: name -> what it carries (the OpenAPI describes the header with it).
FIELDS: dict[str, str] = {
    "scope": "the key's scope, an inline policy narrowing it below its owner (null: none)",
    "lastUsed": "when, by which operation, from which address and through which face the key was last "
    "used (`{time, operation, sourceIp, face}`; null: never), exact within last_used_flush_seconds",
    "rotation": "the key's rotation (`{revokeAt, predecessor, successor}`; null: never rotated)",
    "createdAt": "when the key was minted",
    "expiryInSight": "`EXPIRES_SOON` (a temporary key within key_expiry_warning_seconds of its expiry), "
    "`AGED` (a permanent key older than key_max_age_days), or null",
}

# Bounds the work one header costs: at most this many names are looked at.
_MAX_NAMES = 32


def requested(headers: Mapping[str, str]) -> frozenset[str]:
    """The extension fields this request asks for: the known names it lists, or all for `*`."""
    raw = headers.get(HEADER)
    if not raw:
        return frozenset()
    names = {part.strip() for part in raw.split(",", _MAX_NAMES)[:_MAX_NAMES]}
    if ALL in names:
        return frozenset(FIELDS)
    return frozenset(names & FIELDS.keys())


def openapi_parameter() -> dict[str, Any]:
    """The header as an OpenAPI parameter, for every operation whose response has extension fields."""
    listed = "; ".join(f"`{name}`: {text}" for name, text in FIELDS.items())
    return {
        "name": "X-Coffer-Extensions",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "example": "scope"},
        "description": (
            "Coffer extension: the extension response fields to include, comma-separated, or `*` for "
            f"all. Without it a response is exactly CoreWeave's. Known fields: {listed}."
        ),
    }
