"""Prometheus metrics: every metric object of Coffer, and the scrape.

`coffer serve --workers N` runs N worker processes, and a scrape (answered by whichever
worker accepts it) must show the sum over all of them. So in a multi-worker server every
value lives in prometheus_client's multiprocess files: `serve()` gives the workers a
fresh directory of their own (`use_multiprocess_dir`) through the environment before
they start, and each worker, spawned afresh, imports this module with it set. Anywhere
else (one worker, the CLI, unit tests) the values are plain in-process numbers in
`REGISTRY`, so recording never fails and one process's scrape is exact.

Label values are bounded by construction: faces, operation names from the S3 routing
table or the control plane's operation table, HTTP statuses, fixed reason sets. Never a
bucket, key, access key id or address: those would make a series per client.

docs/operations.md ("Metrics") lists every metric; tests/hardening/test_metrics.py keeps
the list true.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from starlette.types import Receive, Scope, Send

# Set by `serve()` for its workers only; prometheus_client reads the second one itself.
MULTIPROC_ENV = "COFFER_METRICS_MULTIPROC_DIR"
PROMETHEUS_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST


def _multiprocess_dir() -> str | None:
    """This process's multiprocess directory, and prometheus_client's value class to match.

    Decided here rather than by prometheus_client's own import-time look at
    PROMETHEUS_MULTIPROC_DIR, so that a stray variable in an operator's shell cannot send
    the CLI or a one-worker server into files nobody scrapes (or crash it on a missing
    directory), and an import order that loaded prometheus_client first cannot leave a
    worker writing to memory that no scrape sees."""
    path = os.environ.get(MULTIPROC_ENV) or None
    if path is not None and not os.path.isdir(path):
        path = None
    if path is not None:
        os.environ[PROMETHEUS_ENV] = path
    if (path is not None) != bool(getattr(values.ValueClass, "_multiprocess", False)):
        values.ValueClass = values.MultiProcessValue() if path else values.MutexValue
    return path


MULTIPROCESS_DIR = _multiprocess_dir()
disable_created_metrics()  # multiprocess mode has no _created samples; keep both modes alike
REGISTRY = CollectorRegistry(auto_describe=True)
_M = TypeVar("_M", bound=MetricWrapperBase)

# --- label values -----------------------------------------------------------------------------
API, S3, CONSOLE = "api", "s3", "console"
FACES = (API, S3, CONSOLE)
UNROUTED = "unrouted"  # a request no operation or route matched

# S3 authentication refusals (coffer.s3.sigv4) by error code; anything else is `malformed`.
S3_AUTH_REASONS = {
    "InvalidAccessKeyId": "unknown_key",
    "SignatureDoesNotMatch": "bad_signature",
    "RequestTimeTooSkewed": "clock_skew",
    "ExpiredToken": "expired_key",
    "InvalidToken": "bad_session_token",
    "AccessDenied": "refused",  # suspended principal, expired presigned URL, unsigned x-amz-*, no date
}
CONTROL_AUTH_REASONS = ("missing_token", "invalid_token", "revoked_token", "expired_token", "csrf")
AUTH_REASONS = (*dict.fromkeys(S3_AUTH_REASONS.values()), "malformed", *CONTROL_AUTH_REASONS)
CACHES = (
    "access_keys",
    "api_tokens",
    "buckets",
    "org_policies",
    "bucket_policies",
    "federation_configs",
    "org_settings",
    "lifecycle",
)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


def _metric(kind: type[_M], name: str, documentation: str, labels: Sequence[str] = (), **options: Any) -> _M:
    """A metric of `kind` in Coffer's registry: every one must be (see `REGISTRY`)."""
    return kind(name, documentation, labels, registry=REGISTRY, **options)


# --- the metrics ------------------------------------------------------------------------------
REQUESTS = _metric(
    Counter,
    "coffer_requests_total",
    "HTTP requests answered, by face, operation and status.",
    ["face", "operation", "status"],
)
REQUEST_DURATION = _metric(
    Histogram,
    "coffer_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by face and operation.",
    ["face", "operation"],
    buckets=LATENCY_BUCKETS,
)
BYTES_RECEIVED = _metric(
    Counter,
    "coffer_bytes_received_total",
    "Request body bytes received, by face.",
    ["face"],
)
BYTES_SENT = _metric(
    Counter,
    "coffer_bytes_sent_total",
    "Response body bytes sent, by face.",
    ["face"],
)
AUTH_FAILURES = _metric(
    Counter,
    "coffer_auth_failures_total",
    "Requests refused because their credentials did not authenticate, by face and reason.",
    ["face", "reason"],
)
AUTH_THROTTLED = _metric(
    Counter,
    "coffer_auth_throttled_total",
    "Requests slowed or refused because a failed-authentication budget ran out, by face and scope.",
    ["face", "scope"],
)
POLICY_DECISIONS = _metric(
    Counter,
    "coffer_policy_decisions_total",
    "Authorization decisions enforced, by plane, effect and the rule of the algorithm that decided.",
    ["plane", "effect", "rule"],
)
CACHE_HITS = _metric(
    Counter,
    "coffer_cache_hits_total",
    "Lookups answered from a worker's in-memory cache, by cache.",
    ["cache"],
)
CACHE_MISSES = _metric(
    Counter,
    "coffer_cache_misses_total",
    "Lookups that went to the metadata store, by cache.",
    ["cache"],
)
CHANGE_LAG = _metric(
    Gauge,
    "coffer_change_lag_seconds",
    "Seconds since the worker last read the stored change counter, while it cannot read it "
    "(0 while its listener keeps up); the largest over live workers. PostgreSQL only.",
    multiprocess_mode="livemax",
)
CONNECTIONS_OPEN = _metric(
    Gauge,
    "coffer_connections_open",
    "Open client connections, by listening port.",
    ["port"],
    multiprocess_mode="livesum",
)
CONNECTIONS_CLOSED = _metric(
    Counter,
    "coffer_connections_closed_total",
    "Connections the server closed or refused to protect itself, by reason.",
    ["reason"],
)
WORKER_PROCESSES = _metric(
    Gauge,
    "coffer_worker_processes",
    "Worker processes serving requests.",
    multiprocess_mode="livesum",
)
AUDIT_DROP_REASONS = ("spool_full", "unwritable", "error")
AUDIT_EVENTS_SPOOLED = _metric(
    Counter,
    "coffer_audit_log_events_spooled_total",
    "Audit-log events appended to the worker's spool, by plane.",
    ["plane"],
)
AUDIT_EVENTS_FLUSHED = _metric(
    Counter,
    "coffer_audit_log_events_flushed_total",
    "Audit-log events written into their organization's audit bucket, by plane.",
    ["plane"],
)
AUDIT_EVENTS_DROPPED = _metric(
    Counter,
    "coffer_audit_log_events_dropped_total",
    "Audit-log events given up, by plane and reason (spool_full, unwritable, error).",
    ["plane", "reason"],
)
AUDIT_FLUSH_FAILURES = _metric(
    Counter,
    "coffer_audit_log_flush_failures_total",
    "Flushes that left events in the spool for the next one (the store refused or failed).",
)
AUDIT_SPOOL_BYTES = _metric(
    Gauge,
    "coffer_audit_log_spool_bytes",
    "Bytes of audit-log events left in the spools of the live workers after their last flush.",
    multiprocess_mode="livesum",
)
ACCESS_KEYS_EXPIRING = _metric(
    Gauge,
    "coffer_access_keys_expiring",
    "Live temporary access keys that expire within key_expiry_warning_seconds (counted by each "
    "worker after each last-used flush; the newest count).",
    multiprocess_mode="livemax",
)
ACCESS_KEYS_AGED = _metric(
    Gauge,
    "coffer_access_keys_aged",
    "Live permanent access keys older than key_max_age_days (counted as coffer_access_keys_expiring).",
    multiprocess_mode="livemax",
)
# The lifecycle executor (coffer/lifecycle/executor.py): by task ("lifecycle", "inventory")
# and, for actions, by one of LIFECYCLE_ACTION_NAMES.
LIFECYCLE_ACTION_NAMES = (
    "expire_current",
    "expire_noncurrent",
    "remove_delete_marker",
    "abort_upload",
    "skipped",
)
LIFECYCLE_ACTIONS = _metric(
    Counter,
    "coffer_lifecycle_actions_total",
    "What the background executor did, by task and action (skipped: no longer due when re-checked "
    "under the key's lock, because a client wrote the key after the rule matched).",
    ["task", "action"],
)
LIFECYCLE_PASS_SECONDS = _metric(
    Histogram,
    "coffer_lifecycle_pass_seconds",
    "Duration of one complete pass of a task over one bucket, by task.",
    ["task"],
    buckets=(0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400),
)
# Computed at scrape time rather than stored (see `BlobStoreSpace`).
BLOB_FREE_BYTES = "coffer_blob_store_free_bytes"
BLOB_SIZE_BYTES = "coffer_blob_store_size_bytes"
SCRAPE_TIME_METRICS = (BLOB_FREE_BYTES, BLOB_SIZE_BYTES)

# --- the hot path: label children resolved once -----------------------------------------------
_BYTES_IN = {face: BYTES_RECEIVED.labels(face) for face in FACES}
_BYTES_OUT = {face: BYTES_SENT.labels(face) for face in FACES}
_requests: dict[tuple[str, str, int], Any] = {}
_durations: dict[tuple[str, str], Any] = {}
_auth_failures: dict[tuple[str, str], Any] = {}
_decisions: dict[tuple[str, bool, str], Any] = {}
_CHILDREN_MAX = 20_000  # a backstop: the label sets are bounded far below this


class CacheMeter:
    """One cache's hit and miss counters, resolved once."""

    __slots__ = ("hit", "miss")

    def __init__(self, name: str) -> None:
        self.hit = CACHE_HITS.labels(name)
        self.miss = CACHE_MISSES.labels(name)


def cache(name: str) -> CacheMeter:
    if name not in CACHES:
        raise ValueError(f"unknown cache {name!r}")
    return CacheMeter(name)


def _child(cache_: dict[Any, Any], key: Any, make: Any) -> Any:
    child = cache_.get(key)
    if child is None:
        child = make()
        if len(cache_) < _CHILDREN_MAX:
            cache_[key] = child
    return child


def observe(face: str, operation: str, status: int, started: float, received: int, sent: int) -> None:
    """Record one finished request (`started` is its time.perf_counter() on arrival)."""
    _child(_requests, (face, operation, status), lambda: REQUESTS.labels(face, operation, str(status))).inc()
    _child(_durations, (face, operation), lambda: REQUEST_DURATION.labels(face, operation)).observe(
        time.perf_counter() - started
    )
    if received:
        _BYTES_IN[face].inc(received)
    if sent:
        _BYTES_OUT[face].inc(sent)


def auth_failed(face: str, reason: str) -> None:
    _child(_auth_failures, (face, reason), lambda: AUTH_FAILURES.labels(face, reason)).inc()


def s3_auth_failed(code: str) -> None:
    """An S3 request whose signature check raised the S3 error `code`."""
    if code == "SlowDown":  # over the failed-authentication budget: AUTH_THROTTLED counts it
        return
    auth_failed(S3, S3_AUTH_REASONS.get(code, "malformed"))


def control_auth_reason(message: str, csrf: bool) -> str:
    """The reason label of a refused control-plane credential (coffer.web.http.authenticate)."""
    if csrf:
        return "csrf"
    for word, reason in (
        ("required", "missing_token"),
        ("revoked", "revoked_token"),
        ("expired", "expired_token"),
    ):
        if word in message:
            return reason
    return "invalid_token"


def decided(plane: str, allowed: bool, rule: str) -> None:
    """One enforced policy decision (`rule` is coffer.policy.engine.Rule's value)."""
    _child(
        _decisions,
        (plane, allowed, rule),
        lambda: POLICY_DECISIONS.labels(plane, "allow" if allowed else "deny", rule),
    ).inc()


def face_of(path: str) -> str:
    """The face of a request on the control-plane port."""
    return CONSOLE if path == "/console" or path.startswith("/console/") else API


def worker_started() -> None:
    WORKER_PROCESSES.set(1)


# --- ASGI ---------------------------------------------------------------------------------------
class MetricsApp:
    """The whole ASGI app of a `metrics_port` of its own: GET /metrics, nothing else."""

    def __init__(self, blob_root: Path | None) -> None:
        self.blob_root = blob_root

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/metrics" and scope["method"] in ("GET", "HEAD"):
            from starlette.concurrency import run_in_threadpool

            status, ctype, body = 200, CONTENT_TYPE, await run_in_threadpool(render, self.blob_root)
        else:
            status, ctype, body = (
                404,
                "text/plain; charset=utf-8",
                b"not found: only GET /metrics is served here\n",
            )
        headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


# --- the scrape ---------------------------------------------------------------------------------
class BlobStoreSpace(Collector):
    """Free and total bytes of the blob store's file system, read when scraped: a stored
    value would be as old as the last scrape that landed on the same worker."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def collect(self) -> Iterator[Metric]:
        try:
            usage = shutil.disk_usage(self.root)
        except OSError:
            return
        yield GaugeMetricFamily(
            BLOB_FREE_BYTES, "Bytes free for Coffer on the blob store's file system.", value=usage.free
        )
        yield GaugeMetricFamily(
            BLOB_SIZE_BYTES, "Size in bytes of the blob store's file system.", value=usage.total
        )


class _Scrape(Collector):
    def __init__(self, sources: Iterable[Collector]) -> None:
        self.sources = list(sources)

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source.collect()


def render(blob_root: Path | None = None) -> bytes:
    """The Prometheus text exposition: the sum over every worker of this server."""
    sources: list[Collector] = []
    if MULTIPROCESS_DIR is not None:
        reap_dead_workers(MULTIPROCESS_DIR)
        sources.append(MultiProcessCollector(None, path=MULTIPROCESS_DIR))
    else:
        sources.append(REGISTRY)
    if blob_root is not None:
        sources.append(BlobStoreSpace(blob_root))
    return generate_latest(_Scrape(sources))


# --- the multiprocess directory -----------------------------------------------------------------
_LIVE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


def _running(pid: int) -> bool:
    """Is `pid` a process that has not exited (a zombie has)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: os.kill said it exists
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def reap_dead_workers(path: str) -> None:
    """Drop the live gauges (`live*` modes) of workers that have exited, however they went.

    A worker that died (or that the supervisor replaced) leaves its files; its counters
    must stay, or totals would fall, but its connections and its `1` in
    coffer_worker_processes must not. Done at scrape time, the one moment it matters."""
    try:
        names = os.listdir(path)
    except OSError:
        return
    for pid in {int(m.group(1)) for m in map(_LIVE_FILE.fullmatch, names) if m}:
        if not _running(pid):
            with contextlib.suppress(OSError):
                mark_process_dead(pid, path)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"


def use_multiprocess_dir(run_dir: Path) -> Path:
    """Give this server's workers an empty multiprocess directory; call before any starts.

    `<run_dir>/metrics/<host>-<pid>`: nodes sharing a data directory, even on one host,
    never share one. Directories this host left behind (their server is gone) are removed
    now, and this one at exit, so restarts neither double-count nor pile up files."""
    base = run_dir / "metrics"
    host = _host()
    mine = base / f"{host}-{os.getpid()}"
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            owner, _, pid = entry.name.rpartition("-")
            if owner == host and pid.isdigit() and (int(pid) == os.getpid() or not _running(int(pid))):
                shutil.rmtree(entry, ignore_errors=True)
    mine.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ[MULTIPROC_ENV] = os.environ[PROMETHEUS_ENV] = str(mine)
    atexit.register(shutil.rmtree, mine, True)
    return mine
