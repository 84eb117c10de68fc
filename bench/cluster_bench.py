"""Coffer as a cluster behind nginx: small GET and PUT through one node and through three.

    python -m bench.cluster_bench              # 15 s per load, best of 3
    python -m bench.cluster_bench --quick      # 4 s per load, best of 2: about 3 minutes with the start-ups
    python -m bench.cluster_bench --selftest   # 1 s per load, one propagation round

Every node has two workers and the nodes share one PostgreSQL database and one data directory
(tests/support/cluster.py starts them, nginx in front, its configuration the one
docs/deployment.md shows). On one machine three nodes share the same cores as one, so the
point is the cost of the arrangement, not a speed-up: each row's ratio is against the row it
names (one node straight, one node behind nginx). One cluster of three nodes is started; "1
node" is its first node alone (straight, and behind a second nginx with the same settings and
only that upstream) while the other two idle. 4 KiB objects, header-signed requests
replayed from pools signed beforehand, 16 connections (wrk when installed). Then the
propagation time of control-plane changes across the nodes (tests/support/propagation.py),
p50 and p99, for nodes sharing the data directory and for one sharing only the database.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.common import log, machine_facts, publish
from bench.endpoint import Endpoint
from bench.report import Report, Row
from bench.signing import Signer
from tests.support.cluster import Balancer, Cluster, running_cluster
from tests.support.harness import CofferServer, postgres_available
from tests.support.propagation import describe, measure, remote_node, summarize

BODY = b"c" * 4096
CONCURRENCY = 16
OBJECTS = 200
SECONDS = {"full": 15.0, "quick": 4.0, "selftest": 1.0}
REPS = {"full": 3, "quick": 2, "selftest": 1}
ROUNDS = {"full": 6, "quick": 2, "selftest": 1}
QUIET = ["--log-level", "warning"]


def endpoint(name: str, port: int, key: dict[str, Any]) -> Endpoint:
    return Endpoint(name, "127.0.0.1", port, Signer(key["accessKeyId"], key["secretKey"]))


def fill(target: Endpoint) -> tuple[list[bytes], list[bytes]]:
    """A bucket of OBJECTS 4 KiB objects; the signed GET and PUT pools for `target`'s port
    (the signature covers the Host header, so each arrangement gets its own pools)."""
    bucket = "bench"
    target.create_bucket(bucket)
    gets = [f"/{bucket}/g/{i:04d}" for i in range(OBJECTS)]
    with target.conn() as conn:
        for path in gets:
            target.put(conn, path, BODY)
    return pools(target, bucket)


def pools(target: Endpoint, bucket: str = "bench") -> tuple[list[bytes], list[bytes]]:
    gets = [f"/{bucket}/g/{i:04d}" for i in range(OBJECTS)]
    puts = [f"/{bucket}/p/{i:04d}" for i in range(OBJECTS)]
    return target.signed_pool("GET", gets), target.signed_pool("PUT", puts, BODY)


def loads(targets: dict[str, Endpoint], seconds: float, reps: int) -> dict[str, dict[str, loadgen.Load]]:
    """4 KiB GET and PUT at CONCURRENCY through each target, the targets interleaved `reps`
    times (the machine is shared: a slow moment then hits every arrangement alike); the best."""
    use_wrk = loadgen.have_wrk()
    signed = {name: pools(target) for name, target in targets.items()}
    best: dict[str, dict[str, loadgen.Load]] = {name: {} for name in targets}
    for _ in range(reps):
        for name, target in targets.items():
            for label, pool in zip(("GET", "PUT"), signed[name], strict=True):
                load = loadgen.run(target.host, target.port, pool, CONCURRENCY, seconds, use_wrk=use_wrk)
                if load.errors:
                    raise RuntimeError(f"{name} {label}: {load.errors} errors")
                if label not in best[name] or load.rate > best[name][label].rate:
                    best[name][label] = load
            got = best[name]
            log(
                f"  {name}: "
                + ", ".join(f"{k} {v.rate:,.0f}/s (p99 {v.p99_ms:.1f} ms)" for k, v in got.items())
            )
    return best


def rows(results: dict[str, dict[str, loadgen.Load]]) -> list[Row]:
    """One row per arrangement and method, each against the one before it."""
    out = []
    order = [
        ("1 node, straight", None),
        ("1 node behind nginx", "1 node, straight"),
        ("3 nodes behind nginx", "1 node behind nginx"),
    ]
    for method in ("GET", "PUT"):
        for name, against in order:
            load = results[name][method]
            bound = results[against][method].rate if against else None
            out.append(
                Row(
                    "cluster",
                    f"4 KiB {method} signed c{CONCURRENCY}: {name}",
                    "ops/s",
                    load.rate,
                    bound=bound,
                    bound_name=against or "",
                    note=f"{load.tool}, p99 {load.p99_ms:.1f} ms",
                    detail=load.as_dict(),
                )
            )
    return out


def propagation_rows(summary: dict[str, dict[str, float]]) -> list[Row]:
    return [
        Row(
            "cluster",
            f"change honoured, {path}: {q}",
            "ms",
            row[q] * 1000,
            note=f"n={row['n']:.0f}; one probe alone p50 {row['probe_p50'] * 1000:.0f} ms",
        )
        for path, row in summary.items()
        if path != "all"
        for q in ("p50", "p99")
    ]


def run(args: argparse.Namespace) -> Report:
    mode = "selftest" if args.selftest else "quick" if args.quick else "full"
    seconds = SECONDS[mode]
    started = time.monotonic()
    report = Report(
        meta={
            "mode": mode,
            "bench": "cluster",
            **machine_facts("python -m bench.cluster_bench"),
            "workers": 2,
            "loadgen": "wrk -t1" if loadgen.have_wrk() else "python asyncio",
            "baseline": "the arrangement named in each row",
        }
    )
    work = Path(tempfile.mkdtemp(prefix="coffer-clusterbench-", dir=args.tmp))
    try:
        log("three nodes (two workers each) on one database and data directory behind nginx")
        with running_cluster(work / "cluster", size=3, extra_args=QUIET) as cluster:
            key = cluster.front.mint_key()
            node: CofferServer = cluster.nodes[0]
            fill(endpoint("fill", node.s3_port, key))
            alone = Balancer(work / "nginx-one")  # the same nginx settings, one upstream
            alone.start([node])
            try:
                targets = {
                    "1 node, straight": endpoint("straight", node.s3_port, key),
                    "1 node behind nginx": endpoint("one", alone.s3_port, key),
                    "3 nodes behind nginx": endpoint("three", cluster.balancer.s3_port, key),
                }
                results = loads(targets, seconds, REPS[mode])
            finally:
                alone.stop()
            summary = propagation(cluster, work, ROUNDS[mode])
        for row in rows(results) + propagation_rows(summary):
            report.add(row)
        report.limits["propagation"] = summary
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report.meta["seconds"] = time.monotonic() - started
    return report


def propagation(cluster: Cluster, work: Path, rounds: int) -> dict[str, dict[str, float]]:
    log(f"propagation: {rounds} rounds of six changes, each watched on three nodes")
    with remote_node(cluster, work / "remote") as remote:
        summary = summarize(measure(cluster, remote, rounds, give_up=30))
    for line in describe(summary):
        log("  " + line)
    return summary


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.cluster_bench", description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="6 s per load")
    mode.add_argument("--selftest", action="store_true", help="1 s per load")
    ap.add_argument("--json", type=Path, help="default bench/results/<time>-cluster-<mode>.json")
    ap.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    ap.add_argument("--tmp", help="directory for the run's data (default: the system temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the run's data directory")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    why = postgres_available()
    if why:
        print(f"the cluster needs PostgreSQL: {why}", file=sys.stderr)
        return 2
    report = run(args)
    table = report.render().split("\n\n| target |")[0]  # no targets: the table alone
    publish(report, table, args.json, args.markdown, f"cluster-{report.meta['mode']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
