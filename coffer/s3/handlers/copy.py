"""CopyObject and UploadPartCopy: reading a source object named by x-amz-copy-source.

The source's read permission is authorized by the app (through the same door as the
request) before these run; here the source is fetched, its x-amz-copy-source-if-*
conditions checked, and the bytes copied.
"""

from __future__ import annotations

from coffer.errors import S3Error
from coffer.s3 import xml
from coffer.s3.context import Context, run
from coffer.s3.handlers.acl import write_acl
from coffer.s3.handlers.common import (
    check_preconditions,
    checksum_nodes,
    object_headers_from_request,
    object_to_write,
    parse_part_number,
    storage_class,
    tagging_header,
)
from coffer.s3.handlers.lifecycle import expiration_headers
from coffer.s3.handlers.objects import lost_races, version_headers, write_conditions
from coffer.s3.responses import S3Response
from coffer.storage.models import ObjectVersion
from coffer.storage.rules import MAX_PART_SIZE

SELF_COPY = (
    "This copy request is illegal because it is trying to copy an object to itself without changing the "
    "object's metadata, storage class, website redirect location or encryption attributes."
)


async def _source(ctx: Context) -> ObjectVersion:
    ref = ctx.op.source
    assert ref is not None, "copy operations are routed with a source"
    obj = await run(ctx.node.storage.objects.get, ref.bucket, ref.key, ref.version_id)
    check_preconditions(ctx.request, obj, prefix="x-amz-copy-source-")
    return obj


def _directive(ctx: Context, header: str) -> str:
    value = (ctx.request.header(header) or "COPY").strip().upper()
    if value not in ("COPY", "REPLACE"):
        raise S3Error("InvalidArgument", f"Unknown {header.removeprefix('x-amz-')}.",
                      fields={"ArgumentName": header, "ArgumentValue": value})  # fmt: skip
    return value


def _source_version_header(source: ObjectVersion, ctx: Context) -> list[tuple[str, str]]:
    src_bucket = ctx.source_bucket
    if src_bucket is not None and src_bucket.versioning:
        return [("x-amz-copy-source-version-id", source.version_id)]
    return []


async def copy_object(ctx: Context) -> S3Response:
    bucket, key = object_to_write(ctx)
    owned = write_acl(ctx)  # the destination's: an ACL is never copied
    req = ctx.request
    if_match, if_none_match = write_conditions(ctx)  # on the destination
    source = await _source(ctx)
    metadata = _directive(ctx, "x-amz-metadata-directive")
    tagging = _directive(ctx, "x-amz-tagging-directive")
    sclass = storage_class(req)
    ref = ctx.op.source
    assert ref is not None
    same = ref.bucket == bucket.name and ref.key == key and ref.version_id in (None, source.version_id)
    changes_class = req.header("x-amz-storage-class") is not None and sclass != source.storage_class
    redirect = req.header("x-amz-website-redirect-location") is not None
    if same and metadata != "REPLACE" and not changes_class and not redirect:
        raise S3Error("InvalidRequest", SELF_COPY)
    if source.size > MAX_PART_SIZE:
        raise S3Error(
            "InvalidRequest",
            "The specified copy source is larger than the maximum allowable size for a copy source: "
            f"{MAX_PART_SIZE}",
        )
    headers = object_headers_from_request(req) if metadata == "REPLACE" else dict(source.headers)
    tags = tagging_header(req) if tagging == "REPLACE" else source.tags
    with lost_races(ctx):
        obj = await run(
            ctx.node.storage.objects.copy,
            source,
            bucket.name,
            key,
            headers=headers,
            owner=owned.owner,
            acl=owned.acl,
            storage_class=sclass if req.header("x-amz-storage-class") else "STANDARD",
            tags=tags,
            if_match=if_match,
            if_none_match=if_none_match,
        )
    body: list[xml.Node] = [("ETag", obj.etag), ("LastModified", obj.last_modified)]
    body += checksum_nodes(obj.checksums)
    response = S3Response.xml("CopyObjectResult", body)
    response.headers += _source_version_header(source, ctx) + version_headers(ctx, obj.version_id)
    response.headers += expiration_headers(ctx, obj)
    return response


def _copy_range(value: str | None, size: int) -> tuple[int, int]:
    """x-amz-copy-source-range: `bytes=first-last`, both required and inside the source."""
    if value is None:
        return 0, size - 1
    unit, _, spec = value.strip().partition("=")
    first, dash, last = spec.partition("-")
    if unit != "bytes" or not dash or not first.isdigit() or not last.isdigit() or int(last) < int(first):
        raise S3Error(
            "InvalidArgument",
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last "
            "are the zero-based offsets of the first and last bytes to copy",
            fields={"ArgumentName": "x-amz-copy-source-range", "ArgumentValue": value},
        )
    start, end = int(first), int(last)
    if end >= size:
        raise S3Error(
            "InvalidRange",
            f"Range specified is not valid for source object of size: {size}",
            fields={"RangeRequested": value, "ActualObjectSize": str(size)},
        )
    return start, end


async def upload_part_copy(ctx: Context) -> S3Response:
    bucket, key = ctx.require_bucket(), ctx.require_key()
    query = ctx.op.query
    number = parse_part_number(query.get("partNumber"))
    uploads = ctx.node.storage.uploads
    upload = await run(uploads.get, bucket.name, key, query.get("uploadId", ""))
    source = await _source(ctx)
    start, end = _copy_range(ctx.request.header("x-amz-copy-source-range"), source.size)
    if end - start + 1 > MAX_PART_SIZE:
        raise S3Error("EntityTooLarge", fields={"MaxSizeAllowed": str(MAX_PART_SIZE)})
    part = await uploads.copy_part(upload, number, source, start, end)
    body: list[xml.Node] = [("ETag", part.etag), ("LastModified", part.last_modified)]
    body += [(f"Checksum{alg}", value) for alg, value in part.checksums.items() if alg != "type"]
    response = S3Response.xml("CopyPartResult", body)
    response.headers += _source_version_header(source, ctx)
    return response
