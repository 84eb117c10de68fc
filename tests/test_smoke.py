"""The server starts on both backends, answers health checks, and mints a key."""

from __future__ import annotations

import httpx

from tests.support.harness import CofferServer


def test_health_on_both_ports(server: CofferServer) -> None:
    assert httpx.get(server.api_url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.s3_url + "/healthz").status_code == 200


def test_token_file_is_private(server: CofferServer) -> None:
    mode = (server.data_dir / "admin-token").stat().st_mode & 0o777
    assert mode == 0o600


def test_mint_permanent_key(server: CofferServer) -> None:
    key = server.mint_key(duration=0, name="smoke")
    assert key["expiry"] == "1970-01-01T00:00:00Z"
    assert key["accessKeyId"].startswith("CW") and len(key["accessKeyId"]) == 16
