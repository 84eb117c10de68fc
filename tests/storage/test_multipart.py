"""Multipart uploads: parts, limits, completion (ETag, checksums, no copying), abort, listing."""

from __future__ import annotations

import hashlib
import os

import pytest

from coffer import checksums as cks
from coffer.s3.errors import from_storage
from coffer.storage import rules
from coffer.storage.errors import StorageError
from coffer.storage.models import BlobInfo, Upload
from coffer.storage.rules import MAX_PART_SIZE, MIN_PART_SIZE
from coffer.storage.service import CompletedPart
from tests.support.storage import Env


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Most tests need not write 5 MiB parts; one test below does, with the real limit."""
    monkeypatch.setattr(rules, "MIN_PART_SIZE", 4)


def _part(env: Env, up: Upload, n: int, data: bytes, algs: tuple[str, ...] = ("md5",)) -> CompletedPart:
    info = env.blobs.put(data, ["md5", *algs])
    part = env.storage.uploads.put_part(up, n, info, etag=info.digests["md5"].hex(), checksums={})
    assert part.etag == f'"{info.digests["md5"].hex()}"' and part.size == len(data)
    return CompletedPart(n, part.etag, {})


def _etag(*pieces: bytes) -> str:
    md5s = b"".join(hashlib.md5(p).digest() for p in pieces)
    return f'"{hashlib.md5(md5s).hexdigest()}-{len(pieces)}"'


def test_real_5_mib_limit(env: Env, bucket: str) -> None:
    s = env.storage
    assert MIN_PART_SIZE == 5 << 20 and MAX_PART_SIZE == 5 << 30
    up = s.uploads.create(bucket, "big", owner="p", headers={"content-type": "x/y"})
    small = os.urandom(MIN_PART_SIZE - 1)
    exact = os.urandom(MIN_PART_SIZE)
    tail = b"tail"
    p1 = _part(env, up, 1, small)
    p2 = _part(env, up, 2, exact)
    p3 = _part(env, up, 3, tail)
    with pytest.raises(StorageError) as err:
        s.uploads.complete(up, [p1, p2, p3])
    assert (
        from_storage(err.value).code == "EntityTooSmall"
        and from_storage(err.value).fields["PartNumber"] == "1"
    )
    obj = s.uploads.complete(up, [p2, p3])  # the last part may be small
    assert obj.size == len(exact) + 4 and obj.etag == _etag(exact, tail) and obj.parts_count == 2
    assert obj.headers == {"content-type": "x/y"}


def test_complete_points_at_part_blobs_and_retires_the_rest(env: Env, bucket: str, small_parts: None) -> None:
    s = env.storage
    up = s.uploads.create(bucket, "obj", owner="coreweave/carol", headers={}, tags={"t": "1"})
    assert s.uploads.get(bucket, "obj", up.upload_id) == up
    pieces = {1: b"one-", 2: b"two-two-", 3: b"three", 4: b"four"}
    done = {n: _part(env, up, n, d) for n, d in pieces.items()}
    blobs = {p.part_number: p.blob for p in s.uploads.list_parts(up).parts}
    obj = s.uploads.complete(up, [done[1], done[3], done[4]])
    assert [p.blob for p in obj.parts] == [blobs[1], blobs[3], blobs[4]]  # no copy
    assert [p.etag for p in obj.parts] == [done[1].etag, done[3].etag, done[4].etag]
    assert obj.etag == _etag(pieces[1], pieces[3], pieces[4])
    assert obj.owner_principal == "coreweave/carol" and obj.tags == {"t": "1"}
    assert env.read(obj.parts) == b"one-threefour"
    assert env.read(obj.parts, 3, 6) == b"-thr"
    assert blobs[2] in env.dead() and not ({blobs[1], blobs[3], blobs[4]} & env.dead())
    got = s.objects.get(bucket, "obj")
    assert got.parts == obj.parts and got.parts_count == 3
    with pytest.raises(StorageError) as err:
        s.uploads.get(bucket, "obj", up.upload_id)
    assert from_storage(err.value).code == "NoSuchUpload"
    with pytest.raises(StorageError) as err:
        s.uploads.complete(up, [done[1]])
    assert from_storage(err.value).code == "NoSuchUpload"


def test_complete_replaces_and_retires_previous_object(env: Env, bucket: str, small_parts: None) -> None:
    old = env.put(bucket, "k", b"old")
    up = env.storage.uploads.create(bucket, "k", owner="p", headers={})
    env.storage.uploads.complete(up, [_part(env, up, 1, b"new!")])
    assert old.parts[0].blob in env.dead()
    assert env.read(env.storage.objects.get(bucket, "k").parts) == b"new!"


def test_complete_validation(env: Env, bucket: str, small_parts: None) -> None:
    s = env.storage
    up = s.uploads.create(bucket, "v", owner="p", headers={})
    p1, p2 = _part(env, up, 1, b"aaaa"), _part(env, up, 2, b"bbbb")
    cases = [
        ([p2, p1], "InvalidPartOrder"),
        ([p1, p1], "InvalidPartOrder"),
        ([p1, CompletedPart(3, p2.etag, {})], "InvalidPart"),
        ([p1, CompletedPart(2, '"0123456789abcdef0123456789abcdef"', {})], "InvalidPart"),
        ([], "MalformedXML"),
    ]
    for parts, code in cases:
        with pytest.raises(StorageError) as err:
            s.uploads.complete(up, parts)
        assert from_storage(err.value).code == code, parts
    # ETags quoted, unquoted or upper-case all name the part
    obj = s.uploads.complete(up, [CompletedPart(1, p1.etag.strip('"').upper(), {}), p2])
    assert obj.etag == _etag(b"aaaa", b"bbbb")


def test_complete_with_if_none_match(env: Env, bucket: str, small_parts: None) -> None:
    env.put(bucket, "exists", b"x")
    up = env.storage.uploads.create(bucket, "exists", owner="p", headers={})
    p = _part(env, up, 1, b"data")
    with pytest.raises(StorageError) as err:
        env.storage.uploads.complete(up, [p], if_none_match="*")
    assert from_storage(err.value).code == "PreconditionFailed"
    assert env.storage.uploads.list_parts(up).parts  # the upload survives a refused completion


def test_part_limits_and_replacement(env: Env, bucket: str) -> None:
    s = env.storage
    up = s.uploads.create(bucket, "p", owner="p", headers={})
    for n in (0, 10001, -1):
        info = env.blobs.put(b"x")
        with pytest.raises(StorageError) as err:
            s.uploads.put_part(up, n, info, etag="e", checksums={})
        assert from_storage(err.value).code == "InvalidArgument"
        assert not env.blobs.exists(info.blob)
    huge = BlobInfo(blob=env.blobs.put(b"x").blob, size=MAX_PART_SIZE + 1, digests={})
    with pytest.raises(StorageError) as err:
        s.uploads.put_part(up, 1, huge, etag="e", checksums={})
    assert from_storage(err.value).code == "EntityTooLarge"
    _part(env, up, 10000, b"last possible")
    first = _part(env, up, 1, b"first")
    first_blob = s.uploads.list_parts(up).parts[0].blob
    again = _part(env, up, 1, b"first, again")
    assert again.etag != first.etag
    listed = s.uploads.list_parts(up).parts
    assert [p.part_number for p in listed] == [1, 10000]
    assert listed[0].size == len(b"first, again") and first_blob in env.dead()


def test_list_parts_paging(env: Env, bucket: str) -> None:
    s = env.storage
    up = s.uploads.create(bucket, "lp", owner="p", headers={})
    for n in (1, 2, 5, 9, 10):
        _part(env, up, n, b"x" * n)
    page = s.uploads.list_parts(up, max_parts=2)
    assert (
        [p.part_number for p in page.parts] == [1, 2]
        and page.is_truncated
        and page.next_part_number_marker == 2
    )
    page = s.uploads.list_parts(up, marker=2, max_parts=2)
    assert [p.part_number for p in page.parts] == [5, 9] and page.next_part_number_marker == 9
    page = s.uploads.list_parts(up, marker=9, max_parts=2)
    assert [p.part_number for p in page.parts] == [10] and not page.is_truncated
    assert page.next_part_number_marker is None
    assert s.uploads.list_parts(up, max_parts=0).parts == []


def test_abort_retires_all_parts(env: Env, bucket: str) -> None:
    s = env.storage
    up = s.uploads.create(bucket, "ab", owner="p", headers={})
    _part(env, up, 1, b"1")
    _part(env, up, 2, b"2")
    blobs = {p.blob for p in s.uploads.list_parts(up).parts}
    s.uploads.abort(up)
    assert blobs <= env.dead()
    with pytest.raises(StorageError) as err:
        s.uploads.abort(up)
    assert from_storage(err.value).code == "NoSuchUpload"
    info = env.blobs.put(b"late")
    with pytest.raises(StorageError) as err:
        s.uploads.put_part(up, 3, info, etag="e", checksums={})
    assert from_storage(err.value).code == "NoSuchUpload" and not env.blobs.exists(info.blob)


def test_get_upload_checks_bucket_key_and_id(env: Env, bucket: str) -> None:
    s = env.storage
    up = s.uploads.create(bucket, "g", owner="p", headers={})
    assert len(up.upload_id) == 48
    for b, k, u in [
        (bucket, "other", up.upload_id),
        ("elsewhere", "g", up.upload_id),
        (bucket, "g", "nonsense"),
    ]:
        with pytest.raises(StorageError) as err:
            s.uploads.get(b, k, u)
        assert from_storage(err.value).code == "NoSuchUpload"
    with pytest.raises(StorageError) as err:
        s.uploads.create("no-such-bucket-qq", "g", owner="p", headers={})
    assert from_storage(err.value).code == "NoSuchBucket"


@pytest.mark.parametrize(
    ("algorithm", "ctype", "code"),
    [
        ("MD5", None, "InvalidRequest"),
        ("CRC99", None, "InvalidRequest"),
        ("SHA256", "FULL_OBJECT", "InvalidRequest"),
        ("CRC64NVME", "COMPOSITE", "InvalidRequest"),
        (None, "COMPOSITE", "InvalidRequest"),
        ("CRC32", "PARTIAL", "InvalidRequest"),
    ],
)
def test_bad_checksum_specs(
    env: Env, bucket: str, algorithm: str | None, ctype: str | None, code: str
) -> None:
    with pytest.raises(StorageError) as err:
        env.storage.uploads.create(
            bucket, "c", owner="p", headers={}, checksum_algorithm=algorithm, checksum_type=ctype
        )
    assert from_storage(err.value).code == code


def test_checksum_defaults(env: Env, bucket: str) -> None:
    s = env.storage
    assert (
        s.uploads.create(bucket, "a", owner="p", headers={}, checksum_algorithm="crc32c").checksum_type
        == "COMPOSITE"
    )
    crc64 = s.uploads.create(bucket, "b", owner="p", headers={}, checksum_algorithm="CRC64NVME")
    assert (crc64.checksum_algorithm, crc64.checksum_type) == ("CRC64NVME", "FULL_OBJECT")


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "SHA1", "SHA256"])
def test_composite_checksum(env: Env, bucket: str, small_parts: None, algorithm: str) -> None:
    s = env.storage
    alg = algorithm.lower()
    up = s.uploads.create(
        bucket, "cc", owner="p", headers={}, checksum_algorithm=algorithm, checksum_type="COMPOSITE"
    )
    pieces = [b"alpha" * 3, b"beta" * 7, b"gamma"]
    done = [_part(env, up, n, d, (alg,)) for n, d in enumerate(pieces, start=1)]
    listed = s.uploads.list_parts(up).parts
    assert listed[0].checksums == {algorithm: cks.to_header_value(alg, cks.compute(alg, pieces[0]))}
    obj = s.uploads.complete(up, done)
    raw = b"".join(cks.compute(alg, p) for p in pieces)
    want = f"{cks.to_header_value(alg, cks.compute(alg, raw))}-3"
    assert obj.checksums == {algorithm: want, "type": "COMPOSITE"}


@pytest.mark.parametrize("algorithm", ["CRC32", "CRC32C", "CRC64NVME"])
def test_full_object_checksum_combines_part_crcs(
    env: Env, bucket: str, small_parts: None, algorithm: str
) -> None:
    s = env.storage
    alg = algorithm.lower()
    up = s.uploads.create(
        bucket, "fo", owner="p", headers={}, checksum_algorithm=algorithm, checksum_type="FULL_OBJECT"
    )
    pieces = [os.urandom(1000), os.urandom(333), os.urandom(1)]
    done = [_part(env, up, n, d, (alg,)) for n, d in enumerate(pieces, start=1)]
    obj = s.uploads.complete(up, done)
    whole = b"".join(pieces)
    assert obj.checksums == {
        algorithm: cks.to_header_value(alg, cks.compute(alg, whole)),
        "type": "FULL_OBJECT",
    }


def test_part_checksum_from_client_is_checked_at_complete(env: Env, bucket: str, small_parts: None) -> None:
    s = env.storage
    up = s.uploads.create(bucket, "pc", owner="p", headers={}, checksum_algorithm="CRC32C")
    info = env.blobs.put(b"data", ["md5", "crc32c"])
    good = cks.to_header_value("crc32c", info.digests["crc32c"])
    part = s.uploads.put_part(up, 1, info, etag=info.digests["md5"].hex(), checksums={"CRC32C": good})
    with pytest.raises(StorageError) as err:
        s.uploads.complete(up, [CompletedPart(1, part.etag, {"CRC32C": "AAAAAA=="})])
    assert from_storage(err.value).code == "InvalidPart"
    obj = s.uploads.complete(up, [CompletedPart(1, part.etag, {"CRC32C": good})])
    assert obj.checksums["CRC32C"].endswith("-1")


def test_upload_without_part_checksums_gets_none(env: Env, bucket: str, small_parts: None) -> None:
    s = env.storage
    up = s.uploads.create(bucket, "nc", owner="p", headers={}, checksum_algorithm="SHA256")
    obj = s.uploads.complete(up, [_part(env, up, 1, b"no sha256 computed")])  # only md5 digested
    assert obj.checksums == {}


def test_list_uploads(env: Env, bucket: str) -> None:
    s = env.storage
    made = [
        s.uploads.create(bucket, k, owner="p", headers={}) for k in ["a/1", "a/2", "b", "b", "c/x/y", "é"]
    ]
    listing = s.uploads.list(bucket)
    assert [(u.key, u.upload_id) for u in listing.uploads] == sorted(
        [(u.key, u.upload_id) for u in made], key=lambda t: (t[0].encode(), t[1])
    )
    assert not listing.is_truncated
    b_ids = sorted(u.upload_id for u in made if u.key == "b")
    assert [u.upload_id for u in listing.uploads if u.key == "b"] == b_ids  # initiation order

    rolled = s.uploads.list(bucket, delimiter="/")
    assert rolled.common_prefixes == ["a/", "c/"] and [u.key for u in rolled.uploads] == ["b", "b", "é"]
    assert [u.key for u in s.uploads.list(bucket, prefix="a/").uploads] == ["a/1", "a/2"]

    # paging through with both markers visits everything once
    seen: list[tuple[str, str | None]] = []
    km, um = "", ""
    while True:
        page = s.uploads.list(bucket, delimiter="/", key_marker=km, upload_id_marker=um, max_uploads=2)
        entries = [(u.key, u.upload_id) for u in page.uploads] + [(p, None) for p in page.common_prefixes]
        seen += sorted(entries, key=lambda t: t[0].encode())
        if not page.is_truncated:
            break
        km, um = page.next_key_marker or "", page.next_upload_id_marker or ""
    assert [k for k, _ in seen] == ["a/", "b", "b", "c/", "é"]
    # a key marker with an upload id marker resumes inside that key
    resumed = s.uploads.list(bucket, key_marker="b", upload_id_marker=b_ids[0])
    assert [(u.key, u.upload_id) for u in resumed.uploads][:1] == [("b", b_ids[1])]
    assert s.uploads.list(bucket, key_marker="b").uploads[0].key == "c/x/y"
    with pytest.raises(ValueError):  # the S3 face validates max-uploads; a negative one is a caller's bug
        s.uploads.list(bucket, max_uploads=-1)
