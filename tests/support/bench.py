"""The benchmarks' self-tests (`python -m bench... --selftest`) run as their own process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_selftest(module: str, tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    """`python -m <module> --selftest <args>` from the repository's root, its JSON result
    written to a file under `tmp_path` and its scratch files under `tmp_path`; the test fails
    with the end of its stderr unless it exits 0. Returns the JSON result and its stdout."""
    out = tmp_path / f"{module}.json"
    proc = subprocess.run(
        [sys.executable, "-m", module, "--selftest", *args, "--json", str(out), "--tmp", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result: dict[str, Any] = json.loads(out.read_text())
    return result, proc.stdout
