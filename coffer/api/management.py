"""The management surface: bucket settings, bucket info and usage, organization settings.

SetBucketSettings, GetBucketInfo, ListBucketInfo and SetOrganizationSettings follow
CoreWeave's API (reference §2.3): settings are optional wrappers (only the fields present
change), 64-bit integers travel as strings, a bucket of another organization is as unknown
as one that does not exist. `GET /v1/cwobject/organization/settings` is Coffer's extension
(CoreWeave documents no read of organization settings); it also shows the organization's
limits, which only the operator sets (`coffer admin org limits`).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import JSONResponse

from coffer import limits
from coffer.api.http import Call, require_string, rpc
from coffer.api.schema import bucket_request, obj
from coffer.errors import InvalidArgument, NotFound
from coffer.identity.accesskeys import parse_page
from coffer.identity.models import rfc3339
from coffer.node import Node
from coffer.storage.errors import NoSuchBucket
from coffer.storage.models import Bucket
from coffer.storage.settings import UINT64_MAX, BucketSettings, OrgSettings
from coffer.storage.usage import BucketUsage
from coffer.web.http import call, json_body

BUCKET_SETTINGS_PATH = "/v1/cwobject/bucket/settings"
BUCKET_INFO_PATH = "/v1/cwobject/bucket-info"
ORG_SETTINGS_PATH = "/v1/cwobject/organization/settings"
INT32_MAX = 2**31 - 1
_INTEGER = re.compile(r"-?[0-9]{1,20}")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_SHOWN = 64  # characters of a bad value quoted back in an error

# The usage CoreWeave reports per bucket has no published vocabulary; these are Coffer's
# (docs/api.md, "Bucket usage"). Per storage class: (suffix, ClassUsage field, is bytes).
CLASS_MEASUREMENTS = (
    ("BYTES", "bytes", True),
    ("OBJECTS", "objects", False),
    ("NONCURRENT_BYTES", "noncurrent_bytes", True),
    ("NONCURRENT_OBJECTS", "noncurrent_objects", False),
    ("DELETE_MARKERS", "delete_markers", False),
)
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


# --- wire forms ------------------------------------------------------------------------------
def human_bytes(n: int) -> str:
    """`1.5 GiB`, `512 B`: binary units, at most one decimal."""
    value = float(n)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            if unit == "B":
                return f"{n} B"
            text = f"{value:.1f}".removesuffix(".0")
            return f"{text} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _measurement(kind: str, value: int, is_bytes: bool) -> dict[str, str]:
    shown = human_bytes(value) if is_bytes else f"{value:,}"
    return {"measurementType": kind, "value": str(value), "valueHumanReadable": shown}


def usage_json(usage: BucketUsage) -> list[dict[str, str]]:
    """The bucket's usage as CoreWeave's `usage` list: per storage class (STANDARD always
    first), then incomplete multipart uploads, then the total billed."""
    classes = dict(usage.classes)
    out: list[dict[str, str]] = []
    for storage_class in ["STANDARD", *sorted(c for c in classes if c != "STANDARD")]:
        counts = classes.get(storage_class)
        for suffix, field, is_bytes in CLASS_MEASUREMENTS:
            value = getattr(counts, field) if counts is not None else 0
            out.append(_measurement(f"{storage_class}_{suffix}", value, is_bytes))
    out.append(_measurement("INCOMPLETE_UPLOADS", usage.uploads, False))
    out.append(_measurement("INCOMPLETE_UPLOAD_BYTES", usage.upload_bytes, True))
    out.append(_measurement("TOTAL_BYTES", usage.total_bytes, True))
    return out


def bucket_settings_json(settings: BucketSettings) -> dict[str, Any]:
    """CWObjectBucketSettings as read back: the cap as `configuredCapacityCapBytes` (a
    string; absent when there is none), days only while archive is on."""
    out: dict[str, Any] = {
        "auditLoggingEnabled": settings.audit_logging_enabled,
        "archiveEnabled": settings.archive_enabled,
    }
    if settings.archive_after_last_access_days is not None:
        out["archiveAfterLastAccessDays"] = settings.archive_after_last_access_days
    if settings.capacity_cap_bytes is not None:
        out["configuredCapacityCapBytes"] = str(settings.capacity_cap_bytes)
    return out


def org_settings_json(settings: OrgSettings) -> dict[str, Any]:
    return {
        "controlPlaneAuditLoggingEnabled": settings.control_plane_audit_logging_enabled,
        "bucketAuditLoggingEnabled": settings.bucket_audit_logging_enabled,
    }


def bucket_info(node: Node, bucket: Bucket) -> dict[str, Any]:
    """BucketInfo (blocking: reads the usage counters)."""
    return {
        "orgId": bucket.org_id,
        "name": bucket.name,
        "creationTime": rfc3339(bucket.created_at),
        "settings": bucket_settings_json(BucketSettings.from_json(bucket.settings)),
        "location": bucket.zone,
        "usage": usage_json(node.storage.usage.bucket(bucket.name)),
    }


# --- parsing -------------------------------------------------------------------------------
def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text[:_SHOWN]


def _bool(settings: dict[str, Any], name: str) -> bool | None:
    value = settings.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise InvalidArgument.field(f"settings.{name}", "must be a boolean")
    return value


def _integer(settings: dict[str, Any], name: str, *, lo: int, hi: int, what: str) -> int | None:
    """A proto3 JSON integer: a number or a decimal string (how 64-bit ones travel)."""
    value = settings.get(name)
    if value is None:
        return None
    field = f"settings.{name}"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument.field(
            field, f"must be {what} (a number or a decimal string), got {_shown(value)}"
        )
    if not lo <= value <= hi:
        raise InvalidArgument.field(field, f"must be {what}, got {_shown(str(value))}")
    return value


def _settings_object(body: dict[str, Any], what: str) -> dict[str, Any]:
    settings = body.get("settings")
    if settings is None:
        raise InvalidArgument(f"{what} settings are required")
    if not isinstance(settings, dict):
        raise InvalidArgument.field("settings", "must be an object")
    return settings


def parse_bucket_settings(body: dict[str, Any]) -> dict[str, Any]:
    """The changes a SetBucketSettings body asks for (BucketSettings field names)."""
    settings = _settings_object(body, "bucket")
    changes = {
        "audit_logging_enabled": _bool(settings, "auditLoggingEnabled"),
        "archive_enabled": _bool(settings, "archiveEnabled"),
        "archive_after_last_access_days": _integer(
            settings, "archiveAfterLastAccessDays", lo=-INT32_MAX - 1, hi=INT32_MAX, what="a 32-bit integer"
        ),
        "capacity_cap_bytes": _integer(
            settings, "capacityCapBytes", lo=0, hi=UINT64_MAX, what="an unsigned 64-bit integer"
        ),
    }
    present = {k: v for k, v in changes.items() if v is not None}
    if not present:  # `{}`, or only read-only/unknown fields (configuredCapacityCapBytes)
        raise InvalidArgument("bucket settings are required")
    return present


_OPERATOR_LIMITS = ("maxBuckets", "capacityCapBytes", "configuredCapacityCapBytes")


def parse_org_settings(body: dict[str, Any]) -> dict[str, Any]:
    """The changes a SetOrganizationSettings body asks for (OrgSettings field names)."""
    settings = _settings_object(body, "organization")
    for name in _OPERATOR_LIMITS:
        if settings.get(name) is not None:
            raise InvalidArgument.field(
                f"settings.{name}", "is an organization limit, set by the operator (coffer admin org limits)"
            )
    changes = {
        "control_plane_audit_logging_enabled": _bool(settings, "controlPlaneAuditLoggingEnabled"),
        "bucket_audit_logging_enabled": _bool(settings, "bucketAuditLoggingEnabled"),
    }
    present = {k: v for k, v in changes.items() if v is not None}
    if not present:
        raise InvalidArgument("organization settings are required")
    return present


def own_bucket(node: Node, org_id: str, name: str) -> Bucket:
    """The caller's organization's bucket `name`; NOT_FOUND for an unknown one and for
    another organization's alike (its existence is not revealed)."""
    if not _BUCKET_NAME.fullmatch(name):  # could not exist: no lookup (nor a cache entry)
        raise _no_bucket(name)
    try:
        bucket = node.storage.buckets.get(name)
    except NoSuchBucket:
        raise _no_bucket(name) from None
    if bucket.org_id != org_id:
        raise _no_bucket(name)
    return bucket


def _no_bucket(name: str) -> NotFound:
    return NotFound.resource("bucket", name[:_SHOWN].encode("unicode_escape").decode("ascii"))


# --- handlers ------------------------------------------------------------------------------
async def set_bucket_settings(c: Call) -> JSONResponse:
    body = await json_body(c.request)
    changes = parse_bucket_settings(body)
    name = require_string(body, "bucketName")
    org_id = c.caller.org_id
    actor = c.actor("cwobject:SetBucketSettings")

    def update() -> BucketSettings:
        own_bucket(c.node, org_id, name)
        try:
            return c.node.storage.settings.update_bucket(name, actor=actor, **changes)
        except NoSuchBucket:  # deleted meanwhile
            raise _no_bucket(name) from None

    settings = await call(update)
    return JSONResponse({"settings": bucket_settings_json(settings)})


async def get_bucket_info(c: Call) -> JSONResponse:
    name = c.request.path_params["bucketName"]
    org_id = c.caller.org_id

    def read() -> dict[str, Any]:
        return bucket_info(c.node, own_bucket(c.node, org_id, name))

    return JSONResponse({"info": await call(read)})


async def list_bucket_info(c: Call) -> JSONResponse:
    q = c.request.query_params
    page = parse_page(q.get("offset"), q.get("limit"), default_limit=limits.MAX_BUCKET_INFO_PAGE)
    org_id = c.caller.org_id

    def read() -> list[dict[str, Any]]:
        buckets = c.node.storage.buckets.list(org_id, offset=page.offset, limit=page.limit)
        return [bucket_info(c.node, b) for b in buckets]

    return JSONResponse({"info": await call(read)})


async def set_org_settings(c: Call) -> JSONResponse:
    body = await json_body(c.request)
    changes = parse_org_settings(body)
    settings = await call(
        c.node.storage.settings.update_org,
        c.caller.org_id,
        actor=c.actor("cwobject:SetOrganizationSettings"),
        **changes,
    )
    return JSONResponse({"settings": org_settings_json(settings)})


async def get_org_settings(c: Call) -> JSONResponse:
    org_id = c.caller.org_id

    def read() -> dict[str, Any]:
        storage = c.node.storage
        settings = storage.settings.org(org_id)
        org_limits: dict[str, Any] = {"maxBuckets": settings.max_buckets}
        if settings.capacity_cap_bytes is not None:
            org_limits["configuredCapacityCapBytes"] = str(settings.capacity_cap_bytes)
        return {
            "settings": org_settings_json(settings),
            "limits": org_limits,
            "usage": {"buckets": storage.buckets.count(org_id), "bytes": str(storage.usage.org(org_id))},
        }

    return JSONResponse(await call(read))


operations = [
    rpc("SetBucketSettings", "PUT", BUCKET_SETTINGS_PATH, set_bucket_settings),
    rpc("ListBucketInfo", "GET", BUCKET_INFO_PATH, list_bucket_info),
    rpc("GetBucketInfo", "GET", BUCKET_INFO_PATH + "/{bucketName}", get_bucket_info),
    rpc("SetOrganizationSettings", "PUT", ORG_SETTINGS_PATH, set_org_settings),
    rpc("GetOrganizationSettings", "GET", ORG_SETTINGS_PATH, get_org_settings),
]


# --- OpenAPI -------------------------------------------------------------------------------
_UINT64_STRING = {"type": "string", "pattern": "^[0-9]{1,20}$", "description": "uint64, as a decimal string"}
_BOOL = {"type": "boolean", "nullable": True}  # null is proto3 JSON's "unset"


def _integer_forms(lo: int, hi: int, pattern: str, description: str) -> dict[str, Any]:
    """A proto3 JSON integer: a number, or a decimal string; null is unset."""
    return {
        "anyOf": [
            {"type": "integer", "minimum": lo, "maximum": hi, "nullable": True},
            {"type": "string", "pattern": pattern, "nullable": True},
        ],
        "description": description,
    }


def _at_least_one(**settable: dict[str, Any]) -> list[dict[str, Any]]:
    """JSON Schema for "at least one of these is present and not null"."""
    return [
        {"required": [name], "properties": {name: {**schema, "nullable": False}}}
        for name, schema in settable.items()
    ]


_SETTABLE_BUCKET: dict[str, Any] = {
    "auditLoggingEnabled": {"type": "boolean"},
    "archiveEnabled": {"type": "boolean"},
    "archiveAfterLastAccessDays": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
    "capacityCapBytes": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
}
_BUCKET_SETTINGS_IN = {
    "type": "object",
    "properties": {
        "auditLoggingEnabled": _BOOL,
        "archiveEnabled": _BOOL,
        "archiveAfterLastAccessDays": _integer_forms(
            -(2**31),
            INT32_MAX,
            "^-?[0-9]{1,20}$",
            "at least 60 and at most 36500; required when archive is enabled, refused when it is disabled",
        ),
        "capacityCapBytes": _integer_forms(
            0,
            UINT64_MAX,
            "^[0-9]{1,20}$",
            "uint64 as a decimal string (a JSON number is accepted too); 0 blocks new writes; "
            "9223372036854775807 or more removes the cap",
        ),
        "configuredCapacityCapBytes": {"description": "read-only; ignored"},
    },
    "anyOf": _at_least_one(**_SETTABLE_BUCKET),
}
_BUCKET_SETTINGS_OUT = obj(
    ["auditLoggingEnabled", "archiveEnabled"],
    auditLoggingEnabled={"type": "boolean"},
    archiveEnabled={"type": "boolean"},
    archiveAfterLastAccessDays={"type": "integer", "minimum": 60},
    configuredCapacityCapBytes={**_UINT64_STRING, "description": "the cap in force; absent: none"},
)
_USAGE = obj(
    ["measurementType", "value", "valueHumanReadable"],
    measurementType={"type": "string", "example": "STANDARD_BYTES"},
    value={**_UINT64_STRING, "description": "int64, as a decimal string"},
    valueHumanReadable={"type": "string", "example": "1.5 GiB"},
)
_BUCKET_INFO = obj(
    ["orgId", "name", "creationTime", "settings", "location", "usage"],
    orgId={"type": "string"},
    name={"type": "string"},
    creationTime={"type": "string", "format": "date-time"},
    settings=_BUCKET_SETTINGS_OUT,
    location={"type": "string", "example": "US-EAST-04A"},
    usage={"type": "array", "items": _USAGE},
)
_OPERATOR_ONLY = {
    "nullable": True,
    "enum": [None],
    "description": "an organization limit: set by the operator (coffer admin org limits), refused here",
}
_ORG_SETTINGS_IN = {
    "type": "object",
    "properties": {
        "controlPlaneAuditLoggingEnabled": _BOOL,
        "bucketAuditLoggingEnabled": _BOOL,
        **{name: _OPERATOR_ONLY for name in _OPERATOR_LIMITS},
    },
    "anyOf": _at_least_one(
        controlPlaneAuditLoggingEnabled={"type": "boolean"}, bucketAuditLoggingEnabled={"type": "boolean"}
    ),
}
_ORG_SETTINGS_OUT = obj(
    ["controlPlaneAuditLoggingEnabled", "bucketAuditLoggingEnabled"],
    controlPlaneAuditLoggingEnabled={"type": "boolean"},
    bucketAuditLoggingEnabled={"type": "boolean"},
)
_NO_BUCKET = {"404": "NOT_FOUND (5): no bucket of that name in the caller's organization"}

OPENAPI: dict[str, dict[str, Any]] = {
    "SetBucketSettings": {
        "summary": "Change a bucket's settings: only the fields present change",
        "body": bucket_request(settings=_BUCKET_SETTINGS_IN),
        "response": obj(["settings"], settings=_BUCKET_SETTINGS_OUT),
        "errors": _NO_BUCKET,
    },
    "GetBucketInfo": {
        "summary": "A bucket's settings, location and usage",
        "response": obj(["info"], info=_BUCKET_INFO),
        "errors": _NO_BUCKET,
    },
    "ListBucketInfo": {
        "summary": "Every bucket of the organization, with settings, location and usage",
        "query": {
            "offset": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
            "limit": {"type": "integer", "minimum": 1, "maximum": limits.MAX_BUCKET_INFO_PAGE},
        },
        "response": obj(["info"], info={"type": "array", "items": _BUCKET_INFO}),
    },
    "SetOrganizationSettings": {
        "summary": "Change the organization's audit-logging settings: only the fields present change",
        "body": obj(["settings"], settings=_ORG_SETTINGS_IN),
        "response": obj(["settings"], settings=_ORG_SETTINGS_OUT),
    },
    "GetOrganizationSettings": {
        "summary": "Coffer extension: the organization's settings, its limits and what it uses",
        "response": obj(
            ["settings", "limits", "usage"],
            settings=_ORG_SETTINGS_OUT,
            limits=obj(
                ["maxBuckets"],
                maxBuckets={"type": "integer", "minimum": 0},
                configuredCapacityCapBytes={
                    **_UINT64_STRING,
                    "description": "bytes over all buckets; absent: no cap",
                },
            ),
            usage=obj(["buckets", "bytes"], buckets={"type": "integer", "minimum": 0}, bytes=_UINT64_STRING),
        ),
    },
}
