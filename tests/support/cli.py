"""`coffer` as a user runs it against a running server: a subprocess with this process's
environment minus its COFFER_* settings, pointed at the server's API as a token's user."""

from __future__ import annotations

import os
import subprocess

from tests.support.harness import CofferServer, run_coffer


def cli_env(
    server: CofferServer, token: str | None = None, endpoint: str | None = None, s3: bool = False
) -> dict[str, str]:
    """The environment for `coffer` against `server` (or `endpoint`) as `token`: the admin's
    by default, none if ""; with `s3`, COFFER_S3_ENDPOINT too."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COFFER_")}
    env["COFFER_ENDPOINT"] = endpoint or server.api_url
    if s3:
        env["COFFER_S3_ENDPOINT"] = server.s3_url
    if token != "":
        env["COFFER_API_TOKEN"] = token or server.admin_token
    return env


def coffer_as(
    server: CofferServer,
    *args: str,
    token: str | None = None,
    check: bool = True,
    endpoint: str | None = None,
    s3: bool = False,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `coffer <args>` (cli_env); with `check` it must exit 0; it never prints a traceback."""
    out = run_coffer(*args, env=cli_env(server, token, endpoint, s3), input=input)
    if check:
        assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    return out


def error_line(out: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The last line on stderr, an `Error: ...` of a run that exited `code`."""
    assert out.returncode == code, out
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: "), out.stderr
    return lines[-1]
