"""`small`: 4 KiB GET and PUT at concurrency 1 and 16, header-signed and presigned, replayed
from pools of requests signed beforehand; beside a trivial uvicorn app (same stack, same
worker count) and nginx serving a 4 KiB file."""

from __future__ import annotations

from bench import loadgen, servers
from bench.common import log
from bench.environment import SMALL_BODY
from bench.loadgen import Load
from bench.report import Row
from bench.scenarios.base import Scenario

MODES = ("GET signed", "GET presigned", "PUT signed", "PUT presigned")
CONCURRENCIES = (1, 16)


class SmallObjects(Scenario):
    section = "small"

    def run(self) -> None:
        p, env = self.profile, self.env
        env.section("small objects: 4 KiB GET and PUT at c1 and c16")
        gets = [f"/small/s/{i:05d}" for i in range(p.small_objects)]
        puts = [f"/small/p/{i:05d}" for i in range(p.put_pool)]
        for endpoint in env.endpoints():
            env.fill(endpoint, gets, SMALL_BODY, 16)
        loads: dict[str, dict[str, Load]] = {}
        for endpoint in env.endpoints():
            pid = env.server_pid(endpoint)
            got = loads[endpoint.name] = {}
            pools = {
                "GET signed": endpoint.signed_pool("GET", gets),
                "PUT signed": endpoint.signed_pool("PUT", puts, SMALL_BODY),
            }
            if endpoint.checks_signatures:
                pools["GET presigned"] = endpoint.presigned_pool("GET", gets)
                presigned_puts = [x.replace("/p/", "/q/") for x in puts]
                pools["PUT presigned"] = endpoint.presigned_pool("PUT", presigned_puts, SMALL_BODY)
            for label, pool in pools.items():
                for conc in CONCURRENCIES:
                    got[f"{label} c{conc}"] = env.measure_load(endpoint.port, pool, conc, pid)
            log(f"  {endpoint.name}: " + ", ".join(f"{k} {v.rate:,.0f}/s" for k, v in got.items()))
        ceilings = self.measure_ceilings()
        self.add_rows(loads["coffer"], loads.get("moto", {}), loads.get("swift", {}), ceilings)

    def measure_ceilings(self) -> dict[str, Load]:
        """The HTTP stack with nothing behind it, and nginx serving a 4 KiB file."""
        env = self.env
        hello = env.start_process(servers.HelloASGI(env.work_dir / "asgi", env.workers))
        ceilings: dict[str, Load] = {}
        for conc in CONCURRENCIES:
            get = [loadgen.raw_request("GET", "/x", [("Host", "h")])]
            put = [loadgen.raw_request("PUT", "/x", [("Host", "h")], SMALL_BODY)]
            ceilings[f"GET c{conc}"] = env.measure_load(hello.port, get, conc, hello.pid)
            ceilings[f"PUT c{conc}"] = env.measure_load(hello.port, put, conc, hello.pid)
        hello.stop()
        small_blob = "/" + str(env.blob_path("small", "s/00000"))
        nginx_get = [loadgen.raw_request("GET", small_blob, [("Host", "h")])]
        ceilings["nginx GET c16"] = env.measure_load(env.file_server().port, nginx_get, 16, 0)
        log("  ceilings: " + ", ".join(f"{k} {v.rate:,.0f}/s" for k, v in ceilings.items()))
        env.limits["small_ceilings"] = {k: v.as_dict() for k, v in ceilings.items()}
        return ceilings

    def add_rows(
        self,
        coffer: dict[str, Load],
        peer: dict[str, Load],
        swift: dict[str, Load],
        ceilings: dict[str, Load],
    ) -> None:
        for mode in MODES:
            for conc in CONCURRENCIES:
                load = coffer[f"{mode} c{conc}"]
                # the peer checks no signature: its signed figure stands beside Coffer's presigned one
                peer_load = peer.get(f"{mode} c{conc}") or peer.get(f"{mode.split()[0]} signed c{conc}")
                swift_load = swift.get(f"{mode} c{conc}")
                bound: float | None
                if mode.startswith("GET"):
                    bound, bound_name = ceilings[f"GET c{conc}"].rate, f"uvicorn hello app c{conc}"
                else:
                    bound = self.env.limits.get(f"small_files_c{conc}")
                    bound_name = f"durable 4 KiB creates c{conc}"
                cpu_us = load.cpu_us
                note = f"p50 {load.p50_ms:.2f} ms, p99 {load.p99_ms:.2f} ms"
                if cpu_us:
                    note += f"; server CPU {cpu_us:.0f} µs/op"
                if load.errors:
                    note += f"; {load.errors} ERRORS"
                detail = {
                    "coffer": load.as_dict(),
                    "peer": peer_load.as_dict() if peer_load else None,
                    "swift": swift_load.as_dict() if swift_load else None,
                    "cpu_us": cpu_us,
                }
                peer_rate = peer_load.rate if peer_load else None
                name = f"4 KiB {mode}, c{conc}"
                if swift_load is not None and swift_load.errors:
                    note += f"; Swift {swift_load.errors} ERRORS"
                row = Row(self.section, name, "ops/s", load.rate, peer_rate, bound, bound_name, note, detail)
                row.swift, row.compares_swift = (swift_load.rate if swift_load else None), True
                self.add(row)
        nginx = ceilings["nginx GET c16"]
        name = "ceiling: nginx 4 KiB GET, c16"
        self.add(Row(self.section, name, "ops/s", nginx.rate, note="the machine, no Python"))
        for key in ("GET c16", "PUT c16"):
            hello = ceilings[key]
            note = f"p50 {hello.p50_ms:.2f} ms; CPU {hello.cpu_us or 0:.0f} µs/op"
            self.add(
                Row(self.section, f"ceiling: uvicorn hello app 4 KiB {key}", "ops/s", hello.rate, note=note)
            )
