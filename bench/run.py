"""`python -m bench`: Coffer, the machine's limits and a peer, side by side in one run.

Order of a run: the machine's limits (hashing, disk, small durable files, SQLite commits);
a bucket of many keys written straight into the store; Coffer started on its embedded
default; the peer (moto) started; then large objects, small objects, listings, key minting,
per-request CPU costs and memory, each measured on Coffer, on its bound and on the peer
back to back. The table goes to stdout, the JSON to bench/results/.

Each section is a scenario class in bench/scenarios/ over one shared `BenchEnvironment`
(bench/environment.py: the servers, the endpoints, the report).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import loadgen, servers, swift
from bench.common import publish
from bench.environment import BenchEnvironment
from bench.profiles import PROFILES
from bench.report import Report
from bench.scenarios import ALL_SECTIONS, SCENARIOS, judge_targets


def run_bench(env: BenchEnvironment, sections: frozenset[str]) -> Report:
    """The chosen sections in order: those that need no server, then Coffer and the peer,
    then the rest; then the targets (n/a where a section did not run)."""
    env.write_source()
    chosen = [scenario for scenario in SCENARIOS if scenario.section in sections]
    for scenario in chosen:
        if not scenario.needs_servers:
            scenario(env).run()
    env.start_servers()
    for scenario in chosen:
        if scenario.needs_servers:
            scenario(env).run()
    judge_targets(env)  # a target whose rows were not measured says so
    env.report.meta["seconds"] = time.monotonic() - env.started
    return env.report


def install_deps() -> int:
    """nginx, wrk, Swift and memcached from apt; moto[server] into its own venv (it pins boto
    versions)."""
    rc = 0
    if shutil.which("apt-get") and (not servers.nginx_binary() or not loadgen.have_wrk() or swift.missing()):
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        rc |= subprocess.call([*sudo, "apt-get", "update"])
        rc |= subprocess.call([*sudo, "apt-get", "install", "-y", "nginx-light", "wrk", *swift.APT_PACKAGES])
    if servers.moto_python() is None:
        venv = servers.MOTO_VENV
        venv.parent.mkdir(parents=True, exist_ok=True)
        rc |= subprocess.call([sys.executable, "-m", "venv", str(venv)])
        rc |= subprocess.call([str(venv / "bin" / "pip"), "install", "-q", "moto[server]"])
    print(
        f"nginx: {servers.nginx_binary()}, wrk: {shutil.which('wrk')}, moto: {servers.moto_python()}, "
        f"swift: {swift.missing() or swift.version()}"
    )
    return rc


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller sizes, every row, under 2 minutes")
    mode.add_argument(
        "--selftest", action="store_true", help="tiny sizes, Python fallbacks, seconds; checks the harness"
    )
    mode.add_argument(
        "--install-deps", action="store_true", help="apt-get nginx + wrk; moto[server] in its own venv"
    )
    ap.add_argument("--workers", type=int, default=2, help="Coffer worker processes (default 2)")
    ap.add_argument("--no-peer", action="store_true", help="skip moto")
    ap.add_argument("--moto-python", help="an interpreter that has moto[server] installed")
    ap.add_argument("--no-swift", action="store_true", help="skip the OpenStack Swift peer")
    ap.add_argument(
        "--no-wrk", action="store_true", help="use the asyncio load generator even if wrk is installed"
    )
    ap.add_argument(
        "--no-nginx", action="store_true", help="use the Python sendfile baseline even if nginx is installed"
    )
    ap.add_argument(
        "--sections",
        default=",".join(sorted(ALL_SECTIONS)),
        help="comma list of: " + ", ".join(sorted(ALL_SECTIONS)),
    )
    ap.add_argument(
        "--json", type=Path, help="where to write the JSON (default bench/results/<time>-<mode>.json)"
    )
    ap.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    ap.add_argument("--tmp", help="directory for the run's data (default: the system temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the run's data directory")
    args = ap.parse_args(argv)
    args.sections = frozenset(s.strip() for s in args.sections.split(",") if s.strip())
    if args.sections - ALL_SECTIONS:
        ap.error(f"unknown sections: {', '.join(sorted(args.sections - ALL_SECTIONS))}")
    if args.selftest:  # seconds, no system packages: Swift alone takes a minute to start
        args.no_wrk = args.no_nginx = args.no_swift = True
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.install_deps:
        return install_deps()
    profile = PROFILES["selftest" if args.selftest else "quick" if args.quick else "full"]
    env = BenchEnvironment(args, profile)
    try:
        report = run_bench(env, args.sections)
    finally:
        env.close()
    publish(report, report.render(), args.json, args.markdown, profile.name)
    return 0
