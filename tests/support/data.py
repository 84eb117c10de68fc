"""Deterministic test data: file trees with awkward names, pseudo-random bytes and streams
(large ones generated on the fly), and hashing sinks."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from pathlib import Path

MIB = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 * MIB):
            h.update(chunk)
    return h.hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Names chosen to trip up encoders: spaces, unicode (composed and not), '+', '=', '&', '%',
# a leading dash, deep nesting. All valid on Linux and for every client here.
TREE_FILES = {
    "top.txt": 11,
    "a b/space name.txt": 5000,
    "a b/ünïcødé/déep/ファイル.bin": 70_000,
    "a b/ünïcødé/déep/emoji 😀.txt": 3,
    "plus+equals=and&percent%/x.dat": 1234,
    "nested/1/2/3/4/leaf.txt": 0,
    "nested/-dash.txt": 42,
}


def make_tree(root: Path, seed: int = 0) -> dict[str, bytes]:
    """Write TREE_FILES under `root` with deterministic contents; return {relative path: bytes}."""
    written: dict[str, bytes] = {}
    for rel, size in TREE_FILES.items():
        data = pattern_bytes(size, seed=hash_seed(rel, seed))
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written[rel] = data
    return written


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def hash_seed(text: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{text}".encode()).digest()[:8], "little")


def pattern_bytes(size: int, seed: int = 0) -> bytes:
    """`size` deterministic pseudo-random bytes (small sizes: built in memory)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(struct.pack("<QQ", seed, counter)).digest()
        counter += 1
    return bytes(out[:size])


class PatternStream:
    """A deterministic pseudo-random byte stream of `size` bytes, generated on the fly.

    One random 1 MiB block, rotated by a per-block offset and stamped with the block
    number, so every MiB differs (swapped, repeated or shifted parts change the hash)
    while generating costs a memcpy. Never holds more than one block plus what read()
    returns. Keeps a running SHA-256 of everything read so far.
    """

    BLOCK = MIB

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.pos = 0
        self._view = memoryview(pattern_bytes(self.BLOCK, seed))
        self._pending = b""
        self._block = 0
        self.sha256 = hashlib.sha256()

    def _next_block(self) -> bytes:
        n = self._block
        self._block += 1
        k = (n * 7919) % (self.BLOCK - 8)
        return b"".join((struct.pack("<Q", n), self._view[k + 8 :], self._view[:k]))

    def read(self, n: int = -1) -> bytes:
        remaining = self.size - self.pos
        if n is None or n < 0 or n > remaining:
            n = remaining
        if n == 0:
            return b""
        pieces = []
        have = len(self._pending)
        if have:
            pieces.append(self._pending)
        while have < n:
            block = self._next_block()
            pieces.append(block)
            have += len(block)
        joined = b"".join(pieces) if len(pieces) > 1 else pieces[0]
        data, self._pending = joined[:n], joined[n:]
        self.pos += n
        self.sha256.update(data)
        return data

    def chunks(self, chunk: int = 4 * MIB) -> Iterator[bytes]:
        while data := self.read(chunk):
            yield data

    # the file-object protocol boto3's transfer manager needs
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.pos


def stream_sha256(size: int, seed: int = 0) -> str:
    s = PatternStream(size, seed)
    for _ in s.chunks():
        pass
    return s.sha256.hexdigest()


class HashSink:
    """A write-only, non-seekable file object that hashes what is written and keeps nothing."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        pass
