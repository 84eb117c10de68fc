"""Objects: put/get/delete, key rules, conditional writes, versions, copies, retirement."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from coffer import checksums as cks
from coffer.s3.errors import from_storage
from coffer.storage.errors import StorageError
from coffer.storage.models import NULL_VERSION
from coffer.storage.service import CompletedPart, validate_key
from coffer.store.schema import objects
from tests.support.storage import Env, SQLCounter, md5_hex


def test_put_then_get(env: Env, bucket: str) -> None:
    v = env.put(
        bucket,
        "dir/é/key.txt",
        b"hello world",
        headers={"content-type": "text/plain", "x-amz-meta-a": "1"},
        checksums={"CRC32C": "yZRlqg==", "type": "FULL_OBJECT"},
        tags={"k": "v"},
        storage_class="STANDARD",
    )
    assert v.version_id == NULL_VERSION and v.is_latest and not v.is_delete_marker
    assert v.etag == f'"{md5_hex(b"hello world")}"' and v.size == 11 and v.parts_count is None
    got = env.storage.objects.get(bucket, "dir/é/key.txt")
    assert got == v
    assert got.headers == {"content-type": "text/plain", "x-amz-meta-a": "1"}
    assert got.checksums["CRC32C"] == "yZRlqg==" and got.tags == {"k": "v"}
    assert got.owner_principal == "coreweave/alice" and got.last_modified.tzinfo is not None
    assert env.read(got.parts) == b"hello world"
    assert env.storage.objects.get(bucket, "dir/é/key.txt", NULL_VERSION) == v


def test_empty_object(env: Env, bucket: str) -> None:
    v = env.put(bucket, "empty", b"")
    assert v.size == 0 and v.etag == '"d41d8cd98f00b204e9800998ecf8427e"'
    assert env.read(env.storage.objects.get(bucket, "empty").parts) == b""


def test_overwrite_retires_old_blob_in_same_transaction(env: Env, bucket: str) -> None:
    first = env.put(bucket, "k", b"one")
    with SQLCounter(env.db) as sql:
        second = env.put(bucket, "k", b"two")
    assert sql.commits == 1  # one metadata transaction for the whole PUT
    assert first.parts[0].blob in env.dead()
    assert second.parts[0].blob not in env.dead()
    assert env.read(env.storage.objects.get(bucket, "k").parts) == b"two"
    assert second.seq == first.seq + 1
    with env.db.read() as conn:
        rows = conn.execute(sa.select(objects.c.version_id).where(objects.c.bucket == bucket)).all()
    assert rows == [(NULL_VERSION,)]


def test_small_put_costs_one_transaction_of_few_statements(env: Env, bucket: str) -> None:
    info = env.blobs.put(b"x" * 4096)
    env.storage.settings.org(env.org)  # cached, as on a running server (the caps read it)
    with SQLCounter(env.db) as sql:
        env.storage.objects.put(
            bucket, "small", info, etag=md5_hex(b"x" * 4096), headers={}, checksums={}, owner="p"
        )
    assert sql.commits == 1
    # bucket row, the key's lock (PostgreSQL), latest row, insert, usage counters
    assert len(sql.statements) <= (5 if env.backend == "postgres" else 4), sql.statements
    assert not any("SELECT *" in s for s, _ in sql.statements)


def test_object_lookup_is_one_indexed_query(env: Env, bucket: str) -> None:
    env.put(bucket, "look", b"up")
    env.storage.buckets.get(bucket)
    with SQLCounter(env.db) as sql:
        env.storage.objects.get(bucket, "look")
    assert len(sql.selects()) == 1


def test_point_read_matches_the_sqlalchemy_read(env: Env, bucket: str) -> None:
    """Database.fetch_one (on SQLite a DBAPI read with the columns' own processors) gives
    what a SQLAlchemy read of the same statement gives, for every column type the row has."""
    from coffer.storage.objects import _GET_LATEST, _GET_VERSION
    from coffer.storage.rows import version_from_row

    env.put(bucket, "k", b"null version", headers={"content-type": "text/plain", "x-amz-meta-é": "ü"})
    env.storage.buckets.update(bucket, versioning="Enabled")
    v1 = env.put(
        bucket,
        "k",
        b"one",
        checksums={"CRC32C": "yZRlqg==", "type": "FULL_OBJECT"},
        tags={"k": "v"},
        acl={"owner": "o", "grants": [{"permission": "READ", "grantee": {"type": "Group", "uri": "u"}}]},
        storage_class="COLD",
    )
    env.storage.objects.delete(bucket, "k")  # the latest is now a delete marker
    reads = [
        (_GET_LATEST, {"bucket": bucket, "key": "k"}),
        (_GET_VERSION, {"bucket": bucket, "key": "k", "version_id": v1.version_id}),
        (_GET_VERSION, {"bucket": bucket, "key": "k", "version_id": NULL_VERSION}),
    ]
    for statement, params in reads:
        fast = env.db.fetch_one(statement, params)
        with env.db.query() as conn:
            slow = conn.execute(statement, params).first()
        assert slow is not None and tuple(fast) == tuple(slow)
        assert version_from_row(fast) == version_from_row(slow)
        if env.backend == "sqlite":
            assert not isinstance(fast, sa.Row)  # the DBAPI path ran, not the fallback
    latest = version_from_row(env.db.fetch_one(*reads[0]))
    assert latest.is_delete_marker is True and latest.is_latest is True
    older = version_from_row(env.db.fetch_one(*reads[1]))
    assert older.tags == {"k": "v"} and older.acl is not None and older.last_modified.tzinfo is not None
    assert env.db.fetch_one(_GET_LATEST, {"bucket": bucket, "key": "absent"}) is None


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("", "InvalidArgument"),
        ("a\x00b", "InvalidArgument"),
        ("k" * 1025, "KeyTooLongError"),
        ("é" * 513, "KeyTooLongError"),  # 1026 bytes in 513 characters
        ("\ud800", "InvalidArgument"),  # a lone surrogate is not UTF-8
    ],
)
def test_bad_keys(env: Env, bucket: str, key: str, code: str) -> None:
    with pytest.raises(StorageError) as err:
        validate_key(key)
    assert from_storage(err.value).code == code
    info = env.blobs.put(b"body")
    with pytest.raises(StorageError) as err:
        env.storage.objects.put(bucket, key, info, etag="x", headers={}, checksums={}, owner="p")
    assert from_storage(err.value).code == code
    assert not env.blobs.exists(info.blob)  # the refused body is gone at once


def test_longest_keys_are_fine(env: Env, bucket: str) -> None:
    for key in ("k" * 1024, "é" * 512, "😀" * 256):
        env.put(bucket, key, b"x")
        assert env.storage.objects.get(bucket, key).key == key


def test_missing_things(env: Env, bucket: str) -> None:
    s = env.storage
    with pytest.raises(StorageError) as err:
        s.objects.get(bucket, "nope")
    assert from_storage(err.value).code == "NoSuchKey" and from_storage(err.value).status == 404
    with pytest.raises(StorageError) as err:
        s.objects.get("no-such-bucket-here", "k")
    assert from_storage(err.value).code == "NoSuchBucket"
    with pytest.raises(StorageError) as err:
        env.put("no-such-bucket-here", "k", b"x")
    assert from_storage(err.value).code == "NoSuchBucket"
    with pytest.raises(StorageError) as err:
        s.objects.get(bucket, "nope", "0" * 32)
    assert from_storage(err.value).code == "NoSuchVersion"
    with pytest.raises(StorageError) as err:
        s.objects.get(bucket, "nope", "not-a-version")
    assert from_storage(err.value).code == "InvalidArgument"


def test_delete_is_idempotent(env: Env, bucket: str) -> None:
    v = env.put(bucket, "k", b"x")
    assert env.storage.objects.delete(bucket, "k").delete_marker is False
    assert env.storage.objects.delete(bucket, "k").version_id is None
    assert v.parts[0].blob in env.dead()
    with pytest.raises(StorageError):
        env.storage.objects.get(bucket, "k")


def test_if_none_match_star(env: Env, bucket: str) -> None:
    env.put(bucket, "k", b"first", if_none_match="*")
    info = env.blobs.put(b"second")
    with pytest.raises(StorageError) as err:
        env.storage.objects.put(
            bucket, "k", info, etag="e", headers={}, checksums={}, owner="p", if_none_match="*"
        )
    assert from_storage(err.value).code == "PreconditionFailed" and from_storage(err.value).status == 412
    assert not env.blobs.exists(info.blob)
    assert env.read(env.storage.objects.get(bucket, "k").parts) == b"first"


def test_if_match(env: Env, bucket: str) -> None:
    v = env.put(bucket, "k", b"v1")
    with pytest.raises(StorageError) as err:
        env.put(bucket, "k", b"v2", if_match='"0123"')
    assert from_storage(err.value).code == "PreconditionFailed"
    env.put(bucket, "k", b"v2", if_match=v.etag)  # quoted
    v2 = env.storage.objects.get(bucket, "k")
    env.put(bucket, "k", b"v3", if_match=v2.etag.strip('"'))  # unquoted
    env.put(bucket, "k", b"v4", if_match="*")
    assert env.read(env.storage.objects.get(bucket, "k").parts) == b"v4"
    with pytest.raises(StorageError) as err:
        env.put(bucket, "absent", b"x", if_match="*")
    assert from_storage(err.value).code == "NoSuchKey"


def test_enabled_versioning_keeps_versions_and_uses_delete_markers(env: Env, bucket: str) -> None:
    s = env.storage
    null = env.put(bucket, "k", b"before versioning")
    s.buckets.update(bucket, versioning="Enabled")
    v1 = env.put(bucket, "k", b"one")
    v2 = env.put(bucket, "k", b"two")
    assert len({null.version_id, v1.version_id, v2.version_id}) == 3
    assert v1.version_id != NULL_VERSION and len(v1.version_id) == 32
    assert null.seq < v1.seq < v2.seq
    assert env.dead() & {null.parts[0].blob, v1.parts[0].blob} == set()
    assert env.read(s.objects.get(bucket, "k").parts) == b"two"
    assert env.read(s.objects.get(bucket, "k", v1.version_id).parts) == b"one"
    assert env.read(s.objects.get(bucket, "k", NULL_VERSION).parts) == b"before versioning"
    assert not s.objects.get(bucket, "k", v1.version_id).is_latest

    marker = s.objects.delete(bucket, "k")
    assert marker.delete_marker and marker.version_id not in (None, NULL_VERSION)
    with pytest.raises(StorageError) as err:
        s.objects.get(bucket, "k")
    assert from_storage(err.value).code == "NoSuchKey"
    assert from_storage(err.value).headers["x-amz-delete-marker"] == "true"
    assert from_storage(err.value).headers["x-amz-version-id"] == marker.version_id
    with pytest.raises(StorageError) as err:
        s.objects.get(bucket, "k", marker.version_id)
    assert (
        from_storage(err.value).code == "MethodNotAllowed"
        and from_storage(err.value).headers["x-amz-delete-marker"] == "true"
    )
    assert env.storage.objects.list(bucket).contents == []

    # removing the marker brings v2 back; removing v2 for good makes v1 the latest
    removed = s.objects.delete(bucket, "k", marker.version_id)
    assert removed == type(removed)(version_id=marker.version_id, delete_marker=True)
    assert env.read(s.objects.get(bucket, "k").parts) == b"two"
    s.objects.delete(bucket, "k", v2.version_id)
    assert v2.parts[0].blob in env.dead()
    latest = s.objects.get(bucket, "k")
    assert latest.version_id == v1.version_id and latest.is_latest
    # a version that does not exist: success, nothing changes
    assert s.objects.delete(bucket, "k", "f" * 32).delete_marker is False
    assert s.objects.get(bucket, "k").version_id == v1.version_id


def test_suspended_versioning_replaces_only_the_null_version(env: Env, bucket: str) -> None:
    s = env.storage
    s.buckets.update(bucket, versioning="Enabled")
    v1 = env.put(bucket, "k", b"one")
    s.buckets.update(bucket, versioning="Suspended")
    n1 = env.put(bucket, "k", b"null one")
    n2 = env.put(bucket, "k", b"null two")
    assert n1.version_id == n2.version_id == NULL_VERSION
    assert n1.parts[0].blob in env.dead() and v1.parts[0].blob not in env.dead()
    assert env.read(s.objects.get(bucket, "k", v1.version_id).parts) == b"one"
    # a plain DELETE puts a null delete marker in place of the null version
    d = s.objects.delete(bucket, "k")
    assert d == type(d)(version_id=NULL_VERSION, delete_marker=True)
    assert n2.parts[0].blob in env.dead()
    with pytest.raises(StorageError) as err:
        s.objects.get(bucket, "k")
    assert from_storage(err.value).headers.get("x-amz-delete-marker") == "true"
    # the next suspended PUT replaces that marker
    env.put(bucket, "k", b"null three")
    assert env.read(s.objects.get(bucket, "k").parts) == b"null three"
    assert env.read(s.objects.get(bucket, "k", v1.version_id).parts) == b"one"


def test_enabled_delete_of_missing_key_still_writes_marker(env: Env, bucket: str) -> None:
    env.storage.buckets.update(bucket, versioning="Enabled")
    d = env.storage.objects.delete(bucket, "never-existed")
    assert d.delete_marker
    with pytest.raises(StorageError) as err:
        env.storage.objects.get(bucket, "never-existed")
    assert from_storage(err.value).headers["x-amz-delete-marker"] == "true"


def test_copy_single_part_keeps_etag_and_checksums(env: Env, bucket: str) -> None:
    data = b"copy me" * 1000
    src = env.put(bucket, "src", data, checksums={"CRC32": "abc=", "type": "FULL_OBJECT"})
    dst = env.storage.objects.copy(src, bucket, "dst", headers={"content-type": "a/b"}, owner="coreweave/bob")
    assert dst.etag == src.etag and dst.checksums == src.checksums
    assert dst.headers == {"content-type": "a/b"} and dst.owner_principal == "coreweave/bob"
    assert dst.parts[0].blob != src.parts[0].blob
    assert env.read(dst.parts) == data
    env.storage.objects.delete(bucket, "src")
    assert env.read(env.storage.objects.get(bucket, "dst").parts) == data


def test_copy_multipart_source_becomes_single_part(
    env: Env, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from coffer.storage import rules

    monkeypatch.setattr(rules, "MIN_PART_SIZE", 1)
    s = env.storage
    up = s.uploads.create(bucket, "mp", owner="p", headers={}, checksum_algorithm="CRC32C")
    done = []
    for n, piece in enumerate([b"a" * 100, b"b" * 50], start=1):
        info = env.blobs.put(piece, ["md5", "crc32c"])
        done.append(
            CompletedPart(
                n, s.uploads.put_part(up, n, info, etag=info.digests["md5"].hex(), checksums={}).etag, {}
            )
        )
    src = s.uploads.complete(up, done)
    assert src.parts_count == 2
    dst = s.objects.copy(src, bucket, "copy", headers={}, owner="p")
    whole = b"a" * 100 + b"b" * 50
    assert dst.etag == f'"{md5_hex(whole)}"' and dst.parts_count is None
    assert dst.checksums == {
        "CRC32C": cks.to_header_value("crc32c", cks.compute("crc32c", whole)),
        "type": "FULL_OBJECT",
    }
    assert env.read(dst.parts) == whole
    other = s.objects.copy(src, bucket, "copy2", headers={}, owner="p", checksum_algorithm="SHA256")
    assert other.checksums["SHA256"] == cks.to_header_value("sha256", cks.compute("sha256", whole))
    with pytest.raises(StorageError) as err:
        s.objects.copy(src, bucket, "copy3", headers={}, owner="p", checksum_algorithm="MD4")
    assert from_storage(err.value).code == "InvalidRequest"


def test_copy_to_missing_bucket_copies_nothing(env: Env, bucket: str) -> None:
    src = env.put(bucket, "src", b"data")
    before = {b for b, _ in env.blobs.iter_blobs()}
    with pytest.raises(StorageError) as err:
        env.storage.objects.copy(src, "no-such-bucket-zz", "dst", headers={}, owner="p")
    assert from_storage(err.value).code == "NoSuchBucket"
    assert {b for b, _ in env.blobs.iter_blobs()} == before


def test_copy_refused_by_precondition_leaves_no_blob(env: Env, bucket: str) -> None:
    src = env.put(bucket, "src", b"data")
    env.put(bucket, "dst", b"exists")
    before = {b for b, _ in env.blobs.iter_blobs()}
    with pytest.raises(StorageError) as err:
        env.storage.objects.copy(src, bucket, "dst", headers={}, owner="p", if_none_match="*")
    assert from_storage(err.value).code == "PreconditionFailed"
    assert {b for b, _ in env.blobs.iter_blobs()} == before


@pytest.mark.parametrize("versioning", ["", "Enabled"])
def test_concurrent_writers_on_one_key(env: Env, bucket: str, versioning: str) -> None:
    """Racing PUTs serialise (PostgreSQL: row locks, the unique latest index and a retry)."""
    from concurrent.futures import ThreadPoolExecutor

    if versioning:
        env.storage.buckets.update(bucket, versioning=versioning)

    def writer(i: int) -> str:
        return env.put(bucket, "hot", b"writer %d" % i).version_id

    with ThreadPoolExecutor(6) as pool:
        versions = list(pool.map(writer, range(30)))
    with env.db.read() as conn:
        rows = conn.execute(
            sa.select(objects.c.version_id, objects.c.seq, objects.c.is_latest, objects.c.parts).where(
                objects.c.bucket == bucket, objects.c.key == "hot"
            )
        ).all()
    latest = [r for r in rows if r.is_latest]
    assert len(latest) == 1
    assert latest[0].seq == max(r.seq for r in rows)
    current = env.storage.objects.get(bucket, "hot")
    assert env.read(current.parts).startswith(b"writer ")
    if versioning:
        assert len(rows) == 30 and sorted(r.version_id for r in rows) == sorted(versions)
        assert len({r.seq for r in rows}) == 30
    else:
        assert len(rows) == 1 and set(versions) == {NULL_VERSION}
        live = {p["blob"] for p in rows[0].parts}
        assert len(env.dead() & live) == 0
