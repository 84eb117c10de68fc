"""`coffer admin ...`: straight on the store, beside a running server or with none."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.harness import CofferServer, run_coffer


def one_line_error(out: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert out.returncode == code, out
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: "), out.stderr
    if code == 1:
        assert len(lines) == 1, out.stderr
    return lines[-1]


def test_user_create_and_list(server: CofferServer) -> None:
    created = json.loads(
        server.cli("admin", "user", "create", "alice", "--admin", "--group", "ml", "--json").stdout
    )
    assert created["name"] == "alice" and created["principalName"] == f"coreweave/{created['id']}"
    assert created["objectStorageAdmin"] is True and created["groups"] == ["ml"]
    plain = server.cli("admin", "user", "create", "bob").stdout
    assert plain.startswith("created user bob with principal coreweave/")

    users = {u["name"]: u for u in json.loads(server.cli("admin", "user", "list", "--json").stdout)}
    assert {"admin", "alice", "bob"} <= set(users)
    assert users["admin"]["objectStorageAdmin"] is True and users["bob"]["objectStorageAdmin"] is False
    table = server.cli("admin", "user", "list").stdout
    row = next(line for line in table.splitlines() if " alice " in line)
    assert created["principalName"] in row and "yes" in row and "ml" in row


def test_token_create_is_one_line_and_works(server: CofferServer) -> None:
    server.cli("admin", "user", "create", "carol", "--admin")
    out = server.cli("admin", "token", "create", "--user", "carol", "--name", "laptop")
    assert out.stdout.count("\n") == 1 and out.stdout.startswith("cwt_")
    token = out.stdout.strip()
    r = httpx.get(server.api_url + "/v1/cwobject/access-key", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    # Default user: the bootstrap admin.
    default = server.cli("admin", "token", "create").stdout.strip()
    r = httpx.post(
        server.api_url + "/v1/cwobject/access-key",
        json={"durationSeconds": 0},
        headers={"Authorization": f"Bearer {default}"},
    )
    users = {u["name"]: u for u in json.loads(server.cli("admin", "user", "list", "--json").stdout)}
    assert r.json()["principalName"] == users["admin"]["principalName"]


def test_token_list_and_revoke(server: CofferServer) -> None:
    server.cli("admin", "user", "create", "dave", "--admin")
    token = server.cli(
        "admin", "token", "create", "--user", "dave", "--name", "ci", "--expires-in", "3600"
    ).stdout
    rows = json.loads(server.cli("admin", "token", "list", "--user", "dave", "--json").stdout)
    (row,) = rows
    assert row["user"] == "dave" and row["name"] == "ci" and row["expiresAt"] and row["revoked"] is False
    assert token.strip() not in json.dumps(rows)  # only hashes are stored; lists never show tokens
    table = server.cli("admin", "token", "list").stdout
    assert row["id"] in table and "bootstrap" in table

    assert server.cli("admin", "token", "revoke", row["id"]).stdout.strip() == f"revoked token {row['id']}"
    (after,) = json.loads(server.cli("admin", "token", "list", "--user", "dave", "--json").stdout)
    assert after["revoked"] is True
    r = httpx.get(
        server.api_url + "/v1/cwobject/access-key", headers={"Authorization": f"Bearer {token.strip()}"}
    )
    assert r.status_code == 401


def test_org_list_and_create(server: CofferServer) -> None:
    orgs = json.loads(server.cli("admin", "org", "list", "--json").stdout)
    assert orgs[0]["name"] == "default"
    new_id = server.cli("admin", "org", "create", "research").stdout.strip()
    orgs = json.loads(server.cli("admin", "org", "list", "--json").stdout)
    assert {"id": new_id, "name": "research"} in [{"id": o["id"], "name": o["name"]} for o in orgs]
    assert new_id in server.cli("admin", "org", "list").stdout
    created = json.loads(server.cli("admin", "user", "create", "erin", "--org", new_id, "--json").stdout)
    assert created["orgId"] == new_id


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["user", "create", "admin"], "Error: user 'admin' already exists"),
        (["token", "create", "--user", "nobody"], "Error: user 'nobody' not found"),
        (["token", "revoke", "0123"], "Error: api token '0123' not found"),
        (["user", "create", "x", "--org", "no-such-org"], "Error: organization 'no-such-org' not found"),
        (["user", "create", "bad\tname"], "Error: invalid name: must be 1-255 printable characters"),
    ],
)
def test_errors_are_one_clean_line(server: CofferServer, args: list[str], expected: str) -> None:
    assert one_line_error(server.cli("admin", *args, check=False)) == expected


def test_usage_errors(server: CofferServer) -> None:
    out = server.cli("admin", "token", "create", "--expires-in", "0", check=False)
    assert one_line_error(out, code=2).startswith("Error: Invalid value for '--expires-in'")


def admin_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("COFFER_")} | (env or {})
    return run_coffer("admin", *args, env=environ)


def test_works_without_a_server_and_bootstraps_an_empty_store(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    out = admin_cli("user", "list", "--json", "--data-dir", str(data))
    assert out.returncode == 0, out.stderr
    assert [u["name"] for u in json.loads(out.stdout)] == ["admin"]
    assert f"the admin API token is in {data / 'admin-token'}" in out.stderr
    assert (data / "admin-token").stat().st_mode & 0o777 == 0o600
    token = (data / "admin-token").read_text().strip()
    assert token not in out.stdout + out.stderr
    # The data dir may also come from the environment or a config file, like serve's.
    (tmp_path / "c.toml").write_text(f'data_dir = "{data}"\n')
    again = admin_cli("org", "list", "--json", env={"COFFER_CONFIG": str(tmp_path / "c.toml")})
    assert again.returncode == 0 and len(json.loads(again.stdout)) == 1 and not again.stderr


def test_unreachable_database_is_one_clean_line(tmp_path: Path) -> None:
    out = admin_cli(
        "user",
        "list",
        "--data-dir",
        str(tmp_path),
        "--database-url",
        "postgresql://coffer:s3cret@127.0.0.1:1/x",
    )
    line = one_line_error(out)
    assert line.startswith("Error: metadata store: connection failed")
    assert "s3cret" not in out.stderr  # a password in the URL is never echoed


def test_bad_master_key_is_one_clean_line(tmp_path: Path) -> None:
    out = admin_cli("user", "list", "--data-dir", str(tmp_path), env={"COFFER_MASTER_KEY": "not-base64!"})
    assert one_line_error(out) == "Error: master_key must be 32 bytes, base64-encoded"
