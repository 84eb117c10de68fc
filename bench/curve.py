"""`python -m bench.curve`: how Coffer's costs grow with the number of objects in one bucket.

For each backend (embedded SQLite, PostgreSQL) and each size (10,000, 1,000,000 and
10,000,000 keys; `--quick`: 10,000, 100,000, 1,000,000), a fresh store is seeded straight
through the `objects` table (bench/populate.py, batches of 50,000 rows; keys under 1,000
prefixes, one shared 4 KiB blob), Coffer is started on it (`--workers 2`), and measured:
4 KiB PUT and GET rates at c16 (signed requests replayed by wrk, else the asyncio load
generator), one full-listing page (1,000 keys from a random start-after) and one root
delimiter page (1,000 CommonPrefixes), p50/p99, and the server's resident memory (all its
processes: after start, and the peak while measured). Every figure is shown as a ratio to
the same figure at the smallest size. PostgreSQL gets a fresh database per size, dropped
afterwards; the SQLite store lives in a temp dir, removed afterwards.

    python -m bench.curve [--quick|--selftest] [--sizes 10000,1000000,10000000]
                          [--backends sqlite,postgres] [--seconds S] [--samples N]
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import loadgen, servers
from bench.common import log, machine_facts, percentile, publish
from bench.endpoint import Endpoint
from bench.environment import SMALL_BODY
from bench.populate import bulk_bucket, prefixed_key
from bench.report import Report, Row, fmt
from bench.signing import Signer
from tests.support.harness import CofferServer, create_pg_database, drop_pg_database, postgres_available

BUCKET = "curve"
PREFIXES = 1000
SIZES = {
    "full": (10_000, 1_000_000, 10_000_000),
    "quick": (10_000, 100_000, 1_000_000),
    "selftest": (1_000, 5_000),
}


@dataclass(frozen=True)
class Metric:
    label: str
    unit: str


METRICS = {
    "put": Metric("4 KiB PUT signed, c16", "ops/s"),
    "get": Metric("4 KiB GET signed, c16", "ops/s"),
    "page_p50": Metric("full-listing page of 1000, p50", "ms"),
    "page_p99": Metric("full-listing page of 1000, p99", "ms"),
    "delimiter_p50": Metric(f"root delimiter page ({PREFIXES:,} prefixes), p50", "ms"),
    "delimiter_p99": Metric(f"root delimiter page ({PREFIXES:,} prefixes), p99", "ms"),
    "rss_idle": Metric("server RSS after start (all processes)", "MiB"),
    "rss_peak": Metric("server RSS peak while measured", "MiB"),
    "seed_s": Metric("seeding the store (not through S3)", "s"),
}


class Curve:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.use_wrk = loadgen.have_wrk() and not args.no_wrk

    def measure(self, backend: str, keys: int) -> dict[str, float]:
        """One fresh store of `keys` keys on `backend`, seeded, served and measured; then removed."""
        from coffer.config import Settings
        from coffer.server import prepare

        data = self.work / f"{backend}-{keys}"
        url = create_pg_database() if backend == "postgres" else ""
        try:
            settings = Settings(data_dir=str(data), database_url=url, log_level="warning")
            info = prepare(settings)

            def key_of(i: int) -> str:
                return prefixed_key(i, keys, PREFIXES)

            seed = bulk_bucket(settings, info["org_id"], info["admin"], BUCKET, keys, key_of)
            log(f"  {backend} {keys:,}: seeded in {seed:.1f}s")
            server = CofferServer(
                data_dir=data,
                database_url=url,
                workers=self.args.workers,
                extra_args=["--log-level", "warning"],
            )
            server.start(timeout=300)
            try:
                got = self.measure_server(server, keys, key_of)
            finally:
                server.stop()
            got["seed_s"] = seed
            return got
        finally:
            if url:
                drop_pg_database(url)
            shutil.rmtree(data, ignore_errors=True)

    def measure_server(self, server: CofferServer, keys: int, key_of: Any) -> dict[str, float]:
        key = server.mint_key()
        endpoint = Endpoint(
            "coffer", "127.0.0.1", server.s3_port, Signer(key["accessKeyId"], key["secretKey"])
        )
        assert server.proc is not None
        sampler = servers.RssSampler(server.proc.pid)
        got: dict[str, float] = {"rss_idle": sampler.snapshot()[0] / (1 << 20)}
        rng = random.Random(keys)
        seconds, samples = self.args.seconds, self.args.samples
        with sampler:
            gets = [f"/{BUCKET}/{key_of(rng.randrange(keys))}" for _ in range(256)]
            last_prefix = key_of(keys - 1).split("/")[0]  # new keys join a prefix: still PREFIXES of them
            puts = [f"/{BUCKET}/{last_prefix}/new/{i:06d}" for i in range(2048)]
            for name, pool in (
                ("get", endpoint.signed_pool("GET", gets)),
                ("put", endpoint.signed_pool("PUT", puts, SMALL_BODY)),
            ):
                load = loadgen.run("127.0.0.1", endpoint.port, pool, 16, seconds, use_wrk=self.use_wrk)
                if load.errors:
                    log(f"  WARNING: {load.errors} errors of {load.requests} {name} requests")
                got[name], got[f"{name}_errors"] = load.rate, load.errors
            pages: list[float] = []
            delimited: list[float] = []
            with endpoint.conn() as conn:
                for _ in range(samples):
                    start = key_of(rng.randrange(keys))
                    t0 = time.perf_counter()
                    count, _ = endpoint.list_page(conn, BUCKET, start_after=start)
                    pages.append((time.perf_counter() - t0) * 1000)
                    t0 = time.perf_counter()
                    prefixes, _ = endpoint.list_page(conn, BUCKET, delimiter="/")
                    delimited.append((time.perf_counter() - t0) * 1000)
                    assert count > 0 and prefixes == min(PREFIXES, keys), (count, prefixes)
        pages.sort()
        delimited.sort()
        got.update(
            page_p50=percentile(pages, 0.5),
            page_p99=percentile(pages, 0.99),
            delimiter_p50=percentile(delimited, 0.5),
            delimiter_p99=percentile(delimited, 0.99),
            rss_peak=sampler.peak_total / (1 << 20),
        )
        return got


def rows(backend: str, sizes: list[int], measured: dict[int, dict[str, float]]) -> list[Row]:
    """One row per metric and size; the bound column is the same figure at the smallest size,
    so "x bound" is how the figure grew."""
    smallest = sizes[0]
    out = []
    for name, metric in METRICS.items():
        base = measured[smallest][name]
        for size in sizes:
            value = measured[size][name]
            out.append(
                Row(
                    f"curve {backend}",
                    f"{metric.label} at {size:,} keys",
                    metric.unit,
                    value,
                    bound=base if size != smallest else None,
                    bound_name=f"at {smallest:,} keys" if size != smallest else "",
                    detail={"keys": size, "metric": name},
                )
            )
    return out


def growth_table(report: Report) -> str:
    """Each metric by size on one line: the figure and its ratio to the smallest size's."""
    sizes: list[int] = report.meta["sizes"]
    out = [
        "| backend | measurement | " + " | ".join(f"{n:,} keys" for n in sizes) + " |",
        "|---|---|" + "---:|" * len(sizes),
    ]
    by_line: dict[tuple[str, str], list[str]] = {}
    for r in report.rows:
        cells = by_line.setdefault((r.section, f"{METRICS[r.detail['metric']].label} ({r.unit})"), [])
        cells.append(f"{fmt(r.value, r.unit)}" + (f" ({r.vs_bound:.2f}x)" if r.vs_bound is not None else ""))
    for (section, label), cells in by_line.items():
        out.append(f"| {section.removeprefix('curve ')} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.curve", description=(__doc__ or "").splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="10k, 100k, 1M keys; shorter loads")
    mode.add_argument("--selftest", action="store_true", help="tiny sizes, Python load generator; seconds")
    ap.add_argument("--sizes", help="comma list of key counts (default: 10000,1000000,10000000)")
    ap.add_argument("--backends", default="sqlite,postgres", help="comma list of: sqlite, postgres")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, help="each load (default 8; --quick 3; --selftest 0.3)")
    ap.add_argument("--samples", type=int, help="listing pages per kind (default 100; --selftest 5)")
    ap.add_argument("--no-wrk", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--markdown", type=Path)
    ap.add_argument("--tmp", help="directory for the stores (default: the system temp dir)")
    args = ap.parse_args(argv)
    args.mode = "selftest" if args.selftest else "quick" if args.quick else "full"
    args.sizes = sorted(int(n) for n in args.sizes.split(",")) if args.sizes else list(SIZES[args.mode])
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(args.backends) - {"sqlite", "postgres"}:
        ap.error("backends: sqlite, postgres")
    if args.seconds is None:
        args.seconds = {"full": 8.0, "quick": 3.0, "selftest": 0.3}[args.mode]
    if args.samples is None:
        args.samples = 5 if args.selftest else 100
    args.no_wrk = args.no_wrk or args.selftest
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.monotonic()
    meta: dict[str, Any] = {
        "mode": f"curve {args.mode}",
        **machine_facts("python -m bench.curve"),
        "workers": args.workers,
        "loadgen": "wrk -t1" if loadgen.have_wrk() and not args.no_wrk else "python asyncio",
        "sizes": args.sizes,
        "prefixes": PREFIXES,
    }
    report = Report(meta=meta)
    work = Path(tempfile.mkdtemp(prefix="coffer-curve-", dir=args.tmp))
    curve = Curve(args, work)
    try:
        for backend in args.backends:
            if backend == "postgres" and (why := postgres_available()):
                log(f"skipping postgres: {why}")
                meta["postgres_missing"] = why
                continue
            measured: dict[int, dict[str, float]] = {}
            for size in args.sizes:
                t0 = time.monotonic()
                measured[size] = curve.measure(backend, size)
                measured[size]["total_s"] = time.monotonic() - t0
                log(f"  {backend} {size:,}: " + ", ".join(f"{k} {v:,.1f}" for k, v in measured[size].items()))
            meta[f"seconds_{backend}"] = {size: got["total_s"] for size, got in measured.items()}
            meta[f"errors_{backend}"] = {
                size: got["get_errors"] + got["put_errors"] for size, got in measured.items()
            }
            for row in rows(backend, args.sizes, measured):
                report.add(row)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    meta["seconds"] = time.monotonic() - started
    publish(
        report,
        report.render() + "\n\n" + growth_table(report),
        args.json,
        args.markdown,
        f"curve-{args.mode}",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
