"""Garbage in, S3 errors out: no input makes the verifier raise anything but S3Error."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffer.errors import S3Error
from coffer.s3.sigv4 import PayloadVerifier, SignedRequest, authenticate
from coffer.s3.sigv4.streaming import ChunkedDecoder, ChunkSigning
from tests.support.sigv4 import Keyring, _aiter, header_signed, make_creds, to_signed

ALICE = make_creds("CWFUZZAAAAAAAAAA", "cwo" + "f" * 40)
KEYRING = Keyring({ALICE.key.access_key_id: ALICE})
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

latin1 = st.text(st.characters(max_codepoint=0xFF, exclude_categories=["Cs"]), max_size=80)
fragments = st.sampled_from(
    [
        "AWS4-HMAC-SHA256 ",
        "AWS ",
        "Credential=",
        "CWFUZZAAAAAAAAAA/",
        "20250101/",
        "us-east-1/s3/aws4_request",
        ", SignedHeaders=",
        "host;x-amz-date",
        ", Signature=",
        "0" * 64,
        ",",
        "=",
        "/",
        ";",
        " ",
        "%",
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&",
        "X-Amz-Credential=CWFUZZAAAAAAAAAA%2F20250101%2Fr%2Fs3%2Faws4_request&",
        "X-Amz-Date=20250101T000000Z&",
        "X-Amz-Expires=",
        "X-Amz-SignedHeaders=host&",
        "X-Amz-Signature=",
        "AWSAccessKeyId=CWFUZZAAAAAAAAAA&",
        "Signature=",
        "Expires=",
        "99999999999",
        "-1",
        "99991231T235959Z",
        "00010101T000000Z",
    ]
)
junk = st.lists(st.one_of(fragments, latin1), max_size=8).map("".join)


def _survives(request: SignedRequest) -> None:
    try:
        authenticate(request, KEYRING)
    except S3Error:
        pass


@FUZZ
@given(authorization=junk, amz_date=junk, query=junk, content=junk, path=junk)
def test_authenticate_never_crashes(
    authorization: str, amz_date: str, query: str, content: str, path: str
) -> None:
    headers = [
        ("host", "s3.test.local"),
        ("authorization", authorization),
        ("x-amz-date", amz_date),
        ("x-amz-content-sha256", content),
        ("date", amz_date),
    ]
    _survives(SignedRequest("GET", "/" + path, query, headers, host="s3.test.local"))
    _survives(SignedRequest("GET", "/" + path, query, headers[:1], host="s3.test.local"))


@FUZZ
@given(position=st.integers(0, 10_000), value=latin1)
def test_mutated_real_request_never_crashes(position: int, value: str) -> None:
    signed = to_signed(header_signed(ALICE, "PUT", query="uploadId=1&partNumber=2", body=b"x"))
    headers = list(signed.headers)
    index = position % len(headers)
    headers[index] = (headers[index][0], value)
    _survives(SignedRequest("PUT", signed.raw_path, signed.raw_query, headers, host=signed.host))


@FUZZ
@given(body=st.lists(st.binary(max_size=60) | st.sampled_from([b"\r\n", b"0", b";chunk-signature=", b"ff"])))
def test_chunk_decoder_never_crashes(body: list[bytes]) -> None:
    for signing in (
        None,
        ChunkSigning(b"k" * 32, "20250101T000000Z", "20250101/r/s3/aws4_request", "0" * 64),
    ):
        for trailer in (False, True):
            decoder = ChunkedDecoder(
                signing=signing,
                trailer=trailer,
                declared_trailers=("x-amz-checksum-crc32",),
                decoded_length=None,
            )
            try:
                for piece in body:
                    decoder.feed(piece)
                decoder.close()
            except S3Error:
                pass


@FUZZ
@given(body=st.binary(max_size=300), trailer=latin1)
def test_unsigned_trailer_verifier_never_crashes(body: bytes, trailer: str) -> None:
    request = SignedRequest(
        "PUT",
        "/b/k",
        "",
        [
            ("host", "h"),
            ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
        ],
    )
    wire = (
        f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\nx-amz-checksum-crc32:" + trailer.encode("latin-1")
    )
    wire += b"\r\n\r\n"
    verifier = PayloadVerifier(None, request)

    async def consume() -> None:
        async for _ in verifier.stream(_aiter([wire])):
            pass

    try:
        asyncio.run(consume())
        verifier.finish({"crc32": b"\0\0\0\0"})
    except S3Error:
        pass
