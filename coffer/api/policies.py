"""Organization access policies and AuthCanI (reference §2.3).

ListAccessPolicies returns every policy of the caller's organization; EnsureAccessPolicy
creates or replaces one by name (the parser names the offending field of a bad one);
DeleteAccessPolicy removes one (NOT_FOUND if absent). Every edit is in force from the
very next request, on every worker and node. AuthCanI answers whether the caller may
perform every listed action on every listed resource.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from coffer.api.http import Call, rpc
from coffer.api.schema import obj
from coffer.errors import InvalidArgument
from coffer.identity.models import AccessKey
from coffer.policy import InvalidOrgPolicy, parse_org_policy
from coffer.policy.org import MAX_ENTRIES, MAX_STATEMENT_NAME, MAX_STATEMENTS, ORG_POLICY_VERSION
from coffer.policy.principals import MAX_PRINCIPAL_LENGTH
from coffer.policy.resources import MAX_RESOURCE_LENGTH
from coffer.web.http import call, json_body, origin_of

POLICY_PATH = "/v1/cwobject/access-policy"
MAX_CAN_I_ITEMS = 100
MAX_CAN_I_ACTION = 256
MAX_CAN_I_RESOURCE = 2048


def invalid_policy(exc: InvalidOrgPolicy) -> InvalidArgument:
    """An organization policy the parser refused: INVALID_ARGUMENT with a google.rpc.BadRequest
    naming the offending field."""
    return InvalidArgument.field(exc.field, exc.description)


async def list_policies(c: Call) -> JSONResponse:
    policies = await call(c.node.policies.list_policies, c.caller.org_id)
    return JSONResponse({"policies": policies})


async def ensure_policy(c: Call) -> JSONResponse:
    body = await json_body(c.request)
    raw = body.get("policy")
    if raw is None:
        raise InvalidArgument.field("policy", "is required: a CWObjectPolicy object")
    try:
        policy = parse_org_policy(raw, field_prefix="policy")
    except InvalidOrgPolicy as exc:
        raise invalid_policy(exc) from None
    await call(c.node.policies.ensure, c.caller.org_id, policy, actor=c.actor("cwobject:EnsureAccessPolicy"))
    return JSONResponse({"policy": policy.to_dict()})


async def delete_policy(c: Call) -> JSONResponse:
    name = c.request.path_params["name"]
    await call(c.node.policies.delete, c.caller.org_id, name, actor=c.actor("cwobject:DeleteAccessPolicy"))
    return JSONResponse({})


def _strings(body: dict[str, Any], field: str, max_length: int) -> list[str]:
    value = body.get(field)
    if value is None:
        raise InvalidArgument.field(field, "is required: a non-empty array of strings")
    if not isinstance(value, list) or not value:
        raise InvalidArgument.field(field, "must be a non-empty array of strings")
    if len(value) > MAX_CAN_I_ITEMS:
        raise InvalidArgument.field(field, f"must have at most {MAX_CAN_I_ITEMS} entries")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            raise InvalidArgument.field(f"{field}[{i}]", "must be a non-empty string")
        if len(item) > max_length:
            raise InvalidArgument.field(f"{field}[{i}]", f"must be at most {max_length} characters")
    return value


async def can_i(c: Call) -> JSONResponse:
    body = await json_body(c.request)
    actions = _strings(body, "actions", MAX_CAN_I_ACTION)
    resources = _strings(body, "resources", MAX_CAN_I_RESOURCE)
    key = await _asked_key(c, body["accessKeyId"]) if "accessKeyId" in body else None
    verdict = await call(c.node.authz.can_i, c.caller, actions, resources, origin_of(c.request), key=key)
    return JSONResponse({"verdict": verdict})


async def _asked_key(c: Call, key_id: object) -> AccessKey:
    """AuthCanI's extension field `accessKeyId`: ask about one key (its owner and its scope)
    instead of the caller. One's own keys need no permission, as the question about oneself;
    another principal's key needs `cwobject:GetAccessKeyInfo`, which already shows its scope."""
    if not isinstance(key_id, str) or not key_id:
        raise InvalidArgument.field("accessKeyId", "must be a non-empty string: an access key id")
    key = await call(c.node.keys.get, c.caller.org_id, key_id)
    if key.principal_name != c.caller.principal_name:
        await call(
            c.node.authz.authorize_control, c.caller, "cwobject:GetAccessKeyInfo", origin_of(c.request)
        )
    return key


operations = [
    rpc("ListAccessPolicies", "GET", POLICY_PATH, list_policies),
    rpc("EnsureAccessPolicy", "POST", POLICY_PATH, ensure_policy),
    rpc("DeleteAccessPolicy", "DELETE", POLICY_PATH + "/{name}", delete_policy),
    rpc("AuthCanI", "POST", "/v1/cwobject/auth/can-i", can_i),
]


# --- OpenAPI -------------------------------------------------------------------------------
# What the parser accepts is narrower than JSON Schema can say (known actions, short-form
# resources and principals, unique statement names): the schema describes the shape, and
# every document the server accepts satisfies it.
def _entries(what: str, example: list[str], **item: Any) -> dict[str, Any]:
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_ENTRIES,
        "items": {"type": "string", "minLength": 1, **item},
        "description": what,
        "example": example,
    }


STATEMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "effect", "actions", "resources", "principals"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_STATEMENT_NAME},
        "effect": {"type": "string", "enum": ["Allow", "Deny"]},
        "actions": _entries(
            "known actions or wildcards: s3:GetObject, s3:*, cwobject:*, *", ["s3:GetObject"]
        ),
        "resources": _entries(
            "short forms: *, bucket, bucket/*, bucket/prefix*",
            ["my-bucket/*"],
            maxLength=MAX_RESOURCE_LENGTH,
            pattern="^(\\*|[a-z0-9.*?-]+(/[^\\u0000-\\u001f\\u007f]+)?)$",
        ),
        "principals": _entries(
            "short forms: *, coreweave/<UID>, role/<name>, saml/<name>",
            ["coreweave/ueqXfgRCYGqptEXAMPLE1"],
            maxLength=MAX_PRINCIPAL_LENGTH,
            pattern="^(\\*|(coreweave|role|saml)/[^\\s*?]+)$",
        ),
    },
}
POLICY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "name", "statements"],
    "properties": {
        "version": {"type": "string", "enum": [ORG_POLICY_VERSION]},
        "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"},
        "statements": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_STATEMENTS,
            "items": STATEMENT_SCHEMA,
        },
    },
}


def _strings_schema(max_length: int, example: list[str]) -> dict[str, Any]:
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_CAN_I_ITEMS,
        "items": {"type": "string", "minLength": 1, "maxLength": max_length},
        "example": example,
    }


OPENAPI: dict[str, dict[str, Any]] = {
    "ListAccessPolicies": {
        "summary": "List the organization's access policies",
        "response": obj(["policies"], policies={"type": "array", "items": POLICY_SCHEMA}),
    },
    "EnsureAccessPolicy": {
        "summary": "Create or replace (by name) an organization access policy; in force at once",
        "body": obj(["policy"], policy=POLICY_SCHEMA),
        "response": obj(["policy"], policy=POLICY_SCHEMA),
        "errors": {"429": "RESOURCE_EXHAUSTED (8): the organization has as many policies as it may"},
    },
    "DeleteAccessPolicy": {
        "summary": "Delete an organization access policy by name",
        "errors": {"404": "NOT_FOUND (5): the organization has no access policy by that name"},
        "response": {"type": "object", "additionalProperties": False},
    },
    "AuthCanI": {
        "summary": "May the caller perform every one of these actions on every one of these resources?",
        "body": obj(
            ["actions", "resources"],
            actions=_strings_schema(MAX_CAN_I_ACTION, ["s3:GetObject", "cwobject:ListBucketInfo"]),
            resources=_strings_schema(MAX_CAN_I_RESOURCE, ["my-bucket/reports/q3.csv", "*"]),
            accessKeyId={
                "type": "string",
                "minLength": 1,
                "description": (
                    "Coffer extension: ask about this access key (its owner narrowed by its scope) "
                    "instead of the caller; another principal's key needs cwobject:GetAccessKeyInfo"
                ),
            },
        ),
        "response": obj(["verdict"], verdict={"type": "boolean"}),
    },
}
