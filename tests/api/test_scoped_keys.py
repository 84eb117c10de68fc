"""Scoped keys end to end: a real server per backend, boto3 on S3, httpx on the control plane.

A scoped key may do only what both its owner and its scope allow (docs/policies.md, "Scoped
keys"): it writes its prefix and is refused elsewhere although its owner may; a scope of
`s3:*` on `*` does not widen an owner allowed one bucket; a Deny in the scope wins over the
owner's Allow; conditions in a scope hold; AuthCanI answers for a key; bad scopes are
refused naming the field; federated (SAML, OIDC) keys carry a scope as a session policy.
And a client that sends no extension field or header gets CoreWeave's bytes (docs/api.md,
"Coffer's extension fields").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.support.api import KEY_INFO_FIELDS, assert_status, field_violation
from tests.support.harness import CofferServer
from tests.support.idp import mint_jwt, rsa_key, signed_response, spec_for_config, to_b64
from tests.support.policies import CAN_I, create_user, denied, ensure_ok, org_of, policy, statement
from tests.support.s3 import client_error, s3_client, unique

AK = "/v1/cwobject/access-key"
EXT = {"X-Coffer-Extensions": "scope"}
PERMANENT = "1970-01-01T00:00:00Z"
IDP = rsa_key("scoped-keys-idp")


def scope(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"statements": list(statements)}


def allow(name: str, actions: list[str], resources: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "effect": "Allow", "actions": actions, "resources": resources, **extra}


def deny(name: str, actions: list[str], resources: list[str]) -> dict[str, Any]:
    return {"name": name, "effect": "Deny", "actions": actions, "resources": resources}


def mint(server: CofferServer, token: str, body_scope: Any = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"durationSeconds": 0, **extra}
    if body_scope is not None:
        body["scope"] = body_scope
    with server.api(token) as c:
        r = c.post(AK, json=body)
    assert r.status_code == 200, r.text
    key: dict[str, Any] = r.json()
    return key


def put_ok(s3: Any, bucket: str, key: str) -> bool:
    return not denied(lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"x"))


def refusals(server: CofferServer, key_id: str) -> list[dict[str, Any]]:
    return server.audit("denied", plane="s3", access_key_id=key_id, from_log=True)


@dataclass
class World:
    org: str
    data: str  # the owners' bucket
    other: str  # a second bucket the CI owner may use too
    third: str  # the only bucket the narrow owner may use
    ci: str
    ci_token: str
    narrow: str
    narrow_token: str


@pytest.fixture(scope="module")
def world(server: CofferServer) -> Iterator[World]:
    admin_key = server.mint_key()
    s3 = s3_client(server, admin_key)
    data, other, third = unique("data"), unique("other"), unique("third")
    for bucket in (data, other, third):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=data, Key="builds/old", Body=b"old")
    ci, ci_token = create_user(server, unique("ci"))
    narrow, narrow_token = create_user(server, unique("narrow"))
    ensure_ok(
        server,
        policy(
            "scoped-owners",
            statement("mint", ["cwobject:CreateAccessKey"], ["*"], [ci, narrow]),
            statement("ci-s3", ["s3:*"], [data, f"{data}/*", other, f"{other}/*"], [ci]),
            statement("narrow-s3", ["s3:*"], [third, f"{third}/*"], [narrow]),
        ),
    )
    yield World(org_of(server, admin_key), data, other, third, ci, ci_token, narrow, narrow_token)


# --- the decision ----------------------------------------------------------------------------


def test_a_scoped_key_writes_its_prefix_and_is_refused_elsewhere(server: CofferServer, world: World) -> None:
    owner = s3_client(server, mint(server, world.ci_token))
    key = mint(
        server, world.ci_token, scope(allow("ci-writes", ["s3:PutObject"], [f"{world.data}/builds/*"]))
    )
    scoped = s3_client(server, key)
    assert put_ok(scoped, world.data, "builds/1.tar")
    assert not put_ok(scoped, world.data, "releases/1.tar")
    assert not put_ok(scoped, world.other, "builds/1.tar")
    assert denied(lambda: scoped.get_object(Bucket=world.data, Key="builds/old"))  # put only
    # ... all of which its owner may do
    assert put_ok(owner, world.data, "releases/1.tar")
    assert put_ok(owner, world.other, "builds/1.tar")
    assert owner.get_object(Bucket=world.data, Key="builds/1.tar")["Body"].read() == b"x"
    # the audit line names the scope's rule
    lines = refusals(server, key["accessKeyId"])
    assert {line["rule"] for line in lines} == {"key-scope-no-allow"}, lines
    assert all(line["policy"] == "key-scope" and line["principal"] == world.ci for line in lines)


def test_a_scope_cannot_widen_its_owner(server: CofferServer, world: World) -> None:
    key = mint(server, world.narrow_token, scope(allow("everything", ["s3:*"], ["*"])))
    scoped = s3_client(server, key)
    assert put_ok(scoped, world.third, "a")
    assert not put_ok(scoped, world.data, "a")
    assert not put_ok(scoped, world.other, "a")
    assert denied(lambda: scoped.list_objects_v2(Bucket=world.data))
    assert denied(scoped.list_buckets)  # the owner may not list buckets, so neither may the key
    # refused by the owner's policies, reported as such: the scope took nothing away here
    rules = {line["rule"] for line in refusals(server, key["accessKeyId"])}
    assert rules == {"org-implicit-deny"}, rules


def test_a_deny_in_the_scope_wins_over_the_owners_allow(server: CofferServer, world: World) -> None:
    key = mint(
        server,
        world.ci_token,
        scope(
            allow("all-data", ["s3:*"], [world.data, f"{world.data}/*"]),
            deny("no-deletes", ["s3:DeleteObject"], [f"{world.data}/*"]),
        ),
    )
    scoped = s3_client(server, key)
    assert put_ok(scoped, world.data, "keep/me")
    assert denied(lambda: scoped.delete_object(Bucket=world.data, Key="keep/me"))
    assert scoped.get_object(Bucket=world.data, Key="keep/me")["Body"].read() == b"x"
    (line,) = refusals(server, key["accessKeyId"])
    assert (line["rule"], line["policy"], line["statement"]) == ("key-scope-deny", "key-scope", "no-deletes")
    assert line["action"] == "s3:DeleteObject"


def test_conditions_in_a_scope_hold(server: CofferServer, world: World) -> None:
    key = mint(
        server,
        world.ci_token,
        scope(
            allow(
                "list-builds",
                ["s3:ListBucket"],
                [world.data],
                conditions={"StringLike": {"s3:prefix": "builds/*"}},
            )
        ),
    )
    scoped = s3_client(server, key)
    assert scoped.list_objects_v2(Bucket=world.data, Prefix="builds/")["KeyCount"] >= 1
    assert denied(lambda: scoped.list_objects_v2(Bucket=world.data))
    assert denied(lambda: scoped.list_objects_v2(Bucket=world.data, Prefix="releases/"))


def test_a_revoked_scoped_key_is_refused_and_its_scope_survives_the_cache(
    server: CofferServer, world: World
) -> None:
    """The scope travels with the key through the cache: a cached key keeps being narrowed."""
    key = mint(server, world.ci_token, scope(allow("one", ["s3:PutObject"], [f"{world.data}/one"])))
    scoped = s3_client(server, key)
    for _ in range(3):  # the first request fills the cache, the others are served from it
        assert put_ok(scoped, world.data, "one")
        assert not put_ok(scoped, world.data, "two")
    with server.api() as c:
        assert (
            c.post(
                "/v1/cwobject/revoke-access-key/access-key", json={"accessKey": key["accessKeyId"]}
            ).status_code
            == 200
        )
    with pytest.raises(ClientError) as info:
        scoped.put_object(Bucket=world.data, Key="one", Body=b"x")
    assert client_error(info.value) == (403, "InvalidAccessKeyId")


# --- AuthCanI --------------------------------------------------------------------------------


def can_i(
    server: CofferServer, token: str, actions: list[str], resources: list[str], **extra: Any
) -> httpx.Response:
    with server.api(token) as c:
        return c.post(CAN_I, json={"actions": actions, "resources": resources, **extra})


def test_can_i_answers_for_a_key(server: CofferServer, world: World) -> None:
    key = mint(
        server, world.ci_token, scope(allow("ci-writes", ["s3:PutObject"], [f"{world.data}/builds/*"]))
    )
    kid = key["accessKeyId"]

    def verdict(resource: str, action: str = "s3:PutObject", **extra: Any) -> bool:
        r = can_i(server, world.ci_token, [action], [resource], **extra)
        assert r.status_code == 200, r.text
        answer: bool = r.json()["verdict"]
        return answer

    assert verdict(f"{world.data}/builds/x", accessKeyId=kid)
    assert not verdict(f"{world.data}/releases/x", accessKeyId=kid)
    assert not verdict(f"{world.other}/builds/x", accessKeyId=kid)
    assert not verdict(f"{world.data}/builds/x", "s3:GetObject", accessKeyId=kid)
    # the caller itself (no key named) may do all of it
    assert verdict(f"{world.data}/releases/x") and verdict(f"{world.other}/builds/x")
    # an unscoped key of the owner answers as the owner
    plain = mint(server, world.ci_token)["accessKeyId"]
    assert verdict(f"{world.other}/builds/x", accessKeyId=plain)

    # another principal's key needs cwobject:GetAccessKeyInfo: the narrow user has none
    r = can_i(server, world.narrow_token, ["s3:PutObject"], [f"{world.data}/builds/x"], accessKeyId=kid)
    assert_status(r, 403, 7)
    # the admin (Object Storage Admin) may ask about it, and gets the key's answer
    r = can_i(server, server.admin_token, ["s3:PutObject"], [f"{world.data}/releases/x"], accessKeyId=kid)
    assert r.status_code == 200 and r.json() == {"verdict": False}, r.text
    # unknown keys and bad values
    assert_status(
        can_i(server, world.ci_token, ["s3:PutObject"], ["*"], accessKeyId="CWNOSUCHKEYATALL"), 404, 5
    )
    for bad in (None, "", 7, ["x"]):
        body = assert_status(can_i(server, world.ci_token, ["s3:PutObject"], ["*"], accessKeyId=bad), 400, 3)
        assert field_violation(body)["field"] == "accessKeyId"


# --- the extension field on the wire ---------------------------------------------------------


def test_get_and_list_show_the_scope_only_when_asked(server: CofferServer, world: World) -> None:
    doc = scope(
        allow(
            "list-builds",
            ["s3:ListBucket"],
            [world.data],
            conditions={"StringLike": {"s3:prefix": ["builds/*"]}},
        ),
        deny("no-deletes", ["s3:Delete*"], ["*"]),
    )
    key = mint(server, world.ci_token, doc)
    assert "scope" not in key
    kid = key["accessKeyId"]
    plain = mint(server, world.ci_token)["accessKeyId"]
    with server.api() as c:
        for header in ({}, {"X-Coffer-Extensions": "nothing-known"}, {"X-Coffer-Extensions": ""}):
            info = c.get(f"{AK}/{kid}", headers=header).json()["info"]
            assert "scope" not in info, info
        for header in ("scope", "*", "lastUsed , scope", "scope,scope"):
            r = c.get(f"{AK}/{kid}", headers={"X-Coffer-Extensions": header})
            assert r.json()["info"]["scope"] == doc, r.text
            assert (
                c.get(f"{AK}/{plain}", headers={"X-Coffer-Extensions": header}).json()["info"]["scope"]
                is None
            )
        listed = {i["accessKeyId"]: i for i in c.get(AK, params={"limit": 1000}, headers=EXT).json()["info"]}
        assert listed[kid]["scope"] == doc and listed[plain]["scope"] is None
        assert all("scope" not in i for i in c.get(AK, params={"limit": 1000}).json()["info"])
    # the create answer carries it when asked for, too
    with server.api(world.ci_token) as c:
        r = c.post(AK, json={"durationSeconds": 0, "scope": doc}, headers=EXT)
    assert r.status_code == 200 and r.json()["scope"] == doc, r.text


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ("s3:*", "scope"),
        ({"statements": []}, "scope.statements"),
        ({"Statement": []}, "scope.Statement"),
        (scope(allow("a", ["cwobject:CreateAccessKey"], ["*"])), "scope.statements[0].actions[0]"),
        (scope(allow("a", ["s3:GetObjekt"], ["*"])), "scope.statements[0].actions[0]"),
        (scope(allow("a", ["s3:*"], ["*"], principals=["*"])), "scope.statements[0].principals"),
        (scope(allow("a", ["s3:*"], ["arn:aws:s3:::b/*"])), "scope.statements[0].resources[0]"),
        (scope(allow("a", ["s3:*"], ["b/" + "*?" * 40])), "scope.statements[0].resources[0]"),
        (
            scope(allow("a", ["s3:*"], ["*"], conditions={"StringEquals": "x"})),
            "scope.statements[0].conditions",
        ),
        (scope(*[allow(f"s{i}", ["s3:*"], ["*"]) for i in range(101)]), "scope.statements"),
        (scope(allow("a", ["s3:*"], [f"b/{'k' * 2000}{i}" for i in range(12)])), "scope"),
    ],
)
def test_invalid_scopes_are_refused_and_mint_nothing(
    server: CofferServer, world: World, bad: Any, field: str
) -> None:
    with server.api() as admin, server.api(world.ci_token) as c:
        before = len(admin.get(AK, params={"limit": 1000}).json()["info"])
        r = c.post(AK, json={"durationSeconds": 0, "scope": bad})
        body = assert_status(r, 400, 3)
        assert field_violation(body)["field"] == field, body
        assert len(admin.get(AK, params={"limit": 1000}).json()["info"]) == before


def test_a_null_scope_is_no_scope(server: CofferServer, world: World) -> None:
    with server.api(world.ci_token) as c:
        r = c.post(AK, json={"durationSeconds": 0, "scope": None}, headers=EXT)
    assert r.status_code == 200 and r.json()["scope"] is None, r.text
    assert put_ok(s3_client(server, r.json()), world.other, "unscoped")


# --- federated keys: a scope is a session policy ---------------------------------------------


def test_scoped_oidc_keys_never_exceed_the_role(server: CofferServer, world: World) -> None:
    issuer = f"https://{unique('ci-idp')}.example.test/oidc"
    audience = unique("aud")
    with server.api() as c:
        r = c.post(
            "/v1beta1/workload-federation/oidc-configs",
            json={
                "name": unique("cfg"),
                "audience": audience,
                "issuerUrl": issuer,
                "jwks": {"keys": [IDP.jwk("k1")]},
            },
        )
    assert r.status_code == 200, r.text
    sub = "system:serviceaccount:ci:builder"
    role = f"role/{issuer}:{sub}"
    ensure_ok(
        server, policy("oidc-role", statement("role-s3", ["s3:*"], [world.data, f"{world.data}/*"], [role]))
    )

    def exchange(session_policy: dict[str, Any]) -> Any:
        token = mint_jwt(IDP, issuer=issuer, aud=audience, sub=sub, now=datetime.now(UTC))
        body = {"orgId": world.org, "oidcToken": token, "durationSeconds": 600, "scope": session_policy}
        r = httpx.post(
            server.api_url + "/v1/cwobject/temporary-credentials/oidc", json=body, headers=EXT, timeout=30
        )
        assert r.status_code == 200, r.text
        assert r.json()["scope"] == session_policy
        return s3_client(server, r.json())

    narrowed = exchange(scope(allow("pub", ["s3:GetObject", "s3:PutObject"], [f"{world.data}/pub/*"])))
    assert put_ok(narrowed, world.data, "pub/x")
    assert not put_ok(narrowed, world.data, "private/x")  # the role may; the session policy may not
    wide = exchange(scope(allow("everything", ["s3:*"], ["*"])))
    assert put_ok(wide, world.data, "private/x")
    assert not put_ok(wide, world.other, "x")  # the session policy may; the role may not
    # a bad session policy is refused as on CreateAccessKeyFromJWT
    token = mint_jwt(IDP, issuer=issuer, aud=audience, sub=sub, now=datetime.now(UTC))
    body = {
        "orgId": world.org,
        "oidcToken": token,
        "durationSeconds": 600,
        "scope": scope(allow("a", ["*:*"], ["*"])),
    }
    r = httpx.post(server.api_url + "/v1/cwobject/temporary-credentials/oidc", json=body, timeout=30)
    assert field_violation(assert_status(r, 400, 3))["field"] == "scope.statements[0].actions[0]"


def test_scoped_saml_keys_never_exceed_the_role(server: CofferServer, world: World) -> None:
    with server.api() as c:
        r = c.post(
            "/v1beta1/workload-federation/saml-configs",
            json={
                "name": unique("idp"),
                "idpEntityId": f"https://{unique('idp')}.example.test/saml/metadata",
                "certificates": [IDP.cert_pem],
            },
        )
    assert r.status_code == 200, r.text
    cfg = r.json()["config"]
    role = unique("Builder")
    ensure_ok(
        server,
        policy(
            "saml-role", statement("role-s3", ["s3:*"], [world.third, f"{world.third}/*"], [f"role/{role}"])
        ),
    )

    def exchange(session_policy: dict[str, Any] | None) -> Any:
        saml = to_b64(signed_response(spec_for_config(cfg, principal=("bob",), roles=(role,)), IDP))
        body: dict[str, Any] = {
            "orgId": cfg["orgUid"],
            "configId": cfg["uid"],
            "samlResponse": saml,
            "durationSeconds": 600,
        }
        if session_policy is not None:
            body["scope"] = session_policy
        r = httpx.post(server.api_url + "/v1/cwobject/temporary-credentials/saml", json=body, timeout=30)
        assert r.status_code == 200, r.text
        assert "scope" not in r.json()  # not asked for
        return s3_client(server, r.json())

    unscoped = exchange(None)
    assert put_ok(unscoped, world.third, "reports/x") and put_ok(unscoped, world.third, "other/x")
    narrowed = exchange(scope(allow("reports", ["s3:PutObject"], [f"{world.third}/reports/*"])))
    assert put_ok(narrowed, world.third, "reports/y")
    assert not put_ok(narrowed, world.third, "other/y")
    wide = exchange(scope(allow("everything", ["s3:*"], ["*"])))
    assert not put_ok(wide, world.data, "x")


# --- CoreWeave's bytes for a client that asks for no extension -------------------------------


def coreweave_bytes(document: Any) -> bytes:
    """A JSON body exactly as the control plane wrote it before extensions existed (Starlette's
    JSONResponse: compact separators, UTF-8, the fields in CoreWeave's order)."""
    return json.dumps(
        document, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode()


MINTED_FIELDS = ("accessKeyId", "secretKey", "principalName", "expiry", "attributes")
CONTAINER_FIELDS = ("AccessKeyId", "SecretAccessKey", "Token", "Expiration", "attributes", "multiAttributes")


def in_order(parsed: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """`parsed` rebuilt with exactly `fields`, in that order (a missing one raises KeyError)."""
    return {name: parsed[name] for name in fields}


def assert_coreweave(r: httpx.Response, expected: Any) -> None:
    assert r.content == coreweave_bytes(expected), (r.content, coreweave_bytes(expected))
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-length"] == str(len(r.content))


def test_a_client_without_extensions_gets_coreweaves_bytes(server: CofferServer, world: World) -> None:
    doc = scope(allow("ci-writes", ["s3:PutObject"], [f"{world.data}/builds/*"]))
    with server.api(world.ci_token) as c:
        # Create: a scoped key's answer is CoreWeave's five fields, nothing else
        r = c.post(AK, json={"durationSeconds": 0, "attributes": {"name": "ci"}, "scope": doc})
        minted = r.json()
        assert_coreweave(
            r,
            {
                "accessKeyId": minted["accessKeyId"],
                "secretKey": minted["secretKey"],
                "principalName": world.ci,
                "expiry": PERMANENT,
                "attributes": {"name": "ci"},
            },
        )
        kid = minted["accessKeyId"]
        # a temporary key minted with a scope
        r = c.post(AK, json={"durationSeconds": 600, "scope": doc})
        assert_coreweave(r, in_order(r.json(), MINTED_FIELDS))
    with server.api() as c:  # reading keys needs cwobject:ListAccessKeyInfo / GetAccessKeyInfo
        # Get: every value known in advance, so the whole body is fixed
        info = {
            "accessKeyId": kid,
            "status": "ACTIVE",
            "principalName": world.ci,
            "attributes": {"name": "ci"},
            "expiry": PERMANENT,
            "orgId": world.org,
            "multiAttributes": {},
        }
        assert_coreweave(c.get(f"{AK}/{kid}"), {"info": info})
        # List: every entry has exactly CoreWeave's fields in CoreWeave's order
        r = c.get(AK, params={"limit": 1000})
        entries = r.json()["info"]
        assert info in entries
        assert_coreweave(r, {"info": [in_order(e, KEY_INFO_FIELDS) for e in entries]})
        for status in ("ACTIVE", "REVOKED"):
            r = c.get(AK, params={"limit": 1000, "status": status})
            assert_coreweave(r, {"info": [in_order(e, KEY_INFO_FIELDS) for e in r.json()["info"]]})
        # the API-token exchange (container-credentials shape)
        r = c.get("/v1/cwobject/temporary-credentials/api-token")
        assert_coreweave(r, in_order(r.json(), CONTAINER_FIELDS))
        # AuthCanI without the extension field
        r = c.post(CAN_I, json={"actions": ["s3:PutObject"], "resources": [f"{world.data}/x"]})
        assert_coreweave(r, {"verdict": True})
        # fixed errors, byte for byte
        violation = {"field": "durationSeconds", "description": "must be >= 0 (0 makes a permanent key)"}
        assert_coreweave(
            c.post(AK, json={"durationSeconds": -1}),
            {
                "code": 3,
                "message": "invalid durationSeconds: must be >= 0 (0 makes a permanent key)",
                "details": [
                    {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}
                ],
            },
        )
        missing = {
            "@type": "type.googleapis.com/google.rpc.ResourceInfo",
            "resourceType": "access key",
            "resourceName": "CWNOSUCHKEYATALL",
            "description": "not found",
        }
        assert_coreweave(
            c.get(f"{AK}/CWNOSUCHKEYATALL"),
            {"code": 5, "message": "access key 'CWNOSUCHKEYATALL' not found", "details": [missing]},
        )
        # the state-changing key calls answer {}
        assert_coreweave(c.post("/v1/cwobject/revoke-access-key/access-key", json={"accessKey": kid}), {})
        assert_coreweave(c.get(f"{AK}/{kid}"), {"info": {**info, "status": "REVOKED"}})
        body = {"principalName": world.ci, "status": "ACCESS_KEY_STATUS_SUSPENDED"}
        assert_coreweave(c.put("/v1/cwobject/access-key-status", json=body), {})
        body["status"] = "ACCESS_KEY_STATUS_ACTIVE"
        assert_coreweave(c.put("/v1/cwobject/access-key-status", json=body), {})
