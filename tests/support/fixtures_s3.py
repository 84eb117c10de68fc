"""S3 client fixtures (a pytest plugin, loaded by tests/conftest.py): a module's key, its
boto3 client, and the aws CLI and rclone as real processes with an environment stripped of
the host's AWS_*/RCLONE_* settings and a temporary HOME (tests.support.clients)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import BIN_DIR, Cli, client_env, run_cli
from tests.support.curl import Curl
from tests.support.harness import CofferServer
from tests.support.s3 import REGION, localhost_subdomains, s3_client


@pytest.fixture(scope="module")
def key(request: pytest.FixtureRequest, server: CofferServer) -> dict[str, Any]:
    """A permanent key of the bootstrap admin, shared by a module's tests (its org owns what
    they create); named after the test folder ("s3-tests", "clients-tests")."""
    return server.mint_key(duration=0, name=f"{request.path.parent.name}-tests")


@pytest.fixture(scope="module")
def subdomains_resolve() -> Iterator[None]:
    """`*.localhost` resolves to 127.0.0.1 in this process while the module runs, for
    virtual-hosted-style requests (tests.support.s3.localhost_subdomains); a module asks for
    it with `pytestmark = pytest.mark.usefixtures("subdomains_resolve")`."""
    with localhost_subdomains():
        yield


@pytest.fixture(scope="module")
def s3(server: CofferServer, key: dict[str, Any]) -> Any:
    return s3_client(server, key)


@pytest.fixture(scope="module")
def vs3(server: CofferServer, key: dict[str, Any]) -> Any:
    """The module's boto3 client in virtual-hosted style, on http://localhost:<port> (the
    module's server runs with `--s3-domain localhost`, and asks for `subdomains_resolve`)."""
    return s3_client(server, key, addressing_style="virtual", endpoint=f"http://localhost:{server.s3_port}")


@pytest.fixture(scope="module")
def curl(server: CofferServer, key: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Curl:
    """curl signing with the module's key (tests.support.curl)."""
    return Curl(server, key, tmp_path_factory.mktemp("curl"))


@pytest.fixture(scope="module")
def boto(s3: Any) -> Any:
    """boto3, to check from the outside what a real client did (the `s3` client)."""
    return s3


@pytest.fixture(scope="module")
def aws(server: CofferServer, key: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """aws(*args, check=True, cwd=None): `aws --endpoint-url <s3> <args>`; s3api JSON output is parsed.
    With check=False the CompletedProcess comes back (for the error paths)."""
    home = tmp_path_factory.mktemp("aws-home")
    config, credentials = home / "config", home / "credentials"
    config.write_text(f"[default]\nregion = {REGION}\noutput = json\n")
    credentials.write_text(
        f"[default]\naws_access_key_id = {key['accessKeyId']}\naws_secret_access_key = {key['secretKey']}\n"
    )
    env = client_env(home / "home", AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=str(credentials))

    def call(*args: str, check: bool = True, cwd: Path | None = None) -> Any:
        argv = [str(BIN_DIR / "aws"), "--endpoint-url", server.s3_url, *args]
        result = run_cli(argv, env, cwd=cwd, check=check)
        if not check:
            return result
        if args[0] == "s3api" and result.stdout.strip():
            return json.loads(result.stdout)
        return result.stdout

    return call


@pytest.fixture(scope="module")
def rclone(server: CofferServer, key: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Cli:
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
