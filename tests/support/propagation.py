"""How fast a control-plane change made through one node is honoured by the others: the
measurement tests/multinode/test_propagation.py asserts on and bench/cluster_bench.py reports.

A key minted, a principal suspended and reactivated, a key revoked, an organization policy
turned to Deny and back: each made through a random node of the cluster, then watched on the
cluster's other nodes (they share the data directory, so the host's memory-mapped change
counter tells them: `same-host`) and on a node that shares only the database and the master
key (only PostgreSQL's NOTIFY, or the poll of the stored counter, can tell it: `db-only`, the
path of a node on another host). Every probe is a signed S3 request on a new connection, so it
lands on either worker of its node; a node has honoured the change when a probe sees it and
the next STREAK probes do too. `seconds` runs from the change's response to the end of that
first probe (an upper bound); `probe_seconds` is that probe's own duration, so
`seconds - probe_seconds` is a lower bound.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.common import percentile
from tests.support.cluster import Cluster
from tests.support.harness import CofferServer
from tests.support.policies import create_user, ensure_ok, policy, statement
from tests.support.s3 import signed

STREAK = 3

Probe = Callable[[CofferServer, httpx.Client], bool]
# (kind, before, change through a node, after): `after` is built once the change is made
Step = tuple[str, Probe, Callable[[CofferServer], None], Callable[[], Probe]]


@contextmanager
def remote_node(cluster: Cluster, tmp: Path, workers: int = 2) -> Iterator[CofferServer]:
    """A node on the cluster's database with a data directory of its own (and the master key)."""
    master_key = (cluster.data_dir / "master.key").read_text().strip()
    node = CofferServer(
        data_dir=tmp / "data",
        database_url=cluster.database_url,
        workers=workers,
        env={"COFFER_MASTER_KEY": master_key},
    ).start()
    try:
        yield node
    finally:
        node.stop()


def _list_buckets(node: CofferServer, key: dict[str, Any], client: httpx.Client) -> httpx.Response:
    return signed(node, key, "GET", "/", client=client)


def _accepted(key: dict[str, Any]) -> Probe:
    return lambda node, client: _list_buckets(node, key, client).status_code == 200


def _refused(key: dict[str, Any], code: str, words: str = "") -> Probe:
    def probe(node: CofferServer, client: httpx.Client) -> bool:
        r = _list_buckets(node, key, client)
        return r.status_code == 403 and f"<Code>{code}</Code>" in r.text and words in r.text

    return probe


def _settled(
    node: CofferServer, probe: Probe, client: httpx.Client, start: float, give_up: float
) -> tuple[float, float] | None:
    """(seconds from `start` until `probe` holds on `node` and keeps holding STREAK more
    times, measured to the end of the first of them; that probe's duration), or None after
    `give_up`."""
    first: tuple[float, float] | None = None
    streak = 0
    while time.monotonic() - start < give_up:
        sent = time.monotonic()
        ok = probe(node, client)
        now = time.monotonic()
        if not ok:
            first, streak = None, 0
            continue
        first = first or (now - start, now - sent)
        streak += 1
        if streak > STREAK:
            return first
    return None


def _watch(
    targets: dict[str, tuple[CofferServer, httpx.Client]], probe: Probe, give_up: float
) -> dict[str, tuple[float, float] | None]:
    """_settled() on every target at once, from now."""
    found: dict[str, tuple[float, float] | None] = {}
    start = time.monotonic()

    def run(name: str, node: CofferServer, client: httpx.Client) -> None:
        found[name] = _settled(node, probe, client, start, give_up)

    threads = [threading.Thread(target=run, args=(name, *pair)) for name, pair in targets.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return found


class Changes:
    """The changes measured, made through any node as the bootstrap admin."""

    def __init__(self, cluster: Cluster) -> None:
        self.admin = cluster.front.admin_token
        self.name = f"probe-{random.getrandbits(32):08x}"
        self.principal, token = create_user(cluster.front, self.name, admin=True)
        self._set_policy(cluster.front, "Allow")
        self.key = cluster.front.mint_key(token)
        self.minted: dict[str, Any] = {}
        self.revocable: dict[str, Any] = {}

    def _set_policy(self, source: CofferServer, effect: str) -> None:
        statements = statement("list", ["s3:ListAllMyBuckets"], ["*"], [self.principal], effect=effect)
        ensure_ok(source, policy(self.name, statements), self.admin)

    def _status(self, source: CofferServer, value: str) -> None:
        with source.api(self.admin) as c:
            body = {"principalName": self.principal, "status": value}
            c.put("/v1/cwobject/access-key-status", json=body).raise_for_status()

    def _revoke(self, source: CofferServer) -> None:
        with source.api(self.admin) as c:
            body = {"accessKey": self.revocable["accessKeyId"]}
            c.post("/v1/cwobject/revoke-access-key/access-key", json=body).raise_for_status()

    def _mint(self, source: CofferServer) -> None:
        self.minted.update(source.mint_key(self.admin))

    def cycle(self, front: CofferServer) -> list[Step]:
        """(kind, what holds before, the change through a node, what must hold after) for one
        round, each leaving the state the next one starts from."""
        self.revocable = front.mint_key(self.admin)
        self.minted = {}
        key = self.key
        active, suspended = _accepted(key), _refused(key, "AccessDenied", "suspended")
        denied = _refused(key, "AccessDenied")
        gone = _refused(self.revocable, "InvalidAccessKeyId")
        return [
            ("suspend", active, lambda s: self._status(s, "SUSPENDED"), lambda: suspended),
            ("reactivate", suspended, lambda s: self._status(s, "ACTIVE"), lambda: active),
            ("policy-deny", active, lambda s: self._set_policy(s, "Deny"), lambda: denied),
            ("policy-allow", denied, lambda s: self._set_policy(s, "Allow"), lambda: active),
            ("revoke", _accepted(self.revocable), self._revoke, lambda: gone),
            ("mint", lambda _node, _client: True, self._mint, lambda: _accepted(self.minted)),
        ]


def measure(cluster: Cluster, remote: CofferServer, rounds: int, give_up: float) -> list[dict[str, Any]]:
    """`rounds` rounds of every change, each through a random node, watched everywhere else.
    A change never honoured by a target within `give_up` seconds is an AssertionError."""
    rng = random.Random()
    nodes = {f"node{i}": n for i, n in enumerate(cluster.nodes)}
    changes = Changes(cluster)
    samples: list[dict[str, Any]] = []
    # One client per target, built before any clock starts (an SSL context each), without
    # keep-alive: every probe opens a new connection, so the kernel hands it to either worker.
    clients = {name: _probe_client() for name in [*nodes, "remote"]}
    for round_ in range(rounds):
        for kind, before, change, after in changes.cycle(cluster.front):
            source = rng.choice(sorted(nodes))
            everyone = {**nodes, "remote": remote}
            targets = {n: (node, clients[n]) for n, node in everyone.items() if n != source}
            warm = _watch(targets, before, give_up)  # every target's workers hold the old state
            assert all(v is not None for v in warm.values()), (kind, warm)
            change(nodes[source])
            for target, seen in _watch(targets, after(), give_up).items():
                assert seen is not None, f"{kind} through {source} never reached {target} (round {round_})"
                samples.append(
                    {
                        "kind": kind,
                        "source": source,
                        "target": target,
                        "path": "db-only" if target == "remote" else "same-host",
                        "seconds": seen[0],
                        "probe_seconds": seen[1],
                    }
                )
    for client in clients.values():
        client.close()
    return samples


def _probe_client() -> httpx.Client:
    return httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))


def summarize(samples: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """n, p50, p99 and max of `seconds` per path (same-host, db-only) and over all, with the
    median probe's own duration beside them."""
    groups: dict[str, list[dict[str, Any]]] = {"all": list(samples)}
    for s in samples:
        groups.setdefault(s["path"], []).append(s)
    summary = {}
    for path, rows in groups.items():
        seconds = sorted(r["seconds"] for r in rows)
        summary[path] = {
            "n": len(rows),
            "p50": percentile(seconds, 0.5),
            "p99": percentile(seconds, 0.99),
            "max": seconds[-1],
            "probe_p50": statistics.median(r["probe_seconds"] for r in rows),
        }
    return summary


def describe(summary: dict[str, dict[str, float]]) -> list[str]:
    return [
        f"propagation {path}: n={row['n']:.0f} p50={row['p50'] * 1000:.0f} ms p99={row['p99'] * 1000:.0f} ms "
        f"max={row['max'] * 1000:.0f} ms (one probe alone: p50 {row['probe_p50'] * 1000:.0f} ms)"
        for path, row in summary.items()
    ]
