"""Server fixtures (a pytest plugin, loaded by tests/conftest.py): every end-to-end module
gets one real server per backend; a module's tests share it.

A module that needs its own kind of server overrides `server_options` (start_server()'s
keyword arguments: workers, extra_args, env, ca_file), and `backend` too when it runs on one
store only; it keeps its own `server` fixture only for set-up the options cannot express.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.cluster import Cluster, running_cluster
from tests.support.harness import (
    CofferServer,
    create_pg_database,
    drop_pg_database,
    postgres_available,
    running_server,
    three_nodes,
)

if TYPE_CHECKING:
    from coffer.node import Node

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def pg_reason() -> str | None:
    return postgres_available()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest, pg_reason: str | None) -> str:
    if request.param == "postgres" and pg_reason:
        pytest.skip(pg_reason)
    return str(request.param)


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    """start_server()'s keyword arguments for the module's `server` (none: the defaults)."""
    return {}


@pytest.fixture(scope="module")
def server(
    server_options: dict[str, Any], backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CofferServer]:
    """One Coffer per test module and backend; tests inside a module share it."""
    with running_server(tmp_path_factory.mktemp(f"coffer-{backend}"), backend, **server_options) as srv:
        yield srv


@pytest.fixture(scope="module")
def nodes_options() -> dict[str, Any]:
    """CofferServer's keyword arguments (env, extra_args) for every node of `nodes`."""
    return {}


@pytest.fixture(scope="module")
def nodes(
    nodes_options: dict[str, Any], pg_reason: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, CofferServer]]:
    """Three nodes on one PostgreSQL database (tests.support.harness.three_nodes)."""
    if pg_reason:
        pytest.skip(pg_reason)
    with three_nodes(tmp_path_factory.mktemp("coffer-nodes"), **nodes_options) as started:
        yield started


@pytest.fixture(scope="module")
def cluster_options() -> dict[str, Any]:
    """running_cluster()'s keyword arguments (size, workers, env, extra_args) for `cluster`."""
    return {}


@pytest.fixture(scope="module")
def cluster(
    cluster_options: dict[str, Any], backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Three nodes behind nginx on one PostgreSQL database (tests.support.cluster); its SQLite
    half is skipped, so the skip and its reason show in every run."""
    if backend != "postgres":
        pytest.skip("a cluster shares one PostgreSQL database; SQLite is one machine's store")
    with running_cluster(tmp_path_factory.mktemp("cluster"), **cluster_options) as started:
        yield started


@pytest.fixture(scope="module")
def node(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """A bootstrapped node in-process (no HTTP) on a fresh store of `backend`."""
    from coffer.config import Settings  # imported here: the unit tests load this plugin too
    from coffer.identity.bootstrap import bootstrap
    from coffer.node import Node

    root: Path = tmp_path_factory.mktemp(f"node-{backend}")
    url = create_pg_database() if backend == "postgres" else ""
    n = Node.open(Settings(data_dir=str(root / "data"), database_url=url))
    try:
        bootstrap(n.directory, n.data_path, n.policies)
        yield n
    finally:
        n.close()
        if url:
            drop_pg_database(url)
