"""Abuse limits end to end: the failed-authentication budget and the live-key cap.

One real server per backend, started with a small budget (5 failures in 3 s) and a cap of
5 live keys per principal. Every test comes from loopback, so a "different client" is a
different loopback source address (127.0.0.0/8 is all loopback on Linux): each test picks
its own addresses, and 127.0.0.1 itself never fails, so boto3 set-up calls stay clean.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from email.utils import formatdate
from typing import Any

import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from coffer.authbudget import AuthBudget, Throttled, source_of
from tests.support.api import assert_status, user_token
from tests.support.harness import CofferServer
from tests.support.policies import ensure_ok, policy, statement
from tests.support.s3 import REGION, new_bucket, s3_client

LIMIT = 5
WINDOW = 3.0
CAP = 5
AK = "/v1/cwobject/access-key"
WRONG = "cwo" + "x" * 40


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    args = [
        "--auth-failure-limit",
        str(LIMIT),
        "--auth-failure-window",
        str(WINDOW),
        "--max-live-keys-per-principal",
        str(CAP),
    ]
    return {"extra_args": args}


def from_address(local: str) -> httpx.Client:
    """An HTTP client whose connections come from `local` (a loopback address)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=local), timeout=30)


def s3_get(
    server: CofferServer, key: dict[str, Any], local: str, *, secret: str | None = None
) -> httpx.Response:
    """ListBuckets signed by botocore's SigV4 signer (with `secret` instead of the key's, if given)."""
    url = server.s3_url + "/"
    request = AWSRequest(method="GET", url=url)
    S3SigV4Auth(Credentials(key["accessKeyId"], secret or key["secretKey"]), "s3", REGION).add_auth(request)
    with from_address(local) as c:
        return c.get(url, headers=dict(request.prepare().headers.items()))


def assert_s3(resp: httpx.Response, status: int, code: str | None = None) -> None:
    assert resp.status_code == status, resp.text
    if code is not None:
        assert f"<Code>{code}</Code>" in resp.text, resp.text


def assert_slow_down(resp: httpx.Response) -> int:
    """503 SlowDown with a Retry-After within the window; returns the wait."""
    assert_s3(resp, 503, "SlowDown")
    wait = int(resp.headers["retry-after"])
    assert 1 <= wait <= WINDOW
    return wait


def keys_of_new_user(server: CofferServer, name: str, count: int) -> list[dict[str, Any]]:
    """Keys of a principal of their own (each may hold only CAP live keys), allowed all of S3."""
    principal, token = user_token(server, name, admin=True)
    ensure_ok(server, policy(name, statement("all-of-s3", ["s3:*"], ["*"], [principal])))
    return [server.mint_key(token) for _ in range(count)]


def throttle_events(server: CofferServer, **match: Any) -> list[dict[str, Any]]:
    return server.audit("auth_throttled", from_log=True, **match)


# --- the S3 face -------------------------------------------------------------------------------
def test_bad_signatures_slow_a_source_down_but_not_the_owner_elsewhere(server: CofferServer) -> None:
    key, other = keys_of_new_user(server, "s3-owner", 2)
    attacker, owner = "127.0.0.2", "127.0.0.3"
    for _ in range(LIMIT):
        assert_s3(s3_get(server, key, attacker, secret=WRONG), 403, "SignatureDoesNotMatch")
    assert_slow_down(s3_get(server, key, attacker, secret=WRONG))
    # The source is over its budget, whatever it signs with.
    assert_slow_down(s3_get(server, key, attacker))
    assert_slow_down(s3_get(server, other, attacker))
    # The key's own budget is spent too (every guess was at its secret), yet its owner, on an
    # address that has not failed, is not locked out.
    assert_s3(s3_get(server, key, owner), 200)
    # One audit line per crossing, not one per refused request; never a secret.
    (source_line,) = throttle_events(server, face="s3", scope="source", client=attacker)
    assert source_line["limit"] == LIMIT
    (key_line,) = throttle_events(server, face="s3", scope="key", access_key_id=key["accessKeyId"])
    assert key["secretKey"] not in json.dumps(key_line) and WRONG not in server.log()
    # Each refusal is counted, by scope and never by address or key.
    scrape = httpx.get(server.api_url + "/metrics", timeout=30).text
    refused = re.search(r'^coffer_auth_throttled_total\{face="s3",scope="source"\} (\S+)$', scrape, re.M)
    assert refused and float(refused.group(1)) >= 3, scrape


def test_guesses_spread_over_sources_throttle_the_key_for_suspect_sources_only(server: CofferServer) -> None:
    key, other = keys_of_new_user(server, "s3-guessed", 2)
    guessers = [f"127.0.1.{i}" for i in range(1, LIMIT + 1)]
    for address in guessers:  # each source stays well inside its own budget
        assert_s3(s3_get(server, key, address, secret=WRONG), 403, "SignatureDoesNotMatch")
    # A source that has failed recently cannot use the guessed-at key, even signed right...
    assert_slow_down(s3_get(server, key, guessers[0]))
    # ...but it is not itself over budget: another key works from there.
    assert_s3(s3_get(server, other, guessers[0]), 200)
    # The owner, on a clean address, is never refused for the key's budget.
    assert_s3(s3_get(server, key, "127.0.1.100"), 200)
    assert len(throttle_events(server, scope="key", access_key_id=key["accessKeyId"])) == 1
    assert not throttle_events(server, scope="source", client=guessers[0])


def test_every_signature_path_counts(server: CofferServer) -> None:
    """Presigned URLs, SigV2 and POST policies spend the same budget as header signatures."""
    key, admin_key = keys_of_new_user(server, "s3-paths", 2)
    admin_s3 = s3_client(server, admin_key)
    bucket = new_bucket(admin_s3, "abuse")
    forged = s3_client(server, {"accessKeyId": key["accessKeyId"], "secretKey": WRONG})
    source = "127.0.2.1"
    with from_address(source) as c:
        for _ in range(2):
            url = forged.generate_presigned_url("list_objects_v2", Params={"Bucket": bucket}, ExpiresIn=60)
            assert_s3(c.get(url), 403, "SignatureDoesNotMatch")
        sigv2 = {
            "Date": formatdate(usegmt=True),
            "Authorization": f"AWS {key['accessKeyId']}:{base64.b64encode(b'x' * 20).decode()}",
        }
        assert_s3(c.get(f"{server.s3_url}/{bucket}", headers=sigv2), 403, "SignatureDoesNotMatch")
        post = forged.generate_presigned_post(bucket, "upload.txt", ExpiresIn=60)
        r = c.post(post["url"], data=post["fields"], files={"file": ("upload.txt", b"hello")})
        assert_s3(r, 403, "SignatureDoesNotMatch")
        unknown = {"accessKeyId": "CWNOSUCHKEYXXXXXX", "secretKey": WRONG}
        assert_s3(s3_get(server, unknown, source), 403, "InvalidAccessKeyId")
        # Five failures: the next request is refused before its signature is checked, on any path.
        assert_slow_down(s3_get(server, key, source))
        url = s3_client(server, key).generate_presigned_url("list_objects_v2", Params={"Bucket": bucket})
        assert_slow_down(c.get(url))
        post = s3_client(server, key).generate_presigned_post(bucket, "upload.txt", ExpiresIn=60)
        assert_slow_down(c.post(post["url"], data=post["fields"], files={"file": ("upload.txt", b"hello")}))
        # An anonymous request authenticates nothing and is not refused.
        assert_s3(c.get(f"{server.s3_url}/{bucket}"), 403, "AccessDenied")
    assert admin_s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_the_budget_recovers_after_the_window(server: CofferServer) -> None:
    (key,) = keys_of_new_user(server, "s3-recovering", 1)
    source = "127.0.3.1"
    for _ in range(LIMIT):
        assert_s3(s3_get(server, key, source, secret=WRONG), 403, "SignatureDoesNotMatch")
    wait = assert_slow_down(s3_get(server, key, source))
    time.sleep(wait + 0.2)
    assert_s3(s3_get(server, key, source), 200)
    # A new window: failures are answered as failures again, and counted afresh.
    assert_s3(s3_get(server, key, source, secret=WRONG), 403, "SignatureDoesNotMatch")
    assert_s3(s3_get(server, key, source), 200)


# --- the control plane -------------------------------------------------------------------------
def test_bad_api_tokens_are_429_for_the_source_only(server: CofferServer) -> None:
    attacker, clean = "127.0.4.1", "127.0.4.2"
    good = {"Authorization": f"Bearer {server.admin_token}"}
    bad = {"Authorization": "Bearer cwt_" + "A" * 43}
    with from_address(attacker) as c:
        for _ in range(LIMIT):
            assert_status(c.get(server.api_url + AK, headers=bad), 401, 16)
        body = assert_status(c.get(server.api_url + AK, headers=bad), 429, 8)
        assert "too many failed authentications" in body["message"]
        r = c.get(server.api_url + AK, headers=good)
        assert_status(r, 429, 8)
        wait = int(r.headers["retry-after"])
        assert 1 <= wait <= WINDOW
    with from_address(clean) as c:
        assert c.get(server.api_url + AK, headers=good).status_code == 200
    (line,) = throttle_events(server, face="api", scope="source", client=attacker)
    assert "cwt_" not in json.dumps(line)
    time.sleep(wait + 0.2)
    with from_address(attacker) as c:
        assert c.get(server.api_url + AK, headers=good).status_code == 200


def test_failed_console_sign_ins_spend_the_same_budget(server: CofferServer) -> None:
    source = "127.0.4.3"
    with from_address(source) as c:
        for _ in range(LIMIT):
            r = c.post(server.api_url + "/console/api/session", json={"token": "cwt_" + "B" * 43})
            assert_status(r, 401, 16)
        r = c.post(server.api_url + "/console/api/session", json={"token": server.admin_token})
        assert_status(r, 429, 8)
        r = c.get(server.api_url + AK, headers={"Authorization": f"Bearer {server.admin_token}"})
        assert_status(r, 429, 8)


# --- the live-key cap --------------------------------------------------------------------------
def mint(c: httpx.Client, duration: int = 0) -> httpx.Response:
    return c.post(AK, json={"durationSeconds": duration})


def live_keys(server: CofferServer, principal: str) -> list[dict[str, Any]]:
    with server.api() as c:
        r = c.get(AK, params={"limit": 1000, "status": "ACTIVE"})
        assert r.status_code == 200, r.text
        return [k for k in r.json()["info"] if k["principalName"] == principal]


def assert_capped(resp: httpx.Response) -> None:
    body = assert_status(resp, 429, 8)
    assert f"max_live_keys_per_principal ({CAP})" in body["message"], body
    (detail,) = body["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.QuotaFailure", detail


def test_the_cap_refuses_one_more_live_key_on_every_minting_path(server: CofferServer) -> None:
    principal, token = user_token(server, "capped", admin=True)
    with server.api(token) as c:
        minted = [mint(c) for _ in range(CAP)]
        assert [r.status_code for r in minted] == [200] * CAP
        assert_capped(mint(c))
        assert_capped(c.get("/v1/cwobject/temporary-credentials/api-token"))
        r = c.post(
            "/v1/cwobject/revoke-access-key/access-key", json={"accessKey": minted[0].json()["accessKeyId"]}
        )
        assert r.status_code == 200, r.text
        exchanged = c.get("/v1/cwobject/temporary-credentials/api-token")
        assert exchanged.status_code == 200, exchanged.text
        assert_capped(mint(c))
    # Another principal is not affected by this one's keys.
    assert server.mint_key()["accessKeyId"]
    assert len(live_keys(server, principal)) == CAP


def test_expired_keys_do_not_count(server: CofferServer) -> None:
    principal, token = user_token(server, "expiring", admin=True)
    with server.api(token) as c:
        assert [mint(c).status_code for _ in range(CAP - 1)] == [200] * (CAP - 1)
        assert mint(c, duration=1).status_code == 200
        assert_capped(mint(c))
        time.sleep(1.2)
        assert mint(c).status_code == 200
        assert_capped(mint(c))
    assert len(live_keys(server, principal)) == CAP


def test_concurrent_mints_at_the_cap_never_exceed_it(server: CofferServer) -> None:
    principal, token = user_token(server, "racing", admin=True)
    with server.api(token) as c:
        assert mint(c).status_code == 200 and mint(c).status_code == 200
    threads = 8
    barrier = threading.Barrier(threads)
    statuses: list[int] = []

    def one() -> None:
        with server.api(token) as c:
            barrier.wait()
            statuses.append(mint(c).status_code)

    workers = [threading.Thread(target=one) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert sorted(statuses) == [200] * (CAP - 2) + [429] * (threads - CAP + 2), statuses
    assert len(live_keys(server, principal)) == CAP


# --- the budget's own bounds (no server: a fake clock and a small table) -----------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_tables_stay_bounded_and_forget_the_least_recently_failed_first() -> None:
    budget = AuthBudget(2, 60.0, tracked=3, clock=Clock())
    for source in ("10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.3", "10.0.0.4"):
        budget.failed(source, face="s3")
    assert len(budget._sources) == 3
    assert not budget.suspect("10.0.0.2")  # failed least recently: forgotten
    with pytest.raises(Throttled) as refused:  # failed twice, moved to the end: kept
        budget.admit("10.0.0.1", face="s3")
    assert refused.value.scope == "source" and refused.value.retry_after == 60
    for key_id in ("CWA", "CWB", "CWC", "CWD"):
        budget.failed("10.0.0.9", key_id, face="s3")
    assert list(budget._keys) == ["CWB", "CWC", "CWD"]


def test_a_window_ends_and_counting_starts_afresh() -> None:
    clock = Clock()
    budget = AuthBudget(2, 10.0, clock=clock)
    budget.failed("10.0.0.1", "CWKEY", face="s3")
    clock.now += 4
    budget.failed("10.0.0.1", "CWKEY", face="s3")
    with pytest.raises(Throttled) as refused:
        budget.admit("10.0.0.1", face="s3")
    assert refused.value.retry_after == 6  # the window runs from the first failure
    budget.admit("10.0.0.2", "CWKEY", face="s3")  # a clean source is never refused for the key
    clock.now += 6
    budget.admit("10.0.0.1", "CWKEY", face="s3")
    assert not budget.suspect("10.0.0.1")
    budget.failed("10.0.0.1", face="s3")
    budget.admit("10.0.0.1", "CWKEY", face="s3")  # one failure in a new window; the key's window ended too


def test_ipv6_sources_are_counted_by_their_64() -> None:
    assert source_of("2001:db8:1:2:aaaa::1") == source_of("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert source_of("2001:db8:1:3::1") != source_of("2001:db8:1:2::1")
    assert source_of("::ffff:192.0.2.7") == source_of("192.0.2.7") == "192.0.2.7"
    budget = AuthBudget(1, 60.0, clock=Clock())
    budget.failed("2001:db8:1:2::1", face="api")
    with pytest.raises(Throttled):
        budget.admit("2001:db8:1:2:ffff:ffff:ffff:ffff", face="api")
    budget.admit("2001:db8:1:3::1", face="api")


def test_a_limit_of_zero_turns_the_budget_off() -> None:
    budget = AuthBudget(0, 60.0, clock=Clock())
    for _ in range(100):
        budget.failed("10.0.0.1", "CWKEY", face="s3")
    budget.admit("10.0.0.1", "CWKEY", face="s3")
    assert not budget._sources and not budget._keys
