"""Request bodies as the S3 face reads them: what the headers declare, and the verified stream.

An object body (`request_body`) is handed to storage as an async iterator of chunks that
passes through the `PayloadVerifier` (aws-chunked framing, chunk signatures, trailers),
with an `Expect` of what the request declared (length, Content-MD5, x-amz-checksum-*) and
the verifier's end-of-body check (the signed SHA-256, trailing checksums). Storage streams
it into a blob, runs the checks, and commits only when all of them passed
(`coffer.storage.bodies`). Small documents (XML, JSON) are read whole here
(`read_small_body`), verified the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from coffer import checksums as cks
from coffer.errors import S3Error
from coffer.s3.context import Context
from coffer.s3.request import decode_base64
from coffer.s3.sigv4 import PayloadVerifier
from coffer.storage.bodies import Expect, StoredBody
from coffer.storage.errors import EntityTooLarge
from coffer.storage.rules import MAX_PART_SIZE

HEADER = "x-amz-checksum-"
MULTIPLE_CHECKSUMS = "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."


@dataclass
class ChecksumSpec:
    """The checksum a request carries or asks for."""

    algorithm: str | None = None  # lower-case: crc32, ..., sha256
    value: bytes | None = None  # from an x-amz-checksum-<alg> header
    trailer: bool = False  # the value arrives in the aws-chunked trailer
    requested: bool = False  # the client named it (header, trailer or sdk algorithm)

    @property
    def s3_name(self) -> str:
        assert self.algorithm is not None
        return cks.display_name(self.algorithm)

    @property
    def header(self) -> str:
        return f"x-amz-checksum-{self.algorithm}"


def decode_checksum(alg: str, value: str, *, shown: str) -> bytes:
    """The digest an x-amz-checksum-<alg> header or form field declares. InvalidRequest for
    an unknown algorithm (named as `shown`) or a value that is not its digest in base64."""
    if alg not in cks.CHECKSUM_ALGORITHMS:
        raise S3Error(
            "InvalidRequest", f"The algorithm type you specified in x-amz-checksum-{shown} is invalid."
        )
    raw = decode_base64(value, cks.digest_size(alg))
    if raw is None:
        raise S3Error("InvalidRequest", f"Value for {HEADER}{alg} header is invalid.")
    return raw


def request_checksum(ctx: Context) -> ChecksumSpec:
    """Read x-amz-checksum-*, x-amz-trailer and x-amz-sdk-checksum-algorithm; refuse bad values."""
    req = ctx.request
    spec = ChecksumSpec()
    present = [
        (name[len("x-amz-checksum-") :], value)
        for name, value in req.headers_with_prefix("x-amz-checksum-").items()
        if name not in ("x-amz-checksum-type", "x-amz-checksum-mode", "x-amz-checksum-algorithm")
    ]
    if len(present) > 1:
        raise S3Error("InvalidRequest", MULTIPLE_CHECKSUMS)
    if present:
        alg, value = present[0]
        spec.algorithm, spec.value, spec.requested = alg, decode_checksum(alg, value, shown=alg), True
    trailer = (req.header("x-amz-trailer") or "").strip().lower()
    if trailer.startswith("x-amz-checksum-"):
        alg = trailer[len("x-amz-checksum-") :]
        if alg not in cks.CHECKSUM_ALGORITHMS:
            raise S3Error("InvalidRequest", f"The algorithm type you specified in {trailer} is invalid.")
        if spec.algorithm and spec.algorithm != alg:
            raise S3Error("InvalidRequest", MULTIPLE_CHECKSUMS)
        spec.algorithm, spec.trailer, spec.requested = alg, True, True
    sdk = req.header("x-amz-sdk-checksum-algorithm")
    if sdk is not None:
        alg = sdk.strip().lower()
        if alg not in cks.CHECKSUM_ALGORITHMS:
            raise S3Error("InvalidRequest", "Value for x-amz-sdk-checksum-algorithm header is invalid.")
        if spec.algorithm and spec.algorithm != alg:  # AWS answers this, not BadDigest
            raise S3Error("InvalidRequest", "Value for x-amz-sdk-checksum-algorithm header is invalid.")
        spec.algorithm, spec.requested = alg, True
    return spec


def content_md5(ctx: Context) -> bytes | None:
    """Content-MD5 as raw bytes; InvalidDigest if it is not base64 of 16 bytes."""
    value = ctx.request.header("content-md5")
    if value is None:
        return None
    raw = decode_base64(value, 16)
    if raw is None:
        raise S3Error("InvalidDigest")
    return raw


def check_digests(spec: ChecksumSpec, md5: bytes | None, digests: dict[str, bytes]) -> None:
    """Compare what the client declared in headers with what arrived."""
    if md5 is not None and digests.get("md5") != md5:
        raise S3Error("BadDigest")
    if spec.value is not None and spec.algorithm and digests.get(spec.algorithm) != spec.value:
        raise S3Error("BadDigest", f"The {spec.s3_name} you specified did not match the calculated checksum.")


def response_headers(stored: StoredBody, spec: ChecksumSpec) -> list[tuple[str, str]]:
    """ETag, and the checksum when the client sent or asked for one."""
    headers = [("etag", stored.etag)]
    if spec.requested and spec.algorithm:
        headers.append((spec.header, stored.checksums[spec.s3_name]))
    return headers


def _declared_length(ctx: Context) -> int | None:
    """The payload length the request announces (decoded length for aws-chunked), or None
    for a plain HTTP chunked body (`Transfer-Encoding: chunked`, not aws-chunked), which
    arrives de-chunked and of unknown length: the write bounds it as it streams
    (`Expect.max_size`), as RGW and MinIO accept such uploads. A body with neither length
    nor chunked framing has no body at all in HTTP/1.1: MissingContentLength, as S3."""
    req = ctx.request
    if ctx.auth is not None and ctx.auth.payload_mode.chunked:
        if ctx.auth.decoded_content_length is not None:
            return ctx.auth.decoded_content_length
        raw = req.header("x-amz-decoded-content-length")
        if raw is None or not raw.strip().isdigit():
            raise S3Error("MissingContentLength")
        return int(raw)
    length = req.content_length
    if length is None:
        raw = req.header("x-amz-decoded-content-length")
        if (
            raw is not None
            and raw.strip().isdigit()
            and "aws-chunked" in (req.header("content-encoding") or "")
        ):
            return int(raw)
        if req.is_chunked_transfer:
            return None
        raise S3Error("MissingContentLength")
    return length


def request_body(ctx: Context, spec: ChecksumSpec | None = None) -> tuple[AsyncIterator[bytes], Expect]:
    """The object body of a request, for storage to stream, verify and commit
    (`coffer.storage.bodies.write_body`): its chunks, passed through the payload verifier
    (aws-chunked framing, chunk signatures, trailers: authentication stays in the face),
    and what the headers declare about it, with the verifier's own end-of-body check."""
    spec = spec if spec is not None else request_checksum(ctx)
    md5 = content_md5(ctx)
    declared = _declared_length(ctx)
    if declared is not None and declared > MAX_PART_SIZE:  # refused before the signature mode is
        raise EntityTooLarge(MAX_PART_SIZE, size=declared)
    verifier = PayloadVerifier(ctx.auth, ctx.signed)
    expect = Expect(
        length=declared,
        md5=md5,
        algorithm=spec.algorithm,
        checksum=spec.value,
        digests=tuple(verifier.required_digests),
        check=verifier.finish,
    )
    return verifier.stream(ctx.request.body()), expect


def require_integrity_header(ctx: Context) -> None:
    """Calls S3 refuses without a declared digest of their body (DeleteObjects,
    PutBucketLifecycleConfiguration): Content-MD5, or (current SDKs) a flexible checksum
    header or trailer."""
    req = ctx.request
    if req.header("content-md5") is not None:
        return
    trailer = (req.header("x-amz-trailer") or "").lower()
    if trailer.startswith("x-amz-checksum-") or any(
        name not in ("x-amz-checksum-mode", "x-amz-checksum-type")
        for name in req.headers_with_prefix("x-amz-checksum-")
    ):
        return
    raise S3Error(
        "InvalidRequest", "Missing required header for this request: Content-MD5 or x-amz-checksum-*"
    )


async def read_small_body(ctx: Context, limit: int, *, checksum_headers: bool = True) -> bytes:
    """A small document body (XML, JSON), verified like any payload and held in memory.

    `checksum_headers=False` when x-amz-checksum-* describe something other than the body
    (CompleteMultipartUpload: the whole object's checksum)."""
    spec = request_checksum(ctx) if checksum_headers else ChecksumSpec()
    md5 = content_md5(ctx)
    length = ctx.request.content_length
    if length is not None and length > limit and not (ctx.auth and ctx.auth.payload_mode.chunked):
        raise S3Error("MaxMessageLengthExceeded")
    verifier = PayloadVerifier(ctx.auth, ctx.signed)
    buf = bytearray()
    async for chunk in verifier.stream(ctx.request.body()):
        buf += chunk
        if len(buf) > limit:
            raise S3Error("MaxMessageLengthExceeded")
    data = bytes(buf)
    wanted = set(verifier.required_digests)
    if md5 is not None:
        wanted.add("md5")
    if spec.algorithm:
        wanted.add(spec.algorithm)
    digests = {alg: cks.compute(alg, data) for alg in wanted}
    verifier.finish(digests)
    check_digests(spec, md5, digests)
    return data
