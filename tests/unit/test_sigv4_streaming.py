"""aws-chunked uploads: signed chunks chained from the seed signature, signed trailers,
and botocore's unsigned-trailer bodies, fed to PayloadVerifier in arbitrary pieces."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
from typing import Any

import pytest

from coffer import checksums
from coffer.errors import S3Error
from coffer.s3.sigv4 import PayloadMode, PayloadVerifier, SignedRequest
from coffer.s3.sigv4.streaming import MAX_SIGNED_CHUNK
from tests.support.sigv4 import (
    Keyring,
    SignedStream,
    _aiter,
    auth_of,
    chunk_signature,
    client_capture,
    header_signed,
    one_key_fixtures,
    run_payload,
    signed_chunks,
    split_randomly,
    start_signed_stream,
    to_signed,
    trailer_signature,
)

SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
AKID = "CWSTREAMAAAAAAAA"


keyring, alice = one_key_fixtures(AKID, "cwo" + "c" * 40)


def chunks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def refused_stream(keyring: Keyring, stream: SignedStream, pieces: list[bytes], code: str) -> S3Error:
    auth = auth_of(stream.request, keyring)
    with pytest.raises(S3Error) as info:
        run_payload(auth, stream.request, pieces)
    assert info.value.code == code, (info.value.code, info.value.message)
    return info.value


# -- STREAMING-AWS4-HMAC-SHA256-PAYLOAD -------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_signed_chunks_any_split(keyring: Keyring, alice: Any, seed: int) -> None:
    body = os.urandom(3000 + seed * 517)
    stream = start_signed_stream(alice, SIGNED, len(body))
    auth = auth_of(stream.request, keyring)
    assert auth.payload_mode is PayloadMode.STREAMING_SIGNED
    assert auth.decoded_content_length == len(body)
    assert auth.seed_signature == stream.seed
    framed, _ = signed_chunks(stream, chunks_of(body, 1024))
    wire = b"".join(framed)
    pieces = split_randomly(wire, seed, max_piece=1 if seed == 0 else 7 + seed * 40)
    decoded, verifier = run_payload(auth, stream.request, pieces)
    assert decoded == body
    assert verifier.required_digests == set()
    assert verifier.decoded_size == len(body)


def test_signed_chunks_large_pieces(keyring: Keyring, alice: Any) -> None:
    body = os.urandom(300_000)
    stream = start_signed_stream(alice, SIGNED, len(body))
    framed, _ = signed_chunks(stream, chunks_of(body, 65536))
    decoded, _ = run_payload(auth_of(stream.request, keyring), stream.request, [b"".join(framed)])
    assert decoded == body


def test_empty_signed_body(keyring: Keyring, alice: Any) -> None:
    stream = start_signed_stream(alice, SIGNED, 0)
    framed, _ = signed_chunks(stream, [])
    decoded, _ = run_payload(auth_of(stream.request, keyring), stream.request, framed)
    assert decoded == b""


def test_flipped_byte_in_a_chunk(keyring: Keyring, alice: Any) -> None:
    body = os.urandom(4096)
    stream = start_signed_stream(alice, SIGNED, len(body))
    framed, _ = signed_chunks(stream, chunks_of(body, 1024))
    wire = bytearray(b"".join(framed))
    position = wire.index(body[2048:2080])  # inside the third chunk's data
    wire[position] ^= 0x01
    auth = auth_of(stream.request, keyring)
    verifier = PayloadVerifier(auth, stream.request)
    yielded = bytearray()

    async def consume() -> None:
        async for piece in verifier.stream(_aiter(split_randomly(bytes(wire), 3, 300))):
            yielded.extend(piece)

    with pytest.raises(S3Error) as info:
        asyncio.run(consume())
    assert info.value.code == "SignatureDoesNotMatch"
    assert "chunk 3" in info.value.message
    assert bytes(yielded) == body[:2048]  # only verified chunks were ever handed on


def test_reordered_chunks(keyring: Keyring, alice: Any) -> None:
    body = os.urandom(3072)
    stream = start_signed_stream(alice, SIGNED, len(body))
    framed, _ = signed_chunks(stream, chunks_of(body, 1024))
    framed[0], framed[1] = framed[1], framed[0]
    refused_stream(keyring, stream, framed, "SignatureDoesNotMatch")


def test_dropped_chunk(keyring: Keyring, alice: Any) -> None:
    body = os.urandom(3072)
    stream = start_signed_stream(alice, SIGNED, None)
    framed, _ = signed_chunks(stream, chunks_of(body, 1024))
    del framed[1]
    refused_stream(keyring, stream, framed, "SignatureDoesNotMatch")


def test_chunk_signed_by_another_seed(keyring: Keyring, alice: Any) -> None:
    body = os.urandom(2048)
    stream = start_signed_stream(alice, SIGNED, len(body))
    other = start_signed_stream(alice, SIGNED, len(body), path="/bucket/other")
    framed, _ = signed_chunks(other, chunks_of(body, 1024))
    refused_stream(keyring, stream, framed, "SignatureDoesNotMatch")


def test_wrong_final_chunk(keyring: Keyring, alice: Any) -> None:
    body = os.urandom(2048)
    stream = start_signed_stream(alice, SIGNED, len(body))
    framed, signatures = signed_chunks(stream, chunks_of(body, 1024))
    # a final chunk whose signature does not chain from the last data chunk
    forged = [*framed[:2], f"0;chunk-signature={signatures[0]}\r\n".encode(), b"\r\n"]
    refused_stream(keyring, stream, forged, "SignatureDoesNotMatch")
    # a final chunk without a signature
    refused_stream(keyring, stream, [*framed[:2], b"0\r\n\r\n"], "SignatureDoesNotMatch")
    # no final chunk at all: the body simply stops
    error = refused_stream(keyring, stream, framed[:2], "IncompleteBody")
    assert error.status == 400


def test_truncated_inside_a_chunk(keyring: Keyring, alice: Any) -> None:
    body = os.urandom(2048)
    stream = start_signed_stream(alice, SIGNED, len(body))
    wire = b"".join(signed_chunks(stream, chunks_of(body, 1024))[0])
    refused_stream(keyring, stream, [wire[:1500]], "IncompleteBody")


@pytest.mark.parametrize("declared_delta", [1, -1, 5000])
def test_decoded_length_mismatch(keyring: Keyring, alice: Any, declared_delta: int) -> None:
    body = os.urandom(2048)
    stream = start_signed_stream(alice, SIGNED, len(body) + declared_delta)
    framed, _ = signed_chunks(stream, chunks_of(body, 1024))
    error = refused_stream(keyring, stream, framed, "IncompleteBody")
    assert "x-amz-decoded-content-length" in error.message


def test_oversize_chunk_size_line(keyring: Keyring, alice: Any) -> None:
    stream = start_signed_stream(alice, SIGNED, None)
    error = refused_stream(keyring, stream, [b"1" + b"0" * 5000], "InvalidArgument")
    assert "longer than" in error.message
    # also when the line arrives in small pieces that never contain a newline
    refused_stream(keyring, stream, [b"a" * 100] * 20, "InvalidArgument")
    long_signature = b"400;chunk-signature=" + b"0" * 2000 + b"\r\n"
    refused_stream(keyring, stream, [long_signature], "InvalidArgument")


def test_chunk_size_not_hex_or_too_big(keyring: Keyring, alice: Any) -> None:
    stream = start_signed_stream(alice, SIGNED, None)
    refused_stream(keyring, stream, [b"zz;chunk-signature=" + b"0" * 64 + b"\r\n"], "InvalidArgument")
    refused_stream(keyring, stream, [b"-1;chunk-signature=" + b"0" * 64 + b"\r\n"], "InvalidArgument")
    huge = f"{MAX_SIGNED_CHUNK + 1:x};chunk-signature={'0' * 64}\r\n".encode()
    error = refused_stream(keyring, stream, [huge], "InvalidArgument")
    assert "limit for signed chunks" in error.message


def test_chunk_longer_than_declared(keyring: Keyring, alice: Any) -> None:
    stream = start_signed_stream(alice, SIGNED, None)
    signature = chunk_signature(stream, stream.seed, b"abcd")
    wire = f"4;chunk-signature={signature}\r\n".encode() + b"abcdEXTRA\r\n"
    refused_stream(keyring, stream, [wire], "InvalidArgument")


def test_data_after_the_end(keyring: Keyring, alice: Any) -> None:
    body = b"hello"
    stream = start_signed_stream(alice, SIGNED, len(body))
    framed, _ = signed_chunks(stream, [body])
    refused_stream(keyring, stream, [*framed, b"junk"], "InvalidArgument")


def test_missing_crlf_line_ending(keyring: Keyring, alice: Any) -> None:
    body = b"hello"
    stream = start_signed_stream(alice, SIGNED, len(body))
    signature = chunk_signature(stream, stream.seed, body)
    refused_stream(keyring, stream, [f"5;chunk-signature={signature}\n".encode()], "InvalidArgument")


# -- STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER ------------------------------------------------
def crc32c_b64(data: bytes) -> str:
    return checksums.to_header_value("crc32c", checksums.compute("crc32c", data))


@pytest.mark.parametrize("seed", range(4))
def test_signed_trailer(keyring: Keyring, alice: Any, seed: int) -> None:
    body = os.urandom(5000)
    stream = start_signed_stream(alice, SIGNED_TRAILER, len(body), trailer="x-amz-checksum-crc32c")
    auth = auth_of(stream.request, keyring)
    assert auth.trailer_names == ("x-amz-checksum-crc32c",)
    framed, _ = signed_chunks(
        stream, chunks_of(body, 2048), trailers=[("x-amz-checksum-crc32c", crc32c_b64(body))]
    )
    decoded, verifier = run_payload(auth, stream.request, split_randomly(b"".join(framed), seed, 50))
    assert decoded == body
    assert verifier.required_digests == {"crc32c"}
    assert verifier.trailers["x-amz-checksum-crc32c"] == crc32c_b64(body)


def test_signed_trailer_bad_checksum(keyring: Keyring, alice: Any) -> None:
    body = os.urandom(3000)
    stream = start_signed_stream(alice, SIGNED_TRAILER, len(body), trailer="x-amz-checksum-crc32c")
    framed, _ = signed_chunks(
        stream, chunks_of(body, 1024), trailers=[("x-amz-checksum-crc32c", crc32c_b64(body + b"!"))]
    )
    error = refused_stream(keyring, stream, framed, "BadDigest")
    assert "CRC32C" in error.message


def test_signed_trailer_bad_signature(keyring: Keyring, alice: Any) -> None:
    body = os.urandom(3000)
    stream = start_signed_stream(alice, SIGNED_TRAILER, len(body), trailer="x-amz-checksum-crc32c")
    framed, signatures = signed_chunks(stream, chunks_of(body, 1024), trailers=[])
    good = ("x-amz-checksum-crc32c", crc32c_b64(body))
    # signed over a different value than the one sent
    sig = trailer_signature(stream, signatures[-1], [("x-amz-checksum-crc32c", crc32c_b64(b"other"))])
    framed[-1] = f"{good[0]}:{good[1]}\r\nx-amz-trailer-signature:{sig}\r\n\r\n".encode()
    refused_stream(keyring, stream, framed, "SignatureDoesNotMatch")
    # chained from the wrong previous signature
    sig = trailer_signature(stream, signatures[0], [good])
    framed[-1] = f"{good[0]}:{good[1]}\r\nx-amz-trailer-signature:{sig}\r\n\r\n".encode()
    refused_stream(keyring, stream, framed, "SignatureDoesNotMatch")
    # no trailer signature at all
    framed[-1] = f"{good[0]}:{good[1]}\r\n\r\n".encode()
    refused_stream(keyring, stream, framed, "SignatureDoesNotMatch")


def test_signed_trailer_undeclared_or_missing(keyring: Keyring, alice: Any) -> None:
    body = b"x" * 100
    stream = start_signed_stream(alice, SIGNED_TRAILER, len(body), trailer="x-amz-checksum-crc32c")
    framed, _ = signed_chunks(stream, [body], trailers=[("x-amz-checksum-sha1", "AAAA")])
    error = refused_stream(keyring, stream, framed, "InvalidRequest")
    assert "not declared" in error.message
    framed, _ = signed_chunks(stream, [body], trailers=[])
    error = refused_stream(keyring, stream, framed, "InvalidRequest")
    assert "was not sent" in error.message


def test_trailer_in_a_mode_without_trailers(keyring: Keyring, alice: Any) -> None:
    body = b"y" * 10
    stream = start_signed_stream(alice, SIGNED, len(body))
    framed, _ = signed_chunks(stream, [body])
    framed[-1] = b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n"
    refused_stream(keyring, stream, framed, "InvalidRequest")


# -- STREAMING-UNSIGNED-PAYLOAD-TRAILER, as botocore encodes it ---------------------------------
@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
@pytest.mark.parametrize("size", [0, 1, 70_000])
def test_botocore_unsigned_trailer(keyring: Keyring, alice: Any, algorithm: str, size: int) -> None:
    body = os.urandom(size)
    captured = client_capture(
        alice,
        lambda c: c.put_object(Bucket="bkt", Key="obj", Body=io.BytesIO(body), ChecksumAlgorithm=algorithm),
    )
    assert b"x-amz-checksum-" + algorithm.lower().encode() in captured.body  # it really is aws-chunked
    request = captured.signed()
    auth = auth_of(request, keyring)
    assert auth.payload_mode is PayloadMode.STREAMING_UNSIGNED_TRAILER
    assert auth.trailer_names == ("x-amz-checksum-" + algorithm.lower(),)
    for seed in range(3):
        decoded, verifier = run_payload(auth, request, split_randomly(captured.body, seed, 1 + seed * 3000))
        assert decoded == body
        assert verifier.required_digests == {algorithm.lower()}
        header = "x-amz-checksum-" + algorithm.lower()
        expected = checksums.to_header_value(algorithm.lower(), checksums.compute(algorithm.lower(), body))
        assert verifier.trailers == {header: expected}


def test_botocore_unsigned_trailer_multi_chunk(keyring: Keyring, alice: Any) -> None:
    body = os.urandom(2 * 1024 * 1024 + 12345)  # botocore frames 1 MiB chunks
    captured = client_capture(
        alice,
        lambda c: c.put_object(Bucket="bkt", Key="o", Body=io.BytesIO(body), ChecksumAlgorithm="CRC32C"),
    )
    request = captured.signed()
    decoded, _ = run_payload(auth_of(request, keyring), request, split_randomly(captured.body, 1, 65536))
    assert decoded == body


def test_unsigned_trailer_corrupted_body(keyring: Keyring, alice: Any) -> None:
    body = os.urandom(5000)
    captured = client_capture(
        alice,
        lambda c: c.put_object(Bucket="bkt", Key="o", Body=io.BytesIO(body), ChecksumAlgorithm="CRC64NVME"),
    )
    wire = bytearray(captured.body)
    wire[wire.index(body[100:140]) + 3] ^= 0xFF
    request = captured.signed()
    with pytest.raises(S3Error) as info:
        run_payload(auth_of(request, keyring), request, [bytes(wire)])
    assert info.value.code == "BadDigest"
    assert "CRC64NVME" in info.value.message


def test_unsigned_trailer_bad_values(keyring: Keyring, alice: Any) -> None:
    body = b"hello world"
    captured = client_capture(
        alice,
        lambda c: c.put_object(Bucket="bkt", Key="o", Body=io.BytesIO(body), ChecksumAlgorithm="SHA256"),
    )
    request = captured.signed()
    auth = auth_of(request, keyring)
    good = base64.b64encode(hashlib.sha256(body).digest()).decode()
    for bad, code in [
        (base64.b64encode(hashlib.sha256(b"other").digest()).decode(), "BadDigest"),
        ("not base64!", "InvalidRequest"),
        (base64.b64encode(b"short").decode(), "InvalidRequest"),
    ]:
        wire = captured.body.replace(good.encode(), bad.encode())
        assert wire != captured.body
        with pytest.raises(S3Error) as info:
            run_payload(auth, request, [wire])
        assert info.value.code == code


def test_unsigned_trailer_missing_final_crlf_is_tolerated(keyring: Keyring, alice: Any) -> None:
    body = b"abc" * 50
    captured = client_capture(
        alice, lambda c: c.put_object(Bucket="bkt", Key="o", Body=io.BytesIO(body), ChecksumAlgorithm="CRC32")
    )
    assert captured.body.endswith(b"\r\n\r\n")
    request = captured.signed()
    decoded, _ = run_payload(auth_of(request, keyring), request, [captured.body[:-2]])
    assert decoded == body


def test_anonymous_unsigned_trailer(alice: Any) -> None:
    """With no credentials the framing still follows x-amz-content-sha256."""
    body = b"public upload"
    captured = client_capture(
        alice, lambda c: c.put_object(Bucket="bkt", Key="o", Body=io.BytesIO(body), ChecksumAlgorithm="CRC32")
    )
    request = captured.signed()
    decoded, verifier = run_payload(None, request, split_randomly(captured.body, 9, 5))
    assert decoded == body and verifier.required_digests == {"crc32"}


def test_anonymous_signed_streaming_refused(alice: Any) -> None:
    stream = start_signed_stream(alice, SIGNED, 10)
    with pytest.raises(S3Error) as info:
        PayloadVerifier(None, stream.request)
    assert info.value.code == "InvalidRequest"


# -- whole-body SHA-256 ------------------------------------------------------------------------
def test_signed_payload_sha256_checked(keyring: Keyring, alice: Any) -> None:
    request = to_signed(header_signed(alice, "PUT", body=b"the real body"))
    auth = auth_of(request, keyring)
    assert auth.payload_mode is PayloadMode.SIGNED
    decoded, verifier = run_payload(auth, request, [b"the real ", b"body"])
    assert decoded == b"the real body"
    assert verifier.required_digests == {"sha256"}
    with pytest.raises(S3Error) as info:
        run_payload(auth, request, [b"a forged body"])
    assert info.value.code == "XAmzContentSHA256Mismatch"
    assert info.value.fields["ClientComputedContentSHA256"] == hashlib.sha256(b"the real body").hexdigest()


def test_unsigned_payload_passes_through(keyring: Keyring, alice: Any) -> None:
    request = to_signed(header_signed(alice, "PUT", body=b"x", payload="UNSIGNED-PAYLOAD"))
    decoded, verifier = run_payload(auth_of(request, keyring), request, [b"any", b"thing"])
    assert decoded == b"anything" and verifier.required_digests == set() and verifier.trailers == {}


def test_finish_needs_the_stream_and_digests(keyring: Keyring, alice: Any) -> None:
    request = to_signed(header_signed(alice, "PUT", body=b"body"))
    verifier = PayloadVerifier(auth_of(request, keyring), request)
    with pytest.raises(RuntimeError):
        verifier.finish({"sha256": hashlib.sha256(b"body").digest()})
    _, verifier = run_payload(auth_of(request, keyring), request, [b"body"], finish=False)
    with pytest.raises(RuntimeError):
        verifier.finish({})
    verifier.finish({"sha256": hashlib.sha256(b"body").digest()})


def test_anonymous_signed_payload_checked() -> None:
    request = SignedRequest(
        "PUT", "/b/k", "", [("host", "h"), ("x-amz-content-sha256", hashlib.sha256(b"ok").hexdigest())]
    )
    run_payload(None, request, [b"ok"])
    with pytest.raises(S3Error) as info:
        run_payload(None, request, [b"not ok"])
    assert info.value.code == "XAmzContentSHA256Mismatch"
