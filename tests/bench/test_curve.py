"""`python -m bench.curve --selftest` keeps working: every metric at every size on both
backends, each row's ratio against the smallest size's figure, no failed request, and the
stores removed afterwards. No timings are asserted."""

from __future__ import annotations

import math
from pathlib import Path

from bench.curve import METRICS
from bench.populate import prefixed_key
from tests.support.bench import run_selftest
from tests.support.harness import postgres_available

SIZES = (500, 1500)


def test_selftest_measures_every_metric_at_every_size(tmp_path: Path) -> None:
    backends = ["sqlite"] + ([] if postgres_available() else ["postgres"])
    args = ("--sizes", ",".join(map(str, SIZES)), "--samples", "3", "--backends", ",".join(backends))
    result, stdout = run_selftest("bench.curve", tmp_path, *args)
    assert result["meta"]["sizes"] == list(SIZES)
    for backend in backends:
        rows = [r for r in result["rows"] if r["section"] == f"curve {backend}"]
        assert len(rows) == len(METRICS) * len(SIZES)
        for metric in METRICS:
            first, second = (r for r in rows if r["detail"]["metric"] == metric)
            assert first["detail"]["keys"] == SIZES[0] and first["bound"] is None
            assert second["bound"] == first["value"] and math.isclose(
                second["vs_bound"], second["value"] / first["value"]
            )
            assert all(r["value"] > 0 for r in (first, second)), metric
        assert result["meta"][f"errors_{backend}"] == {str(n): 0 for n in SIZES}
        assert f"| {backend} | 4 KiB GET signed, c16 (ops/s) |" in stdout
    assert not list(tmp_path.glob("coffer-curve-*")), "the stores were left behind"


def test_prefixed_keys_sort_by_index_under_the_asked_prefixes() -> None:
    keys = [prefixed_key(i, 10_000, 100) for i in range(10_000)]
    assert keys == sorted(keys)
    assert len({k.split("/")[0] for k in keys}) == 100
    assert keys[99].startswith("p0000/") and keys[100].startswith("p0001/")
