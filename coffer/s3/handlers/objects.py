"""PutObject, GetObject, HeadObject, DeleteObject."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from coffer import checksums as cks
from coffer.errors import S3Error
from coffer.s3.context import Context, run
from coffer.s3.handlers.acl import write_acl
from coffer.s3.handlers.common import (
    DEFAULT_CONTENT_TYPE,
    STORED_HEADERS,
    check_preconditions,
    object_headers_from_request,
    object_to_write,
    parse_part_number,
    storage_class,
    tagging_header,
)
from coffer.s3.handlers.lifecycle import expiration_headers
from coffer.s3.payload import request_body, request_checksum, response_headers
from coffer.s3.responses import S3Response, http_date
from coffer.storage.errors import PreconditionFailed
from coffer.storage.models import ObjectVersion

# Objects up to this size are read in the same thread hop as their metadata and sent
# from memory; larger ones stream in READ_CHUNK pieces.
INLINE_GET_MAX = 256 << 10

# response-* query parameters and the header each one overrides.
RESPONSE_OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-language": "content-language",
    "response-expires": "expires",
    "response-cache-control": "cache-control",
    "response-content-disposition": "content-disposition",
    "response-content-encoding": "content-encoding",
}


def version_headers(ctx: Context, version_id: str | None) -> list[tuple[str, str]]:
    """x-amz-version-id, for buckets that have ever had versioning turned on."""
    if version_id and ctx.versioned:
        return [("x-amz-version-id", version_id)]
    return []


def write_conditions(ctx: Context) -> tuple[str | None, str | None]:
    """The If-Match and If-None-Match of a conditional write (PutObject, CopyObject's
    destination, CompleteMultipartUpload), in the forms AWS accepts: If-None-Match only as
    `*`, and not both together, else 501 NotImplemented (as AWS answers). In strict mode an
    If-None-Match ETag is 400 InvalidRequest, as CoreWeave documents."""
    req = ctx.request
    if_match, if_none_match = req.header("if-match"), req.header("if-none-match")
    if if_none_match is not None and if_none_match.strip() != "*":
        if ctx.node.settings.strict_coreweave:
            raise S3Error("InvalidRequest", "If-None-Match only accepts the value *.")
        raise S3Error("NotImplemented", fields={"Header": "If-None-Match"})
    if if_match is not None and if_none_match is not None:
        raise S3Error("NotImplemented", "If-Match and If-None-Match cannot be used together on a write.")
    if if_match is not None:  # comparing ETags reads the object: AWS wants s3:GetObject too
        read = ctx.op.derive("GetObject", bucket=ctx.op.bucket, key=ctx.op.key, version_id=None)
        ctx.authorize(read, ctx.bucket)
    return if_match, if_none_match


@contextmanager
def lost_races(ctx: Context) -> Iterator[None]:
    """A conditional write whose condition held when it began and failed at commit lost a
    race to a concurrent write: 412 PreconditionFailed as AWS answers it, 409
    ConditionalRequestConflict in strict mode, as CoreWeave documents."""
    try:
        yield
    except PreconditionFailed as exc:
        if exc.raced and ctx.node.settings.strict_coreweave:
            raise S3Error("ConditionalRequestConflict", fields={"Key": ctx.require_key()}) from exc
        raise


async def put_object(ctx: Context) -> S3Response:
    bucket, key = object_to_write(ctx)
    owned = write_acl(ctx)
    req = ctx.request
    headers = object_headers_from_request(req)
    sclass = storage_class(req)
    tags = tagging_header(req)
    if_match, if_none_match = write_conditions(ctx)
    spec = request_checksum(ctx)
    body, expect = request_body(ctx, spec)
    with lost_races(ctx):
        stored, obj = await ctx.node.storage.objects.write(
            bucket.name,
            key,
            body,
            expect,
            headers=headers,
            owner=owned.owner,
            acl=owned.acl,
            storage_class=sclass,
            tags=tags,
            if_match=if_match,
            if_none_match=if_none_match,
        )
    answer = response_headers(stored, spec) + version_headers(ctx, obj.version_id)
    return S3Response(200, answer + expiration_headers(ctx, obj))


def _parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """A single `bytes=` range as inclusive (start, end); None = serve the whole object.

    Malformed and multi-range headers are ignored, as S3 does; a syntactically valid but
    unsatisfiable range is InvalidRange (416) with `Content-Range: bytes */size`.
    """
    if not value:
        return None
    unit, _, spec = value.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or (first and not first.isdigit()) or (last and not last.isdigit()) or not (first or last):
        return None
    unsatisfiable = S3Error(
        "InvalidRange",
        fields={"RangeRequested": value.strip(), "ActualObjectSize": str(size)},
        headers={"content-range": f"bytes */{size}"},
    )
    if not first:  # suffix: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            raise unsatisfiable
        return max(size - n, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise unsatisfiable
    return start, min(end, size - 1)


def _part_span(obj: ObjectVersion, number: int) -> tuple[int, int]:
    """Byte span (inclusive) of part `number` of `obj`. An object not uploaded in parts is
    one part, the whole object; a number beyond the count is 416 InvalidPartNumber, as AWS
    answers it (with the number asked for and the count)."""
    count = obj.parts_count or 1
    if number > count:
        raise S3Error(
            "InvalidPartNumber",
            fields={"PartNumberRequested": str(number), "ActualPartCount": str(count)},
        )
    if obj.parts_count is None:
        return 0, obj.size - 1
    start = sum(p.size for p in obj.parts[: number - 1])
    return start, start + obj.parts[number - 1].size - 1


def _checksums_of(obj: ObjectVersion, part_number: int | None, whole: bool) -> dict[str, str]:
    """The checksum a GET or HEAD with x-amz-checksum-mode: ENABLED answers: the object's
    for the whole object; one part's for a part of a COMPOSITE multipart object (a part of
    a FULL_OBJECT one has no checksum of its own to show); none for a range."""
    composite = obj.parts_count is not None and obj.checksums.get("type") == cks.COMPOSITE
    if part_number is not None and composite:
        return {**obj.parts[part_number - 1].checksums, "type": cks.COMPOSITE}
    return dict(obj.checksums) if whole else {}


def _object_headers(ctx: Context, obj: ObjectVersion) -> list[tuple[str, str]]:
    headers = [
        ("etag", obj.etag),
        ("last-modified", http_date(obj.last_modified)),
        ("accept-ranges", "bytes"),
    ]
    stored = obj.headers
    headers.append(("content-type", stored.get("content-type") or DEFAULT_CONTENT_TYPE))
    for name in STORED_HEADERS[1:]:
        if name in stored:
            headers.append((name, stored[name]))
    headers.extend((k, v) for k, v in stored.items() if k.startswith("x-amz-meta-"))
    if obj.storage_class and obj.storage_class != "STANDARD":
        headers.append(("x-amz-storage-class", obj.storage_class))
    if obj.tags:
        headers.append(("x-amz-tagging-count", str(len(obj.tags))))
    headers += version_headers(ctx, obj.version_id)
    headers += expiration_headers(ctx, obj)
    return headers


def _apply_overrides(ctx: Context, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    query = ctx.op.query
    overrides = {header: query[param] for param, header in RESPONSE_OVERRIDES.items() if param in query}
    if not overrides:
        return headers
    if ctx.anonymous:
        raise S3Error(
            "InvalidRequest", "Request specific response headers cannot be used for anonymous GET requests."
        )
    kept = [(k, v) for k, v in headers if k not in overrides]
    return kept + list(overrides.items())


async def get_object(ctx: Context, *, head: bool = False) -> S3Response:
    bucket, key = ctx.require_bucket(), ctx.require_key()
    req, query = ctx.request, ctx.op.query
    part_number = parse_part_number(query["partNumber"]) if "partNumber" in query else None
    range_header = req.header("range")
    if part_number is not None and range_header:
        raise S3Error("InvalidRequest", "Cannot specify both Range header and partNumber query parameter.")
    objects, version_id = ctx.node.storage.objects, ctx.op.version_id

    def lookup() -> tuple[ObjectVersion, bytes | None]:
        # A small object's row and whole body come together, in one step.
        found = objects.get(bucket.name, key, version_id)
        small = None
        if not head and 0 < found.size <= INLINE_GET_MAX:
            small = objects.read_bytes(found)
        return found, small

    # On SQLite that step (an indexed read, an open and a pread from the page cache) costs
    # less than handing it to a worker thread and back, which under concurrent requests
    # doubles a small GET's CPU (context switches, GIL hand-offs); elsewhere it hops.
    obj, small = lookup() if ctx.node.db.inline_reads else await run(lookup)
    headers = _object_headers(ctx, obj)
    if check_preconditions(req, obj):
        keep = {"etag", "last-modified", "x-amz-version-id", "cache-control", "expires"}
        return S3Response(304, [(k, v) for k, v in headers if k in keep])
    headers = _apply_overrides(ctx, headers)
    status = 200
    span: tuple[int, int] | None
    if part_number is not None:
        span = _part_span(obj, part_number)
        if obj.parts_count is not None:
            headers.append(("x-amz-mp-parts-count", str(obj.parts_count)))
    else:
        span = _parse_range(range_header, obj.size)
    if (req.header("x-amz-checksum-mode") or "").upper() == "ENABLED":
        whole = span is None or (span[0] == 0 and span[1] == obj.size - 1)
        for alg, value in _checksums_of(obj, part_number, whole).items():
            if alg == "type":
                headers.append(("x-amz-checksum-type", value))
            else:
                headers.append((f"x-amz-checksum-{alg.lower()}", value))
    if (
        span is not None
        and obj.size
        and (span[0] != 0 or span[1] != obj.size - 1 or part_number is not None or range_header)
    ):
        status = 206
        headers.append(("content-range", f"bytes {span[0]}-{span[1]}/{obj.size}"))
    start, end = span if span is not None else (0, obj.size - 1)
    length = max(end - start + 1, 0)
    headers.append(("content-length", str(length)))
    if head or length == 0:
        return S3Response(status, headers, b"")
    if small is not None:
        return S3Response(status, headers, small[start : end + 1])
    body = objects.open_body(obj, start, end)
    return S3Response(status, headers, body, length=length)


async def head_object(ctx: Context) -> S3Response:
    return await get_object(ctx, head=True)


async def delete_object(ctx: Context) -> S3Response:
    bucket, key = ctx.require_bucket(), ctx.require_key()
    result = await run(ctx.node.storage.objects.delete, bucket.name, key, ctx.op.version_id)
    headers: list[tuple[str, str]] = []
    if result.delete_marker:
        headers.append(("x-amz-delete-marker", "true"))
    if result.version_id and (ctx.versioned or ctx.op.version_id):
        headers.append(("x-amz-version-id", result.version_id))
    return S3Response(204, headers)
