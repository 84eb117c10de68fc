"""Writers racing `If-None-Match: *` PUTs of one key, round after round: exactly one wins
each round, the other gets 412 PreconditionFailed (or 409 ConditionalRequestConflict), and
the key holds the winner's body. Two `coffer serve` processes on one PostgreSQL database and
one data directory (as tests/api/test_multinode.py starts them), and one server with two
worker processes on each store: the check and the commit are one transaction everywhere."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.harness import CofferServer, start_server, stop_server
from tests.support.s3 import client_error, new_bucket, s3_client

ROUNDS = 50
LOSERS = {(412, "PreconditionFailed"), (409, "ConditionalRequestConflict")}


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {"workers": 2}


@pytest.fixture(scope="module")
def pair(
    pg_reason: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[CofferServer, CofferServer]]:
    """Node A and node B: one PostgreSQL database, one data directory."""
    if pg_reason:
        pytest.skip(pg_reason)
    a = start_server(tmp_path_factory.mktemp("race"), "postgres")
    try:
        b = CofferServer(data_dir=a.data_dir, database_url=a.database_url).start()
        try:
            yield a, b
        finally:
            b.stop()
    finally:
        stop_server(a)


def race(clients: list[Any], bucket: str) -> None:
    body = b"x" * (256 * 1024)  # large enough that both writes are in flight together
    for round_ in range(ROUNDS):
        key = f"race-{round_}"
        results: dict[int, Any] = {}
        start = threading.Barrier(len(clients))

        def put(i: int, client: Any) -> None:
            start.wait()
            try:
                client.put_object(Bucket=bucket, Key=key, Body=body + str(i).encode(), IfNoneMatch="*")
                results[i] = "won"
            except ClientError as exc:
                results[i] = client_error(exc)

        threads = [threading.Thread(target=put, args=(i, c)) for i, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [i for i, r in results.items() if r == "won"]
        assert len(winners) == 1, (round_, results)
        assert all(r in LOSERS for r in results.values() if r != "won"), (round_, results)
        stored = clients[0].get_object(Bucket=bucket, Key=key)["Body"].read()
        assert stored == body + str(winners[0]).encode(), round_


def test_two_nodes_race_if_none_match(pair: tuple[CofferServer, CofferServer]) -> None:
    a, b = pair
    key = a.mint_key()
    clients = [s3_client(a, key), s3_client(b, key)]
    race(clients, new_bucket(clients[0], "race"))


def test_two_workers_race_if_none_match(server: CofferServer) -> None:
    key = server.mint_key()
    clients = [s3_client(server, key), s3_client(server, key)]
    race(clients, new_bucket(clients[0], "race"))
