"""RotateAccessKey, a Coffer extension: a successor key now, the old one revoked after an overlap.

On a path under `/v1/cwobject/coffer/`, which CoreWeave's API cannot grow into. See decision 0190.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import JSONResponse

from coffer.api.accesskeys import minted_json
from coffer.api.http import Call, require_string, rpc
from coffer.api.schema import obj
from coffer.errors import InvalidArgument
from coffer.identity.models import rfc3339
from coffer.web.http import call, json_body, origin_of

ROTATE_PATH = "/v1/cwobject/coffer/access-key/rotate"
MAX_OVERLAP_SECONDS = 30 * 86400
# The audit trail's name of the call; the permission it needs is cwobject:CreateAccessKey.
ROTATE_ACTION = "cwobject:RotateAccessKey"


def _overlap(value: object) -> int:
    """Seconds both keys work: a JSON integer (or decimal string, as proto3 JSON allows), 0 to 30 days."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,10}", value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_OVERLAP_SECONDS:
        raise InvalidArgument.field(
            "overlapSeconds", f"is required: whole seconds from 0 to {MAX_OVERLAP_SECONDS} (30 days)"
        )
    return value


async def rotate_access_key(c: Call) -> JSONResponse:
    body = await json_body(c.request)
    key_id = require_string(body, "accessKey")
    overlap = _overlap(body.get("overlapSeconds"))
    node, caller = c.node, c.caller
    # A rotation mints (the operation's own action) and revokes: the caller needs both.
    await call(
        node.authz.authorize_control, caller, "cwobject:RevokeAccessKeyByAccessKey", origin_of(c.request)
    )
    minted, old = await call(
        node.keys.rotate,
        caller.org_id,
        key_id,
        overlap,
        owner=caller.principal_name,
        actor=c.actor(ROTATE_ACTION),
    )
    out = minted_json(minted)
    out["rotation"] = {"revokeAt": rfc3339(old.revoke_at) if old.revoke_at else None, "predecessor": key_id}
    return JSONResponse(out)


operations = [rpc("RotateAccessKey", "POST", ROTATE_PATH, rotate_access_key)]

_TIME = {"type": "string", "format": "date-time"}
OPENAPI: dict[str, dict[str, Any]] = {
    "RotateAccessKey": {
        "summary": (
            "Coffer extension: mint a successor of one of the caller's keys (same name, attributes and "
            "scope; its secret is in this answer only) and revoke the key when the overlap ends"
        ),
        "body": obj(
            ["accessKey", "overlapSeconds"],
            accessKey={"type": "string", "minLength": 1, "maxLength": 64},
            overlapSeconds={
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_OVERLAP_SECONDS,
                "description": "how long both keys work; the old key is refused from then on",
            },
        ),
        "response": obj(
            ["accessKeyId", "secretKey", "principalName", "expiry", "rotation"],
            accessKeyId={"type": "string"},
            secretKey={"type": "string"},
            principalName={"type": "string"},
            expiry=_TIME,
            attributes={"type": "object", "additionalProperties": {"type": "string"}},
            rotation=obj(["revokeAt", "predecessor"], revokeAt=_TIME, predecessor={"type": "string"}),
        ),
        "errors": {
            "400": "INVALID_ARGUMENT (3) or FAILED_PRECONDITION (9): the key is revoked, expired, already "
            "rotated, or came from a federation exchange or with a session token",
            "403": "PERMISSION_DENIED (7): the caller lacks cwobject:CreateAccessKey or "
            "cwobject:RevokeAccessKeyByAccessKey, or the key is not its own",
        },
    },
}
