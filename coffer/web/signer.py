"""A small SigV4 signer for Coffer's own clients of its S3 port: the console's backend and the CLI.

It reuses the verifier's canonicalisation (`coffer.s3.sigv4.canonical`), so the two
cannot drift apart: what this module signs is exactly what the S3 face recomputes.
Only header signing is offered, with `UNSIGNED-PAYLOAD` for bodies streamed through
from the browser (the body then travels unhashed, as SigV4 allows over any transport)
or the SHA-256 of a small body the console built itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from coffer.s3.sigv4.canonical import (
    ALGORITHM,
    SERVICE,
    TERMINATOR,
    canonical_headers,
    canonical_query,
    canonical_request,
    canonical_uri,
    sha256_hex,
    sign,
    signing_key,
    string_to_sign,
)

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_key: str


def encode_segment(segment: str) -> str:
    """One path segment, percent-encoded from its UTF-8 bytes.

    `.` and `..` are encoded too (`%2E`), so no HTTP library or proxy on the way can
    resolve them as dot-segments: S3 keys are names, not paths.
    """
    if segment in (".", ".."):
        return "%2E" * len(segment)
    return quote(segment, safe="-_.~")


def object_path(bucket: str | None, key: str | None, *, virtual_host: bool = False) -> str:
    """The request path of a bucket or object: `/bucket/key` path-style, `/key` virtual-hosted."""
    parts: list[str] = []
    if bucket is not None and not virtual_host:
        parts.append(encode_segment(bucket))
    if key is not None:
        parts.extend(encode_segment(seg) for seg in key.split("/"))
    return "/" + "/".join(parts)


def encode_query(params: Iterable[tuple[str, str]]) -> str:
    """A query string in AWS's encoding; a parameter with value "" is sent as `name=`."""
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in params)


def amz_date(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def sign_request(
    *,
    method: str,
    host: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    credentials: Credentials,
    region: str,
    payload_hash: str = UNSIGNED_PAYLOAD,
    now: datetime | None = None,
) -> dict[str, str]:
    """The headers to send: the given ones plus x-amz-date, x-amz-content-sha256 and Authorization.

    Signed: `host` and every `x-amz-*` header (names lower-cased), which is what S3 requires.
    """
    when = amz_date(now or datetime.now(UTC))
    out = {k.lower(): v for k, v in headers.items()}
    out["x-amz-date"] = when
    out["x-amz-content-sha256"] = payload_hash
    signing = {"host": host, **{k: v for k, v in out.items() if k.startswith("x-amz-")}}
    names = sorted(signing)
    signed_headers = ";".join(names)
    canonical = canonical_request(
        method,
        canonical_uri(raw_path),
        canonical_query(raw_query),
        canonical_headers({k: [v] for k, v in signing.items()}, names),
        signed_headers,
        payload_hash,
    )
    date = when[:8]
    scope = f"{date}/{region}/{SERVICE}/{TERMINATOR}"
    key = signing_key(credentials.secret_key, date, region, SERVICE)
    signature = sign(key, string_to_sign(when, scope, canonical))
    out["authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return out


def body_hash(body: bytes) -> str:
    return sha256_hex(body)
