"""The checksum registry: known vectors, agreement with botocore, incremental hashing."""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import zlib

import pytest
from botocore import httpchecksum
from hypothesis import given, settings
from hypothesis import strategies as st

from coffer import checksums

CHECK = b"123456789"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("crc32", 0xCBF43926),
        ("crc32c", 0xE3069283),
        ("crc64nvme", 0xAE8B14860A799888),
    ],
)
def test_crc_check_values(name: str, expected: int) -> None:
    digest = checksums.compute(name, CHECK)
    assert int.from_bytes(digest, "big") == expected
    assert len(digest) == checksums.digest_size(name)


@pytest.mark.parametrize("name", ["sha1", "sha256", "md5"])
def test_hash_values(name: str) -> None:
    assert checksums.compute(name, CHECK) == hashlib.new(name, CHECK).digest()


BOTOCORE = {
    "crc32": httpchecksum.CrtCrc32Checksum,
    "crc32c": httpchecksum.CrtCrc32cChecksum,
    "crc64nvme": httpchecksum.CrtCrc64NvmeChecksum,
    "sha1": httpchecksum.Sha1Checksum,
    "sha256": httpchecksum.Sha256Checksum,
}


@pytest.mark.parametrize("name", sorted(BOTOCORE))
def test_header_values_agree_with_botocore(name: str) -> None:
    for size in (0, 1, 1000, 100_000):
        data = os.urandom(size)
        theirs = BOTOCORE[name]()
        theirs.update(data)
        assert checksums.to_header_value(name, checksums.compute(name, data)) == theirs.b64digest()


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=5000), cuts=st.lists(st.integers(0, 5000), max_size=8))
def test_incremental_equals_one_shot(data: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for name in checksums.ALGORITHMS:
        hasher = checksums.new_hasher(name)
        for start, end in itertools.pairwise(bounds):
            piece = data[start:end]
            hasher.update(memoryview(piece) if start % 2 else bytearray(piece))
        assert hasher.digest() == checksums.compute(name, data)


def test_crc32_is_zlibs() -> None:
    data = os.urandom(4096)
    assert int.from_bytes(checksums.compute("crc32", data), "big") == zlib.crc32(data)


def test_from_header_value() -> None:
    digest = checksums.compute("crc32c", b"abc")
    value = checksums.to_header_value("crc32c", digest)
    assert checksums.from_header_value("crc32c", value) == digest
    assert checksums.from_header_value("crc32c", f" {value} ") == digest
    for bad in ["", "!!!!", base64.b64encode(b"12345").decode(), "AAAA=AAA", "é"]:
        with pytest.raises(ValueError):
            checksums.from_header_value("crc32c", bad)
    with pytest.raises(ValueError):
        checksums.to_header_value("sha256", b"short")


def test_header_names() -> None:
    for name in checksums.CHECKSUM_ALGORITHMS:
        header = checksums.header_name(name)
        assert header == f"x-amz-checksum-{name}"
        assert checksums.algorithm_for_header(header.upper()) == name
    assert checksums.algorithm_for_header("x-amz-checksum-md5") is None
    assert checksums.algorithm_for_header("x-amz-checksum-xxhash64") is None
    with pytest.raises(ValueError):
        checksums.header_name("md5")
    assert checksums.display_name("crc64nvme") == "CRC64NVME"
    assert checksums.from_display_name("CRC32C") == "crc32c"
    assert checksums.from_display_name("XXHASH3") is None


def test_unknown_algorithm() -> None:
    with pytest.raises(ValueError):
        checksums.new_hasher("crc16")
    with pytest.raises(ValueError):
        checksums.digest_size("sha512")


@pytest.mark.parametrize("name", sorted(checksums.CRC_ALGORITHMS))
def test_combine_crc(name: str) -> None:
    parts = [os.urandom(n) for n in (0, 17, 5000, 1)]
    combined = checksums.combine_crc(name, [(checksums.compute(name, p), len(p)) for p in parts])
    assert combined == checksums.compute(name, b"".join(parts))
    assert checksums.combine_crc(name, []) == checksums.compute(name, b"")
    with pytest.raises(ValueError):
        checksums.combine_crc("sha256", [])


def test_copy_keeps_running_state() -> None:
    hasher = checksums.new_hasher("crc32c")
    hasher.update(b"abc")
    twin = hasher.copy()
    twin.update(b"def")
    assert hasher.digest() == checksums.compute("crc32c", b"abc")
    assert twin.digest() == checksums.compute("crc32c", b"abcdef")
