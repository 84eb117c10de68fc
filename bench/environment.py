"""What every section of `python -m bench` runs in: the run's options and sizes, its working
directory, the servers (Coffer, the peer, the zero-copy file server and whatever else a
section starts), the S3 endpoints that drive them, and the report the rows go to.

Order of use: `BenchEnvironment(options, profile)`, `write_source()`, the machine's limits
(nothing else running), `start_servers()`, the sections, `close()`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import shutil
import sqlite3
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bench import limits, loadgen, servers, swift
from bench.common import log, machine_facts, tree_cpu
from bench.endpoint import Endpoint
from bench.populate import bulk_bucket, prefixed_key
from bench.profiles import Profile
from bench.report import Report
from bench.signing import Signer
from tests.support.harness import CofferServer

SMALL_BODY = b"abcdefghijklmnopqrstuvwxyz012345" * 128  # 4 KiB, printable (wrk scripts)
BUCKETS = ("big", "small", "list")  # created on Coffer and on the peer
HUGE_BUCKET = "huge"  # Coffer only: written straight into the store
LIST_PREFIXES = 100  # the `list` bucket's keys fall under this many prefixes ...
HUGE_PREFIXES = 1000  # ... and the huge bucket's under this many
PEER_SIGNER = Signer("AKIABENCHBENCHBENCH", "x" * 40)  # moto checks no signature

ProcT = TypeVar("ProcT", bound=servers.Proc)


@dataclass(frozen=True)
class SourceObject:
    """The big object's bytes on disk (sent with sendfile) and their SHA-256s: whole, per
    parallel stream and per multipart part (signed payloads are hashed before any clock)."""

    path: Path
    sha256: str
    stream_sha256: list[str]
    part_sha256: list[str]

    @classmethod
    def write(cls, path: Path, profile: Profile) -> SourceObject:
        data = limits.random_buffer(profile.big)
        path.write_bytes(data)
        view = memoryview(data)
        stream, part = profile.stream_size, profile.part
        return cls(
            path,
            hashlib.sha256(view).hexdigest(),
            [hashlib.sha256(view[i * stream : (i + 1) * stream]).hexdigest() for i in range(profile.streams)],
            [hashlib.sha256(view[o : o + part]).hexdigest() for o in range(0, profile.big, part)],
        )


class BenchEnvironment:
    """The shared state of one run; every scenario reads and adds to it."""

    def __init__(self, options: argparse.Namespace, profile: Profile) -> None:
        self.options = options
        self.profile = profile
        self.workers: int = options.workers
        self.work_dir = Path(tempfile.mkdtemp(prefix="coffer-bench-", dir=options.tmp))
        self.use_wrk = loadgen.have_wrk() and not options.no_wrk
        self.use_nginx = servers.nginx_binary() is not None and not options.no_nginx
        self.report = Report(meta=self._meta())
        self.limits: dict[str, Any] = self.report.limits  # the machine's limits and baselines
        self.started = time.monotonic()
        self.peer: servers.Moto | None = None
        self.peer_endpoint: Endpoint | None = None
        self.peer_missing_reason = ""
        self.swift: swift.Swift | None = None
        self.swift_endpoint: Endpoint | None = None
        self.swift_missing_reason = ""
        self._source: SourceObject | None = None
        self._coffer: CofferServer | None = None
        self._coffer_endpoint: Endpoint | None = None
        self._processes: list[servers.Proc] = []
        self._file_server: servers.Proc | None = None

    def _meta(self) -> dict[str, Any]:
        return {
            "mode": self.profile.name,
            **machine_facts("python -m bench"),
            "workers": self.workers,
            "loadgen": "wrk -t1" if self.use_wrk else "python asyncio (wrk not installed or --no-wrk)",
            "baseline": "nginx sendfile"
            if self.use_nginx
            else "python sendfile (nginx not installed or --no-nginx)",
            "profile": self.profile.__dict__,
        }

    # --- the run's data and servers -------------------------------------------------------------
    def section(self, title: str) -> None:
        log(f"{title} (t+{time.monotonic() - self.started:.0f}s)")

    def write_source(self) -> None:
        self._source = SourceObject.write(self.work_dir / "src.bin", self.profile)

    @property
    def source(self) -> SourceObject:
        assert self._source is not None, "write_source() first"
        return self._source

    @property
    def coffer_data_dir(self) -> Path:
        return self.work_dir / "coffer"

    def start_servers(self) -> None:
        self.section("starting Coffer (embedded SQLite) and the peers (moto, Swift)")
        self._start_coffer()
        self._start_peer()
        self._start_swift()

    def list_key(self, i: int) -> str:
        """The i-th key of the `list` bucket (sorted by i), under LIST_PREFIXES prefixes."""
        return prefixed_key(i, self.profile.list_keys, LIST_PREFIXES)

    def huge_key(self, i: int) -> str:
        """The i-th key of the huge bucket (sorted by i), under HUGE_PREFIXES prefixes."""
        return prefixed_key(i, self.profile.huge_keys, HUGE_PREFIXES)

    def _start_coffer(self) -> None:
        from coffer.config import Settings
        from coffer.server import prepare

        data = self.coffer_data_dir
        settings = Settings(data_dir=str(data), log_level="warning")
        info = prepare(settings)
        keys = self.profile.huge_keys
        seconds = bulk_bucket(settings, info["org_id"], info["admin"], HUGE_BUCKET, keys, self.huge_key)
        self.limits["bulk_insert"] = {"keys": keys, "seconds": seconds}
        log(f"{keys:,} keys written straight into the store in {seconds:.1f}s")
        # `keys` mints thousands of keys for the admin: lift the live-key cap (500 by default)
        # so that the sections after it (federation) can still mint.
        args = ["--log-level", "warning", "--max-live-keys-per-principal", "0"]
        self._coffer = CofferServer(data_dir=data, workers=self.workers, extra_args=args)
        self._coffer.start()
        key = self._coffer.mint_key()
        signer = Signer(key["accessKeyId"], key["secretKey"])
        self._coffer_endpoint = Endpoint("coffer", "127.0.0.1", self._coffer.s3_port, signer)
        for bucket in BUCKETS:
            self._coffer_endpoint.create_bucket(bucket)

    def _start_peer(self) -> None:
        if self.options.no_peer:
            self.peer_missing_reason = "--no-peer"
            return
        python = servers.moto_python(self.options.moto_python)
        if python is None:
            self.peer_missing_reason = "moto not installed (python -m bench --install-deps)"
            log(f"no peer: {self.peer_missing_reason}")
            return
        self.peer = self.start_process(servers.Moto(python, self.work_dir / "moto"))
        self.report.meta["peer"] = f"moto {self.peer.version} server (Werkzeug; no signature checks)"
        self.peer_endpoint = Endpoint(
            "moto", "127.0.0.1", self.peer.port, PEER_SIGNER, checks_signatures=False
        )
        for bucket in BUCKETS:
            self.peer_endpoint.create_bucket(bucket)

    def _start_swift(self) -> None:
        """The production peer; when it cannot run, the reason goes into every row that
        would have shown it, and the run goes on."""
        reason = "--no-swift" if self.options.no_swift else swift.missing()
        if not reason:
            proc = swift.Swift(self.work_dir / "swift")
            self._processes.append(proc)
            try:
                self.swift = proc.start()
                endpoint = Endpoint("swift", "127.0.0.1", proc.port, swift.SIGNER)
                for bucket in BUCKETS:
                    endpoint.create_bucket(bucket)
                self.swift_endpoint = endpoint
                self.report.meta["swift"] = f"OpenStack Swift {swift.version()} ({swift.LAYOUT})"
            except Exception as e:  # any failure: say so in the rows, do not crash
                self.swift = None
                reason = f"failed to start ({type(e).__name__}: {e}); log: {proc.log_tail(5)!r}"
        if reason:
            self.swift_missing_reason = reason
            self.report.meta["swift_missing"] = reason
            log(f"no Swift: {reason}")

    def start_process(self, proc: ProcT) -> ProcT:
        """Start a helper server; `close()` stops it if the section did not."""
        self._processes.append(proc)
        return proc.start()

    def close(self) -> None:
        for proc in reversed(self._processes):
            with contextlib.suppress(Exception):
                proc.stop()
        if self._coffer is not None:
            self._coffer.stop()
        if not self.options.keep:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        else:
            log(f"kept {self.work_dir}")

    @property
    def coffer(self) -> CofferServer:
        assert self._coffer is not None, "start_servers() first"
        return self._coffer

    @property
    def coffer_pid(self) -> int:
        assert self.coffer.proc is not None
        return self.coffer.proc.pid

    @property
    def coffer_endpoint(self) -> Endpoint:
        assert self._coffer_endpoint is not None, "start_servers() first"
        return self._coffer_endpoint

    def endpoints(self) -> list[Endpoint]:
        """Coffer's endpoint, then the peers' (moto, Swift) that run: every comparison drives all."""
        peers = [self.peer_endpoint, self.swift_endpoint]
        return [self.coffer_endpoint] + [endpoint for endpoint in peers if endpoint is not None]

    def server_pid(self, endpoint: Endpoint) -> int:
        """The process behind an endpoint, for CPU and memory accounting (0: none known)."""
        if endpoint is self.coffer_endpoint:
            return self.coffer_pid
        if endpoint is self.swift_endpoint and self.swift is not None:
            return self.swift.pid  # the launcher: memcached and every Swift server are its children
        return self.peer.pid if self.peer is not None else 0

    def blob_path(self, bucket: str, key: str) -> Path:
        """Where Coffer keeps an object's (single-part) body, relative to its blob directory,
        for the zero-copy file server to serve the very same file."""
        db = sqlite3.connect(f"file:{self.coffer_data_dir / 'coffer.db'}?mode=ro", uri=True)
        try:
            row = db.execute(
                "SELECT parts FROM objects WHERE bucket = ? AND key = ? AND is_latest = 1", (bucket, key)
            ).fetchone()
        finally:
            db.close()
        blob = json.loads(row[0])[0]["blob"]
        return Path(blob[:2]) / blob[2:4] / blob

    def file_server(self) -> servers.Proc:
        """The zero-copy file server (nginx, else Python sendfile) over Coffer's blob
        directory, started on first use."""
        if self._file_server is None:
            root = self.coffer_data_dir / "blobs"
            if self.use_nginx:
                self._file_server = self.start_process(
                    servers.Nginx(root, self.work_dir / "nginx", self.workers)
                )
            else:
                self._file_server = self.start_process(servers.PySendfile(root, self.work_dir / "sendfile"))
        return self._file_server

    # --- load -----------------------------------------------------------------------------------
    def measure_load(self, port: int, pool: list[bytes], concurrency: int, pid: int) -> loadgen.Load:
        """A closed-loop load of `profile.seconds` replaying `pool` (wrk or asyncio), with the
        server CPU per request of process `pid` (0: not measured)."""
        cpu_before = tree_cpu(pid) if pid else 0.0
        result = loadgen.run("127.0.0.1", port, pool, concurrency, self.profile.seconds, use_wrk=self.use_wrk)
        if pid and result.requests:
            result.cpu_us = (tree_cpu(pid) - cpu_before) / result.requests * 1e6
        if result.errors:
            log(f"  WARNING: {result.errors} errors of {result.requests} requests on port {port}")
        return result

    @staticmethod
    def fill(endpoint: Endpoint, paths: list[str], body: bytes, threads: int) -> float:
        """PUT `body` at every path from `threads` connections; returns PUTs per second."""
        lanes = [paths[i::threads] for i in range(threads)]

        def lane(items: list[str]) -> None:
            with endpoint.conn() as conn:
                for path in items:
                    endpoint.put(conn, path, body)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lane, lanes))
        return len(paths) / (time.perf_counter() - t0)
