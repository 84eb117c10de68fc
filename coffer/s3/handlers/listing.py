"""ListObjects (v1) and ListObjectsV2.

Both read one page from the core (`Objects.list`, which rolls common prefixes
up itself); they differ only in how the page is addressed (marker vs an opaque
continuation token) and rendered.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import quote

from coffer.errors import S3Error
from coffer.s3 import xml
from coffer.s3.context import Context, run
from coffer.s3.handlers.common import ListArgs, list_args, url_encode
from coffer.s3.responses import S3Response
from coffer.storage.models import ObjectListing

V = TypeVar("V")


async def _page(ctx: Context, args: ListArgs, after: str) -> ObjectListing:
    if args.max_items == 0:
        return ObjectListing(contents=[], common_prefixes=[], is_truncated=False, next_marker=None)
    bucket = ctx.require_bucket()
    return await run(
        ctx.node.storage.objects.list,
        bucket.name,
        prefix=args.prefix,
        delimiter=args.delimiter,
        after=after,
        max_keys=args.max_items,
    )


def _entries(listing: ObjectListing, encode: bool, with_owner: bool) -> list[xml.Node | xml.Raw]:
    """<Contents> and <CommonPrefixes>. A page holds up to a thousand entries, so the
    <Contents> are one pre-rendered fragment (`xml.Raw`) of one format string each, not a
    tree of nodes per entry."""
    # keys written together share a time; a page has a handful of storage classes
    escape, stamps, classes = xml.escape, _Memo(xml.timestamp), _Memo(xml.escape)
    parts: list[str] = []
    for obj in listing.contents:
        key = escape(quote(obj.key, safe="/") if encode else obj.key)
        extra = ""
        if obj.checksum_algorithm:
            extra = f"<ChecksumAlgorithm>{escape(obj.checksum_algorithm)}</ChecksumAlgorithm>"
        if with_owner:
            principal = escape(obj.owner_principal)
            extra += f"<Owner><ID>{principal}</ID><DisplayName>{principal}</DisplayName></Owner>"
        parts.append(
            f"<Contents><Key>{key}</Key><LastModified>{stamps(obj.last_modified)}</LastModified>"
            f"<ETag>{escape(obj.etag)}</ETag><Size>{int(obj.size)}</Size>{extra}"
            f"<StorageClass>{classes(obj.storage_class or 'STANDARD')}</StorageClass></Contents>"
        )
    nodes: list[xml.Node | xml.Raw] = [xml.Raw("".join(parts))] if parts else []
    for prefix in listing.common_prefixes:
        nodes.append(("CommonPrefixes", [("Prefix", url_encode(prefix, encode))]))
    return nodes


class _Memo(dict[V, str]):
    """A rendering function's answers, remembered within one page."""

    def __init__(self, render: Callable[[V], str]) -> None:
        super().__init__()
        self.render = render

    def __call__(self, value: V) -> str:
        text = self.get(value)
        if text is None:
            text = self[value] = self.render(value)
        return text


async def list_objects(ctx: Context) -> S3Response:
    query = ctx.op.query
    args = list_args(query, "max-keys")
    encode, prefix, delimiter, marker = args.encode, args.prefix, args.delimiter, query.get("marker", "")
    listing = await _page(ctx, args, marker)
    next_marker = listing.next_marker if listing.is_truncated and delimiter else None
    body: list[xml.Node | xml.Raw] = [  # a None value leaves its element out
        ("Name", ctx.require_bucket().name),
        ("Prefix", url_encode(prefix, encode)),
        ("Marker", url_encode(marker, encode)),
        ("MaxKeys", args.max_items),
        ("Delimiter", url_encode(delimiter or None, encode)),
        ("IsTruncated", listing.is_truncated),
        ("NextMarker", url_encode(next_marker or None, encode)),
        ("EncodingType", "url" if encode else None),
    ]
    body += _entries(listing, encode, with_owner=True)
    return S3Response.xml("ListBucketResult", body)


def _decode_token(token: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        after = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeError):
        after = ""
    if not token or not after:
        raise S3Error(
            "InvalidArgument",
            "The continuation token provided is incorrect",
            fields={"ArgumentName": "continuation-token"},
        )
    return after


def _encode_token(last: str) -> str:
    return base64.urlsafe_b64encode(last.encode("utf-8")).decode("ascii").rstrip("=")


async def list_objects_v2(ctx: Context) -> S3Response:
    query = ctx.op.query
    if query.get("list-type") != "2":
        raise S3Error(
            "InvalidArgument",
            "Invalid List Type specified in Request",
            fields={"ArgumentName": "list-type", "ArgumentValue": query.get("list-type", "")},
        )
    args = list_args(query, "max-keys")
    encode, prefix, delimiter = args.encode, args.prefix, args.delimiter
    start_after = query.get("start-after", "")
    # An empty token is no token (AWS): the listing starts at start-after, and the empty
    # token is echoed back as <ContinuationToken></ContinuationToken>.
    token = query.get("continuation-token")
    after = _decode_token(token) if token else start_after
    fetch_owner = query.get("fetch-owner", "").lower() == "true"
    listing = await _page(ctx, args, after)
    next_token = _encode_token(listing.next_marker) if listing.is_truncated and listing.next_marker else None
    body: list[xml.Node | xml.Raw] = [  # a None value leaves its element out
        ("Name", ctx.require_bucket().name),
        ("Prefix", url_encode(prefix, encode)),
        ("ContinuationToken", token),
        ("StartAfter", url_encode(start_after, encode) if "start-after" in query else None),
        ("KeyCount", len(listing.contents) + len(listing.common_prefixes)),
        ("MaxKeys", args.max_items),
        ("Delimiter", url_encode(delimiter or None, encode)),
        ("IsTruncated", listing.is_truncated),
        ("NextContinuationToken", next_token),
        ("EncodingType", "url" if encode else None),
    ]
    body += _entries(listing, encode, with_owner=fetch_owner)
    return S3Response.xml("ListBucketResult", body)
