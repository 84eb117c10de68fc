"""OpenAPI 3.0 description of the control plane, built from the same operation table the router uses.

Operation ids follow CoreWeave's `CWObject_<Method>`. The schemas here are what Coffer
accepts and answers, so a schema-driven fuzzer can check the server against them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from coffer import __version__
from coffer.api import extensions, federation, lockout, management, policies, rotation
from coffer.api.http import Operation
from coffer.identity.accesskeys import MAX_PRINCIPAL, PRINCIPAL_PATTERN
from coffer.identity.models import KeyStatus
from coffer.policy.org import MAX_STATEMENTS
from coffer.policy.scope import MAX_SCOPE_BYTES

_STATUS = {
    "type": "object",
    "required": ["code", "message", "details"],
    "properties": {
        "code": {"type": "integer", "description": "gRPC status code"},
        "message": {"type": "string"},
        "details": {
            "type": "array",
            "items": {"type": "object", "properties": {"@type": {"type": "string"}}},
            "description": "google.rpc error details: BadRequest, ResourceInfo",
        },
    },
}
_ATTRS = {
    "type": "object",
    "nullable": True,
    "description": "Up to 15 entries; keys are lower-case DNS labels not starting with cw-, role or groups",
    "additionalProperties": {
        "type": "string",
        "maxLength": 63,
        "pattern": "^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$",
    },
    "maxProperties": 15,
}
_MULTI = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "properties": {"values": {"type": "array", "items": {"type": "string"}}},
    },
}
_DATE = {"type": "string", "format": "date-time"}
# A key's scope (coffer/policy/scope.py): organization-policy statements without principals,
# s3: actions only, with an optional bucket-policy condition block.
_SCOPE_STATEMENT = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "effect", "actions", "resources"],
    "properties": {
        **{k: v for k, v in policies.STATEMENT_SCHEMA["properties"].items() if k != "principals"},
        "actions": {
            **policies.STATEMENT_SCHEMA["properties"]["actions"],
            "description": "s3: actions or wildcards: s3:GetObject, s3:Put*, s3:*, * (every s3: action)",
        },
        "conditions": {
            "type": "object",
            "nullable": True,
            "additionalProperties": {"type": "object"},
            "description": "a bucket-policy Condition block: {operator: {key: value or [values]}}",
        },
    },
}
_SCOPE = {
    "type": "object",
    "nullable": True,
    "additionalProperties": False,
    "required": ["statements"],
    "properties": {
        "statements": {"type": "array", "minItems": 1, "maxItems": MAX_STATEMENTS, "items": _SCOPE_STATEMENT}
    },
    "description": (
        "Coffer extension: an inline policy narrowing the key below its owner (a request needs both to "
        f"allow it). Immutable; at most {MAX_SCOPE_BYTES} bytes as JSON. In a response only when asked "
        "for with X-Coffer-Extensions."
    ),
}
_KEY_INFO = {
    "type": "object",
    "required": ["accessKeyId", "status", "principalName", "attributes", "expiry", "orgId"],
    "properties": {
        "accessKeyId": {"type": "string"},
        "status": {"type": "string", "enum": [s.value for s in KeyStatus]},
        "principalName": {"type": "string"},
        "attributes": _ATTRS,
        "expiry": {**_DATE, "description": "1970-01-01T00:00:00Z for a permanent key"},
        "orgId": {"type": "string"},
        "multiAttributes": _MULTI,
        "scope": _SCOPE,
    },
}
_MINTED = {
    "type": "object",
    "required": ["accessKeyId", "secretKey", "principalName", "expiry", "attributes"],
    "properties": {
        "accessKeyId": {"type": "string", "pattern": "^CW[A-Z]{14}$"},
        "secretKey": {"type": "string", "pattern": "^cwo[a-z0-9]{40}$"},
        "principalName": {"type": "string"},
        "expiry": _DATE,
        "attributes": _ATTRS,
        "scope": _SCOPE,
    },
}
_CONTAINER = {
    "type": "object",
    "required": ["AccessKeyId", "SecretAccessKey", "Token", "Expiration"],
    "properties": {
        "AccessKeyId": {"type": "string"},
        "SecretAccessKey": {"type": "string"},
        "Token": {"type": "string"},
        "Expiration": _DATE,
        "attributes": _ATTRS,
        "multiAttributes": _MULTI,
    },
}
_EMPTY: dict[str, Any] = {"type": "object", "additionalProperties": False}
_SETTABLE = ["ACCESS_KEY_STATUS_ACTIVE", "ACCESS_KEY_STATUS_SUSPENDED", "ACTIVE", "SUSPENDED"]
_FILTERS = [
    *_SETTABLE,
    "FULL_SUSPENDED",
    "EXPIRED",
    "REVOKED",
    "ACCESS_KEY_STATUS_EXPIRED",
    "ACCESS_KEY_STATUS_REVOKED",
]
_PRINCIPAL = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_PRINCIPAL,
    "pattern": PRINCIPAL_PATTERN,
    "example": "coreweave/ueqXfgRCYGqptEXAMPLE1",
}


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


def _operations_meta(max_duration: int) -> dict[str, dict[str, Any]]:
    """Request body, response body and query parameters per operation."""
    return {
        "CreateAccessKeyFromJWT": {
            "summary": "Mint an access key for the caller (0 seconds makes a permanent key)",
            "extensions": True,
            "body": _obj(
                ["durationSeconds"],
                durationSeconds={
                    "type": "integer",
                    "minimum": 0,
                    "maximum": max_duration,
                    "description": f"0 = permanent, else the lifetime in seconds, at most {max_duration}",
                },
                attributes=_ATTRS,
                scope=_SCOPE,
            ),
            "response": _MINTED,
        },
        "ListAccessKeyInfo": {
            "summary": "List the organization's access keys",
            "extensions": True,
            "query": {
                "offset": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
                "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
                "status": {"type": "string", "enum": _FILTERS},
            },
            "response": {
                "type": "object",
                "required": ["info"],
                "properties": {"info": {"type": "array", "items": _KEY_INFO}},
            },
        },
        "GetAccessKeyInfo": {
            "summary": "Describe one access key (revoked and expired keys included)",
            "extensions": True,
            "response": {"type": "object", "required": ["info"], "properties": {"info": _KEY_INFO}},
        },
        "UpdateAccessKeyStatus": {
            "summary": "Suspend or reactivate every key of a principal, including keys minted later",
            "body": _obj(
                ["principalName", "status"],
                principalName=_PRINCIPAL,
                status={"type": "string", "enum": _SETTABLE},
            ),
            "response": _EMPTY,
        },
        "RevokeAccessKeyByAccessKey": {
            "summary": "Revoke one access key",
            "body": _obj(
                ["accessKey"],
                accessKey={"type": "string", "minLength": 1, "description": "the access key id"},
            ),
            "response": _EMPTY,
        },
        "RevokeAccessKeysByPrincipal": {
            "summary": "Revoke every access key of a principal",
            "body": _obj(["principalName"], principalName=_PRINCIPAL),
            "response": _EMPTY,
        },
        "CreateAccessKeyFromApiToken": {
            "summary": "Exchange the API token for short-lived credentials (container-credentials shape)",
            "response": _CONTAINER,
        },
    }


_STATUS_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}
_ERRORS = {
    "400": "INVALID_ARGUMENT (3): a malformed body, a wrong type, a value out of range",
    "401": "UNAUTHENTICATED (16): no bearer token, or an unknown, expired or revoked one",
    "403": "PERMISSION_DENIED (7): the caller may not perform this action",
    "404": "NOT_FOUND (5): no such access key or principal in the caller's organization",
    "405": "UNIMPLEMENTED (12): the path exists but not with this method",
}


def _operation(op: Operation, meta: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {
            "description": "OK",
            "content": {"application/json": {"schema": meta.get("response", _EMPTY)}},
        }
    }
    own_errors = meta.get("errors", {})
    for status, description in {**_ERRORS, **own_errors}.items():
        if status == "401" and op.anonymous and status not in own_errors:
            continue
        responses[status] = {"description": description, "content": _STATUS_REF}
    if op.anonymous:
        description = meta.get("auth", "Anonymous: the credential in the request is the authority.")
    elif op.action:
        description = f"Needs `{op.action}` (Object Storage Admin holds every cwobject: action)."
    else:
        description = "Needs no permission: callers ask only about themselves."
    out: dict[str, Any] = {
        "operationId": f"{op.service}_{op.name}",
        "summary": meta.get("summary", op.name),
        "description": description,
        "tags": [op.service],
        "responses": responses,
    }
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _path_params(op.path)
    ]
    params += [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in meta.get("query", {}).items()
    ]
    if meta.get("extensions"):
        params.append(extensions.openapi_parameter())
    if params:
        out["parameters"] = params
    if "body" in meta:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": meta["body"]}}}
    if op.anonymous:
        out["security"] = meta.get("security", [])
    return out


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def build_spec(
    operations: Iterable[Operation], server_url: str = "/", max_duration: int = 43200
) -> dict[str, Any]:
    """The OpenAPI document for `operations`; every operation must have an entry in the metadata."""
    meta = {
        **_operations_meta(max_duration),
        **policies.OPENAPI,
        **management.OPENAPI,
        **lockout.OPENAPI,
        **rotation.OPENAPI,
        **federation.openapi_meta(minted=_MINTED, container=_CONTAINER, attributes=_ATTRS, scope=_SCOPE),
    }
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, meta[op.name])
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "CoreWeave AI Object Storage API (Coffer)",
            "version": __version__,
            "description": (
                "Coffer's wire-compatible implementation of CoreWeave's /v1/cwobject API: manage "
                "organization-wide access policies, configure bucket and organization settings, mint and "
                "revoke access keys, and inspect bucket and access-key inventory. Errors are "
                "google.rpc.Status JSON."
            ),
        },
        "servers": [{"url": server_url, "description": "this Coffer node"}],
        "security": [{"TokenAuth": []}],
        "tags": [
            {
                "name": "CWObject",
                "description": "Endpoints that interact with AI Object Storage outside the S3-compatible API",
            },
            {
                "name": "WorkloadFederation",
                "description": (
                    "SAML and OIDC identity providers an organization trusts (Coffer's REST form of "
                    "coreweave.workload_federation.control_plane.v1beta1)"
                ),
            },
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "TokenAuth": {"type": "http", "scheme": "bearer"},
                "ContainerCredentialsAuth": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "the raw OIDC token (JWT) as the whole header value, no Bearer prefix",
                },
            },
            "schemas": {"Status": _STATUS},
        },
    }
