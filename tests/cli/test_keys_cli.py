"""`coffer keys ...` as a user runs it: a subprocess speaking HTTP to a running server."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from coffer.api import extensions
from tests.support.cli import coffer_as, error_line
from tests.support.clients import run_cli
from tests.support.harness import CofferServer, free_port

KEY_ID = re.compile(r"CW[A-Z]{14}")


def keys(
    server: CofferServer,
    *args: str,
    token: str | None = None,
    check: bool = True,
    endpoint: str | None = None,
) -> subprocess.CompletedProcess[str]:
    return coffer_as(server, "keys", *args, token=token, check=check, endpoint=endpoint)


def keys_json(server: CofferServer, *args: str, token: str | None = None) -> Any:
    return json.loads(keys(server, *args, "--json", token=token).stdout)


def one_line_error(out: subprocess.CompletedProcess[str], code: int = 1) -> str:
    line = error_line(out, code)
    if code == 1:
        assert [line for line in out.stderr.splitlines() if line.strip()] == [line], out.stderr
    return line


def test_create_permanent_prints_the_secret_once_with_an_aws_profile(
    server: CofferServer, tmp_path: Path
) -> None:
    out = keys(server, "create", "--permanent", "--name", "laptop", "--s3-endpoint", server.s3_url).stdout
    key_id = KEY_ID.search(out)
    assert key_id
    secret = re.search(r"cwo[a-z0-9]{40}", out)
    assert secret
    assert "Expires" in out and "never" in out
    assert "shown only now" in out
    # The snippet is real aws-cli configuration: write it where aws looks, and ask aws.
    creds, config = out.split("# ~/.aws/credentials\n", 1)[1].split("# ~/.aws/config\n", 1)
    (tmp_path / "credentials").write_text(creds)
    (tmp_path / "config").write_text(config)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
    }

    def aws_get(name: str) -> str:
        r = subprocess.run(
            ["aws", "configure", "get", name, "--profile", "laptop"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return r.stdout.strip()

    assert aws_get("aws_access_key_id") == key_id.group(0)
    assert aws_get("aws_secret_access_key") == secret.group(0)
    assert aws_get("endpoint_url") == server.s3_url
    # And it works as pasted: the profile alone reaches Coffer's S3 endpoint with the new key.
    for args in (["s3", "mb", "s3://snippet-bucket"], ["s3", "ls"]):
        used = run_cli(["aws", "--profile", "laptop", *args], env, timeout=120)
    assert "snippet-bucket" in used.stdout
    # The secret is not retrievable afterwards.
    shown = keys(server, "show", key_id.group(0)).stdout
    assert secret.group(0) not in shown and "laptop" in shown and "ACTIVE" in shown


def test_create_temporary_json(server: CofferServer) -> None:
    data = keys_json(server, "create", "--duration", "300", "--attribute", "team=ml", "--name", "ci")
    # CoreWeave's fields, and the extension fields the CLI asks for (docs/api.md)
    assert set(data) - set(extensions.FIELDS) == {
        "accessKeyId",
        "secretKey",
        "principalName",
        "expiry",
        "attributes",
    }
    assert data["scope"] is None
    assert data["attributes"] == {"team": "ml", "name": "ci"}
    assert data["expiry"] != "1970-01-01T00:00:00Z"
    info = keys_json(server, "show", data["accessKeyId"])
    assert info["status"] == "ACTIVE" and "secretKey" not in info


def test_list_table_and_json(server: CofferServer) -> None:
    minted = keys_json(server, "create", "--permanent", "--name", "listed")
    table = keys(server, "list").stdout
    row = next(line for line in table.splitlines() if minted["accessKeyId"] in line)
    assert "listed" in row and "ACTIVE" in row and minted["principalName"] in row and "never" in row
    for header in ("Name", "Access Key ID", "Principal", "Status", "Expires"):
        assert header in table
    listed = keys_json(server, "list")
    assert minted["accessKeyId"] in {i["accessKeyId"] for i in listed}
    # Paging through small pages yields the same list.
    paged = keys_json(server, "list", "--page-size", "1")
    assert [i["accessKeyId"] for i in paged] == [i["accessKeyId"] for i in listed]


def test_suspend_reactivate_and_status_filter(server: CofferServer) -> None:
    principal, token = server.create_user("cli-suspended", admin=True)
    mine = keys_json(server, "create", "--permanent", token=token)["accessKeyId"]
    assert "suspended the keys of" in keys(server, "suspend", principal).stdout
    assert keys_json(server, "show", mine)["status"] == "FULL_SUSPENDED"
    assert mine in {i["accessKeyId"] for i in keys_json(server, "list", "--status", "SUSPENDED")}
    assert mine not in {i["accessKeyId"] for i in keys_json(server, "list", "--status", "ACTIVE")}
    assert "reactivated" in keys(server, "reactivate", principal).stdout
    assert keys_json(server, "show", mine)["status"] == "ACTIVE"


def test_revoke_by_id_and_by_principal(server: CofferServer) -> None:
    key = keys_json(server, "create", "--permanent")["accessKeyId"]
    assert f"revoked {key}" in keys(server, "revoke", key).stdout
    assert keys_json(server, "show", key)["status"] == "REVOKED"
    principal, token = server.create_user("cli-revoked", admin=True)
    theirs = [keys_json(server, "create", "--permanent", token=token)["accessKeyId"] for _ in range(2)]
    assert "revoked every key of" in keys(server, "revoke", "--principal", principal).stdout
    assert [keys_json(server, "show", k)["status"] for k in theirs] == ["REVOKED", "REVOKED"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["show", "CWAAAAAAAAAAAAAA"], "Error: 404 NOT_FOUND: access key 'CWAAAAAAAAAAAAAA' not found"),
        (["revoke", "CWAAAAAAAAAAAAAA"], "Error: 404 NOT_FOUND: access key 'CWAAAAAAAAAAAAAA' not found"),
        (["suspend", "coreweave/nobody"], "Error: 404 NOT_FOUND: principal 'coreweave/nobody' not found"),
        (["list", "--status", "bogus"], "Error: 400 INVALID_ARGUMENT: invalid status: must be one of"),
        (["show", "a/b"], "Error: 404 NOT_FOUND: "),
    ],
)
def test_api_errors_are_one_clean_line(server: CofferServer, args: list[str], expected: str) -> None:
    assert one_line_error(keys(server, *args, check=False)).startswith(expected)


def test_auth_errors(server: CofferServer) -> None:
    assert one_line_error(keys(server, "list", token="cwt_nope", check=False)) == (
        "Error: 401 UNAUTHENTICATED: the API access token is not valid"
    )
    _, plain = server.create_user("cli-plain")
    line = one_line_error(keys(server, "list", token=plain, check=False))
    assert (
        line.startswith("Error: 403 PERMISSION_DENIED: coreweave/") and "cwobject:ListAccessKeyInfo" in line
    )
    usage = keys(server, "list", token="", check=False)
    assert (
        one_line_error(usage, code=2)
        == "Error: an API token is required: pass --token or set COFFER_API_TOKEN"
    )


def test_usage_and_connection_errors(server: CofferServer) -> None:
    both = keys(server, "create", "--permanent", "--duration", "5", check=False)
    assert one_line_error(both, code=2) == "Error: pass exactly one of --duration SECONDS or --permanent"
    neither = keys(server, "create", check=False)
    assert one_line_error(neither, code=2) == "Error: pass exactly one of --duration SECONDS or --permanent"
    bad_attr = keys(server, "create", "--permanent", "--attribute", "novalue", check=False)
    assert one_line_error(bad_attr, code=2) == "Error: --attribute takes KEY=VALUE, got 'novalue'"
    down = keys(server, "list", endpoint=f"http://127.0.0.1:{free_port()}", check=False)
    assert one_line_error(down).startswith("Error: cannot reach http://127.0.0.1:")
    not_url = keys(server, "list", endpoint="localhost:8480", check=False)
    assert one_line_error(not_url, code=2) == "Error: --endpoint must be an http(s) URL, got 'localhost:8480'"
    not_coffer = keys(server, "list", endpoint=server.s3_url, check=False)  # answers, but not status JSON
    assert one_line_error(not_coffer).startswith("Error: ")


def test_help_needs_no_token(server: CofferServer) -> None:
    out = keys(server, "create", "--help", token="")
    assert "--permanent" in out.stdout and "--duration" in out.stdout
