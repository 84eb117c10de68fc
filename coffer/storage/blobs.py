"""The blob store: object bodies as files under <data-dir>/blobs, never named after keys.

INTERFACE STUB: the storage work fills this in (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from coffer.storage.models import BlobInfo, PartRef

# Algorithms a writer can compute while it writes: md5, sha256, sha1, crc32, crc32c, crc64nvme.
ALGORITHMS = ("md5", "sha256", "sha1", "crc32", "crc32c", "crc64nvme")


class BlobWriter:
    """Streams one body into a temp file, hashing as it goes (hashes run in parallel threads)."""

    size: int

    async def write(self, data: bytes) -> None:
        """Append; raises S3Error("InsufficientStorage") on a full disk (nothing is published)."""
        raise NotImplementedError

    async def finish(self) -> BlobInfo:
        """fsync, publish atomically under a fresh blob id, fsync the directory; return digests."""
        raise NotImplementedError

    async def abort(self) -> None:
        """Discard the temp file. Safe to call twice or after a failed write."""
        raise NotImplementedError


class BlobStore:
    def __init__(self, root: Path) -> None:
        raise NotImplementedError

    def writer(self, algorithms: Iterable[str] = ("md5",)) -> BlobWriter:
        raise NotImplementedError

    def read(self, parts: list[PartRef], start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes [start, end] (inclusive; None = to the end) across the parts, in large chunks.

        Every part file is opened before the first byte is yielded, so a concurrent delete
        (which only unlinks) never cuts a running GET short.
        """
        raise NotImplementedError
