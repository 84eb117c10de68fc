"""Organization limits: buckets per organization (CoreWeave: 1,000) and bytes per organization,
server-wide defaults (`max_buckets_per_org`, `max_bytes_per_org`) that an organization's own
limits (`coffer admin org limits`) override, enforced by CreateBucket in its transaction.

The server here allows 2 buckets per organization by default, so the limit is reached fast;
the default of 1,000 is checked on an in-process node.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from coffer.errors import InvalidArgument
from coffer.node import Node
from coffer.storage.errors import TooManyBuckets
from coffer.store.schema import buckets
from tests.support.api import assert_status, field_violation
from tests.support.concurrency import at_once
from tests.support.harness import CofferServer
from tests.support.policies import create_org, create_user, ensure_ok, policy, statement
from tests.support.s3 import client_error, s3_client, unique

ORG = "/v1/cwobject/organization/settings"


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {"extra_args": ["--max-buckets-per-org", "2", "--max-bytes-per-org", "1048576"]}


def team_of(server: CofferServer) -> tuple[str, str, Any]:
    """(org id, admin API token, boto3 client) of a fresh organization."""
    org_id = create_org(server)
    principal, token = create_user(server, unique("limits"), org=org_id, admin=True)
    ensure_ok(server, policy("s3", statement("all-s3", ["s3:*"], ["*"], [principal])), token)
    return org_id, token, s3_client(server, server.mint_key(token))


@pytest.fixture
def team(server: CofferServer) -> tuple[str, str, Any]:
    return team_of(server)


def limits(server: CofferServer, org_id: str, *args: str) -> dict[str, Any]:
    # The server's defaults are its flags here: the CLI is told them too (a config file or
    # COFFER_* variables would tell both).
    defaults = ("--max-buckets-per-org", "2", "--max-bytes-per-org", "1048576")
    out = server.cli("admin", "org", "limits", "--org", org_id, *defaults, *args, "--json")
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def refused(s3: Any, name: str) -> tuple[int, str]:
    with pytest.raises(ClientError) as caught:
        s3.create_bucket(Bucket=name)
    return client_error(caught.value)


def test_the_server_default_and_the_organizations_own_limit(
    server: CofferServer, team: tuple[str, str, Any]
) -> None:
    org_id, token, s3 = team
    with server.api(token) as c:
        got = c.get(ORG).json()
        assert got["limits"] == {"maxBuckets": 2, "configuredCapacityCapBytes": "1048576"}
        assert got["usage"] == {"buckets": 0, "bytes": "0"}
    first, second = unique("lim"), unique("lim")
    s3.create_bucket(Bucket=first)
    s3.create_bucket(Bucket=second)
    s3.create_bucket(Bucket=second)  # the same bucket again is no new bucket
    assert refused(s3, unique("lim")) == (400, "TooManyBuckets")
    # The organization's own limit overrides the server's, from the next request on (the
    # CLI is another process: the running server learns of it through the change counter).
    assert limits(server, org_id, "--max-buckets", "3") == {
        "orgId": org_id,
        "maxBuckets": 3,
        "maxBucketsSource": "organization",
        "capacityCapBytes": "1048576",
        "capacityCapSource": "server default",
    }
    third = unique("lim")
    s3.create_bucket(Bucket=third)
    assert refused(s3, unique("lim")) == (400, "TooManyBuckets")
    with server.api(token) as c:
        assert c.get(ORG).json()["limits"]["maxBuckets"] == 3
        assert c.get(ORG).json()["usage"]["buckets"] == 3
    # Deleting one makes room again.
    s3.delete_bucket(Bucket=third)
    s3.create_bucket(Bucket=unique("lim"))
    back = limits(server, org_id, "--max-buckets", "default")
    assert (back["maxBuckets"], back["maxBucketsSource"]) == (2, "server default")
    assert refused(s3, unique("lim")) == (400, "TooManyBuckets")
    # Other organizations are not affected by this one's buckets.
    _, _, other = team_of(server)
    other.create_bucket(Bucket=unique("lim"))


def test_the_capacity_limit_is_set_by_the_operator(server: CofferServer, team: tuple[str, str, Any]) -> None:
    org_id, token, _ = team
    assert limits(server, org_id, "--capacity-cap", "10GiB")["capacityCapBytes"] == str(10 << 30)
    with server.api(token) as c:
        assert c.get(ORG).json()["limits"]["configuredCapacityCapBytes"] == str(10 << 30)
        # Not through CoreWeave's SetOrganizationSettings: limits are the operator's.
        r = c.put(ORG, json={"settings": {"capacityCapBytes": "1"}})
        assert field_violation(assert_status(r, 400, 3))["field"] == "settings.capacityCapBytes"
    none = limits(server, org_id, "--capacity-cap", "none")
    assert (none["capacityCapBytes"], none["capacityCapSource"]) == (None, "organization")
    with server.api(token) as c:
        assert c.get(ORG).json()["limits"] == {"maxBuckets": 2}
    assert limits(server, org_id, "--capacity-cap", "default")["capacityCapBytes"] == "1048576"
    assert limits(server, org_id)["capacityCapSource"] == "server default"
    out = server.cli("admin", "org", "limits", "--org", org_id, "--max-buckets", "-3", check=False)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    out = server.cli("admin", "org", "limits", "--org", org_id, "--max-buckets", "2000000", check=False)
    assert out.returncode == 1 and "max_buckets must be between 0 and 1000000" in out.stderr
    out = server.cli("admin", "org", "limits", "--org", org_id, "--capacity-cap", "lots", check=False)
    assert out.returncode == 2 and "not a size" in out.stderr
    table = server.cli("admin", "org", "limits", "--org", org_id).stdout
    assert "Max buckets" in table and "1000 (server default)" in table


# --- in process: the default, and racing creators ----------------------------------------------
def test_the_default_is_1000_buckets(node: Node) -> None:
    org_id = node.directory.create_org(unique("thousand")).id
    assert node.storage.settings.org(org_id).max_buckets == 1000
    # 998 rows in one transaction (a thousand CreateBuckets take minutes on a busy machine),
    # then CreateBucket itself takes the count to 999, 1000, and refuses the 1001st.
    now = datetime.now(UTC)
    with node.db.write() as conn:
        conn.execute(
            buckets.insert(),
            [
                {
                    "name": f"thousand-{org_id}-{i:04d}",
                    "org_id": org_id,
                    "owner_principal": "o",
                    "zone": "US-EAST-04A",
                    "created_at": now,
                    "versioning": "",
                    "settings": {},
                }
                for i in range(998)
            ],
        )
    for i in (998, 999):
        node.storage.buckets.create(org_id=org_id, owner="o", name=f"thousand-{org_id}-{i:04d}", zone=None)
    with pytest.raises(TooManyBuckets):
        node.storage.buckets.create(org_id=org_id, owner="o", name="thousand-1000", zone=None)
    assert node.storage.buckets.count(org_id) == 1000


def test_racing_creators_never_pass_the_limit(node: Node) -> None:
    org_id = node.directory.create_org(unique("race")).id
    node.storage.settings.update_org(org_id, max_buckets=5)

    def create(i: int) -> str:
        try:
            node.storage.buckets.create(org_id=org_id, owner="o", name=f"race-{org_id}-{i}", zone=None)
        except TooManyBuckets:
            return "refused"
        return "ok"

    assert sorted(at_once(12, create)) == ["ok"] * 5 + ["refused"] * 7
    assert node.storage.buckets.count(org_id) == 5


def test_limits_are_bounded(node: Node) -> None:
    org_id = node.directory.create_org(unique("bounds")).id
    settings = node.storage.settings
    for bad in ({"max_buckets": -1}, {"max_buckets": 1_000_001}, {"capacity_cap_bytes": -1}):
        with pytest.raises(InvalidArgument):
            settings.update_org(org_id, **bad)
    assert settings.update_org(org_id, max_buckets=0).max_buckets == 0
    with pytest.raises(TooManyBuckets):
        node.storage.buckets.create(org_id=org_id, owner="o", name=f"none-{org_id}", zone=None)
    assert settings.update_org(org_id, capacity_cap_bytes=2**64 - 1).capacity_cap_bytes is None
    assert settings.update_org(org_id, capacity_cap_bytes=2**63 - 2).capacity_cap_bytes == 2**63 - 2
    assert settings.update_org(org_id, capacity_cap_bytes=None).capacity_cap_bytes is None  # server default
