"""`keys`: access keys minted through the API (`POST /v1/cwobject/access-key`) at c16,
beside the machine's one-row SQLite commits."""

from __future__ import annotations

import json

from bench import loadgen
from bench.report import Row
from bench.scenarios.base import Scenario

MINT_PATH = "/v1/cwobject/access-key"


class KeyMinting(Scenario):
    section = "keys"

    def run(self) -> None:
        self.env.section("access-key minting through the API, c16")
        coffer = self.env.coffer
        headers = [
            ("Host", f"127.0.0.1:{coffer.api_port}"),
            ("Authorization", f"Bearer {coffer.admin_token}"),
            ("Content-Type", "application/json"),
        ]
        body = json.dumps({"durationSeconds": 3600}).encode()
        pool = [loadgen.raw_request("POST", MINT_PATH, headers, body)]
        load = self.env.measure_load(coffer.api_port, pool, 16, self.env.coffer_pid)
        ok = load.requests - load.errors
        rate = ok / load.seconds if load.seconds else 0.0
        note = f"p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms; server CPU {load.cpu_us or 0:.0f} µs/key"
        if load.errors:
            note += f"; {load.errors} ERRORS"
        self.add(
            Row(
                self.section,
                f"access keys minted via POST {MINT_PATH}, c16",
                "keys/s",
                rate,
                None,
                self.env.limits.get("sqlite_commits"),
                "SQLite one-row commits",
                note,
                load.as_dict(),
            )
        )
