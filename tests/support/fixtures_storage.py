"""Storage-core fixtures (a pytest plugin, loaded by tests/conftest.py): a migrated metadata
store per module and backend, no HTTP.

Each test module gets its own SQLite file or PostgreSQL database (so parallel workers
never share state) and each test its own bucket.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from coffer.config import normalize_database_url
from coffer.storage.blobs import BlobStore
from coffer.storage.service import Storage, parse_zones
from coffer.store.changes import ChangeWatcher
from coffer.store.db import Database
from tests.support.harness import create_pg_database, drop_pg_database
from tests.support.storage import Env


@pytest.fixture(scope="module")
def env(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp(f"storage-{backend}")
    url = create_pg_database() if backend == "postgres" else f"sqlite:///{root / 'coffer.db'}"
    db = Database(normalize_database_url(url))
    try:
        db.migrate()
        changes = ChangeWatcher(db, root / "run")
        blobs = BlobStore(root / "blobs")
        storage = Storage(db, blobs, zones=parse_zones(""), default_zone="US-EAST-04A", changes=changes)
        e = Env(backend, url, db, changes, blobs, storage, root, "")
        e.org = e.new_org()
        yield e
        storage.collector.stop()
        blobs.close()
    finally:
        db.dispose()
        if backend == "postgres":
            drop_pg_database(url)


@pytest.fixture
def bucket(env: Env) -> str:
    name = "b-" + secrets.token_hex(6)
    env.storage.buckets.create(org_id=env.org, owner="coreweave/alice", name=name, zone=None)
    return name
