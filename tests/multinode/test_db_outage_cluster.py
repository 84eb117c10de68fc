"""The database outage of test_db_outage.py through three nodes of two workers behind
nginx (tests/support/cluster.py), on a private PostgreSQL cluster: nginx passes the nodes'
503s through, and every node's pools reconnect."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cluster import Balancer, Cluster
from tests.support.harness import CofferServer
from tests.support.outage import run_outage
from tests.support.pgcluster import PRIVATE_POSTGRES, PrivatePostgres

pytestmark = PRIVATE_POSTGRES


@pytest.fixture(scope="module")
def cluster(private_pg: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("outage-cluster")
    url, data = private_pg.create_database(), tmp / "data"
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


def test_an_outage_through_the_load_balancer(cluster: Cluster, private_pg: PrivatePostgres) -> None:
    run_outage(cluster.front, private_pg)
    for node in cluster.nodes:  # each node serves again on its own
        assert "Traceback" not in node.log()
