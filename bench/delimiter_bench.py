"""Delimiter listings, this build beside another: ListObjectsV2 with `delimiter=/` at the
root of 10,000 keys in 100 prefixes, the full walk of 10,000 keys without a delimiter
(which must not slow down), and pages of 1,000 common prefixes out of 1,000,000 keys in
1,000 prefixes.

Two `coffer serve` on SQLite (one worker each), the second importing `coffer` from
`--before DIR` (e.g. `git archive HEAD coffer | tar -x -C DIR`); buckets written straight
into each store (`bench/populate.py`). One connection each, the bench's raw client,
alternating sides every round so that drift falls on both alike; medians and ratios.

    python -m bench.delimiter_bench --before /tmp/coffer-before      # ~3 min
    python -m bench.delimiter_bench --huge 0 --rounds 3              # no 1,000,000-key bucket
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.client import Conn
from bench.endpoint import Endpoint
from bench.populate import bulk_bucket
from bench.signing import Signer
from tests.support.harness import CofferServer


def _tree_key(per: int) -> Callable[[int], str]:
    return lambda i: f"dir{i // per:04d}/file{i % per:06d}"


def _server(root: Path, name: str, huge: int, pythonpath: str | None) -> tuple[CofferServer, Endpoint]:
    from coffer.config import Settings
    from coffer.server import prepare

    data = root / name
    settings = Settings(data_dir=str(data), log_level="warning")
    info = prepare(settings)
    org, admin = info["org_id"], info["admin"]
    bulk_bucket(settings, org, admin, "tree", 10_000, key_of=_tree_key(100))
    bulk_bucket(settings, org, admin, "flat", 10_000)
    if huge:
        bulk_bucket(settings, org, admin, "huge", huge, key_of=_tree_key(huge // 1000))
    env = {"PYTHONPATH": pythonpath} if pythonpath else {}
    server = CofferServer(data_dir=data, extra_args=["--log-level", "warning"], env=env).start()
    key = server.mint_key()
    return server, Endpoint(name, "127.0.0.1", server.s3_port, Signer(key["accessKeyId"], key["secretKey"]))


def _page(endpoint: Endpoint, conn: Conn, bucket: str, **params: str) -> bytes:
    query = sorted([("list-type", "2"), *params.items()])
    return endpoint.call(conn, "GET", f"/{bucket}", query).check(200).body


def _root(endpoint: Endpoint, seconds: float) -> tuple[float, float]:
    """Root delimiter listings per second and their p50 (ms)."""
    latencies: list[float] = []
    with endpoint.conn() as conn:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds or not latencies:
            t = time.perf_counter()
            body = _page(endpoint, conn, "tree", delimiter="/")
            latencies.append(time.perf_counter() - t)
        assert body.count(b"<CommonPrefixes>") == 100, body[:300]
        return len(latencies) / (time.perf_counter() - t0), statistics.median(latencies) * 1000


def _walk(endpoint: Endpoint, seconds: float) -> float:
    """Pages per second walking all 10,000 keys of `flat` (pages of 1,000, no delimiter)."""
    pages = 0
    with endpoint.conn() as conn:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds or not pages:
            token = ""
            while True:
                body = _page(endpoint, conn, "flat", **({"continuation-token": token} if token else {}))
                pages += 1
                if b"<NextContinuationToken>" not in body:
                    break
                token = body.split(b"<NextContinuationToken>")[1].split(b"<")[0].decode()
        return pages / (time.perf_counter() - t0)


def _huge(endpoint: Endpoint, samples: int) -> float:
    """p50 ms of a page of 1,000 prefixes from 1,000,000 keys: the first page, and pages
    starting after a key inside a prefix."""
    latencies: list[float] = []
    with endpoint.conn() as conn:
        for i in range(samples):
            start = {"start-after": f"dir{i * 7 % 1000:04d}/file000500"} if i else {}
            t = time.perf_counter()
            body = _page(endpoint, conn, "huge", delimiter="/", **start)
            latencies.append(time.perf_counter() - t)
            assert b"<CommonPrefixes>" in body
    return statistics.median(latencies) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--before", default="", help="a directory holding the `coffer` package to compare with"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--huge", type=int, default=1_000_000, help="keys in the 1,000-prefix bucket (0: none)"
    )
    args = parser.parse_args(argv)
    sides = ["after"] + (["before"] if args.before else [])
    got: dict[str, dict[str, list[float]]] = {
        s: {"root": [], "p50": [], "walk": [], "huge": []} for s in sides
    }
    with tempfile.TemporaryDirectory(prefix="coffer-delimiter-") as tmp:
        # `python -m coffer` puts its working directory first on sys.path, ahead of
        # PYTHONPATH: start the servers from elsewhere, so that --before is what "before" runs
        os.chdir(tmp)
        servers = {s: _server(Path(tmp), s, args.huge, args.before if s == "before" else None) for s in sides}
        try:
            for _, endpoint in servers.values():  # warm-up, not counted
                _root(endpoint, 0.5)
            for i in range(args.rounds):
                for side in sides if i % 2 == 0 else sides[::-1]:
                    endpoint = servers[side][1]
                    rate, p50 = _root(endpoint, args.seconds)
                    got[side]["root"].append(rate)
                    got[side]["p50"].append(p50)
                    got[side]["walk"].append(_walk(endpoint, args.seconds))
                    if args.huge:
                        got[side]["huge"].append(_huge(endpoint, 21 if side == "after" else 1))
                    print(
                        f"round {i + 1} {side:6}: root {rate:,.1f}/s p50 {p50:.1f} ms, "
                        f"walk {got[side]['walk'][-1]:,.0f} pages/s"
                        + (f", huge page p50 {got[side]['huge'][-1]:.1f} ms" if args.huge else ""),
                        flush=True,
                    )
        finally:
            for server, _ in servers.values():
                server.stop()
    med = {s: {k: statistics.median(v) if v else 0.0 for k, v in got[s].items()} for s in sides}
    for side in sides:
        m = med[side]
        print(
            f"{side:6}: root delimiter listing {m['root']:,.1f}/s (p50 {m['p50']:.1f} ms); "
            f"walk {m['walk']:,.0f} pages/s"
            + (f"; 1,000 prefixes of {args.huge:,} keys p50 {m['huge']:.1f} ms" if args.huge else "")
        )
    if args.before:
        a, b = med["after"], med["before"]
        print(
            f"after/before: root listings/s {a['root'] / b['root']:.1f}x, "
            f"walk pages/s {a['walk'] / b['walk']:.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
