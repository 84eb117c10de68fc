"""A private PostgreSQL cluster for the tests that stop, restart or break the database.

The shared server on 127.0.0.1:5432 serves every other test (and other test runs): it
must never be restarted. `private_postgres()` creates a cluster of its own with Debian's
`pg_createcluster` on a free port (trust auth, listening on localhost), and drops it afterwards.

Also a pytest plugin (loaded by tests/conftest.py): a module that breaks the database takes
`pytestmark = PRIVATE_POSTGRES` and the module-scoped `private_pg` fixture.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.harness import free_port


def _version() -> str | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parts[-3] if versions else None


def private_postgres_unavailable() -> str | None:
    """None when this machine can make a private cluster, else why not."""
    if shutil.which("pg_createcluster") is None or _version() is None:
        return "Debian's postgresql-common (pg_createcluster) is not installed"
    if os.geteuid() != 0:
        return "pg_createcluster needs root (it creates the cluster as the postgres user)"
    return None


PRIVATE_POSTGRES = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        private_postgres_unavailable() is not None, reason=str(private_postgres_unavailable())
    ),
]


@dataclass
class PrivatePostgres:
    version: str
    name: str
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, action: str) -> None:
        subprocess.run(
            ["pg_ctlcluster", self.version, self.name, action, "--", "-m", "fast"]
            if action in ("stop", "restart")
            else ["pg_ctlcluster", self.version, self.name, action],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        self._ctl("start")
        self.wait_ready()

    def stop(self) -> None:
        self._ctl("stop")

    def restart(self) -> None:
        """`pg_ctlcluster ... restart`, fast mode: every session is cut, as in a failover."""
        self._ctl("restart")
        self.wait_ready()

    def wait_ready(self, timeout: float = 30) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.Error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def create_database(self) -> str:
        import psycopg

        name = "coffer_p_" + secrets.token_hex(4)
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@contextlib.contextmanager
def private_postgres(max_connections: int = 300) -> Iterator[PrivatePostgres]:
    """A running cluster of its own for the block; stopped and dropped afterwards."""
    version = _version()
    assert version is not None, private_postgres_unavailable()
    cluster = PrivatePostgres(version, "coffer_" + secrets.token_hex(4), free_port())
    subprocess.run(
        [
            "pg_createcluster",
            version,
            cluster.name,
            "-p",
            str(cluster.port),
            "--start-conf",
            "manual",
            "-o",
            f"max_connections={max_connections}",
            "--",
            "--auth=trust",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        cluster.start()
        yield cluster
    finally:
        subprocess.run(
            ["pg_dropcluster", "--stop", version, cluster.name], check=False, capture_output=True, timeout=60
        )


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    """A private cluster for the module's tests (they may stop and restart it)."""
    with private_postgres() as cluster:
        yield cluster
