"""Several nodes on one PostgreSQL database: a change made through one is honoured by all.

Node A and node B share the database and the data directory (shared storage). Node C
shares only the database and the master key, so the memory-mapped counter in the data
directory cannot tell it anything: it learns of changes through PostgreSQL NOTIFY, or,
if a notification is lost, by polling the stored change counter every
`cache_poll_seconds`. docs/operations.md states that bound; the polls below wait a few
multiples of it, as a correctness bound, not a speed measurement.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.support.api import assert_status, token_id_of, user_token, wait_for
from tests.support.harness import CofferServer, free_ports, run_coffer

LIST = "/v1/cwobject/access-key"
POLL_SECONDS = 0.5  # the nodes' cache_poll_seconds
BOUND = 10 * POLL_SECONDS + 5  # generous: loaded CI machines, two cores, four test workers


@pytest.fixture(scope="module")
def nodes_options() -> dict[str, Any]:
    return {"env": {"COFFER_CACHE_POLL_SECONDS": str(POLL_SECONDS)}}


def get(node: CofferServer, token: str, path: str = LIST) -> httpx.Response:
    return httpx.get(node.api_url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_the_nodes_share_one_organization(nodes: dict[str, CofferServer]) -> None:
    a, b, c = nodes["a"], nodes["b"], nodes["c"]
    assert not (c.data_dir / "admin-token").exists(), "only the first node bootstraps"
    with a.api() as api:
        key = api.post(LIST, json={"durationSeconds": 0}).json()["accessKeyId"]
    for node in (b, c):
        assert get(node, a.admin_token, f"{LIST}/{key}").json()["info"]["status"] == "ACTIVE"


@pytest.mark.parametrize("via", ["b", "c"])
def test_token_revoked_on_one_node_is_refused_by_the_others(nodes: dict[str, CofferServer], via: str) -> None:
    a, other = nodes["a"], nodes[via]
    _, token = user_token(a, f"roaming-{via}")
    _, admin_token = user_token(a, f"roaming-admin-{via}", admin=True)
    assert get(other, admin_token).status_code == 200  # cached as valid on the other node
    a.cli("admin", "token", "revoke", token_id_of(a, f"roaming-admin-{via}"))
    assert wait_for(lambda: get(other, admin_token).status_code == 401, timeout=BOUND, interval=0.05)
    assert "revoked" in assert_status(get(other, admin_token), 401, 16)["message"]
    assert get(other, token).status_code == 403  # an unrelated token still authenticates


def test_a_lost_notification_is_covered_by_the_poll(nodes: dict[str, CofferServer]) -> None:
    """Revoke behind Coffer's back (no NOTIFY, no shared counter): node C still notices."""
    a, c = nodes["a"], nodes["c"]
    _, token = user_token(a, "silent-revoke", admin=True)
    assert get(c, token).status_code == 200
    token_id = token_id_of(a, "silent-revoke")
    with psycopg.connect(a.database_url) as conn:
        conn.execute("UPDATE api_tokens SET revoked_at = now() WHERE id = %s", (token_id,))
        conn.execute("UPDATE change_counter SET value = value + 1")
    assert wait_for(lambda: get(c, token).status_code == 401, timeout=BOUND, interval=0.05)


def test_a_node_with_another_master_key_refuses_to_start(
    nodes: dict[str, CofferServer], tmp_path: Path
) -> None:
    a = nodes["a"]
    with a.api() as api:  # make sure at least one sealed secret exists
        assert api.post(LIST, json={"durationSeconds": 0}).status_code == 200
    wrong = base64.b64encode(b"\x01" * 32).decode()
    api_port, s3_port = free_ports(2)
    out = run_coffer(
        "serve",
        "--data-dir",
        str(tmp_path / "node-d"),
        "--database-url",
        a.database_url,
        "--api-port",
        str(api_port),
        "--s3-port",
        str(s3_port),
        env={**os.environ, "COFFER_MASTER_KEY": wrong},
    )
    assert out.returncode == 1
    assert "master key does not decrypt the stored access-key secrets" in out.stderr
    assert "Traceback" not in out.stderr
