"""The inventory task's steps on the storage core (both backends, no HTTP): a step killed
after its rows reached the spool but before its cursor was saved resumes without
duplicates, a report taken over by a node without the spool restarts cleanly, nothing is
published before the walk is complete, and the schedule follows the rule-day."""

from __future__ import annotations

import csv
import gzip
import io
import json
import secrets
from datetime import timedelta
from typing import Any

import pytest

from coffer.lifecycle.inventory import InventoryConfig
from coffer.lifecycle.inventory_report import InventoryTask
from coffer.storage.rules import utcnow
from tests.support.storage import Env

KEYS = 600
BUDGET = 250  # keys a step: 600 keys take three steps


@pytest.fixture(scope="module")
def source(env: Env) -> str:
    """A bucket of KEYS objects the module's tests report on, one configuration at a time."""
    name = "s-" + secrets.token_hex(6)
    env.storage.buckets.create(org_id=env.org, owner="coreweave/alice", name=name, zone=None)
    for i in range(KEYS):
        env.put(name, f"k{i:05d}", b"x")
    return name


def configured(env: Env, bucket: str, config_id: str) -> str:
    """A new destination bucket, and a Daily CSV configuration `config_id` on `bucket` for it."""
    dest = "d-" + secrets.token_hex(6)
    env.storage.buckets.create(org_id=env.org, owner="coreweave/alice", name=dest, zone=None)
    config = InventoryConfig(
        id=config_id,
        enabled=True,
        destination_bucket=dest,
        format="CSV",
        frequency="Daily",
        included_versions="Current",
        optional_fields=("Size",),
    )
    env.storage.inventory.put(bucket, config)
    return dest


def published(env: Env, dest: str) -> list[str]:
    return [o.key for o in env.storage.objects.list(dest).contents]


def report_rows(env: Env, dest: str) -> list[list[str]]:
    manifest_key = next(k for k in published(env, dest) if k.endswith("manifest.json"))
    manifest: dict[str, Any] = json.loads(
        env.storage.objects.read_bytes(env.storage.objects.get(dest, manifest_key))
    )
    rows: list[list[str]] = []
    for entry in manifest["files"]:
        data = env.storage.objects.read_bytes(env.storage.objects.get(dest, entry["key"]))
        rows += list(csv.reader(io.StringIO(gzip.decompress(data).decode())))
    return rows


def finish(task: InventoryTask, bucket: str, cursor: str | None, budget: int = BUDGET) -> int:
    """Steps until the pass is done; how many it took."""
    steps = 0
    now = utcnow()
    while True:
        steps += 1
        cursor = task.step(bucket, cursor, now, budget).cursor
        if cursor is None:
            return steps


def test_a_killed_step_resumes_without_duplicates(env: Env, source: str) -> None:
    dest = configured(env, source, "killed")
    spool = env.root / "spool-killed"
    task = InventoryTask(env.storage, spool, day_seconds=86400)
    now = utcnow()
    first = task.step(source, None, now, BUDGET)
    assert first.cursor is not None and first.counts == {"examined": BUDGET}
    second = task.step(source, first.cursor, now, BUDGET)
    assert second.cursor is not None
    assert published(env, dest) == []  # nothing before the walk is complete
    # the second step's cursor is lost (killed before the executor saved it), and the rows it
    # wrote are in the spool, a torn one too
    (path,) = spool.iterdir()
    with open(path, "ab") as f:
        f.write(b'"torn row')
    assert finish(task, source, first.cursor) == 2
    rows = report_rows(env, dest)
    assert [r[1] for r in rows] == [f"k{i:05d}" for i in range(KEYS)]
    assert {r[2] for r in rows} == {"1"}
    assert list(spool.iterdir()) == []  # the spool goes once the report is published
    env.storage.inventory.delete(source, "killed")


def test_a_report_restarts_where_the_spool_is_missing(env: Env, source: str) -> None:
    dest = configured(env, source, "moved")
    node_a = InventoryTask(env.storage, env.root / "spool-a", day_seconds=86400)
    node_b = InventoryTask(env.storage, env.root / "spool-b", day_seconds=86400)
    cursor = node_a.step(source, None, utcnow(), BUDGET).cursor
    cursor = node_a.step(source, cursor, utcnow(), BUDGET).cursor
    assert cursor is not None
    name = json.loads(cursor)["name"]
    assert finish(node_b, source, cursor) == 3  # from the first key again
    assert [r[1] for r in report_rows(env, dest)] == [f"k{i:05d}" for i in range(KEYS)]
    data = [k for k in published(env, dest) if "/data/" in k]
    assert data == [f"{source}/moved/data/{name}.csv.gz"]  # the report's own name, kept
    env.storage.inventory.delete(source, "moved")


def test_schedule_and_deletion(env: Env, source: str) -> None:
    dest = configured(env, source, "sched")
    spool = env.root / "spool-sched"
    task = InventoryTask(env.storage, spool, day_seconds=10)
    assert finish(task, source, None, budget=5000) == 1
    later = utcnow() + timedelta(seconds=5)
    assert task.step(source, None, later, 5000).cursor is None  # not due: a rule-day is 10 s
    assert len([k for k in published(env, dest) if "/data/" in k]) == 1
    # a rule-day later it is due; deleting the configuration mid-report drops the report
    cursor = task.step(source, None, utcnow() + timedelta(seconds=11), BUDGET).cursor
    assert cursor is not None
    env.storage.inventory.delete(source, "sched")
    assert task.step(source, cursor, utcnow(), BUDGET).cursor is None
    assert len([k for k in published(env, dest) if "/data/" in k]) == 1
    assert list(spool.iterdir()) == []
