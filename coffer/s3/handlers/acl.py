"""ACLs, Object Ownership, Block Public Access, and the Object Lock headers Coffer refuses.

A bucket's Object Ownership (`x-amz-object-ownership` on CreateBucket, the setting
`default_object_ownership` otherwise, Put/Get/DeleteBucketOwnershipControls) says whether
it has ACLs (coffer/policy/acl.py holds the model; decision 0130 the choices):

- BucketOwnerEnforced (the default, and every bucket in strict CoreWeave mode): ACLs off,
  as AWS answers for such a bucket. Get*Acl answer the bucket owner's FULL_CONTROL, the
  only grant; Put*Acl and the `x-amz-acl` header accept only what grants nothing beyond it
  (`private`, `bucket-owner-full-control`, or a document granting the owner FULL_CONTROL);
  everything else is AccessControlListNotSupported (400), and on CreateBucket
  InvalidBucketAclWithObjectOwnership. (AWS refuses `private` too; Coffer accepts it
  because rclone, s3cmd and older tools send it by default.) The bucket owner owns every
  object.
- ObjectWriter, BucketOwnerPreferred, or no ownership controls at all (deleted): ACLs on.
  CreateBucket, PutObject, CopyObject (for its destination), CreateMultipartUpload (for the
  object Complete makes), PutBucketAcl and PutObjectAcl take a canned ACL (`x-amz-acl`),
  explicit grants (`x-amz-grant-*`) or, for the Put*Acl calls, an AccessControlPolicy
  document; the decision counts its grants as one more Allow where bucket policies are.

Block Public Access (Put/Get/DeletePublicAccessBlock) refuses writes of public ACLs
(BlockPublicAcls: AccessDenied) and public bucket policies (BlockPublicPolicy), and tells the
decision to skip public grants (IgnorePublicAcls) and to keep other organizations out of a
bucket with a public policy (RestrictPublicBuckets). GetBucketPolicyStatus says whether the
bucket policy is public. In strict mode these calls answer NotImplemented, as before.

Object Lock is not offered: its headers answer NotImplemented (501).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

from coffer.errors import S3Error
from coffer.limits import MAX_ACL_GRANTS
from coffer.policy.acl import (
    ACL_KEY,
    ANONYMOUS_OWNER,
    CANNED_ACLS,
    DEFAULT_PUBLIC_ACCESS_BLOCK,
    GROUPS,
    OWNERSHIP_KEY,
    PUBLIC_ACCESS_BLOCK_KEY,
    Acl,
    BucketAccess,
    Grant,
    Ownership,
    Permission,
    PublicAccessBlock,
    bucket_access,
    canned,
    canonical_id,
    make_acl,
    normalize_canonical_id,
    object_owner,
    private,
)
from coffer.policy.principals import PrincipalError
from coffer.s3 import xml
from coffer.s3.context import Context, run
from coffer.s3.formdata import split_unquoted
from coffer.s3.payload import read_small_body
from coffer.s3.request import S3Request
from coffer.s3.responses import XML_TYPE, S3Response
from coffer.s3.router import OBJECT_LOCK
from coffer.storage.models import Bucket

CANNED_OK = frozenset({"private", "bucket-owner-full-control"})  # what a bucket with ACLs off accepts
MAX_BODY = 64 * 1024
NO_ACLS = "The bucket does not allow ACLs"
OWNERSHIP_ONLY = (
    "Coffer buckets always use Object Ownership BucketOwnerEnforced in strict CoreWeave mode: ACLs are "
    "disabled and access is granted with bucket and organization policies."
)
STRICT_ONLY = "{operation} is not offered in strict CoreWeave mode, where every bucket has ACLs disabled."
BOTH = "Specifying both Canned ACLs and Header Grants is not allowed"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
_XSI_TYPE = f"{{{XSI}}}type"
GRANT_HEADERS: tuple[tuple[str, Permission], ...] = (
    ("x-amz-grant-read", Permission.READ),
    ("x-amz-grant-write", Permission.WRITE),
    ("x-amz-grant-read-acp", Permission.READ_ACP),
    ("x-amz-grant-write-acp", Permission.WRITE_ACP),
    ("x-amz-grant-full-control", Permission.FULL_CONTROL),
)


# --- a bucket's ownership and public access block -------------------------------------------
def access_of(ctx: Context, bucket: Bucket) -> BucketAccess:
    """The bucket's ownership, ACL and Block Public Access as this node applies them."""
    return bucket_access(bucket.settings, bucket.owner_principal, strict=ctx.node.settings.strict_coreweave)


def _strict(ctx: Context) -> None:
    """Calls strict mode answers NotImplemented, as Coffer did before it had ACLs."""
    if ctx.node.settings.strict_coreweave:
        raise S3Error("NotImplemented", STRICT_ONLY.format(operation=ctx.op.name))


def _refuse_public(acl: Acl, access: BucketAccess) -> None:
    """BlockPublicAcls: a call that would store a public ACL is AccessDenied, as in AWS."""
    if acl.public and access.pab.block_public_acls:
        raise S3Error("AccessDenied")


async def _merge(ctx: Context, section: str, change: Callable[[Mapping[str, Any]], Any]) -> None:
    """Set one key of the bucket's settings in one transaction; the other keys stay."""
    await run(ctx.node.storage.buckets.merge_settings, ctx.require_bucket().name, section, change)


# --- what a request asks for --------------------------------------------------------------------
@dataclass(frozen=True)
class Requested:
    """An ACL as a request gives it: a canned name, or explicit grants (headers or a body)."""

    canned: str | None = None
    grants: tuple[Grant, ...] | None = None
    from_body: bool = False
    owner: str | None = None  # the document's Owner ID, normalized ("" when not one)

    def acl(self, owner: str, bucket_owner: str) -> Acl:
        if self.grants is not None:
            return make_acl(owner, self.grants)
        return canned(self.canned or "private", owner, bucket_owner)


def _argument(message: str, name: str, value: str) -> S3Error:
    return S3Error("InvalidArgument", message, fields={"ArgumentName": name, "ArgumentValue": value[:256]})


def _grant(kind: str, target: str, permission: Permission, bucket_org: str, where: str) -> Grant:
    """One grantee: `id` (a canonical ID), `uri` (a group) or `emailAddress` (refused)."""
    if kind == "emailaddress":
        raise S3Error("UnresolvableGrantByEmailAddress", fields={"EmailAddress": target[:256]})
    if kind == "uri":
        if target not in GROUPS:
            raise _argument("Invalid group uri", where, target)
        return Grant(permission, uri=target)
    if kind == "id":
        try:
            return Grant(permission, id=normalize_canonical_id(target, bucket_org))
        except PrincipalError:
            raise _argument("Invalid id", where, target) from None
    raise _argument("Argument format not recognized", where, target)


def _grantees(value: str, header: str) -> list[tuple[str, str]]:
    """`id="...", uri="..."`: (type, value) pairs; values may be quoted (commas inside kept)."""
    parts, quoted = split_unquoted(value, ",", escapes=False)
    out = []
    for part in parts:
        kind, sep, target = part.partition("=")
        target = target.strip()
        if len(target) >= 2 and target[0] == target[-1] == '"':
            target = target[1:-1]
        if quoted or not sep or not kind.strip() or not target:
            raise _argument("Argument format not recognized", header, value)
        out.append((kind.strip().lower(), target))
    return out


def _header_grants(req: S3Request, bucket_org: str) -> tuple[Grant, ...] | None:
    """The x-amz-grant-* headers' grants; None when there are none."""
    grants: list[Grant] = []
    seen = False
    for header, permission in GRANT_HEADERS:
        value = req.header(header)
        if value is None:
            continue
        seen = True
        grants += (_grant(k, t, permission, bucket_org, header) for k, t in _grantees(value, header))
    if len(grants) > MAX_ACL_GRANTS:
        raise S3Error("MalformedACLError", f"An ACL may hold at most {MAX_ACL_GRANTS} grants.")
    return tuple(grants) if seen else None


def requested_headers(req: S3Request, bucket_org: str) -> Requested | None:
    """The ACL the headers of a write ask for (x-amz-acl or x-amz-grant-*); None for neither."""
    name = req.header("x-amz-acl")
    grants = _header_grants(req, bucket_org)
    if name is not None and grants is not None:
        raise S3Error("InvalidRequest", BOTH)
    if name is not None:
        name = name.strip().lower()
        if name not in CANNED_ACLS:
            raise _argument("Invalid canned ACL", "x-amz-acl", name)
        return Requested(canned=name)
    return Requested(grants=grants) if grants is not None else None


def _document_grants(raw: bytes, bucket_org: str) -> Requested:
    """An AccessControlPolicy document; MalformedACLError when it is not one."""
    try:
        root = xml.parse(raw, "AccessControlPolicy")
    except S3Error:
        raise S3Error("MalformedACLError") from None
    owner_element = xml.child(root, "Owner")
    owner = None
    if owner_element is not None:
        owner = (xml.child_text(owner_element, "ID") or "").strip()
        try:
            owner = normalize_canonical_id(owner, bucket_org)
        except PrincipalError:
            owner = ""  # names no principal, so no resource's owner
    listed = xml.child(root, "AccessControlList")
    entries = xml.children(listed, "Grant") if listed is not None else []
    if len(entries) > MAX_ACL_GRANTS:
        raise S3Error("MalformedACLError", f"An ACL may hold at most {MAX_ACL_GRANTS} grants.")
    grants = tuple(_document_grant(entry, bucket_org) for entry in entries)
    return Requested(grants=grants, from_body=True, owner=owner)


def _document_grant(entry: Element, bucket_org: str) -> Grant:
    grantee = xml.child(entry, "Grantee")
    try:
        permission = Permission((xml.child_text(entry, "Permission") or "").strip())
    except ValueError:
        raise S3Error("MalformedACLError") from None
    if grantee is None:
        raise S3Error("MalformedACLError")
    email = xml.child_text(grantee, "EmailAddress")
    if email is not None or grantee.get(_XSI_TYPE) == "AmazonCustomerByEmail":
        return _grant("emailaddress", (email or "").strip(), permission, bucket_org, "EmailAddress")
    for kind, tag in (("id", "ID"), ("uri", "URI")):
        text = xml.child_text(grantee, tag)
        if text is not None:
            return _grant(kind, text.strip(), permission, bucket_org, tag)
    raise S3Error("MalformedACLError")


async def requested_put(ctx: Context, bucket_org: str) -> Requested:
    """What PutBucketAcl / PutObjectAcl ask for: one of x-amz-acl, x-amz-grant-* or a document."""
    req = ctx.request
    from_headers = requested_headers(req, bucket_org)
    raw = await read_small_body(ctx, MAX_BODY)
    if not raw.strip():
        if from_headers is None:
            raise S3Error("MissingSecurityHeader", fields={"MissingHeaderName": "x-amz-acl"})
        return from_headers
    if from_headers is not None:
        raise S3Error("InvalidRequest", BOTH)
    return _document_grants(raw, bucket_org)


def _owner_only(requested: Requested, owner: str) -> None:
    """With ACLs off: nothing beyond the owner's FULL_CONTROL (see the module docstring)."""
    if requested.canned is not None and requested.canned not in CANNED_OK:
        raise S3Error("AccessControlListNotSupported", NO_ACLS)
    if requested.grants is None:
        return
    if not requested.from_body or any(
        g.id != owner or g.permission is not Permission.FULL_CONTROL for g in requested.grants
    ):
        raise S3Error("AccessControlListNotSupported", NO_ACLS)


def check_acl_headers(req: S3Request, *, create_bucket: bool = False) -> None:
    """ACLs off: x-amz-acl other than private / bucket-owner-full-control, or any
    x-amz-grant-*, is refused (before anything else about the ACL is looked at)."""
    name = req.header("x-amz-acl")
    grants = req.headers_with_prefix("x-amz-grant-")
    if (name is not None and name.strip().lower() not in CANNED_OK) or grants:
        if create_bucket:
            raise S3Error("InvalidBucketAclWithObjectOwnership")
        raise S3Error("AccessControlListNotSupported", NO_ACLS)


def check_object_lock_headers(req: S3Request) -> None:
    if req.headers_with_prefix("x-amz-object-lock-"):
        raise S3Error("NotImplemented", OBJECT_LOCK)


# --- writes: who owns the new object, and its ACL -----------------------------------------------
@dataclass(frozen=True)
class Owned:
    """The owner and ACL a write gives its object (`acl` None: ACLs off)."""

    owner: str
    acl: dict[str, Any] | None

    def for_upload(self) -> dict[str, Any]:
        """What a multipart upload records for its object (Uploads.create's `acl`)."""
        return self.acl if self.acl is not None else {"owner": self.owner}


def write_acl(ctx: Context) -> Owned:
    """PutObject, CopyObject (the destination) and CreateMultipartUpload: the new object's
    owner per the bucket's ownership, and its ACL from x-amz-acl / x-amz-grant-* (private
    when neither). AccessControlListNotSupported with ACLs off (see `check_acl_headers`),
    AccessDenied for a public ACL under BlockPublicAcls."""
    bucket, req = ctx.require_bucket(), ctx.request
    access = access_of(ctx, bucket)
    if not access.acls_enabled:
        check_acl_headers(req)
        return Owned(bucket.owner_principal, None)
    requested = requested_headers(req, bucket.org_id)
    key = ctx.key
    writer = ANONYMOUS_OWNER if key is None else canonical_id(key.principal_name, key.org_id, bucket.org_id)
    name = requested.canned if requested is not None else None
    owner = object_owner(access.ownership, bucket.owner_principal, writer, name)
    acl = requested.acl(owner, bucket.owner_principal) if requested else private(owner)
    _refuse_public(acl, access)
    if any(g.id not in (owner, bucket.owner_principal) for g in acl.grants):
        # Granting anyone else anything is setting an ACL: as in AWS, the write needs
        # s3:PutObjectAcl too, or s3:PutObject alone would hand out what PutObjectAcl guards.
        grant = ctx.op.derive("PutObjectAcl", bucket=bucket.name, key=ctx.op.key, version_id=None)
        ctx.authorize(grant, bucket)
    return Owned(owner, acl.to_json())


def bucket_settings(ctx: Context) -> dict[str, Any]:
    """CreateBucket: the new bucket's ownership, its Block Public Access (all of AWS's ACL half
    on: DEFAULT_PUBLIC_ACCESS_BLOCK) and its ACL, from the request's headers. In strict mode
    nothing beyond what Coffer always accepted (BucketOwnerEnforced, no ACL grants)."""
    req = ctx.request
    if (req.header("x-amz-bucket-object-lock-enabled") or "").strip().lower() == "true":
        raise S3Error("NotImplemented", OBJECT_LOCK)
    raw = req.header("x-amz-object-ownership")
    if ctx.node.settings.strict_coreweave:
        check_acl_headers(req, create_bucket=True)
        if raw is not None and raw.strip() != Ownership.BUCKET_OWNER_ENFORCED:
            raise S3Error("NotImplemented", OWNERSHIP_ONLY)
        return {}
    try:
        ownership = Ownership(raw.strip() if raw is not None else ctx.node.settings.default_object_ownership)
    except ValueError:
        header = "x-amz-object-ownership"
        raise _argument(f"Invalid {header} header", header, raw or "") from None
    settings: dict[str, Any] = {
        OWNERSHIP_KEY: ownership.value,
        PUBLIC_ACCESS_BLOCK_KEY: DEFAULT_PUBLIC_ACCESS_BLOCK.to_json(),
    }
    if ownership is Ownership.BUCKET_OWNER_ENFORCED:
        check_acl_headers(req, create_bucket=True)
        return settings
    key = ctx.key
    assert key is not None, "authorization refuses anonymous CreateBucket"
    requested = requested_headers(req, key.org_id)
    if requested is not None:
        acl = requested.acl(key.principal_name, key.principal_name)
        if acl.public and DEFAULT_PUBLIC_ACCESS_BLOCK.block_public_acls:
            raise S3Error("AccessDenied")
        settings[ACL_KEY] = acl.to_json()
    return settings


# --- Get/Put Bucket and Object ACLs ---------------------------------------------------------------
def _grantee_xml(grant: Grant) -> str:
    if grant.uri is not None:
        return f'<Grantee xmlns:xsi="{XSI}" xsi:type="Group"><URI>{xml.escape(grant.uri)}</URI></Grantee>'
    who = xml.escape(grant.id or "")
    return (
        f'<Grantee xmlns:xsi="{XSI}" xsi:type="CanonicalUser"><ID>{who}</ID>'
        f"<DisplayName>{who}</DisplayName></Grantee>"
    )


def _policy_document(acl: Acl) -> S3Response:
    owner = xml.escape(acl.owner)
    grants = "".join(
        f"<Grant>{_grantee_xml(g)}<Permission>{g.permission.value}</Permission></Grant>" for g in acl.grants
    )
    body = (
        f'<AccessControlPolicy xmlns="{xml.NAMESPACE}"><Owner><ID>{owner}</ID>'
        f"<DisplayName>{owner}</DisplayName></Owner><AccessControlList>{grants}</AccessControlList>"
        "</AccessControlPolicy>"
    )
    return S3Response(200, [("content-type", XML_TYPE)], xml.DECLARATION + body.encode())


def _version_header(ctx: Context, response: S3Response, version_id: str) -> S3Response:
    if ctx.versioned or ctx.op.version_id is not None:
        response.headers.append(("x-amz-version-id", version_id))
    return response


async def get_bucket_acl(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    access = access_of(ctx, bucket)
    return _policy_document(access.acl if access.acls_enabled else private(bucket.owner_principal))


async def put_bucket_acl(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    owner = bucket.owner_principal
    access = access_of(ctx, bucket)
    if not access.acls_enabled:
        check_acl_headers(ctx.request)
        _owner_only(await requested_put(ctx, bucket.org_id), owner)
        return S3Response(200)
    requested = await requested_put(ctx, bucket.org_id)
    if requested.owner not in (None, owner):
        raise S3Error("AccessDenied")
    acl = requested.acl(owner, owner)

    def change(current: Mapping[str, Any]) -> dict[str, Any]:
        now = bucket_access(current, owner)  # as committed: ownership may have moved meanwhile
        if not now.acls_enabled:
            raise S3Error("AccessControlListNotSupported", NO_ACLS)
        _refuse_public(acl, now)
        return acl.to_json()

    await _merge(ctx, ACL_KEY, change)
    return S3Response(200)


async def get_object_acl(ctx: Context) -> S3Response:
    bucket, key = ctx.require_bucket(), ctx.require_key()
    obj = await run(ctx.node.storage.objects.get, bucket.name, key, ctx.op.version_id)
    acl = private(bucket.owner_principal)
    if obj.acl and access_of(ctx, bucket).acls_enabled:
        acl = Acl.from_json(obj.acl)
    return _version_header(ctx, _policy_document(acl), obj.version_id)


async def put_object_acl(ctx: Context) -> S3Response:
    bucket, key = ctx.require_bucket(), ctx.require_key()
    access = access_of(ctx, bucket)
    if not access.acls_enabled:
        obj = await run(ctx.node.storage.objects.get, bucket.name, key, ctx.op.version_id)
        check_acl_headers(ctx.request)
        _owner_only(await requested_put(ctx, bucket.org_id), bucket.owner_principal)
        return _version_header(ctx, S3Response(200), obj.version_id)
    requested = await requested_put(ctx, bucket.org_id)

    def change(_owner: str, current: dict[str, Any] | None) -> dict[str, Any]:
        # An object written while ACLs were off is the bucket owner's.
        owner = Acl.from_json(current).owner if current else bucket.owner_principal
        if requested.owner not in (None, owner):
            raise S3Error("AccessDenied")
        acl = requested.acl(owner, bucket.owner_principal)
        _refuse_public(acl, access)
        return acl.to_json()

    version_id = await run(ctx.node.storage.objects.set_acl, bucket.name, key, ctx.op.version_id, change)
    return _version_header(ctx, S3Response(200), version_id)


# --- Object Ownership ------------------------------------------------------------------------------
async def get_bucket_ownership_controls(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    ownership = access_of(ctx, bucket).ownership
    if ownership is None:
        raise S3Error("OwnershipControlsNotFoundError", fields={"BucketName": bucket.name})
    return S3Response.xml("OwnershipControls", [("Rule", [("ObjectOwnership", ownership.value)])])


async def put_bucket_ownership_controls(ctx: Context) -> S3Response:
    """One rule. Moving to BucketOwnerEnforced needs a bucket ACL that grants no one but the
    owner (InvalidBucketAclWithObjectOwnership otherwise), as in AWS; objects' ACLs are kept
    but no longer count, and every object is the bucket owner's while it lasts."""
    bucket = ctx.require_bucket()
    root = xml.parse(await read_small_body(ctx, MAX_BODY), "OwnershipControls")
    rules = xml.children(root, "Rule")
    if len(rules) != 1:
        raise S3Error("MalformedXML")
    try:
        ownership = Ownership((xml.child_text(rules[0], "ObjectOwnership") or "").strip())
    except ValueError:
        raise S3Error("MalformedXML") from None
    if ctx.node.settings.strict_coreweave:
        if ownership is not Ownership.BUCKET_OWNER_ENFORCED:
            raise S3Error("NotImplemented", OWNERSHIP_ONLY)
        return S3Response(200)

    def change(current: Mapping[str, Any]) -> str:
        acl = bucket_access(current, bucket.owner_principal).acl
        if ownership is Ownership.BUCKET_OWNER_ENFORCED and not acl.only_owner():
            raise S3Error("InvalidBucketAclWithObjectOwnership")
        return ownership.value

    await _merge(ctx, OWNERSHIP_KEY, change)
    return S3Response(200)


async def delete_bucket_ownership_controls(ctx: Context) -> S3Response:
    """No controls: ACLs on and the writer owns what it writes (AWS's behaviour before
    ownership controls); GetBucketOwnershipControls answers OwnershipControlsNotFoundError."""
    _strict(ctx)
    await _merge(ctx, OWNERSHIP_KEY, lambda current: None)
    return S3Response(204)


# --- Block Public Access -----------------------------------------------------------------------------
async def get_public_access_block(ctx: Context) -> S3Response:
    _strict(ctx)
    bucket = ctx.require_bucket()
    pab = access_of(ctx, bucket).public_access_block
    if pab is None:
        raise S3Error("NoSuchPublicAccessBlockConfiguration", fields={"BucketName": bucket.name})
    return S3Response.xml("PublicAccessBlockConfiguration", list(pab.to_json().items()))


async def put_public_access_block(ctx: Context) -> S3Response:
    _strict(ctx)
    root = xml.parse(await read_small_body(ctx, MAX_BODY), "PublicAccessBlockConfiguration")
    values = []
    for name in PublicAccessBlock.FIELDS:
        text = (xml.child_text(root, name) or "false").strip().lower()
        if text not in ("true", "false"):
            raise S3Error("MalformedXML")
        values.append(text == "true")
    pab = PublicAccessBlock(*values)
    await _merge(ctx, PUBLIC_ACCESS_BLOCK_KEY, lambda current: pab.to_json())
    return S3Response(200)


async def delete_public_access_block(ctx: Context) -> S3Response:
    _strict(ctx)
    await _merge(ctx, PUBLIC_ACCESS_BLOCK_KEY, lambda current: None)
    return S3Response(204)


async def get_bucket_policy_status(ctx: Context) -> S3Response:
    """IsPublic: whether the bucket policy is public as Block Public Access reads it
    (coffer.policy.bucket.is_public_statement); NoSuchBucketPolicy without one, as in AWS."""
    _strict(ctx)
    bucket = ctx.require_bucket()
    compiled = ctx.node.policies.compiled_bucket_policy(bucket.name, bucket.policy)
    if compiled is None:
        raise S3Error("NoSuchBucketPolicy", fields={"BucketName": bucket.name})
    return S3Response.xml("PolicyStatus", [("IsPublic", compiled.public)])
