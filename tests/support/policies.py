"""Helpers for the policy end-to-end tests: policy documents, users in any organization, clients."""

from __future__ import annotations

import json
from typing import Any

import httpx
from botocore.exceptions import ClientError

from tests.support.harness import CofferServer
from tests.support.s3 import client_error, s3_client, unique

POLICIES = "/v1/cwobject/access-policy"
CAN_I = "/v1/cwobject/auth/can-i"
STARTER = "coffer-bootstrap-admin-s3"


def statement(
    name: str,
    actions: list[str],
    resources: list[str],
    principals: list[str],
    effect: str = "Allow",
) -> dict[str, Any]:
    return {
        "name": name,
        "effect": effect,
        "actions": actions,
        "resources": resources,
        "principals": principals,
    }


def open_to_everyone(
    server: CofferServer, s3: Any, bucket: str, prefix: str, action: str, *, org: str, sid: str, name: str
) -> None:
    """Let anyone, anonymous callers included, do S3 `action` on the objects under
    `bucket`/`prefix`: the bucket's policy (statement `sid`; the owner's organization `org`
    keeps every action, since a bucket policy refuses what it does not allow) and the
    organization policy `public-<name>` that anonymous requests need too."""
    arn = f"arn:aws:s3:::{bucket}"
    owner = {
        "Sid": "owner",
        "Effect": "Allow",
        "Principal": {"CW": "*"},
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"StringEquals": {"cw:PrincipalOrgID": org}},
    }
    public = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": "*",
        "Action": action,
        "Resource": f"{arn}/{prefix}*",
    }
    document = {"Version": "2012-10-17", "Statement": [owner, public]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
    ensure_ok(server, policy(f"public-{name}", statement(name, [action], [f"{bucket}/{prefix}*"], ["*"])))


def policy(name: str, *statements: dict[str, Any]) -> dict[str, Any]:
    return {"version": "v1alpha1", "name": name, "statements": list(statements)}


def ensure(server: CofferServer, doc: dict[str, Any], token: str | None = None) -> httpx.Response:
    with server.api(token) as c:
        return c.post(POLICIES, json={"policy": doc})


def ensure_ok(server: CofferServer, doc: dict[str, Any], token: str | None = None) -> None:
    r = ensure(server, doc, token)
    assert r.status_code == 200, r.text


def delete(server: CofferServer, name: str, token: str | None = None) -> httpx.Response:
    with server.api(token) as c:
        return c.delete(f"{POLICIES}/{name}")


def listed(server: CofferServer, token: str | None = None) -> list[dict[str, Any]]:
    with server.api(token) as c:
        r = c.get(POLICIES)
        assert r.status_code == 200, r.text
        policies: list[dict[str, Any]] = r.json()["policies"]
        return policies


def can_i(server: CofferServer, actions: list[str], resources: list[str], token: str | None = None) -> bool:
    with server.api(token) as c:
        r = c.post(CAN_I, json={"actions": actions, "resources": resources})
        assert r.status_code == 200, r.text
        assert set(r.json()) == {"verdict"}
        verdict: bool = r.json()["verdict"]
        return verdict


def org_of(server: CofferServer, key: dict[str, Any], token: str | None = None) -> str:
    """The organization of a minted key, as GetAccessKeyInfo reports it."""
    with server.api(token) as c:
        r = c.get(f"/v1/cwobject/access-key/{key['accessKeyId']}")
        assert r.status_code == 200, r.text
        return str(r.json()["info"]["orgId"])


def create_org(server: CofferServer) -> str:
    """A new organization (no policies, no users); returns its id."""
    return server.cli("admin", "org", "create", unique("org")).stdout.strip()


def create_user(
    server: CofferServer,
    name: str,
    *,
    org: str | None = None,
    admin: bool = False,
    groups: tuple[str, ...] = (),
) -> tuple[str, str]:
    """(principal, API token) of a new user of `org` (default: the first organization)."""
    args = ["admin", "user", "create", name, "--with-token", "--json"]
    if org:
        args += ["--org", org]
    if admin:
        args.append("--admin")
    for group in groups:
        args += ["--group", group]
    created = json.loads(server.cli(*args).stdout)
    return str(created["principalName"]), str(created["apiToken"])


def s3_of(server: CofferServer, token: str | None = None) -> Any:
    """A boto3 client with a fresh permanent key of the token's user."""
    return s3_client(server, server.mint_key(token=token))


def user_allowed(server: CofferServer, name: str, actions: list[str], resources: list[str]) -> Any:
    """A boto3 client of a new user `name` whose policy (also `name`) allows it `actions` on
    `resources`, and minting its key (which grants nothing on S3)."""
    principal, token = create_user(server, name)
    ensure_ok(
        server,
        policy(
            name,
            statement("allowed", actions, resources, [principal]),
            statement("mint", ["cwobject:CreateAccessKey"], ["*"], [principal]),
        ),
    )
    return s3_of(server, token)


def denied(call: Any) -> bool:
    """True if the boto3 call fails with 403 AccessDenied; any other failure is re-raised."""
    try:
        call()
    except ClientError as exc:
        status, code = client_error(exc)
        if (status, code) == (403, "AccessDenied"):
            return True
        if code == "403":  # HEAD: no body, only the status
            return True
        raise
    return False
