"""A body's way in: streamed into a blob, verified, then committed — or aborted.

`write_body` owns the whole cycle for object and part bodies. A face hands it the body as
an async iterator of chunks (already unwrapped from its transport: the S3 face verifies
aws-chunked framing and chunk signatures in that iterator) and what the request said
about it (`Expect`: length, Content-MD5, a checksum, digests its own checks need). The
blob writer hashes while it writes (`blobs.BlobWriter`); once the blob is durable the
caller's check runs (the signed payload hash, trailing checksums), then the declared
digests are compared, and only then is metadata committed. Any failure on the way, in
the commit too, aborts the writer, so nothing partial is ever visible.

A small body's tail (sync, publish, verify, commit) runs in one thread hop, not two
(docs/performance.md: "One hop for a small PUT's tail").
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from anyio import to_thread

from coffer import checksums as cks
from coffer.storage.blobs import BlobStore
from coffer.storage.errors import BadDigest, EntityTooLarge, EntityTooSmall, IncompleteBody
from coffer.storage.models import BlobInfo
from coffer.storage.rules import MAX_PART_SIZE

T = TypeVar("T")


@dataclass(frozen=True)
class Expect:
    """What the request said about a body before it arrived."""

    length: int | None = None  # the announced length: IncompleteBody if the body differs
    max_size: int = MAX_PART_SIZE  # EntityTooLarge beyond (checked against `length` first)
    min_size: int = 0  # EntityTooSmall below
    md5: bytes | None = None  # Content-MD5: BadDigest if the body's differs
    algorithm: str | None = None  # the checksum to compute and store (default: CRC64NVME)
    checksum: bytes | None = None  # its declared value: BadDigest if the body's differs
    digests: tuple[str, ...] = ()  # more digests `check` needs (SHA-256 for a signed payload)
    check: Callable[[dict[str, bytes]], None] | None = None  # the caller's own checks, run first


@dataclass(frozen=True)
class StoredBody:
    """A durable blob whose digests all checked out, about to be (or being) committed."""

    blob: BlobInfo
    etag: str  # quoted MD5 hex
    algorithm: str  # the checksum stored with it
    checksums: dict[str, str] = field(default_factory=dict)  # {"CRC64NVME": base64, "type": ...}


def _verified(expect: Expect, algorithm: str, info: BlobInfo) -> StoredBody:
    if expect.check is not None:
        expect.check(info.digests)
    if expect.md5 is not None and info.digests.get("md5") != expect.md5:
        raise BadDigest()
    if expect.checksum is not None and info.digests.get(algorithm) != expect.checksum:
        raise BadDigest(
            f"The {cks.display_name(algorithm)} you specified did not match the calculated checksum."
        )
    value = cks.to_header_value(algorithm, info.digests[algorithm])
    checksums = {cks.display_name(algorithm): value, "type": "FULL_OBJECT"}
    return StoredBody(info, f'"{info.digests["md5"].hex()}"', algorithm, checksums)


async def write_body(
    blobs: BlobStore,
    body: AsyncIterable[bytes],
    expect: Expect,
    commit: Callable[[StoredBody], T],
) -> tuple[StoredBody, T]:
    """Stream `body` into a new blob, verify it, then run `commit` (blocking, on a worker
    thread) — or abort the blob on any failure, `commit`'s included."""
    declared = expect.length
    if declared is not None and declared > expect.max_size:
        raise EntityTooLarge(expect.max_size, size=declared)
    algorithm = expect.algorithm or cks.DEFAULT_CHECKSUM
    writer = blobs.writer(sorted({"md5", algorithm, *expect.digests}))
    try:
        size = 0
        async for chunk in body:
            size += len(chunk)
            if size > expect.max_size:
                raise EntityTooLarge(expect.max_size)
            await writer.write(chunk)
        if size < expect.min_size:
            raise EntityTooSmall(size, expect.min_size)
        if declared is not None and size != declared:
            raise IncompleteBody(size, declared)
        if writer.small:
            # A small body: sync, publish, verify and commit in one thread hop, not two.
            def tail() -> tuple[StoredBody, T]:
                stored = _verified(expect, algorithm, writer.finish_sync())
                return stored, commit(stored)

            stored, result = await to_thread.run_sync(tail)
        else:
            stored = _verified(expect, algorithm, await writer.finish())
            result = await to_thread.run_sync(commit, stored)
    except BaseException:
        await writer.abort()
        raise
    return stored, result
