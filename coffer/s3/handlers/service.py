"""ListBuckets: the caller's organization's buckets, owner = the calling principal."""

from __future__ import annotations

import base64
import binascii

from coffer.errors import S3Error
from coffer.s3 import xml
from coffer.s3.context import Context, run
from coffer.s3.handlers.common import owner, parse_int
from coffer.s3.responses import S3Response


async def list_buckets(ctx: Context) -> S3Response:
    key = ctx.key
    assert key is not None, "authorization refuses anonymous ListBuckets"
    query = ctx.op.query
    prefix = query.get("prefix", "")
    max_buckets = parse_int(query.get("max-buckets"), "max-buckets", default=10000, lo=1, hi=10000)
    after = ""
    if "continuation-token" in query:
        try:
            after = base64.urlsafe_b64decode(query["continuation-token"].encode()).decode("utf-8")
        except (binascii.Error, ValueError):
            raise S3Error("InvalidArgument", "The continuation token provided is incorrect") from None
    region = query.get("bucket-region")
    buckets = await run(ctx.node.storage.buckets.list, key.org_id)
    chosen = [
        b
        for b in sorted(buckets, key=lambda b: b.name)
        if b.name.startswith(prefix)
        and b.name > after
        and (region is None or b.zone.lower() == region.lower())
    ]
    page, truncated = chosen[:max_buckets], len(chosen) > max_buckets
    entries: list[xml.Node] = [
        ("Bucket", [("Name", b.name), ("CreationDate", b.created_at), ("BucketRegion", b.zone)]) for b in page
    ]
    body: list[xml.Node] = [("Owner", owner(key.principal_name)), ("Buckets", entries)]
    if truncated:
        token = base64.urlsafe_b64encode(page[-1].name.encode()).decode("ascii")
        body.append(("ContinuationToken", token))
    if "prefix" in query:
        body.append(("Prefix", prefix))
    return S3Response.xml("ListAllMyBucketsResult", body)
