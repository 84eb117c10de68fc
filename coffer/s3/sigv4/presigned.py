"""Query-string authentication (presigned URLs): the X-Amz-* parameters and their checks.

A presigned URL carries X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders
and -Signature (and -Security-Token for session credentials). Its payload is
UNSIGNED-PAYLOAD unless an x-amz-content-sha256 header (or an X-Amz-Content-Sha256
parameter, as the JavaScript SDK writes) says otherwise. Expiry is 1..604800 seconds;
a URL is refused once expired, and also before its X-Amz-Date when that lies more than
the allowed clock skew in the future.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import unquote_to_bytes

from coffer.errors import S3Error
from coffer.s3.sigv4.canonical import ALGORITHM, wire_bytes
from coffer.s3.sigv4.header import (
    Credential,
    check_credential_date,
    parse_amz_date,
    parse_credential,
    parse_signed_headers,
)

MAX_EXPIRES = 604800  # seven days, SigV4's limit
MAX_SKEW = timedelta(minutes=15)
SIGNATURE_PARAM = "X-Amz-Signature"
_REQUIRED = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)
_CODE = "AuthorizationQueryParametersError"
_CREDENTIAL_PREFIX = "Error parsing the X-Amz-Credential parameter; "
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def decode_component(text: str) -> str:
    """A query name or value as the face reads it: '+' is a space, %XX a UTF-8 byte."""
    if text.isascii() and "%" not in text and "+" not in text:
        return text
    raw = wire_bytes(text)
    if b"+" in raw:
        raw = raw.replace(b"+", b" ")
    if b"%" in raw:
        raw = unquote_to_bytes(raw)
    return raw.decode("utf-8", "replace")


def decode_query(raw_query: str) -> dict[str, str]:
    """Decoded query parameters; the first occurrence of a name wins, as in S3."""
    params: dict[str, str] = {}
    if not raw_query:
        return params
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        params.setdefault(decode_component(name), decode_component(value))
    return params


@dataclass(frozen=True, slots=True)
class Presigned:
    """The X-Amz-* parameters of a presigned URL, validated."""

    credential: Credential
    amz_date: str
    request_time: datetime
    expires: int
    signed_headers: list[str]
    signature: str
    security_token: str | None
    content_sha256: str | None


def is_presigned(params: dict[str, str]) -> bool:
    """Whether the query claims SigV4 query authentication."""
    return "X-Amz-Signature" in params or "X-Amz-Algorithm" in params or "X-Amz-Credential" in params


def parse_presigned(params: dict[str, str]) -> Presigned:
    """Validate the X-Amz-* parameters (AuthorizationQueryParametersError otherwise)."""
    if any(name not in params for name in _REQUIRED):
        raise S3Error(
            _CODE,
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
            "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
        )
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise S3Error(_CODE, f'X-Amz-Algorithm only supports "{ALGORITHM}"')
    credential = parse_credential(params["X-Amz-Credential"], code=_CODE, prefix=_CREDENTIAL_PREFIX)
    amz_date = params["X-Amz-Date"]
    request_time = parse_amz_date(amz_date)
    if request_time is None:
        raise S3Error(_CODE, "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    check_credential_date(credential, amz_date, code=_CODE, prefix=_CREDENTIAL_PREFIX)
    expires_text = params["X-Amz-Expires"]
    digits = expires_text[1:] if expires_text.startswith("-") else expires_text
    if not digits or not digits.isascii() or not digits.isdigit() or len(digits) > 12:
        raise S3Error(_CODE, "X-Amz-Expires should be a number")
    expires = int(expires_text)
    if expires < 0:
        raise S3Error(_CODE, "X-Amz-Expires must be non-negative")
    if expires == 0:
        raise S3Error(_CODE, "X-Amz-Expires must be at least 1 second")
    if expires > MAX_EXPIRES:
        raise S3Error(_CODE, f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_EXPIRES}")
    signed = parse_signed_headers(params["X-Amz-SignedHeaders"], code=_CODE, prefix="")
    return Presigned(
        credential=credential,
        amz_date=amz_date,
        request_time=request_time,
        expires=expires,
        signed_headers=signed,
        signature=params["X-Amz-Signature"],
        security_token=params.get("X-Amz-Security-Token"),
        content_sha256=params.get("X-Amz-Content-Sha256"),
    )


def check_validity(presigned: Presigned, now: datetime) -> None:
    """Refuse a URL that has expired, or whose X-Amz-Date lies too far in the future."""
    if presigned.request_time - now > MAX_SKEW:
        raise S3Error(
            "AccessDenied",
            "Request is not valid yet",
            fields={
                "X-Amz-Date": presigned.amz_date,
                "ServerTime": now.strftime(_TIME_FORMAT),
            },
        )
    expiry = presigned.request_time + timedelta(seconds=presigned.expires)
    if now > expiry:
        raise S3Error(
            "AccessDenied",
            "Request has expired",
            fields={
                "X-Amz-Expires": str(presigned.expires),
                "Expires": expiry.strftime(_TIME_FORMAT),
                "ServerTime": now.strftime(_TIME_FORMAT),
            },
        )
