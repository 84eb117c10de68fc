"""Prometheus metrics: exact sums over every worker, bounded labels, where /metrics is served.

The main server runs two workers. Requests go out over fresh connections, which the
kernel spreads over both (each worker listens on a socket of its own); the tests then
read each worker's multiprocess file to show that both counted some, and that every
scrape, whichever worker answers it, reports exactly the sum of what was sent.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from coffer import metrics
from coffer.api.app import OPERATIONS as API_OPERATIONS
from coffer.auditlog.events import PLANES as AUDIT_PLANES
from coffer.policy.engine import Rule
from coffer.s3.router import OPERATIONS as S3_OPERATIONS
from tests.support.api import wait_for
from tests.support.harness import (
    CofferServer,
    free_port,
    running_server,
    start_server,
    stop_server,
    worker_processes,
)
from tests.support.s3 import assert_s3_error, new_bucket, s3_client, signed, unique

DOCS = Path(__file__).resolve().parent.parent.parent / "docs"
N = 24  # requests of each kind: enough fresh connections that both workers get some
LIST_KEYS = "/v1/cwobject/access-key"
Samples = list[Sample]


# --- helpers ------------------------------------------------------------------------------------
def parse(text: str) -> Samples:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def scrape(url: str) -> Samples:
    """One scrape over a fresh connection (so it lands on either worker)."""
    r = httpx.get(url + "/metrics", timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when there are none)."""
    return sum(
        s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def metrics_dir(server: CofferServer) -> Path:
    assert server.proc is not None
    (found,) = (server.data_dir / "run" / "metrics").glob(f"*-{server.proc.pid}")
    return found


def per_worker(server: CofferServer, pids: list[int], name: str, **labels: str) -> dict[int, float]:
    """What each worker process counted, read from its own multiprocess file."""
    out = {}
    for pid in pids:
        files = [str(f) for f in metrics_dir(server).glob(f"*_{pid}.db")]
        merged = [s for m in MultiProcessCollector.merge(files) for s in m.samples]
        out[pid] = value(merged, name, **labels)
    return out


def worker_pids(server: CofferServer) -> list[int]:
    return sorted(p.pid for p in worker_processes(server, server.s3_port))


def both_workers_up(server: CofferServer) -> bool:
    """A worker serves as soon as it has built its app, so right after a start one may still be coming."""
    return wait_for(lambda: value(scrape(server.api_url), "coffer_worker_processes") == 2, timeout=60)


# --- the two-worker server ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CofferServer]:
    # The failed-authentication budget would turn the test's deliberate failures into 503s.
    args = ["--auth-failure-limit", "0"]
    with running_server(tmp_path_factory.mktemp("metrics"), "sqlite", workers=2, extra_args=args) as srv:
        assert both_workers_up(srv)
        yield srv


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    name = new_bucket(s3, "metrics")
    # Objects under secret/ are off limits to everyone: a bucket-policy Deny. (With a bucket
    # policy, what it does not allow is refused, hence the Allow.)
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
            },
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{name}/secret/*",
            },
        ],
    }
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps(deny))
    s3.put_object(Bucket=name, Key="secret/plans", Body=b"x")
    return name


def test_s3_counts_are_exact_sums_over_both_workers(
    server: CofferServer, key: dict[str, Any], bucket: str
) -> None:
    body = b"m" * 1000
    forged = {**key, "secretKey": "not-the-secret-" + key["secretKey"][15:]}
    stranger = {"accessKeyId": "CWNOSUCHKEY0000000000", "secretKey": "x" * 40}
    before = scrape(server.api_url)
    pids = worker_pids(server)
    assert len(pids) == 2
    put_before = per_worker(
        server, pids, "coffer_requests_total", face="s3", operation="PutObject", status="200"
    )

    for i in range(N):  # httpx.request: a fresh connection each
        assert signed(server, key, "PUT", f"/{bucket}/obj-{i}", body=body).status_code == 200
        got = signed(server, key, "GET", f"/{bucket}/obj-{i}")
        assert got.status_code == 200 and got.content == body
    for _ in range(3):
        assert_s3_error(signed(server, forged, "PUT", f"/{bucket}/forged"), 403, "SignatureDoesNotMatch")
        assert_s3_error(signed(server, stranger, "PUT", f"/{bucket}/stranger"), 403, "InvalidAccessKeyId")
    for _ in range(4):
        assert_s3_error(signed(server, key, "GET", f"/{bucket}/secret/plans"), 403, "AccessDenied")

    after = scrape(server.api_url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    s3 = {"face": "s3"}
    assert delta("coffer_requests_total", **s3, operation="PutObject", status="200") == N
    assert delta("coffer_requests_total", **s3, operation="GetObject", status="200") == N
    assert delta("coffer_requests_total", **s3, operation="PutObject", status="403") == 6
    assert delta("coffer_requests_total", **s3, operation="GetObject", status="403") == 4
    assert delta("coffer_request_duration_seconds_count", **s3, operation="PutObject") == N + 6
    assert delta("coffer_auth_failures_total", **s3, reason="bad_signature") == 3
    assert delta("coffer_auth_failures_total", **s3, reason="unknown_key") == 3
    assert delta("coffer_policy_decisions_total", plane="s3", effect="deny", rule="bucket-deny") == 4
    # Every request that authenticated was decided: N puts, N gets, the 4 denied gets.
    assert delta("coffer_policy_decisions_total", plane="s3") == 2 * N + 4
    assert delta("coffer_bytes_received_total", **s3) == N * len(body)
    assert delta("coffer_bytes_sent_total", **s3) >= N * len(body)
    assert (
        delta("coffer_cache_hits_total", cache="access_keys")
        + delta("coffer_cache_misses_total", cache="access_keys")
        >= 2 * N + 4
    )

    # Both workers counted some of the puts, and the scrape is exactly their sum.
    put_after = per_worker(
        server, pids, "coffer_requests_total", face="s3", operation="PutObject", status="200"
    )
    counted = {pid: put_after[pid] - put_before[pid] for pid in pids}
    assert all(n > 0 for n in counted.values()), counted
    assert sum(counted.values()) == N


def test_control_plane_and_console(server: CofferServer) -> None:
    _, token = server.create_user("metrics-nobody")
    revoked_name, revoked = server.create_user("metrics-revoked")
    rows = json.loads(server.cli("admin", "token", "list", "--user", "metrics-revoked", "--json").stdout)
    server.cli("admin", "token", "revoke", rows[0]["id"])
    before = scrape(server.api_url)
    url = server.api_url + LIST_KEYS
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    for _ in range(5):
        assert httpx.get(url, headers=admin, timeout=30).status_code == 200
        assert httpx.get(url, timeout=30).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer nonsense"}, timeout=30).status_code == 401
        assert httpx.get(url, headers={"Authorization": f"Bearer {revoked}"}, timeout=30).status_code == 401
        assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 403
        assert httpx.get(server.api_url + "/console", timeout=30).status_code == 200
        sign_in = httpx.post(server.api_url + "/console/api/session", json={"token": "nonsense"}, timeout=30)
        assert sign_in.status_code == 401
    after = scrape(server.api_url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    op = {"face": "api", "operation": "ListAccessKeyInfo"}
    assert delta("coffer_requests_total", **op, status="200") == 5
    assert delta("coffer_requests_total", **op, status="401") == 15
    assert delta("coffer_requests_total", **op, status="403") == 5
    assert delta("coffer_auth_failures_total", face="api", reason="missing_token") == 5
    assert delta("coffer_auth_failures_total", face="api", reason="invalid_token") == 5
    assert delta("coffer_auth_failures_total", face="api", reason="revoked_token") == 5
    assert delta("coffer_auth_failures_total", face="console", reason="invalid_token") == 5
    assert delta("coffer_policy_decisions_total", plane="control", effect="allow") == 5
    assert delta("coffer_policy_decisions_total", plane="control", effect="deny") == 5
    assert delta("coffer_requests_total", face="console", operation="page", status="200") == 5
    assert delta("coffer_requests_total", face="console", operation="sign_in", status="401") == 5
    assert delta("coffer_bytes_received_total", face="console") > 0
    assert delta("coffer_bytes_sent_total", face="api") > 0
    assert delta("coffer_cache_hits_total", cache="api_tokens") > 0
    assert revoked_name  # the user exists; only its token was revoked


def test_every_scrape_sees_the_sum_whichever_worker_answers(server: CofferServer) -> None:
    pids = worker_pids(server)
    served_before = per_worker(server, pids, "coffer_requests_total", face="api", operation="metrics")
    seen = set()
    for _ in range(16):
        samples = scrape(server.api_url)
        seen.add(value(samples, "coffer_requests_total", face="s3"))
        assert value(samples, "coffer_worker_processes") == 2
        assert value(samples, "coffer_blob_store_free_bytes") > 0
        assert value(samples, "coffer_blob_store_size_bytes") >= value(
            samples, "coffer_blob_store_free_bytes"
        )
    assert len(seen) == 1, seen  # no S3 traffic meanwhile: every worker reported the same total
    served = per_worker(server, pids, "coffer_requests_total", face="api", operation="metrics")
    assert all(served[pid] > served_before[pid] for pid in pids), (served_before, served)


# Label values each label may take; a bucket, key, key id or address would show up here.
BOUNDED = {
    "face": set(metrics.FACES),
    "reason": {*metrics.AUTH_REASONS, *metrics.AUDIT_DROP_REASONS},
    "cache": set(metrics.CACHES),
    "effect": {"allow", "deny"},
    "plane": {"s3", "control", *AUDIT_PLANES},  # decisions; audit-log prefixes
    "scope": {"source", "key"},
    "port": {"api", "s3", "metrics"},
    "task": {"lifecycle", "inventory"},  # the lifecycle executor's tasks
    "action": set(metrics.LIFECYCLE_ACTION_NAMES),
}


def test_labels_stay_bounded(server: CofferServer, key: dict[str, Any], bucket: str) -> None:
    s3 = s3_client(server, key)
    s3.put_object(Bucket=bucket, Key="a/very-particular-key", Body=b"1")
    s3.list_objects_v2(Bucket=bucket, Prefix="a/")
    assert httpx.get(f"{server.s3_url}/{unique('absent')}/nothing", timeout=30).status_code in (403, 404)
    samples = scrape(server.api_url)
    operations = {*S3_OPERATIONS, *(op.name for op in API_OPERATIONS), "Health", metrics.UNROUTED}
    operations |= {"healthz", "metrics", "openapi"}
    rules = {r.value for r in Rule}
    forbidden = {bucket, key["accessKeyId"], "127.0.0.1", "a/very-particular-key"}
    for s in samples:
        assert s.name.startswith("coffer_"), s
        for label, v in s.labels.items():
            assert v not in forbidden and bucket not in v, s
            if label in BOUNDED:
                assert v in BOUNDED[label], s
            elif label == "operation" and s.labels.get("face") != "console":
                assert v in operations, s
            elif label == "status":
                assert re.fullmatch(r"[1-5]\d\d", v), s
            elif label == "rule":
                assert v in rules, s
            else:
                assert label in ("le", "operation"), s


# --- where /metrics is served -------------------------------------------------------------------
def test_metrics_port_moves_it(tmp_path: Path) -> None:
    port = free_port()
    srv = start_server(tmp_path, "sqlite", extra_args=["--metrics-port", str(port)])
    try:
        assert httpx.get(srv.api_url + "/metrics", timeout=30).status_code == 404
        assert httpx.get(f"{srv.s3_url}/_coffer/healthz", timeout=30).status_code == 200
        own = f"http://127.0.0.1:{port}"
        samples = scrape(own)  # one worker: the in-process registry
        assert value(samples, "coffer_requests_total", face="s3", operation="Health") >= 1
        assert value(samples, "coffer_worker_processes") == 1
        assert httpx.get(own + "/healthz", timeout=30).status_code == 404
        assert httpx.post(own + "/metrics", timeout=30).status_code == 404
    finally:
        stop_server(srv)


def test_no_metrics_is_404(tmp_path: Path) -> None:
    srv = start_server(tmp_path, "sqlite", workers=2, extra_args=["--no-metrics"])
    try:
        r = httpx.get(srv.api_url + "/metrics", timeout=30)
        assert r.status_code == 404
        assert r.json()["code"] == 5  # NOT_FOUND, like any unknown route
        assert not (srv.data_dir / "run" / "metrics").exists()  # and no multiprocess files
    finally:
        stop_server(srv)


# --- restarts and dead workers ------------------------------------------------------------------
def health(server: CofferServer, times: int) -> None:
    for _ in range(times):
        assert httpx.get(f"{server.s3_url}/_coffer/healthz", timeout=30).status_code == 200


def health_count(server: CofferServer) -> float:
    return value(scrape(server.api_url), "coffer_requests_total", face="s3", operation="Health")


def test_dead_workers_and_restarts_neither_lose_nor_double_count(tmp_path: Path) -> None:
    srv = start_server(tmp_path, "sqlite", workers=2)
    try:
        assert both_workers_up(srv)
        start = health_count(srv)
        health(srv, N)
        assert health_count(srv) == start + N

        # A worker dies: its counts stay, its live gauges go once the supervisor replaced it.
        old = worker_pids(srv)
        os.kill(old[0], signal.SIGKILL)
        assert wait_for(lambda: len(set(worker_pids(srv)) - set(old)) == 1, timeout=60)
        (new,) = set(worker_pids(srv)) - set(old)

        def counted_itself() -> bool:  # a new worker counts itself once its app is built
            return per_worker(srv, [new], "coffer_worker_processes")[new] == 1

        assert wait_for(counted_itself, timeout=60)
        samples = scrape(srv.api_url)
        assert value(samples, "coffer_worker_processes") == 2  # not the dead one as well
        assert value(samples, "coffer_requests_total", face="s3", operation="Health") == start + N
        assert not list(metrics_dir(srv).glob(f"gauge_live*_{old[0]}.db"))

        # A clean restart on the same data dir starts from zero, in a fresh directory.
        srv.stop()
        assert not list((srv.data_dir / "run" / "metrics").iterdir())
        srv.start()
        restarted = health_count(srv)
        assert restarted < N  # only the start-up probes since the restart
        health(srv, 5)
        samples = scrape(srv.api_url)
        assert value(samples, "coffer_requests_total", face="s3", operation="Health") == restarted + 5
        assert both_workers_up(srv)

        # A server killed outright leaves its directory; the next start removes it.
        workers = worker_pids(srv)
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGKILL)  # the supervisor first, so nobody restarts workers
        srv.proc.wait(10)
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: not any(_alive(pid) for pid in workers), timeout=30)
        stale = list((srv.data_dir / "run" / "metrics").iterdir())
        assert len(stale) == 1
        srv.start()
        remaining = list((srv.data_dir / "run" / "metrics").iterdir())
        assert remaining == [metrics_dir(srv)] and stale[0] not in remaining
        assert both_workers_up(srv)
    finally:
        stop_server(srv)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rpartition(")")[2].split()[:1] != ["Z"]


# --- in process ---------------------------------------------------------------------------------
def test_change_lag_grows_while_the_store_is_unreachable(tmp_path: Path) -> None:
    """Outside `coffer serve` metrics are the plain in-process registry, and work."""
    from coffer.store.changes import ChangeWatcher
    from coffer.store.db import Database

    db = Database(f"postgresql+psycopg://coffer@127.0.0.1:{free_port()}/nothing-listens-here")
    watcher = ChangeWatcher(db, tmp_path / "run", poll_seconds=0.05)
    watcher.start()
    try:

        def lag() -> float:
            return metrics.REGISTRY.get_sample_value("coffer_change_lag_seconds") or 0.0

        assert wait_for(lambda: lag() > 0.2, timeout=30)
        first = lag()
        assert wait_for(lambda: lag() > first, timeout=30)
        assert b"coffer_change_lag_seconds" in metrics.render()
    finally:
        watcher.stop()
        db.dispose()


# --- the docs -----------------------------------------------------------------------------------
def defined_metrics() -> set[str]:
    names = set(metrics.SCRAPE_TIME_METRICS)
    for obj in vars(metrics).values():
        if isinstance(obj, Counter):
            names.add(obj._name + "_total")
        elif isinstance(obj, Gauge | Histogram):
            names.add(obj._name)
    return names


def test_every_metric_is_documented() -> None:
    text = (DOCS / "operations.md").read_text()
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `coffer_")]
    documented = {re.match(r"\| `(coffer_[a-z_]+)`", row).group(1) for row in rows}  # type: ignore[union-attr]
    defined = defined_metrics()
    assert len(defined) >= 15
    assert defined - documented == set(), "defined in coffer/metrics.py but not in docs/operations.md"
    assert documented - defined == set(), "documented but not defined"
