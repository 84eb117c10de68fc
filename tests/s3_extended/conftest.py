"""Fixtures for the wider-S3-surface tests: boto3 (from tests/s3), the aws CLI, rclone.

Every client is a real process or a real SDK talking to a real server over sockets; the
CLI clients run with an environment stripped of the host's AWS_*/RCLONE_* settings and a
temporary HOME (see tests/clients/conftest.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.clients.conftest import BIN_DIR, client_env
from tests.harness import CofferServer
from tests.s3.conftest import REGION, key, s3  # noqa: F401 - re-exported fixtures

Cli = Callable[..., Any]


def run_cli(argv: list[str], env: dict[str, str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(argv[:5])} ... exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def aws(server: CofferServer, key: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Cli:  # noqa: F811
    """aws(*args, check=True): `aws --endpoint-url <s3> <args>`; s3api JSON output is parsed.
    With check=False the CompletedProcess comes back (for the error paths)."""
    home = tmp_path_factory.mktemp("aws-home")
    config, credentials = home / "config", home / "credentials"
    config.write_text(f"[default]\nregion = {REGION}\noutput = json\n")
    credentials.write_text(
        f"[default]\naws_access_key_id = {key['accessKeyId']}\naws_secret_access_key = {key['secretKey']}\n"
    )
    env = client_env(home / "home", AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=str(credentials))

    def call(*args: str, check: bool = True) -> Any:
        argv = [str(BIN_DIR / "aws"), "--endpoint-url", server.s3_url, *args]
        result = run_cli(argv, env, check=check)
        if not check:
            return result
        if args[0] == "s3api" and result.stdout.strip():
            return json.loads(result.stdout)
        return result.stdout

    return call


@pytest.fixture(scope="module")
def rclone(server: CofferServer, key: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Cli:  # noqa: F811
    """rclone(*args, check=True) with the remote `coffer:` configured through the environment."""
    exe = shutil.which("rclone")
    assert exe, "rclone is not installed (scripts/test installs Debian's package)"
    home = tmp_path_factory.mktemp("rclone-home")
    empty: Path = home / "rclone.conf"
    empty.write_text("")
    prefix = "RCLONE_CONFIG_COFFER_"
    env = client_env(
        home / "home",
        **{
            prefix + "TYPE": "s3",
            prefix + "PROVIDER": "Other",
            prefix + "ENDPOINT": server.s3_url,
            prefix + "REGION": REGION,
            prefix + "ACCESS_KEY_ID": key["accessKeyId"],
            prefix + "SECRET_ACCESS_KEY": key["secretKey"],
            prefix + "FORCE_PATH_STYLE": "true",
        },
    )

    def call(*args: str, check: bool = True) -> Any:
        argv = [exe, "--config", str(empty), "--retries", "1", "--low-level-retries", "1", *args]
        return run_cli(argv, env, check=check)

    return call
