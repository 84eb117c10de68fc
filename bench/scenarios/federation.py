"""`federation`: bench/federation_bench.py on the run's own Coffer (SQLite): the verifiers
in process, the exchanges in process stage by stage, and over HTTP beside plain mints. Its
rows join the `machine`, `cpu` and `keys` sections of the table."""

from __future__ import annotations

from bench import federation_bench
from bench.report import Row
from bench.scenarios.base import Scenario


class Federation(Scenario):
    section = "federation"

    def run(self) -> None:
        env = self.env
        sizes = federation_bench.SIZES[self.profile.name]
        env.section("workload identity federation: verifier CPU, SAML/OIDC exchanges over HTTP")
        verified = federation_bench.measure_verifiers(sizes.verify_seconds)
        env.limits["federation_verify"] = verified
        self.place(federation_bench.verifier_rows(verified))
        service = federation_bench.measure_service(env.work_dir, "sqlite", sizes.service)
        self.place(federation_bench.service_rows(service, "sqlite"))
        strict = self.profile.name == "selftest"
        exchanges = federation_bench.measure_exchanges(env.coffer, sizes, strict=strict)
        commits = env.limits.get("sqlite_commits")
        self.place(federation_bench.exchange_rows(exchanges, "sqlite", sizes, verified["rates"], commits))

    def place(self, rows: list[Row]) -> None:
        """Each row after the last one of its section, so the table stays grouped."""
        report = self.env.report
        for row in rows:
            last = max((i for i, r in enumerate(report.rows) if r.section == row.section), default=None)
            if last is None:
                report.rows.append(row)
            else:
                report.rows.insert(last + 1, row)
