"""What every part of the benchmark shares: where results go, logging, CPU accounting,
best-of and percentile helpers, the facts about the machine that head every report, and
how a finished report is printed and saved."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.report import Report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MiB = 1 << 20
GiB = 1 << 30


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its live children."""
    total = 0.0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


def best_of(reps: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    """The highest of `reps` (at least one) measurements, and all of them."""
    samples = [measure() for _ in range(max(1, reps))]
    return max(samples), samples


def percentile(ordered: list[float], fraction: float) -> float:
    """The value at `fraction` (0.5, 0.99, ...) of an ascending list; 0.0 for an empty one."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def machine_facts(command: str) -> dict[str, Any]:
    """When, at which commit, how, and on what a run ran: the head of every report's meta."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        names = (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
        model = next(names, "")
    return {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "command": f"{command} " + " ".join(sys.argv[1:]),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": psutil.virtual_memory().total / GiB,
        "python": platform.python_version(),
    }


def publish(
    report: Report, table: str, json_path: Path | None, markdown_path: Path | None, name: str
) -> None:
    """Print the table, write the JSON (default bench/results/<time>-<name>.json) and, when
    asked, the table as Markdown."""
    print(table)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = json_path or RESULTS / f"{stamp}-{name}.json"
    report.write_json(path)
    if markdown_path:
        markdown_path.write_text(table + "\n")
    log(f"wrote {path} ({report.meta['seconds']:.0f}s)")
