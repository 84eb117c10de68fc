"""`large` (and the `client` rows): one big object PUT and GET on one stream, N streams in
parallel, a multipart upload; beside the zero-copy file server serving the very blob files
Coffer wrote, read by the same client, and the client alone (into a discard sink)."""

from __future__ import annotations

import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench import servers
from bench.client import Conn, FileBody
from bench.common import GiB, best_of, log, tree_cpu
from bench.endpoint import Endpoint
from bench.profiles import size_label
from bench.report import MB, Row
from bench.scenarios.base import Scenario


@dataclass
class Transfers:
    """One endpoint's large-object rates (bytes/s, best of the samples) and CPU per GiB."""

    put: float = 0.0
    put_samples: list[float] = field(default_factory=list)
    get: float = 0.0
    get_samples: list[float] = field(default_factory=list)
    parallel_put: float = 0.0
    parallel_get: float = 0.0
    multipart: float = 0.0
    put_cpu_per_gib: float = 0.0
    get_cpu_per_gib: float = 0.0

    def summary(self) -> str:
        rates = {
            "put": self.put,
            "get": self.get,
            "par_put": self.parallel_put,
            "par_get": self.parallel_get,
            "mpu": self.multipart,
        }
        return ", ".join(f"{name} {rate / MB:,.0f} MB/s" for name, rate in rates.items())


def parallel_get(host: str, port: int, targets: list[tuple[Endpoint | None, str]], size: int) -> float:
    """GET every (endpoint, path) at once, one connection each; bytes/s. A None endpoint is a
    plain file server: unsigned GETs."""

    def one(item: tuple[Endpoint | None, str]) -> None:
        endpoint, path = item
        with Conn(host, port) as conn:
            if endpoint is None:
                got = conn.request("GET", path, discard=True).check(200)
            else:
                got = endpoint.get(conn, path)
            assert got.length == size, (got.length, size)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(targets)) as pool:
        list(pool.map(one, targets))
    return len(targets) * size / (time.perf_counter() - t0)


class LargeObjects(Scenario):
    section = "large"

    @property
    def get_reps(self) -> int:
        # GETs are cheap and loopback speed swings with how the two vCPUs get shared:
        # every GET figure (Coffer, moto, the baseline) is the best of at least 5.
        return max(self.profile.reps, 5)

    def run(self) -> None:
        p = self.profile
        self.env.section(
            f"large objects: {size_label(p.big)} single stream, "
            f"{p.streams}x{size_label(p.stream_size)}, multipart"
        )
        measured: dict[str, Transfers] = {}
        for endpoint in self.env.endpoints():
            got = measured[endpoint.name] = self.measure(endpoint)
            log(f"  {endpoint.name}: {got.summary()}")
        # The same files, served by a zero-copy server, read by the same client.
        baseline = self.measure_baseline()
        self.env.limits.update(baseline)
        self.add_rows(measured["coffer"], measured.get("moto"), measured.get("swift"), baseline)

    def measure(self, endpoint: Endpoint) -> Transfers:
        p, source = self.profile, self.env.source
        stream = p.stream_size
        pid = self.env.server_pid(endpoint)
        got = Transfers()
        with open(source.path, "rb") as f, endpoint.conn() as conn:

            def put_one() -> float:
                t0 = time.perf_counter()
                endpoint.put(conn, "/big/one", FileBody(f, 0, p.big), source.sha256)
                return p.big / (time.perf_counter() - t0)

            def get_one() -> float:
                t0 = time.perf_counter()
                assert endpoint.get(conn, "/big/one").length == p.big
                return p.big / (time.perf_counter() - t0)

            cpu_before = tree_cpu(pid)
            got.put, got.put_samples = best_of(p.reps, put_one)
            got.put_cpu_per_gib = (tree_cpu(pid) - cpu_before) / (p.reps * p.big / GiB)
            cpu_before = tree_cpu(pid)
            got.get, got.get_samples = best_of(self.get_reps, get_one)
            got.get_cpu_per_gib = (tree_cpu(pid) - cpu_before) / (self.get_reps * p.big / GiB)

        def parallel_put() -> float:
            def one(i: int) -> None:
                with open(source.path, "rb") as f, endpoint.conn() as conn:
                    body = FileBody(f, i * stream, stream)
                    endpoint.put(conn, f"/big/par-{i}", body, source.stream_sha256[i])

            t0 = time.perf_counter()
            with ThreadPoolExecutor(p.streams) as pool:
                list(pool.map(one, range(p.streams)))
            return p.streams * stream / (time.perf_counter() - t0)

        def parallel_get_all() -> float:
            targets: list[tuple[Endpoint | None, str]] = [
                (endpoint, f"/big/par-{i}") for i in range(p.streams)
            ]
            return parallel_get(endpoint.host, endpoint.port, targets, stream)

        def multipart() -> float:
            with open(source.path, "rb") as f:
                body = FileBody(f, 0, p.big)
                t0 = time.perf_counter()
                endpoint.multipart("/big/mpu", body, p.part, source.part_sha256, p.streams)
                return p.big / (time.perf_counter() - t0)

        got.parallel_put, _ = best_of(p.reps, parallel_put)
        got.parallel_get, _ = best_of(self.get_reps, parallel_get_all)
        got.multipart, _ = best_of(p.reps, multipart)
        return got

    def measure_baseline(self) -> dict[str, float]:
        """The zero-copy file server's GETs of Coffer's own blob files (one stream, parallel),
        curl's GET beside the raw client's, and the raw client's PUT into a discard sink."""
        p, env = self.profile, self.env
        server = env.file_server()
        one = "/" + str(env.blob_path("big", "one"))
        parallel = ["/" + str(env.blob_path("big", f"par-{i}")) for i in range(p.streams)]
        out: dict[str, float] = {}
        with Conn("127.0.0.1", server.port) as conn:

            def get() -> float:
                t0 = time.perf_counter()
                assert conn.request("GET", one, discard=True).check(200).length == p.big
                return p.big / (time.perf_counter() - t0)

            out["loopback_get"], _ = best_of(self.get_reps, get)
        targets: list[tuple[Endpoint | None, str]] = [(None, path) for path in parallel]
        out["loopback_get_parallel"], _ = best_of(
            self.get_reps, lambda: parallel_get("127.0.0.1", server.port, targets, p.stream_size)
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
                    f"http://127.0.0.1:{server.port}{one}",
                ]
                speeds.append(float(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout))
            out["curl_get"] = max(speeds)
        sink = env.start_process(servers.Sink(env.work_dir / "sink"))
        with open(env.source.path, "rb") as f, Conn("127.0.0.1", sink.port) as conn:

            def put() -> float:
                t0 = time.perf_counter()
                conn.request("PUT", "/x", body=FileBody(f, 0, p.big)).check(200)
                return p.big / (time.perf_counter() - t0)

            out["client_put_sink"], _ = best_of(p.reps, put)
        sink.stop()
        return out

    def add_rows(
        self, coffer: Transfers, peer: Transfers | None, swift: Transfers | None, baseline: dict[str, float]
    ) -> None:
        p, found = self.profile, self.env.limits
        big, stream = size_label(p.big), size_label(p.stream_size)
        parts = -(-p.big // p.part)
        hash_floor = (GiB / found["md5"] + GiB / found["sha256"]) if "md5" in found else float("nan")
        put_bound_single = (found.get("put_bound_single") or 0) / MB or None
        put_bound_parallel = (found.get("put_bound_parallel") or 0) / MB or None

        def rate_row(
            attribute: str,
            name: str,
            rate: float,
            peer_rate: float | None,
            bound: float | None,
            bound_name: str,
            note: str = "",
            samples: list[float] | None = None,
        ) -> Row:
            """Coffer's rate beside the peers', in MB/s (Swift's: the same attribute of `swift`)."""
            detail = {"samples": samples} if samples is not None else {}
            peer_mb = (peer_rate or 0) / MB or None
            row = Row(self.section, name, "MB/s", rate / MB, peer_mb, bound, bound_name, note, detail)
            row.compares_swift = True
            if swift is not None:
                row.swift = getattr(swift, attribute) / MB
            return row

        def client_row(name: str, rate: float, note: str) -> Row:
            return Row("client", name, "MB/s", rate / MB, note=note)

        self.add(
            rate_row(
                "get",
                f"{big} GET, one stream",
                coffer.get,
                peer.get if peer else None,
                baseline["loopback_get"] / MB,
                f"{self.env.report.meta['baseline']} GET",
                f"Coffer CPU {coffer.get_cpu_per_gib:.2f} s/GiB",
                coffer.get_samples,
            ),
            rate_row(
                "put",
                f"{big} PUT, one stream, signed payload, durable",
                coffer.put,
                peer.put if peer else None,
                put_bound_single,
                "min(MD5 1 core, disk+fsync)",
                f"Coffer CPU {coffer.put_cpu_per_gib:.2f} s/GiB, of which MD5+SHA-256 {hash_floor:.2f}",
                coffer.put_samples,
            ),
            rate_row(
                "parallel_get",
                f"{p.streams}x{stream} GET, parallel",
                coffer.parallel_get,
                peer.parallel_get if peer else None,
                baseline["loopback_get_parallel"] / MB,
                f"{p.streams} streams from the GET baseline",
            ),
            rate_row(
                "parallel_put",
                f"{p.streams}x{stream} PUT, parallel, signed, durable",
                coffer.parallel_put,
                peer.parallel_put if peer else None,
                put_bound_parallel,
                "min(coresx(MD5+SHA-256), disk)",
            ),
            rate_row(
                "multipart",
                f"{big} multipart, {parts}x{size_label(p.part)}, {p.streams} connections",
                coffer.multipart,
                peer.multipart if peer else None,
                put_bound_parallel,
                "min(coresx(MD5+SHA-256), disk)",
            ),
            client_row(
                f"client alone: {big} GET from the GET baseline",
                baseline["loopback_get"],
                "raw socket recv_into, 1 MiB buffer (the GET bound above)",
            ),
            client_row(
                f"client alone: {big} PUT into a discard sink",
                baseline["client_put_sink"],
                "sendfile → Python recv_into sink: what the PUT client costs",
            ),
        )
        if "curl_get" in baseline:
            self.add(
                client_row(
                    f"curl: {big} GET from the GET baseline",
                    baseline["curl_get"],
                    "for comparison with the raw client",
                )
            )
