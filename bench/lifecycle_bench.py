"""The lifecycle executor over a big bucket: keys/s and peak RSS of a pass, beside DeleteObjects.

On the embedded store (SQLite + blob directory, in a temp dir):

1. **Seeding, not through S3**: two buckets of N keys each are written straight into the
   `objects` table (`bench/populate.py`: one executemany, all rows pointing at one 4 KiB blob).
   In `lc-bench`, half the keys are under `exp/` and half under `keep/`; a lifecycle rule
   (`Expiration` `Days: 1`, with one-second rule-days) matches the `exp/` half. In `plain-bench`, the
   same N/2 `exp/` keys to delete by hand.
2. **The pass**: `coffer lifecycle run --bucket lc` in its own process, after the rule is due.
   Reported: keys examined per second, deletions per second, the pass's own time (from its
   log line), and the process's peak RSS (`wait4`'s ru_maxrss), beside the peak RSS of the
   same command on a bucket whose rule matches nothing of a 1,000-key bucket (`small-bench`): with
   a bounded step, the difference does not grow with N.
3. **The baseline**: `coffer serve` on the same store, and DeleteObjects of the N/2 keys of
   `plain-bench` in requests of 1,000 keys from one boto3 client, then from 4 at once.

Ratios: the pass's deletions/s over DeleteObjects' keys/s (each deletion is one transaction
either way: DeleteObjects deletes key by key too).

    python -m bench.lifecycle_bench                 # 200,000 keys (several minutes)
    python -m bench.lifecycle_bench --keys 20000    # about a minute
    python -m bench.lifecycle_bench --selftest      # 2,000 keys; fails unless it deleted the half
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import log, machine_facts, publish
from bench.populate import bulk_bucket
from bench.report import Report, Row
from coffer.config import Settings
from coffer.lifecycle.rules import Filter, LifecycleConfiguration, Rule
from coffer.node import Node
from coffer.server import prepare
from tests.support.harness import CofferServer, coffer_cmd
from tests.support.s3 import s3_client

SECTION = "lifecycle"
ENV = {"COFFER_LIFECYCLE_DAY_SECONDS": "1", "COFFER_LIFECYCLE_INTERVAL_SECONDS": "0"}
BATCH = 1000  # DeleteObjects' most keys per request


def _key(prefix: str) -> Any:
    return lambda i: f"{prefix}/{i:07d}"


def _half(i: int) -> str:
    return f"exp/{i // 2:07d}" if i % 2 == 0 else f"keep/{i // 2:07d}"


def seed(settings: Settings, keys: int) -> dict[str, float]:
    """The three buckets and their rules; seconds spent per bucket."""
    info = prepare(settings)
    org, owner = info["org_id"], info["admin"]
    took = {
        "lc-bench": bulk_bucket(settings, org, owner, "lc-bench", keys, _half),
        "plain-bench": bulk_bucket(settings, org, owner, "plain-bench", keys // 2, _key("exp")),
        "small-bench": bulk_bucket(settings, org, owner, "small-bench", 1000, _key("keep")),
    }
    node = Node.open(settings, migrate=False)
    try:
        rule = Rule(id="half", enabled=True, filter=Filter(prefix="exp/"), expiration_days=1)
        for bucket in ("lc-bench", "small-bench"):
            node.storage.lifecycle.put(bucket, LifecycleConfiguration((rule,)))
    finally:
        node.close()
    return took


def run_pass(data: Path, bucket: str) -> tuple[dict[str, Any], float]:
    """`coffer lifecycle run --bucket B --json` in its own process: (its pass, with the
    pass's own `seconds`; the process's peak RSS in bytes, from wait4)."""
    args = [*coffer_cmd(), "lifecycle", "run", "--bucket", bucket, "--json", "--data-dir", str(data)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [*args, "--log-level", "warning"], stdout=out, stderr=err, env={**os.environ, **ENV}
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"coffer lifecycle run failed: {err.read().decode()[-2000:]}")
        (result,) = json.loads(out.read())
    return result, float(usage.ru_maxrss * 1024)  # Linux: KiB


def delete_objects(server: CofferServer, bucket: str, count: int, clients: int) -> float:
    """DeleteObjects of `count` keys exp/0000000 ..., BATCH per request, from `clients`
    clients at once; seconds."""
    key = server.mint_key()
    s3s = [s3_client(server, key) for _ in range(clients)]
    batches = [
        [{"Key": f"exp/{i:07d}"} for i in range(start, min(count, start + BATCH))]
        for start in range(0, count, BATCH)
    ]

    def send(n: int) -> None:
        for batch in batches[n::clients]:
            answer = s3s[n].delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            if answer.get("Errors"):
                raise RuntimeError(f"DeleteObjects errors: {answer['Errors'][:3]}")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, range(clients)))
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--selftest", action="store_true", help="2,000 keys; checks the counts")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args(argv)
    keys = 2000 if args.selftest else args.keys
    started = time.perf_counter()
    report = Report(
        meta={
            "mode": "selftest" if args.selftest else f"{keys} keys",
            "bench": "lifecycle",
            **machine_facts("python -m bench.lifecycle_bench"),
            "keys": keys,
            "workers": 1,
            "loadgen": "boto3 DeleteObjects, 1,000 keys a request",
            "baseline": "n/a",
        }
    )
    with tempfile.TemporaryDirectory(prefix="coffer-lc-bench-") as tmp:
        data = Path(tmp) / "coffer"
        settings = Settings(data_dir=str(data), log_level="warning")
        took = seed(settings, keys)
        log(f"seeded {keys:,} + {keys // 2:,} + 1,000 keys into the store in {sum(took.values()):.1f}s")
        time.sleep(1.1)  # one rule-day: the rule is due
        small, rss_small = run_pass(data, "small-bench")
        result, rss = run_pass(data, "lc-bench")
        wall = result["seconds"]
        counts = result["counts"]
        deleted = counts.get("expire_current", 0)
        if result["status"] != "done" or deleted != keys // 2 or counts.get("examined") != keys:
            raise RuntimeError(f"the pass did not do what it should: {result}")
        if small["counts"].get("expire_current", 0) != 0:
            raise RuntimeError(f"the pass on `small-bench` deleted: {small}")
        log(f"pass: {keys:,} keys, {deleted:,} deleted in {wall:.1f}s; peak RSS {rss / 1e6:.0f} MB")
        server = CofferServer(data_dir=data, workers=1, extra_args=["--log-level", "warning"], env=ENV)
        server.start()
        try:
            half = keys // 2
            one = delete_objects(server, "plain-bench", half // 2, 1)
            four = delete_objects(server, "plain-bench", half, 4) if half // 2 < half else 0.0
        finally:
            server.stop()
    plain_rate = (half // 2) / one
    four_rate = (half - half // 2) / four if four else None
    del_rate = deleted / wall
    report.add(Row(SECTION, "lifecycle pass: keys examined", "keys/s", keys / wall, note=f"{keys:,} keys"))
    report.add(
        Row(
            SECTION,
            "lifecycle pass: deletions",
            "keys/s",
            del_rate,
            bound=plain_rate,
            bound_name="DeleteObjects, 1 client",
            note="the pass alone, in `coffer lifecycle run`",
        )
    )
    if four_rate:
        report.add(
            Row(
                SECTION,
                "DeleteObjects, 4 clients",
                "keys/s",
                four_rate,
                bound=plain_rate,
                bound_name="1 client",
            )
        )
    report.add(
        Row(
            SECTION,
            "lifecycle pass: peak RSS",
            "MB",
            rss / 1e6,
            bound=rss_small / 1e6,
            bound_name="same command, 1,000-key bucket",
        )
    )
    report.meta["seconds"] = time.perf_counter() - started
    report.meta["seeding_seconds"] = took
    publish(report, report.render(), args.json, args.markdown, "lifecycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
