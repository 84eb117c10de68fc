"""A change made through one node (a key minted, a principal suspended and reactivated, a key
revoked, an organization policy turned to Deny and back) is honoured by every other node within
the bound docs/operations.md documents: `cache_poll_seconds` (1 s, the default, as here) plus
one database round trip. Measured by tests.support.propagation on the cluster's other nodes and
on a node sharing only the database; p50/p99 printed and every sample written to
artifacts/multinode-propagation.json. ALLOWANCE stands for the round trip and the probe itself
on this shared two-core machine (the sample includes the probe that saw the change)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster
from tests.support.harness import CofferServer
from tests.support.propagation import describe, measure, remote_node, summarize

ARTIFACT = Path(__file__).resolve().parents[2] / "artifacts" / "multinode-propagation.json"
CACHE_POLL_SECONDS = 1.0  # the documented default, which the nodes run with
ALLOWANCE = 1.0
BOUND = CACHE_POLL_SECONDS + ALLOWANCE
ROUNDS = 4


@pytest.fixture(scope="module")
def remote(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CofferServer]:
    with remote_node(cluster, tmp_path_factory.mktemp("remote")) as node:
        yield node


def test_changes_are_honoured_by_every_node_within_the_documented_bound(
    cluster: Cluster, remote: CofferServer
) -> None:
    samples = measure(cluster, remote, ROUNDS, give_up=10 * BOUND)
    summary = summarize(samples)
    ARTIFACT.parent.mkdir(exist_ok=True)
    report = {"bound_seconds": BOUND, "summary": summary, "samples": samples}
    ARTIFACT.write_text(json.dumps(report, indent=1))
    print("\n".join(describe(summary)))
    for path, row in summary.items():
        assert row["p99"] <= BOUND, (path, row)
