"""CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation and the bucket policy document.

A bucket policy is validated as S3 validates it (`coffer.policy.parse_bucket_policy`: a
bad one is MalformedPolicy with the reason) and stored as sent; the one authorization
door enforces it from the next request on.
"""

from __future__ import annotations

from coffer.errors import S3Error
from coffer.policy import MalformedPolicy, parse_bucket_policy
from coffer.s3 import xml
from coffer.s3.context import Context, run
from coffer.s3.errors import from_policy
from coffer.s3.handlers.acl import access_of, bucket_settings
from coffer.s3.payload import read_small_body
from coffer.s3.responses import S3Response

MAX_CONFIG_BODY = 64 * 1024


async def create_bucket(ctx: Context) -> S3Response:
    key = ctx.key
    assert key is not None, "authorization refuses anonymous CreateBucket"
    name = ctx.op.bucket
    assert name is not None
    settings = bucket_settings(ctx)  # ownership, ACL, Block Public Access (handlers/acl.py)
    raw = await read_small_body(ctx, MAX_CONFIG_BODY)
    zone: str | None = None
    if raw.strip():
        root = xml.parse(raw, "CreateBucketConfiguration")
        zone = xml.child_text(root, "LocationConstraint")
        if zone is not None:
            zone = zone.strip() or None
    if zone is None and ctx.node.settings.strict_coreweave:
        raise S3Error(
            "InvalidLocationConstraint",
            "A LocationConstraint naming an availability zone is required on every CreateBucket request.",
        )
    bucket = await run(
        ctx.node.storage.buckets.create,
        org_id=key.org_id,
        owner=key.principal_name,
        name=name,
        zone=zone,
        settings=settings,
    )
    return S3Response(200, [("location", f"/{bucket.name}")])


async def head_bucket(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    return S3Response(200, [("x-amz-bucket-region", bucket.zone)])


async def delete_bucket(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    await run(ctx.node.storage.buckets.delete, bucket.name)
    return S3Response(204)


async def get_bucket_location(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    return S3Response.xml("LocationConstraint", bucket.zone)


async def get_bucket_policy(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    if not bucket.policy:
        raise S3Error("NoSuchBucketPolicy", fields={"BucketName": bucket.name})
    return S3Response(200, [("content-type", "application/json")], bucket.policy.encode("utf-8"))


async def put_bucket_policy(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    # Read a little past the 20 KB limit so an oversized policy gets the parser's reason.
    raw = await read_small_body(ctx, MAX_CONFIG_BODY)
    try:
        policy = parse_bucket_policy(raw, bucket.name)
    except MalformedPolicy as exc:
        raise from_policy(exc) from None
    if access_of(ctx, bucket).pab.block_public_policy and policy.compile().public:
        raise S3Error("AccessDenied")  # Block Public Access: BlockPublicPolicy, as in AWS
    await run(ctx.node.storage.buckets.update, bucket.name, policy=policy.text)
    return S3Response(204)


async def delete_bucket_policy(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    await run(ctx.node.storage.buckets.update, bucket.name, policy=None)
    return S3Response(204)


async def get_bucket_versioning(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    status: list[xml.Node] = [("Status", bucket.versioning)] if bucket.versioning else []
    return S3Response.xml("VersioningConfiguration", status)


async def put_bucket_versioning(ctx: Context) -> S3Response:
    """Enabled or Suspended; MFA delete is not offered (no MFA devices in Coffer)."""
    bucket = ctx.require_bucket()
    root = xml.parse(await read_small_body(ctx, MAX_CONFIG_BODY), "VersioningConfiguration")
    status = (xml.child_text(root, "Status") or "").strip()
    if status not in ("Enabled", "Suspended"):
        raise S3Error("MalformedXML")
    if (xml.child_text(root, "MfaDelete") or "Disabled").strip() != "Disabled":
        raise S3Error("NotImplemented", "MFA delete is not supported.")
    await run(ctx.node.storage.buckets.update, bucket.name, versioning=status)
    return S3Response(200)
