"""A SAML assertion buys one key, however many processes and nodes it is presented to.

The replay cache is a table in the metadata store (coffer/identity/replay.py), so the
one-time rule must hold across uvicorn's worker processes (SQLite and PostgreSQL) and
across nodes sharing one PostgreSQL database. The same signed assertion is fired
concurrently over connections held open on known workers (the kernel says which process
owns each) or at different nodes: exactly one presentation may win.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.support.api import assert_status
from tests.support.harness import CofferServer, connection_owner, worker_processes
from tests.support.idp import AssertionSpec, Key, rsa_key, signed_response, to_b64

SAML_PATH = "/v1/cwobject/temporary-credentials/saml"
IDP_KEY = rsa_key("replay-idp")
PUBLIC_URL = "https://coffer-lb.example.test"  # what a load balancer in front of the nodes serves
PER_WORKER = 10
ROUNDS = 3


@dataclass(frozen=True)
class Saml:
    org_id: str
    config_id: str
    sp_audience: str
    recipient: str
    idp_entity_id: str

    def assertion(self, name: str = "alice", key: Key = IDP_KEY) -> str:
        spec = AssertionSpec(
            now=datetime.now(UTC),
            issuer=self.idp_entity_id,
            response_issuer=self.idp_entity_id,
            audiences=(self.sp_audience,),
            recipient=self.recipient,
            destination=self.recipient,
            principal=(name,),
        )
        return to_b64(signed_response(spec, key))

    def body(self, saml_response: str) -> dict[str, Any]:
        return {
            "durationSeconds": 300,
            "orgId": self.org_id,
            "configId": self.config_id,
            "samlResponse": saml_response,
        }


def create_saml_config(server: CofferServer) -> Saml:
    entity = f"https://idp-{secrets.token_hex(4)}.example.test/saml/metadata"
    with server.api() as api:
        r = api.post(
            "/v1beta1/workload-federation/saml-configs",
            json={
                "name": f"replay-{secrets.token_hex(3)}",
                "idpEntityId": entity,
                "certificates": [IDP_KEY.cert_pem],
            },
        )
        assert r.status_code == 200, r.text
        cfg = r.json()["config"]
    assert cfg["spAudience"].startswith(PUBLIC_URL) and cfg["recipient"].startswith(PUBLIC_URL), cfg
    return Saml(cfg["orgUid"], cfg["uid"], cfg["spAudience"], cfg["recipient"], entity)


def redeem(node: CofferServer, saml: Saml, saml_response: str) -> httpx.Response:
    return httpx.post(node.api_url + SAML_PATH, json=saml.body(saml_response), timeout=60)


def assert_replay(r: httpx.Response) -> None:
    body = assert_status(r, 401, 16)
    assert body["message"].startswith("replay:"), body


def assert_minted(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    assert data["accessKeyId"] and data["secretKey"]
    assert data["principalName"] == "saml/alice"
    return data


def fire_together(senders: list[Any]) -> list[httpx.Response]:
    """Run every sender at the same instant (a barrier), each in its own thread."""
    barrier = threading.Barrier(len(senders))

    def go(send: Any) -> httpx.Response:
        barrier.wait(timeout=60)
        response: httpx.Response = send()
        return response

    with ThreadPoolExecutor(len(senders)) as pool:
        return list(pool.map(go, senders))


def tally(responses: list[httpx.Response]) -> dict[str, Any]:
    """One winner, every other presentation refused as a replay."""
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1, [(r.status_code, r.text[:200]) for r in responses]
    for r in responses:
        if r is not winners[0]:
            assert_replay(r)
    return assert_minted(winners[0])


# --- several workers, one database ------------------------------------------------------------


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {"workers": 2, "extra_args": ["--public-url", PUBLIC_URL]}


@pytest.fixture(scope="module")
def held(server: CofferServer) -> Iterator[dict[int, list[httpx.Client]]]:
    """PER_WORKER open connections on each worker process, keyed by the worker's pid."""
    procs = worker_processes(server, server.api_port)
    assert len(procs) == 2, procs
    by_pid: dict[int, list[httpx.Client]] = {p.pid: [] for p in procs}
    clients: list[httpx.Client] = []
    try:
        for _ in range(400):  # bounded: the kernel spreads new connections over the workers
            client = httpx.Client(base_url=server.api_url, timeout=60)
            clients.append(client)
            r = client.get("/healthz")
            assert r.status_code == 200, r.text
            client_port = r.extensions["network_stream"].get_extra_info("client_addr")[1]
            pid = connection_owner(procs, server.api_port, client_port)
            assert pid is not None, "no worker owns the connection"
            if len(by_pid[pid]) < PER_WORKER:
                by_pid[pid].append(client)
            if all(len(v) >= PER_WORKER for v in by_pid.values()):
                break
        assert all(len(v) >= PER_WORKER for v in by_pid.values()), {k: len(v) for k, v in by_pid.items()}
        yield by_pid
    finally:
        for client in clients:
            client.close()


def test_one_assertion_fired_at_both_workers_at_once_buys_one_key(
    server: CofferServer, held: dict[int, list[httpx.Client]]
) -> None:
    saml = create_saml_config(server)
    winners_by_pid: dict[int, int] = dict.fromkeys(held, 0)
    for _ in range(ROUNDS):
        assertion = saml.assertion()
        senders = []
        owners = []
        for pid, clients in held.items():
            for client in clients:
                senders.append(lambda client=client: client.post(SAML_PATH, json=saml.body(assertion)))
                owners.append(pid)
        responses = fire_together(senders)
        minted = tally(responses)
        winner_pid = owners[[r.status_code for r in responses].index(200)]
        winners_by_pid[winner_pid] += 1
        # Both workers refused the assertion at least once in this round (each got PER_WORKER).
        for pid in held:
            refused = [
                r for r, owner in zip(responses, owners, strict=True) if owner == pid and r.status_code == 401
            ]
            assert len(refused) >= PER_WORKER - 1, pid
        # The key it bought works and is the only one for this assertion, on every worker.
        for clients in held.values():
            r = clients[0].get(
                f"/v1/cwobject/access-key/{minted['accessKeyId']}",
                headers={"Authorization": f"Bearer {server.admin_token}"},
            )
            assert r.status_code == 200 and r.json()["info"]["status"] == "ACTIVE", r.text
        # And later, on a fresh connection to whichever worker: still refused.
        assert_replay(redeem(server, saml, assertion))


def test_a_fresh_assertion_still_redeems_after_the_races(server: CofferServer) -> None:
    saml = create_saml_config(server)
    assertion = saml.assertion()
    assert_minted(redeem(server, saml, assertion))
    for _ in range(10):  # fresh connections: the kernel spreads them over both workers
        assert_replay(redeem(server, saml, assertion))


# --- several nodes, one PostgreSQL database ----------------------------------------------------


@pytest.fixture(scope="module")
def nodes_options() -> dict[str, Any]:
    return {"extra_args": ["--public-url", PUBLIC_URL]}


@pytest.mark.parametrize(("first", "second"), [("a", "b"), ("a", "c"), ("c", "a")])
def test_assertion_redeemed_on_one_node_is_refused_by_another(
    nodes: dict[str, CofferServer], first: str, second: str
) -> None:
    saml = create_saml_config(nodes["a"])
    assertion = saml.assertion()
    minted = assert_minted(redeem(nodes[first], saml, assertion))
    assert_replay(redeem(nodes[second], saml, assertion))
    assert_replay(redeem(nodes[first], saml, assertion))
    # The refusal did not touch the key the first redemption bought.
    with nodes[second].api(nodes["a"].admin_token) as api:
        r = api.get(f"/v1/cwobject/access-key/{minted['accessKeyId']}")
        assert r.status_code == 200 and r.json()["info"]["status"] == "ACTIVE", r.text


def test_one_assertion_fired_at_every_node_at_once_buys_one_key(nodes: dict[str, CofferServer]) -> None:
    saml = create_saml_config(nodes["a"])
    for _ in range(ROUNDS):
        assertion = saml.assertion()
        senders = [
            (lambda node=node: redeem(node, saml, assertion)) for node in nodes.values() for _ in range(7)
        ]
        tally(fire_together(senders))


def test_a_certificate_rotated_on_one_node_is_obeyed_by_the_others(nodes: dict[str, CofferServer]) -> None:
    """Every node caches parsed configs; a change made through node A reaches B (same host)
    and C (only the database in common) within the change notification's delay."""
    saml = create_saml_config(nodes["a"])
    for node in nodes.values():  # each node now holds the config in its cache
        assert_minted(redeem(node, saml, saml.assertion()))
    successor = rsa_key("replay-idp-next")
    with nodes["a"].api() as api:
        r = api.patch(
            f"/v1beta1/workload-federation/saml-configs/{saml.config_id}",
            json={"certificates": [successor.cert_pem]},
        )
        assert r.status_code == 200, r.text
    for name in ("b", "c"):
        deadline = time.monotonic() + 10  # NOTIFY takes milliseconds; the poll bounds it at 1 s
        while True:
            r = redeem(nodes[name], saml, saml.assertion())
            if r.status_code == 401:
                assert r.json()["message"].startswith("signature:"), r.text
                break
            assert_minted(r)
            assert time.monotonic() < deadline, f"node {name} still trusts the removed certificate"
            time.sleep(0.05)
        assert_minted(redeem(nodes[name], saml, saml.assertion(key=successor)))
