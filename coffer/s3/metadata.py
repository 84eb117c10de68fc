"""User metadata (`x-amz-meta-*`) on the wire: how its bytes become text, and text bytes again.

HTTP carries header values as bytes; S3 lets metadata hold any Unicode text, and clients do
not agree on the bytes for it. botocore, Go and curl send UTF-8; browsers, Node and Java send
latin-1 (one byte per character up to U+00FF). Reading, every client decodes response headers
as latin-1 (Python's http.client, Node, Java, browsers) or takes the raw bytes (Go, curl).

So a value is stored as text: its bytes read as UTF-8 when they are UTF-8 (a latin-1 text
that happens to be valid UTF-8 is all but impossible), else as latin-1; then RFC 2047
encoded words (`=?UTF-8?B?...?=`) are decoded, as AWS documents it does "before storing".
On the way out (`header_bytes`, which `responses.send` applies to every header) a value
goes as latin-1 when it can, so boto3 gets back the very string it sent for any text within
latin-1; a value HTTP cannot carry that way (a character above U+00FF, a control character)
goes as one RFC 2047 encoded word of its UTF-8, the form AWS answers non-ASCII metadata in:
Q-encoded, or B-encoded when it holds control characters. Decision record:
docs/decisions/0125-request-conformance.md.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import unicodedata
from collections.abc import Iterable

from coffer.errors import S3Error

PREFIX = "x-amz-meta-"
MAX_METADATA = 2048  # bytes of x-amz-meta-* names and values (UTF-8), as AWS limits user metadata

# One encoded word: =?charset?B|Q?text?= (RFC 2047 §2), charset without '*language'.
_WORD = re.compile(r"=\?([^?*\s]+)(?:\*[^?\s]*)?\?([BbQq])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"(?<=\?=)[ \t]+(?==\?)")  # white space between words is dropped
# Header bytes HTTP forbids in a field value (uvicorn refuses to send them): C0 but HTAB, DEL.
_UNSENDABLE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# Bytes a Q-encoded word carries as themselves (AWS's set: printable ASCII but = ? _ space).
_Q_SAFE = frozenset(range(0x21, 0x7F)) - frozenset(b"=?_")


def from_wire(value: str) -> str:
    """The text of a header value given as wire characters (latin-1, one per byte)."""
    if not value.isascii():
        # else latin-1 text (or text already): the characters are the value
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            value = value.encode("latin-1").decode("utf-8")
    return decode_words(value)


def decode_words(text: str) -> str:
    """`text` with its RFC 2047 encoded words decoded; a word that does not decode (unknown
    charset, bad base64, bytes not of the charset) stays as it is."""
    if "=?" not in text:
        return text
    text = _BETWEEN_WORDS.sub("", text)
    return _WORD.sub(_decode_word, text)


def _decode_word(match: re.Match[str]) -> str:
    charset, encoding, payload = match.group(1), match.group(2).upper(), match.group(3)
    try:
        raw = base64.b64decode(payload, validate=True) if encoding == "B" else _q_decode(payload)
        return raw.decode(charset)
    except (binascii.Error, ValueError, LookupError, UnicodeError):
        return match.group(0)


def _q_decode(payload: str) -> bytes:
    out = bytearray()
    data = payload.encode("ascii")  # the word pattern admits non-ASCII: ValueError then
    i = 0
    while i < len(data):
        c = data[i]
        if c == ord("_"):
            out.append(0x20)
        elif c == ord("="):
            pair = data[i + 1 : i + 3]
            if len(pair) != 2:
                raise ValueError("a '=' without two hex digits")
            out.append(int(pair, 16))  # ValueError unless hex
            i += 2
        else:
            out.append(c)
        i += 1
    return bytes(out)


def header_bytes(value: str) -> bytes:
    """A response header's value as bytes: latin-1 when HTTP can carry it so, else (user
    metadata beyond latin-1, or holding control characters) one RFC 2047 encoded word."""
    if value.isascii() and value.isprintable():
        return value.encode("ascii")
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return encode_word(value).encode("ascii")
    if _UNSENDABLE.search(raw):
        return encode_word(value).encode("ascii")
    return raw


def encode_word(text: str) -> str:
    """`text` as one RFC 2047 encoded word of its UTF-8, as S3 sends such metadata."""
    raw = text.encode("utf-8")
    if any(unicodedata.category(c).startswith("C") for c in text):
        return f"=?UTF-8?B?{base64.b64encode(raw).decode('ascii')}?="
    encoded = "".join("_" if b == 0x20 else chr(b) if b in _Q_SAFE else f"={b:02X}" for b in raw)
    return f"=?UTF-8?Q?{encoded}?="


def user_metadata(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """`x-amz-meta-*` names (lower-case) and their texts, refused with MetadataTooLarge past
    MAX_METADATA bytes of UTF-8 (names without the prefix, and values), as AWS counts them."""
    meta = dict(pairs)
    size = sum(len(name.encode()) - len(PREFIX) + len(value.encode()) for name, value in meta.items())
    if size > MAX_METADATA:
        raise S3Error("MetadataTooLarge", fields={"Size": str(size), "MaxSizeAllowed": str(MAX_METADATA)})
    return meta
