"""The pure parts of issue 14's request parsing: user metadata text on the wire (RFC 2047 both
ways), Content-Encoding without aws-chunked, and a plain chunked body's bound, streamed through
the face's own body path into a real store (each backend)."""

from __future__ import annotations

import asyncio
import dataclasses
from email.header import decode_header
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coffer.config import Settings
from coffer.errors import S3Error
from coffer.s3 import metadata
from coffer.s3.context import Context
from coffer.s3.handlers.common import content_encoding
from coffer.s3.payload import request_body
from coffer.s3.request import S3Request
from coffer.storage.errors import EntityTooLarge, NoSuchKey
from coffer.storage.rules import MAX_PART_SIZE
from tests.support.storage import Env


def _rfc2047(value: str) -> str:
    return "".join(p.decode(c or "ascii") if isinstance(p, bytes) else p for p, c in decode_header(value))


def test_from_wire_reads_utf8_then_latin1() -> None:
    assert metadata.from_wire("plain ascii") == "plain ascii"
    assert metadata.from_wire("caf\xc3\xa9") == "café"  # UTF-8 bytes (botocore, Go, curl)
    assert metadata.from_wire("caf\xe9") == "café"  # one latin-1 byte (browsers, Node, Java)
    assert metadata.from_wire("\xe4\xb8\xad") == "中"


def test_encoded_words_are_decoded() -> None:
    assert metadata.decode_words("=?UTF-8?B?Y2Fmw6k=?=") == "café"
    assert metadata.decode_words("=?utf-8?q?caf=C3=A9_au_lait?=") == "café au lait"
    assert metadata.decode_words("=?ISO-8859-1?Q?caf=E9?= =?UTF-8?Q?_cr=C3=A8me?=") == "café crème"
    assert metadata.decode_words("x =?UTF-8?B?w6k=?= y") == "x é y"
    for kept in (
        "=?UTF-8?B?!!!?=",
        "=?NOPE?Q?x?=",
        "=?UTF-8?Q?=ZZ?=",
        "=?UTF-8?Q?=4?=",
        "a=?b",
        "=?UTF-8?X?x?=",
    ):
        assert metadata.decode_words(kept) == kept


def test_header_bytes_latin1_when_it_can() -> None:
    assert metadata.header_bytes("text/plain") == b"text/plain"
    assert metadata.header_bytes("caf\xe9\tx") == b"caf\xe9\tx"
    assert metadata.header_bytes("\xc3\xa9") == b"\xc3\xa9"  # stored wire characters go back as they came
    word = metadata.header_bytes("中文 €").decode("ascii")
    assert word.startswith("=?UTF-8?Q?") and _rfc2047(word) == "中文 €"
    control = metadata.header_bytes("\x04mymeta").decode("ascii")
    assert control.startswith("=?UTF-8?B?") and _rfc2047(control) == "\x04mymeta"
    assert metadata.header_bytes("a\r\nb").startswith(b"=?UTF-8?B?")


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=60))
def test_encode_word_round_trips(text: str) -> None:
    word = metadata.encode_word(text)
    assert word.isascii() and " " not in word and "\t" not in word
    assert metadata.decode_words(word) == text


def test_user_metadata_counts_utf8_bytes() -> None:
    assert metadata.user_metadata([("x-amz-meta-a", "é" * 1023)]) == {"x-amz-meta-a": "é" * 1023}
    with pytest.raises(S3Error) as err:
        metadata.user_metadata([("x-amz-meta-ab", "é" * 1024)])
    assert err.value.code == "MetadataTooLarge" and err.value.fields["Size"] == "2050"


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("gzip", "gzip"),
        ("deflate, gzip", "deflate, gzip"),
        ("deflate,gzip", "deflate,gzip"),
        ("aws-chunked", None),
        ("AWS-CHUNKED", None),
        ("aws-chunked,gzip", "gzip"),
        ("gzip, aws-chunked", "gzip"),
        ("br, aws-chunked, gzip", "br, gzip"),
        ("aws-chunked,", None),
    ],
)
def test_content_encoding(sent: str, stored: str | None) -> None:
    assert content_encoding(sent) == stored


# --- a chunked body's bound -------------------------------------------------------------------
def _chunked_request(pieces: list[bytes], read: list[int]) -> Context:
    bodies = [*pieces, b""]

    async def receive() -> dict[str, Any]:
        body = bodies[len(read)]
        read.append(len(body))
        return {"type": "http.request", "body": body, "more_body": len(read) < len(bodies)}

    scope = {
        "type": "http",
        "method": "PUT",
        "path": "/b/k",
        "raw_path": b"/b/k",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 5555),
    }
    request = S3Request(scope, receive, Settings(), "RID")
    return Context(cast(Any, None), request, request.signed(), cast(Any, None), None, None)


def test_chunked_body_has_no_length_and_the_part_bound(env: Env, bucket: str) -> None:
    read: list[int] = []
    body, expect = request_body(_chunked_request([b"x" * 400] * 3, read))
    assert expect.length is None and expect.max_size == MAX_PART_SIZE
    stored, _ = asyncio.run(env.storage.objects.write(bucket, "whole", body, expect, headers={}, owner="p"))
    assert stored.blob.size == 1200 and sum(read) == 1200


def test_chunked_body_is_refused_past_the_bound_as_it_streams(env: Env, bucket: str) -> None:
    """With the bound made small (5 GiB is the real one), the body is cut off at the first
    chunk past it: EntityTooLarge, not a byte more read, nothing stored, no blob left."""
    before = set(env.blobs.tmp_path.iterdir())
    read: list[int] = []
    body, expect = request_body(_chunked_request([b"x" * 400] * 10, read))
    small = dataclasses.replace(expect, max_size=1000)
    with pytest.raises(EntityTooLarge):
        asyncio.run(env.storage.objects.write(bucket, "big", body, small, headers={}, owner="p"))
    assert sum(read) == 1200 and len(read) == 3
    assert set(env.blobs.tmp_path.iterdir()) <= before
    with pytest.raises(NoSuchKey):
        env.storage.objects.get(bucket, "big")
