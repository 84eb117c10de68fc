"""PostgreSQL restarted and stopped under load, one node of two workers: every request gets
an answer within a bound, 200 or 503 (S3 ServiceUnavailable / control-plane UNAVAILABLE,
with Retry-After), never a 500 or a hang; service resumes by itself once the database is
back; every write acknowledged before, during or after is readable; the pools reconnect
(tests/support/outage.py). The same through three nodes behind nginx is
test_db_outage_cluster.py.

The database is a private cluster (tests/support/pgcluster.py): the shared one on :5432
is never restarted. Serialization failures and deadlocks retried inside Coffer are shown
in test_db_retries.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness import CofferServer
from tests.support.outage import run_outage
from tests.support.pgcluster import PRIVATE_POSTGRES, PrivatePostgres

pytestmark = PRIVATE_POSTGRES


@pytest.fixture(scope="module")
def node(private_pg: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CofferServer]:
    tmp: Path = tmp_path_factory.mktemp("outage")
    server = CofferServer(data_dir=tmp / "data", database_url=private_pg.create_database(), workers=2)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_requests_during_an_outage_get_503_and_service_resumes(
    node: CofferServer, private_pg: PrivatePostgres
) -> None:
    run_outage(node, private_pg)


def test_background_threads_log_an_outage_once_and_resume(node: CofferServer) -> None:
    """The previous test's outages (a restart and a stop) left at most one warning per
    worker and outage from the change listener, a line saying the store was back, and no
    traceback or error line."""
    log = node.log()
    down = log.count("the change listener: the metadata store is unavailable")
    assert 1 <= down <= 2 * node.workers, down
    assert log.count("the change listener: the metadata store is back") >= 1
    assert "Traceback" not in log
    errors = [line for line in log.splitlines() if '"level":"error"' in line or '"level":"critical"' in line]
    assert not errors, errors
