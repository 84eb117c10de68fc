"""`python -m bench`: Coffer, the machine's limits and a peer, side by side in one run.

Order of a run: the machine's limits (hashing, disk, small durable files, SQLite commits);
a bucket of many keys written straight into the store; Coffer started on its embedded
default; the peer (moto) started; then large objects, small objects, listings, key minting,
per-request CPU costs and memory, each measured on Coffer, on its bound and on the peer
back to back. The table goes to stdout, the JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench import federation_bench, limits, loadgen, micro, servers
from bench.client import Conn, FileBody, RepeatBody
from bench.endpoint import Endpoint
from bench.populate import bulk_bucket, key_name
from bench.report import MB, Report, Row, Target
from bench.signing import UNSIGNED, Signer

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Profile:
    name: str
    big: int  # single-stream object
    streams: int  # parallel streams of big/streams bytes each
    part: int  # multipart part size
    reps: int  # large transfers: best of this many
    hash_bytes: int
    disk_bytes: int
    small_files: int  # durable small-file creates per concurrency level
    small_objects: int  # distinct 4 KiB objects read by the GET pools
    put_pool: int  # distinct keys written by the PUT pools
    seconds: float  # each closed-loop load
    list_keys: int  # bucket filled with real PUTs
    huge_keys: int  # bucket filled straight through the store
    page_samples: int
    memory: int  # object streamed in and out of Coffer while RSS is sampled
    peer_memory: int  # the same for the peer, which keeps objects in RAM
    sigv4_iterations: int
    policy_iterations: int


# fmt: off
PROFILES = {
    "full": Profile(
        "full", GiB, 4, 64 * MiB, 3, 512 * MiB, GiB, 2000, 256, 4096, 8, 10_000, 1_000_000, 200,
        5 * GiB, GiB, 20_000, 2000,
    ),
    "quick": Profile(
        "quick", 256 * MiB, 4, 16 * MiB, 2, 128 * MiB, 256 * MiB, 400, 128, 1024, 2, 1000, 100_000, 100,
        GiB, 256 * MiB, 5000, 300,
    ),
    "selftest": Profile(
        "selftest", 12 * MiB, 4, 5 * MiB, 1, 8 * MiB, 8 * MiB, 20, 16, 64, 0.3, 100, 2000, 5,
        16 * MiB, 8 * MiB, 200, 20,
    ),
}
# fmt: on


def size_label(n: int) -> str:
    return f"{n // GiB} GiB" if n % GiB == 0 else f"{n // MiB} MiB"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its live children."""
    total = 0.0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system
    return total


def best_of(reps: int, fn: Callable[[], float]) -> tuple[float, list[float]]:
    samples = [fn() for _ in range(max(1, reps))]
    return max(samples), samples


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


class Bench:
    def __init__(self, args: argparse.Namespace, profile: Profile) -> None:
        self.args, self.p = args, profile
        self.workers: int = args.workers
        self.work = Path(tempfile.mkdtemp(prefix="coffer-bench-", dir=args.tmp))
        self.use_wrk = loadgen.have_wrk() and not args.no_wrk
        self.use_nginx = servers.nginx_binary() is not None and not args.no_nginx
        self.procs: list[servers.Proc] = []
        self.coffer: Any = None
        self.ep: Endpoint | None = None
        self.peer: servers.Moto | None = None
        self.pep: Endpoint | None = None
        self.peer_why = ""
        self.baseline: servers.Proc | None = None
        self.report = Report(meta=self._meta())
        self.L: dict[str, Any] = self.report.limits
        self.started = time.monotonic()

    # --- set-up ---------------------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        model = ""
        with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
            names = (ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name"))
            model = next(names, "")
        return {
            "mode": self.p.name,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": commit,
            "command": "python -m bench " + " ".join(sys.argv[1:]),
            "cpus": os.cpu_count(),
            "cpu_model": model,
            "memory_gib": psutil.virtual_memory().total / GiB,
            "python": platform.python_version(),
            "workers": self.workers,
            "loadgen": "wrk -t1" if self.use_wrk else "python asyncio (wrk not installed or --no-wrk)",
            "baseline": "nginx sendfile"
            if self.use_nginx
            else "python sendfile (nginx not installed or --no-nginx)",
            "profile": self.p.__dict__,
        }

    def section(self, name: str) -> None:
        log(f"{name} (t+{time.monotonic() - self.started:.0f}s)")

    def start(self, proc: servers.Proc) -> Any:
        self.procs.append(proc)
        return proc.start()  # type: ignore[attr-defined]

    def close(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop()
        if self.coffer is not None:
            self.coffer.stop()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            log(f"kept {self.work}")

    def make_source(self) -> None:
        """The big object's bytes, on disk (sent with sendfile), and their SHA-256s."""
        p = self.p
        self.src = self.work / "src.bin"
        data = limits.random_buffer(p.big)
        self.src.write_bytes(data)
        view = memoryview(data)
        q = p.big // p.streams
        self.sha_all = hashlib.sha256(view).hexdigest()
        self.sha_streams = [hashlib.sha256(view[i * q : (i + 1) * q]).hexdigest() for i in range(p.streams)]
        self.sha_parts = [hashlib.sha256(view[o : o + p.part]).hexdigest() for o in range(0, p.big, p.part)]
        self.small_body = b"abcdefghijklmnopqrstuvwxyz012345" * 128  # 4 KiB, printable (wrk scripts)

    def start_coffer(self) -> None:
        from coffer.config import Settings
        from coffer.server import prepare

        sys.path.insert(0, str(ROOT))
        from tests.harness import CofferServer

        data = self.work / "coffer"
        settings = Settings(data_dir=str(data), log_level="warning")
        info = prepare(settings)
        seconds = bulk_bucket(settings, info["org_id"], info["admin"], "huge", self.p.huge_keys)
        self.L["bulk_insert"] = {"keys": self.p.huge_keys, "seconds": seconds}
        log(f"{self.p.huge_keys:,} keys written straight into the store in {seconds:.1f}s")
        self.coffer = CofferServer(data_dir=data, workers=self.workers, extra_args=["--log-level", "warning"])
        self.coffer.start()
        key = self.coffer.mint_key()
        self.ep = Endpoint(
            "coffer", "127.0.0.1", self.coffer.s3_port, Signer(key["accessKeyId"], key["secretKey"])
        )
        for bucket in ("big", "small", "list"):
            self.ep.create_bucket(bucket)

    def start_peer(self) -> None:
        if self.args.no_peer:
            self.peer_why = "--no-peer"
            return
        python = servers.moto_python(self.args.moto_python)
        if python is None:
            self.peer_why = "moto not installed (python -m bench --install-deps)"
            log(f"no peer: {self.peer_why}")
            return
        self.peer = self.start(servers.Moto(python, self.work / "moto"))
        assert self.peer is not None
        self.report.meta["peer"] = f"moto {self.peer.version} server (Werkzeug; no signature checks)"
        self.pep = Endpoint(
            "moto",
            "127.0.0.1",
            self.peer.port,
            Signer("AKIABENCHBENCHBENCH", "x" * 40),
            checks_signatures=False,
        )
        for bucket in ("big", "small", "list"):
            self.pep.create_bucket(bucket)

    def endpoints(self) -> list[Endpoint]:
        assert self.ep is not None
        return [self.ep] + ([self.pep] if self.pep is not None else [])

    def blob_file(self, bucket: str, key: str) -> Path:
        """Where Coffer keeps an object's (single-part) body, for nginx to serve the same file."""
        db = sqlite3.connect(f"file:{self.work / 'coffer' / 'coffer.db'}?mode=ro", uri=True)
        try:
            row = db.execute(
                "SELECT parts FROM objects WHERE bucket = ? AND key = ? AND is_latest = 1", (bucket, key)
            ).fetchone()
        finally:
            db.close()
        blob = json.loads(row[0])[0]["blob"]
        return Path(blob[:2]) / blob[2:4] / blob

    # --- the machine ----------------------------------------------------------------------------
    def measure_limits(self) -> None:
        self.section("machine limits: hashing, disk, small durable files, SQLite commits")
        p = self.p
        data = limits.random_buffer(p.hash_bytes)
        L = self.L
        L["md5"] = limits.hash_rate("md5", data)
        L["sha256"] = limits.hash_rate("sha256", data)
        L["crc64nvme"] = limits.hash_rate("crc64nvme", data)
        L["md5_sha256_parallel"] = limits.md5_sha256_parallel(data)
        L["md5_sha256_series"] = limits.md5_sha256_series(data)
        del data
        L["disk_write_sync"] = limits.disk_write_sync(self.work, p.disk_bytes)
        L["small_files_c1"] = limits.small_file_creates(self.work, p.small_files, 1)
        L["small_files_c16"] = limits.small_file_creates(self.work, p.small_files * 2, 16)
        L["sqlite_commits"] = limits.sqlite_commits(self.work, p.small_files)
        cores = os.cpu_count() or 1
        L["put_bound_single"] = min(L["md5"], L["disk_write_sync"])
        # Several streams: every byte costs one MD5 and one SHA-256 somewhere, on `cores` cores.
        L["put_bound_parallel"] = min(cores * L["md5_sha256_series"], L["disk_write_sync"])
        rows = [
            ("MD5, one core, 1 MiB chunks", L["md5"] / MB, "MB/s", ""),
            ("SHA-256, one core", L["sha256"] / MB, "MB/s", ""),
            ("CRC64NVME (awscrt), one core", L["crc64nvme"] / MB, "MB/s", "Coffer's default stored checksum"),
            (
                "MD5 || SHA-256, two threads",
                L["md5_sha256_parallel"] / MB,
                "MB/s",
                "what a signed PUT stream can hash",
            ),
            ("MD5 then SHA-256, one core", L["md5_sha256_series"] / MB, "MB/s", ""),
            (f"disk: write {size_label(p.disk_bytes)} + fsync", L["disk_write_sync"] / MB, "MB/s", ""),
            (
                "durable 4 KiB creates, c1",
                L["small_files_c1"],
                "files/s",
                "create+write+fsync file+fsync dir",
            ),
            ("durable 4 KiB creates, c16", L["small_files_c16"], "files/s", "16 threads"),
            ("SQLite one-row commits (WAL, FULL)", L["sqlite_commits"], "commits/s", "single writer"),
        ]
        for name, value, unit, note in rows:
            self.report.add(Row("machine", name, unit, value, note=note))

    # --- large objects --------------------------------------------------------------------------
    def large(self) -> None:
        p = self.p
        big = size_label(p.big)
        q = p.big // p.streams
        self.section(f"large objects: {big} single stream, {p.streams}x{size_label(q)}, multipart")
        # GETs are cheap and loopback speed swings with how the two vCPUs get shared:
        # every GET figure (Coffer, moto, the baseline) is the best of at least 5.
        get_reps = max(p.reps, 5)
        res: dict[str, dict[str, float]] = {}
        cpu: dict[str, float] = {}
        for ep in self.endpoints():
            r = res[ep.name] = {}
            pid = self.coffer.proc.pid if ep.name == "coffer" else (self.peer.pid if self.peer else 0)
            with open(self.src, "rb") as f, ep.conn() as c:

                def put_one(ep: Endpoint = ep, c: Conn = c, f: Any = f) -> float:
                    t0 = time.perf_counter()
                    ep.put(c, "/big/one", FileBody(f, 0, p.big), self.sha_all)
                    return p.big / (time.perf_counter() - t0)

                def get_one(ep: Endpoint = ep, c: Conn = c) -> float:
                    t0 = time.perf_counter()
                    assert ep.get(c, "/big/one").length == p.big
                    return p.big / (time.perf_counter() - t0)

                c0 = tree_cpu(pid)
                r["put"], r["put_samples"] = best_of(p.reps, put_one)  # type: ignore[assignment]
                cpu[f"{ep.name}.put"] = (tree_cpu(pid) - c0) / (p.reps * p.big / GiB)
                c0 = tree_cpu(pid)
                r["get"], r["get_samples"] = best_of(get_reps, get_one)  # type: ignore[assignment]
                cpu[f"{ep.name}.get"] = (tree_cpu(pid) - c0) / (get_reps * p.big / GiB)

            def par_put(ep: Endpoint = ep) -> float:
                def one(i: int) -> None:
                    with open(self.src, "rb") as f, ep.conn() as c:
                        ep.put(c, f"/big/par-{i}", FileBody(f, i * q, q), self.sha_streams[i])

                t0 = time.perf_counter()
                with ThreadPoolExecutor(p.streams) as pool:
                    list(pool.map(one, range(p.streams)))
                return p.streams * q / (time.perf_counter() - t0)

            def par_get(ep: Endpoint = ep) -> float:
                return self.parallel_get(
                    ep.host, ep.port, [(ep, f"/big/par-{i}") for i in range(p.streams)], q
                )

            r["par_put"], _ = best_of(p.reps, par_put)
            r["par_get"], _ = best_of(get_reps, par_get)

            def mpu(ep: Endpoint = ep) -> float:
                with open(self.src, "rb") as f:
                    t0 = time.perf_counter()
                    ep.multipart("/big/mpu", FileBody(f, 0, p.big), p.part, self.sha_parts, p.streams)
                    return p.big / (time.perf_counter() - t0)

            r["mpu"], _ = best_of(p.reps, mpu)
            log(
                f"  {ep.name}: "
                + ", ".join(f"{k} {v / MB:,.0f} MB/s" for k, v in r.items() if "samples" not in k)
            )

        # The same files, served by a zero-copy server, read by the same client.
        base = self.baselines(q)
        self.L.update(base)
        co, m = res["coffer"], res.get("moto", {})
        L = self.L
        parts = -(-p.big // p.part)
        hash_floor = (GiB / L["md5"] + GiB / L["sha256"]) if "md5" in L else float("nan")
        rows = [
            Row(
                "large",
                f"{big} GET, one stream",
                "MB/s",
                co["get"] / MB,
                m.get("get", 0) / MB or None,
                base["loopback_get"] / MB,
                f"{self.report.meta['baseline']} GET",
                f"Coffer CPU {cpu['coffer.get']:.2f} s/GiB",
                {"samples": co["get_samples"]},
            ),
            Row(
                "large",
                f"{big} PUT, one stream, signed payload, durable",
                "MB/s",
                co["put"] / MB,
                m.get("put", 0) / MB or None,
                (L.get("put_bound_single") or 0) / MB or None,
                "min(MD5 1 core, disk+fsync)",
                f"Coffer CPU {cpu['coffer.put']:.2f} s/GiB, of which MD5+SHA-256 {hash_floor:.2f}",
                {"samples": co["put_samples"]},
            ),
            Row(
                "large",
                f"{p.streams}x{size_label(q)} GET, parallel",
                "MB/s",
                co["par_get"] / MB,
                m.get("par_get", 0) / MB or None,
                base["loopback_get_parallel"] / MB,
                f"{p.streams} streams from the GET baseline",
            ),
            Row(
                "large",
                f"{p.streams}x{size_label(q)} PUT, parallel, signed, durable",
                "MB/s",
                co["par_put"] / MB,
                m.get("par_put", 0) / MB or None,
                (L.get("put_bound_parallel") or 0) / MB or None,
                "min(coresx(MD5+SHA-256), disk)",
            ),
            Row(
                "large",
                f"{big} multipart, {parts}x{size_label(p.part)}, {p.streams} connections",
                "MB/s",
                co["mpu"] / MB,
                m.get("mpu", 0) / MB or None,
                (L.get("put_bound_parallel") or 0) / MB or None,
                "min(coresx(MD5+SHA-256), disk)",
            ),
            Row(
                "client",
                f"client alone: {big} GET from the GET baseline",
                "MB/s",
                base["loopback_get"] / MB,
                note="raw socket recv_into, 1 MiB buffer (the GET bound above)",
            ),
            Row(
                "client",
                f"client alone: {big} PUT into a discard sink",
                "MB/s",
                base["client_put_sink"] / MB,
                note="sendfile → Python recv_into sink: what the PUT client costs",
            ),
        ]
        if "curl_get" in base:
            rows.append(
                Row(
                    "client",
                    f"curl: {big} GET from the GET baseline",
                    "MB/s",
                    base["curl_get"] / MB,
                    note="for comparison with the raw client",
                )
            )
        for row in rows:
            self.report.add(row)

    def parallel_get(
        self, host: str, port: int, targets: list[tuple[Endpoint | None, str]], size: int
    ) -> float:
        def one(item: tuple[Endpoint | None, str]) -> None:
            ep, path = item
            with Conn(host, port) as c:
                r = c.request("GET", path, discard=True).check(200) if ep is None else ep.get(c, path)
                assert r.length == size, (r.length, size)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(len(targets)) as pool:
            list(pool.map(one, targets))
        return len(targets) * size / (time.perf_counter() - t0)

    def base_server(self) -> servers.Proc:
        """The zero-copy file server (nginx, else Python sendfile) over Coffer's blob directory."""
        if self.baseline is None:
            root = self.work / "coffer" / "blobs"
            if self.use_nginx:
                self.baseline = self.start(servers.Nginx(root, self.work / "nginx", self.workers))
            else:
                self.baseline = self.start(servers.PySendfile(root, self.work / "sendfile"))
        return self.baseline

    def baselines(self, q: int) -> dict[str, float]:
        p = self.p
        base = self.base_server()
        one = "/" + str(self.blob_file("big", "one"))
        pars = ["/" + str(self.blob_file("big", f"par-{i}")) for i in range(p.streams)]
        out: dict[str, float] = {}
        with Conn("127.0.0.1", base.port) as c:

            def get() -> float:
                t0 = time.perf_counter()
                assert c.request("GET", one, discard=True).check(200).length == p.big
                return p.big / (time.perf_counter() - t0)

            out["loopback_get"], _ = best_of(max(p.reps, 5), get)
        out["loopback_get_parallel"], _ = best_of(
            max(p.reps, 5), lambda: self.parallel_get("127.0.0.1", base.port, [(None, x) for x in pars], q)
        )
        if shutil.which("curl"):
            speeds = []
            for _ in range(max(1, p.reps)):
                cmd = [
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{speed_download}",
                    f"http://127.0.0.1:{base.port}{one}",
                ]
                speeds.append(float(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout))
            out["curl_get"] = max(speeds)
        sink = self.start(servers.Sink(self.work / "sink"))
        with open(self.src, "rb") as f, Conn("127.0.0.1", sink.port) as c:

            def put() -> float:
                t0 = time.perf_counter()
                c.request("PUT", "/x", body=FileBody(f, 0, p.big)).check(200)
                return p.big / (time.perf_counter() - t0)

            out["client_put_sink"], _ = best_of(p.reps, put)
        sink.stop()
        return out

    # --- small objects --------------------------------------------------------------------------
    def load(self, ep: Endpoint | None, port: int, pool: list[bytes], conc: int, pid: int) -> loadgen.Load:
        c0 = tree_cpu(pid) if pid else 0.0
        result = loadgen.run("127.0.0.1", port, pool, conc, self.p.seconds, use_wrk=self.use_wrk)
        if pid and result.requests:
            result.cpu_us = (tree_cpu(pid) - c0) / result.requests * 1e6
        if result.errors:
            log(f"  WARNING: {result.errors} errors of {result.requests} requests on port {port}")
        return result

    def small(self) -> None:
        p = self.p
        self.section("small objects: 4 KiB GET and PUT at c1 and c16")
        body = self.small_body
        gets = [f"/small/s/{i:05d}" for i in range(p.small_objects)]
        puts = [f"/small/p/{i:05d}" for i in range(p.put_pool)]
        for ep in self.endpoints():
            self.fill(ep, gets, body, 16)
        results: dict[str, dict[str, loadgen.Load]] = {}
        assert self.ep is not None
        cpid = self.coffer.proc.pid
        for ep in self.endpoints():
            pid = cpid if ep.name == "coffer" else (self.peer.pid if self.peer else 0)
            r = results[ep.name] = {}
            pools = {
                "GET signed": ep.signed_pool("GET", gets),
                "PUT signed": ep.signed_pool("PUT", puts, body),
            }
            if ep.checks_signatures:
                pools["GET presigned"] = ep.presigned_pool("GET", gets)
                pools["PUT presigned"] = ep.presigned_pool(
                    "PUT", [x.replace("/p/", "/q/") for x in puts], body
                )
            for label, pool in pools.items():
                for conc in (1, 16):
                    r[f"{label} c{conc}"] = self.load(ep, ep.port, pool, conc, pid)
            log(f"  {ep.name}: " + ", ".join(f"{k} {v.rate:,.0f}/s" for k, v in r.items()))
        # Ceilings: the HTTP stack with nothing behind it, and nginx serving a 4 KiB file.
        hello = self.start(servers.HelloASGI(self.work / "asgi", self.workers))
        ceil: dict[str, loadgen.Load] = {}
        for conc in (1, 16):
            ceil[f"GET c{conc}"] = self.load(
                None, hello.port, [loadgen.raw_request("GET", "/x", [("Host", "h")])], conc, hello.pid
            )
            ceil[f"PUT c{conc}"] = self.load(
                None, hello.port, [loadgen.raw_request("PUT", "/x", [("Host", "h")], body)], conc, hello.pid
            )
        hello.stop()
        small_blob = "/" + str(self.blob_file("small", "s/00000"))
        ceil["nginx GET c16"] = self.load(
            None, self.base_server().port, [loadgen.raw_request("GET", small_blob, [("Host", "h")])], 16, 0
        )
        log("  ceilings: " + ", ".join(f"{k} {v.rate:,.0f}/s" for k, v in ceil.items()))
        self.L["small_ceilings"] = {k: v.as_dict() for k, v in ceil.items()}
        c, m = results["coffer"], results.get("moto", {})
        for mode in ("GET signed", "GET presigned", "PUT signed", "PUT presigned"):
            for conc in (1, 16):
                load = c[f"{mode} c{conc}"]
                peer = m.get(f"{mode} c{conc}") or m.get(f"{mode.split()[0]} signed c{conc}")
                bound: float | None
                if mode.startswith("GET"):
                    bound, bound_name = ceil[f"GET c{conc}"].rate, f"uvicorn hello app c{conc}"
                else:
                    bound = self.L.get(f"small_files_c{conc}")
                    bound_name = f"durable 4 KiB creates c{conc}"
                cpu_us = load.cpu_us
                note = f"p50 {load.p50_ms:.2f} ms, p99 {load.p99_ms:.2f} ms"
                if cpu_us:
                    note += f"; server CPU {cpu_us:.0f} µs/op"
                if load.errors:
                    note += f"; {load.errors} ERRORS"
                self.report.add(
                    Row(
                        "small",
                        f"4 KiB {mode}, c{conc}",
                        "ops/s",
                        load.rate,
                        peer.rate if peer else None,
                        bound,
                        bound_name,
                        note,
                        {
                            "coffer": load.as_dict(),
                            "peer": peer.as_dict() if peer else None,
                            "cpu_us": cpu_us,
                        },
                    )
                )
        n = ceil["nginx GET c16"]
        self.report.add(
            Row("small", "ceiling: nginx 4 KiB GET, c16", "ops/s", n.rate, note="the machine, no Python")
        )
        for k in ("GET c16", "PUT c16"):
            h = ceil[k]
            note = f"p50 {h.p50_ms:.2f} ms; CPU {h.cpu_us or 0:.0f} µs/op"
            self.report.add(Row("small", f"ceiling: uvicorn hello app 4 KiB {k}", "ops/s", h.rate, note=note))

    def fill(self, ep: Endpoint, paths: list[str], body: bytes, threads: int) -> float:
        """PUT `body` at every path from `threads` connections; returns PUTs per second."""
        lanes = [paths[i::threads] for i in range(threads)]

        def lane(items: list[str]) -> None:
            with ep.conn() as c:
                for path in items:
                    ep.put(c, path, body)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lane, lanes))
        return len(paths) / (time.perf_counter() - t0)

    # --- listings -------------------------------------------------------------------------------
    def listing(self) -> None:
        p = self.p
        n = p.list_keys
        self.section(f"ListObjectsV2: {n:,} keys (real PUTs) and {p.huge_keys:,} keys (bulk)")
        paths = [f"/list/{key_name(i)}" for i in range(n)]
        walks: dict[str, dict[str, float]] = {}
        for ep in self.endpoints():
            w = walks[ep.name] = {"fill": self.fill(ep, paths, b"x" * 64, 16)}
            pages = 0
            with ep.conn() as c:
                t0 = time.perf_counter()
                while time.perf_counter() - t0 < self.p.seconds or pages == 0:
                    token, keys = "", 0
                    while True:
                        count, token = ep.list_page(c, "list", token=token)
                        pages, keys = pages + 1, keys + count
                        if not token:
                            break
                    assert keys == n, (ep.name, keys, n)
                w["walk"] = pages / (time.perf_counter() - t0)
            starts = [""] + [key_name(i * 1000 - 1) for i in range(1, -(-n // 1000))]
            query = [("list-type", "2"), ("max-keys", "1000")]
            pool = [
                loadgen.raw_request(
                    "GET",
                    ep.target("/list", query + ([("start-after", s)] if s else [])),
                    ep.headers("GET", "/list", query + ([("start-after", s)] if s else [])),
                )
                for s in starts
            ]
            pid = self.coffer.proc.pid if ep.name == "coffer" else 0
            w["c4"] = self.load(ep, ep.port, pool, 4, pid).rate
            log(f"  {ep.name}: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in w.items()))
        assert self.ep is not None
        import random

        rng = random.Random(7)
        lat: list[float] = []
        with self.ep.conn() as c:
            t0 = time.perf_counter()
            count, _ = self.ep.list_page(c, "huge")
            first = (time.perf_counter() - t0) * 1000
            assert count == min(1000, p.huge_keys)
            for _ in range(p.page_samples):
                start = key_name(rng.randrange(p.huge_keys))
                t0 = time.perf_counter()
                count, _ = self.ep.list_page(c, "huge", start_after=start)
                lat.append((time.perf_counter() - t0) * 1000)
        c_, m = walks["coffer"], walks.get("moto", {})
        huge = f"{p.huge_keys:,}"
        self.report.add(
            Row(
                "list",
                f"ListObjectsV2 {n:,} keys, pages of 1000, c1 walk",
                "pages/s",
                c_["walk"],
                m.get("walk"),
                note="continuation tokens, one connection",
            )
        )
        self.report.add(
            Row(
                "list",
                f"ListObjectsV2 {n:,} keys, pages of 1000, c4",
                "pages/s",
                c_["c4"],
                m.get("c4"),
                note="start-after pool, wrk",
            )
        )
        self.report.add(
            Row(
                "list",
                f"one page of 1000 from {huge} keys, p50",
                "ms",
                pct(lat, 0.5),
                note=f"random start-after, {len(lat)} samples; first page {first:.1f} ms",
                detail={"samples_ms": lat, "first_ms": first},
            )
        )
        self.report.add(
            Row(
                "list",
                f"one page of 1000 from {huge} keys, p99",
                "ms",
                pct(lat, 0.99),
                note=f"max {max(lat):.1f} ms",
            )
        )
        self.report.add(
            Row(
                "list",
                f"fill: 64-byte PUTs c16 ({n:,} keys)",
                "ops/s",
                c_["fill"],
                m.get("fill"),
                note="Python client threads (setup, not a target)",
            )
        )

    # --- control plane --------------------------------------------------------------------------
    def keys(self) -> None:
        self.section("access-key minting through the API, c16")
        srv = self.coffer
        host = f"127.0.0.1:{srv.api_port}"
        body = json.dumps({"durationSeconds": 3600}).encode()
        headers = [
            ("Host", host),
            ("Authorization", f"Bearer {srv.admin_token}"),
            ("Content-Type", "application/json"),
        ]
        pool = [loadgen.raw_request("POST", "/v1/cwobject/access-key", headers, body)]
        load = self.load(None, srv.api_port, pool, 16, srv.proc.pid)
        ok = load.requests - load.errors
        rate = ok / load.seconds if load.seconds else 0.0
        note = f"p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms; server CPU {load.cpu_us or 0:.0f} µs/key"
        if load.errors:
            note += f"; {load.errors} ERRORS"
        self.report.add(
            Row(
                "keys",
                "access keys minted via POST /v1/cwobject/access-key, c16",
                "keys/s",
                rate,
                None,
                self.L.get("sqlite_commits"),
                "SQLite one-row commits",
                note,
                load.as_dict(),
            )
        )

    # --- per-request CPU ------------------------------------------------------------------------
    def cpu_costs(self) -> None:
        self.section("per-request CPU: SigV4, policy, authorize_s3")
        assert self.ep is not None
        get = self.report.row("4 KiB GET signed, c16")
        rate = get.value if get and get.value else 0.0
        cores = os.cpu_count() or 1
        budget = cores * 1e6 / rate if rate else None  # µs of CPU per GET at the measured rate
        bname = "CPU µs per GET c16" if budget else ""
        sig = micro.sigv4(self.p.sigv4_iterations)
        for case, us in sig.items():
            self.report.add(
                Row(
                    "cpu",
                    f"SigV4 verify: {case}",
                    "µs",
                    us,
                    bound=budget,
                    bound_name=bname,
                    note="bench/sigv4_bench.py; moto verifies nothing",
                )
            )
        pol = micro.policy(self.p.policy_iterations)
        for case, us in pol.items():
            self.report.add(
                Row(
                    "cpu",
                    f"policy decision: {case}",
                    "µs",
                    us,
                    bound=budget,
                    bound_name=bname,
                    note="bench/policy_bench.py (100 policies x 10 statements)",
                )
            )
        for case, us in micro.authz(self.p.policy_iterations).items():
            self.report.add(
                Row(
                    "cpu",
                    f"S3 door, 100 policies: {case}",
                    "µs",
                    us,
                    bound=budget,
                    bound_name=bname,
                    note="bench/authz_bench.py (a node holding 100 policies x 10 statements)",
                )
            )
        akid, rounds = self.ep.signer.access_key_id, max(1000, self.p.sigv4_iterations)
        door = micro.authorize_s3(str(self.work / "coffer"), akid, "small", rounds)
        self.report.add(
            Row(
                "cpu",
                "S3 door, this run's store: GetObject (authorize_s3)",
                "µs",
                door,
                bound=budget,
                bound_name=bname,
                note=_door_note(),
            )
        )

    # --- memory ---------------------------------------------------------------------------------
    def memory(self) -> None:
        p = self.p
        self.section(f"memory: {size_label(p.memory)} streamed into and out of Coffer")
        chunk = os.urandom(MiB)
        out: dict[str, dict[str, float]] = {}
        for ep in self.endpoints():
            size = p.memory if ep.name == "coffer" else p.peer_memory
            pid = self.coffer.proc.pid if ep.name == "coffer" else (self.peer.pid if self.peer else 0)
            sampler = servers.RssSampler(pid)
            before_total, before_single = sampler.snapshot()
            t0 = time.perf_counter()
            with sampler, ep.conn() as c:
                ep.put(c, "/big/mem", RepeatBody(chunk, size), UNSIGNED)
                assert ep.get(c, "/big/mem").length == size
            elapsed = time.perf_counter() - t0
            out[ep.name] = {
                "size": size,
                "before": before_total,
                "peak": sampler.peak_total,
                "growth": sampler.peak_total - before_total,
                "single_before": before_single,
                "single_peak": sampler.peak_single,
                "samples": sampler.samples,
                "seconds": elapsed,
            }
            with ep.conn() as c:
                ep.call(c, "DELETE", "/big/mem").check(204, 200)
        co = out["coffer"]
        m = out.get("moto")
        self.report.add(
            Row(
                "memory",
                f"peak RSS, {size_label(p.memory)} PUT then GET (server, all processes)",
                "MiB",
                co["peak"] / MiB,
                note=f"before {co['before'] / MiB:,.0f} MiB; {co['samples']} samples",
                detail=co,
            )
        )
        self.report.add(
            Row(
                "memory",
                "RSS growth while streaming",
                "MiB",
                co["growth"] / MiB,
                m["growth"] / MiB if m else None,
                co["size"] / MiB,
                "object size",
                f"moto streamed {size_label(int(m['size']))}" if m else "",
                detail={"peer": m},
            )
        )

    # --- targets --------------------------------------------------------------------------------
    def judge(self) -> None:
        rep, L, p = self.report, self.L, self.p
        big = size_label(p.big)

        def row(name: str) -> Row:
            r = rep.row(name)
            assert r is not None, name
            return r

        t = rep.targets
        get = row(f"{big} GET, one stream")
        t.append(
            Target(
                f"{big} GET ≥ 70% of loopback",
                "≥ 0.70x GET baseline",
                f"{get.value:,.0f} MB/s = {get.vs_bound:.2f}x {L['loopback_get'] / MB:,.0f} MB/s",
                (get.vs_bound or 0) >= 0.7,
            )
        )
        put = row(f"{big} PUT, one stream, signed payload, durable")
        t.append(
            Target(
                f"{big} PUT signed, durable ≥ 70% of min(MD5, disk)",
                "≥ 0.70x bound",
                f"{put.value:,.0f} MB/s = {put.vs_bound:.2f}x min(MD5 {L['md5'] / MB:,.0f}, "
                f"disk {L['disk_write_sync'] / MB:,.0f}) MB/s",
                (put.vs_bound or 0) >= 0.7,
            )
        )
        g16 = row("4 KiB GET signed, c16")
        peer_ok = g16.vs_peer is not None and g16.vs_peer >= 10
        vs = f", {g16.vs_peer:.1f}x moto" if g16.vs_peer else f", no peer ({self.peer_why})"
        t.append(
            Target(
                "4 KiB GET c16 ≥ 5,000 ops/s and ≥ 10x moto",
                "≥ 5,000 and ≥ 10x",
                f"{g16.value:,.0f} ops/s{vs}",
                (g16.value or 0) >= 5000 and (peer_ok or g16.vs_peer is None),
            )
        )
        p16 = row("4 KiB PUT signed, c16")
        t.append(
            Target(
                "4 KiB durable PUT c16 ≥ 1,000 ops/s",
                "≥ 1,000",
                f"{p16.value:,.0f} ops/s = {p16.vs_bound:.2f}x durable creates c16",
                (p16.value or 0) >= 1000,
            )
        )
        walk = row(f"ListObjectsV2 {p.list_keys:,} keys, pages of 1000, c1 walk")
        t.append(
            Target(
                f"ListObjectsV2 {p.list_keys:,} keys ≥ 100 pages/s",
                "≥ 100",
                f"{walk.value:,.0f} pages/s",
                (walk.value or 0) >= 100,
            )
        )
        p99 = row(f"one page of 1000 from {p.huge_keys:,} keys, p99")
        p50 = row(f"one page of 1000 from {p.huge_keys:,} keys, p50")
        t.append(
            Target(
                f"a page from {p.huge_keys:,} keys ≤ 50 ms",
                "≤ 50 ms (p99)",
                f"p50 {p50.value:.1f} ms, p99 {p99.value:.1f} ms",
                (p99.value or 1e9) <= 50,
            )
        )
        keys = row("access keys minted via POST /v1/cwobject/access-key, c16")
        t.append(
            Target(
                "key minting ≥ 1,000 keys/s",
                "≥ 1,000",
                f"{keys.value:,.0f} keys/s",
                (keys.value or 0) >= 1000,
            )
        )
        grow = row("RSS growth while streaming")
        peak = next(r for r in rep.rows if r.name.startswith("peak RSS"))
        t.append(
            Target(
                f"memory flat while {size_label(p.memory)} streams in and out",
                "growth < 64 MiB",
                f"growth {grow.value:,.0f} MiB (peak {peak.value:,.0f} MiB)",
                (grow.value or 1e9) < 64,
            )
        )

    # --- the run --------------------------------------------------------------------------------
    def run(self) -> Report:
        sections = self.args.sections
        self.make_source()
        if "machine" in sections:
            self.measure_limits()
        self.section("starting Coffer (embedded SQLite) and the peer")
        self.start_coffer()
        self.start_peer()
        if "large" in sections:
            self.large()
        if "small" in sections:
            self.small()
        if "list" in sections:
            self.listing()
        if "keys" in sections:
            self.keys()
        if "cpu" in sections:
            self.cpu_costs()
        if "federation" in sections:
            federation_bench.suite(self)  # rows in machine, cpu and keys
        if "memory" in sections:
            self.memory()
        if sections == ALL_SECTIONS:
            self.judge()
        self.report.meta["seconds"] = time.monotonic() - self.started
        return self.report


ALL_SECTIONS = frozenset({"machine", "large", "small", "list", "keys", "federation", "cpu", "memory"})


def _door_note() -> str:
    return "node.authz: org policies (the admin's starter policy) + bucket policy, compiled, cached"


def install_deps() -> int:
    """nginx and wrk from apt; moto[server] into its own venv (it pins boto versions)."""
    rc = 0
    if shutil.which("apt-get") and (not servers.nginx_binary() or not loadgen.have_wrk()):
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        rc |= subprocess.call([*sudo, "apt-get", "update"])
        rc |= subprocess.call([*sudo, "apt-get", "install", "-y", "nginx-light", "wrk"])
    if servers.moto_python() is None:
        venv = servers.MOTO_VENV
        venv.parent.mkdir(parents=True, exist_ok=True)
        rc |= subprocess.call([sys.executable, "-m", "venv", str(venv)])
        rc |= subprocess.call([str(venv / "bin" / "pip"), "install", "-q", "moto[server]"])
    print(f"nginx: {servers.nginx_binary()}, wrk: {shutil.which('wrk')}, moto: {servers.moto_python()}")
    return rc


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller sizes, every row, under 2 minutes")
    mode.add_argument(
        "--selftest", action="store_true", help="tiny sizes, Python fallbacks, seconds; checks the harness"
    )
    mode.add_argument(
        "--install-deps", action="store_true", help="apt-get nginx + wrk; moto[server] in its own venv"
    )
    ap.add_argument("--workers", type=int, default=2, help="Coffer worker processes (default 2)")
    ap.add_argument("--no-peer", action="store_true", help="skip moto")
    ap.add_argument("--moto-python", help="an interpreter that has moto[server] installed")
    ap.add_argument(
        "--no-wrk", action="store_true", help="use the asyncio load generator even if wrk is installed"
    )
    ap.add_argument(
        "--no-nginx", action="store_true", help="use the Python sendfile baseline even if nginx is installed"
    )
    ap.add_argument(
        "--sections",
        default=",".join(sorted(ALL_SECTIONS)),
        help="comma list of: " + ", ".join(sorted(ALL_SECTIONS)),
    )
    ap.add_argument(
        "--json", type=Path, help="where to write the JSON (default bench/results/<time>-<mode>.json)"
    )
    ap.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    ap.add_argument("--tmp", help="directory for the run's data (default: the system temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the run's data directory")
    args = ap.parse_args(argv)
    args.sections = frozenset(s.strip() for s in args.sections.split(",") if s.strip())
    if args.sections - ALL_SECTIONS:
        ap.error(f"unknown sections: {', '.join(sorted(args.sections - ALL_SECTIONS))}")
    if args.selftest:
        args.no_wrk = args.no_nginx = True
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.install_deps:
        return install_deps()
    profile = PROFILES["selftest" if args.selftest else "quick" if args.quick else "full"]
    bench = Bench(args, profile)
    try:
        report = bench.run()
    finally:
        bench.close()
    text = report.render()
    print(text)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.json or RESULTS / f"{stamp}-{profile.name}.json"
    report.write_json(path)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    log(f"wrote {path} ({report.meta['seconds']:.0f}s)")
    return 0
