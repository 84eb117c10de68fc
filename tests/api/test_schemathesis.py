"""Schemathesis, driven by Coffer's own /openapi.json, against a running server.

It checks what the hand-written fuzz tests cannot: that the document is true. Every
operation is called with schema-valid and schema-violating data, alone and chained
(stateful links), and every answer must match the documented status codes, content type
and response schema; no call may end in a 5xx. See schemathesis.toml beside this file
for the one check switched off, and why.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.harness import CofferServer

CONFIG = Path(__file__).with_name("schemathesis.toml")

# A declared test dependency, run from this interpreter's environment (activated or not):
# never skipped for being absent, or a broken install would pass unnoticed.
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


def test_the_server_keeps_every_promise_of_its_openapi(server: CofferServer, tmp_path: Path) -> None:
    out = subprocess.run(
        [
            SCHEMATHESIS,
            "--config-file",
            str(CONFIG),
            "--no-color",
            "run",
            server.api_url + "/openapi.json",
            "--header",
            f"Authorization: Bearer {server.admin_token}",
            "--max-examples",
            "40",
            "--workers",
            "1",
        ],
        cwd=tmp_path,  # its example database and cache stay out of the repository
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "31 selected / 31 total" in out.stdout
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅  {phase}" in out.stdout, out.stdout[-3000:]
    assert "unhandled error" not in server.log()
