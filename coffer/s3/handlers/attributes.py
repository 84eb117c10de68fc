"""GetObjectAttributes: an object's ETag, checksum, parts, storage class and size in one call.

`x-amz-object-attributes` names what to return (ETag, Checksum, ObjectParts,
StorageClass, ObjectSize; at least one); `x-amz-max-parts` and `x-amz-part-number-marker`
page ObjectParts. As S3 answers it:
- the ETag comes without quotes (headers and listings quote it);
- a COMPOSITE checksum comes without its "-<parts>" suffix, with ChecksumType;
- ObjectParts only for a multipart object, each part with its stored checksum.
"""

from __future__ import annotations

from coffer import checksums as cks
from coffer.errors import S3Error
from coffer.s3 import xml
from coffer.s3.context import Context, run
from coffer.s3.handlers.common import parse_int
from coffer.s3.responses import S3Response, http_date
from coffer.storage.models import ObjectVersion

ATTRIBUTES = {"etag": "ETag", "checksum": "Checksum", "objectparts": "ObjectParts",
              "storageclass": "StorageClass", "objectsize": "ObjectSize"}  # fmt: skip
MAX_PARTS = 1000


def _wanted(raw: str | None) -> set[str]:
    names = [n.strip() for n in (raw or "").split(",") if n.strip()]
    if not names:
        raise S3Error(
            "InvalidArgument",
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either "
            "missing or empty",
            fields={"ArgumentName": "x-amz-object-attributes", "ArgumentValue": raw or ""},
        )
    wanted: set[str] = set()
    for name in names:
        canonical = ATTRIBUTES.get(name.lower())
        if canonical is None:
            raise S3Error(
                "InvalidArgument",
                "Invalid attribute name specified.",
                fields={"ArgumentName": "x-amz-object-attributes", "ArgumentValue": name[:64]},
            )
        wanted.add(canonical)
    return wanted


def _checksum(obj: ObjectVersion) -> list[xml.Node]:
    sums = {alg: value for alg, value in obj.checksums.items() if alg != "type"}
    nodes: list[xml.Node] = [(f"Checksum{alg}", cks.without_part_count(v)) for alg, v in sums.items()]
    if nodes:  # every checksum has a type; one stored without it covers the whole object
        nodes.append(("ChecksumType", obj.checksums.get("type") or cks.FULL_OBJECT))
    return nodes


def _parts(ctx: Context, obj: ObjectVersion) -> list[xml.Node] | None:
    count = obj.parts_count
    if count is None:
        return None
    req = ctx.request
    max_parts = parse_int(req.header("x-amz-max-parts"), "x-amz-max-parts", default=MAX_PARTS, lo=0,
                          hi=MAX_PARTS)  # fmt: skip
    marker = parse_int(req.header("x-amz-part-number-marker"), "x-amz-part-number-marker", default=0, lo=0)
    chosen = list(enumerate(obj.parts, start=1))[marker : marker + max_parts]
    truncated = marker + len(chosen) < count
    nodes: list[xml.Node] = [("PartsCount", count), ("PartNumberMarker", marker)]
    if chosen:
        nodes.append(("NextPartNumberMarker", chosen[-1][0]))
    nodes += [("MaxParts", max_parts), ("IsTruncated", truncated)]
    for number, part in chosen:
        entry: list[xml.Node] = [("PartNumber", number), ("Size", part.size)]
        entry += [(f"Checksum{alg}", v) for alg, v in part.checksums.items() if alg != "type"]
        nodes.append(("Part", entry))
    return nodes


async def get_object_attributes(ctx: Context) -> S3Response:
    bucket, key = ctx.require_bucket(), ctx.require_key()
    wanted = _wanted(ctx.request.header("x-amz-object-attributes"))
    obj = await run(ctx.node.storage.objects.get, bucket.name, key, ctx.op.version_id)
    body: list[xml.Node] = []
    if "ETag" in wanted:
        body.append(("ETag", obj.etag.strip('"')))
    if "Checksum" in wanted:
        checksum = _checksum(obj)
        if checksum:
            body.append(("Checksum", checksum))
    if "ObjectParts" in wanted:
        parts = _parts(ctx, obj)
        if parts is not None:
            body.append(("ObjectParts", parts))
    if "StorageClass" in wanted:
        body.append(("StorageClass", obj.storage_class or "STANDARD"))
    if "ObjectSize" in wanted:
        body.append(("ObjectSize", obj.size))
    response = S3Response.xml("GetObjectAttributesResponse", body)
    response.headers.append(("last-modified", http_date(obj.last_modified)))
    if ctx.versioned or ctx.op.version_id is not None:
        response.headers.append(("x-amz-version-id", obj.version_id))
    return response
