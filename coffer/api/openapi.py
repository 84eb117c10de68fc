"""OpenAPI 3.0 description of the control plane, built from the live routes.

Operation ids follow CoreWeave's `CWObject_<Method>`; the route name is the method.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute, Route

from coffer import __version__

_STATUS = {
    "type": "object",
    "properties": {
        "code": {"type": "integer", "description": "gRPC status code"},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object"}},
    },
}
_ATTRS = {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 15}
_KEY_INFO = {
    "type": "object",
    "properties": {
        "accessKeyId": {"type": "string"},
        "status": {"type": "string", "description": "ACTIVE, EXPIRED, FULL_SUSPENDED or REVOKED"},
        "principalName": {"type": "string"},
        "attributes": _ATTRS,
        "expiry": {"type": "string", "format": "date-time"},
        "orgId": {"type": "string"},
        "multiAttributes": {"type": "object"},
    },
}
_MINTED = {
    "type": "object",
    "properties": {
        "accessKeyId": {"type": "string"},
        "secretKey": {"type": "string"},
        "principalName": {"type": "string"},
        "expiry": {"type": "string", "format": "date-time"},
        "attributes": _ATTRS,
    },
}
_CONTAINER = {
    "type": "object",
    "properties": {
        "AccessKeyId": {"type": "string"},
        "SecretAccessKey": {"type": "string"},
        "Token": {"type": "string"},
        "Expiration": {"type": "string", "format": "date-time"},
        "attributes": _ATTRS,
        "multiAttributes": {"type": "object"},
    },
}
_EMPTY: dict[str, Any] = {"type": "object"}


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


# Request body, response body and query parameters per operation.
OPERATIONS: dict[str, dict[str, Any]] = {
    "CreateAccessKeyFromJWT": {
        "summary": "Mint an access key for the caller (0 seconds makes a permanent key)",
        "body": _obj(
            ["durationSeconds"], durationSeconds={"type": "integer", "minimum": 0}, attributes=_ATTRS
        ),
        "response": _MINTED,
    },
    "ListAccessKeyInfo": {
        "summary": "List the organization's access keys",
        "query": {
            "offset": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
            "status": {
                "type": "string",
                "enum": ["ACCESS_KEY_STATUS_ACTIVE", "ACCESS_KEY_STATUS_SUSPENDED", "ACTIVE", "SUSPENDED"],
            },
        },
        "response": {"type": "object", "properties": {"info": {"type": "array", "items": _KEY_INFO}}},
    },
    "GetAccessKeyInfo": {
        "summary": "Describe one access key",
        "response": {"type": "object", "properties": {"info": _KEY_INFO}},
    },
    "UpdateAccessKeyStatus": {
        "summary": "Suspend or reactivate every key of a principal",
        "body": _obj(
            ["principalName", "status"],
            principalName={"type": "string"},
            status={
                "type": "string",
                "enum": ["ACCESS_KEY_STATUS_ACTIVE", "ACCESS_KEY_STATUS_SUSPENDED", "ACTIVE", "SUSPENDED"],
            },
        ),
        "response": _EMPTY,
    },
    "RevokeAccessKeyByAccessKey": {
        "summary": "Revoke one access key",
        "body": _obj(["accessKey"], accessKey={"type": "string", "description": "the access key id"}),
        "response": _EMPTY,
    },
    "RevokeAccessKeysByPrincipal": {
        "summary": "Revoke every access key of a principal",
        "body": _obj(["principalName"], principalName={"type": "string"}),
        "response": _EMPTY,
    },
    "CreateAccessKeyFromApiToken": {
        "summary": "Exchange the API token for short-lived credentials (container-credentials shape)",
        "response": _CONTAINER,
    },
}

ANONYMOUS: set[str] = set()


def build_spec(routes: list[BaseRoute]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route) or not route.include_in_schema or route.name not in OPERATIONS:
            continue
        meta = OPERATIONS[route.name]
        for method in sorted((route.methods or set()) - {"HEAD"}):
            op: dict[str, Any] = {
                "operationId": f"CWObject_{route.name}",
                "summary": meta.get("summary", route.name),
                "tags": ["CWObject"],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": meta.get("response", _EMPTY)}},
                    },
                    "default": {
                        "description": "An error",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}},
                    },
                },
            }
            params = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in route.param_convertors
            ]
            params += [
                {"name": name, "in": "query", "required": False, "schema": schema}
                for name, schema in meta.get("query", {}).items()
            ]
            if params:
                op["parameters"] = params
            if "body" in meta:
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": meta["body"]}},
                }
            if route.name in ANONYMOUS:
                op["security"] = []
            paths.setdefault(route.path_format, {})[method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "CoreWeave AI Object Storage API (Coffer)",
            "version": __version__,
            "description": "Coffer's wire-compatible implementation of CoreWeave's /v1/cwobject API.",
        },
        "security": [{"TokenAuth": []}],
        "tags": [
            {
                "name": "CWObject",
                "description": "Endpoints that interact with AI Object Storage outside the S3-compatible API",
            }
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {"TokenAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Status": _STATUS},
        },
    }
