"""Crash safety: SIGKILL a writer at random moments; every object stays whole, old or new.

Bodies become durable blobs before metadata commits, and metadata commits in one
transaction, so after any kill: every object row's blobs exist and hash to the row's
ETag and size; every part row's blob exists; and the collector removes what the
killed writer left behind (temp files, blobs never committed) without touching
anything referenced.
"""

from __future__ import annotations

import hashlib
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from coffer.storage.models import PartRef
from coffer.store.schema import multipart_parts, objects
from tests.support.storage import Env

KILLS = 5


def _verify(env: Env) -> tuple[int, set[str]]:
    """Check every committed object and part; return (objects checked, referenced blobs)."""
    referenced: set[str] = set()
    with env.db.read() as conn:
        rows = conn.execute(
            sa.select(objects.c.key, objects.c.size, objects.c.etag, objects.c.parts).where(
                objects.c.is_delete_marker == sa.false()
            )
        ).all()
        parts = conn.execute(
            sa.select(multipart_parts.c.blob, multipart_parts.c.size, multipart_parts.c.etag)
        ).all()
    for key, size, etag, parts_json in rows:
        refs = [PartRef(p["blob"], p["size"], p.get("etag", "")) for p in parts_json]
        referenced |= {r.blob for r in refs}
        for r in refs:
            assert env.blobs.exists(r.blob), f"{key}: dangling blob {r.blob}"
        assert sum(r.size for r in refs) == size, key
        if "-" in etag:  # multipart: each part whole, and the ETag derived from them
            md5s = b""
            for r in refs:
                data = env.blobs.path(r.blob).read_bytes()
                assert len(data) == r.size and hashlib.md5(data).hexdigest() == r.etag.strip('"'), key
                md5s += hashlib.md5(data).digest()
            assert etag == f'"{hashlib.md5(md5s).hexdigest()}-{len(refs)}"', key
        else:
            data = b"".join(env.blobs.path(r.blob).read_bytes() for r in refs)
            assert len(data) == size and f'"{hashlib.md5(data).hexdigest()}"' == etag, key
    for blob, size, etag in parts:
        referenced.add(blob)
        data = env.blobs.path(blob).read_bytes()
        assert len(data) == size and f'"{hashlib.md5(data).hexdigest()}"' == etag
    return len(rows), referenced


def _run_and_kill(env: Env, buckets: list[str], rng: random.Random) -> None:
    url = env.db.engine.url.render_as_string(hide_password=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.storage.crash_worker", url, str(env.blobs.root), *buckets],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == b"ready", f"worker did not start (exit {proc.poll()})"
        time.sleep(rng.uniform(0.05, 0.5))  # kill somewhere in the middle of the work
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_sigkill_never_leaves_a_torn_object(env: Env) -> None:
    plain = "crash-" + env.backend[:2] + "-plain"
    versioned = "crash-" + env.backend[:2] + "-versioned"
    for name in (plain, versioned):
        env.storage.buckets.create(org_id=env.org, owner="p", name=name, zone=None)
    env.storage.buckets.update(versioned, versioning="Enabled")
    rng = random.Random()
    for _ in range(KILLS):
        _run_and_kill(env, [plain, versioned], rng)
        _verify(env)  # reopened state is consistent after every crash

    count, referenced = _verify(env)
    assert count > 0
    # Collect with every cut-off in the future: retired blobs, temp files and orphans all go.
    env.storage.collector.collect(older_than=datetime.now(UTC) + timedelta(seconds=1), orphans=True)
    on_disk = {blob for blob, _ in env.blobs.iter_blobs()}
    assert on_disk == referenced
    assert list(env.blobs.tmp_path.iterdir()) == []
    assert env.dead() == set()
    assert _verify(env)[0] == count
