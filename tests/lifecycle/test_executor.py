"""The lifecycle executor end to end: a real server with one-second rule-days, boto3 for the
objects and the rules, and passes run by `coffer lifecycle run` on the same store (so each
test decides when a pass happens) or, in the last test, by the server's own background thread.

Each action happens to what it should and to nothing else; a write that lands after the rule
matched wins; every deletion is audited once with the actor `lifecycle`; the usage counters
stay exact (`coffer admin usage verify`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from coffer.config import Settings
from coffer.lifecycle.expiration import LifecycleTask
from coffer.node import Node
from coffer.storage.models import VersionState
from coffer.storage.rules import utcnow
from tests.support.api import wait_for
from tests.support.auditlogs import DATA, DATA_FIELDS, logged_bucket, wait_for_records
from tests.support.harness import CofferServer, run_coffer, running_server
from tests.support.lifecycle import (
    DAY_SECONDS,
    counts_of,
    executor_env,
    expired,
    put_rules,
    rule,
    run_pass,
    wait_days,
)
from tests.support.s3 import new_bucket, s3_client


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {"env": executor_env()}


@pytest.fixture(scope="module")
def s3(server: CofferServer) -> Any:
    return s3_client(server)


def keys_of(s3: Any, bucket: str) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


def versions_of(s3: Any, bucket: str) -> list[tuple[str, str, bool]]:
    """(key, version id, is a delete marker), in listing order."""
    listing = s3.list_object_versions(Bucket=bucket)
    entries = [(v["Key"], v["VersionId"], False, v["LastModified"]) for v in listing.get("Versions", [])]
    entries += [(m["Key"], m["VersionId"], True, m["LastModified"]) for m in listing.get("DeleteMarkers", [])]
    entries.sort(key=lambda e: (e[0], -e[3].timestamp()))
    return [(key, vid, marker) for key, vid, marker, _ in entries]


def usage_exact(server: CofferServer, bucket: str) -> None:
    result = server.cli("admin", "usage", "verify", "--bucket", bucket, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_expiration_by_prefix_tags_and_size_in_an_unversioned_bucket(server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3, "exp")
    big, small = b"x" * 100, b"x" * 5
    objects = {
        "logs/hit": (big, "t=x"),  # every part of the And filter matches
        "logs/untagged": (big, ""),
        "logs/small": (small, "t=x"),
        "logs/wrong-tag": (big, "t=y"),
        "other/hit-prefix-not": (big, "t=x"),
        "tmp/a": (small, ""),  # the plain prefix rule
        "tmp/b": (small, ""),
    }
    for key, (body, tags) in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, Tagging=tags)
    and_filter = {
        "And": {"Prefix": "logs/", "Tags": [{"Key": "t", "Value": "x"}], "ObjectSizeGreaterThan": 10}
    }
    put_rules(
        s3,
        bucket,
        rule("tagged-big-logs", Filter=and_filter, Expiration={"Days": 1}),
        rule("tmp", prefix="tmp/", Expiration={"Days": 1}),
        rule("later", prefix="", Expiration={"Days": 1000}),
    )
    wait_days(1)  # after every write above
    counts = counts_of(run_pass(server, bucket), bucket)
    assert counts["expire_current"] == 3 and counts["examined"] == len(objects)
    assert keys_of(s3, bucket) == {"logs/untagged", "logs/small", "logs/wrong-tag", "other/hit-prefix-not"}
    events = expired(server, bucket)
    assert sorted((e["key"], e["rule"], e["actor"], e["kind"]) for e in events) == [
        ("logs/hit", "tagged-big-logs", "lifecycle", "expire_current"),
        ("tmp/a", "tmp", "lifecycle", "expire_current"),
        ("tmp/b", "tmp", "lifecycle", "expire_current"),
    ]
    assert counts_of(run_pass(server, bucket), bucket).get("expire_current", 0) == 0  # nothing twice
    usage_exact(server, bucket)


def test_the_rule_that_deletes_sooner_wins(server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3, "sooner")
    for key in ("data/a", "data/b", "keep/c"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    # The long rule comes first and covers everything; the short one wins where both apply.
    put_rules(
        s3,
        bucket,
        rule("long", prefix="", Expiration={"Days": 1000}),
        rule("short", prefix="data/", Expiration={"Days": 1}),
    )
    wait_days(1)  # after every write above
    run_pass(server, bucket)
    assert keys_of(s3, bucket) == {"keep/c"}
    assert {e["rule"] for e in expired(server, bucket)} == {"short"}


def test_versioned_current_expiry_writes_a_delete_marker_and_noncurrent_versions_go_by_count(
    server: CofferServer, s3: Any
) -> None:
    bucket = new_bucket(s3, "ver", versioned=True)
    made = [s3.put_object(Bucket=bucket, Key="hist/k", Body=f"v{i}".encode())["VersionId"] for i in range(4)]
    current = s3.put_object(Bucket=bucket, Key="exp/k", Body=b"old")["VersionId"]
    put_rules(
        s3,
        bucket,
        rule(
            "history",
            prefix="hist/",
            NoncurrentVersionExpiration={"NoncurrentDays": 1, "NewerNoncurrentVersions": 1},
        ),
        rule("expire", prefix="exp/", Expiration={"Days": 1}),
    )
    wait_days(1)  # after every write above
    counts = counts_of(run_pass(server, bucket), bucket)
    assert counts["expire_noncurrent"] == 2 and counts["expire_current"] == 1
    left = versions_of(s3, bucket)
    hist = [(vid, marker) for key, vid, marker in left if key == "hist/k"]
    assert hist == [(made[3], False), (made[2], False)]  # the current one and the newest noncurrent one
    exp = [(vid, marker) for key, vid, marker in left if key == "exp/k"]
    assert len(exp) == 2 and exp[0][1] and exp[1] == (current, False)  # a marker over the old version
    assert "exp/k" not in keys_of(s3, bucket)
    events = expired(server, bucket)
    assert sorted((e["key"], e["version_id"]) for e in events if e["kind"] == "expire_noncurrent") == sorted(
        [("hist/k", made[0]), ("hist/k", made[1])]
    )
    (marker_event,) = [e for e in events if e["kind"] == "expire_current"]
    assert marker_event["delete_marker"] == exp[0][0] and marker_event["version_id"] == current
    usage_exact(server, bucket)


def test_expired_object_delete_markers_are_removed_once_alone(server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3, "eodm", versioned=True)
    s3.put_object(Bucket=bucket, Key="gone/a", Body=b"a")
    s3.delete_object(Bucket=bucket, Key="gone/a")  # a marker over one version, which goes first
    s3.put_object(Bucket=bucket, Key="keep/b", Body=b"b")
    s3.delete_object(Bucket=bucket, Key="keep/b")  # its version is not covered: the marker stays
    put_rules(
        s3,
        bucket,
        rule("nc", prefix="gone/", NoncurrentVersionExpiration={"NoncurrentDays": 1}),
        rule("markers", prefix="", Expiration={"ExpiredObjectDeleteMarker": True}),
    )
    wait_days(1)  # after every write above
    counts = counts_of(run_pass(server, bucket), bucket)
    assert counts["expire_noncurrent"] == 1 and counts["remove_delete_marker"] == 1
    left = versions_of(s3, bucket)
    assert [key for key, _, _ in left] == ["keep/b", "keep/b"]
    assert {e["kind"] for e in expired(server, bucket, key="gone/a")} == {
        "expire_noncurrent",
        "remove_delete_marker",
    }
    usage_exact(server, bucket)


def test_stale_multipart_uploads_are_aborted(server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3, "mpu")
    uploads = {}
    for key in ("up/a", "keep/b"):
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"p" * 1000)
        uploads[key] = upload_id
    put_rules(
        s3, bucket, rule("abort", prefix="up/", AbortIncompleteMultipartUpload={"DaysAfterInitiation": 1})
    )
    wait_days(1)  # after every write above
    assert counts_of(run_pass(server, bucket), bucket)["abort_upload"] == 1
    left = [(u["Key"], u["UploadId"]) for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    assert left == [("keep/b", uploads["keep/b"])]
    (event,) = expired(server, bucket)
    assert (event["key"], event["upload_id"], event["kind"]) == ("up/a", uploads["up/a"], "abort_upload")
    usage_exact(server, bucket)


def test_deletions_reach_the_organizations_audit_log_bucket(server: CofferServer) -> None:
    _, s3, org, bucket = logged_bucket(server, "lifecycle-audited", "lcaudit")
    s3.put_object(Bucket=bucket, Key="old/a", Body=b"x")
    s3.put_object(Bucket=bucket, Key="new/b", Body=b"x")
    put_rules(s3, bucket, rule("old", prefix="old/", Expiration={"Days": 1}))
    wait_days(1)  # after every write above
    run_pass(server, bucket)  # its node flushes the audit-log spool when it closes

    def lifecycle_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            r for r in records if r.get("operation") == "LifecycleExpiration" and r["bucketName"] == bucket
        ]

    records = lifecycle_records(wait_for_records(s3, org, DATA, lambda rs: bool(lifecycle_records(rs))))
    (record,) = records
    assert DATA_FIELDS <= set(record)
    assert (record["action"], record["aws:arn"], record["principal"], record["rule"]) == (
        "s3:DeleteObject",
        f"arn:aws:s3:::{bucket}/old/a",
        "lifecycle",
        "old",
    )


@pytest.fixture
def store_node(server: CofferServer) -> Iterator[Node]:
    """A node in the test process on the server's store (as `coffer lifecycle run` opens one)."""
    settings = Settings(
        data_dir=str(server.data_dir), database_url=server.database_url, lifecycle_day_seconds=DAY_SECONDS
    )
    node = Node.open(settings, migrate=False)
    try:
        yield node
    finally:
        node.close()


@pytest.mark.parametrize("change", ["overwrite", "retag", "new-version"])
def test_a_write_after_the_rule_matched_wins(
    server: CofferServer, s3: Any, store_node: Node, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step reads the page (the rule matches), then a client writes the key through the
    server, then the step deletes: the deletion, re-checked under the key's lock, is skipped."""
    bucket = new_bucket(s3, "race", versioned=change == "new-version")
    s3.put_object(Bucket=bucket, Key="k", Body=b"old", Tagging="t=x")
    put_rules(s3, bucket, rule("r", Filter={"Tag": {"Key": "t", "Value": "x"}}, Expiration={"Days": 1}))
    wait_days(1)  # after every write above
    objects = store_node.storage.objects
    scan = objects.scan_versions

    def scan_then_write(name: str, after: str, keys: int) -> list[VersionState]:
        page = scan(name, after, keys)
        assert [v.key for v in page] == ["k"]  # the rule is due for what was read
        if change == "retag":
            s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": [{"Key": "t", "Value": "kept"}]})
        else:  # a new body (with the tag: the new version is not due for another day)
            s3.put_object(Bucket=bucket, Key="k", Body=b"new", Tagging="t=x")
        return page

    monkeypatch.setattr(objects, "scan_versions", scan_then_write)
    task = LifecycleTask(store_node.storage, day_seconds=DAY_SECONDS, audit=store_node.audit)
    step = task.step(bucket, None, utcnow(), 100)
    assert step.cursor is None and step.counts.get("skipped") == 1 and "expire_current" not in step.counts
    body = s3.get_object(Bucket=bucket, Key="k")["Body"].read()
    assert body == (b"old" if change == "retag" else b"new")
    assert expired(server, bucket) == []
    usage_exact(server, bucket)


def test_the_servers_background_executor_applies_the_rules(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = executor_env(interval=0.3)
    with running_server(tmp_path_factory.mktemp(f"bg-{backend}"), backend, env=env) as node:
        s3 = s3_client(node)
        bucket = new_bucket(s3, "bg")
        for i in range(30):
            s3.put_object(Bucket=bucket, Key=f"old/{i:02d}", Body=b"x")
        s3.put_object(Bucket=bucket, Key="new/keep", Body=b"x")
        put_rules(s3, bucket, rule("old", prefix="old/", Expiration={"Days": 1}))
        assert wait_for(lambda: keys_of(s3, bucket) == {"new/keep"}, timeout=30, interval=0.2)
        assert sorted(e["key"] for e in expired(node, bucket)) == [f"old/{i:02d}" for i in range(30)]
        assert wait_for(lambda: "lifecycle pass on " + bucket in node.log(), timeout=10)
        metrics = httpx.get(node.api_url + "/metrics", timeout=10).text
        assert 'coffer_lifecycle_actions_total{action="expire_current",task="lifecycle"} 30.0' in metrics
        usage_exact(node, bucket)


def test_a_pass_by_hand_prints_a_table_and_names_a_bucket_that_exists(server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3, "table")
    s3.put_object(Bucket=bucket, Key="t/a", Body=b"x")
    put_rules(s3, bucket, rule("t", prefix="t/", Expiration={"Days": 1}))
    wait_days(1)  # after the write above
    env = {**os.environ, **executor_env()}
    result = run_coffer("lifecycle", "run", "--bucket", bucket, *server.store_args, env=env)
    assert result.returncode == 0, result.stderr
    (line,) = [ln for ln in result.stdout.splitlines() if "expire_current" in ln]
    assert [cell.strip() for cell in line.strip("│| ").split("│")] == [
        bucket,
        "lifecycle",
        "done",
        "expire_current",
        "1",
    ]
    missing = run_coffer("lifecycle", "run", "--bucket", "no-such-bucket-here", *server.store_args, env=env)
    assert missing.returncode == 1 and "bucket" in missing.stderr.lower()
