"""The targets (issue 19's, and the earlier ones still standing), judged on the rows of a run.

Each target says what was measured, met or short, and what bounds the figure. A target that
compares with Swift is judged on its other parts alone when Swift did not run, and says so;
a target whose rows were not measured (`--sections`) is n/a.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.environment import HUGE_PREFIXES, LIST_PREFIXES, BenchEnvironment
from bench.profiles import size_label
from bench.report import MB, Row, Target


def judge_targets(env: BenchEnvironment) -> None:
    report, found, p = env.report, env.limits, env.profile
    big = size_label(p.big)
    no_swift = f"Swift not measured ({env.swift_missing_reason})"

    def target(
        name: str, wanted: str, rows: list[str], judge: Callable[..., tuple[str, bool | None, str]]
    ) -> None:
        """`judge(*rows)` → (measured, met, what bounds it); n/a when a row is missing."""
        got = [report.row(r) for r in rows]
        if any(r is None for r in got):
            missing = ", ".join(n for n, r in zip(rows, got, strict=True) if r is None)
            report.targets.append(Target(name, wanted, f"not measured: {missing}", None))
            return
        measured, met, why = judge(*got)
        report.targets.append(Target(name, wanted, measured, met, why))

    def vs_swift(row: Row, floor: float) -> tuple[str, bool | None]:
        """ ", 3.1x Swift" and whether the ratio is ≥ floor (None: Swift did not run)."""
        if row.vs_swift is None:
            return f"; {no_swift}", None
        return f", {row.vs_swift:.2f}x Swift ({row.swift:,.0f})", row.vs_swift >= floor

    def both(absolute: bool, ratio: bool | None) -> bool | None:
        """Short if any judged part is short; met only if every part was judged and met."""
        if not absolute or ratio is False:
            return False
        return None if ratio is None else True

    def delimiter(row: Row) -> tuple[str, bool | None, str]:
        text, ok = vs_swift(row, 3)
        why = "index reads (100 prefixes: ≥ 100 seeks, or every key), the XML; Swift: its container DB"
        return f"{row.value:,.0f} pages/s{text}", ok, why

    target(
        f"root delimiter listing, {p.list_keys:,} keys / {LIST_PREFIXES} prefixes ≥ 3x Swift",
        "≥ 3x Swift",
        [f"ListObjectsV2 root delimiter, {p.list_keys:,} keys in {LIST_PREFIXES} prefixes, c4"],
        delimiter,
    )
    huge_page = f"root delimiter page, {p.huge_keys:,} keys in {HUGE_PREFIXES:,} prefixes"

    def huge(p50: Row, p99: Row) -> tuple[str, bool, str]:
        why = f"at least {HUGE_PREFIXES:,} index seeks; a scan of every key would grow with the keys"
        return f"p50 {p50.value:.1f} ms, p99 {p99.value:.1f} ms", (p99.value or 1e9) <= 50, why

    target(
        f"{p.huge_keys:,} keys / {HUGE_PREFIXES:,} prefixes: a delimiter page ≤ 50 ms",
        "≤ 50 ms (p99)",
        [f"{huge_page}, p50", f"{huge_page}, p99"],
        huge,
    )

    def page(p50: Row, p99: Row) -> tuple[str, bool, str]:
        why = "one index range scan of 1,000 rows from a random start-after"
        return f"p50 {p50.value:.1f} ms, p99 {p99.value:.1f} ms", (p99.value or 1e9) <= 50, why

    huge_full = f"one page of 1000 from {p.huge_keys:,} keys"
    target(
        f"{p.huge_keys:,} keys: a full-listing page ≤ 50 ms",
        "≤ 50 ms (p99)",
        [f"{huge_full}, p50", f"{huge_full}, p99"],
        page,
    )

    def small_put(row: Row) -> tuple[str, bool | None, str]:
        creates = found.get("small_files_c16") or 0
        ratio = (row.value or 0) / creates if creates else 0
        met = (row.value or 0) >= 1500 and ratio >= 0.35
        why = f"durable 4 KiB creates c16 on this disk ({creates:,.0f}/s) and one SQLite writer (WAL commits)"
        return f"{row.value:,.0f} ops/s = {ratio:.2f}x durable creates c16", met, why

    target(
        "4 KiB durable PUT c16 (default settings) ≥ 1,500/s and ≥ 0.35x durable creates",
        "≥ 1,500 and ≥ 0.35x",
        ["4 KiB PUT signed, c16"],
        small_put,
    )

    def multipart(row: Row) -> tuple[str, bool | None, str]:
        disk, series = found.get("disk_write_sync") or 0, found.get("md5_sha256_series") or 0
        bound = min(disk, 2 * series) / MB
        ratio = (row.value or 0) / bound if bound else 0
        text, ok = vs_swift(row, 1.3)
        why = f"min(disk + fsync {disk / MB:,.0f}, two cores MD5+SHA-256 {2 * series / MB:,.0f}) MB/s"
        return f"{row.value:,.0f} MB/s = {ratio:.2f}x bound{text}", both(ratio >= 0.9, ok), why

    parts = -(-p.big // p.part)
    target(
        f"multipart {parts}x{size_label(p.part)} / {p.streams} connections ≥ 1.3x Swift and ≥ 0.9x bound",
        "≥ 1.3x Swift, ≥ 0.9x min(disk, 2 cores MD5+SHA-256)",
        [f"{big} multipart, {parts}x{size_label(p.part)}, {p.streams} connections"],
        multipart,
    )

    def small_get(row: Row) -> tuple[str, bool | None, str]:
        text, ok = vs_swift(row, 10)
        why = "CPU per request (SigV4, authz, metadata read) on two cores; ceiling: the uvicorn hello app"
        return f"{row.value:,.0f} ops/s{text}", both((row.value or 0) >= 6000, ok), why

    target(
        "4 KiB GET c16 (default settings) ≥ 6,000/s and ≥ 10x Swift",
        "≥ 6,000 and ≥ 10x Swift",
        ["4 KiB GET signed, c16"],
        small_get,
    )

    def walk(row: Row) -> tuple[str, bool, str]:
        why = "per page: one index range scan of 1,000 rows and 1,000 <Contents> of XML, one connection"
        return f"{row.value:,.0f} pages/s{vs_swift(row, 0)[0]}", (row.value or 0) >= 120, why

    target(
        f"full ListObjectsV2 walk of {p.list_keys:,} keys ≥ 120 pages/s",
        "≥ 120",
        [f"ListObjectsV2 {p.list_keys:,} keys, pages of 1000, c1 walk"],
        walk,
    )

    # the earlier targets that still stand
    def large_get(row: Row) -> tuple[str, bool, str]:
        measured = f"{row.value:,.0f} MB/s = {row.vs_bound:.2f}x {found['loopback_get'] / MB:,.0f} MB/s"
        return (
            measured,
            (row.vs_bound or 0) >= 0.7,
            "nginx sendfile of the same blob, read by the same client",
        )

    target(f"{big} GET ≥ 70% of loopback", "≥ 0.70x GET baseline", [f"{big} GET, one stream"], large_get)

    def large_put(row: Row) -> tuple[str, bool, str]:
        bound = f"min(MD5 {found['md5'] / MB:,.0f}, disk {found['disk_write_sync'] / MB:,.0f}) MB/s"
        return f"{row.value:,.0f} MB/s = {row.vs_bound:.2f}x {bound}", (row.vs_bound or 0) >= 0.7, bound

    target(
        f"{big} PUT signed, durable ≥ 70% of min(MD5, disk)",
        "≥ 0.70x bound",
        [f"{big} PUT, one stream, signed payload, durable"],
        large_put,
    )

    def keys(row: Row) -> tuple[str, bool, str]:
        return f"{row.value:,.0f} keys/s", (row.value or 0) >= 1000, "one SQLite commit per key (WAL, FULL)"

    target(
        "key minting ≥ 1,000 keys/s",
        "≥ 1,000",
        ["access keys minted via POST /v1/cwobject/access-key, c16"],
        keys,
    )
    peak = next((r for r in report.rows if r.name.startswith("peak RSS")), None)

    def memory(growth: Row) -> tuple[str, bool, str]:
        peak_text = f" (peak {peak.value:,.0f} MiB)" if peak is not None and peak.value is not None else ""
        measured = f"growth {growth.value:,.0f} MiB{peak_text}"
        return measured, (growth.value or 1e9) < 64, "streaming buffers of 1 MiB per request"

    target(
        f"memory flat while {size_label(p.memory)} streams in and out",
        "growth < 64 MiB",
        ["RSS growth while streaming"],
        memory,
    )
