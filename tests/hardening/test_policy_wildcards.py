"""Wildcard policies cannot stall a node (issue 12), end to end against a real server.

A policy pattern like `b/*a*a*…*b` made a backtracking matcher take time exponential in
its stars on a near-miss such as `b/aaaa…`, on the event loop, so one user's bucket policy
froze every request of the process. Here such patterns, in a bucket policy's Resource and
Condition and in an organization policy, decide a 1,000-character key within a client
timeout while the health endpoints of both faces keep answering; and patterns over the
bounds of `coffer.limits` are refused on both planes, with nothing stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from coffer.limits import MAX_PATTERN_LENGTH, MAX_PATTERN_WILDCARDS
from tests.support.api import assert_status, field_violation
from tests.support.harness import CofferServer
from tests.support.policies import delete, ensure, ensure_ok, listed, policy, statement
from tests.support.s3 import client_error, new_bucket, s3_client, unique

ARN = "arn:aws:s3:::"
# Ten `*a` then `*b`: a backtracking regex tries every way to place ten `a` in 1,000 of them.
PATHOLOGICAL = "*a" * 10 + "*b"
NEAR_MISS = "a" * 1000  # every `a` is there, the final `b` never is
HIT = "a" * 999 + "b"
CLIENT_TIMEOUT = 10.0  # seconds: generous; a backtracking matcher would need years
PROBE_TIMEOUT = 5.0


@pytest.fixture(scope="module")
def admin_key(server: CofferServer) -> dict[str, Any]:
    return server.mint_key(duration=0, name="wildcards")


@pytest.fixture(scope="module")
def s3(server: CofferServer, admin_key: dict[str, Any]) -> Any:
    """The bootstrap admin's client: the starter policy allows it all of S3."""
    return s3_client(server, admin_key, read_timeout=CLIENT_TIMEOUT, connect_timeout=PROBE_TIMEOUT)


@pytest.fixture
def bucket(s3: Any) -> str:
    """A fresh bucket (a bucket policy that matches nothing locks even its owner out of it)."""
    name = new_bucket(s3, "wild")
    s3.put_object(Bucket=name, Key=HIT, Body=b"hit")
    s3.put_object(Bucket=name, Key=NEAR_MISS, Body=b"near miss")
    return name


def status_of(call: Callable[[], Any]) -> int:
    """The HTTP status a boto3 call answered with (200 if it succeeded)."""
    try:
        call()
    except ClientError as exc:
        return client_error(exc)[0]
    return 200


def answered_while_healthy(server: CofferServer, call: Callable[[], Any]) -> int:
    """Run `call` in the background and probe both health endpoints until it returns.

    A matcher that blocks the event loop makes a probe time out (httpx raises), and
    the call itself fails after CLIENT_TIMEOUT; either fails the test.
    """
    probes: list[tuple[int, int]] = []
    with ThreadPoolExecutor(1) as pool, httpx.Client(timeout=PROBE_TIMEOUT) as probe:
        pending = pool.submit(status_of, call)
        while not pending.done() or not probes:
            probes.append(
                (
                    probe.get(server.s3_url + "/_coffer/healthz").status_code,
                    probe.get(server.api_url + "/healthz").status_code,
                )
            )
        status = pending.result(timeout=CLIENT_TIMEOUT)
    assert set(probes) == {(200, 200)}, probes
    return status


def test_bucket_policy_resource_and_condition(server: CofferServer, s3: Any, bucket: str) -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "read-wild",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"{ARN}{bucket}/{PATHOLOGICAL}",
            },
            {
                "Sid": "list-wild",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:ListBucket",
                "Resource": f"{ARN}{bucket}",
                "Condition": {"StringLike": {"s3:prefix": PATHOLOGICAL}},
            },
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
    # A bucket policy that exists and matches nothing rejects: the near miss is a 403.
    assert answered_while_healthy(server, lambda: s3.get_object(Bucket=bucket, Key=NEAR_MISS)) == 403
    assert answered_while_healthy(server, lambda: s3.list_objects_v2(Bucket=bucket, Prefix=NEAR_MISS)) == 403
    assert s3.get_object(Bucket=bucket, Key=HIT)["Body"].read() == b"hit"
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=HIT)
    assert [o["Key"] for o in listing["Contents"]] == [HIT]


def test_organization_policy_resource(server: CofferServer, s3: Any, bucket: str) -> None:
    name = unique("wild-deny")
    ensure_ok(
        server,
        policy(name, statement("deny-wild", ["s3:GetObject"], [f"{bucket}/{PATHOLOGICAL}"], ["*"], "Deny")),
    )
    try:
        # The Deny is checked first on every GetObject in the organization; the near miss
        # escapes it and the starter policy allows it, the hit is denied.
        assert answered_while_healthy(server, lambda: s3.get_object(Bucket=bucket, Key=NEAR_MISS)) == 200
        assert answered_while_healthy(server, lambda: s3.get_object(Bucket=bucket, Key=HIT)) == 403
        with server.api() as api:  # AuthCanI runs the same matcher on the control plane
            verdict = api.post(
                "/v1/cwobject/auth/can-i",
                json={"actions": ["s3:GetObject"], "resources": [f"{bucket}/{NEAR_MISS}", f"{bucket}/{HIT}"]},
                timeout=CLIENT_TIMEOUT,
            )
        assert verdict.status_code == 200, verdict.text
        assert verdict.json() == {"verdict": False}  # one of the two is denied
    finally:
        assert delete(server, name).status_code == 200


TOO_WILD = "*a" * MAX_PATTERN_WILDCARDS + "*b"  # one wildcard over the bound
TOO_LONG = "k" * MAX_PATTERN_LENGTH  # over the bound once the bucket name is in front


@pytest.mark.parametrize(
    ("key_pattern", "bound"),
    [(TOO_WILD, f"at most {MAX_PATTERN_WILDCARDS} are allowed"), (TOO_LONG, f"at most {MAX_PATTERN_LENGTH}")],
    ids=["wildcards", "length"],
)
def test_bucket_policy_over_the_bounds_is_refused(s3: Any, bucket: str, key_pattern: str, bound: str) -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"{ARN}{bucket}/{key_pattern}",
            }
        ],
    }
    with pytest.raises(ClientError) as err:
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
    assert client_error(err.value) == (400, "MalformedPolicy")
    message = err.value.response["Error"]["Message"]
    assert message.startswith("Policy has invalid resource: resource "), message
    assert bound in message, message
    with pytest.raises(ClientError) as err:
        s3.get_bucket_policy(Bucket=bucket)
    assert client_error(err.value) == (404, "NoSuchBucketPolicy")  # nothing was stored


@pytest.mark.parametrize(
    ("key_pattern", "bound"),
    [(TOO_WILD, f"at most {MAX_PATTERN_WILDCARDS} are allowed"), (TOO_LONG, f"at most {MAX_PATTERN_LENGTH}")],
    ids=["wildcards", "length"],
)
def test_organization_policy_over_the_bounds_is_refused(
    server: CofferServer, key_pattern: str, bound: str
) -> None:
    name = unique("too-wild")
    doc = policy(name, statement("s", ["s3:GetObject"], ["data/*", f"data/{key_pattern}"], ["*"]))
    body = assert_status(ensure(server, doc), 400, 3)  # INVALID_ARGUMENT, as google.rpc.Status JSON
    violation = field_violation(body)
    assert violation["field"] == "policy.statements[0].resources[1]"
    assert bound in violation["description"], violation
    assert name not in {p["name"] for p in listed(server)}
