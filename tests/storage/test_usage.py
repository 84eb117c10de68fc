"""Usage counters: exact after every kind of write, in the write's own transaction; verify/fix;
the read touches a few counter rows whatever the number of objects (coffer/storage/usage.py)."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from coffer.config import normalize_database_url
from coffer.storage import rules
from coffer.storage.blobs import BlobStore
from coffer.storage.errors import NoSuchBucket
from coffer.storage.models import CompletedPart, Upload
from coffer.storage.service import Storage, parse_zones
from coffer.storage.usage import SHARDS, BucketUsage, ClassUsage, Drift
from coffer.store.db import Database, alembic_config
from coffer.store.schema import (
    bucket_usage,
    buckets,
    multipart_parts,
    multipart_uploads,
    objects,
    organizations,
)
from tests.support.harness import create_pg_database, drop_pg_database
from tests.support.storage import Env, SQLCounter, version_row


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules, "MIN_PART_SIZE", 1)


def usage(env: Env, bucket: str) -> BucketUsage:
    """The counters, after checking that a recomputation from the rows agrees with them."""
    assert env.storage.usage.verify(bucket) == []
    return env.storage.usage.bucket(bucket)


def std(env: Env, bucket: str) -> ClassUsage:
    return usage(env, bucket).classes.get("STANDARD", ClassUsage())


def part(env: Env, up: Upload, n: int, data: bytes) -> CompletedPart:
    info = env.blobs.put(data, ["md5"])
    p = env.storage.uploads.put_part(up, n, info, etag=info.digests["md5"].hex(), checksums={})
    return CompletedPart(n, p.etag, {})


def test_unversioned_puts_overwrites_and_deletes(env: Env, bucket: str) -> None:
    assert usage(env, bucket) == BucketUsage(classes={})
    env.put(bucket, "a", b"12345")
    env.put(bucket, "b", b"xy")
    assert std(env, bucket) == ClassUsage(objects=2, bytes=7)
    env.put(bucket, "a", b"1")  # the overwrite replaces the null version
    assert std(env, bucket) == ClassUsage(objects=2, bytes=3)
    env.storage.objects.delete(bucket, "a")
    env.storage.objects.delete(bucket, "a")  # idempotent
    assert std(env, bucket) == ClassUsage(objects=1, bytes=2)
    assert usage(env, bucket).total_bytes == 2


def test_versioned_overwrites_markers_and_version_deletes(env: Env, bucket: str) -> None:
    env.storage.buckets.update(bucket, versioning="Enabled")
    v1 = env.put(bucket, "k", b"one")
    v2 = env.put(bucket, "k", b"three")
    assert std(env, bucket) == ClassUsage(objects=1, bytes=5, noncurrent_objects=1, noncurrent_bytes=3)
    marker = env.storage.objects.delete(bucket, "k")
    assert marker.delete_marker
    assert std(env, bucket) == ClassUsage(noncurrent_objects=2, noncurrent_bytes=8, delete_markers=1)
    # Deleting the marker promotes v2 back to current.
    env.storage.objects.delete(bucket, "k", marker.version_id)
    assert std(env, bucket) == ClassUsage(objects=1, bytes=5, noncurrent_objects=1, noncurrent_bytes=3)
    # Deleting the current version promotes v1.
    env.storage.objects.delete(bucket, "k", v2.version_id)
    assert std(env, bucket) == ClassUsage(objects=1, bytes=3)
    env.storage.objects.delete(bucket, "k", v1.version_id)
    assert usage(env, bucket).classes == {}
    # A marker over nothing, then a version under a marker, then the marker promoted away.
    lone = env.storage.objects.delete(bucket, "gone")
    assert std(env, bucket) == ClassUsage(delete_markers=1)
    env.put(bucket, "gone", b"back")
    assert std(env, bucket) == ClassUsage(objects=1, bytes=4, delete_markers=1)
    env.storage.objects.delete(bucket, "gone", lone.version_id)  # a noncurrent marker goes
    assert std(env, bucket) == ClassUsage(objects=1, bytes=4)


def test_suspended_versioning_replaces_the_null_version(env: Env, bucket: str) -> None:
    env.storage.buckets.update(bucket, versioning="Enabled")
    env.put(bucket, "k", b"kept")  # a real version, kept through suspension
    env.storage.buckets.update(bucket, versioning="Suspended")
    env.put(bucket, "k", b"null-1")
    assert std(env, bucket) == ClassUsage(objects=1, bytes=6, noncurrent_objects=1, noncurrent_bytes=4)
    env.put(bucket, "k", b"null-22")  # replaces the null version
    assert std(env, bucket) == ClassUsage(objects=1, bytes=7, noncurrent_objects=1, noncurrent_bytes=4)
    env.storage.objects.delete(bucket, "k")  # a null delete marker replaces the null version
    assert std(env, bucket) == ClassUsage(noncurrent_objects=1, noncurrent_bytes=4, delete_markers=1)
    env.put(bucket, "k", b"again")  # replaces the null marker
    assert std(env, bucket) == ClassUsage(objects=1, bytes=5, noncurrent_objects=1, noncurrent_bytes=4)


def test_storage_classes_are_counted_apart(env: Env, bucket: str) -> None:
    env.storage.buckets.update(bucket, versioning="Enabled")
    env.put(bucket, "k", b"standard")
    env.put(bucket, "k", b"archived", storage_class="STANDARD_IA")  # a class change
    got = usage(env, bucket)
    assert got.classes == {
        "STANDARD": ClassUsage(noncurrent_objects=1, noncurrent_bytes=8),
        "STANDARD_IA": ClassUsage(objects=1, bytes=8),
    }
    assert got.total_bytes == 16


def test_multipart_parts_replacements_complete_and_abort(env: Env, bucket: str, small_parts: None) -> None:
    s = env.storage
    up = s.uploads.create(bucket, "mp", owner="p", headers={}, storage_class="STANDARD_IA")
    assert (usage(env, bucket).uploads, usage(env, bucket).upload_bytes) == (1, 0)
    p1 = part(env, up, 1, b"a" * 10)
    part(env, up, 2, b"b" * 20)
    p2 = part(env, up, 2, b"c" * 5)  # replaces part 2
    part(env, up, 3, b"d" * 7)  # left out of the completion
    got = usage(env, bucket)
    assert (got.uploads, got.upload_bytes, got.classes) == (1, 22, {})
    s.uploads.complete(up, [p1, p2])
    got = usage(env, bucket)
    assert (got.uploads, got.upload_bytes) == (0, 0)
    assert got.classes == {"STANDARD_IA": ClassUsage(objects=1, bytes=15)}

    other = s.uploads.create(bucket, "mp2", owner="p", headers={})
    part(env, other, 1, b"x" * 9)
    assert usage(env, bucket).upload_bytes == 9
    s.uploads.abort(other)
    got = usage(env, bucket)
    assert (got.uploads, got.upload_bytes, got.total_bytes) == (0, 0, 15)


def test_copies_count_at_the_destination(env: Env, bucket: str) -> None:
    src = env.put(bucket, "src", b"0123456789")
    env.storage.objects.copy(src, bucket, "dst", headers={}, owner="p")
    env.storage.objects.copy(src, bucket, "src", headers={}, owner="p", storage_class="STANDARD_IA")
    assert usage(env, bucket).classes == {
        "STANDARD": ClassUsage(objects=1, bytes=10),
        "STANDARD_IA": ClassUsage(objects=1, bytes=10),
    }


def test_deleting_a_bucket_drops_its_counters(env: Env, small_parts: None) -> None:
    name = "gone-" + secrets.token_hex(4)
    env.storage.buckets.create(org_id=env.org, owner="p", name=name, zone=None)
    env.put(name, "k", b"data")
    env.storage.objects.delete(name, "k")
    up = env.storage.uploads.create(name, "pending", owner="p", headers={})
    part(env, up, 1, b"part")
    env.storage.buckets.delete(name)  # aborts the upload
    with env.db.read() as conn:
        left = conn.execute(sa.select(bucket_usage).where(bucket_usage.c.bucket == name)).all()
    assert left == []
    with pytest.raises(NoSuchBucket):
        env.storage.usage.bucket(name)
    env.storage.buckets.create(org_id=env.org, owner="p", name=name, zone=None)
    assert usage(env, name) == BucketUsage(classes={})


def test_org_usage_sums_the_org_buckets(env: Env) -> None:
    org = env.new_org()
    names = [f"org-{secrets.token_hex(4)}" for _ in range(3)]
    for n, name in enumerate(names):
        env.storage.buckets.create(org_id=org, owner="p", name=name, zone=None)
        env.put(name, "k", b"x" * (n + 1))
    assert env.storage.usage.org(org) == 6
    assert env.storage.usage.org(env.new_org()) == 0


def test_verify_reports_drift_and_fix_rewrites_it(env: Env, bucket: str) -> None:
    env.put(bucket, "a", b"12345")
    with env.db.write() as conn:  # a counter gone wrong (only a bug or a hand edit could)
        conn.execute(
            bucket_usage.update()
            .where(bucket_usage.c.bucket == bucket)
            .values(bytes=bucket_usage.c.bytes + 100, delete_markers=3)
        )
    drift = env.storage.usage.verify(bucket)
    assert sorted(drift, key=lambda d: d.counter) == [
        Drift("STANDARD", "bytes", 105, 5),
        Drift("STANDARD", "delete_markers", 3, 0),
    ]
    assert env.storage.usage.verify(bucket, fix=True) == drift
    assert env.storage.usage.verify(bucket) == []
    assert std(env, bucket) == ClassUsage(objects=1, bytes=5)
    with pytest.raises(NoSuchBucket):
        env.storage.usage.verify("no-such-bucket-here")


def test_concurrent_writers_keep_the_counters_exact(env: Env, bucket: str) -> None:
    """Writers on many keys at once (PostgreSQL: each adds to a shard of its own choosing)."""
    env.storage.buckets.update(bucket, versioning="Enabled")
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                key = f"k{(n * 7 + i) % 10}"
                if i % 4 == 3:
                    env.storage.objects.delete(bucket, key)
                else:
                    env.put(bucket, key, b"x" * (n + i))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    got = std(env, bucket)  # `usage` verifies against the rows
    assert got.objects + got.delete_markers >= 1
    with env.db.read() as conn:
        rows = conn.execute(sa.select(sa.func.count()).where(bucket_usage.c.bucket == bucket)).scalar_one()
    assert 1 <= rows <= (SHARDS if env.backend == "postgres" else 1)


def test_the_migration_counts_what_existing_buckets_hold(backend: str, tmp_path: Path) -> None:
    """A store at revision 0007 with objects, versions, markers and uploads: 0008 computes
    counters that `verify` finds exact."""
    url = create_pg_database() if backend == "postgres" else f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(normalize_database_url(url))
    try:
        with db.engine.connect() as conn:
            command.upgrade(alembic_config(conn), "0007")
            conn.commit()
        now = datetime.now(UTC)
        with db.write() as conn:
            conn.execute(organizations.insert().values(id="o", name="o", created_at=now))
            for name in ("old-a", "old-b"):
                conn.execute(
                    buckets.insert().values(
                        name=name, org_id="o", owner_principal="p", zone="Z", created_at=now, settings={}
                    )
                )
            conn.execute(
                objects.insert(),
                [
                    version_row("old-a", "k", "v2", 10),
                    version_row("old-a", "k", "v1", 7, is_latest=False),
                    version_row("old-a", "gone", "m1", 0, is_delete_marker=True),
                    version_row("old-a", "ia", "null", 5, storage_class="STANDARD_IA"),
                    version_row("old-b", "k", "null", 3),
                ],
            )
            for upload, cls in (("u1", "STANDARD"), ("u2", "STANDARD_IA")):
                conn.execute(
                    multipart_uploads.insert().values(
                        upload_id=upload,
                        bucket="old-a",
                        key="mp",
                        initiated=now,
                        storage_class=cls,
                        headers={},
                    )
                )
            conn.execute(
                multipart_parts.insert(),
                [
                    {"upload_id": "u1", "part_number": n, "blob": f"b{n}", "size": 100 * n, "etag": "e"}
                    | {"checksums": {}, "last_modified": now}
                    for n in (1, 2)
                ],
            )
        db.migrate()
        storage = Storage(db, BlobStore(tmp_path / "blobs"), zones=parse_zones(""), default_zone="Z")
        assert storage.usage.verify("old-a") == [] and storage.usage.verify("old-b") == []
        a = storage.usage.bucket("old-a")
        assert a.classes == {
            "STANDARD": ClassUsage(
                objects=1, bytes=10, noncurrent_objects=1, noncurrent_bytes=7, delete_markers=1
            ),
            "STANDARD_IA": ClassUsage(objects=1, bytes=5),
        }
        assert (a.uploads, a.upload_bytes, a.total_bytes) == (2, 300, 322)
        assert storage.usage.bucket("old-b").total_bytes == 3
        storage.collector.stop()
    finally:
        db.dispose()
        if backend == "postgres":
            drop_pg_database(url)


def bulk_objects(env: Env, bucket: str, first: int, last: int, *, batch: int = 5000) -> None:
    """One-byte objects `first` to `last` (excluded), inserted in bulk in a few transactions,
    each counted by the same Delta the write path fills, applied by `Usage.apply` at commit."""
    now = datetime.now(UTC)
    for start in range(first, last, batch):

        def tx(conn: sa.Connection, start: int = start) -> None:
            rows = [
                version_row(bucket, f"bulk/{n:07d}", "null", 1, last_modified=now)
                for n in range(start, min(start + batch, last))
            ]
            conn.execute(objects.insert(), rows)
            delta = env.storage.tx.delta(conn)
            for _ in rows:
                delta.version(bucket, "STANDARD", 1, marker=False, latest=True)

        env.storage.tx.run(tx)


@pytest.mark.slow
def test_the_usage_read_is_constant_in_the_number_of_objects(env: Env, bucket: str) -> None:
    """1,000 then 100,000 objects: the read is the same one statement, planned on the counter
    rows alone (at most SHARDS per storage class), never on the objects table."""
    env.storage.usage.bucket(bucket)  # the bucket cache, warm
    plans = []
    for first, total in ((0, 1_000), (1_000, 100_000)):
        bulk_objects(env, bucket, first, total)
        with SQLCounter(env.db) as sql:
            got = env.storage.usage.bucket(bucket)
        assert got.classes["STANDARD"] == ClassUsage(objects=total, bytes=total)
        assert len(sql.statements) == 1, sql.statements
        plans.append(_plan(env, *sql.statements[0]))
    assert plans[0] == plans[1]
    assert "bucket_usage" in plans[0] and "objects" not in plans[0].replace("bucket_usage", ""), plans[0]
    with env.db.read() as conn:
        rows = conn.execute(sa.select(sa.func.count()).where(bucket_usage.c.bucket == bucket)).scalar_one()
    assert rows <= (SHARDS if env.backend == "postgres" else 1)
    assert env.storage.usage.verify(bucket) == []  # and the counters are the rows' count


def _plan(env: Env, statement: str, params: object) -> str:
    """The query plan of one statement as the engine ran it."""
    prefix = "EXPLAIN QUERY PLAN " if env.backend == "sqlite" else "EXPLAIN "
    with env.db.engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + statement, params).all()  # type: ignore[arg-type]
    return " ".join(str(r[-1]) for r in rows).lower()
