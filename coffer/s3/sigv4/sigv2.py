"""Legacy AWS Signature Version 2 for S3: `Authorization: AWS AKID:sig` and query auth.

The string to sign is::

    VERB \\n Content-MD5 \\n Content-Type \\n Date (or Expires) \\n
    x-amz-* headers, each `name:value\\n`, sorted \\n-joined
    canonical resource: [/bucket] + path as sent + sorted S3 sub-resources

signed with HMAC-SHA1 and base64-encoded. A virtual-hosted request names its bucket in
the Host header, and the canonical resource needs it: the face passes it as
`SignedRequest.vhost_bucket`; without it, the host's leading labels are tried.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote_to_bytes

from coffer.errors import S3Error
from coffer.s3.sigv4.canonical import wire_bytes
from coffer.s3.sigv4.header import parse_amz_date

# Query parameters that are part of the canonical resource. The union of AWS's documented
# list and botocore's (HmacV1Auth.QSAOfInterest), which is what real clients sign.
SUBRESOURCES = frozenset(
    {
        "accelerate",
        "acl",
        "analytics",
        "cors",
        "defaultObjectAcl",
        "delete",
        "inventory",
        "lifecycle",
        "location",
        "logging",
        "metrics",
        "notification",
        "object-lock",
        "partNumber",
        "policy",
        "replication",
        "requestPayment",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
        "restore",
        "select",
        "select-type",
        "storageClass",
        "tagging",
        "torrent",
        "uploadId",
        "uploads",
        "versionId",
        "versioning",
        "versions",
        "website",
    }
)

NOT_SUPPORTED = (
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256. "
    "(Signature Version 2 is disabled on this endpoint.)"
)


@dataclass(frozen=True, slots=True)
class V2Credentials:
    """The access key id and base64 signature of a SigV2 request."""

    access_key_id: str
    signature: str
    expires: int | None = None  # query auth only: epoch seconds


def parse_header(value: str) -> V2Credentials:
    """`AWS AKID:signature`."""
    access_key_id, colon, signature = value[4:].strip().partition(":")
    if not colon or not access_key_id or not signature:
        raise S3Error(
            "InvalidArgument",
            "Authorization header is invalid -- one and only one ' ' (space) required; "
            "expected 'AWS AKID:Signature'.",
            fields={"ArgumentName": "Authorization", "ArgumentValue": "AWS ..."},
        )
    return V2Credentials(access_key_id.strip(), signature.strip())


def raw_query_value(raw_query: str, name: str) -> str | None:
    """A query value percent-decoded but with '+' kept: base64 signatures contain '+'."""
    for part in raw_query.split("&"):
        key, _, value = part.partition("=")
        if key == name:
            return unquote_to_bytes(wire_bytes(value)).decode("latin-1")
    return None


def parse_query(params: dict[str, str], raw_query: str) -> V2Credentials:
    """`AWSAccessKeyId`, `Expires` and `Signature` query parameters."""
    missing = [p for p in ("AWSAccessKeyId", "Expires", "Signature") if p not in params]
    if missing:
        raise S3Error(
            "AccessDenied",
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
        )
    expires_text = params["Expires"]
    if not expires_text.isascii() or not expires_text.isdigit() or len(expires_text) > 12:
        raise S3Error("AccessDenied", "Invalid date (should be seconds since epoch): " + expires_text[:32])
    signature = raw_query_value(raw_query, "Signature") or params["Signature"]
    return V2Credentials(params["AWSAccessKeyId"], signature, int(expires_text))


def parse_http_date(value: str) -> datetime | None:
    """An RFC 1123 (or 850, asctime) date, or SigV4's basic ISO 8601; None if neither."""
    value = value.strip()
    parsed = parse_amz_date(value)
    if parsed is not None:
        return parsed
    try:
        parsed = parsedate_to_datetime(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def canonical_resource(path: str, raw_query: str) -> str:
    """The path with the sub-resources of the query appended, sorted by name."""
    if not raw_query:
        return path
    found: list[tuple[str, str | None]] = []
    for part in raw_query.split("&"):
        name, eq, value = part.partition("=")
        if name in SUBRESOURCES:
            found.append((name, unquote_to_bytes(wire_bytes(value)).decode("latin-1") if eq else None))
    if not found:
        return path
    found.sort(key=lambda item: item[0])
    return path + "?" + "&".join(name if value is None else f"{name}={value}" for name, value in found)


def amz_headers(headers: dict[str, list[str]], query_params: dict[str, str] | None) -> str:
    """`name:value\\n` for every x-amz-* header, sorted (query auth adds x-amz-* parameters)."""
    found = {
        name: ",".join(v.strip() for v in values)
        for name, values in headers.items()
        if name.startswith("x-amz-")
    }
    if query_params:
        for name, value in query_params.items():
            lower = name.lower()
            if lower.startswith("x-amz-") and lower not in found:
                found[lower] = value.strip()
    return "".join(f"{name}:{found[name]}\n" for name in sorted(found))


def string_to_sign(
    method: str, content_md5: str, content_type: str, date: str, amz: str, resource: str
) -> str:
    return f"{method}\n{content_md5}\n{content_type}\n{date}\n{amz}{resource}"


def sign(secret: str, string: str) -> str:
    digest = hmac.digest(secret.encode("utf-8"), wire_bytes(string), "sha1")
    return base64.b64encode(digest).decode("ascii")


def resource_candidates(raw_path: str, vhost_bucket: str, host: str) -> list[str]:
    """Canonical-resource paths to try: the bucket the face named, else path-style (with
    and without the slash after a bare bucket), then each leading run of host labels as
    a virtual-hosted bucket."""
    path = raw_path or "/"
    if vhost_bucket:
        return [f"/{vhost_bucket}{path}"]
    candidates = [path]
    if path.count("/") == 1 and len(path) > 1:
        candidates.append(path + "/")  # path-style bucket root: botocore signs "/bucket/"
    hostname = host.rsplit(":", 1)[0] if host and not host.startswith("[") else ""
    labels = hostname.split(".") if hostname else []
    for i in range(1, len(labels)):
        candidates.append("/" + ".".join(labels[:i]) + path)
    return candidates
