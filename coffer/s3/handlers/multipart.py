"""Multipart uploads: create, upload a part, complete, abort, list parts and uploads."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from coffer import checksums as cks
from coffer.errors import S3Error
from coffer.s3 import xml
from coffer.s3.context import Context, run
from coffer.s3.handlers.acl import write_acl
from coffer.s3.handlers.common import (
    MAX_PAGE,
    checksum_nodes,
    list_args,
    object_headers_from_request,
    object_to_write,
    owner,
    parse_int,
    parse_part_number,
    refuse_unsupported_encryption,
    storage_class,
    tagging_header,
    url_encode,
)
from coffer.s3.handlers.lifecycle import expiration_headers
from coffer.s3.handlers.objects import version_headers, write_conditions
from coffer.s3.payload import read_small_body, request_body, request_checksum
from coffer.s3.responses import XML_TYPE, S3Response, error_document, keepalive_document
from coffer.storage.errors import NoSuchUpload
from coffer.storage.models import CompletedPart, Upload

MAX_COMPLETE_BODY = 4 * 1024 * 1024  # 10,000 <Part> entries with checksums fit comfortably
KEEPALIVE_AFTER = 2.0  # seconds a complete may take before the 200 starts
KEEPALIVE_EVERY = 5.0  # seconds between keep-alive spaces


async def _upload(ctx: Context) -> Upload:
    bucket, key = ctx.require_bucket(), ctx.require_key()
    return await run(ctx.node.storage.uploads.get, bucket.name, key, ctx.op.query.get("uploadId", ""))


async def create_upload(ctx: Context) -> S3Response:
    bucket, key = object_to_write(ctx)
    owned = write_acl(ctx)  # fixed now, applied by Complete
    req = ctx.request
    algorithm = req.header("x-amz-checksum-algorithm")
    if algorithm is not None:
        algorithm = algorithm.strip().upper()
        if algorithm.lower() not in cks.CHECKSUM_ALGORITHMS:
            raise S3Error("InvalidRequest", "Checksum algorithm provided is unsupported.")
    checksum_type = req.header("x-amz-checksum-type")
    if checksum_type is not None:
        checksum_type = checksum_type.strip().upper()
        if checksum_type not in cks.CHECKSUM_TYPES:
            raise S3Error("InvalidRequest", "Value for x-amz-checksum-type header is invalid.")
        if algorithm is None:
            raise S3Error(
                "InvalidRequest",
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.",
            )
    upload = await run(
        ctx.node.storage.uploads.create,
        bucket.name,
        key,
        owner=ctx.principal,
        acl=owned.for_upload(),
        headers=object_headers_from_request(req),
        storage_class=storage_class(req),
        checksum_algorithm=algorithm,
        checksum_type=checksum_type,
        tags=tagging_header(req),
    )
    response = S3Response.xml(
        "InitiateMultipartUploadResult",
        [("Bucket", bucket.name), ("Key", key), ("UploadId", upload.upload_id)],
    )
    if upload.checksum_algorithm:
        response.headers.append(("x-amz-checksum-algorithm", upload.checksum_algorithm))
    if upload.checksum_type:
        response.headers.append(("x-amz-checksum-type", upload.checksum_type))
    return response


async def upload_part(ctx: Context) -> S3Response:
    number = parse_part_number(ctx.op.query.get("partNumber"))
    refuse_unsupported_encryption(ctx.request)
    upload = await _upload(ctx)
    spec = request_checksum(ctx)
    expected = (upload.checksum_algorithm or "").lower()
    if expected and spec.algorithm and spec.algorithm != expected:
        raise S3Error(
            "InvalidRequest",
            f"Checksum Type mismatch occurred, expected checksum Type: {expected}, "
            f"actual checksum Type: {spec.algorithm}",
        )
    if expected and not spec.algorithm:
        spec.algorithm = expected
    body, expect = request_body(ctx, spec)
    record = bool(spec.requested or expected)
    stored, part = await ctx.node.storage.uploads.write_part(
        upload, number, body, expect, record_checksum=record
    )
    headers = [("etag", part.etag)]
    if spec.algorithm and (spec.requested or expected):
        headers.append((spec.header, stored.checksums[spec.s3_name]))
    return S3Response(200, headers)


def _completed_parts(raw: bytes) -> list[CompletedPart]:
    root = xml.parse(raw, "CompleteMultipartUpload")
    parts: list[CompletedPart] = []
    for element in xml.children(root, "Part"):
        number_text = xml.child_text(element, "PartNumber")
        etag = xml.child_text(element, "ETag")
        if number_text is None or etag is None:
            raise S3Error("MalformedXML")
        try:
            number = int(number_text.strip())
        except ValueError:
            raise S3Error("MalformedXML") from None
        sums = {}
        for alg in cks.CHECKSUM_ALGORITHMS:
            name = cks.display_name(alg)
            value = xml.child_text(element, f"Checksum{name}")
            if value is not None:
                sums[name] = value.strip()
        parts.append(CompletedPart(part_number=number, etag=etag.strip(), checksums=sums))
    if not parts:
        raise S3Error("MalformedXML")
    return parts


def _object_checksum(ctx: Context, upload: Upload) -> tuple[str, str] | None:
    """The whole object's checksum a CompleteMultipartUpload declares (x-amz-checksum-<alg>,
    with x-amz-checksum-type): it must name the upload's algorithm and type; the core
    compares it with the checksum it derives from the parts."""
    req = ctx.request
    ctype = req.header("x-amz-checksum-type")
    if ctype is not None:
        ctype = ctype.strip().upper()
        if ctype not in cks.CHECKSUM_TYPES:
            raise S3Error("InvalidRequest", "Value for x-amz-checksum-type header is invalid.")
        if ctype != (upload.checksum_type or ctype):
            raise S3Error(
                "InvalidRequest",
                f"The upload was created using the {upload.checksum_type} checksum mode. The complete "
                "request must use the same checksum mode.",
            )
    present = [
        (name[len("x-amz-checksum-") :], value)
        for name, value in req.headers_with_prefix("x-amz-checksum-").items()
        if name not in ("x-amz-checksum-type", "x-amz-checksum-mode", "x-amz-checksum-algorithm")
    ]
    if not present:
        return None
    if len(present) > 1:
        raise S3Error(
            "InvalidRequest",
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        )
    alg, value = present[0]
    if alg not in cks.CHECKSUM_ALGORITHMS:
        raise S3Error(
            "InvalidRequest", f"The algorithm type you specified in x-amz-checksum-{alg} is invalid."
        )
    expected = (upload.checksum_algorithm or "").lower()
    if alg != expected:
        raise S3Error(
            "InvalidRequest",
            f"Checksum Type mismatch occurred, expected checksum Type: {expected or 'null'}, "
            f"actual checksum Type: {alg}",
        )
    return cks.display_name(alg), value.strip()


@dataclass(frozen=True)
class Completed:
    """What CompleteMultipartUploadResult reports of the object a completion made."""

    etag: str
    version_id: str
    checksums: dict[str, str]
    expiration: tuple[tuple[str, str], ...] = ()  # x-amz-expiration, when a rule will expire it


async def complete_upload(ctx: Context) -> S3Response:
    """Answer at once when the core is quick; otherwise start a 200 and keep the
    connection alive with whitespace until the object is assembled (as S3 does)."""
    bucket, key = ctx.require_bucket(), ctx.require_key()
    req = ctx.request
    if_match, if_none_match = write_conditions(ctx)
    uploads, upload_id = ctx.node.storage.uploads, ctx.op.query.get("uploadId", "")
    try:
        upload: Upload | None = await _upload(ctx)
    except NoSuchUpload:
        upload = None  # completed already? a retry with the same parts answers as the first
    expected = _object_checksum(ctx, upload) if upload is not None else None
    size_header = req.header("x-amz-mp-object-size")
    expected_size = parse_int(size_header, "x-amz-mp-object-size", default=-1, lo=0) if size_header else None
    parts = _completed_parts(await read_small_body(ctx, MAX_COMPLETE_BODY, checksum_headers=False))

    def finish() -> Completed:
        if upload is not None:
            try:
                obj = uploads.complete(
                    upload,
                    parts,
                    if_match=if_match,
                    if_none_match=if_none_match,
                    expected_checksum=expected,
                    expected_size=expected_size,
                )
                return Completed(obj.etag, obj.version_id, obj.checksums, tuple(expiration_headers(ctx, obj)))
            except NoSuchUpload:
                pass  # a concurrent request completed it first
        done = uploads.replay(bucket.name, key, upload_id, parts)
        return Completed(done.etag, done.version_id, {})  # AWS repeats no checksum

    task = asyncio.ensure_future(run(finish))
    location = f"{req.scheme}://{req.host or 'localhost'}/{bucket.name}/{key}"

    def render(obj: Completed) -> bytes:
        body: list[xml.Node] = [
            ("Location", location),
            ("Bucket", bucket.name),
            ("Key", key),
            ("ETag", obj.etag),
        ]
        body += checksum_nodes(obj.checksums)
        return xml.render("CompleteMultipartUploadResult", body)

    done, _ = await asyncio.wait({task}, timeout=KEEPALIVE_AFTER)
    if not done:
        resource = req.resource

        def render_error(err: S3Error) -> bytes:
            return error_document(err, resource=resource, request_id=req.request_id, host_id=req.host_id)

        stream = keepalive_document(task, render, render_error, every=KEEPALIVE_EVERY)
        return S3Response(200, [("content-type", XML_TYPE)], stream)
    obj = task.result()
    response = S3Response(200, [("content-type", XML_TYPE)], render(obj))
    response.headers += version_headers(ctx, obj.version_id) + list(obj.expiration)
    return response


async def abort_upload(ctx: Context) -> S3Response:
    upload = await _upload(ctx)
    await run(ctx.node.storage.uploads.abort, upload)
    return S3Response(204)


async def list_parts(ctx: Context) -> S3Response:
    bucket, key = ctx.require_bucket(), ctx.require_key()
    query = ctx.op.query
    max_parts = parse_int(query.get("max-parts"), "max-parts", default=MAX_PAGE, lo=0, hi=MAX_PAGE)
    marker = parse_int(query.get("part-number-marker"), "part-number-marker", default=0, lo=0)
    upload = await _upload(ctx)
    listing = await run(ctx.node.storage.uploads.list_parts, upload, marker=marker, max_parts=max_parts)
    body: list[xml.Node] = [
        ("Bucket", bucket.name),
        ("Key", key),
        ("UploadId", upload.upload_id),
        ("Initiator", owner(upload.owner_principal)),
        ("Owner", owner(upload.owner_principal)),
        ("StorageClass", upload.storage_class or "STANDARD"),
        ("PartNumberMarker", marker),
    ]
    if listing.next_part_number_marker is not None:
        body.append(("NextPartNumberMarker", listing.next_part_number_marker))
    body += [("MaxParts", max_parts), ("IsTruncated", listing.is_truncated)]
    if upload.checksum_algorithm:
        body.append(("ChecksumAlgorithm", upload.checksum_algorithm))
    if upload.checksum_type:
        body.append(("ChecksumType", upload.checksum_type))
    for part in listing.parts:
        entry: list[xml.Node] = [
            ("PartNumber", part.part_number),
            ("LastModified", part.last_modified),
            ("ETag", part.etag),
            ("Size", part.size),
        ]
        entry += [(f"Checksum{alg}", value) for alg, value in part.checksums.items() if alg != "type"]
        body.append(("Part", entry))
    return S3Response.xml("ListPartsResult", body)


async def list_uploads(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    query = ctx.op.query
    args = list_args(query, "max-uploads")
    encode, prefix, delimiter, max_uploads = args.encode, args.prefix, args.delimiter, args.max_items
    key_marker, id_marker = query.get("key-marker", ""), query.get("upload-id-marker", "")
    listing = await run(
        ctx.node.storage.uploads.list,
        bucket.name,
        prefix=prefix,
        delimiter=delimiter,
        key_marker=key_marker,
        upload_id_marker=id_marker if key_marker else "",
        max_uploads=max_uploads,
    )
    body: list[xml.Node] = [  # a None value leaves its element out
        ("Bucket", bucket.name),
        ("KeyMarker", url_encode(key_marker, encode)),
        ("UploadIdMarker", id_marker),
        ("NextKeyMarker", url_encode(listing.next_key_marker, encode)),
        ("NextUploadIdMarker", listing.next_upload_id_marker),
        ("Delimiter", url_encode(delimiter or None, encode)),
        ("Prefix", url_encode(prefix, encode)),
        ("MaxUploads", max_uploads),
        ("IsTruncated", listing.is_truncated),
        ("EncodingType", "url" if encode else None),
    ]
    for up in listing.uploads:
        entry: list[xml.Node] = [
            ("Key", url_encode(up.key, encode)),
            ("UploadId", up.upload_id),
            ("Initiator", owner(up.owner_principal)),
            ("Owner", owner(up.owner_principal)),
            ("StorageClass", up.storage_class or "STANDARD"),
            ("Initiated", up.initiated),
        ]
        if up.checksum_algorithm:
            entry.append(("ChecksumAlgorithm", up.checksum_algorithm))
        if up.checksum_type:
            entry.append(("ChecksumType", up.checksum_type))
        body.append(("Upload", entry))
    for p in listing.common_prefixes:
        body.append(("CommonPrefixes", [("Prefix", url_encode(p, encode))]))
    return S3Response.xml("ListMultipartUploadsResult", body)
