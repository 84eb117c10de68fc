"""Helpers several handler groups share: object headers in and out, preconditions, numbers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote_to_bytes

from coffer.errors import S3Error
from coffer.s3 import metadata, xml
from coffer.s3.context import Context
from coffer.s3.handlers.acl import check_object_lock_headers
from coffer.s3.request import S3Request
from coffer.storage.models import Bucket, ObjectVersion
from coffer.storage.rules import MAX_KEY_BYTES, MAX_PART_NUMBER
from coffer.storage.tags import validate_tags

# Headers stored with an object and echoed on GET/HEAD.
STORED_HEADERS = (
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
    "x-amz-website-redirect-location",
)
STORAGE_CLASSES = frozenset({"STANDARD", "STANDARD_IA"})
DEFAULT_CONTENT_TYPE = "binary/octet-stream"


def object_headers_from_request(req: S3Request) -> dict[str, str]:
    """Standard headers (as sent, byte for byte) and x-amz-meta-* (as text,
    `coffer.s3.metadata`) to store; aws-chunked is transport, not content."""
    headers: dict[str, str] = {}
    for name in STORED_HEADERS:
        value = req.header(name)
        if value is not None:
            headers[name] = value
    encoding = headers.pop("content-encoding", None)
    if encoding is not None and (content := content_encoding(encoding)) is not None:
        headers["content-encoding"] = content
    wire = req.headers_with_prefix(metadata.PREFIX)
    headers.update(metadata.user_metadata((name, metadata.from_wire(v)) for name, v in wire.items()))
    return headers


def content_encoding(value: str) -> str | None:
    """Content-Encoding as sent, without the aws-chunked token (SigV4 streaming framing, not
    content): `deflate, gzip` stays `deflate, gzip`; `aws-chunked` alone is no encoding."""
    items = value.split(",")
    kept = [item for item in items if item.strip().lower() != "aws-chunked"]
    if len(kept) == len(items):
        return value
    return ",".join(kept).strip(" \t,") or None


def refuse_unsupported_encryption(req: S3Request) -> None:
    """SSE-KMS and SSE-C promise encryption under a key Coffer does not have: refuse them
    rather than store data the client believes is encrypted. SSE-S3 (AES256) is accepted."""
    sse = req.header("x-amz-server-side-encryption")
    customer = req.header("x-amz-server-side-encryption-customer-algorithm") or req.header(
        "x-amz-copy-source-server-side-encryption-customer-algorithm"
    )
    if customer is not None or (sse is not None and sse.strip().upper() != "AES256"):
        raise S3Error(
            "NotImplemented", "Server-side encryption with KMS or customer-provided keys is not supported."
        )


def object_to_write(ctx: Context) -> tuple[Bucket, str]:
    """The bucket and key of PutObject, CopyObject or CreateMultipartUpload, once the
    request asks for nothing Coffer refuses: SSE-KMS or SSE-C, Object Lock, a key over the
    length limit. (Its ACL headers are `acl.write_acl`'s.)"""
    bucket, key = ctx.require_bucket(), ctx.require_key()
    req = ctx.request
    refuse_unsupported_encryption(req)
    check_object_lock_headers(req)
    check_key(key)
    return bucket, key


def storage_class(req: S3Request) -> str:
    value = req.header("x-amz-storage-class")
    if value is None:
        return "STANDARD"
    value = value.strip().upper()
    if value not in STORAGE_CLASSES:
        raise S3Error("InvalidStorageClass", fields={"StorageClassRequested": value})
    return value


def tagging_header(req: S3Request) -> dict[str, str] | None:
    """x-amz-tagging: the tag set as a URL query string (`a=1&b=2`; `b` alone is the empty
    value), checked like any tag set (storage.tags); a repeated key is InvalidArgument."""
    raw = req.header("x-amz-tagging")
    if raw is None:
        return None
    return parse_tagging_query(raw)


def parse_tagging_query(raw: str) -> dict[str, str]:
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for part in raw.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        try:
            key = unquote_to_bytes(name.replace("+", " ").encode("latin-1")).decode("utf-8")
            val = unquote_to_bytes(value.replace("+", " ").encode("latin-1")).decode("utf-8")
        except (UnicodeDecodeError, UnicodeEncodeError):
            key = ""
        if not key or key in seen:
            raise S3Error(
                "InvalidArgument",
                "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query "
                "parameters without tag name duplicates.",
                fields={"ArgumentName": "x-amz-tagging", "ArgumentValue": raw[:256]},
            )
        seen.add(key)
        pairs.append((key, val))
    return validate_tags(pairs)


def check_key(key: str) -> None:
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise S3Error(
            "KeyTooLongError",
            fields={"Size": str(len(key.encode())), "MaxSizeAllowed": str(MAX_KEY_BYTES)},
        )


def parse_int(value: str | None, name: str, *, default: int, lo: int = 0, hi: int | None = None) -> int:
    """A bounded integer query argument; InvalidArgument names it, as S3 does."""
    if value is None:
        return default
    text = value.strip()
    try:
        number = int(text)
    except ValueError:
        raise S3Error(
            "InvalidArgument",
            f"Provided {name} not an integer or within integer range",
            fields={"ArgumentName": name, "ArgumentValue": value},
        ) from None
    if number < lo:
        raise S3Error(
            "InvalidArgument",
            f"Argument {name} must be an integer between {lo} and {hi if hi is not None else 2147483647}",
            fields={"ArgumentName": name, "ArgumentValue": value},
        )
    if hi is not None and number > hi:
        number = hi
    return number


def parse_part_number(value: str | None) -> int:
    try:
        number = int(value or "")
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_PART_NUMBER:
        raise S3Error(
            "InvalidArgument",
            f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive",
            fields={"ArgumentName": "partNumber", "ArgumentValue": value or ""},
        )
    return number


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP date, or None when absent or unparseable (S3 ignores bad dates)."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _etags(value: str) -> list[str]:
    return [t.strip().removeprefix("W/").strip('"') for t in value.split(",") if t.strip()]


def etag_matches(header: str, etag: str) -> bool:
    bare = etag.strip('"')
    return any(t == "*" or t == bare for t in _etags(header))


def _seconds(value: datetime) -> datetime:
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.replace(microsecond=0)


def check_preconditions(req: S3Request, obj: ObjectVersion, *, prefix: str = "") -> bool:
    """Evaluate If-* headers in AWS order; True means 304 Not Modified.

    If-Match beats If-Unmodified-Since and If-None-Match beats If-Modified-Since (RFC
    7232 §6). For a copy source (`prefix` "x-amz-copy-source-") every failure is 412.
    """
    modified = _seconds(obj.last_modified)
    if_match = req.header(prefix + "if-match")
    if if_match is not None:
        if not etag_matches(if_match, obj.etag):
            raise S3Error("PreconditionFailed", fields={"Condition": "If-Match"})
    else:
        since = parse_http_date(req.header(prefix + "if-unmodified-since"))
        if since is not None and modified > since:
            raise S3Error("PreconditionFailed", fields={"Condition": "If-Unmodified-Since"})
    if_none = req.header(prefix + "if-none-match")
    not_modified = False
    if if_none is not None:
        not_modified = etag_matches(if_none, obj.etag)
    else:
        since = parse_http_date(req.header(prefix + "if-modified-since"))
        not_modified = since is not None and modified <= since
    if not_modified and prefix:
        condition = (
            "x-amz-copy-source-If-None-Match"
            if if_none is not None
            else "x-amz-copy-source-If-Modified-Since"
        )
        raise S3Error("PreconditionFailed", fields={"Condition": condition})
    return not_modified


def owner(principal: str) -> list[xml.Node]:
    return [("ID", principal), ("DisplayName", principal)]


def checksum_nodes(checksums: dict[str, str]) -> list[xml.Node]:
    """<ChecksumCRC32>... elements (and ChecksumType) for result documents."""
    nodes: list[xml.Node] = [(f"Checksum{alg}", value) for alg, value in checksums.items() if alg != "type"]
    if nodes and checksums.get("type"):
        nodes.append(("ChecksumType", checksums["type"]))
    return nodes


def url_encode(value: str | None, enabled: bool) -> str | None:
    """encoding-type=url: keys and prefixes percent-encoded (safe: '/' kept, as S3 does)."""
    if value is None or not enabled:
        return value
    return quote(value, safe="/")


def encoding_type(query: Mapping[str, str]) -> bool:
    value = query.get("encoding-type")
    if value is None:
        return False
    if value.lower() != "url":
        raise S3Error(
            "InvalidArgument",
            "Invalid Encoding Method specified in Request",
            fields={"ArgumentName": "encoding-type", "ArgumentValue": value},
        )
    return True


MAX_PAGE = 1000  # the most entries one listing page holds, and the page size when none is asked


@dataclass(frozen=True)
class ListArgs:
    """The query arguments every bucket listing (objects, versions, uploads) reads alike."""

    encode: bool  # encoding-type=url
    prefix: str
    delimiter: str
    max_items: int  # max-keys or max-uploads, 0 to MAX_PAGE


def list_args(query: Mapping[str, str], max_name: str) -> ListArgs:
    """A listing's common arguments; `max_name` is its page-size argument."""
    encode = encoding_type(query)
    max_items = parse_int(query.get(max_name), max_name, default=MAX_PAGE, lo=0, hi=MAX_PAGE)
    return ListArgs(encode, query.get("prefix", ""), query.get("delimiter", ""), max_items)
