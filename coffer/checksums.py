"""The checksum algorithms S3 speaks, behind one registry, on the ground floor.

S3 names six whole-body digests: the flexible checksums of `x-amz-checksum-*`
(CRC32, CRC32C, CRC64NVME, SHA1, SHA256) and MD5 (Content-MD5, ETags). Each is
exposed the same way — `new_hasher(name)` gives an object with `update()` and
`digest()` (raw big-endian bytes) — and S3 shows digests base64-encoded, which
`to_header_value` / `from_header_value` do. The blob writer hashes with it while it
writes, storage derives multipart checksums with it, and the S3 face uses it for the
checksum headers and the signature checks' trailing checksums. It imports nothing of
Coffer's, so every layer may use it.

CRC32 comes from `zlib` (measured twice as fast as awscrt's on this machine class and
bit-for-bit the same polynomial); CRC32C and CRC64NVME from `awscrt.checksums`; the
rest from `hashlib`. All of them release the GIL on large buffers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Callable, Iterable
from typing import Protocol, TypeAlias

from awscrt import checksums as _crt

ALGORITHMS: tuple[str, ...] = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256", "md5")
"""Every algorithm name the registry knows, lower-case."""

CHECKSUM_ALGORITHMS: tuple[str, ...] = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")
"""The algorithms that can appear as `x-amz-checksum-<name>` (MD5 is Content-MD5's)."""

DEFAULT_CHECKSUM = "crc64nvme"
"""The checksum S3 computes and stores when the client names none."""

Buffer: TypeAlias = bytes | bytearray | memoryview

CRC_ALGORITHMS: frozenset[str] = frozenset({"crc32", "crc32c", "crc64nvme"})

COMPOSITE = "COMPOSITE"
"""A multipart object's checksum of its parts' checksums, shown with a `-<part count>` suffix."""

FULL_OBJECT = "FULL_OBJECT"
"""A checksum of the whole object's bytes (every single-part object's; a multipart CRC's, combined)."""

CHECKSUM_TYPES: tuple[str, ...] = (COMPOSITE, FULL_OBJECT)
"""S3's checksum types (`x-amz-checksum-type`, `<ChecksumType>`)."""

_SIZES: dict[str, int] = {"crc32": 4, "crc32c": 4, "crc64nvme": 8, "sha1": 20, "sha256": 32, "md5": 16}
_HEADER_PREFIX = "x-amz-checksum-"
_HEADER_TO_ALGORITHM: dict[str, str] = {_HEADER_PREFIX + a: a for a in CHECKSUM_ALGORITHMS}


class Hasher(Protocol):
    """What every registry hasher offers: hashlib's incremental shape."""

    def update(self, data: Buffer, /) -> None: ...

    def digest(self) -> bytes: ...

    def copy(self) -> Hasher: ...


class _Crc:
    """A running CRC with hashlib's update/digest shape, digest big-endian as S3 shows it."""

    __slots__ = ("_fn", "_size", "_value")

    def __init__(self, fn: Callable[[Buffer, int], int], size: int) -> None:
        self._fn = fn
        self._size = size
        self._value = 0

    def update(self, data: Buffer, /) -> None:
        self._value = self._fn(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._size, "big")

    def copy(self) -> _Crc:
        twin = _Crc(self._fn, self._size)
        twin._value = self._value
        return twin


def _zlib_crc32(data: Buffer, value: int) -> int:
    return zlib.crc32(data, value)


def _crt_crc32c(data: Buffer, value: int) -> int:
    return _crt.crc32c(data, value)


def _crt_crc64nvme(data: Buffer, value: int) -> int:
    return _crt.crc64nvme(data, value)


_FACTORIES: dict[str, Callable[[], Hasher]] = {
    "crc32": lambda: _Crc(_zlib_crc32, 4),
    "crc32c": lambda: _Crc(_crt_crc32c, 4),
    "crc64nvme": lambda: _Crc(_crt_crc64nvme, 8),
    "sha1": lambda: hashlib.sha1(usedforsecurity=False),
    "sha256": hashlib.sha256,
    "md5": lambda: hashlib.md5(usedforsecurity=False),
}

_COMBINE: dict[str, Callable[[int, int, int], int]] = {
    "crc32": _crt.combine_crc32,
    "crc32c": _crt.combine_crc32c,
    "crc64nvme": _crt.combine_crc64nvme,
}


def is_algorithm(name: str) -> bool:
    return name in _SIZES


def new_hasher(name: str) -> Hasher:
    """A fresh incremental hasher; ValueError for an unknown name (a programming error)."""
    try:
        return _FACTORIES[name]()
    except KeyError:
        raise ValueError(f"unknown checksum algorithm {name!r}") from None


def compute(name: str, data: Buffer) -> bytes:
    """The raw digest of `data` in one call."""
    hasher = new_hasher(name)
    hasher.update(data)
    return hasher.digest()


def digest_size(name: str) -> int:
    try:
        return _SIZES[name]
    except KeyError:
        raise ValueError(f"unknown checksum algorithm {name!r}") from None


def display_name(name: str) -> str:
    """How S3 spells the algorithm in headers, XML and messages: CRC32, CRC64NVME, SHA256."""
    digest_size(name)
    return name.upper()


def from_display_name(value: str) -> str | None:
    """The registry name for an S3 spelling (`x-amz-checksum-algorithm: CRC32C`), or None."""
    name = value.strip().lower()
    return name if name in _SIZES else None


def header_name(name: str) -> str:
    """`x-amz-checksum-<name>`; ValueError for MD5, which has no such header."""
    if name not in _FACTORIES or name == "md5":
        raise ValueError(f"{name!r} has no x-amz-checksum header")
    return _HEADER_PREFIX + name


def algorithm_for_header(header: str) -> str | None:
    """The algorithm an `x-amz-checksum-*` header (any case) carries, or None if it is not one."""
    return _HEADER_TO_ALGORITHM.get(header.strip().lower())


def to_header_value(name: str, digest: bytes) -> str:
    """Base64 of the raw digest, as S3 sends it in `x-amz-checksum-*` and Content-MD5."""
    if len(digest) != digest_size(name):
        raise ValueError(f"a {name} digest is {digest_size(name)} bytes, not {len(digest)}")
    return base64.b64encode(digest).decode("ascii")


def from_header_value(name: str, value: str) -> bytes:
    """Decode a base64 digest; ValueError unless it is strict base64 of the right length."""
    try:
        raw = base64.b64decode(value.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError(f"{display_name(name)} value is not valid base64") from None
    if len(raw) != digest_size(name):
        raise ValueError(f"{display_name(name)} value must decode to {digest_size(name)} bytes")
    return raw


def combine_crc(name: str, pieces: Iterable[tuple[bytes, int]]) -> bytes:
    """The CRC of concatenated data, from each piece's (raw CRC, length) without the data.

    This is how a FULL_OBJECT multipart checksum follows from the parts' checksums.
    """
    try:
        combine = _COMBINE[name]
    except KeyError:
        raise ValueError(f"{name!r} is not a CRC") from None
    value: int | None = None
    for raw, length in pieces:
        crc = int.from_bytes(raw, "big")
        value = crc if value is None else combine(value, crc, length)
    if value is None:
        return compute(name, b"")
    return value.to_bytes(_SIZES[name], "big")


def with_part_count(value: str, parts: int) -> str:
    """A COMPOSITE checksum as S3 shows it: the base64 digest, then `-<part count>`."""
    return f"{value}-{parts}"


def without_part_count(value: str) -> str:
    """The base64 digest of a checksum as S3 shows it, without a COMPOSITE `-<part count>`
    suffix (base64 has no '-', so the suffix is whatever follows one)."""
    return value.partition("-")[0]
