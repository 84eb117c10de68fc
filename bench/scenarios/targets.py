"""The targets, judged on the rows of a run that measured every section."""

from __future__ import annotations

from bench.environment import BenchEnvironment
from bench.profiles import size_label
from bench.report import MB, Row, Target


def judge_targets(env: BenchEnvironment) -> None:
    report, found, p = env.report, env.limits, env.profile
    big = size_label(p.big)

    def row(name: str) -> Row:
        got = report.row(name)
        assert got is not None, name
        return got

    def target(name: str, wanted: str, measured: str, met: bool) -> None:
        report.targets.append(Target(name, wanted, measured, met))

    get = row(f"{big} GET, one stream")
    target(
        f"{big} GET ≥ 70% of loopback",
        "≥ 0.70x GET baseline",
        f"{get.value:,.0f} MB/s = {get.vs_bound:.2f}x {found['loopback_get'] / MB:,.0f} MB/s",
        (get.vs_bound or 0) >= 0.7,
    )
    put = row(f"{big} PUT, one stream, signed payload, durable")
    target(
        f"{big} PUT signed, durable ≥ 70% of min(MD5, disk)",
        "≥ 0.70x bound",
        f"{put.value:,.0f} MB/s = {put.vs_bound:.2f}x min(MD5 {found['md5'] / MB:,.0f}, "
        f"disk {found['disk_write_sync'] / MB:,.0f}) MB/s",
        (put.vs_bound or 0) >= 0.7,
    )
    get16 = row("4 KiB GET signed, c16")
    peer_ok = get16.vs_peer is not None and get16.vs_peer >= 10
    vs = f", {get16.vs_peer:.1f}x moto" if get16.vs_peer else f", no peer ({env.peer_missing_reason})"
    target(
        "4 KiB GET c16 ≥ 5,000 ops/s and ≥ 10x moto",
        "≥ 5,000 and ≥ 10x",
        f"{get16.value:,.0f} ops/s{vs}",
        (get16.value or 0) >= 5000 and (peer_ok or get16.vs_peer is None),
    )
    put16 = row("4 KiB PUT signed, c16")
    target(
        "4 KiB durable PUT c16 ≥ 1,000 ops/s",
        "≥ 1,000",
        f"{put16.value:,.0f} ops/s = {put16.vs_bound:.2f}x durable creates c16",
        (put16.value or 0) >= 1000,
    )
    walk = row(f"ListObjectsV2 {p.list_keys:,} keys, pages of 1000, c1 walk")
    target(
        f"ListObjectsV2 {p.list_keys:,} keys ≥ 100 pages/s",
        "≥ 100",
        f"{walk.value:,.0f} pages/s",
        (walk.value or 0) >= 100,
    )
    p99 = row(f"one page of 1000 from {p.huge_keys:,} keys, p99")
    p50 = row(f"one page of 1000 from {p.huge_keys:,} keys, p50")
    target(
        f"a page from {p.huge_keys:,} keys ≤ 50 ms",
        "≤ 50 ms (p99)",
        f"p50 {p50.value:.1f} ms, p99 {p99.value:.1f} ms",
        (p99.value or 1e9) <= 50,
    )
    keys = row("access keys minted via POST /v1/cwobject/access-key, c16")
    target(
        "key minting ≥ 1,000 keys/s",
        "≥ 1,000",
        f"{keys.value:,.0f} keys/s",
        (keys.value or 0) >= 1000,
    )
    growth = row("RSS growth while streaming")
    peak = next(r for r in report.rows if r.name.startswith("peak RSS"))
    target(
        f"memory flat while {size_label(p.memory)} streams in and out",
        "growth < 64 MiB",
        f"growth {growth.value:,.0f} MiB (peak {peak.value:,.0f} MiB)",
        (growth.value or 1e9) < 64,
    )
