"""`list`: ListObjectsV2 pages of 1,000 over keys written by real PUTs under 100 prefixes
(one connection walking continuation tokens; 4 connections replaying start-after pages; the
root delimiter listing: one page of 100 CommonPrefixes), and in the bucket written straight
into the store (1,000 prefixes) the latency of one page at a random position and of its
root delimiter page."""

from __future__ import annotations

import random
import time

from bench import loadgen
from bench.common import log, percentile
from bench.endpoint import Endpoint
from bench.environment import HUGE_BUCKET, HUGE_PREFIXES, LIST_PREFIXES
from bench.report import Row
from bench.scenarios.base import Scenario

PAGE = 1000


class Listings(Scenario):
    section = "list"

    def run(self) -> None:
        p = self.profile
        n = p.list_keys
        self.env.section(f"ListObjectsV2: {n:,} keys (real PUTs) and {p.huge_keys:,} keys (bulk)")
        paths = [f"/list/{self.env.list_key(i)}" for i in range(n)]
        walks: dict[str, dict[str, float]] = {}
        for endpoint in self.env.endpoints():
            got = walks[endpoint.name] = {"fill": self.env.fill(endpoint, paths, b"x" * 64, 16)}
            got["walk"] = self.walk_rate(endpoint)
            got["c4"] = self.page_pool_rate(endpoint)
            got["delimiter"] = self.delimiter_rate(endpoint)
            log(f"  {endpoint.name}: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in got.items()))
        first_ms, latencies_ms = self.random_pages()
        delimiter_ms = self.delimiter_pages()
        self.add_rows(walks, first_ms, latencies_ms, delimiter_ms)

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
        starts = [""] + [self.env.list_key(i * PAGE - 1) for i in range(1, -(-n // PAGE))]
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

    def delimiter_rate(self, endpoint: Endpoint) -> float:
        """Pages per second at c4 of the root delimiter listing of the `list` bucket: one page
        of LIST_PREFIXES CommonPrefixes (checked once, then replayed)."""
        query = [("delimiter", "/"), ("list-type", "2"), ("max-keys", str(PAGE))]
        with endpoint.conn() as conn:
            count, token = endpoint.list_page(conn, "list", delimiter="/")
        assert (count, token) == (LIST_PREFIXES, ""), (endpoint.name, count, token)
        pool = [
            loadgen.raw_request(
                "GET", endpoint.target("/list", query), endpoint.headers("GET", "/list", query)
            )
        ]
        return self.env.measure_load(endpoint.port, pool, 4, self.env.server_pid(endpoint)).rate

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
                start = self.env.huge_key(rng.randrange(p.huge_keys))
                t0 = time.perf_counter()
                count, _ = endpoint.list_page(conn, HUGE_BUCKET, start_after=start)
                latencies.append((time.perf_counter() - t0) * 1000)
        return first, latencies

    def delimiter_pages(self) -> list[float]:
        """Coffer only: the huge bucket's root delimiter page (HUGE_PREFIXES CommonPrefixes
        over every key), `page_samples` times; milliseconds."""
        endpoint, latencies = self.env.coffer_endpoint, []
        with endpoint.conn() as conn:
            for _ in range(self.profile.page_samples):
                t0 = time.perf_counter()
                count, _ = endpoint.list_page(conn, HUGE_BUCKET, delimiter="/")
                latencies.append((time.perf_counter() - t0) * 1000)
                assert count == HUGE_PREFIXES, count
        return latencies

    def add_rows(
        self,
        walks: dict[str, dict[str, float]],
        first_ms: float,
        latencies_ms: list[float],
        delimiter_ms: list[float],
    ) -> None:
        n, huge = f"{self.profile.list_keys:,}", f"{self.profile.huge_keys:,}"
        coffer, moto, swift = walks["coffer"], walks.get("moto", {}), walks.get("swift", {})

        def compared(name: str, unit: str, what: str, note: str) -> Row:
            row = Row(self.section, name, unit, coffer[what], moto.get(what), note=note)
            row.swift, row.compares_swift = swift.get(what), True
            return row

        def latency(name: str, samples: list[float], note: str) -> list[Row]:
            ordered = sorted(samples)
            return [
                Row(
                    self.section,
                    f"{name}, p50",
                    "ms",
                    percentile(ordered, 0.5),
                    note=note,
                    detail={"samples_ms": samples},
                ),
                Row(
                    self.section,
                    f"{name}, p99",
                    "ms",
                    percentile(ordered, 0.99),
                    note=f"max {max(samples):.1f} ms",
                ),
            ]

        self.add(
            compared(
                f"ListObjectsV2 {n} keys, pages of 1000, c1 walk",
                "pages/s",
                "walk",
                "continuation tokens, one connection",
            ),
            compared(f"ListObjectsV2 {n} keys, pages of 1000, c4", "pages/s", "c4", "start-after pool, wrk"),
            compared(
                f"ListObjectsV2 root delimiter, {n} keys in {LIST_PREFIXES} prefixes, c4",
                "pages/s",
                "delimiter",
                f"one page of {LIST_PREFIXES} CommonPrefixes",
            ),
            *latency(
                f"one page of 1000 from {huge} keys",
                latencies_ms,
                f"random start-after, {len(latencies_ms)} samples; first page {first_ms:.1f} ms",
            ),
            *latency(
                f"root delimiter page, {huge} keys in {HUGE_PREFIXES:,} prefixes",
                delimiter_ms,
                f"{HUGE_PREFIXES:,} CommonPrefixes, {len(delimiter_ms)} samples",
            ),
            compared(
                f"fill: 64-byte PUTs c16 ({n} keys)",
                "ops/s",
                "fill",
                "Python client threads (setup, not a target)",
            ),
        )
