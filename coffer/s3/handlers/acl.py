"""ACLs, Object Ownership and Object Lock headers, as a bucket with ACLs disabled answers them.

Coffer's access model is policies (organization and bucket policies), so every bucket
behaves like an S3 bucket whose Object Ownership is `BucketOwnerEnforced`:

- GetBucketAcl / GetObjectAcl answer the bucket owner's FULL_CONTROL, the only grant.
- PutBucketAcl / PutObjectAcl and the `x-amz-acl` header accept what grants nothing
  beyond that: the canned ACLs `private` and `bucket-owner-full-control`, or an
  AccessControlPolicy whose only grant is the owner's FULL_CONTROL. Everything else
  (other canned ACLs, `x-amz-grant-*`, grants to anyone else) is
  AccessControlListNotSupported (400), as S3 answers for such a bucket; CreateBucket
  answers InvalidBucketAclWithObjectOwnership. S3 itself refuses `private` here too;
  Coffer accepts it because rclone, s3cmd and older tools send it by default.
- GetBucketOwnershipControls answers BucketOwnerEnforced; PutBucketOwnershipControls
  accepts only that.
- Object Lock is not offered: its headers answer NotImplemented (501).

Public access is granted with a bucket policy (`"Principal": "*"`), never with an ACL.
"""

from __future__ import annotations

from coffer.errors import S3Error
from coffer.s3 import xml
from coffer.s3.context import Context, run
from coffer.s3.payload import read_small_body
from coffer.s3.request import S3Request
from coffer.s3.responses import XML_TYPE, S3Response
from coffer.s3.router import OBJECT_LOCK

CANNED_OK = frozenset({"private", "bucket-owner-full-control"})
OWNERSHIP = "BucketOwnerEnforced"
MAX_BODY = 64 * 1024
NO_ACLS = "The bucket does not allow ACLs"
OWNERSHIP_ONLY = (
    "Coffer buckets always use Object Ownership BucketOwnerEnforced: ACLs are disabled and access is "
    "granted with bucket and organization policies."
)
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def _refuse(create_bucket: bool) -> S3Error:
    if create_bucket:
        return S3Error("InvalidBucketAclWithObjectOwnership")
    return S3Error("AccessControlListNotSupported", NO_ACLS)


def check_acl_headers(req: S3Request, *, create_bucket: bool = False) -> None:
    """x-amz-acl other than private / bucket-owner-full-control, or any x-amz-grant-*: refused."""
    canned = req.header("x-amz-acl")
    if canned is not None and canned.strip().lower() not in CANNED_OK:
        raise _refuse(create_bucket)
    if req.headers_with_prefix("x-amz-grant-"):
        raise _refuse(create_bucket)


def check_object_lock_headers(req: S3Request) -> None:
    if req.headers_with_prefix("x-amz-object-lock-"):
        raise S3Error("NotImplemented", OBJECT_LOCK)


def check_create_bucket_headers(req: S3Request) -> None:
    """CreateBucket: no ACL grants, no Object Lock, no ownership other than BucketOwnerEnforced."""
    check_acl_headers(req, create_bucket=True)
    lock = (req.header("x-amz-bucket-object-lock-enabled") or "").strip().lower()
    if lock == "true":
        raise S3Error("NotImplemented", OBJECT_LOCK)
    ownership = req.header("x-amz-object-ownership")
    if ownership is not None and ownership.strip() != OWNERSHIP:
        raise S3Error("NotImplemented", OWNERSHIP_ONLY)


def _policy_document(owner: str) -> bytes:
    who = xml.escape(owner)
    return (
        xml.DECLARATION
        + (
            f'<AccessControlPolicy xmlns="{xml.NAMESPACE}"><Owner><ID>{who}</ID>'
            f"<DisplayName>{who}</DisplayName></Owner><AccessControlList><Grant>"
            f'<Grantee xmlns:xsi="{XSI}" xsi:type="CanonicalUser"><ID>{who}</ID>'
            f"<DisplayName>{who}</DisplayName></Grantee><Permission>FULL_CONTROL</Permission>"
            "</Grant></AccessControlList></AccessControlPolicy>"
        ).encode()
    )


async def _check_put_acl(ctx: Context, owner: str) -> None:
    """PutBucketAcl / PutObjectAcl: a canned ACL header, or a body granting only the owner."""
    req = ctx.request
    check_acl_headers(req)
    raw = await read_small_body(ctx, MAX_BODY)
    if not raw.strip():
        if req.header("x-amz-acl") is None:
            raise S3Error("MissingSecurityHeader", fields={"MissingHeaderName": "x-amz-acl"})
        return
    if req.header("x-amz-acl") is not None:
        raise S3Error("InvalidRequest", "Specifying both Canned ACLs and Header Grants is not allowed")
    try:
        root = xml.parse(raw, "AccessControlPolicy")
    except S3Error:
        raise S3Error("MalformedACLError") from None
    acl = xml.child(root, "AccessControlList")
    grants = xml.children(acl, "Grant") if acl is not None else []
    for grant in grants:
        grantee = xml.child(grant, "Grantee")
        grantee_id = xml.child_text(grantee, "ID") if grantee is not None else None
        permission = (xml.child_text(grant, "Permission") or "").strip()
        if grantee_id is None or grantee_id.strip() != owner or permission != "FULL_CONTROL":
            raise S3Error("AccessControlListNotSupported", NO_ACLS)


async def get_bucket_acl(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    return S3Response(200, [("content-type", XML_TYPE)], _policy_document(bucket.owner_principal))


async def put_bucket_acl(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    await _check_put_acl(ctx, bucket.owner_principal)
    return S3Response(200)


async def get_object_acl(ctx: Context) -> S3Response:
    bucket, key = ctx.require_bucket(), ctx.require_key()
    obj = await run(ctx.node.storage.objects.get, bucket.name, key, ctx.op.version_id)
    response = S3Response(200, [("content-type", XML_TYPE)], _policy_document(bucket.owner_principal))
    if ctx.versioned or ctx.op.version_id is not None:
        response.headers.append(("x-amz-version-id", obj.version_id))
    return response


async def put_object_acl(ctx: Context) -> S3Response:
    bucket, key = ctx.require_bucket(), ctx.require_key()
    obj = await run(ctx.node.storage.objects.get, bucket.name, key, ctx.op.version_id)
    await _check_put_acl(ctx, bucket.owner_principal)
    response = S3Response(200)
    if ctx.versioned or ctx.op.version_id is not None:
        response.headers.append(("x-amz-version-id", obj.version_id))
    return response


async def get_bucket_ownership_controls(ctx: Context) -> S3Response:
    ctx.require_bucket()
    return S3Response.xml("OwnershipControls", [("Rule", [("ObjectOwnership", OWNERSHIP)])])


async def put_bucket_ownership_controls(ctx: Context) -> S3Response:
    ctx.require_bucket()
    root = xml.parse(await read_small_body(ctx, MAX_BODY), "OwnershipControls")
    rules = xml.children(root, "Rule")
    if not rules:
        raise S3Error("MalformedXML")
    for rule in rules:
        value = (xml.child_text(rule, "ObjectOwnership") or "").strip()
        if value not in ("BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter"):
            raise S3Error("MalformedXML")
        if value != OWNERSHIP:
            raise S3Error("NotImplemented", OWNERSHIP_ONLY)
    return S3Response(200)
