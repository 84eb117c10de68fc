"""Workload identity federation on the control plane.

Two faces:
- the anonymous exchanges of reference §2.3 (CreateAccessKeyFromSAML, CreateAccessKeyFromOIDC,
  CreateAccessKeyFromContainerCreds), where the assertion or token *is* the credential;
- configuration management (reference §2.6): CoreWeave publishes no REST paths for it, so
  Coffer serves the `coreweave.workload_federation.control_plane.v1beta1` RPCs under
  `/v1beta1/workload-federation/{saml,oidc}-configs`, with the proto's field names.

Every refused exchange is answered with the check that failed (never the credential) and
leaves an audit line; every minted key leaves one too.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

from starlette.responses import JSONResponse

from coffer.api.accesskeys import container_credentials_json, minted_json
from coffer.api.extensions import requested
from coffer.api.http import Call, Operation, require_string, rpc
from coffer.errors import CofferError, InvalidArgument, Unauthenticated
from coffer.federation import FederationError, OidcConfig, SamlConfig
from coffer.federation.saml import certificate_fingerprint
from coffer.identity.accesskeys import parse_duration, validate_attributes, validate_scope
from coffer.identity.federated_keys import FederatedKey
from coffer.identity.federation_configs import UPDATABLE, Kind, StoredConfig
from coffer.identity.models import rfc3339
from coffer.web.http import call, client_of, json_body

EXCHANGE_PATH = "/v1/cwobject/temporary-credentials"
CONFIGS_PATH = "/v1beta1/workload-federation"
_MAX_ID = 255
_SNAKE = re.compile(r"_([a-z])")


# --- the exchanges -------------------------------------------------------------------------
def _org_id(value: object, field: str = "orgId") -> str:
    if value is None or value == "":
        raise InvalidArgument.field(field, "is required")
    if not isinstance(value, str) or len(value) > _MAX_ID or not value.isprintable():
        raise InvalidArgument.field(field, f"must be a printable string of at most {_MAX_ID} characters")
    return value


class _Attempt:
    """One exchange request: what it has said so far, so a refusal at any step (bad JSON,
    bad field, failed check) leaves an audit line naming as much as is known. A key minted
    is audited by the core (`access_key_minted`, `federated_sign_in`)."""

    def __init__(self, c: Call, action: str) -> None:
        self.c = c
        self.action = action
        self.client = client_of(c.request)
        self.org_id: str | None = None
        self.config_id: str | None = None

    @contextlib.contextmanager
    def audited(self) -> Iterator[None]:
        try:
            yield
        except CofferError as exc:
            self.c.node.audit(
                "federation_denied",
                plane="control",
                action=self.action,
                org_id=self.org_id,
                config_id=self.config_id,
                check=exc.check if isinstance(exc, FederationError) else None,
                reason=exc.message,
                detail=exc.detail if isinstance(exc, FederationError) else None,
                status=exc.kind.http_status,
                client=self.client,
            )
            raise

    async def exchange(self, fn: Callable[..., FederatedKey], *args: Any, **kwargs: Any) -> FederatedKey:
        """Run one of the core's exchanges, which audits the key it mints under this action and client."""
        return await call(fn, *args, action=self.action, client=self.client, **kwargs)


async def create_from_saml(c: Call) -> JSONResponse:
    return await _exchange_body(c, "cwobject:CreateAccessKeyFromSAML", "samlResponse", saml=True)


async def create_from_oidc(c: Call) -> JSONResponse:
    return await _exchange_body(c, "cwobject:CreateAccessKeyFromOIDC", "oidcToken", saml=False)


async def _exchange_body(c: Call, action: str, credential_field: str, *, saml: bool) -> JSONResponse:
    """The two exchanges whose JSON body carries the credential; a SAML one also names its config."""
    attempt = _Attempt(c, action)
    with attempt.audited():
        body = await json_body(c.request)
        duration = parse_duration(body.get("durationSeconds"))
        ids = [_org_id(body.get("orgId"))]
        attempt.org_id = ids[0]
        if saml:
            attempt.config_id = _org_id(body.get("configId"), "configId")
            ids.append(attempt.config_id)
        credential = require_string(body, credential_field)
        attributes = validate_attributes(body.get("attributes"))
        scope = validate_scope(body.get("scope"))
        fed = c.node.federated_keys
        exchange = fed.from_saml if saml else fed.from_oidc
        result = await attempt.exchange(exchange, *ids, credential, duration, attributes, scope=scope)
    return JSONResponse(minted_json(result.minted, requested(c.request.headers)))


def _raw_token(header: str) -> str:
    """The whole Authorization value is the JWT (reference §2.1); a `Bearer ` prefix is tolerated."""
    value = header.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        value = rest.strip()
    if not value:
        raise Unauthenticated("an OIDC token is required: send it as the whole Authorization header")
    return value


async def create_from_container_creds(c: Call) -> JSONResponse:
    attempt = _Attempt(c, "cwobject:CreateAccessKeyFromContainerCreds")
    with attempt.audited():
        org_id = attempt.org_id = _org_id(c.request.path_params["orgId"])
        token = _raw_token(c.request.headers.get("authorization", ""))
        fed = c.node.federated_keys
        duration = min(c.node.settings.oidc_container_key_duration, fed.max_duration)
        result = await attempt.exchange(fed.from_oidc, org_id, token, duration, with_session_token=True)
    return JSONResponse(container_credentials_json(result.minted))


# --- configuration management ----------------------------------------------------------------
def config_json(stored: StoredConfig) -> dict[str, Any]:
    """The proto's field names (uid, orgUid, issuerUrl, ..., createdAt) in proto3 JSON."""
    cfg = stored.config
    out: dict[str, Any] = {"uid": cfg.config_id, "orgUid": cfg.org_id, "name": cfg.name}
    if isinstance(cfg, SamlConfig):
        out |= {
            "idpEntityId": cfg.idp_entity_id,
            "certificates": list(cfg.certificates),
            "certificateFingerprints": [certificate_fingerprint(p) for p in cfg.certificates],
            "spAudience": cfg.sp_audience,
            "recipient": cfg.recipient,
        }
    elif isinstance(cfg, OidcConfig):
        out |= {"issuerUrl": cfg.issuer_url, "audience": cfg.audience}
        if cfg.jwks is not None:
            out["jwks"] = cfg.jwks
    out |= {
        "description": cfg.description,
        "active": cfg.active,
        "createdAt": rfc3339(stored.created_at),
        "updatedAt": rfc3339(stored.updated_at),
    }
    if stored.deactivated_at is not None:
        out["deactivatedAt"] = rfc3339(stored.deactivated_at)
    return out


def _camel(name: str) -> str:
    """proto3 JSON accepts a field's original snake_case name as well as lowerCamelCase."""
    return _SNAKE.sub(lambda m: m.group(1).upper(), name)


def _fields(kind: Kind, body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    known = set(UPDATABLE[kind])
    out: dict[str, Any] = {}
    for raw_name, value in body.items():
        name = _camel(raw_name)
        if name == "updateMask" and not creating:
            continue
        if name not in known:
            raise InvalidArgument.field(
                raw_name[:64],
                f"is not a field of a {kind.upper()} configuration; fields: {', '.join(sorted(known))}",
            )
        out[name] = value
    return out


def _mask(kind: Kind, body: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """google.protobuf.FieldMask semantics: listed paths only; a listed path left out clears it."""
    raw = body.get("updateMask", body.get("update_mask"))
    if raw is None:
        if not fields:
            raise InvalidArgument("nothing to update: send the fields to change (and optionally updateMask)")
        return fields
    if isinstance(raw, dict):
        raw = ",".join(raw.get("paths", []) or [])
    if not isinstance(raw, str):
        raise InvalidArgument.field("updateMask", "must be a comma-separated list of field names")
    paths = [_camel(p.strip()) for p in raw.split(",") if p.strip()]
    if not paths:
        raise InvalidArgument.field("updateMask", "must name at least one field")
    cleared = {"description": "", "jwks": None}
    changes: dict[str, Any] = {}
    for path in paths:
        if path not in UPDATABLE[kind]:
            raise InvalidArgument.field("updateMask", f"{path[:64]!r} is not an updatable field")
        if path in fields:
            changes[path] = fields[path]
        elif path in cleared:
            changes[path] = cleared[path]
        else:
            raise InvalidArgument.field(path, "is in updateMask but has no value")
    return changes


def _config_ops(kind: Kind, label: str) -> list[Operation]:
    path = f"{CONFIGS_PATH}/{kind}-configs"

    async def list_configs(c: Call) -> JSONResponse:
        found = await call(c.node.federation.list_configs, c.caller.org_id, kind)
        return JSONResponse({"configs": [config_json(s) for s in found]})

    async def create_config(c: Call) -> JSONResponse:
        body = await json_body(c.request)
        fields = _fields(kind, body, creating=True)
        public_url = c.node.settings.public_url.rstrip("/") or str(c.request.base_url).rstrip("/")
        stored = await call(
            c.node.federation.create, c.caller.org_id, kind, fields, public_url=public_url, actor=c.actor()
        )
        return JSONResponse({"config": config_json(stored)})

    async def get_config(c: Call) -> JSONResponse:
        stored = await call(c.node.federation.get, c.caller.org_id, kind, c.request.path_params["uid"])
        return JSONResponse({"config": config_json(stored)})

    async def update_config(c: Call) -> JSONResponse:
        body = await json_body(c.request)
        changes = _mask(kind, body, _fields(kind, body, creating=False))
        uid = c.request.path_params["uid"]
        stored = await call(c.node.federation.update, c.caller.org_id, kind, uid, changes, actor=c.actor())
        return JSONResponse({"config": config_json(stored)})

    async def delete_config(c: Call) -> JSONResponse:
        uid = c.request.path_params["uid"]
        await call(c.node.federation.delete, c.caller.org_id, kind, uid, actor=c.actor())
        return JSONResponse({})

    service = "WorkloadFederation"
    return [
        rpc(f"List{label}Configs", "GET", path, list_configs, service),
        rpc(f"Create{label}Config", "POST", path, create_config, service),
        rpc(f"Get{label}Config", "GET", path + "/{uid}", get_config, service),
        rpc(f"Update{label}Config", "PATCH", path + "/{uid}", update_config, service),
        rpc(f"Delete{label}Config", "DELETE", path + "/{uid}", delete_config, service),
    ]


def _anonymous(name: str, method: str, path: str, handler: Any) -> Operation:
    return Operation(name, method, path, None, handler, anonymous=True)


operations = [
    _anonymous("CreateAccessKeyFromSAML", "POST", EXCHANGE_PATH + "/saml", create_from_saml),
    _anonymous("CreateAccessKeyFromOIDC", "POST", EXCHANGE_PATH + "/oidc", create_from_oidc),
    _anonymous(
        "CreateAccessKeyFromContainerCreds",
        "GET",
        EXCHANGE_PATH + "/oidc/{orgId}",
        create_from_container_creds,
    ),
    *_config_ops("saml", "SAML"),
    *_config_ops("oidc", "OIDC"),
]


# --- OpenAPI -------------------------------------------------------------------------------
_TEXT = {"type": "string", "maxLength": 1024}
_NAME = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,255}$"}
_TIMES: dict[str, Any] = {
    "createdAt": {"type": "string", "format": "date-time"},
    "updatedAt": {"type": "string", "format": "date-time"},
    "deactivatedAt": {"type": "string", "format": "date-time", "description": "present while inactive"},
}
_PEM = {
    "type": "string",
    "pattern": "-----BEGIN CERTIFICATE-----",
    "description": "PEM X.509 certificate (RSA >= 2048 bits or EC P-256/384/521)",
}
_SAML_FIELDS: dict[str, Any] = {
    "name": _NAME,
    "idpEntityId": {**_TEXT, "minLength": 1, "description": "must equal the assertion's Issuer"},
    "certificates": {
        "type": "array",
        "minItems": 1,
        "maxItems": 5,
        "items": _PEM,
        "description": "any of them may sign (rotation); a string of concatenated PEM blocks is accepted too",
    },
    "spAudience": {**_TEXT, "description": "default <public-url>/saml/<org-id>"},
    "recipient": {**_TEXT, "description": "default <public-url>/v1/cwobject/temporary-credentials/saml"},
    "description": _TEXT,
    "active": {"type": "boolean", "default": True},
}
_OIDC_FIELDS: dict[str, Any] = {
    "name": _NAME,
    "issuerUrl": {
        **_TEXT,
        "pattern": "^https?://[^?#]+$",
        "description": "https:// (http:// for loopback); must equal iss",
    },
    "audience": {**_TEXT, "minLength": 1, "description": "must be in the token's aud"},
    "description": _TEXT,
    "active": {"type": "boolean", "default": True},
    "jwks": {
        "type": "object",
        "nullable": True,
        "description": "inline JWK Set (public keys) used instead of discovery; null fetches from the issuer",
    },
}


def _config_schema(fields: dict[str, Any], required: list[str]) -> dict[str, Any]:
    props = {"uid": {"type": "string", "format": "uuid"}, "orgUid": {"type": "string"}, **fields, **_TIMES}
    if "certificates" in fields:
        props["certificateFingerprints"] = {"type": "array", "items": {"type": "string"}}
    return {
        "type": "object",
        "required": ["uid", "orgUid", *required, "active", "createdAt"],
        "properties": props,
    }


def openapi_meta(
    *, minted: dict[str, Any], container: dict[str, Any], attributes: dict[str, Any], scope: dict[str, Any]
) -> dict[str, Any]:
    """Request and response schemas of this module's operations (shared schemas passed in)."""
    duration = {
        "type": "integer",
        "minimum": 0,
        "maximum": 43200,
        "description": "0 = the longest allowed; never longer than 12 h or the credential's own end",
    }
    refusals = {
        "401": "UNAUTHENTICATED (16): the credential failed a check; the message names the check",
        "503": "UNAVAILABLE (14): the IdP's keys could not be fetched; retry later",
    }
    meta: dict[str, Any] = {
        "CreateAccessKeyFromSAML": {
            "summary": "Exchange a signed SAML assertion for a temporary access key",
            "auth": "Anonymous: the SAML assertion, signed by an IdP the org trusts, is the credential.",
            "body": {
                "type": "object",
                "required": ["durationSeconds", "orgId", "configId", "samlResponse"],
                "properties": {
                    "durationSeconds": duration,
                    "orgId": {"type": "string", "minLength": 1},
                    "configId": {"type": "string", "minLength": 1},
                    "samlResponse": {
                        "type": "string",
                        "minLength": 1,
                        "description": "base64 Response or Assertion",
                    },
                    "attributes": attributes,
                    "scope": scope,
                },
            },
            "response": minted,
            "extensions": True,
            "errors": refusals,
        },
        "CreateAccessKeyFromOIDC": {
            "summary": "Exchange an OIDC token (JWT) for a temporary access key",
            "auth": "Anonymous: the OIDC token, signed by an issuer the org trusts, is the credential.",
            "body": {
                "type": "object",
                "required": ["durationSeconds", "orgId", "oidcToken"],
                "properties": {
                    "durationSeconds": duration,
                    "orgId": {"type": "string", "minLength": 1},
                    "oidcToken": {
                        "type": "string",
                        "pattern": "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]*$",
                    },
                    "attributes": attributes,
                    "scope": scope,
                },
            },
            "response": minted,
            "extensions": True,
            "errors": refusals,
        },
        "CreateAccessKeyFromContainerCreds": {
            "summary": "AWS container-credentials endpoint: an OIDC token buys short-lived keys",
            "auth": "The raw OIDC token is the whole Authorization header (no Bearer prefix).",
            "security": [{"ContainerCredentialsAuth": []}],
            "response": container,
            "errors": refusals,
        },
    }
    for label, fields, required in (
        ("SAML", _SAML_FIELDS, ["name", "idpEntityId", "certificates"]),
        ("OIDC", _OIDC_FIELDS, ["name", "issuerUrl", "audience"]),
    ):
        schema = _config_schema(fields, required)
        one = {"type": "object", "required": ["config"], "properties": {"config": schema}}
        taken = {
            "409": f"ALREADY_EXISTS (6): a {label} configuration with that name (or issuer and audience)"
        }
        meta |= {
            f"List{label}Configs": {
                "summary": f"List the organization's {label} configurations",
                "response": {
                    "type": "object",
                    "required": ["configs"],
                    "properties": {"configs": {"type": "array", "items": schema}},
                },
            },
            f"Create{label}Config": {
                "summary": f"Trust a {label} identity provider; the generated uid is the config id",
                "body": {"type": "object", "required": required, "properties": fields},
                "response": one,
                "errors": {**taken, "429": "RESOURCE_EXHAUSTED (8): 100 configurations of this kind"},
            },
            f"Get{label}Config": {"summary": f"Describe one {label} configuration", "response": one},
            f"Update{label}Config": {
                "summary": f"Change a {label} configuration; deactivating it revokes its keys",
                "body": {
                    "type": "object",
                    "properties": {
                        **fields,
                        "updateMask": {"type": "string", "description": "comma-separated field names"},
                    },
                },
                "response": one,
                "errors": taken,
            },
            f"Delete{label}Config": {
                "summary": f"Remove a {label} configuration and revoke every key minted through it",
                "response": {"type": "object", "additionalProperties": False},
            },
        }
    return meta
