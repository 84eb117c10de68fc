"""aws-chunked bodies: strip the framing, verify chunk and trailer signatures.

The three streaming payload modes share one framing::

    <hex-size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n   ... repeated ...
    0[;chunk-signature=<sig>]\\r\\n                          the final, empty chunk
    <name>:<value>\\r\\n                                    trailing headers, if any
    [x-amz-trailer-signature:<sig>\\r\\n]                   signed-trailer mode only
    \\r\\n

In the signed modes every chunk signature chains from the previous one (the first from
the request's seed signature), so a changed, dropped or reordered chunk breaks the
chain. `ChunkedDecoder` is a push parser: `feed()` takes the body in whatever pieces
the network delivers (boundaries may fall inside a size line or a CRLF) and returns
decoded data. Memory stays bounded: unsigned data passes straight through, a signed
chunk is held only until its signature is checked (and may not exceed
`MAX_SIGNED_CHUNK`), and size and trailer lines are capped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from coffer.errors import S3Error
from coffer.s3.sigv4.canonical import (
    EMPTY_SHA256,
    chunk_string_to_sign,
    sha256_hex,
    sign,
    signatures_match,
    trailer_string_to_sign,
    wire_bytes,
)

MAX_SIZE_LINE = 1024
"""Longest chunk-size line accepted (a signed one is under 100 bytes)."""
MAX_TRAILER_LINE = 4096
MAX_TRAILERS = 16
MAX_SIGNED_CHUNK = 16 * 1024 * 1024
"""A signed chunk is held until its signature checks out; SDKs use 8 KiB to 1 MiB."""
TRAILER_SIGNATURE = "x-amz-trailer-signature"
_HEX = frozenset(b"0123456789abcdefABCDEF")
_SIGNATURE_PREFIX = b"chunk-signature="

# parser states
_SIZE, _DATA, _DATA_CRLF, _TRAILER, _DONE = range(5)


@dataclass(frozen=True, slots=True)
class ChunkSigning:
    """What chunk signatures are computed from: the request's key, date, scope and seed."""

    signing_key: bytes
    amz_date: str
    scope: str
    seed_signature: str


def _malformed(detail: str) -> S3Error:
    return S3Error("InvalidArgument", f"Malformed aws-chunked body: {detail}")


class ChunkedDecoder:
    """Push parser for aws-chunked bodies; see the module docstring for the format."""

    def __init__(
        self,
        *,
        signing: ChunkSigning | None,
        trailer: bool,
        declared_trailers: tuple[str, ...] = (),
        decoded_length: int | None = None,
    ) -> None:
        self._signing = signing
        self._previous = signing.seed_signature if signing else ""
        self._trailer_mode = trailer
        self._declared = declared_trailers
        self._decoded_length = decoded_length
        self._state = _SIZE
        self._line = bytearray()
        self._remaining = 0  # data bytes left in the current chunk
        self._crlf = 0  # bytes of the CRLF after chunk data seen so far
        self._chunk_signature = ""
        self._chunk_hash: hashlib._Hash | None = None
        self._held: list[bytes] = []
        self._chunks = 0
        self.size = 0
        """Decoded bytes so far."""
        self.trailers: dict[str, str] = {}
        self._trailer_order: list[tuple[str, str]] = []
        self._trailer_signature: str | None = None

    @property
    def done(self) -> bool:
        return self._state == _DONE

    # -- input ---------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[bytes]:
        """Consume one piece of the body; return the payload bytes it completes."""
        out: list[bytes] = []
        pos = 0
        end = len(data)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, end - pos)
                piece = data if take == end and pos == 0 else data[pos : pos + take]
                pos += take
                self._remaining -= take
                if self._signing is None:
                    out.append(piece)
                else:
                    assert self._chunk_hash is not None
                    self._chunk_hash.update(piece)
                    self._held.append(piece)
                if self._remaining == 0:
                    self._end_of_data(out)
            elif state == _DATA_CRLF:
                expected = b"\r\n"[self._crlf]
                if data[pos] != expected:
                    raise _malformed(f"chunk {self._chunks} is longer than its declared size.")
                pos += 1
                self._crlf += 1
                if self._crlf == 2:
                    self._state = _SIZE
            elif state == _DONE:
                raise _malformed("data follows the end of the body.")
            else:
                limit = MAX_SIZE_LINE if state == _SIZE else MAX_TRAILER_LINE
                line, pos = self._read_line(data, pos, limit)
                if line is None:
                    break
                if state == _SIZE:
                    self._size_line(line)
                else:
                    self._trailer_line(line)
        return out

    def close(self) -> None:
        """The body ended: refuse it unless the framing finished."""
        if self._state == _TRAILER and not self._line:
            # Tolerate a body that stops after its last trailer line without the blank
            # line that should close the trailer section; nothing is lost.
            self._finish_trailers()
        if self._state != _DONE:
            raise S3Error(
                "IncompleteBody",
                "The aws-chunked body ended before its final chunk"
                + (" and trailers." if self._state == _TRAILER else "."),
            )

    # -- lines ---------------------------------------------------------------------------
    def _read_line(self, data: bytes, pos: int, limit: int) -> tuple[bytes | None, int]:
        idx = data.find(b"\n", pos)
        if idx < 0:
            self._line += data[pos:]
            if len(self._line) > limit:
                raise _malformed(f"a line is longer than {limit} bytes.")
            return None, len(data)
        if self._line:
            self._line += data[pos:idx]
            line = bytes(self._line)
            self._line.clear()
        else:
            line = data[pos:idx]
        if len(line) > limit + 1:
            raise _malformed(f"a line is longer than {limit} bytes.")
        if not line.endswith(b"\r"):
            raise _malformed("a line does not end with CRLF.")
        return line[:-1], idx + 1

    def _size_line(self, line: bytes) -> None:
        self._chunks += 1
        size_text, semicolon, extension = line.partition(b";")
        if not size_text or len(size_text) > 16 or not _HEX.issuperset(size_text):
            raise _malformed(f"chunk {self._chunks} has an invalid size {size_text[:32]!r}.")
        size = int(size_text, 16)
        if self._signing is not None:
            if not semicolon or not extension.startswith(_SIGNATURE_PREFIX):
                raise S3Error(
                    "SignatureDoesNotMatch", f"Chunk {self._chunks} of a signed body has no chunk-signature."
                )
            self._chunk_signature = extension[len(_SIGNATURE_PREFIX) :].decode("latin-1")
            if size > MAX_SIGNED_CHUNK:
                raise _malformed(
                    f"chunk {self._chunks} of {size} bytes exceeds the {MAX_SIGNED_CHUNK}-byte "
                    "limit for signed chunks."
                )
        if self._decoded_length is not None and self.size + size > self._decoded_length:
            raise S3Error(
                "IncompleteBody",
                f"The aws-chunked body holds more than the {self._decoded_length} bytes "
                "x-amz-decoded-content-length declares.",
            )
        if size == 0:
            if self._signing is not None:
                self._verify_chunk(EMPTY_SHA256)
            if self._decoded_length is not None and self.size != self._decoded_length:
                raise S3Error(
                    "IncompleteBody",
                    f"The aws-chunked body holds {self.size} bytes but x-amz-decoded-content-length "
                    f"declares {self._decoded_length}.",
                )
            self._state = _TRAILER
            return
        self.size += size
        self._remaining = size
        self._crlf = 0
        if self._signing is not None:
            self._chunk_hash = hashlib.sha256()
        self._state = _DATA

    def _end_of_data(self, out: list[bytes]) -> None:
        if self._signing is not None:
            assert self._chunk_hash is not None
            self._verify_chunk(self._chunk_hash.hexdigest())
            self._chunk_hash = None
            out.extend(self._held)
            self._held = []
        self._state = _DATA_CRLF

    def _verify_chunk(self, chunk_sha256: str) -> None:
        signing = self._signing
        assert signing is not None
        expected = sign(
            signing.signing_key,
            chunk_string_to_sign(signing.amz_date, signing.scope, self._previous, chunk_sha256),
        )
        if not signatures_match(expected, self._chunk_signature):
            raise S3Error(
                "SignatureDoesNotMatch",
                f"The signature of chunk {self._chunks} does not match: the chunk was altered, "
                "reordered or dropped, or signed with another key.",
            )
        self._previous = expected

    # -- trailers ------------------------------------------------------------------------
    def _trailer_line(self, line: bytes) -> None:
        if not line:
            self._finish_trailers()
            return
        name_bytes, colon, value_bytes = line.partition(b":")
        name = name_bytes.decode("latin-1").strip().lower()
        value = value_bytes.decode("latin-1").strip(" \t")
        if not colon or not name:
            raise _malformed(f"trailer line {line[:64]!r} is not name:value.")
        if name == TRAILER_SIGNATURE and self._signing is not None and self._trailer_mode:
            if self._trailer_signature is not None:
                raise _malformed("the trailer signature appears twice.")
            self._trailer_signature = value
            return
        if self._trailer_signature is not None:
            raise _malformed("a trailer follows x-amz-trailer-signature.")
        if not self._trailer_mode:
            raise S3Error(
                "InvalidRequest",
                f"Trailer {name} was sent, but x-amz-content-sha256 names a mode without trailers.",
            )
        if name not in self._declared:
            raise S3Error("InvalidRequest", f"Trailer {name} was sent but not declared in x-amz-trailer.")
        if name in self.trailers:
            raise _malformed(f"trailer {name} appears twice.")
        if len(self.trailers) >= MAX_TRAILERS:
            raise _malformed(f"more than {MAX_TRAILERS} trailers.")
        self.trailers[name] = value
        self._trailer_order.append((name, value))

    def _finish_trailers(self) -> None:
        missing = [n for n in self._declared if n not in self.trailers]
        if missing:
            raise S3Error(
                "InvalidRequest",
                f"The trailer {', '.join(missing)} declared in x-amz-trailer was not sent.",
            )
        if self._signing is not None and self._trailer_mode:
            if self._trailer_signature is None:
                if self.trailers:
                    raise S3Error("SignatureDoesNotMatch", "The trailers carry no x-amz-trailer-signature.")
            else:
                self._verify_trailer_signature(self._trailer_signature)
                self.trailers[TRAILER_SIGNATURE] = self._trailer_signature
        self._state = _DONE

    def _verify_trailer_signature(self, provided: str) -> None:
        signing = self._signing
        assert signing is not None
        orders = [self._trailer_order]
        ordered = sorted(self._trailer_order)
        if ordered != self._trailer_order:
            orders.append(ordered)
        for order in orders:
            canonical = "".join(f"{name}:{value}\n" for name, value in order)
            expected = sign(
                signing.signing_key,
                trailer_string_to_sign(
                    signing.amz_date, signing.scope, self._previous, sha256_hex(wire_bytes(canonical))
                ),
            )
            if signatures_match(expected, provided):
                return
        raise S3Error("SignatureDoesNotMatch", "The trailer signature does not match the trailers.")
