"""CheckBucketPolicyLockout (`POST /v1/cwobject/auth/bucket-policy-lockout`), Coffer's
extension: its answer, its errors, and that it saves nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.support.api import assert_status, field_violation
from tests.support.console import allow_s3
from tests.support.harness import CofferServer
from tests.support.policies import create_org, create_user, s3_of
from tests.support.s3 import new_bucket, unique

PATH = "/v1/cwobject/auth/bucket-policy-lockout"
REQUIRED = "is required: the bucket policy document (JSON text or object)"


@pytest.fixture(scope="module")
def bucket(server: CofferServer) -> str:
    allow_s3(server)  # the organization's principals may use S3 (reference §3.1)
    return new_bucket(s3_of(server), "lockout")


def document(bucket: str, principal: str = "*", **extra: Any) -> dict[str, Any]:
    statement = {
        "Effect": "Allow",
        "Principal": {"CW": principal},
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        **extra,
    }
    return {"Version": "2012-10-17", "Statement": [statement]}


def check(server: CofferServer, body: dict[str, Any], token: str | None = None) -> Any:
    with server.api(token) as c:
        return c.post(PATH, json=body)


def test_a_locking_policy(server: CofferServer, bucket: str) -> None:
    r = check(server, {"bucketName": bucket, "policy": json.dumps(document(bucket, "role/DataTeam"))})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["bucketName"] == bucket and body["principalName"].startswith("coreweave/")
    assert body["lockedOut"] is True
    assert body["checks"] == [
        {
            "action": "s3:ListBucket",
            "resource": bucket,
            "allowedNow": True,
            "allowedAfter": False,
            "lockedOut": True,
            "rule": "bucket-implicit-deny",
        },
        {
            "action": "s3:GetObject",
            "resource": f"{bucket}/coffer-lockout-check/any-object",
            "allowedNow": True,
            "allowedAfter": False,
            "lockedOut": True,
            "rule": "bucket-implicit-deny",
        },
        {
            "action": "s3:PutBucketPolicy",
            "resource": bucket,
            "allowedNow": True,
            "allowedAfter": True,
            "lockedOut": False,
            "rule": "org-allow-global",
        },
    ]
    # Nothing was saved.
    with pytest.raises(ClientError) as err:
        s3_of(server).get_bucket_policy(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "NoSuchBucketPolicy"


def test_a_safe_policy_as_an_object_and_a_deny_by_sid(server: CofferServer, bucket: str) -> None:
    r = check(server, {"bucketName": bucket, "policy": document(bucket)})
    assert r.status_code == 200, r.text
    assert r.json()["lockedOut"] is False
    assert [c["rule"] for c in r.json()["checks"]] == ["bucket-allow", "bucket-allow", "org-allow-global"]

    denying = document(bucket)
    denying["Statement"].append(
        {
            "Sid": "NoReads",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        }
    )
    r = check(server, {"bucketName": bucket, "policy": denying})
    assert r.status_code == 200, r.text
    (locked,) = [c for c in r.json()["checks"] if c["lockedOut"]]
    assert (locked["action"], locked["rule"], locked["statement"]) == (
        "s3:GetObject",
        "bucket-deny",
        "NoReads",
    )


def test_it_needs_no_permission_but_a_caller(server: CofferServer, bucket: str) -> None:
    _, token = create_user(server, unique("nobody"))  # no cwobject: action at all
    r = check(server, {"bucketName": bucket, "policy": document(bucket)}, token)
    assert r.status_code == 200, r.text
    assert r.json()["lockedOut"] is False
    r = httpx.post(server.api_url + PATH, json={"bucketName": bucket, "policy": document(bucket)})
    assert_status(r, 401, 16)


@pytest.mark.parametrize(
    ("body", "field", "description"),
    [
        ({"policy": "{}"}, "bucketName", "is required"),
        ({"bucketName": 7, "policy": "{}"}, "bucketName", "must be a string"),
        (
            {"bucketName": "{bucket}"},
            "policy",
            "is required: the bucket policy document (JSON text or object)",
        ),
        (
            {"bucketName": "{bucket}", "policy": ["x"]},
            "policy",
            "is required: the bucket policy document (JSON text or object)",
        ),
        (
            {"bucketName": "{bucket}", "policy": "[1]"},
            "policy",
            "MalformedPolicy: Policies must be valid JSON and the first byte must be '{'",
        ),
        (
            {"bucketName": "{bucket}", "policy": {}},
            "policy",
            "MalformedPolicy: Missing required field Statement",
        ),
    ],
)
def test_bad_requests(
    server: CofferServer, bucket: str, body: dict[str, Any], field: str, description: str
) -> None:
    if body.get("bucketName") == "{bucket}":
        body = {**body, "bucketName": bucket}
    violation = field_violation(assert_status(check(server, body), 400, 3))
    assert violation == {"field": field, "description": description}


def test_unknown_and_foreign_buckets_are_not_found(server: CofferServer, bucket: str) -> None:
    name = unique("absent")
    body = assert_status(check(server, {"bucketName": name, "policy": document(name)}), 404, 5)
    assert body["message"] == f"bucket '{name}' not found"
    _, stranger = create_user(server, unique("stranger"), org=create_org(server), admin=True)
    body = assert_status(check(server, {"bucketName": bucket, "policy": document(bucket)}, stranger), 404, 5)
    assert body["message"] == f"bucket '{bucket}' not found"
