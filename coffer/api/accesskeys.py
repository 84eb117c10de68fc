"""Access-key operations: CreateAccessKeyFromJWT, List/Get, status, revoke, api-token exchange.

Field names, shapes and status strings follow CoreWeave's API (reference §2.3); where
its documentation leaves room, docs/api.md records what Coffer chose.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from coffer.api import keyfields
from coffer.api.extensions import requested
from coffer.api.http import Call, Operation, require_string
from coffer.errors import InvalidArgument
from coffer.identity.accesskeys import (
    parse_duration,
    parse_page,
    parse_status,
    validate_attributes,
    validate_principal,
    validate_scope,
)
from coffer.identity.models import AccessKey, KeySource, MintedKey, rfc3339
from coffer.web.http import call, json_body


def _multi(key: AccessKey) -> dict[str, Any]:
    """multiAttributes as proto3 JSON renders map<string, AttributeList>."""
    return {k: {"values": v} for k, v in key.multi_attributes.items()}


def key_extensions(key: AccessKey, wanted: frozenset[str]) -> dict[str, Any]:
    """The extension fields (coffer.api.extensions) of a key that the request asked for."""
    out: dict[str, Any] = {}
    if "scope" in wanted:  # null: the key has none (a client can tell that from "not supported")
        out["scope"] = key.scope.document if key.scope is not None else None
    return out


def key_info(key: AccessKey, wanted: frozenset[str] = frozenset()) -> dict[str, Any]:
    """AccessKeyInfo in CoreWeave's field names, then the extension fields `wanted`; never the secret."""
    return {
        "accessKeyId": key.access_key_id,
        "status": key.status().value,
        "principalName": key.principal_name,
        "attributes": key.attributes,
        "expiry": rfc3339(key.expiry_for_api),
        "orgId": key.org_id,
        "multiAttributes": _multi(key),
        **key_extensions(key, wanted),
    }


def minted_json(minted: MintedKey, wanted: frozenset[str] = frozenset()) -> dict[str, Any]:
    return {
        "accessKeyId": minted.key.access_key_id,
        "secretKey": minted.secret_key,
        "principalName": minted.key.principal_name,
        "expiry": rfc3339(minted.key.expiry_for_api),
        "attributes": minted.key.attributes,
        **key_extensions(minted.key, wanted),
    }


def container_credentials_json(minted: MintedKey) -> dict[str, Any]:
    """The AWS container-credentials shape (PascalCase), as CoreWeave returns it."""
    return {
        "AccessKeyId": minted.key.access_key_id,
        "SecretAccessKey": minted.secret_key,
        "Token": minted.session_token or "",
        "Expiration": rfc3339(minted.key.expiry_for_api),
        "attributes": minted.key.attributes,
        "multiAttributes": _multi(minted.key),
    }


def _groups(c: Call) -> dict[str, list[str]] | None:
    """The caller's groups travel with its keys (multiAttributes.groups), for policy conditions."""
    groups = list(c.caller.user.groups)
    return {"groups": groups} if groups else None


async def _mint_own(c: Call, duration: int, action: str, **options: Any) -> MintedKey:
    """A key for the caller itself, carrying its groups; `options` go to the key service's mint."""
    return await call(
        c.node.keys.mint,
        org_id=c.caller.org_id,
        principal_name=c.caller.principal_name,
        user_id=c.caller.user.id,
        duration_seconds=duration,
        multi_attributes=_groups(c),
        actor=c.actor(action),
        **options,
    )


async def create_access_key(c: Call) -> JSONResponse:
    body = await json_body(c.request)
    duration = parse_duration(body.get("durationSeconds"))
    attributes = validate_attributes(body.get("attributes"))
    scope = validate_scope(body.get("scope"))
    minted = await _mint_own(
        c, duration, "cwobject:CreateAccessKey", source=KeySource.JWT, attributes=attributes, scope=scope
    )
    return JSONResponse(minted_json(minted, requested(c.request.headers)))


async def list_access_keys(c: Call) -> JSONResponse:
    q = c.request.query_params
    page = parse_page(q.get("offset"), q.get("limit"))
    status = parse_status(q["status"]) if "status" in q else None
    keys = await call(c.node.keys.list, c.caller.org_id, page, status)
    wanted = requested(c.request.headers)
    infos = [key_info(k, wanted) for k in keys]
    await call(keyfields.add_fields, c.node, c.caller.org_id, keys, infos, wanted)
    return JSONResponse({"info": infos})


async def get_access_key(c: Call) -> JSONResponse:
    key = await call(c.node.keys.get, c.caller.org_id, c.request.path_params["accessKeyId"])
    wanted = requested(c.request.headers)
    info = key_info(key, wanted)
    await call(keyfields.add_fields, c.node, c.caller.org_id, [key], [info], wanted)
    return JSONResponse({"info": info})


async def update_access_key_status(c: Call) -> JSONResponse:
    body = await json_body(c.request)
    principal = validate_principal(body.get("principalName"))
    if body.get("status") is None:
        raise InvalidArgument.field(
            "status", "is required: ACCESS_KEY_STATUS_ACTIVE or ACCESS_KEY_STATUS_SUSPENDED"
        )
    status = parse_status(body["status"], settable=True)
    await call(c.node.keys.set_principal_status, c.caller.org_id, principal, status, actor=c.actor())
    return JSONResponse({})


async def revoke_access_key(c: Call) -> JSONResponse:
    body = await json_body(c.request)
    key_id = require_string(body, "accessKey")
    await call(c.node.keys.revoke_key, c.caller.org_id, key_id, actor=c.actor())
    return JSONResponse({})


async def revoke_principal_keys(c: Call) -> JSONResponse:
    body = await json_body(c.request)
    principal = validate_principal(body.get("principalName"))
    await call(c.node.keys.revoke_principal, c.caller.org_id, principal, actor=c.actor())
    return JSONResponse({})


async def credentials_from_api_token(c: Call) -> JSONResponse:
    settings = c.node.settings
    duration = settings.api_token_key_duration
    minted = await _mint_own(
        c,
        duration,
        "cwobject:CreateAccessKeyFromApiToken",
        max_duration=max(duration, settings.max_key_duration),
        source=KeySource.API_TOKEN,
        with_session_token=True,
    )
    return JSONResponse(container_credentials_json(minted))


operations = [
    Operation(
        "CreateAccessKeyFromJWT",
        "POST",
        "/v1/cwobject/access-key",
        "cwobject:CreateAccessKey",
        create_access_key,
    ),
    Operation(
        "ListAccessKeyInfo", "GET", "/v1/cwobject/access-key", "cwobject:ListAccessKeyInfo", list_access_keys
    ),
    Operation(
        "GetAccessKeyInfo",
        "GET",
        "/v1/cwobject/access-key/{accessKeyId}",
        "cwobject:GetAccessKeyInfo",
        get_access_key,
    ),
    Operation(
        "UpdateAccessKeyStatus",
        "PUT",
        "/v1/cwobject/access-key-status",
        "cwobject:UpdateAccessKeyStatus",
        update_access_key_status,
    ),
    Operation(
        "RevokeAccessKeyByAccessKey",
        "POST",
        "/v1/cwobject/revoke-access-key/access-key",
        "cwobject:RevokeAccessKeyByAccessKey",
        revoke_access_key,
    ),
    Operation(
        "RevokeAccessKeysByPrincipal",
        "POST",
        "/v1/cwobject/revoke-access-key/principal",
        "cwobject:RevokeAccessKeysByPrincipal",
        revoke_principal_keys,
    ),
    Operation(
        "CreateAccessKeyFromApiToken",
        "GET",
        "/v1/cwobject/temporary-credentials/api-token",
        "cwobject:CreateAccessKey",
        credentials_from_api_token,
    ),
]
