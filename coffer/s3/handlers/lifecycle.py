"""Lifecycle: Put/Get/DeleteBucketLifecycleConfiguration and the `x-amz-expiration` header.

The model, its checks on values and combinations, and the dates it gives an object are
the core's (`coffer.lifecycle.rules`); this module reads and writes
`<LifecycleConfiguration>` and refuses what does not fit its shape (MalformedXML), as S3
does. As CoreWeave does, the deprecated top-level rule `Prefix` and the Transition actions
are refused (docs/decisions/0160-lifecycle-configuration.md).
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from urllib.parse import quote
from xml.etree.ElementTree import Element

from coffer.audit import Actor
from coffer.errors import S3Error
from coffer.lifecycle.rules import Filter, LifecycleConfiguration, Rule, current_expiry
from coffer.s3 import xml
from coffer.s3.context import Context, run
from coffer.s3.payload import read_small_body, require_integrity_header
from coffer.s3.responses import S3Response, http_date
from coffer.storage.models import ObjectVersion

MAX_BODY = 2 * 1024 * 1024  # 1,000 rules with long prefixes and tags fit
_RULE_ELEMENTS = frozenset(
    {"ID", "Status", "Filter", "Expiration", "NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload"}
)
_NO_TIERS = "Lifecycle transitions are not supported: Coffer has one storage tier; use "
_REFUSED = {
    "Prefix": "The top-level rule Prefix is deprecated and not supported; use Filter/Prefix.",
    "Transition": _NO_TIERS + "Expiration.",
    "NoncurrentVersionTransition": _NO_TIERS + "NoncurrentVersionExpiration.",
}
_FILTER_ELEMENTS = ("Prefix", "Tag", "ObjectSizeGreaterThan", "ObjectSizeLessThan", "And")


def _malformed() -> S3Error:
    return S3Error("MalformedXML")


def _only(element: Element, allowed: frozenset[str] | tuple[str, ...]) -> None:
    """Every child is one of `allowed`, each at most once: anything else is not S3's schema."""
    names = [xml.local(c.tag) for c in element]
    if any(name not in allowed for name in names) or len(set(names)) != len(names):
        raise _malformed()


def _int(text: str | None) -> int | None:
    """A decimal integer element (None when absent); its range is the core's to check."""
    if text is None:
        return None
    text = text.strip()
    digits = text[1:] if text[:1] == "-" else text
    if not digits.isdigit() or len(digits) > 19:
        raise _malformed()
    return int(text)


def _tag(element: Element) -> tuple[str, str]:
    _only(element, ("Key", "Value"))
    key, value = xml.child_text(element, "Key"), xml.child_text(element, "Value")
    if key is None:
        raise _malformed()
    return key, value or ""


def _filter(element: Element | None) -> Filter:
    if element is None:
        return Filter()  # no Filter: the whole bucket, as AWS
    _only(element, _FILTER_ELEMENTS)
    if len(element) > 1:
        raise _malformed()  # exactly one predicate, or And
    outer = element
    both = xml.child(element, "And")
    if both is not None:
        names = [xml.local(c.tag) for c in both]
        singles = [name for name in names if name != "Tag"]
        if (
            not names
            or any(n not in _FILTER_ELEMENTS[:4] for n in names)
            or len(set(singles)) != len(singles)
        ):
            raise _malformed()
        outer = both
    return Filter(
        prefix=xml.child_text(outer, "Prefix") or "",
        tags=tuple(_tag(t) for t in xml.children(outer, "Tag")),
        size_greater_than=_int(xml.child_text(outer, "ObjectSizeGreaterThan")),
        size_less_than=_int(xml.child_text(outer, "ObjectSizeLessThan")),
    )


def _date(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise S3Error("InvalidArgument", "Date must be in ISO 8601 format") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _rule(element: Element) -> Rule:
    for name, message in _REFUSED.items():
        if xml.child(element, name) is not None:
            raise S3Error("InvalidRequest", message)
    _only(element, _RULE_ELEMENTS)
    status = (xml.child_text(element, "Status") or "").strip()
    if status not in ("Enabled", "Disabled"):
        raise _malformed()
    rule_id = (xml.child_text(element, "ID") or "").strip()
    if not rule_id:  # AWS names an unnamed rule with a random id
        rule_id = base64.b64encode(str(uuid.uuid4()).encode()).decode()
    days = date = None
    marker = False
    expiration = xml.child(element, "Expiration")
    if expiration is not None:
        _only(expiration, ("Days", "Date", "ExpiredObjectDeleteMarker"))
        if len(expiration) != 1:
            raise _malformed()  # exactly one of Days, Date, ExpiredObjectDeleteMarker
        days = _int(xml.child_text(expiration, "Days"))
        date = _date(xml.child_text(expiration, "Date"))
        flag = xml.child_text(expiration, "ExpiredObjectDeleteMarker")
        if flag is not None and flag.strip() not in ("true", "false"):
            raise _malformed()
        marker = flag is not None and flag.strip() == "true"
    noncurrent_days = newer = None
    noncurrent = xml.child(element, "NoncurrentVersionExpiration")
    if noncurrent is not None:
        _only(noncurrent, ("NoncurrentDays", "NewerNoncurrentVersions"))
        noncurrent_days = _int(xml.child_text(noncurrent, "NoncurrentDays"))
        if noncurrent_days is None:
            raise _malformed()
        newer = _int(xml.child_text(noncurrent, "NewerNoncurrentVersions"))
    abort_days = None
    abort = xml.child(element, "AbortIncompleteMultipartUpload")
    if abort is not None:
        _only(abort, ("DaysAfterInitiation",))
        abort_days = _int(xml.child_text(abort, "DaysAfterInitiation"))
        if abort_days is None:
            raise _malformed()
    return Rule(
        id=rule_id,
        enabled=status == "Enabled",
        filter=_filter(xml.child(element, "Filter")),
        expiration_days=days,
        expiration_date=date,
        expired_object_delete_marker=marker,
        noncurrent_days=noncurrent_days,
        newer_noncurrent_versions=newer,
        abort_incomplete_days=abort_days,
    )


def parse_configuration(raw: bytes) -> LifecycleConfiguration:
    """The configuration a request body describes; its values are checked by the core
    (`rules.validate`) when it is stored."""
    root = xml.parse(raw, "LifecycleConfiguration")
    if any(xml.local(c.tag) != "Rule" for c in root):
        raise _malformed()
    return LifecycleConfiguration(tuple(_rule(element) for element in root))


def render_rule(rule: Rule) -> list[xml.Node]:
    f = rule.filter
    tags: list[xml.Node] = [("Tag", [("Key", k), ("Value", v)]) for k, v in f.tags]
    predicates: list[xml.Node] = []
    if f.prefix:
        predicates.append(("Prefix", f.prefix))
    predicates += tags
    if f.size_greater_than is not None:
        predicates.append(("ObjectSizeGreaterThan", f.size_greater_than))
    if f.size_less_than is not None:
        predicates.append(("ObjectSizeLessThan", f.size_less_than))
    filter_nodes = [("And", predicates)] if len(predicates) > 1 else predicates
    nodes: list[xml.Node] = [("ID", rule.id), ("Filter", filter_nodes)]
    nodes.append(("Status", "Enabled" if rule.enabled else "Disabled"))
    expiration: list[xml.Node] = []
    if rule.expiration_date is not None:
        expiration.append(("Date", rule.expiration_date))
    if rule.expiration_days is not None:
        expiration.append(("Days", rule.expiration_days))
    if rule.expired_object_delete_marker:
        expiration.append(("ExpiredObjectDeleteMarker", True))
    if expiration:
        nodes.append(("Expiration", expiration))
    if rule.noncurrent_days is not None:
        noncurrent: list[xml.Node] = [("NoncurrentDays", rule.noncurrent_days)]
        if rule.newer_noncurrent_versions is not None:
            noncurrent.append(("NewerNoncurrentVersions", rule.newer_noncurrent_versions))
        nodes.append(("NoncurrentVersionExpiration", noncurrent))
    if rule.abort_incomplete_days is not None:
        nodes.append(
            ("AbortIncompleteMultipartUpload", [("DaysAfterInitiation", rule.abort_incomplete_days)])
        )
    return nodes


def _actor(ctx: Context) -> Actor:
    return Actor(ctx.principal, ctx.op.action, ctx.request.source_ip or None)


async def put_bucket_lifecycle(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    require_integrity_header(ctx)
    config = parse_configuration(await read_small_body(ctx, MAX_BODY))
    await run(ctx.node.storage.lifecycle.put, bucket.name, config, actor=_actor(ctx))
    return S3Response(200)


async def get_bucket_lifecycle(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    config = await run(ctx.node.storage.lifecycle.get, bucket.name)
    if config is None:
        raise S3Error("NoSuchLifecycleConfiguration", fields={"BucketName": bucket.name})
    return S3Response.xml("LifecycleConfiguration", [("Rule", render_rule(rule)) for rule in config.rules])


async def delete_bucket_lifecycle(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    await run(ctx.node.storage.lifecycle.delete, bucket.name, actor=_actor(ctx))
    return S3Response(204)


def expiration_headers(ctx: Context, obj: ObjectVersion) -> list[tuple[str, str]]:
    """`x-amz-expiration` for a current version a rule will expire (by Days or Date), as AWS
    sends it on PutObject, CopyObject, CompleteMultipartUpload, GetObject and HeadObject;
    none for delete markers and noncurrent versions. The rule id is URL-encoded, as AWS does."""
    if obj.is_delete_marker or not obj.is_latest:
        return []
    config = ctx.node.storage.lifecycle.get(obj.bucket)
    if config is None:
        return []
    found = current_expiry(
        config, obj.key, obj.size, obj.tags, obj.last_modified, ctx.node.settings.lifecycle_day_seconds
    )
    if found is None:
        return []
    when, rule_id = found
    return [("x-amz-expiration", f'expiry-date="{http_date(when)}", rule-id="{quote(rule_id, safe="")}"')]
