"""`list`: ListObjectsV2 pages of 1,000 over keys written by real PUTs (one connection
walking continuation tokens; 4 connections replaying start-after pages), and the latency
of one page at a random position in the bucket written straight into the store."""

from __future__ import annotations

import random
import time

from bench import loadgen
from bench.common import log, percentile
from bench.endpoint import Endpoint
from bench.environment import HUGE_BUCKET
from bench.populate import key_name
from bench.report import Row
from bench.scenarios.base import Scenario

PAGE = 1000


class Listings(Scenario):
    section = "list"

    def run(self) -> None:
        p = self.profile
        n = p.list_keys
        self.env.section(f"ListObjectsV2: {n:,} keys (real PUTs) and {p.huge_keys:,} keys (bulk)")
        paths = [f"/list/{key_name(i)}" for i in range(n)]
        walks: dict[str, dict[str, float]] = {}
        for endpoint in self.env.endpoints():
            got = walks[endpoint.name] = {"fill": self.env.fill(endpoint, paths, b"x" * 64, 16)}
            got["walk"] = self.walk_rate(endpoint)
            got["c4"] = self.page_pool_rate(endpoint)
            log(f"  {endpoint.name}: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in got.items()))
        first_ms, latencies_ms = self.random_pages()
        self.add_rows(walks["coffer"], walks.get("moto", {}), first_ms, latencies_ms)

    def walk_rate(self, endpoint: Endpoint) -> float:
        """Pages per second walking the whole `list` bucket by continuation tokens, again
        and again for `profile.seconds`, on one connection."""
        pages = 0
        with endpoint.conn() as conn:
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < self.profile.seconds or pages == 0:
                token, keys = "", 0
                while True:
                    count, token = endpoint.list_page(conn, "list", token=token)
                    pages, keys = pages + 1, keys + count
                    if not token:
                        break
                assert keys == self.profile.list_keys, (endpoint.name, keys, self.profile.list_keys)
            return pages / (time.perf_counter() - t0)

    def page_pool_rate(self, endpoint: Endpoint) -> float:
        """Pages per second at c4 from a pool of signed start-after pages covering the bucket."""
        n = self.profile.list_keys
        starts = [""] + [key_name(i * PAGE - 1) for i in range(1, -(-n // PAGE))]
        pool = []
        for start in starts:
            query = [("list-type", "2"), ("max-keys", str(PAGE))] + (
                [("start-after", start)] if start else []
            )
            pool.append(
                loadgen.raw_request(
                    "GET", endpoint.target("/list", query), endpoint.headers("GET", "/list", query)
                )
            )
        pid = self.env.coffer_pid if endpoint is self.env.coffer_endpoint else 0
        return self.env.measure_load(endpoint.port, pool, 4, pid).rate

    def random_pages(self) -> tuple[float, list[float]]:
        """Coffer only: the first page of the huge bucket, then pages at random start-after
        positions; milliseconds."""
        p, endpoint = self.profile, self.env.coffer_endpoint
        rng = random.Random(7)
        latencies: list[float] = []
        with endpoint.conn() as conn:
            t0 = time.perf_counter()
            count, _ = endpoint.list_page(conn, HUGE_BUCKET)
            first = (time.perf_counter() - t0) * 1000
            assert count == min(PAGE, p.huge_keys)
            for _ in range(p.page_samples):
                start = key_name(rng.randrange(p.huge_keys))
                t0 = time.perf_counter()
                count, _ = endpoint.list_page(conn, HUGE_BUCKET, start_after=start)
                latencies.append((time.perf_counter() - t0) * 1000)
        return first, latencies

    def add_rows(
        self, coffer: dict[str, float], peer: dict[str, float], first_ms: float, latencies_ms: list[float]
    ) -> None:
        n, huge = f"{self.profile.list_keys:,}", f"{self.profile.huge_keys:,}"
        ordered = sorted(latencies_ms)
        self.add(
            Row(
                self.section,
                f"ListObjectsV2 {n} keys, pages of 1000, c1 walk",
                "pages/s",
                coffer["walk"],
                peer.get("walk"),
                note="continuation tokens, one connection",
            ),
            Row(
                self.section,
                f"ListObjectsV2 {n} keys, pages of 1000, c4",
                "pages/s",
                coffer["c4"],
                peer.get("c4"),
                note="start-after pool, wrk",
            ),
            Row(
                self.section,
                f"one page of 1000 from {huge} keys, p50",
                "ms",
                percentile(ordered, 0.5),
                note=f"random start-after, {len(latencies_ms)} samples; first page {first_ms:.1f} ms",
                detail={"samples_ms": latencies_ms, "first_ms": first_ms},
            ),
            Row(
                self.section,
                f"one page of 1000 from {huge} keys, p99",
                "ms",
                percentile(ordered, 0.99),
                note=f"max {max(latencies_ms):.1f} ms",
            ),
            Row(
                self.section,
                f"fill: 64-byte PUTs c16 ({n} keys)",
                "ops/s",
                coffer["fill"],
                peer.get("fill"),
                note="Python client threads (setup, not a target)",
            ),
        )
