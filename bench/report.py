"""Rows of the result table, the targets judged on them, and their rendering (text and JSON)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MB = 1e6


@dataclass
class Row:
    section: str
    name: str
    unit: str
    value: float | None
    peer: float | None = None  # the peer, same run, same client
    bound: float | None = None  # the machine's limit that bounds this figure, same run
    bound_name: str = ""
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    swift: float | None = None  # the production peer (OpenStack Swift + s3api), same run, same client
    compares_swift: bool = False  # Swift was to be measured for this row (its cell says why not)

    @property
    def vs_bound(self) -> float | None:
        if self.value is None or not self.bound:
            return None
        return self.value / self.bound

    @property
    def vs_peer(self) -> float | None:
        if self.value is None or not self.peer:
            return None
        return self.value / self.peer

    @property
    def vs_swift(self) -> float | None:
        if self.value is None or not self.swift:
            return None
        return self.value / self.swift


@dataclass
class Target:
    name: str
    wanted: str
    measured: str
    met: bool | None  # None: could not be measured in this run
    why: str = ""


@dataclass
class Report:
    meta: dict[str, Any]
    limits: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def row(self, name: str) -> Row | None:
        return next((r for r in self.rows if r.name == name), None)

    def as_json(self) -> dict[str, Any]:
        rows = []
        for r in self.rows:
            d = asdict(r)
            d["vs_bound"], d["vs_peer"], d["vs_swift"] = r.vs_bound, r.vs_peer, r.vs_swift
            rows.append(d)
        return {
            "meta": self.meta,
            "limits": self.limits,
            "rows": rows,
            "targets": [asdict(t) for t in self.targets],
        }

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_json(), indent=2, default=str) + "\n")

    def render(self) -> str:
        return render_markdown(self)


def fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit in ("MB/s", "ops/s", "pages/s", "keys/s", "files/s", "commits/s", "MiB"):
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def render_markdown(report: Report) -> str:
    m = report.meta
    out = [
        f"Coffer benchmark — mode `{m['mode']}`, {m['started']}, commit {m.get('commit', '?')}",
        f"machine: {m['cpus']} CPUs ({m.get('cpu_model', '?')}), {m['memory_gib']:.0f} GiB RAM, "
        f"Python {m['python']}; Coffer workers: {m['workers']}; peer: {m.get('peer', 'none')}; "
        f"load generator: {m.get('loadgen', '?')}; GET baseline: {m.get('baseline', '?')}",
        f"command: `{m['command']}`",
        "",
        f"Swift: {m.get('swift', 'none')}",
        f"command: `{m['command']}`",
        "",
        "| section | measurement | Coffer | unit | bound (same run) | x bound | moto | x moto "
        "| Swift | x Swift | notes |",
        "|---|---|---:|---|---|---:|---:|---:|---:|---:|---|",
    ]
    swift_missing = m.get("swift_missing", "")
    for r in report.rows:
        bound = f"{r.bound_name} {fmt(r.bound, r.unit)}" if r.bound is not None else (r.bound_name or "—")
        swift = fmt(r.swift, r.unit) if r.swift is not None else "—"
        if r.swift is None and swift_missing and r.compares_swift:
            swift = f"not run: {swift_missing}"
        out.append(
            f"| {r.section} | {r.name} | {fmt(r.value, r.unit)} | {r.unit} | {bound} | {ratio(r.vs_bound)} "
            f"| {fmt(r.peer, r.unit) if r.peer is not None else '—'} | {ratio(r.vs_peer)} "
            f"| {swift} | {ratio(r.vs_swift)} | {r.note} |"
        )
    out += ["", "| target | wanted | measured | met | what bounds it |", "|---|---|---|---|---|"]
    for t in report.targets:
        met = "n/a" if t.met is None else ("**met**" if t.met else "**short**")
        out.append(f"| {t.name} | {t.wanted} | {t.measured} | {met} | {t.why} |")
    return "\n".join(out)
