"""Per-request CPU costs: SigV4 verification (bench/sigv4_bench.py), policy decisions
(bench/policy_bench.py: the engine; bench/authz_bench.py: the door on a node with 100
policies), and the door on this run's own store (`node.authz.authorize_s3`)."""

from __future__ import annotations

import re
import subprocess
import sys
import time

from bench.common import ROOT

_SIGV4_LINE = re.compile(r"^(.*?)\s+([\d.]+) µs per verification")
_POLICY_LINE = re.compile(r"^(.*?)\s+(allow|deny|Allow|Deny|ALLOW|DENY|\S+)\s+([\d.]+)\s+([\d.]+)\s*$")
_AUTHZ_LINE = re.compile(r"^(.*?)\s+(allow|deny)\s+([\d.]+)\s*$")


def _run_module(
    module: str, args: list[str], line: re.Pattern[str], value_group: int, skip: int
) -> dict[str, float]:
    """Run `python -m bench.<module> ARGS` in its own process; {case: the number in
    `value_group`} from each output line (after the first `skip`) that `line` matches."""
    out = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
        cwd=ROOT,
    )
    result = {}
    for text in out.stdout.splitlines()[skip:]:
        m = line.match(text.strip())
        if m:
            result[m.group(1).strip()] = float(m.group(value_group))
    if not result:
        raise RuntimeError(f"{module} printed nothing usable: {out.stdout[-500:]}")
    return result


def sigv4(iterations: int) -> dict[str, float]:
    """{case: µs per verification} from bench/sigv4_bench.py."""
    return _run_module("sigv4_bench", [str(iterations)], _SIGV4_LINE, 2, skip=0)


def policy(iterations: int) -> dict[str, float]:
    """{case: µs per decision} from bench/policy_bench.py."""
    return _run_module("policy_bench", ["--iterations", str(iterations)], _POLICY_LINE, 3, skip=2)


def authz(iterations: int) -> dict[str, float]:
    """{case: µs per request} from bench/authz_bench.py (the door on a node holding 100
    policies x 10 statements)."""
    return _run_module("authz_bench", ["--iterations", str(iterations)], _AUTHZ_LINE, 3, skip=2)


def authorize_s3(data_dir: str, access_key_id: str, bucket_name: str, iterations: int) -> float:
    """µs per decision of the S3 door (`node.authz.authorize_s3`) for a GetObject by the
    bench's own key on its own bucket: the organization policies and bucket policy of the
    running server's store, compiled and cached as a worker holds them."""
    from coffer.authz import Origin
    from coffer.config import Settings
    from coffer.node import Node
    from coffer.s3.router import route

    node = Node.open(Settings(data_dir=data_dir, log_level="warning"), migrate=False)
    try:
        creds = node.keys.credentials(access_key_id)
        assert creds is not None
        key, bucket = creds.key, node.storage.buckets.get(bucket_name)
        op = route("GET", bucket_name, "photos/2025/cat.jpg", {})
        origin = Origin(source_ip="127.0.0.1", secure=False)
        door = node.authz.authorize_s3
        door(key, op, bucket, origin)
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(iterations):
                door(key, op, bucket, origin)
            best = min(best, (time.perf_counter() - t0) / iterations)
    finally:
        node.close()
    return best * 1e6
