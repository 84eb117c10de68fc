"""Real client processes: an environment stripped of the host's S3 client settings, and one
runner that fails the test with the process's whole output on an unexpected exit status.

Every client runs as its own process with an environment stripped of the host's AWS_*,
RCLONE_* and S3CMD settings (a CA bundle or a profile on the machine must not change what
the client does) and HOME pointing at a temp directory, so no dotfile is ever read.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

BIN_DIR = Path(sys.executable).parent
_STRIPPED_PREFIXES = ("AWS_", "RCLONE_", "S3CMD", "BOTO_", "FSSPEC_")

Cli = Callable[..., Any]
"""A client fixture: cli(*args, check=True)."""


def client_env(home: Path, **extra: str) -> dict[str, str]:
    """os.environ without any S3 client settings, HOME at `home`, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(_STRIPPED_PREFIXES)}
    home.mkdir(parents=True, exist_ok=True)
    env["HOME"] = str(home)
    env.update(extra)
    return env


def run_cli(
    argv: list[str],
    env: dict[str, str],
    *,
    cwd: Path | None = None,
    timeout: float = 300,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a client; on an unexpected exit status, fail with its whole output."""
    result = subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(argv[:5])} ... exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
        )
    return result
