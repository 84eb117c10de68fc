"""`coffer admin` on a multi-node deployment: every command, run with one node's settings
against the PostgreSQL database three running nodes share, is honoured by the others.

Nodes A and B share the data directory; C shares only the database and the master key
(given as COFFER_MASTER_KEY), like a node whose file system holds no `master.key`. `gc`
runs only where the blobs are (A, B): see docs/deployment.md, "Admin commands on many nodes".
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.support.harness import CofferServer, run_coffer
from tests.support.policies import ensure_ok, policy, statement
from tests.support.s3 import client_error, s3_client, unique

POLL_SECONDS = 0.5
LIST = "/v1/cwobject/access-key"


@pytest.fixture(scope="module")
def nodes_options() -> dict[str, Any]:
    return {"env": {"COFFER_CACHE_POLL_SECONDS": str(POLL_SECONDS)}}


def admin(node: CofferServer, *args: str) -> subprocess.CompletedProcess[str]:
    """`coffer admin <args>` with `node`'s store settings and environment (its master key)."""
    done = run_coffer("admin", *args, *node.store_args, env={**os.environ, **node.env})
    assert done.returncode == 0, f"coffer admin {' '.join(args)}: {done.stdout}{done.stderr}"
    return done


def status(node: CofferServer, token: str) -> int:
    return httpx.get(
        node.api_url + LIST, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).status_code


def eventually(check: Any, seconds: float = POLL_SECONDS + 3) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not seen within the bound"
        time.sleep(0.05)


def test_every_admin_command_from_any_node(nodes: dict[str, CofferServer]) -> None:
    a, b, c = nodes["a"], nodes["b"], nodes["c"]

    # org create on C, org list on A
    org_name = unique("org")
    org_id = admin(c, "org", "create", org_name).stdout.strip()
    assert org_id in {o["id"] for o in json.loads(admin(a, "org", "list", "--json").stdout)}

    # user create on B (in C's new org), user list on C
    user = unique("ops")
    created = json.loads(admin(b, "user", "create", user, "--org", org_id, "--admin", "--json").stdout)
    assert created["orgId"] == org_id
    listed = json.loads(admin(c, "user", "list", "--org", org_id, "--json").stdout)
    assert [u["name"] for u in listed] == [user]

    # token create on C, used through A and B
    token = admin(c, "token", "create", "--user", user, "--org", org_id, "--name", "t").stdout.strip()
    assert status(a, token) == 200 and status(b, token) == 200

    # org limits on C: one bucket for the org, enforced by A's S3
    admin(c, "org", "limits", "--org", org_id, "--max-buckets", "1")
    everything = statement("all", ["s3:*"], ["*"], [created["principalName"]])
    ensure_ok(a, policy("ops-s3", everything), token)
    key = a.mint_key(token)
    via_a = s3_client(a, key)
    via_a.create_bucket(Bucket=unique("lim"))
    with pytest.raises(ClientError) as refused:
        s3_client(b, key).create_bucket(Bucket=unique("lim"))
    assert client_error(refused.value) == (400, "TooManyBuckets")
    limits = json.loads(admin(a, "org", "limits", "--org", org_id, "--json").stdout)
    assert "1" in json.dumps(limits)

    # usage verify on B after writes through A and C
    bucket = via_a.list_buckets()["Buckets"][0]["Name"]
    via_a.put_object(Bucket=bucket, Key="x", Body=b"x" * 1000)
    s3_client(c, key).put_object(Bucket=bucket, Key="y", Body=b"y" * 10)
    verified = admin(b, "usage", "verify", "--bucket", bucket, "--json")
    assert verified.returncode == 0

    # gc on A, where the blobs are, after a delete through C
    s3_client(c, key).delete_object(Bucket=bucket, Key="x")
    assert int(admin(a, "gc").stdout.strip()) >= 0

    # token list on A, revoke on B: refused by C within the bound
    tokens = json.loads(admin(a, "token", "list", "--user", user, "--json").stdout)
    assert len(tokens) == 1 and not tokens[0]["revoked"]
    admin(b, "token", "revoke", tokens[0]["id"])
    eventually(lambda: status(c, token) == 401)
    assert status(a, token) == 401
    assert json.loads(admin(c, "token", "list", "--user", user, "--json").stdout)[0]["revoked"]
