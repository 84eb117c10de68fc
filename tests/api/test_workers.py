"""Several worker processes: a revoked token is refused by every one of them, next request.

Each worker keeps its own in-memory token cache. The test holds open connections until
it has some on each worker (it asks the kernel which process owns each connection), warms
every cache, revokes the token with `coffer admin`, and then sends one more request on
every connection.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.api import assert_status, token_id_of, user_token
from tests.support.harness import CofferServer, connection_owner, worker_processes

LIST = "/v1/cwobject/access-key"


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {"workers": 2}


def test_two_workers_serve(server: CofferServer) -> None:
    assert len(worker_processes(server, server.api_port)) == 2


def test_revoked_token_is_refused_by_every_worker(server: CofferServer) -> None:
    _, token = user_token(server, "multi-worker", admin=True)
    procs = worker_processes(server, server.api_port)
    held: dict[int, list[httpx.Client]] = {p.pid: [] for p in procs}
    clients: list[httpx.Client] = []
    try:
        # Open connections until each worker holds at least three (bounded: 300 tries).
        for _ in range(300):
            client = httpx.Client(
                base_url=server.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            )
            clients.append(client)
            r = client.get(LIST)
            assert r.status_code == 200, r.text
            client_port = r.extensions["network_stream"].get_extra_info("client_addr")[1]
            pid = connection_owner(procs, server.api_port, client_port)
            assert pid is not None, "no worker owns the connection"
            held[pid].append(client)
            if all(len(v) >= 3 for v in held.values()):
                break
        assert all(len(v) >= 3 for v in held.values()), {k: len(v) for k, v in held.items()}

        # Every worker has the token cached as valid; revoke it out of band.
        server.cli("admin", "token", "revoke", token_id_of(server, "multi-worker"))

        for pid, conns in held.items():
            for client in conns:
                err = assert_status(client.get(LIST), 401, 16)
                assert "revoked" in err["message"], (pid, err)
        for _ in range(20):  # and on fresh connections, wherever they land
            fresh = httpx.get(server.api_url + LIST, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            assert_status(fresh, 401, 16)
    finally:
        for client in clients:
            client.close()


def test_keys_minted_on_one_worker_are_seen_by_all(server: CofferServer) -> None:
    with server.api() as c:
        key = c.post(LIST, json={"durationSeconds": 0}).json()["accessKeyId"]
    for _ in range(20):  # fresh connections, spread over the workers
        r = httpx.get(
            f"{server.api_url}{LIST}/{key}",
            headers={"Authorization": f"Bearer {server.admin_token}"},
            timeout=30,
        )
        assert r.json()["info"]["status"] == "ACTIVE"
