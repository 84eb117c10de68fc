"""Request bodies: verified on the way in, hashed while written, committed only when sound.

An object body streams from the socket through the `PayloadVerifier` (aws-chunked
framing, chunk signatures, trailers) into a `BlobWriter` that hashes in parallel as it
writes. Only after the whole body is durable and every digest checks out (the signed
SHA-256, Content-MD5, x-amz-checksum-*) does the caller commit metadata; any failure on
the way aborts the writer, so a client never sees a partial object.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from awscrt import checksums as crt

from coffer.errors import S3Error
from coffer.s3.context import Context, run
from coffer.s3.request import decode_base64
from coffer.s3.sigv4 import PayloadVerifier
from coffer.storage.models import BlobInfo

T = TypeVar("T")

MAX_PUT_SIZE = 5 * 1024**3  # 5 GiB, the largest single PUT or part

# x-amz-checksum-<alg> algorithms: raw digest length, and the S3 spelling.
CHECKSUMS: dict[str, tuple[int, str]] = {
    "crc32": (4, "CRC32"),
    "crc32c": (4, "CRC32C"),
    "crc64nvme": (8, "CRC64NVME"),
    "sha1": (20, "SHA1"),
    "sha256": (32, "SHA256"),
}
DEFAULT_CHECKSUM = "crc64nvme"  # what S3 computes when the client names none


def digest(algorithm: str, data: bytes) -> bytes:
    """One-shot digest of a small body (XML documents); bulk bodies hash in the BlobWriter."""
    if algorithm == "crc32":
        return crt.crc32(data).to_bytes(4, "big")
    if algorithm == "crc32c":
        return crt.crc32c(data).to_bytes(4, "big")
    if algorithm == "crc64nvme":
        return crt.crc64nvme(data).to_bytes(8, "big")
    return hashlib.new(algorithm, data).digest()


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
        return CHECKSUMS[self.algorithm][1]

    @property
    def header(self) -> str:
        return f"x-amz-checksum-{self.algorithm}"


def checksum_spec(ctx: Context) -> ChecksumSpec:
    """Read x-amz-checksum-*, x-amz-trailer and x-amz-sdk-checksum-algorithm; refuse bad values."""
    req = ctx.request
    spec = ChecksumSpec()
    present = [
        (name[len("x-amz-checksum-") :], value)
        for name, value in req.headers_with_prefix("x-amz-checksum-").items()
        if name not in ("x-amz-checksum-type", "x-amz-checksum-mode", "x-amz-checksum-algorithm")
    ]
    if len(present) > 1:
        raise S3Error(
            "InvalidRequest",
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        )
    if present:
        alg, value = present[0]
        if alg not in CHECKSUMS:
            raise S3Error(
                "InvalidRequest", f"The algorithm type you specified in x-amz-checksum-{alg} is invalid."
            )
        raw = decode_base64(value, CHECKSUMS[alg][0])
        if raw is None:
            raise S3Error("InvalidRequest", f"Value for x-amz-checksum-{alg} header is invalid.")
        spec.algorithm, spec.value, spec.requested = alg, raw, True
    trailer = (req.header("x-amz-trailer") or "").strip().lower()
    if trailer.startswith("x-amz-checksum-"):
        alg = trailer[len("x-amz-checksum-") :]
        if alg not in CHECKSUMS:
            raise S3Error("InvalidRequest", f"The algorithm type you specified in {trailer} is invalid.")
        if spec.algorithm and spec.algorithm != alg:
            raise S3Error(
                "InvalidRequest",
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
            )
        spec.algorithm, spec.trailer, spec.requested = alg, True, True
    sdk = req.header("x-amz-sdk-checksum-algorithm")
    if sdk is not None:
        alg = sdk.strip().lower()
        if alg not in CHECKSUMS:
            raise S3Error("InvalidRequest", "Value for x-amz-sdk-checksum-algorithm header is invalid.")
        if spec.algorithm and spec.algorithm != alg:
            raise S3Error(
                "InvalidRequest",
                f"Value for x-amz-sdk-checksum-algorithm header is invalid: it names {alg.upper()} "
                f"but the checksum sent is {spec.s3_name}.",
            )
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


@dataclass
class StoredBody:
    """A durable blob whose digests all checked out, ready to be committed."""

    blob: BlobInfo
    etag: str  # quoted MD5 hex
    checksums: dict[str, str] = field(default_factory=dict)  # {"CRC32": base64}
    spec: ChecksumSpec = field(default_factory=ChecksumSpec)

    @property
    def response_headers(self) -> list[tuple[str, str]]:
        """ETag, and the checksum when the client sent or asked for one."""
        headers = [("etag", self.etag)]
        if self.spec.requested and self.spec.algorithm:
            headers.append((self.spec.header, self.checksums[self.spec.s3_name]))
        return headers


def _declared_length(ctx: Context) -> int | None:
    """The payload length the request announces (decoded length for aws-chunked)."""
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
        raise S3Error("MissingContentLength")
    return length


async def store_body(
    ctx: Context,
    commit: Callable[[StoredBody], T],
    *,
    max_size: int = MAX_PUT_SIZE,
    spec: ChecksumSpec | None = None,
) -> tuple[StoredBody, T]:
    """Stream the body into a blob, verify it, then run `commit` (blocking, on the thread
    pool). Any failure, including in `commit`, aborts the blob."""
    spec = spec if spec is not None else checksum_spec(ctx)
    md5 = content_md5(ctx)
    declared = _declared_length(ctx)
    if declared is not None and declared > max_size:
        raise S3Error(
            "EntityTooLarge",
            fields={"ProposedSize": str(declared), "MaxSizeAllowed": str(max_size)},
        )
    verifier = PayloadVerifier(ctx.auth, ctx.signed)
    algorithms = {"md5", *verifier.required_digests}
    stored_alg = spec.algorithm or DEFAULT_CHECKSUM
    algorithms.add(stored_alg)
    writer = ctx.node.blobs.writer(sorted(algorithms))
    try:
        size = 0
        async for chunk in verifier.stream(ctx.request.body()):
            size += len(chunk)
            if size > max_size:
                raise S3Error("EntityTooLarge", fields={"MaxSizeAllowed": str(max_size)})
            await writer.write(chunk)
        if declared is not None and size != declared:
            raise S3Error("IncompleteBody")

        def verified(info: BlobInfo) -> StoredBody:
            verifier.finish(info.digests)
            check_digests(spec, md5, info.digests)
            value = base64.b64encode(info.digests[stored_alg]).decode("ascii")
            checksums = {CHECKSUMS[stored_alg][1]: value, "type": "FULL_OBJECT"}
            etag = f'"{info.digests["md5"].hex()}"'
            return StoredBody(blob=info, etag=etag, checksums=checksums, spec=spec)

        if writer.small:
            # A small body: sync, publish, verify and commit in one thread hop, not two.
            def tail() -> tuple[StoredBody, T]:
                stored = verified(writer.finish_sync())
                return stored, commit(stored)

            stored, result = await run(tail)
        else:
            stored = verified(await writer.finish())
            result = await run(commit, stored)
    except BaseException:
        await writer.abort()
        raise
    return stored, result


async def read_small_body(ctx: Context, limit: int, *, checksum_headers: bool = True) -> bytes:
    """A small document body (XML, JSON), verified like any payload and held in memory.

    `checksum_headers=False` when x-amz-checksum-* describe something other than the body
    (CompleteMultipartUpload: the whole object's checksum)."""
    spec = checksum_spec(ctx) if checksum_headers else ChecksumSpec()
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
    digests = {alg: digest(alg, data) for alg in wanted}
    verifier.finish(digests)
    check_digests(spec, md5, digests)
    return data
