"""CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation and the bucket policy document.

Policies are stored here, not yet enforced: the policy engine reads them later. A policy
must at least be a JSON object, as S3 requires, or it is MalformedPolicy.
"""

from __future__ import annotations

import json

from coffer.errors import S3Error
from coffer.s3 import xml
from coffer.s3.context import Context, run
from coffer.s3.handlers.acl import check_create_bucket_headers
from coffer.s3.payload import read_small_body
from coffer.s3.responses import S3Response

MAX_CONFIG_BODY = 64 * 1024
MAX_POLICY = 20 * 1024  # S3's bucket policy size limit


async def create_bucket(ctx: Context) -> S3Response:
    key = ctx.key
    assert key is not None, "authorization refuses anonymous CreateBucket"
    name = ctx.op.bucket
    assert name is not None
    check_create_bucket_headers(ctx.request)
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
        ctx.node.storage.create_bucket, org_id=key.org_id, owner=key.principal_name, name=name, zone=zone
    )
    return S3Response(200, [("location", f"/{bucket.name}")])


async def head_bucket(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    return S3Response(200, [("x-amz-bucket-region", bucket.zone)])


async def delete_bucket(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    await run(ctx.node.storage.delete_bucket, bucket.name)
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
    raw = await read_small_body(ctx, MAX_POLICY)
    try:
        text = raw.decode("utf-8")
        document = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        raise S3Error("MalformedPolicy") from None
    if not isinstance(document, dict):
        raise S3Error("MalformedPolicy")
    await run(ctx.node.storage.update_bucket, bucket.name, policy=text)
    return S3Response(204)


async def delete_bucket_policy(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    await run(ctx.node.storage.update_bucket, bucket.name, policy=None)
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
    await run(ctx.node.storage.update_bucket, bucket.name, versioning=status)
    return S3Response(200)
