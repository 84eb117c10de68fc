"""`coffer keys rotate` and `coffer keys list --unused-for`, run as a user runs them."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.api import wait_for
from tests.support.cli import coffer_as, error_line
from tests.support.harness import CofferServer
from tests.support.s3 import client_error, s3_client

FLUSH = 0.5


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {"env": {"COFFER_LAST_USED_FLUSH_SECONDS": str(FLUSH)}}


def keys_json(server: CofferServer, *args: str) -> Any:
    return json.loads(coffer_as(server, "keys", *args, "--json").stdout)


def test_rotate_prints_the_new_secret_once_and_schedules_the_old_keys_end(server: CofferServer) -> None:
    old = server.mint_key(name="nightly")
    before = datetime.now(UTC)
    new = keys_json(server, "rotate", old["accessKeyId"], "--overlap", "1h")
    assert new["attributes"] == {"name": "nightly"} and new["secretKey"].startswith("cwo")
    revoke_at = datetime.strptime(new["rotation"]["revokeAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert (
        before + timedelta(hours=1) - timedelta(seconds=1)
        <= revoke_at
        <= before + timedelta(hours=1, seconds=30)
    )
    s3_client(server, old).list_buckets()  # both work during the overlap
    s3_client(server, new).list_buckets()
    shown = keys_json(server, "show", old["accessKeyId"])
    assert shown["rotation"]["successor"] == new["accessKeyId"]

    text = coffer_as(server, "keys", "rotate", new["accessKeyId"], "--overlap", "0s").stdout
    assert "shown only now" in text and "Replaces" in text
    with pytest.raises(Exception) as refused:
        s3_client(server, new).list_buckets()
    assert client_error(refused.value) == (403, "InvalidAccessKeyId")


def test_rotate_refuses_bad_input_in_one_line(server: CofferServer) -> None:
    key = server.mint_key()
    out = coffer_as(server, "keys", "rotate", key["accessKeyId"], "--overlap", "soon", check=False)
    assert "not a duration" in error_line(out, 2)
    out = coffer_as(server, "keys", "rotate", key["accessKeyId"], "--overlap", "31d", check=False)
    assert "400 INVALID_ARGUMENT" in error_line(out) and "overlapSeconds" in error_line(out)
    out = coffer_as(server, "keys", "rotate", "CWNOSUCHKEYATALL", check=False)
    assert "404 NOT_FOUND" in error_line(out)


def test_list_unused_for(server: CofferServer) -> None:
    idle, busy = server.mint_key(name="idle"), server.mint_key(name="busy")
    minted = time.time()
    time.sleep(8)
    s3_client(server, busy).list_buckets()
    with server.api() as c:  # wait for the flush (fast: no CLI start-up in the loop)
        assert wait_for(
            lambda: (
                c.get(
                    f"/v1/cwobject/access-key/{busy['accessKeyId']}",
                    headers={"X-Coffer-Extensions": "lastUsed"},
                ).json()["info"]["lastUsed"]
                is not None
            ),
            timeout=30,
        )
    # A span reaching back to about 4 s after the mints: the idle key is older and was never
    # used; the busy key was used since (the CLI's start-up only moves the cutoff later).
    span = f"{int(time.time() - minted) - 4}s"
    unused = {i["accessKeyId"] for i in keys_json(server, "list", "--unused-for", span)}
    assert idle["accessKeyId"] in unused and busy["accessKeyId"] not in unused
    fresh = server.mint_key(name="fresh")  # never used, but not idle for 90 days either
    assert fresh["accessKeyId"] not in {
        i["accessKeyId"] for i in keys_json(server, "list", "--unused-for", "90d")
    }
    table = coffer_as(server, "keys", "list", "--json").stdout
    assert "ListBuckets" in table
    out = coffer_as(server, "keys", "list", "--unused-for", "ninety days", check=False)
    assert "not a duration" in error_line(out, 2)
