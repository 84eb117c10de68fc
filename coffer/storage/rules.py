"""The rules and arithmetic of the S3 domain as CoreWeave applies them: names, keys, ids,
limits, ETags, checksums, key ranges. Pure functions, no I/O, so they are tested alone."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

from coffer import checksums as cks
from coffer import limits
from coffer.storage.errors import (
    BadDigest,
    ConditionalRequestConflict,
    EntityTooLarge,
    EntityTooSmall,
    InvalidArgument,
    InvalidBucketName,
    InvalidPart,
    InvalidRequest,
    KeyTooLong,
    NoSuchKey,
    PreconditionFailed,
    ReservedBucketName,
)
from coffer.storage.models import NULL_VERSION, CompletedPart, PartRef, Upload

log = logging.getLogger("coffer.storage")

# CoreWeave AI Object Storage limits (reference §6.5, §6.6), each named once, here; the S3
# face and docs/s3-compatibility.md's limits table refer to these names.
MAX_KEY_BYTES = 1024
MAX_PART_NUMBER = 10_000
# The largest body one request stores (5 GiB): a PutObject or UploadPart body, a PostObject
# file, a CopyObject source, an UploadPartCopy range. Every object is parts of at most this.
MAX_PART_SIZE = 5 << 30
MIN_PART_SIZE = 5 << 20
MAX_OBJECT_SIZE = MAX_PART_NUMBER * MAX_PART_SIZE  # 48.828125 TiB
MAX_BUCKETS_PER_ORG = limits.MAX_BUCKETS_PER_ORG  # the default; an organization's own overrides
MAX_LIST = 1000
# How long a completed multipart upload is remembered (seconds), so that a retried
# CompleteMultipartUpload naming the same parts answers as the first one did; AWS forgets
# them after some hours too (then NoSuchUpload).
COMPLETED_UPLOAD_RETENTION = 24 * 3600

# Availability zones that accept CAIOS buckets (reference §6.2), used when settings name none.
COREWEAVE_ZONES: tuple[str, ...] = (
    "US-CENTRAL-05A",
    "US-CENTRAL-06A",
    "US-CENTRAL-07A",
    "US-CENTRAL-08A",
    "US-CENTRAL-08B",
    "US-EAST-01A",
    "US-EAST-02A",
    "US-EAST-03A",
    "US-EAST-04A",
    "US-EAST-04B",
    "US-EAST-06A",
    "US-EAST-08A",
    "US-EAST-13A",
    "US-EAST-14A",
    "US-EAST-15A",
    "US-EAST-17A",
    "RNO2A",
    "US-WEST-01A",
    "US-WEST-04A",
    "US-WEST-09B",
    "US-WEST-10A",
    "CA-EAST-01A",
    "EU-NORTH-05A",
    "EU-SOUTH-03B",
    "EU-SOUTH-04A",
)

_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_RESERVED_PREFIXES = ("cw-", "vip-", "log-stitcher-ch-")
_RESERVED_NAMES = frozenset({"int"})
_VERSION_ID = re.compile(r"[0-9a-f]{32}")
_UPLOAD_ID = re.compile(r"[0-9a-f]{48}")


def validate_bucket_name(name: str, *, allow_reserved: bool = False) -> None:
    """CoreWeave's rules: 3-63 of a-z 0-9 -, alphanumeric at both ends, no dots, not xn--,
    not a reserved prefix (cw-, vip-, log-stitcher-ch-) and not `int`."""
    bad = not isinstance(name, str) or not _BUCKET_NAME.fullmatch(name) or name.startswith("xn--")
    if bad:
        raise InvalidBucketName(str(name)[:255])
    if not allow_reserved and (name.startswith(_RESERVED_PREFIXES) or name in _RESERVED_NAMES):
        raise ReservedBucketName(name)


def validate_key(key: str) -> None:
    """1..1024 UTF-8 bytes, no NUL (which neither dialect can store in text)."""
    if not key:
        raise InvalidArgument("An object key must not be empty.")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgument("An object key must be valid UTF-8.") from None
    if size > MAX_KEY_BYTES:
        raise KeyTooLong(size, MAX_KEY_BYTES)
    if "\x00" in key:
        raise InvalidArgument("An object key must not contain NUL characters.")


def check_version_id(version_id: str) -> None:
    if version_id != NULL_VERSION and not _VERSION_ID.fullmatch(version_id):
        raise InvalidArgument("Invalid version id specified", argument="versionId", value=version_id[:128])


def new_version_id() -> str:
    """32 hex digits: microseconds since the epoch, then randomness; unique and time-ordered."""
    return f"{time.time_ns() // 1000:014x}{secrets.token_hex(9)}"


def key_lock_id(bucket: str, key: str) -> int:
    """A signed 64-bit number naming (bucket, key), for a PostgreSQL advisory lock."""
    digest = hashlib.blake2b(f"{bucket}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def page_size(name: str, asked: int) -> int:
    """A listing's page size, at most MAX_LIST. The faces validate their query arguments,
    so a negative one here is a caller's bug, not a client's."""
    if asked < 0:
        raise ValueError(f"{name} must not be negative, not {asked}")
    return min(asked, MAX_LIST)


def is_upload_id(value: str) -> bool:
    return bool(_UPLOAD_ID.fullmatch(value))


def new_upload_id() -> str:
    """48 hex digits starting with the creation time, so (key, upload id) is initiation order."""
    return f"{time.time_ns() // 1000:014x}{secrets.token_hex(17)}"


def quote_etag(etag: str) -> str:
    e = etag.strip()
    if len(e) >= 2 and e.startswith('"') and e.endswith('"'):
        return e
    return f'"{e}"'


def bare_etag(etag: str) -> str:
    """An ETag without weak marker or quotes, for comparisons (clients send either form)."""
    e = etag.strip()
    if e.startswith("W/"):
        e = e[2:]
    return e.strip('"').lower()


def successor(prefix: str) -> str | None:
    """The least string greater than every string that starts with `prefix`.

    Code-point order equals UTF-8 byte order, so bumping the last code point gives the
    exclusive upper bound of the prefix's key range under both SQLite's BINARY and
    PostgreSQL's "C" collation, and it is always valid UTF-8 (surrogates are skipped;
    U+10FFFF carries into the previous character). None means "no upper bound".
    """
    chars = list(prefix)
    while chars:
        nxt = ord(chars[-1]) + 1
        if nxt == 0xD800:
            nxt = 0xE000
        if nxt <= 0x10FFFF:
            chars[-1] = chr(nxt)
            return "".join(chars)
        chars.pop()
    return None


def parse_zones(value: str, default_zone: str = "") -> list[str]:
    """Comma-separated zones, upper-cased; empty means CoreWeave's list. The default zone is
    always accepted, so a configuration cannot refuse its own default."""
    zones = [z.strip().upper() for z in value.split(",") if z.strip()] or list(COREWEAVE_ZONES)
    default = default_zone.strip().upper()
    if default and default not in zones:
        zones.append(default)
    return zones


def utcnow() -> datetime:
    return datetime.now(UTC)


def upload_checksum_mode(algorithm: str | None, ctype: str | None) -> tuple[str | None, str | None]:
    """A multipart upload's checksum (S3 spelling, e.g. CRC32C) and type (COMPOSITE or
    FULL_OBJECT) from what CreateMultipartUpload named; the type defaults as in S3."""
    if algorithm is None:
        if ctype is not None:
            raise InvalidRequest("The x-amz-checksum-type header requires x-amz-checksum-algorithm.")
        return None, None
    name = cks.from_display_name(algorithm)
    if name is None or name == "md5":
        raise InvalidRequest(f"Checksum algorithm {algorithm[:32]!r} is not supported.")
    kind = (ctype or "").strip().upper() or ("FULL_OBJECT" if name == "crc64nvme" else "COMPOSITE")
    if kind not in {"COMPOSITE", "FULL_OBJECT"}:
        raise InvalidRequest(f"Checksum type {ctype!r} is not supported.")
    if kind == "FULL_OBJECT" and name not in cks.CRC_ALGORITHMS:
        raise InvalidRequest(
            f"The FULL_OBJECT checksum type cannot be used with the {name} checksum algorithm."
        )
    if kind == "COMPOSITE" and name == "crc64nvme":
        raise InvalidRequest(
            "The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm."
        )
    return cks.display_name(name), kind


VersionToken: TypeAlias = tuple[str, int, str, bool] | None
"""What tells one latest version of a key from another: version id, sequence number, ETag,
delete marker (None: the key has no version)."""


def version_token(row: Any) -> VersionToken:
    """The token of a key's latest version row (`Objects.latest`), or None for no row."""
    if row is None:
        return None
    return (str(row.version_id), int(row.seq), str(row.etag), bool(row.is_delete_marker))


@dataclass(frozen=True)
class Observed:
    """A key's latest version as a conditional write found it when it began, before its
    body arrived (`Objects.observe`)."""

    token: VersionToken


def check_preconditions(
    key: str,
    current: Any,
    if_match: str | None,
    if_none_match: str | None,
    observed: Observed | None = None,
) -> None:
    """Conditional writes, against the key's latest version `current` (a delete marker is
    no object): If-None-Match: * refuses an existing object; If-Match wants the current
    ETag (any object for `*`), NoSuchKey when there is none: PreconditionFailed otherwise.

    At commit, `observed` is what the request found when it began: a condition that fails
    now though it held then is `raced` (a concurrent write won); one that holds while the
    latest version changed all the same (a write or delete committed meanwhile) is a
    ConditionalRequestConflict, and the client retries."""
    if if_match is None and if_none_match is None:
        return
    raced = observed is not None and version_token(current) != observed.token
    exists = current is not None and not current.is_delete_marker
    if if_none_match is not None:
        wanted = {bare_etag(e) for e in if_none_match.split(",")}
        if exists and ("*" in wanted or bare_etag(current.etag) in wanted):
            raise PreconditionFailed("If-None-Match", raced=raced)
    if if_match is not None:
        if not exists:
            raise NoSuchKey(key)
        wanted = {bare_etag(e) for e in if_match.split(",")}
        if "*" not in wanted and bare_etag(current.etag) not in wanted:
            raise PreconditionFailed("If-Match", raced=raced)
    if raced:
        raise ConditionalRequestConflict(key)


def parts_digest(parts: list[CompletedPart]) -> str:
    """What a CompleteMultipartUpload's part list names (numbers and ETags, in order), as a
    SHA-256 hex digest: a retried completion must name the same parts as the first."""
    digest = hashlib.sha256()
    for cp in parts:
        digest.update(f"{cp.part_number}:{bare_etag(cp.etag)}\n".encode())
    return digest.hexdigest()


def match_parts(requested: list[CompletedPart], stored: Mapping[int, Any]) -> list[PartRef]:
    chosen: list[PartRef] = []
    for i, cp in enumerate(requested):
        row = stored.get(cp.part_number)
        if row is None or bare_etag(cp.etag) != bare_etag(row.etag):
            raise InvalidPart(cp.part_number, etag=cp.etag[:128])
        have = dict(row.checksums or {})
        for name, value in (cp.checksums or {}).items():
            if name in have and have[name] != value:
                raise InvalidPart(
                    cp.part_number,
                    detail=f"The {name} checksum of part {cp.part_number} does not match the uploaded part.",
                )
        if i < len(requested) - 1 and int(row.size) < MIN_PART_SIZE:
            raise EntityTooSmall(int(row.size), MIN_PART_SIZE, part_number=cp.part_number, etag=row.etag)
        chosen.append(PartRef(blob=row.blob, size=int(row.size), etag=row.etag, checksums=have))
    total = sum(p.size for p in chosen)
    if total > MAX_OBJECT_SIZE:
        raise EntityTooLarge(MAX_OBJECT_SIZE, size=total)
    return chosen


def multipart_etag(parts: list[PartRef]) -> str:
    """S3's multipart ETag: the MD5 of the parts' binary MD5s, then "-<part count>"."""
    md5 = hashlib.md5(usedforsecurity=False)
    for p in parts:
        raw = bare_etag(p.etag)
        try:
            md5.update(bytes.fromhex(raw))
        except ValueError:
            md5.update(raw.encode())
    return f'"{md5.hexdigest()}-{len(parts)}"'


def multipart_checksums(upload: Upload, parts: list[PartRef]) -> dict[str, str]:
    """The object's checksum from its parts' (empty if any part lacks one)."""
    display = upload.checksum_algorithm
    alg = cks.from_display_name(display) if display else None
    if not display or alg is None:
        return {}
    try:
        raws = [cks.from_header_value(alg, p.checksums[display]) for p in parts]
    except (KeyError, ValueError):
        log.warning(
            "upload %s: a part lacks its %s checksum; the object gets none", upload.upload_id, display
        )
        return {}
    if upload.checksum_type == cks.FULL_OBJECT:
        combined = cks.combine_crc(alg, zip(raws, (p.size for p in parts), strict=True))
        return {display: cks.to_header_value(alg, combined), "type": cks.FULL_OBJECT}
    composite = cks.to_header_value(alg, cks.compute(alg, b"".join(raws)))
    return {display: cks.with_part_count(composite, len(parts)), "type": cks.COMPOSITE}


def check_declared(values: Mapping[str, Any], checksum: tuple[str, str] | None, size: int | None) -> None:
    """A completed multipart object against what the client declared on completion: its
    checksum (algorithm display name, base64 value; a COMPOSITE one with or without its
    "-<parts>" suffix) and its size (x-amz-mp-object-size)."""
    if size is not None and size != values["size"]:
        raise InvalidRequest(
            f"The provided 'x-amz-mp-object-size' header value {size} does not match what was computed: "
            f"{values['size']}",
        )
    if checksum is None:
        return
    name, given = checksum
    have = str(values["checksums"].get(name, ""))
    if not have or cks.without_part_count(given) != cks.without_part_count(have):
        raise BadDigest(f"The {name} you specified did not match the calculated checksum.")
