"""Per-request CPU costs: SigV4 verification (bench/sigv4_bench.py), policy decisions
(bench/policy_bench.py), and the S3 face's authorization door (`coffer.authz.authorize_s3`)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
_SIGV4_LINE = re.compile(r"^(.*?)\s+([\d.]+) µs per verification")
_POLICY_LINE = re.compile(r"^(.*?)\s+(allow|deny|Allow|Deny|ALLOW|DENY|\S+)\s+([\d.]+)\s+([\d.]+)\s*$")


def sigv4(iterations: int) -> dict[str, float]:
    """{case: µs per verification} from bench/sigv4_bench.py, run as its own process."""
    out = subprocess.run(
        [sys.executable, str(HERE / "sigv4_bench.py"), str(iterations)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result = {}
    for line in out.stdout.splitlines():
        m = _SIGV4_LINE.match(line.strip())
        if m:
            result[m.group(1).strip()] = float(m.group(2))
    if not result:
        raise RuntimeError(f"sigv4_bench printed nothing usable: {out.stdout[-500:]}")
    return result


def policy(iterations: int) -> dict[str, float]:
    """{case: µs per decision} from bench/policy_bench.py, run as its own process."""
    out = subprocess.run(
        [sys.executable, str(HERE / "policy_bench.py"), "--iterations", str(iterations)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result = {}
    for line in out.stdout.splitlines()[2:]:
        m = _POLICY_LINE.match(line.rstrip())
        if m:
            result[m.group(1).strip()] = float(m.group(3))
    if not result:
        raise RuntimeError(f"policy_bench printed nothing usable: {out.stdout[-500:]}")
    return result


def authorize_s3(iterations: int) -> float:
    """µs per `authorize_s3` call for a GetObject by a key of the bucket's organization,
    whatever the door does today (the interim org rule, or the policy engine once wired)."""
    from coffer.authz import authorize_s3 as door
    from coffer.identity.models import AccessKey, KeySource
    from coffer.s3.router import route
    from coffer.storage.models import Bucket

    now = datetime.now(UTC)
    key = AccessKey(
        access_key_id="CWBENCHBENCHBENC",
        org_id="org1",
        principal_name="coreweave/alice",
        user_id="alice",
        source=KeySource.API_TOKEN,
        role=None,
        attributes={},
        multi_attributes={},
        created_at=now,
        expires_at=None,
        revoked_at=None,
        suspended=False,
    )
    bucket = Bucket(
        name="data", org_id="org1", owner_principal="coreweave/alice", zone="US-EAST-04A", created_at=now
    )
    op = route("GET", "data", "photos/2025/cat.jpg", {})
    door(key, op, bucket)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(iterations):
            door(key, op, bucket)
        best = min(best, (time.perf_counter() - t0) / iterations)
    return best * 1e6
