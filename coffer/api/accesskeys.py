"""Access-key routes: CreateAccessKeyFromJWT, List/Get, status, revoke, api-token exchange."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from coffer.api.http import authenticate, call, json_body, node_of, require_string, rfc3339
from coffer.authz import authorize_control
from coffer.errors import InvalidArgument
from coffer.identity.accesskeys import parse_duration, parse_page, parse_status, validate_attributes
from coffer.identity.models import AccessKey, KeySource, MintedKey
from coffer.logs import audit


def key_info(key: AccessKey) -> dict[str, Any]:
    """AccessKeyInfo in CoreWeave's field names; the secret is never part of it."""
    return {
        "accessKeyId": key.access_key_id,
        "status": key.status().value,
        "principalName": key.principal_name,
        "attributes": key.attributes,
        "expiry": rfc3339(key.expiry_for_api),
        "orgId": key.org_id,
        "multiAttributes": {k: {"values": v} for k, v in key.multi_attributes.items()},
    }


def minted_json(minted: MintedKey) -> dict[str, Any]:
    return {
        "accessKeyId": minted.key.access_key_id,
        "secretKey": minted.secret_key,
        "principalName": minted.key.principal_name,
        "expiry": rfc3339(minted.key.expiry_for_api),
        "attributes": minted.key.attributes,
    }


def container_credentials_json(minted: MintedKey) -> dict[str, Any]:
    """The AWS container-credentials shape (PascalCase), as CoreWeave returns it."""
    return {
        "AccessKeyId": minted.key.access_key_id,
        "SecretAccessKey": minted.secret_key,
        "Token": minted.session_token or "",
        "Expiration": rfc3339(minted.key.expiry_for_api),
        "attributes": minted.key.attributes,
        "multiAttributes": {k: {"values": v} for k, v in minted.key.multi_attributes.items()},
    }


def audit_mint(minted: MintedKey, actor: str, action: str) -> None:
    audit(
        "access_key_minted",
        action=action,
        access_key_id=minted.key.access_key_id,
        principal=minted.key.principal_name,
        actor=actor,
        org_id=minted.key.org_id,
        source=minted.key.source.value,
        expiry=rfc3339(minted.key.expiry_for_api),
    )


async def create_access_key(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    authorize_control(caller, "cwobject:CreateAccessKey")
    body = await json_body(request)
    if "durationSeconds" not in body:
        raise InvalidArgument.field("durationSeconds", "is required (0 makes a permanent key)")
    duration = parse_duration(body["durationSeconds"])
    attributes = validate_attributes(body.get("attributes"))
    node = node_of(request)
    minted = await call(
        node.keys.mint,
        org_id=caller.org_id,
        principal_name=caller.principal_name,
        user_id=caller.user.id,
        duration_seconds=duration,
        source=KeySource.JWT,
        attributes=attributes,
        multi_attributes={"groups": list(caller.user.groups)} if caller.user.groups else None,
    )
    audit_mint(minted, caller.principal_name, "cwobject:CreateAccessKey")
    return JSONResponse(minted_json(minted))


async def list_access_keys(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    authorize_control(caller, "cwobject:ListAccessKeyInfo")
    q = request.query_params
    page = parse_page(q.get("offset"), q.get("limit"))
    status = parse_status(q["status"]) if q.get("status") else None
    keys = await call(node_of(request).keys.list, caller.org_id, page, status)
    return JSONResponse({"info": [key_info(k) for k in keys]})


async def get_access_key(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    authorize_control(caller, "cwobject:GetAccessKeyInfo")
    key = await call(node_of(request).keys.get, caller.org_id, request.path_params["access_key_id"])
    return JSONResponse({"info": key_info(key)})


async def update_access_key_status(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    authorize_control(caller, "cwobject:UpdateAccessKeyStatus")
    body = await json_body(request)
    principal = require_string(body, "principalName")
    if "status" not in body:
        raise InvalidArgument.field("status", "is required")
    status = parse_status(body["status"], settable=True)
    await call(node_of(request).keys.set_principal_status, caller.org_id, principal, status)
    audit(
        "access_keys_status_changed",
        principal=principal,
        status=status.value,
        actor=caller.principal_name,
        org_id=caller.org_id,
    )
    return JSONResponse({})


async def revoke_access_key(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    authorize_control(caller, "cwobject:RevokeAccessKeyByAccessKey")
    body = await json_body(request)
    key_id = require_string(body, "accessKey")
    await call(node_of(request).keys.revoke_key, caller.org_id, key_id)
    audit("access_key_revoked", access_key_id=key_id, actor=caller.principal_name, org_id=caller.org_id)
    return JSONResponse({})


async def revoke_principal_keys(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    authorize_control(caller, "cwobject:RevokeAccessKeysByPrincipal")
    body = await json_body(request)
    principal = require_string(body, "principalName")
    count = await call(node_of(request).keys.revoke_principal, caller.org_id, principal)
    audit(
        "access_keys_revoked",
        principal=principal,
        count=count,
        actor=caller.principal_name,
        org_id=caller.org_id,
    )
    return JSONResponse({})


async def credentials_from_api_token(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    authorize_control(caller, "cwobject:CreateAccessKey")
    node = node_of(request)
    minted = await call(
        node.keys.mint,
        org_id=caller.org_id,
        principal_name=caller.principal_name,
        user_id=caller.user.id,
        duration_seconds=node.settings.api_token_key_duration,
        max_duration=max(node.settings.api_token_key_duration, node.settings.max_key_duration),
        source=KeySource.API_TOKEN,
        multi_attributes={"groups": list(caller.user.groups)} if caller.user.groups else None,
        with_session_token=True,
    )
    audit_mint(minted, caller.principal_name, "cwobject:CreateAccessKeyFromApiToken")
    return JSONResponse(container_credentials_json(minted))


routes = [
    Route("/v1/cwobject/access-key", create_access_key, methods=["POST"], name="CreateAccessKeyFromJWT"),
    Route("/v1/cwobject/access-key", list_access_keys, methods=["GET"], name="ListAccessKeyInfo"),
    Route(
        "/v1/cwobject/access-key/{access_key_id}",
        get_access_key,
        methods=["GET"],
        name="GetAccessKeyInfo",
    ),
    Route(
        "/v1/cwobject/access-key-status",
        update_access_key_status,
        methods=["PUT"],
        name="UpdateAccessKeyStatus",
    ),
    Route(
        "/v1/cwobject/revoke-access-key/access-key",
        revoke_access_key,
        methods=["POST"],
        name="RevokeAccessKeyByAccessKey",
    ),
    Route(
        "/v1/cwobject/revoke-access-key/principal",
        revoke_principal_keys,
        methods=["POST"],
        name="RevokeAccessKeysByPrincipal",
    ),
    Route(
        "/v1/cwobject/temporary-credentials/api-token",
        credentials_from_api_token,
        methods=["GET"],
        name="CreateAccessKeyFromApiToken",
    ),
]
