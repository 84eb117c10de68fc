"""Secrets at rest and in logs: files 0600, secrets sealed, tokens hashed, nothing secret logged.

The tests read what an attacker with the disk or the logs would read: the server log,
the audit file, the SQLite database and WAL bytes, or the PostgreSQL rows.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import psycopg
import pytest
from cryptography.exceptions import InvalidTag

from coffer.identity.secretbox import SecretBox
from tests.support.api import token_id_of, user_token
from tests.support.harness import CofferServer

AK = "/v1/cwobject/access-key"


@pytest.fixture(scope="module")
def activity(server: CofferServer) -> dict[str, Any]:
    """Exercise every audited path once; return the secrets that must not leak."""
    principal, token = user_token(server, "eve", admin=True)
    _, plain_token = user_token(server, "mallory")
    with server.api() as admin, server.api(token) as eve:
        permanent = eve.post(AK, json={"durationSeconds": 0, "attributes": {"name": "disk"}}).json()
        temporary = eve.post(AK, json={"durationSeconds": 600}).json()
        exchanged = eve.get("/v1/cwobject/temporary-credentials/api-token").json()
        admin.put("/v1/cwobject/access-key-status", json={"principalName": principal, "status": "SUSPENDED"})
        admin.put("/v1/cwobject/access-key-status", json={"principalName": principal, "status": "ACTIVE"})
        admin.post("/v1/cwobject/revoke-access-key/access-key", json={"accessKey": temporary["accessKeyId"]})
        admin.post("/v1/cwobject/revoke-access-key/principal", json={"principalName": principal})
    with server.api(plain_token) as denied:
        assert denied.get(AK).status_code == 403
    server.cli("admin", "token", "revoke", token_id_of(server, "mallory"))
    return {
        "principal": principal,
        "tokens": [server.admin_token, token, plain_token],
        "keys": [permanent, temporary],
        "secrets": [permanent["secretKey"], temporary["secretKey"], exchanged["SecretAccessKey"]],
        "session_token": exchanged["Token"],
        "exchanged": exchanged["AccessKeyId"],
    }


def test_key_files_are_private(server: CofferServer, activity: dict[str, Any]) -> None:
    for name in ("master.key", "admin-token", "audit.log"):
        mode = (server.data_dir / name).stat().st_mode & 0o777
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    assert len(base64.b64decode((server.data_dir / "master.key").read_bytes().strip())) == 32


def test_admin_token_path_is_printed_but_the_token_is_not(
    server: CofferServer, activity: dict[str, Any]
) -> None:
    log = server.log()
    assert str(server.data_dir / "admin-token") in log
    assert server.admin_token not in log


def test_no_secret_reaches_the_logs(server: CofferServer, activity: dict[str, Any]) -> None:
    audit_file = (server.data_dir / "audit.log").read_text()
    for text in (server.log(), audit_file):
        for secret in [*activity["tokens"], *activity["secrets"], activity["session_token"]]:
            assert secret not in text
        assert "secretKey" not in text and "SecretAccessKey" not in text


def test_audit_lines_for_mint_suspend_revoke_and_denied(
    server: CofferServer, activity: dict[str, Any]
) -> None:
    events = server.audit(from_log=True)
    principal = activity["principal"]
    by_event: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_event.setdefault(e["event"], []).append(e)

    minted = {e["access_key_id"]: e for e in by_event["access_key_minted"]}
    permanent, temporary = activity["keys"]
    assert minted[permanent["accessKeyId"]]["duration_seconds"] == 0
    assert minted[temporary["accessKeyId"]]["duration_seconds"] == 600
    assert minted[activity["exchanged"]]["action"] == "cwobject:CreateAccessKeyFromApiToken"
    assert all(
        e["principal"] == principal and e["actor"] == principal
        for e in minted.values()
        if e["principal"] == principal
    )

    assert any(e["principal"] == principal for e in by_event["access_keys_suspended"])
    assert any(e["principal"] == principal for e in by_event["access_keys_reactivated"])
    revoked = by_event["access_key_revoked"]
    assert any(
        e["access_key_id"] == temporary["accessKeyId"] and e["already_revoked"] is False for e in revoked
    )
    (by_principal,) = [e for e in by_event["principal_keys_revoked"] if e["principal"] == principal]
    assert by_principal["count"] == 2  # the permanent key and the exchanged one; the temporary was gone
    denied = [e for e in by_event["denied"] if e.get("action") == "cwobject:ListAccessKeyInfo"]
    assert denied and denied[-1]["reason"]
    for e in events:
        assert e["level"] == "info" and e["time"] and e["logger"] == "coffer.audit"


def test_the_audit_file_holds_the_cli_events_too(server: CofferServer, activity: dict[str, Any]) -> None:
    lines = server.audit()
    events = {e["event"] for e in lines}
    assert {"api_token_created", "user_created", "api_token_revoked", "access_key_minted", "denied"} <= events
    (boot,) = [e for e in lines if e["event"] == "api_token_created" and e["actor"] == "bootstrap"]
    assert boot["user"] == "admin"
    assert any(e["event"] == "api_token_created" and e["actor"].startswith("cli") for e in lines)


def test_sqlite_file_holds_no_plaintext_secret_or_token(
    server: CofferServer, backend: str, activity: dict[str, Any]
) -> None:
    if backend != "sqlite":
        pytest.skip("the SQLite files only exist on the sqlite backend")
    raw = b"".join(
        p.read_bytes() for p in server.data_dir.iterdir() if p.name.startswith("coffer.db") and p.is_file()
    )
    assert activity["keys"][0]["accessKeyId"].encode() in raw, "the grep must be able to find stored values"
    for secret in activity["secrets"]:
        assert secret.encode() not in raw
    for token in [*activity["tokens"], activity["session_token"]]:
        assert token.encode() not in raw
        assert hashlib.sha256(token.encode()).digest() in raw  # what is stored instead


def _pg_rows(server: CofferServer, table: str) -> list[dict[str, Any]]:
    with psycopg.connect(server.database_url) as conn:
        cur = conn.execute(f"SELECT * FROM {table}")
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _stored_rows(server: CofferServer, backend: str, table: str) -> list[dict[str, Any]]:
    if backend == "postgres":
        return _pg_rows(server, table)
    import sqlite3

    with sqlite3.connect(server.data_dir / "coffer.db") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table}")]


def test_secrets_are_sealed_with_the_master_key(
    server: CofferServer, backend: str, activity: dict[str, Any]
) -> None:
    rows = {r["access_key_id"]: r for r in _stored_rows(server, backend, "access_keys")}
    box = SecretBox(base64.b64decode((server.data_dir / "master.key").read_bytes().strip()))
    for key in activity["keys"]:
        sealed = bytes(rows[key["accessKeyId"]]["secret_ciphertext"])
        assert key["secretKey"].encode() not in sealed
        assert box.open(sealed, key["accessKeyId"]) == key["secretKey"]
        # Bound to its row: the same ciphertext does not open as another key's.
        with pytest.raises(InvalidTag):
            box.open(sealed, "CWAAAAAAAAAAAAAA")
    dump = json.dumps([{k: str(v) for k, v in r.items()} for r in rows.values()])
    for secret in activity["secrets"]:
        assert secret not in dump


def test_tokens_are_stored_hashed(server: CofferServer, backend: str, activity: dict[str, Any]) -> None:
    rows = _stored_rows(server, backend, "api_tokens")
    stored = {bytes(r["token_hash"]) for r in rows}
    dump = json.dumps([{k: str(v) for k, v in r.items()} for r in rows])
    for token in activity["tokens"]:
        assert hashlib.sha256(token.encode()).digest() in stored
        assert token not in dump
    keys = {r["access_key_id"]: r for r in _stored_rows(server, backend, "access_keys")}
    assert (
        bytes(keys[activity["exchanged"]]["session_token_hash"])
        == hashlib.sha256(activity["session_token"].encode()).digest()
    )
