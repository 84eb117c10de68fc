"""SigV4 canonical request, string to sign and signing keys, the way S3 computes them.

Every string here holds *wire characters*: the request's bytes decoded as latin-1, the
ASGI convention the face follows, so one character is one byte. `wire_bytes` turns
them back into the bytes the client hashed. (A string with a character above U+00FF
cannot have come from latin-1, so it is taken to be UTF-8 text instead.)

S3-specific rules, which differ from other AWS services:
- The path is not normalised ('.', '..' and '//' stay) and not double-encoded. The
  canonical URI is the path with every '/'-separated segment decoded and re-encoded
  with AWS's unreserved set, so a client that sent `%7E`, raw UTF-8 or a raw `=` and
  signed the canonical form verifies, and `%2F` inside a segment stays `%2F`.
- Query names and values are decoded (with '+' as a space, as form-encoders such as
  Python's urlencode, used by botocore, send it) and re-encoded the same way, then
  sorted by encoded name and value.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache
from urllib.parse import quote_from_bytes, unquote_to_bytes

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
SERVICE = "s3"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
PAYLOAD_ALGORITHM = "AWS4-HMAC-SHA256-PAYLOAD"
TRAILER_ALGORITHM = "AWS4-HMAC-SHA256-TRAILER"

# Already canonical: only unreserved characters (and '/', for a path). Compiled once.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9\-._~/]*").fullmatch
_PLAIN_COMPONENT = re.compile(r"[A-Za-z0-9\-._~]*").fullmatch
_WHITESPACE_RUN = re.compile(r"[ \t\r\n\x0b\x0c]+")
_WHITESPACE = " \t\r\n\x0b\x0c"


def wire_bytes(text: str) -> bytes:
    """The bytes behind a string of wire characters (latin-1; UTF-8 if it cannot be)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def uri_encode(raw: bytes) -> str:
    """AWS URI-encoding: every byte but A-Z a-z 0-9 - . _ ~ becomes %XX (upper-case hex)."""
    return quote_from_bytes(raw, safe="")


def canonical_uri(raw_path: str) -> str:
    """The canonical URI of a percent-encoded path as received."""
    if not raw_path:
        return "/"
    if _PLAIN_PATH(raw_path):
        return raw_path
    return "/".join(uri_encode(unquote_to_bytes(wire_bytes(seg))) for seg in raw_path.split("/"))


def _canonical_component(text: str) -> str:
    if _PLAIN_COMPONENT(text):
        return text
    raw = wire_bytes(text)
    if b"+" in raw:
        raw = raw.replace(b"+", b" ")
    return uri_encode(unquote_to_bytes(raw))


def canonical_query(raw_query: str, exclude: str | None = None) -> str:
    """The canonical query string; `exclude` names a parameter left out (X-Amz-Signature)."""
    if not raw_query:
        return ""
    pairs: list[tuple[str, str]] = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name = _canonical_component(name)
        if name == exclude:
            continue
        pairs.append((name, _canonical_component(value)))
    pairs.sort()
    return "&".join([f"{name}={value}" for name, value in pairs])


def literal_query(raw_query: str, exclude: str | None = None, *, ordered: bool = True) -> str:
    """The query sorted but not re-encoded: what signers that hash the URL's own query
    (botocore, for a URL it did not build) produce. With `ordered=False`, not sorted
    either: curl before 8.1 signs the query verbatim. Used only as a second chance."""
    if not raw_query:
        return ""
    pairs = [part.partition("=")[::2] for part in raw_query.split("&")]
    if ordered:
        pairs.sort()
    return "&".join(f"{name}={value}" for name, value in pairs if name != exclude)


def trim_header_value(value: str) -> str:
    """Trim surrounding whitespace and fold inner runs to one space (SigV4's Trimall).

    Only ASCII whitespace counts: 0x85 and 0xA0 are bytes of UTF-8 text here, not spaces.
    """
    if (
        "  " not in value
        and "\t" not in value
        and (not value or (value[0] not in _WHITESPACE and value[-1] not in _WHITESPACE))
    ):
        return value
    return _WHITESPACE_RUN.sub(" ", value).strip(" ")


def canonical_headers(headers: dict[str, list[str]], signed: list[str]) -> str:
    """`name:value\\n` for each signed header in the order given (absent ones empty)."""
    lines = []
    for name in signed:
        values = headers.get(name)
        if values is None:
            lines.append(f"{name}:\n")
        elif len(values) == 1:
            lines.append(f"{name}:{trim_header_value(values[0])}\n")
        else:
            lines.append(f"{name}:{','.join([trim_header_value(v) for v in values])}\n")
    return "".join(lines)


def canonical_request(
    method: str, uri: str, query: str, headers: str, signed_headers: str, payload_hash: str
) -> str:
    return f"{method}\n{uri}\n{query}\n{headers}\n{signed_headers}\n{payload_hash}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{sha256_hex(wire_bytes(canonical))}"


def chunk_string_to_sign(amz_date: str, scope: str, previous_signature: str, chunk_sha256: str) -> str:
    """What each aws-chunked chunk signature covers, chained from the previous one."""
    return f"{PAYLOAD_ALGORITHM}\n{amz_date}\n{scope}\n{previous_signature}\n{EMPTY_SHA256}\n{chunk_sha256}"


def trailer_string_to_sign(amz_date: str, scope: str, previous_signature: str, trailer_sha256: str) -> str:
    """What x-amz-trailer-signature covers: the final chunk's signature and the trailers."""
    return f"{TRAILER_ALGORITHM}\n{amz_date}\n{scope}\n{previous_signature}\n{trailer_sha256}"


@lru_cache(maxsize=4096)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """kSigning = HMAC chain over date, region, service and aws4_request.

    Cached: the derivation is four HMACs, a quarter of a verification. The cache is keyed
    by the secret itself, so a changed secret simply misses and a revoked key is refused
    before its entry is ever consulted; nothing here needs invalidating.
    """
    key = hmac.digest(("AWS4" + secret).encode("utf-8"), wire_bytes(date), "sha256")
    key = hmac.digest(key, wire_bytes(region), "sha256")
    key = hmac.digest(key, wire_bytes(service), "sha256")
    return hmac.digest(key, b"aws4_request", "sha256")


def sign(key: bytes, string: str) -> str:
    """Hex HMAC-SHA256 of a string to sign."""
    return hmac.digest(key, wire_bytes(string), "sha256").hex()


def signatures_match(expected: str, provided: str) -> bool:
    """Constant-time comparison that tolerates any characters in the provided value."""
    return hmac.compare_digest(expected.encode("ascii"), wire_bytes(provided))
