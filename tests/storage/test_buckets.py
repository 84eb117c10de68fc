"""Buckets: CoreWeave's name rules, zones, create semantics, the cache and its invalidation."""

from __future__ import annotations

import secrets

import pytest

from coffer.s3.errors import from_storage
from coffer.storage.errors import StorageError
from coffer.storage.service import COREWEAVE_ZONES, Storage, parse_zones, validate_bucket_name
from tests.support.storage import Env, SQLCounter


def _name() -> str:
    return "bk-" + secrets.token_hex(6)


@pytest.mark.parametrize(
    "name",
    ["abc", "a" * 63, "my-bucket-1", "0bucket9", "a-b", "x" + "-" * 61 + "y", "xn-ok", "cwbucket", "integer"],
)
def test_valid_names(name: str) -> None:
    validate_bucket_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "ab",
        "a" * 64,
        "My-bucket",
        "my.bucket",
        "-abc",
        "abc-",
        "ab_c",
        "xn--abc",
        "cw-bucket",
        "vip-bucket",
        "log-stitcher-ch-x",
        "int",
        "",
        "abc\n",
        "ábc",
    ],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(StorageError) as err:
        validate_bucket_name(name)
    assert from_storage(err.value).code == "InvalidBucketName" and from_storage(err.value).status == 400


def test_reserved_names_for_coffer_itself() -> None:
    validate_bucket_name("cw-myorg-audit-logs", allow_reserved=True)
    with pytest.raises(StorageError):
        validate_bucket_name("xn--still-bad", allow_reserved=True)


def test_zone_list_parsing() -> None:
    assert parse_zones("") == list(COREWEAVE_ZONES)
    assert "US-EAST-04A" in COREWEAVE_ZONES and "RNO2A" in COREWEAVE_ZONES and len(COREWEAVE_ZONES) == 25
    assert parse_zones(" us-east-1a, Lab-2 ,,", "us-east-1a") == ["US-EAST-1A", "LAB-2"]
    assert parse_zones("lab-1", "lab-2") == ["LAB-1", "LAB-2"]


def test_create_and_get(env: Env) -> None:
    name = _name()
    b = env.storage.buckets.create(org_id=env.org, owner="coreweave/alice", name=name, zone="us-east-13a")
    assert (b.name, b.org_id, b.owner_principal, b.zone) == (name, env.org, "coreweave/alice", "US-EAST-13A")
    assert b.versioning == "" and b.settings == {} and b.policy is None and b.created_at.tzinfo is not None
    got = env.storage.buckets.get(name)
    assert got == b


def test_default_zone_and_unknown_zone(env: Env) -> None:
    b = env.storage.buckets.create(org_id=env.org, owner="p", name=_name(), zone=None)
    assert b.zone == "US-EAST-04A"
    with pytest.raises(StorageError) as err:
        env.storage.buckets.create(org_id=env.org, owner="p", name=_name(), zone="mars-01a")
    assert from_storage(err.value).code == "InvalidLocationConstraint"


def test_create_again_semantics(env: Env) -> None:
    name = _name()
    first = env.storage.buckets.create(org_id=env.org, owner="coreweave/alice", name=name, zone="US-EAST-04A")
    again = env.storage.buckets.create(org_id=env.org, owner="coreweave/bob", name=name, zone="us-east-04a")
    assert again == first
    with pytest.raises(StorageError) as err:
        env.storage.buckets.create(org_id=env.org, owner="p", name=name, zone="US-EAST-13A")
    assert from_storage(err.value).code == "BucketAlreadyOwnedByYou" and from_storage(err.value).status == 409
    other = env.new_org()
    for zone in ("US-EAST-04A", "US-EAST-13A"):
        with pytest.raises(StorageError) as err:
            env.storage.buckets.create(org_id=other, owner="p", name=name, zone=zone)
        assert from_storage(err.value).code == "BucketAlreadyExists"


def test_bucket_limit_per_org(env: Env) -> None:
    org = env.new_org()
    limited = env.new_storage(max_buckets=2)
    limited.buckets.create(org_id=org, owner="p", name=_name(), zone=None)
    limited.buckets.create(org_id=org, owner="p", name=_name(), zone=None)
    with pytest.raises(StorageError) as err:
        limited.buckets.create(org_id=org, owner="p", name=_name(), zone=None)
    assert from_storage(err.value).code == "TooManyBuckets"


def test_list_buckets_per_org_sorted(env: Env) -> None:
    org = env.new_org()
    names = sorted(_name() for _ in range(3))
    for n in reversed(names):
        env.storage.buckets.create(org_id=org, owner="p", name=n, zone=None)
    assert [b.name for b in env.storage.buckets.list(org)] == names
    assert env.storage.buckets.list(env.new_org()) == []


def test_get_bucket_is_cached_and_invalidated_across_instances(env: Env) -> None:
    name = _name()
    env.storage.buckets.create(org_id=env.org, owner="p", name=name, zone=None)
    env.storage.buckets.get(name)
    with SQLCounter(env.db) as sql:
        for _ in range(5):
            env.storage.buckets.get(name)
    assert sql.statements == []
    # another process (its own Storage, same data dir) changes the bucket
    other = env.new_storage()
    other.buckets.update(name, versioning="Enabled", policy='{"Version":"2012-10-17"}')
    got = env.storage.buckets.get(name)
    assert got.versioning == "Enabled" and got.policy == '{"Version":"2012-10-17"}'
    other.buckets.delete(name)
    with pytest.raises(StorageError) as err:
        env.storage.buckets.get(name)
    assert from_storage(err.value).code == "NoSuchBucket" and from_storage(err.value).status == 404


def test_missing_bucket_is_cached_until_created(env: Env) -> None:
    name = _name()
    with pytest.raises(StorageError):
        env.storage.buckets.get(name)
    with SQLCounter(env.db) as sql, pytest.raises(StorageError):
        env.storage.buckets.get(name)
    assert sql.statements == []
    env.new_storage().buckets.create(org_id=env.org, owner="p", name=name, zone=None)
    assert env.storage.buckets.get(name).name == name


def test_get_bucket_is_one_indexed_query(env: Env) -> None:
    name = _name()
    fresh = env.new_storage()
    fresh.buckets.create(org_id=env.org, owner="p", name=name, zone=None)
    fresh.buckets.update(name, tags={"a": "b"})  # flushes the cache
    with SQLCounter(env.db) as sql:
        fresh.buckets.get(name)
    assert len(sql.statements) == 1
    assert "WHERE buckets.name =" in sql.statements[0][0]


def test_update_bucket_fields(env: Env, bucket: str) -> None:
    s = env.storage
    b = s.buckets.update(
        bucket, tags={"team": "ml"}, cors="<CORSConfiguration/>", settings={"auditLoggingEnabled": True}
    )
    assert (
        b.tags == {"team": "ml"}
        and b.cors == "<CORSConfiguration/>"
        and b.settings == {"auditLoggingEnabled": True}
    )
    b = s.buckets.update(bucket, tags=None, cors=None, settings=None)
    assert b.tags is None and b.cors is None and b.settings == {}
    assert s.buckets.update(bucket, versioning="Suspended").versioning == "Suspended"
    assert s.buckets.update(bucket, versioning="Enabled").versioning == "Enabled"
    with pytest.raises(StorageError) as err:
        s.buckets.update(bucket, versioning=None)
    assert from_storage(err.value).code == "InvalidBucketState"
    with pytest.raises(StorageError) as err:
        s.buckets.update(bucket, versioning="On")
    assert from_storage(err.value).code == "MalformedXML"
    with pytest.raises(TypeError):
        s.buckets.update(bucket, name="other")
    with pytest.raises(StorageError) as err:
        s.buckets.update(_name(), tags=None)
    assert from_storage(err.value).code == "NoSuchBucket"


def test_delete_bucket_only_when_empty(env: Env, bucket: str) -> None:
    s = env.storage
    env.put(bucket, "k", b"data")
    with pytest.raises(StorageError) as err:
        s.buckets.delete(bucket)
    assert from_storage(err.value).code == "BucketNotEmpty" and from_storage(err.value).status == 409
    s.objects.delete(bucket, "k")
    s.buckets.delete(bucket)
    with pytest.raises(StorageError) as err:
        s.buckets.delete(bucket)
    assert from_storage(err.value).code == "NoSuchBucket"


def test_delete_markers_keep_a_bucket_non_empty(env: Env, bucket: str) -> None:
    s = env.storage
    s.buckets.update(bucket, versioning="Enabled")
    s.objects.delete(bucket, "ghost")  # only a delete marker
    with pytest.raises(StorageError) as err:
        s.buckets.delete(bucket)
    assert from_storage(err.value).code == "BucketNotEmpty"


def test_delete_bucket_aborts_uploads_and_retires_their_parts(env: Env, bucket: str) -> None:
    s = env.storage
    up = s.uploads.create(bucket, "big", owner="p", headers={})
    info = env.blobs.put(b"part one")
    s.uploads.put_part(up, 1, info, etag=info.digests["md5"].hex(), checksums={})
    s.buckets.delete(bucket)
    assert info.blob in env.dead()
    with pytest.raises(StorageError) as err:
        s.uploads.get(bucket, "big", up.upload_id)
    assert from_storage(err.value).code == "NoSuchUpload"


def test_unknown_org_is_not_a_name_clash(env: Env) -> None:
    import sqlalchemy as sa

    with pytest.raises(sa.exc.IntegrityError):
        env.storage.buckets.create(org_id="no-such-org", owner="p", name=_name(), zone=None)


def test_storage_without_change_watcher_still_invalidates_its_own_cache(env: Env) -> None:
    s = Storage(env.db, env.blobs, zones=[], default_zone="US-EAST-04A")
    name = _name()
    with pytest.raises(StorageError):
        s.buckets.get(name)
    s.buckets.create(org_id=env.org, owner="p", name=name, zone=None)
    assert s.buckets.get(name).zone == "US-EAST-04A"
