"""Inventory configurations: Put/Get/List/DeleteBucketInventoryConfiguration.

This module reads and writes AWS's `<InventoryConfiguration>` XML; the rules (formats,
fields, the destination) are the core's (`coffer.lifecycle.inventory`). A body that is
not the schema's shape (a missing required element, a non-boolean `IsEnabled`) is
MalformedXML; a value Coffer refuses (an unknown or unsupported format, frequency or
field, ORC, Parquet, `Encryption`) is InvalidArgument.
"""

from __future__ import annotations

import base64
import binascii
from xml.etree.ElementTree import Element

from coffer.errors import S3Error
from coffer.lifecycle.inventory import ARN_PREFIX, MAX_LIST, InventoryConfig, destination_name
from coffer.s3 import xml
from coffer.s3.context import Context, run
from coffer.s3.payload import read_small_body
from coffer.s3.responses import S3Response

MAX_BODY = 64 * 1024
_BOOLEANS = {"true": True, "false": False}


def _required(element: Element, name: str) -> Element:
    found = xml.child(element, name)
    if found is None:
        raise S3Error("MalformedXML")
    return found


def _text(element: Element, name: str) -> str:
    return (_required(element, name).text or "").strip()


def _optional(element: Element | None, name: str) -> str | None:
    if element is None:
        return None
    value = xml.child_text(element, name)
    return value.strip() if value is not None else None


def parse_configuration(raw: bytes) -> InventoryConfig:
    root = xml.parse(raw, "InventoryConfiguration")
    destination = _required(_required(root, "Destination"), "S3BucketDestination")
    if xml.child(destination, "Encryption") is not None:
        raise S3Error(
            "InvalidArgument",
            "Coffer does not encrypt inventory reports: omit Encryption.",
            fields={"ArgumentName": "Encryption"},
        )
    enabled = _BOOLEANS.get(_text(root, "IsEnabled"))
    if enabled is None:
        raise S3Error("MalformedXML")
    fields = xml.child(root, "OptionalFields")
    return InventoryConfig(
        id=_text(root, "Id"),
        enabled=enabled,
        destination_bucket=destination_name(_text(destination, "Bucket")),
        format=_text(destination, "Format"),
        frequency=_text(_required(root, "Schedule"), "Frequency"),
        included_versions=_text(root, "IncludedObjectVersions"),
        prefix=_optional(xml.child(root, "Filter"), "Prefix"),
        destination_prefix=_optional(destination, "Prefix"),
        account_id=_optional(destination, "AccountId"),
        optional_fields=tuple((f.text or "").strip() for f in xml.children(fields, "Field"))
        if fields is not None
        else (),
    )


def _nodes(config: InventoryConfig) -> list[xml.Node]:
    destination: list[xml.Node] = [
        ("AccountId", config.account_id),
        ("Bucket", ARN_PREFIX + config.destination_bucket),
        ("Format", config.format),
        ("Prefix", config.destination_prefix),
    ]
    nodes: list[xml.Node] = [
        ("Destination", [("S3BucketDestination", destination)]),
        ("IsEnabled", config.enabled),
    ]
    if config.prefix is not None:
        nodes.append(("Filter", [("Prefix", config.prefix)]))
    nodes += [("Id", config.id), ("IncludedObjectVersions", config.included_versions)]
    if config.optional_fields:
        nodes.append(("OptionalFields", [("Field", f) for f in config.optional_fields]))
    nodes.append(("Schedule", [("Frequency", config.frequency)]))
    return nodes


def _id(ctx: Context) -> str:
    config_id = ctx.op.query.get("id")
    if not config_id:
        raise S3Error(
            "InvalidArgument", "The inventory configuration id is missing.", fields={"ArgumentName": "id"}
        )
    return config_id


async def put_bucket_inventory(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    config_id = _id(ctx)
    config = parse_configuration(await read_small_body(ctx, MAX_BODY))
    if config.id != config_id:
        raise S3Error(
            "InvalidArgument",
            "The inventory id in the query does not match the Id in the configuration.",
            fields={"ArgumentName": "id", "ArgumentValue": config_id[:256]},
        )
    await run(ctx.node.storage.inventory.put, bucket.name, config)
    return S3Response(200)


async def get_bucket_inventory(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    config = await run(ctx.node.storage.inventory.get, bucket.name, _id(ctx))
    return S3Response.xml("InventoryConfiguration", _nodes(config))


async def delete_bucket_inventory(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    await run(ctx.node.storage.inventory.delete, bucket.name, _id(ctx))
    return S3Response(204)


def _token(after: str) -> str:
    return base64.urlsafe_b64encode(after.encode()).decode()


def _after(token: str | None) -> str:
    if token is None:
        return ""
    try:
        return base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise S3Error(
            "InvalidArgument",
            "The continuation token provided is incorrect",
            fields={"ArgumentName": "continuation-token", "ArgumentValue": token[:256]},
        ) from None


async def list_bucket_inventory(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    token = ctx.op.query.get("continuation-token")
    found = await run(ctx.node.storage.inventory.list, bucket.name, after=_after(token), limit=MAX_LIST + 1)
    page, truncated = found[:MAX_LIST], len(found) > MAX_LIST
    body: list[xml.Node] = [("ContinuationToken", token)]
    body += [("InventoryConfiguration", _nodes(config)) for config in page]
    body.append(("IsTruncated", truncated))
    if truncated:
        body.append(("NextContinuationToken", _token(page[-1].id)))
    return S3Response.xml("ListInventoryConfigurationsResult", body)
