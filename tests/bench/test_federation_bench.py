"""`python -m bench.federation_bench --selftest` keeps working: every row is there, every
exchange answered 200 with credentials, a used SAML assertion is refused. No timings are
asserted: the figures are measured by the bench, never by tests."""

from __future__ import annotations

import math
from pathlib import Path

from bench.federation_bench import KINDS, LABELS, SERVICE_LABELS, SERVICE_STAGES, SIZES
from tests.support.bench import run_selftest
from tests.support.harness import postgres_available


def test_selftest_rows_and_every_exchange_succeeds(tmp_path: Path) -> None:
    pg_missing = postgres_available()  # None when reachable
    backends = ["sqlite"] + ([] if pg_missing else ["postgres"])
    result, stdout = run_selftest("bench.federation_bench", tmp_path, "--backends", ",".join(backends))
    assert result["meta"]["mode"] == "selftest" and result["meta"]["backends"] == backends
    rows = {row["name"]: row for row in result["rows"]}
    for row in result["rows"]:
        value = row["value"]
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, row
        if row["bound"] is not None:
            assert row["bound"] > 0 and row["vs_bound"] is not None, row

    # the machine's raw limits, and each verifier beside the one that bounds it
    assert any(n.startswith("RSA-2048 PKCS#1 v1.5 SHA-256 verify") for n in rows)
    assert any(n.startswith("ECDSA P-256 SHA-256 verify") for n in rows)
    verifiers = [r for r in result["rows"] if r["section"] == "cpu" and "verify_" in r["name"]]
    assert [r["name"].split(":")[0] for r in verifiers] == [
        "SAML verify_saml_response",
        "OIDC verify_oidc_token",
        "OIDC verify_oidc_token",
    ]
    assert all(r["bound_name"].startswith("raw ") for r in verifiers)
    assert set(verifiers[0]["detail"]["stages_us"]) >= {
        "lxml parse",
        "signxml XMLVerifier.verify (c14n, digest, RSA)",
    }

    # every kind, at both concurrencies, on every backend; each request answered 200 exactly once
    sizes = SIZES["selftest"]
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    for backend in backends:
        # in process, stage by stage: the SAML exchange's replay claim is timed inside its mint
        for kind, label in SERVICE_LABELS.items():
            row = rows[f"{label} ({names[backend]})"]
            assert row["section"] == "cpu" and row["unit"] == "µs", row
            stages = {f"{stage} cpu_us" for stage in SERVICE_STAGES.get(kind, ())}
            assert stages <= set(row["detail"]), row
        saml = rows[f"{SERVICE_LABELS['saml']} ({names[backend]})"]
        assert {"replay claim cpu_us", "mint write cpu_us", "verify + checks cpu_us"} <= set(saml["detail"])
        for conc, n in ((sizes.concurrency, sizes.exchanges), (1, sizes.exchanges_c1)):
            for kind in KINDS:
                row = rows[f"{LABELS[kind]}, c{conc} ({names[backend]})"]
                assert row["section"] == "keys" and row["unit"] == "keys/s"
                best = row["detail"]["best"]
                assert best["requests"] == n and best["ok"] == n and best["errors"] == 0, best
                assert best["statuses"] == {"200": n}
                assert 0 < best["p50_ms"] <= best["p99_ms"]
                if kind != "mint":  # "x mint": the plain mint in the same run is the bound
                    assert row["bound_name"] == f"mint c{conc}, same client"
    assert "| keys | SAML exchange" in stdout  # the table was printed
    assert not list(tmp_path.glob("coffer-fedbench-*")), "the run's data directory was left behind"
