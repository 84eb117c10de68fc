"""`cpu`: the CPU each request pays for SigV4, the policy engine and the S3 door, beside the
CPU one 4 KiB GET at c16 may spend at the rate measured in `small`."""

from __future__ import annotations

import os

from bench import micro
from bench.report import Row
from bench.scenarios.base import Scenario

DOOR_NOTE = "node.authz: org policies (the admin's starter policy) + bucket policy, compiled, cached"


class RequestCpuCosts(Scenario):
    section = "cpu"

    def run(self) -> None:
        self.env.section("per-request CPU: SigV4, policy, authorize_s3")
        get = self.env.report.row("4 KiB GET signed, c16")
        rate = get.value if get and get.value else 0.0
        cores = os.cpu_count() or 1
        budget = cores * 1e6 / rate if rate else None  # µs of CPU per GET at the measured rate
        budget_name = "CPU µs per GET c16" if budget else ""

        def row(name: str, micros: float, note: str) -> Row:
            return Row(self.section, name, "µs", micros, bound=budget, bound_name=budget_name, note=note)

        p = self.profile
        for case, micros in micro.sigv4(p.sigv4_iterations).items():
            self.add(row(f"SigV4 verify: {case}", micros, "bench/sigv4_bench.py; moto verifies nothing"))
        for case, micros in micro.policy(p.policy_iterations).items():
            note = "bench/policy_bench.py (100 policies x 10 statements)"
            self.add(row(f"policy decision: {case}", micros, note))
        for case, micros in micro.authz(p.policy_iterations).items():
            note = "bench/authz_bench.py (a node holding 100 policies x 10 statements)"
            self.add(row(f"S3 door, 100 policies: {case}", micros, note))
        access_key_id = self.env.coffer_endpoint.signer.access_key_id
        rounds = max(1000, p.sigv4_iterations)
        door = micro.authorize_s3(str(self.env.coffer_data_dir), access_key_id, "small", rounds)
        self.add(row("S3 door, this run's store: GetObject (authorize_s3)", door, DOOR_NOTE))
