"""/console/api/buckets/{bucket}/lifecycle: the bucket page's Lifecycle tab.

The page lists the rules, adds one from a small form and deletes one. Each change reads
the bucket's configuration from the S3 face, edits that XML document (appending a rule or
removing the one with the id) and puts it back, so the parts of other rules the form does
not know (tags, sizes, dates, delete markers) stay exactly as they were. The S3 face
validates and authorizes, as for any client; two people editing at once: the last write
wins, as with any S3 client.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from xml.etree.ElementTree import Element, tostring

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from coffer.console.buckets import NS, _bucket, _json, _s3_answering, _session
from coffer.console.s3client import ConsoleS3, S3CallError, parse_xml, xml_children, xml_text
from coffer.errors import InvalidArgument
from coffer.identity.models import Caller
from coffer.s3.xml import escape
from coffer.web.http import json_body

QUERY = [("lifecycle", "")]
MAX_ID = 255
_NUMBERS = {"expirationDays": "Days", "noncurrentDays": "NoncurrentDays", "abortDays": "DaysAfterInitiation"}


def _number(el: Element | None, name: str) -> int | None:
    text = xml_text(el, name)
    return int(text) if text.strip().isdigit() else None


def _first(el: Element | None, name: str) -> Element | None:
    found = xml_children(el, name) if el is not None else []
    return found[0] if found else None


def _summary(rule: Element) -> dict[str, Any]:
    """What the page shows of a rule, read from S3's XML."""
    flt = _first(rule, "Filter")
    both = _first(flt, "And")
    where = both if both is not None else flt
    tags = [
        {"key": xml_text(t, "Key"), "value": xml_text(t, "Value")}
        for t in (xml_children(where, "Tag") if where is not None else [])
    ]
    expiration = _first(rule, "Expiration")
    noncurrent = _first(rule, "NoncurrentVersionExpiration")
    abort = _first(rule, "AbortIncompleteMultipartUpload")
    return {
        "id": xml_text(rule, "ID"),
        "enabled": xml_text(rule, "Status") == "Enabled",
        "prefix": xml_text(where, "Prefix"),
        "tags": tags,
        "sizeGreaterThan": _number(where, "ObjectSizeGreaterThan"),
        "sizeLessThan": _number(where, "ObjectSizeLessThan"),
        "expirationDays": _number(expiration, "Days"),
        "expirationDate": xml_text(expiration, "Date") or None,
        "expiredObjectDeleteMarker": xml_text(expiration, "ExpiredObjectDeleteMarker") == "true",
        "noncurrentDays": _number(noncurrent, "NoncurrentDays"),
        "newerNoncurrentVersions": _number(noncurrent, "NewerNoncurrentVersions"),
        "abortDays": _number(abort, "DaysAfterInitiation"),
    }


async def _rules(s3: ConsoleS3, caller: Caller, bucket: str) -> list[Element]:
    """The bucket's rules as S3 has them (none: an empty list)."""
    try:
        with _s3_answering():
            resp = await s3.call(caller, "GET", bucket, query=QUERY)
    except S3CallError as exc:
        if exc.code == "NoSuchLifecycleConfiguration":
            return []
        raise
    return xml_children(parse_xml(resp.content), "Rule")


async def _store(s3: ConsoleS3, caller: Caller, bucket: str, rules: list[Element]) -> None:
    """Put `rules` back as the configuration; no rules left: delete it (S3 refuses an empty one)."""
    with _s3_answering():
        if not rules:
            await s3.call(caller, "DELETE", bucket, query=QUERY)
            return
        inner = b"".join(tostring(rule) for rule in rules)
        body = f'<LifecycleConfiguration xmlns="{NS}">'.encode() + inner + b"</LifecycleConfiguration>"
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324 - S3's Content-MD5
        await s3.call(caller, "PUT", bucket, query=QUERY, body=body, headers={"content-md5": md5})


def _new_rule(body: dict[str, Any]) -> Element:
    """The form's rule as S3 XML; S3 itself checks the values (and that there is an action)."""
    rule_id = body.get("id")
    if not isinstance(rule_id, str) or not rule_id.strip():
        raise InvalidArgument.field("id", "is required")
    if len(rule_id.strip()) > MAX_ID:
        raise InvalidArgument.field("id", f"must be at most {MAX_ID} characters")
    prefix = body.get("prefix") or ""
    if not isinstance(prefix, str):
        raise InvalidArgument.field("prefix", "must be a string")
    days: dict[str, int] = {}
    for name in _NUMBERS:
        value = body.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument.field(name, "must be a whole number of days")
        days[name] = value
    parts = [f"<ID>{escape(rule_id.strip())}</ID><Filter><Prefix>{escape(prefix)}</Prefix></Filter>"]
    parts.append("<Status>Enabled</Status>")
    if "expirationDays" in days:
        parts.append(f"<Expiration><Days>{days['expirationDays']}</Days></Expiration>")
    if "noncurrentDays" in days:
        parts.append(
            "<NoncurrentVersionExpiration>"
            f"<NoncurrentDays>{days['noncurrentDays']}</NoncurrentDays></NoncurrentVersionExpiration>"
        )
    if "abortDays" in days:
        parts.append(
            "<AbortIncompleteMultipartUpload>"
            f"<DaysAfterInitiation>{days['abortDays']}</DaysAfterInitiation></AbortIncompleteMultipartUpload>"
        )
    return parse_xml(f"<Rule>{''.join(parts)}</Rule>".encode())


async def get_lifecycle(request: Request) -> JSONResponse:
    caller, s3 = await _session(request)
    rules = await _rules(s3, caller, _bucket(request))
    return _json({"rules": [_summary(rule) for rule in rules]})


async def add_rule(request: Request) -> JSONResponse:
    caller, s3 = await _session(request)
    bucket = _bucket(request)
    new = _new_rule(await json_body(request))
    rules = await _rules(s3, caller, bucket)
    if any(xml_text(rule, "ID") == xml_text(new, "ID") for rule in rules):
        raise InvalidArgument.field("id", "is already the id of a rule of this bucket")
    rules.append(new)
    await _store(s3, caller, bucket, rules)
    return _json({"rules": [_summary(rule) for rule in rules]}, 201)


async def delete_rule(request: Request) -> JSONResponse:
    caller, s3 = await _session(request)
    bucket = _bucket(request)
    rule_id = request.query_params.get("id", "")
    rules = await _rules(s3, caller, bucket)
    kept = [rule for rule in rules if xml_text(rule, "ID") != rule_id]
    if len(kept) == len(rules):
        raise InvalidArgument.field("id", "names no rule of this bucket")
    await _store(s3, caller, bucket, kept)
    return _json({"rules": [_summary(rule) for rule in kept]})


def routes(prefix: str) -> list[Route]:
    b = prefix + "/buckets/{bucket}/lifecycle"
    return [
        Route(b, get_lifecycle, methods=["GET"]),
        Route(b + "/rules", add_rule, methods=["POST"]),
        Route(b + "/rules", delete_rule, methods=["DELETE"]),
    ]
