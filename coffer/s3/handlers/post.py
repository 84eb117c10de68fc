"""PostObject: browser-form uploads (`POST /bucket`, multipart/form-data) under a POST policy.

The form's fields come first and are read into memory (at most 20 KiB, as S3 allows);
then, before a byte of the file is stored:
1. the signing fields name who signed (SigV4 or SigV2, `coffer.s3.postpolicy`), or
   none, for an anonymous form; the signature is checked over the policy text;
2. `${filename}` in any field becomes the file part's file name;
3. the policy's expiration, conditions and field coverage are checked;
4. the upload is authorized as `PostObject` (`s3:PutObject`) on the final key, through
   the same door as every request.
Only then does the file stream into a blob (hashed as it is written, bounded by the
policy's content-length-range and 5 GiB); the object is committed once the file's
closing delimiter has arrived and every digest checks out. Nothing is stored otherwise.

The answer: 303 to success_action_redirect (or the older `redirect`) with bucket, key
and etag appended; else success_action_status 200 (empty), 201 (`<PostResponse>`), or
204, the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from coffer import checksums as cks
from coffer import metrics
from coffer.errors import S3Error
from coffer.s3 import metadata, postpolicy, throttle, xml
from coffer.s3.context import Context, origin_of
from coffer.s3.formdata import FormPart, FormReader, boundary_of
from coffer.s3.handlers.acl import CANNED_OK, NO_ACLS, OBJECT_LOCK
from coffer.s3.handlers.common import DEFAULT_CONTENT_TYPE, STORAGE_CLASSES, check_key
from coffer.s3.handlers.tagging import tags_from_element
from coffer.s3.payload import MULTIPLE_CHECKSUMS, decode_checksum
from coffer.s3.request import decode_base64
from coffer.s3.responses import XML_TYPE, S3Response
from coffer.storage.bodies import Expect, StoredBody
from coffer.storage.errors import EntityTooLarge, EntityTooSmall
from coffer.storage.models import ObjectVersion
from coffer.storage.rules import MAX_PART_SIZE

# Form fields stored as the object's headers.
STORED_FIELDS = ("content-type", "cache-control", "content-disposition", "content-encoding", "expires",
                 "x-amz-website-redirect-location")  # fmt: skip
NO_FILE = "POST requires exactly one file upload per request."
CHECKSUM_SETTINGS = ("x-amz-checksum-algorithm", "x-amz-checksum-type")


@dataclass
class Upload:
    """What the form asks to be stored."""

    key: str
    headers: dict[str, str]
    storage_class: str
    tags: dict[str, str] | None
    md5: bytes | None
    algorithm: str | None  # the checksum to compute and store (x-amz-checksum-algorithm or -<alg>)
    checksum: bytes | None  # its raw digest from x-amz-checksum-<alg>, checked against the file


def _fields(parts: list[FormPart]) -> tuple[dict[str, str], dict[str, str]]:
    """Lower-case name -> value (repeated fields joined with ','), and -> the name as sent."""
    values: dict[str, str] = {}
    names: dict[str, str] = {}
    for part in parts:
        try:
            text = part.value.decode("utf-8")
        except UnicodeDecodeError:
            raise S3Error("MalformedPOSTRequest") from None
        lower = part.name.lower()
        values[lower] = f"{values[lower]},{text}" if lower in values else text
        names.setdefault(lower, part.name)
    return values, names


def _basename(filename: str) -> str:
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def _upload(fields: dict[str, str]) -> Upload:
    """The object the form describes; the fields' own rules (ACL, encryption, lock, class)."""
    key = fields.get("key", "")
    if not key:
        raise postpolicy.missing_field("key")
    check_key(key)
    acl = fields.get("acl")
    if acl is not None and acl.strip().lower() not in CANNED_OK:
        raise S3Error("AccessControlListNotSupported", NO_ACLS)
    if any(name.startswith("x-amz-grant-") for name in fields):
        raise S3Error("AccessControlListNotSupported", NO_ACLS)
    if any(name.startswith("x-amz-object-lock-") for name in fields):
        raise S3Error("NotImplemented", OBJECT_LOCK)
    sse = fields.get("x-amz-server-side-encryption")
    customer = any(name.startswith("x-amz-server-side-encryption-customer-") for name in fields)
    if customer or (sse is not None and sse.strip().upper() != "AES256"):
        raise S3Error(
            "NotImplemented", "Server-side encryption with KMS or customer-provided keys is not supported."
        )
    sclass = fields.get("x-amz-storage-class", "STANDARD").strip().upper()
    if sclass not in STORAGE_CLASSES:
        raise S3Error("InvalidStorageClass", fields={"StorageClassRequested": sclass[:64]})
    headers = {name: fields[name] for name in STORED_FIELDS if name in fields}
    meta = [
        (name, metadata.decode_words(v)) for name, v in fields.items() if name.startswith(metadata.PREFIX)
    ]
    headers.update(metadata.user_metadata(meta))
    tags = None
    if "tagging" in fields:
        root = xml.parse(fields["tagging"].encode("utf-8"), "Tagging")
        tags = tags_from_element(root) or None
    md5 = None
    if "content-md5" in fields:
        md5 = decode_base64(fields["content-md5"], 16)
        if md5 is None:
            raise S3Error("InvalidDigest")
    algorithm, checksum = _checksum(fields)
    return Upload(key, headers, sclass, tags, md5, algorithm, checksum)


def _checksum(fields: dict[str, str]) -> tuple[str | None, bytes | None]:
    """The checksum the form asks for: x-amz-checksum-<alg> (its value checked against the
    file), x-amz-checksum-algorithm alone (computed and stored), or both, naming one algorithm."""
    given = [
        (name[len("x-amz-checksum-") :], value)
        for name, value in fields.items()
        if name.startswith("x-amz-checksum-") and name not in CHECKSUM_SETTINGS
    ]
    if len(given) > 1:
        raise S3Error("InvalidRequest", MULTIPLE_CHECKSUMS)
    named = fields.get("x-amz-checksum-algorithm", "").strip().lower() or None
    if named is not None and named not in cks.CHECKSUM_ALGORITHMS:
        raise S3Error("InvalidRequest", "Checksum algorithm provided is unsupported.")
    if not given:
        return named, None
    alg, value = given[0]
    digest = decode_checksum(alg, value, shown=alg[:16])
    if named is not None and named != alg:
        raise S3Error("InvalidRequest", "Value for x-amz-checksum-algorithm header is invalid.")
    return alg, digest


def _redirect_target(fields: dict[str, str]) -> str | None:
    url = fields.get("success_action_redirect") or fields.get("redirect")
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None  # S3 "acts as if the field is not present"
    return url


def _location(ctx: Context, bucket: str, key: str) -> str:
    req = ctx.request
    host = req.host or "localhost"
    path = f"/{quote(key, safe='')}" if not req.path_style else f"/{bucket}/{quote(key, safe='')}"
    return f"{req.scheme}://{host}{path}"


async def post_object(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    req = ctx.request
    reader = FormReader(req.body(), boundary_of(req.header("content-type")))
    form = await reader.read_form()
    fields, names = _fields(form.fields)
    if "key" not in fields:
        raise postpolicy.missing_field("key")
    if form.file is None:
        raise S3Error("InvalidArgument", NO_FILE, fields={"ArgumentName": "file", "ArgumentValue": "0"})
    budget, client = ctx.node.auth_budget, req.source_ip
    try:
        lookup = throttle.lookup_for(budget, client, ctx.node.keys.credentials)
        signer = postpolicy.verify(fields, lookup, allow_sigv2=ctx.node.settings.sigv2)
    except S3Error as exc:
        throttle.count(budget, client, exc)
        raise
    if form.file.filename is not None:
        name = _basename(form.file.filename)
        fields = {k: v.replace("${filename}", name) for k, v in fields.items()}
    length_range: tuple[int, int] | None = None
    if signer is not None:
        policy = postpolicy.parse_policy(fields["policy"])
        postpolicy.check(policy, fields, names, bucket.name)
        length_range = policy.length_range
    upload = _upload(fields)
    access_key = signer.credentials.key if signer is not None else ctx.key
    if signer is not None and ctx.node.settings.last_used_tracking:  # signed in the form: not seen by the app
        ctx.node.keys.last_used.record(signer.credentials.key.access_key_id, "PostObject", client, metrics.S3)
    op = ctx.op.derive("PostObject", bucket=bucket.name, key=upload.key, version_id=None)
    ctx.node.authz.authorize_s3(access_key, op, bucket, origin_of(ctx.request))
    principal = access_key.principal_name if access_key is not None else "anonymous"
    stored, obj = await _store(ctx, reader, upload, length_range, principal)
    await reader.drain()
    checksum = []  # the checksum the form named, as PutObject answers one
    if upload.algorithm is not None:
        name = cks.display_name(upload.algorithm)
        checksum.append((f"x-amz-checksum-{upload.algorithm}", stored.checksums[name]))
    return _answer(ctx, fields, bucket.name, upload.key, obj, checksum)


async def _store(
    ctx: Context,
    reader: FormReader,
    upload: Upload,
    length_range: tuple[int, int] | None,
    principal: str,
) -> tuple[StoredBody, ObjectVersion]:
    low, high = length_range if length_range is not None else (0, MAX_PART_SIZE)
    high = min(high, MAX_PART_SIZE)
    expect = Expect(
        max_size=high, min_size=low, md5=upload.md5, algorithm=upload.algorithm, checksum=upload.checksum
    )
    headers = dict(upload.headers)
    headers.setdefault("content-type", DEFAULT_CONTENT_TYPE)
    try:
        return await ctx.node.storage.objects.write(
            ctx.require_bucket().name,
            upload.key,
            reader.file_chunks(),
            expect,
            headers=headers,
            owner=principal,
            storage_class=upload.storage_class,
            tags=upload.tags,
        )
    except EntityTooLarge as exc:  # the POST policy's words for its content-length-range
        raise S3Error(
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size",
            fields={"MaxSizeAllowed": str(exc.max_size)},
        ) from None
    except EntityTooSmall as exc:
        raise S3Error(
            "EntityTooSmall",
            "Your proposed upload is smaller than the minimum allowed size",
            fields={"ProposedSize": str(exc.size), "MinSizeAllowed": str(exc.min_size)},
        ) from None


def _answer(
    ctx: Context,
    fields: dict[str, str],
    bucket: str,
    key: str,
    obj: ObjectVersion,
    checksum: list[tuple[str, str]],
) -> S3Response:
    location = _location(ctx, bucket, key)
    headers = [("etag", obj.etag), ("location", location), *checksum]
    if ctx.versioned:
        headers.append(("x-amz-version-id", obj.version_id))
    target = _redirect_target(fields)
    if target is not None:
        query = urlencode([("bucket", bucket), ("key", key), ("etag", obj.etag)])
        joiner = "&" if "?" in target else "?"
        return S3Response(303, [*headers[:1], ("location", f"{target}{joiner}{query}"), *headers[2:]])
    status = fields.get("success_action_status", "").strip()
    if status == "201":
        body = xml.render(
            "PostResponse",
            [("Location", location), ("Bucket", bucket), ("Key", key), ("ETag", obj.etag)],
            namespace=False,
        )
        return S3Response(201, [*headers, ("content-type", XML_TYPE)], body)
    if status == "200":
        return S3Response(200, headers)
    return S3Response(204, headers)
