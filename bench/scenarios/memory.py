"""`memory`: peak RSS of all server processes (sampled every 20 ms) while a large object is
PUT and read back; the peer streams a smaller one (it keeps objects in RAM)."""

from __future__ import annotations

import os
import time
from typing import Any

from bench import servers
from bench.client import RepeatBody
from bench.common import MiB
from bench.endpoint import Endpoint
from bench.profiles import size_label
from bench.report import Row
from bench.scenarios.base import Scenario
from bench.signing import UNSIGNED


class Memory(Scenario):
    section = "memory"

    def run(self) -> None:
        p = self.profile
        self.env.section(f"memory: {size_label(p.memory)} streamed into and out of Coffer")
        chunk = os.urandom(MiB)
        streamed: dict[str, dict[str, Any]] = {}
        for endpoint in self.env.endpoints():
            size = p.memory if endpoint is self.env.coffer_endpoint else p.peer_memory
            streamed[endpoint.name] = self.stream(endpoint, chunk, size)
        self.add_rows(streamed["coffer"], streamed.get("moto"))

    def stream(self, endpoint: Endpoint, chunk: bytes, size: int) -> dict[str, Any]:
        """PUT `size` bytes then GET them back while the server's RSS is sampled."""
        sampler = servers.RssSampler(self.env.server_pid(endpoint))
        before_total, before_single = sampler.snapshot()
        t0 = time.perf_counter()
        with sampler, endpoint.conn() as conn:
            endpoint.put(conn, "/big/mem", RepeatBody(chunk, size), UNSIGNED)
            assert endpoint.get(conn, "/big/mem").length == size
        elapsed = time.perf_counter() - t0
        with endpoint.conn() as conn:
            endpoint.call(conn, "DELETE", "/big/mem").check(204, 200)
        return {
            "size": size,
            "before": before_total,
            "peak": sampler.peak_total,
            "growth": sampler.peak_total - before_total,
            "single_before": before_single,
            "single_peak": sampler.peak_single,
            "samples": sampler.samples,
            "seconds": elapsed,
        }

    def add_rows(self, coffer: dict[str, Any], peer: dict[str, Any] | None) -> None:
        self.add(
            Row(
                self.section,
                f"peak RSS, {size_label(self.profile.memory)} PUT then GET (server, all processes)",
                "MiB",
                coffer["peak"] / MiB,
                note=f"before {coffer['before'] / MiB:,.0f} MiB; {coffer['samples']} samples",
                detail=coffer,
            ),
            Row(
                self.section,
                "RSS growth while streaming",
                "MiB",
                coffer["growth"] / MiB,
                peer["growth"] / MiB if peer else None,
                coffer["size"] / MiB,
                "object size",
                f"moto streamed {size_label(int(peer['size']))}" if peer else "",
                detail={"peer": peer},
            ),
        )
