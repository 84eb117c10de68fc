"""The database outage of test_db_outage.py through three nodes of two workers behind
nginx (tests/support/cluster.py), on a private PostgreSQL cluster: nginx passes the nodes'
503s through, and every node's pools reconnect."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cluster import Balancer, Cluster
from tests.support.harness import CofferServer
from tests.support.outage import run_outage
from tests.support.pgcluster import PrivatePostgres, private_postgres, private_postgres_unavailable

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        private_postgres_unavailable() is not None, reason=str(private_postgres_unavailable())
    ),
]


@pytest.fixture(scope="module")
def pg() -> Iterator[PrivatePostgres]:
    with private_postgres() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def cluster(pg: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("outage-cluster")
    url, data = pg.create_database(), tmp / "data"
    nodes = [
        CofferServer(data_dir=data, database_url=url, workers=2, log_path=tmp / f"node-{i}.log")
        for i in range(3)
    ]
    balancer = Balancer(tmp / "nginx")
    try:
        for node in nodes:  # the first migrates and bootstraps
            node.start()
        balancer.start(nodes)
        yield Cluster(nodes=nodes, balancer=balancer, database_url=url, data_dir=data)
    finally:
        balancer.stop()
        for node in nodes:
            node.stop()


def test_an_outage_through_the_load_balancer(cluster: Cluster, pg: PrivatePostgres) -> None:
    run_outage(cluster.front, pg)
    for node in cluster.nodes:  # each node serves again on its own
        assert "Traceback" not in node.log()
