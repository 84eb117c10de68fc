"""What recording each access key's last use costs: the 4 KiB GET rate with and without it.

Two `coffer serve` on SQLite side by side (same build, same machine, one worker each), one
with `last_used_tracking` on (the default) and one with it off; each has a bucket of 4 KiB
objects and a key. wrk replays pools of header-signed GETs (c16) against one server at a
time, alternating on/off for `--rounds` rounds so that drift (other load, thermal) falls on
both alike; the figures are the median rate and the median server CPU per GET (psutil, the
server's process tree) of each side, and their ratios. Target: within 3%. On a machine
shared with other load the rates swing more than that between runs; the CPU per GET is
steadier, and the cost of `record()` itself (timed in process, one thread) bounds the
difference from below: it is all that tracking adds to a request.

    python -m bench.last_used_bench                 # 5 rounds of 8 s per side: ~2 min
    python -m bench.last_used_bench --quick         # 2 rounds of 3 s
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench.common import log, tree_cpu
from bench.endpoint import Endpoint
from bench.environment import SMALL_BODY
from bench.loadgen import have_wrk, run
from bench.signing import Signer
from tests.support.harness import CofferServer

OBJECTS = 200
CONCURRENCY = 16


def _server(root: Path, name: str, tracking: bool) -> tuple[CofferServer, list[bytes]]:
    flag = "--last-used-tracking" if tracking else "--no-last-used-tracking"
    server = CofferServer(data_dir=root / name, extra_args=["--log-level", "warning", flag]).start()
    key = server.mint_key()
    endpoint = Endpoint(name, "127.0.0.1", server.s3_port, Signer(key["accessKeyId"], key["secretKey"]))
    endpoint.create_bucket("small")
    paths = [f"/small/{i:04d}" for i in range(OBJECTS)]
    with endpoint.conn() as conn:
        for path in paths:
            endpoint.put(conn, path, SMALL_BODY).check(200)
    return server, endpoint.signed_pool("GET", paths)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 5)
    seconds = args.seconds or (3.0 if args.quick else 8.0)
    wrk = have_wrk()
    rates: dict[str, list[float]] = {"on": [], "off": []}
    cpu: dict[str, list[float]] = {"on": [], "off": []}
    with tempfile.TemporaryDirectory(prefix="coffer-lastused-") as tmp:
        servers = {side: _server(Path(tmp), side, side == "on") for side in ("on", "off")}
        try:
            for server, pool in servers.values():  # warm-up, not counted
                run("127.0.0.1", server.s3_port, pool, CONCURRENCY, 1.0, use_wrk=wrk)
            for i in range(rounds):
                order = ("on", "off") if i % 2 == 0 else ("off", "on")
                for side in order:
                    server, pool = servers[side]
                    assert server.proc is not None
                    before = tree_cpu(server.proc.pid)
                    load = run("127.0.0.1", server.s3_port, pool, CONCURRENCY, seconds, use_wrk=wrk)
                    if load.errors or not load.requests:
                        raise SystemExit(f"{load.errors} failed GETs against tracking {side}")
                    rates[side].append(load.rate)
                    cpu[side].append((tree_cpu(server.proc.pid) - before) / load.requests * 1e6)
                    log(
                        f"round {i + 1} tracking {side}: {load.rate:,.0f} GET/s, "
                        f"{cpu[side][-1]:.0f} µs CPU/GET"
                    )
        finally:
            for server, _ in servers.values():
                server.stop()
        record_us = _record_cost(Path(tmp))
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
    cpu_on, cpu_off = statistics.median(cpu["on"]), statistics.median(cpu["off"])
    print(f"4 KiB GET c{CONCURRENCY} ({'wrk' if wrk else 'python'} load, {rounds} rounds x {seconds:g} s)")
    for side in ("on", "off"):
        runs = ", ".join(f"{r:,.0f}/s {c:.0f} µs" for r, c in zip(rates[side], cpu[side], strict=True))
        print(
            f"  tracking {side:3}: {statistics.median(rates[side]):,.0f} GET/s, "
            f"{statistics.median(cpu[side]):.0f} µs CPU/GET  (runs: {runs})"
        )
    print(f"  rate on/off: {on / off:.3f}; CPU per GET on/off: {cpu_on / cpu_off:.3f}")
    print(
        f"  record() in process: {record_us:.2f} µs per call = "
        f"{record_us / cpu_off * 100:.2f}% of a GET's CPU"
    )
    return 0


def _record_cost(root: Path, calls: int = 200_000) -> float:
    """Microseconds per `LastUsedTracker.record` call (what the S3 app adds to a request)."""
    import time

    from coffer.identity.lastused import LastUsedTracker
    from coffer.store.db import Database

    db = Database(f"sqlite:///{root / 'record.db'}")
    tracker = LastUsedTracker(db, 3600)
    keys = [f"CWBENCHKEY{i:06d}" for i in range(100)]
    t0 = time.perf_counter()
    for i in range(calls):
        tracker.record(keys[i % 100], "GetObject", "127.0.0.1", "s3")
    elapsed = time.perf_counter() - t0
    db.dispose()
    return elapsed / calls * 1e6


if __name__ == "__main__":
    raise SystemExit(main())
