"""Object and bucket tagging: Put/Get/DeleteObjectTagging (version-aware) and
Put/Get/DeleteBucketTagging.

One document both ways: `<Tagging><TagSet><Tag><Key/><Value/></Tag>...</TagSet></Tagging>`.
The limits and character rules are the core's (`coffer.storage.tags`); a document that
is not that shape is MalformedXML. Tag sets come back in key order, as S3 returns them.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from coffer.errors import S3Error
from coffer.s3 import xml
from coffer.s3.context import Context, run
from coffer.s3.payload import read_small_body
from coffer.s3.responses import S3Response
from coffer.storage.tags import sorted_tags, validate_tags

MAX_BODY = 64 * 1024


def parse_tagging(raw: bytes, *, bucket: bool = False) -> dict[str, str]:
    """A <Tagging> document as a validated tag set."""
    return tags_from_element(xml.parse(raw, "Tagging"), bucket=bucket)


def tags_from_element(root: Element, *, bucket: bool = False) -> dict[str, str]:
    tag_set = xml.child(root, "TagSet")
    if tag_set is None:
        raise S3Error("MalformedXML")
    pairs: list[tuple[str, str]] = []
    for tag in xml.children(tag_set, "Tag"):
        key, value = xml.child_text(tag, "Key"), xml.child_text(tag, "Value")
        if key is None or value is None:
            raise S3Error("MalformedXML")
        pairs.append((key, value))
    return validate_tags(pairs, bucket=bucket)


def render_tagging(tags: dict[str, str] | None) -> S3Response:
    tag_nodes: list[xml.Node] = [("Tag", [("Key", k), ("Value", v)]) for k, v in sorted_tags(tags)]
    return S3Response.xml("Tagging", [("TagSet", tag_nodes)])


def _version_header(ctx: Context, version_id: str) -> list[tuple[str, str]]:
    if ctx.versioned or ctx.op.version_id is not None:
        return [("x-amz-version-id", version_id)]
    return []


async def get_object_tagging(ctx: Context) -> S3Response:
    bucket, key = ctx.require_bucket(), ctx.require_key()
    obj = await run(ctx.node.storage.objects.get, bucket.name, key, ctx.op.version_id)
    response = render_tagging(obj.tags)
    response.headers += _version_header(ctx, obj.version_id)
    return response


async def put_object_tagging(ctx: Context) -> S3Response:
    bucket, key = ctx.require_bucket(), ctx.require_key()
    tags = parse_tagging(await read_small_body(ctx, MAX_BODY))
    version = await run(ctx.node.storage.objects.set_tags, bucket.name, key, ctx.op.version_id, tags)
    return S3Response(200, _version_header(ctx, version))


async def delete_object_tagging(ctx: Context) -> S3Response:
    bucket, key = ctx.require_bucket(), ctx.require_key()
    version = await run(ctx.node.storage.objects.set_tags, bucket.name, key, ctx.op.version_id, None)
    return S3Response(204, _version_header(ctx, version))


async def get_bucket_tagging(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    if not bucket.tags:
        raise S3Error("NoSuchTagSet", fields={"BucketName": bucket.name})
    return render_tagging(bucket.tags)


async def put_bucket_tagging(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    tags = parse_tagging(await read_small_body(ctx, MAX_BODY), bucket=True)
    await run(ctx.node.storage.buckets.update, bucket.name, tags=tags or None)
    return S3Response(204)


async def delete_bucket_tagging(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    await run(ctx.node.storage.buckets.update, bucket.name, tags=None)
    return S3Response(204)
