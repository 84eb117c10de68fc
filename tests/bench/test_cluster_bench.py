"""`python -m bench.cluster_bench --selftest` keeps working: every arrangement measured with no
failed request, each ratio against the row it names, and both propagation paths reported. No
timings are asserted: the figures are the bench's, not the tests'."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.support.bench import run_selftest
from tests.support.harness import postgres_available


def test_selftest_measures_every_arrangement_and_the_propagation(tmp_path: Path) -> None:
    why = postgres_available()
    if why:
        pytest.skip(f"the cluster needs PostgreSQL: {why}")
    result, stdout = run_selftest("bench.cluster_bench", tmp_path)
    assert result["meta"]["mode"] == "selftest" and result["meta"]["bench"] == "cluster"
    rows = {row["name"]: row for row in result["rows"]}
    for method in ("GET", "PUT"):
        straight = rows[f"4 KiB {method} signed c16: 1 node, straight"]
        one = rows[f"4 KiB {method} signed c16: 1 node behind nginx"]
        three = rows[f"4 KiB {method} signed c16: 3 nodes behind nginx"]
        for row in (straight, one, three):
            assert row["value"] > 0 and row["detail"]["errors"] == 0, row
        assert one["bound"] == straight["value"] and three["bound"] == one["value"]
        assert math.isclose(three["vs_bound"], three["value"] / one["value"])
    for path in ("same-host", "db-only"):
        for q in ("p50", "p99"):
            assert rows[f"change honoured, {path}: {q}"]["value"] > 0
    assert result["limits"]["propagation"]["db-only"]["n"] > 0
    assert "3 nodes behind nginx" in stdout
