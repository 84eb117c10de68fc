"""OIDC workload federation end to end: real server, real HTTP, real IdP, real boto3.

The IdP (`tests.support.idp`) serves discovery and a JWK Set on 127.0.0.1 and signs real
JWTs; the server fetches the keys itself. Covered: the OIDC configuration API (create, list,
get, PATCH with and without updateMask, delete, conflicts, validation, authorization, other
organizations), both exchanges (`POST .../oidc` and the AWS container-credentials `GET`),
key lifetimes clipped to the token's `exp`, session tokens on S3, org policies naming
`role/<iss>:<sub>`, key rotation at the IdP, every refusal with its status, check name and
audit line (and without echoing the token), expiry, and revocation by deactivating or
deleting a configuration.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import jwt
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.api import assert_unknown, key_info
from tests.support.harness import CofferServer, free_port
from tests.support.idp import (
    IdpServer,
    Key,
    Route,
    b64url,
    ec_key,
    ed_key,
    mint_jwt,
    rsa_key,
    serve_idp,
    unsigned_jwt,
)
from tests.support.policies import create_org, create_user, ensure_ok, policy, statement
from tests.support.policies import delete as delete_policy
from tests.support.s3 import REGION, client_error, s3_client, unique

EXCHANGE = "/v1/cwobject/temporary-credentials/oidc"
CONFIGS = "/v1beta1/workload-federation/oidc-configs"
ACCESS_KEY = "/v1/cwobject/access-key"
SUB = "system:serviceaccount:ml:trainer"
EMAIL = "secret-claim@example.com"  # a claim mint_jwt always adds; it must never come back
CONTAINER_SECONDS = 3600  # the oidc_container_key_duration default
REFRESH_INTERVAL = 60  # HttpJwksProvider.min_refresh_interval (seconds)
ANY = object()  # an audit field whose value is not asserted
GRPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 503: 14}

RSA = rsa_key("e2e-oidc-rsa")
EC = ec_key("e2e-oidc-ec")
ED = ed_key("e2e-oidc-ed")
ROTATED = rsa_key("e2e-oidc-rotated")
STRANGER = rsa_key("e2e-oidc-stranger")


# --- helpers ---------------------------------------------------------------------------------


def now_utc() -> datetime:
    return datetime.now(UTC)


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def exchange(
    server: CofferServer, org_id: str, token: str, duration: int | None = 0, **extra: Any
) -> httpx.Response:
    """CreateAccessKeyFromOIDC, anonymously (no Authorization header at all)."""
    body: dict[str, Any] = {"orgId": org_id, "oidcToken": token, **extra}
    if duration is not None:
        body["durationSeconds"] = duration
    return httpx.post(server.api_url + EXCHANGE, json=body, timeout=30)


def container(server: CofferServer, org_id: str, authorization: str | None) -> httpx.Response:
    """CreateAccessKeyFromContainerCreds: the raw token is the whole Authorization header."""
    headers = {} if authorization is None else {"Authorization": authorization}
    return httpx.get(f"{server.api_url}{EXCHANGE}/{org_id}", headers=headers, timeout=30)


def events(lines: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [e for e in lines if e.get("event") == event]


def create_config(server: CofferServer, token: str | None = None, **fields: Any) -> dict[str, Any]:
    body = {"name": unique("cfg"), "audience": unique("aud"), **fields}
    with server.api(token) as c:
        r = c.post(CONFIGS, json=body)
    assert r.status_code == 200, r.text
    config: dict[str, Any] = r.json()["config"]
    return config


def inline_config(server: CofferServer, *keys: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A config for a made-up (unresolvable) issuer whose keys are given inline."""
    issuer = f"https://{unique('inline')}.example.test/oidc"
    return create_config(server, issuerUrl=issuer, jwks={"keys": list(keys) or [RSA.jwk("k1")]}, **fields)


def federated_s3(
    server: CofferServer, access_key_id: str, secret: str, session_token: str | None = None
) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=server.s3_url,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret,
        aws_session_token=session_token,
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"}),
    )


def s3_error(call: Callable[[], Any]) -> tuple[int, str]:
    """(HTTP status, S3 error code) of a call that must fail."""
    with pytest.raises(ClientError) as info:
        call()
    return client_error(info.value)


def leaks(token: str, *extra: str) -> list[str]:
    """Pieces of a token (and values taken from it) that a refusal must not reflect."""
    out = [token, EMAIL, *extra]
    parts = token.split(".")
    if len(parts) == 3:
        out += [p[:24] for p in parts[1:] if len(p) >= 24]
    return out


@dataclass
class World:
    org: str
    admin_s3: Any
    bucket: str
    idp: IdpServer  # discovery-based, RS256 key "k1" and ES256 key "ec1"
    audience: str
    config: dict[str, Any]
    rotating: IdpServer  # an issuer only the rotation test changes
    rotating_audience: str
    rotating_fetched: float  # time.monotonic() of the server's first fetch from `rotating`
    org_b: str
    org_b_token: str  # an admin of organization B

    @property
    def principal(self) -> str:
        return f"role/{self.idp.issuer}:{SUB}"

    def token(
        self,
        key: Key = RSA,
        *,
        kid: str | None = "k1",
        alg: str = "RS256",
        now: datetime | None = None,
        lifetime: timedelta = timedelta(hours=1),
        **claims: Any,
    ) -> str:
        claims = {"iss": self.idp.issuer, "aud": self.audience, "sub": SUB, **claims}
        issuer = claims.pop("iss")
        return mint_jwt(
            key, issuer=issuer, kid=kid, alg=alg, now=now or now_utc(), lifetime=lifetime, **claims
        )

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.idp.issuer,
            "aud": self.audience,
            "sub": SUB,
            "iat": now - 5,
            "exp": now + 3600,
            "email": EMAIL,
            **overrides,
        }


@pytest.fixture(scope="module")
def world(server: CofferServer) -> Iterator[World]:
    with serve_idp() as idp, serve_idp() as rotating:
        idp.publish([RSA.jwk("k1"), EC.jwk("ec1")])
        rotating.publish([RSA.jwk("k1")])
        admin_key = server.mint_key(duration=0)
        admin_s3 = s3_client(server, admin_key)
        bucket = unique("fed")
        admin_s3.create_bucket(Bucket=bucket)
        admin_s3.put_object(Bucket=bucket, Key="seed.txt", Body=b"seed")
        audience = unique("aud")
        config = create_config(server, issuerUrl=idp.issuer, audience=audience, description="the cluster")
        org = config["orgUid"]
        assert org == key_info(server, admin_key["accessKeyId"])["orgId"]
        rotating_audience = unique("aud")
        create_config(server, issuerUrl=rotating.issuer, audience=rotating_audience)
        # The server's first fetch from the rotating issuer, as early as possible: the rotation
        # test must wait until a refresh is allowed again (one per minute per issuer).
        first = mint_jwt(RSA, issuer=rotating.issuer, aud=rotating_audience, now=now_utc())
        r = exchange(server, org, first)
        assert r.status_code == 200, r.text
        rotating_fetched = time.monotonic()
        assert rotating.hits["/jwks"] == 1
        org_b = create_org(server)
        _, org_b_token = create_user(server, unique("outsider"), org=org_b, admin=True)
        yield World(
            org=org,
            admin_s3=admin_s3,
            bucket=bucket,
            idp=idp,
            audience=audience,
            config=config,
            rotating=rotating,
            rotating_audience=rotating_audience,
            rotating_fetched=rotating_fetched,
            org_b=org_b,
            org_b_token=org_b_token,
        )


def allow_s3(server: CofferServer, w: World, *principals: str) -> str:
    """An org policy letting `principals` read and write the world's bucket; returns its name."""
    name = unique("fed")
    actions = ["s3:GetObject", "s3:PutObject", "s3:ListBucket"]
    ensure_ok(
        server, policy(name, statement("fed-s3", actions, [w.bucket, f"{w.bucket}/*"], list(principals)))
    )
    return name


def assert_expiry_near(value: str, expected: datetime, *, slack: float = 3) -> None:
    """The reported expiry is `expected` within `slack` seconds, and never after it."""
    got = parse_time(value)
    assert expected - timedelta(seconds=slack) <= got <= expected, (got, expected)


# --- 1. the configuration API ------------------------------------------------------------------


def test_create_list_get_configs(server: CofferServer, world: World) -> None:
    jwk = RSA.jwk("k1")
    inline = create_config(
        server,
        name=unique("inline"),
        issuerUrl="https://inline.example.test/oidc",
        audience="inline-aud",
        description="pinned keys",
        jwks={"keys": [jwk]},
    )
    uuid.UUID(inline["uid"])
    assert inline["orgUid"] == world.org
    assert inline["issuerUrl"] == "https://inline.example.test/oidc"
    assert inline["audience"] == "inline-aud"
    assert inline["description"] == "pinned keys"
    assert inline["active"] is True
    assert inline["jwks"] == {"keys": [jwk]}
    assert inline["createdAt"] == inline["updatedAt"]
    assert "deactivatedAt" not in inline
    assert parse_time(inline["createdAt"]) <= now_utc()

    discovered = world.config
    assert discovered["issuerUrl"] == world.idp.issuer
    assert "jwks" not in discovered, "without jwks the keys come from discovery"
    assert discovered["description"] == "the cluster"

    with server.api() as c:
        r = c.get(CONFIGS)
        assert r.status_code == 200, r.text
        listed = r.json()["configs"]
        by_uid = {cfg["uid"]: cfg for cfg in listed}
        assert by_uid[inline["uid"]] == inline
        assert by_uid[discovered["uid"]] == discovered
        names = [cfg["name"] for cfg in listed]
        assert names == sorted(names)
        for cfg in (inline, discovered):
            r = c.get(f"{CONFIGS}/{cfg['uid']}")
            assert r.status_code == 200, r.text
            assert r.json() == {"config": cfg}
        # snake_case field names are accepted as proto3 JSON allows
        r = c.post(
            CONFIGS,
            json={"name": unique("snake"), "issuer_url": "https://snake.example.test", "audience": "a"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["config"]["issuerUrl"] == "https://snake.example.test"


def test_patch_config(server: CofferServer, world: World) -> None:
    cfg = inline_config(server, description="first")
    uid = cfg["uid"]
    with server.api() as c:
        time.sleep(1.1)  # timestamps have whole seconds
        r = c.patch(f"{CONFIGS}/{uid}", json={"description": "second"})
        assert r.status_code == 200, r.text
        patched = r.json()["config"]
        assert patched["description"] == "second"
        assert parse_time(patched["updatedAt"]) > parse_time(cfg["updatedAt"])
        assert patched["createdAt"] == cfg["createdAt"]
        for field in ("uid", "orgUid", "name", "issuerUrl", "audience", "active", "jwks"):
            assert patched[field] == cfg[field], field

        # FieldMask: only listed paths change; a listed path without a value is cleared.
        r = c.patch(
            f"{CONFIGS}/{uid}",
            json={"updateMask": "description", "active": False, "audience": "not-applied"},
        )
        assert r.status_code == 200, r.text
        cleared = r.json()["config"]
        assert cleared["description"] == ""
        assert cleared["active"] is True and cleared["audience"] == cfg["audience"]

        r = c.patch(f"{CONFIGS}/{uid}", json={"updateMask": "description,active", "active": False})
        assert r.status_code == 200, r.text
        off = r.json()["config"]
        assert off["active"] is False and off["description"] == ""
        assert parse_time(off["deactivatedAt"]) <= now_utc()
        assert c.get(f"{CONFIGS}/{uid}").json()["config"] == off

        r = c.patch(f"{CONFIGS}/{uid}", json={"active": True})
        assert r.status_code == 200, r.text
        on = r.json()["config"]
        assert on["active"] is True and "deactivatedAt" not in on

        # clearing jwks turns the config into a discovery-based one
        r = c.patch(f"{CONFIGS}/{uid}", json={"updateMask": "jwks"})
        assert r.status_code == 200, r.text
        assert "jwks" not in r.json()["config"]

        for bad in (
            {},
            {"uid": "x"},
            {"unknown": 1},
            {"issuerUrl": "http://idp.example.test"},
            {"updateMask": "audience"},  # listed but no value, and it cannot be cleared
            {"updateMask": "createdAt", "createdAt": "2020-01-01T00:00:00Z"},
            {"updateMask": 5},
            {"active": "yes"},
        ):
            r = c.patch(f"{CONFIGS}/{uid}", json=bad)
            assert r.status_code == 400, (bad, r.text)
            assert r.json()["code"] == 3
        assert c.get(f"{CONFIGS}/{uid}").json()["config"]["active"] is True


def test_conflicts(server: CofferServer, world: World) -> None:
    first = inline_config(server)
    with server.api() as c:
        r = c.post(
            CONFIGS,
            json={"name": first["name"], "issuerUrl": "https://other.example.test", "audience": "x"},
        )
        assert r.status_code == 409, r.text
        assert r.json()["code"] == 6
        r = c.post(
            CONFIGS,
            json={"name": unique("cfg"), "issuerUrl": first["issuerUrl"], "audience": first["audience"]},
        )
        assert r.status_code == 409, r.text
        assert r.json()["code"] == 6
        # the same issuer with another audience is a different config
        other = create_config(server, issuerUrl=first["issuerUrl"], audience=unique("aud"))
        # PATCH into a taken name or (issuer, audience) conflicts too
        r = c.patch(f"{CONFIGS}/{other['uid']}", json={"name": first["name"]})
        assert r.status_code == 409, r.text
        r = c.patch(f"{CONFIGS}/{other['uid']}", json={"audience": first["audience"]})
        assert r.status_code == 409, r.text
        assert c.get(f"{CONFIGS}/{other['uid']}").json()["config"] == other
    # (issuerUrl, audience) and names are unique per organization only
    create_config(
        server,
        world.org_b_token,
        name=first["name"],
        issuerUrl=first["issuerUrl"],
        audience=first["audience"],
    )


PRIVATE_RSA_JWK = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA.private_key)) | {"kid": "k1"}


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("issuerUrl", {"issuerUrl": "http://idp.example.test"}),
        ("issuerUrl", {"issuerUrl": "http://10.0.0.1:8080"}),
        ("issuerUrl", {"issuerUrl": "https://idp.example.test/?tenant=1"}),
        ("issuerUrl", {"issuerUrl": "https://idp.example.test/" + "p" * 1024}),
        ("issuerUrl", {"issuerUrl": "https://user:pw@idp.example.test"}),
        ("issuerUrl", {"issuerUrl": ""}),
        ("audience", {"audience": ""}),
        ("audience", {"audience": "a" * 1025}),
        ("name", {"name": "has space"}),
        ("name", {"name": ""}),
        ("description", {"description": "d" * 1025}),
        ("jwks", {"jwks": {"keys": [PRIVATE_RSA_JWK]}}),
        ("jwks", {"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k1"}]}}),
        ("jwks", {"jwks": {"nokeys": []}}),
        ("unknown", {"unknown": 1}),
        ("uid", {"uid": "00000000-0000-0000-0000-000000000000"}),
    ],
)
def test_create_validation(server: CofferServer, world: World, field: str, body: dict[str, Any]) -> None:
    base = {"name": unique("bad"), "issuerUrl": "https://valid.example.test", "audience": "aud"}
    with server.api() as c:
        before = len(c.get(CONFIGS).json()["configs"])
        r = c.post(CONFIGS, json=base | body)
        assert r.status_code == 400, r.text
        error = r.json()
        assert error["code"] == 3
        violations = [v for d in error["details"] for v in d.get("fieldViolations", [])]
        assert [v["field"] for v in violations] == [field], error
        if field == "jwks" and "keys" in body["jwks"]:
            # the private key material is not reflected back
            assert all(str(k.get("d", "§")) not in r.text for k in body["jwks"]["keys"])
            assert "c2VjcmV0" not in r.text
        assert len(c.get(CONFIGS).json()["configs"]) == before, "nothing was stored"


def test_non_admin_user_is_forbidden(server: CofferServer, world: World) -> None:
    _, token = create_user(server, unique("plain"))
    uid = world.config["uid"]
    with server.api(token) as c:
        for r in (
            c.get(CONFIGS),
            c.get(f"{CONFIGS}/{uid}"),
            c.post(
                CONFIGS, json={"name": unique("x"), "issuerUrl": "https://x.example.test", "audience": "a"}
            ),
            c.patch(f"{CONFIGS}/{uid}", json={"active": False}),
            c.delete(f"{CONFIGS}/{uid}"),
        ):
            assert r.status_code == 403, r.text
            assert r.json()["code"] == 7
    with httpx.Client(base_url=server.api_url, timeout=30) as anonymous:
        assert anonymous.get(CONFIGS).status_code == 401
    with server.api() as c:
        assert c.get(f"{CONFIGS}/{uid}").json()["config"] == world.config


def test_other_organization_cannot_see_or_touch_the_config(server: CofferServer, world: World) -> None:
    ours = inline_config(server)
    with server.api(world.org_b_token) as c:
        r = c.get(CONFIGS)
        assert r.status_code == 200, r.text
        assert all(cfg["orgUid"] == world.org_b for cfg in r.json()["configs"])
        assert ours["uid"] not in {cfg["uid"] for cfg in r.json()["configs"]}
        for r in (
            c.get(f"{CONFIGS}/{ours['uid']}"),
            c.patch(f"{CONFIGS}/{ours['uid']}", json={"active": False}),
            c.delete(f"{CONFIGS}/{ours['uid']}"),
        ):
            assert r.status_code == 404, r.text
    with server.api() as c:
        assert c.get(f"{CONFIGS}/{ours['uid']}").json()["config"] == ours


def test_longest_documented_issuer_and_audience_are_stored(server: CofferServer, world: World) -> None:
    """issuerUrl and audience may each be 1024 characters (docs/federation.md §2), any script.

    On PostgreSQL the unique index over `issuerUrl + "\\n" + audience` must not turn such a
    config into a 500 (btree entries are limited to 2704 bytes)."""
    issuer = "https://idp.example.test/" + "i" * (1024 - len("https://idp.example.test/"))
    audience = "".join(chr(0x4E00 + (i * 7919) % 0x5000) for i in range(1024))  # 3 bytes each in UTF-8
    with server.api() as c:
        r = c.post(CONFIGS, json={"name": unique("long"), "issuerUrl": issuer, "audience": audience})
        assert r.status_code == 200, r.text
        cfg = r.json()["config"]
        assert (cfg["issuerUrl"], cfg["audience"]) == (issuer, audience)
        r = c.post(CONFIGS, json={"name": unique("long"), "issuerUrl": issuer, "audience": audience})
        assert r.status_code == 409, r.text
        short = inline_config(server)
        r = c.patch(f"{CONFIGS}/{short['uid']}", json={"audience": audience[::-1]})
        assert r.status_code == 200, r.text


@pytest.mark.parametrize("uid", [pytest.param(None, id="made-up"), "%00", "a%00b", "%C3%A9"])
def test_unknown_uid_is_404(server: CofferServer, world: World, uid: str | None) -> None:
    """A made-up uid (a fresh UUID) is unknown; so is a uid no config can have, on every backend."""
    uid = uid or str(uuid.uuid4())
    with server.api() as c:
        assert_unknown(c, f"{CONFIGS}/{uid}")


def test_at_most_100_configs_per_organization(server: CofferServer, world: World) -> None:
    org = create_org(server)
    _, token = create_user(server, unique("many"), org=org, admin=True)
    with server.api(token) as c:
        for i in range(100):
            body = {"name": f"cfg-{i}", "issuerUrl": f"https://idp{i}.example.test", "audience": "a"}
            r = c.post(CONFIGS, json=body)
            assert r.status_code == 200, r.text
        r = c.post(
            CONFIGS, json={"name": "one-too-many", "issuerUrl": "https://x.example.test", "audience": "a"}
        )
        assert r.status_code == 429, r.text
        assert r.json()["code"] == 8
        assert len(c.get(CONFIGS).json()["configs"]) == 100
    # other organizations are not affected
    inline_config(server)


def test_delete_config(server: CofferServer, world: World) -> None:
    cfg = inline_config(server)
    with server.api() as c:
        r = c.delete(f"{CONFIGS}/{cfg['uid']}")
        assert r.status_code == 200, r.text
        assert r.json() == {}
        assert c.get(f"{CONFIGS}/{cfg['uid']}").status_code == 404
        assert c.delete(f"{CONFIGS}/{cfg['uid']}").status_code == 404
        assert cfg["uid"] not in {x["uid"] for x in c.get(CONFIGS).json()["configs"]}
    # the name and (issuer, audience) are free again
    create_config(server, name=cfg["name"], issuerUrl=cfg["issuerUrl"], audience=cfg["audience"])


# --- 2. good paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "kid", "alg"), [(RSA, "k1", "RS256"), (EC, "ec1", "ES256")])
def test_post_exchange_with_discovered_keys(
    server: CofferServer, world: World, key: Key, kid: str, alg: str
) -> None:
    now = now_utc()
    token = world.token(key, kid=kid, alg=alg, now=now)
    exp = datetime.fromtimestamp(int((now + timedelta(hours=1)).timestamp()), UTC)
    before = len(server.audit())
    r = exchange(server, world.org, token, 0, attributes={"team": "ml"})
    assert r.status_code == 200, r.text
    minted = r.json()
    assert set(minted) == {"accessKeyId", "secretKey", "principalName", "expiry", "attributes"}
    assert minted["principalName"] == world.principal
    assert minted["attributes"] == {"team": "ml"}
    assert_expiry_near(minted["expiry"], exp)  # durationSeconds 0 = until the token's exp
    assert EMAIL not in r.text

    info = key_info(server, minted["accessKeyId"])
    assert info["status"] == "ACTIVE"
    assert info["principalName"] == world.principal
    assert info["orgId"] == world.org
    assert info["expiry"] == minted["expiry"]

    new = server.audit()[before:]
    assert not events(new, "federation_denied")
    [mint] = events(new, "access_key_minted")
    assert mint["access_key_id"] == minted["accessKeyId"] and mint["source"] == "oidc"
    assert mint["action"] == "cwobject:CreateAccessKeyFromOIDC"
    [sign_in] = events(new, "federated_sign_in")
    assert sign_in["principal"] == world.principal
    assert sign_in["issuer"] == world.idp.issuer
    assert sign_in["config_id"] == world.config["uid"]
    assert sign_in["org_id"] == world.org
    for line in new:
        dumped = json.dumps(line)
        assert token not in dumped and EMAIL not in dumped and minted["secretKey"] not in dumped

    # the keys are cached: another exchange costs the IdP nothing
    hits = dict(world.idp.hits)
    assert exchange(server, world.org, world.token(key, kid=kid, alg=alg)).status_code == 200
    assert dict(world.idp.hits) == hits


def test_inline_jwks_needs_no_network(server: CofferServer, world: World) -> None:
    """The issuer host does not even resolve: the keys can only have come from the config."""
    cfg = inline_config(server, RSA.jwk("rsa"), ED.jwk("ed"))
    for key, kid, alg in ((RSA, "rsa", "RS256"), (ED, "ed", "EdDSA")):
        token = mint_jwt(key, issuer=cfg["issuerUrl"], aud=cfg["audience"], kid=kid, alg=alg, now=now_utc())
        r = exchange(server, world.org, token, 300)
        assert r.status_code == 200, r.text
        assert r.json()["principalName"] == f"role/{cfg['issuerUrl']}:{SUB}"
        r = container(server, world.org, token)
        assert r.status_code == 200, r.text
    # a key the inline set does not hold is refused, without a refetch to rescue it
    token = mint_jwt(ROTATED, issuer=cfg["issuerUrl"], aud=cfg["audience"], kid="new", now=now_utc())
    r = exchange(server, world.org, token)
    assert r.status_code == 401 and r.json()["message"].startswith("kid: "), r.text


@pytest.mark.parametrize(
    ("token_life", "duration", "expected"),
    [
        (timedelta(hours=1), 600, "duration"),  # shorter than the token: as asked
        (timedelta(minutes=30), 7200, "exp"),  # longer than the token: clipped to exp
        (timedelta(minutes=30), 0, "exp"),  # 0 = the longest allowed, still clipped
        (timedelta(hours=24), 0, "cap"),  # 0 with a long-lived token: 12 hours
        (timedelta(hours=24), 43200, "cap"),
    ],
)
def test_key_lifetime(
    server: CofferServer, world: World, token_life: timedelta, duration: int, expected: str
) -> None:
    now = now_utc()
    exp = datetime.fromtimestamp(int((now + token_life).timestamp()), UTC)
    r = exchange(server, world.org, world.token(now=now, lifetime=token_life), duration)
    assert r.status_code == 200, r.text
    after = now_utc()
    expiry = parse_time(r.json()["expiry"])
    assert expiry <= exp, "a key never outlives its token"
    if expected == "exp":
        assert_expiry_near(r.json()["expiry"], exp)
    else:
        seconds = duration if expected == "duration" else 43200
        assert now + timedelta(seconds=seconds - 1) <= expiry <= after + timedelta(seconds=seconds)
    assert key_info(server, r.json()["accessKeyId"])["expiry"] == r.json()["expiry"]


def test_container_endpoint(server: CofferServer, world: World) -> None:
    now = now_utc()
    token = world.token(now=now, lifetime=timedelta(hours=6))  # outlives the default duration
    r = container(server, world.org, token)
    assert r.status_code == 200, r.text
    creds = r.json()
    assert set(creds) == {
        "AccessKeyId",
        "SecretAccessKey",
        "Token",
        "Expiration",
        "attributes",
        "multiAttributes",
    }
    assert creds["Token"] and creds["SecretAccessKey"] and creds["Token"] != creds["SecretAccessKey"]
    expiry = parse_time(creds["Expiration"])
    assert (
        now + timedelta(seconds=CONTAINER_SECONDS - 1)
        <= expiry
        <= now_utc() + timedelta(seconds=CONTAINER_SECONDS)
    )
    assert EMAIL not in r.text and token not in r.text
    info = key_info(server, creds["AccessKeyId"])
    assert info["principalName"] == world.principal and info["status"] == "ACTIVE"

    # a token with less life left than the default: the key ends with the token
    short = world.token(now=now, lifetime=timedelta(minutes=5))
    r = container(server, world.org, f"Bearer {short}")  # the Bearer prefix is tolerated
    assert r.status_code == 200, r.text
    assert_expiry_near(
        r.json()["Expiration"], datetime.fromtimestamp(int((now + timedelta(minutes=5)).timestamp()), UTC)
    )
    before = len(server.audit())
    again = container(server, world.org, token).json()
    new = server.audit()[before:]
    [mint] = events(new, "access_key_minted")
    assert mint["action"] == "cwobject:CreateAccessKeyFromContainerCreds"
    assert mint["access_key_id"] == again["AccessKeyId"]
    for line in new:
        dumped = json.dumps(line)
        assert again["Token"] not in dumped and again["SecretAccessKey"] not in dumped and token not in dumped


def test_s3_accepts_the_container_key_only_with_its_session_token(server: CofferServer, world: World) -> None:
    sub = f"system:serviceaccount:ml:{unique('pod')}"
    principal = f"role/{world.idp.issuer}:{sub}"
    name = allow_s3(server, world, principal)
    try:
        r = container(server, world.org, world.token(sub=sub))
        assert r.status_code == 200, r.text
        creds = r.json()
        with_token = federated_s3(server, creds["AccessKeyId"], creds["SecretAccessKey"], creds["Token"])
        with_token.put_object(Bucket=world.bucket, Key=f"{sub}/c.txt", Body=b"container")
        assert with_token.get_object(Bucket=world.bucket, Key=f"{sub}/c.txt")["Body"].read() == b"container"

        bare = federated_s3(server, creds["AccessKeyId"], creds["SecretAccessKey"])
        assert s3_error(lambda: bare.get_object(Bucket=world.bucket, Key="seed.txt")) == (400, "InvalidToken")
        wrong = federated_s3(server, creds["AccessKeyId"], creds["SecretAccessKey"], creds["Token"] + "x")
        assert s3_error(lambda: wrong.get_object(Bucket=world.bucket, Key="seed.txt")) == (
            400,
            "InvalidToken",
        )

        # a key from the POST exchange has no session token, and refuses one
        r = exchange(server, world.org, world.token(sub=sub))
        assert r.status_code == 200, r.text
        minted = r.json()
        plain = federated_s3(server, minted["accessKeyId"], minted["secretKey"])
        assert plain.get_object(Bucket=world.bucket, Key="seed.txt")["Body"].read() == b"seed"
        extra = federated_s3(server, minted["accessKeyId"], minted["secretKey"], creds["Token"])
        assert s3_error(lambda: extra.get_object(Bucket=world.bucket, Key="seed.txt")) == (
            400,
            "InvalidToken",
        )
    finally:
        assert delete_policy(server, name).status_code == 200


def test_aws_sdk_container_credentials_provider(server: CofferServer, world: World, tmp_path: Any) -> None:
    """botocore's own container provider, with the token in a file as on Kubernetes."""
    import os
    import subprocess
    import sys

    sub = f"system:serviceaccount:ml:{unique('sdk')}"
    name = allow_s3(server, world, f"role/{world.idp.issuer}:{sub}")
    token_file = tmp_path / "token"
    token_file.write_text(world.token(sub=sub))
    script = (
        "import boto3, botocore.config\n"
        f"s3 = boto3.client('s3', endpoint_url={server.s3_url!r}, region_name={REGION!r},"
        " config=botocore.config.Config(s3={'addressing_style': 'path'}))\n"
        f"print(s3.get_object(Bucket={world.bucket!r}, Key='seed.txt')['Body'].read().decode())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "HOME"} | {
        "HOME": str(tmp_path),
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{server.api_url}{EXCHANGE}/{world.org}",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
    }
    try:
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "seed"
    finally:
        assert delete_policy(server, name).status_code == 200


# --- 3. org policies name the workload --------------------------------------------------------


def test_policy_naming_the_workload_allows_s3(server: CofferServer, world: World) -> None:
    sub = f"system:serviceaccount:ml:{unique('job')}"
    principal = f"role/{world.idp.issuer}:{sub}"
    r = exchange(server, world.org, world.token(sub=sub))
    assert r.status_code == 200, r.text
    minted = r.json()
    assert minted["principalName"] == principal
    s3 = federated_s3(server, minted["accessKeyId"], minted["secretKey"])
    r = exchange(server, world.org, world.token(sub=f"{sub}-other"))
    assert r.status_code == 200, r.text
    other = federated_s3(server, r.json()["accessKeyId"], r.json()["secretKey"])
    key = f"{sub}/out.bin"

    assert s3_error(lambda: s3.put_object(Bucket=world.bucket, Key=key, Body=b"x")) == (403, "AccessDenied")
    assert s3_error(lambda: s3.get_object(Bucket=world.bucket, Key="seed.txt")) == (403, "AccessDenied")
    name = allow_s3(server, world, principal)
    try:
        s3.put_object(Bucket=world.bucket, Key=key, Body=b"trained weights")
        assert s3.get_object(Bucket=world.bucket, Key=key)["Body"].read() == b"trained weights"
        assert world.admin_s3.get_object(Bucket=world.bucket, Key=key)["Body"].read() == b"trained weights"
        assert [o["Key"] for o in s3.list_objects_v2(Bucket=world.bucket, Prefix=sub)["Contents"]] == [key]
        # another workload of the same issuer is not named by the policy
        assert s3_error(lambda: other.get_object(Bucket=world.bucket, Key=key)) == (403, "AccessDenied")
        assert s3_error(lambda: other.put_object(Bucket=world.bucket, Key="o", Body=b"")) == (
            403,
            "AccessDenied",
        )
        # nor may the named workload do what the policy does not list
        assert s3_error(lambda: s3.delete_object(Bucket=world.bucket, Key=key)) == (403, "AccessDenied")
    finally:
        assert delete_policy(server, name).status_code == 200
    assert s3_error(lambda: s3.get_object(Bucket=world.bucket, Key=key)) == (403, "AccessDenied")


# --- 5. attacks and faults ----------------------------------------------------------------------


def _hs256_with_public_key(w: World) -> str:
    header = b64url(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(w.claims()).encode())
    mac = hmac.new(RSA.public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(mac)}"


def _tampered(w: World) -> str:
    header, _, signature = w.token().split(".")
    forged = w.claims(sub="system:serviceaccount:kube-system:admin")
    return f"{header}.{b64url(json.dumps(forged).encode())}.{signature}"


def _ago(seconds: int) -> datetime:
    return now_utc() - timedelta(seconds=seconds)


ATTACKS: dict[str, tuple[Callable[[World], str], int, str]] = {
    "alg-none": (lambda w: unsigned_jwt({"alg": "none", "kid": "k1"}, w.claims()), 401, "algorithm"),
    "alg-None-signed": (
        lambda w: unsigned_jwt({"alg": "None", "kid": "k1"}, w.claims(), b"sig"),
        401,
        "algorithm",
    ),
    "hs256-public-key-as-secret": (_hs256_with_public_key, 401, "algorithm"),
    "es256-on-the-rsa-kid": (lambda w: w.token(EC, kid="k1", alg="ES256"), 401, "algorithm"),
    "unknown-kid": (lambda w: w.token(kid="no-such-kid"), 401, "kid"),
    "tampered-payload": (_tampered, 401, "signature"),
    "another-key-same-kid": (lambda w: w.token(STRANGER), 401, "signature"),
    "wrong-issuer": (lambda w: w.token(iss="https://evil-issuer.example.test"), 401, "issuer"),
    "issuer-trailing-slash": (lambda w: w.token(iss=w.idp.issuer + "/"), 401, "issuer"),
    "wrong-audience": (lambda w: w.token(aud="someone-else"), 401, "audience"),
    "expired": (lambda w: w.token(now=_ago(7200), lifetime=timedelta(hours=1)), 401, "expired"),
    "expired-within-skew": (lambda w: w.token(now=_ago(3610), lifetime=timedelta(hours=1)), 401, "lifetime"),
    "nbf-in-future": (lambda w: w.token(nbf=int(time.time()) + 600), 401, "not_yet_valid"),
    "iat-in-future": (lambda w: w.token(iat=int(time.time()) + 600), 401, "issued_in_future"),
    "missing-sub": (lambda w: w.token(drop=("sub",)), 401, "claims"),
    "missing-exp": (lambda w: w.token(drop=("exp",)), 401, "claims"),
    "wildcard-sub": (lambda w: w.token(sub="system:serviceaccount:*"), 401, "subject"),
    "garbage": (lambda w: "not-a-jwt", 400, "token"),
    "bad-header": (lambda w: "e30x." + w.token().split(".", 1)[1], 400, "token"),
}


def check_refusal(
    server: CofferServer,
    r: httpx.Response,
    before: int,
    *,
    status: int,
    check: str | None,
    org_id: object,
    secrets: list[str],
) -> dict[str, Any]:
    """The answer has the status, gRPC code and check; one audit line says the same; no echo."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == GRPC[status], body
    if check is not None:
        assert body["message"].startswith(f"{check}: "), body
    new = server.audit()[before:]
    denied = events(new, "federation_denied")
    assert len(denied) == 1, new
    line = denied[0]
    assert line["check"] == check
    assert line["status"] == status
    assert line["reason"] == body["message"]
    if org_id is not ANY:
        assert line["org_id"] == org_id
    assert line["client"] == "127.0.0.1"
    assert not events(new, "access_key_minted") and not events(new, "federated_sign_in")
    for secret in secrets:
        assert secret not in r.text, secret
        assert secret not in json.dumps(line), secret
    return body


def exchange_refused(
    server: CofferServer, org: str, token: str, *, check: str, status: int = 401, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    """POSTing `token` to `org`'s exchange is refused as check_refusal() checks (org_id `org`,
    no echo of leaks(token, *extra)); returns the answer's body."""
    before = len(server.audit())
    return check_refusal(
        server,
        exchange(server, org, token),
        before,
        status=status,
        check=check,
        org_id=org,
        secrets=leaks(token, *extra),
    )


@pytest.mark.parametrize("via", ["post", "container"])
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attacks_are_refused(server: CofferServer, world: World, attack: str, via: str) -> None:
    build, status, check = ATTACKS[attack]
    token = build(world)
    before = len(server.audit())
    r = exchange(server, world.org, token) if via == "post" else container(server, world.org, token)
    check_refusal(
        server,
        r,
        before,
        status=status,
        check=check,
        org_id=world.org,
        secrets=leaks(token, "evil-issuer", "kube-system", "someone-else", "no-such-kid"),
    )


def test_principal_longer_than_512_characters_is_refused(server: CofferServer, world: World) -> None:
    issuer = "https://long-principal.example.test/" + "p" * 400
    cfg = create_config(server, issuerUrl=issuer, jwks={"keys": [RSA.jwk("k1")]})
    fits = 512 - len(f"role/{issuer}:")
    token = mint_jwt(RSA, issuer=issuer, aud=cfg["audience"], sub="s" * fits, now=now_utc())
    r = exchange(server, world.org, token)
    assert r.status_code == 200, r.text
    assert len(r.json()["principalName"]) == 512
    token = mint_jwt(RSA, issuer=issuer, aud=cfg["audience"], sub="s" * (fits + 1), now=now_utc())
    exchange_refused(server, world.org, token, check="subject", extra=("s" * (fits + 1),))


def test_tokens_for_an_org_without_configs_are_refused_alike(server: CofferServer, world: World) -> None:
    """Org B trusts no issuer; a made-up org is refused with the very same answer."""
    token = world.token()
    answers = []
    for org in (world.org_b, "no-such-org", "x" * 255):
        body = exchange_refused(server, org, token, check="issuer")
        answers.append(body)
    assert answers[0] == answers[1] == answers[2]
    before = len(server.audit())
    r = container(server, world.org_b, token)
    check_refusal(server, r, before, status=401, check="issuer", org_id=world.org_b, secrets=leaks(token))


def test_deactivated_config_refuses_and_revokes(server: CofferServer, world: World) -> None:
    cfg = inline_config(server)
    token = mint_jwt(RSA, issuer=cfg["issuerUrl"], aud=cfg["audience"], now=now_utc())
    r = exchange(server, world.org, token)
    assert r.status_code == 200, r.text
    minted = r.json()
    name = allow_s3(server, world, minted["principalName"])
    try:
        s3 = federated_s3(server, minted["accessKeyId"], minted["secretKey"])
        assert s3.get_object(Bucket=world.bucket, Key="seed.txt")["Body"].read() == b"seed"
        with server.api() as c:
            assert c.patch(f"{CONFIGS}/{cfg['uid']}", json={"active": False}).status_code == 200
        assert key_info(server, minted["accessKeyId"])["status"] == "REVOKED"
        assert s3_error(lambda: s3.get_object(Bucket=world.bucket, Key="seed.txt")) == (
            403,
            "InvalidAccessKeyId",
        )
        exchange_refused(server, world.org, token, check="issuer")
        with server.api() as c:
            assert c.patch(f"{CONFIGS}/{cfg['uid']}", json={"active": True}).status_code == 200
        r = exchange(server, world.org, token)
        assert r.status_code == 200, r.text
        again = r.json()
        assert federated_s3(server, again["accessKeyId"], again["secretKey"]).head_bucket(Bucket=world.bucket)
        assert key_info(server, minted["accessKeyId"])["status"] == "REVOKED", "reactivation revives nothing"
    finally:
        assert delete_policy(server, name).status_code == 200


def test_idp_unreachable_is_503(server: CofferServer, world: World) -> None:
    issuer = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    cfg = create_config(server, issuerUrl=issuer)
    token = mint_jwt(RSA, issuer=issuer, aud=cfg["audience"], now=now_utc())
    for call in (lambda: exchange(server, world.org, token), lambda: container(server, world.org, token)):
        before = len(server.audit())
        body = check_refusal(
            server, call(), before, status=503, check="jwks", org_id=world.org, secrets=leaks(token)
        )
        assert body["message"] == "jwks: the issuer's signing keys could not be fetched"
        [line] = events(server.audit()[before:], "federation_denied")
        assert "ConnectError" in line["detail"] or "earlier fetch failed" in line["detail"]


def test_discovery_failures(server: CofferServer, world: World) -> None:
    with serve_idp() as idp:
        idp.set_route("/.well-known/openid-configuration", Route(500, b"{}"))
        idp.set_json("/jwks", {"keys": [RSA.jwk("k1")]})
        cfg = create_config(server, issuerUrl=idp.issuer)
        token = mint_jwt(RSA, issuer=idp.issuer, aud=cfg["audience"], now=now_utc())
        before = len(server.audit())
        body = check_refusal(
            server,
            exchange(server, world.org, token),
            before,
            status=503,
            check="jwks",
            org_id=world.org,
            secrets=leaks(token),
        )
        # the caller learns nothing about what answered where; the operator's audit line does
        assert "HTTP" not in body["message"]
        [line] = events(server.audit()[before:], "federation_denied")
        assert line["detail"] == "fetching the discovery document returned HTTP 500"
        assert idp.hits["/.well-known/openid-configuration"] == 1
        # the IdP recovers, but a failed fetch is not retried within the minute (no hammering)
        idp.publish([RSA.jwk("k1")])
        for _ in range(3):
            assert exchange(server, world.org, token).status_code == 503
        assert idp.hits["/.well-known/openid-configuration"] == 1
        assert idp.hits["/jwks"] == 0

    with serve_idp() as mixup:
        # OIDC Discovery §4.3: the document must name the issuer it was fetched for
        mixup.publish([RSA.jwk("k1")], issuer="https://somebody-else.example.test")
        cfg = create_config(server, issuerUrl=mixup.issuer)
        token = mint_jwt(RSA, issuer=mixup.issuer, aud=cfg["audience"], now=now_utc())
        exchange_refused(server, world.org, token, check="issuer")
        assert mixup.hits["/jwks"] == 0, "the keys of a mismatched issuer are never fetched"

    with serve_idp() as hostile:
        # a JWKS offering a symmetric key is unusable as a whole
        hostile.publish([RSA.jwk("k1"), {"kty": "oct", "k": "c2VjcmV0", "kid": "h"}])
        cfg = create_config(server, issuerUrl=hostile.issuer)
        token = mint_jwt(RSA, issuer=hostile.issuer, aud=cfg["audience"], now=now_utc())
        exchange_refused(server, world.org, token, check="jwks", status=503)


@pytest.mark.parametrize(
    ("duration", "field"),
    [
        (43201, "durationSeconds"),
        (None, "durationSeconds"),
        (-1, "durationSeconds"),
        ("soon", "durationSeconds"),
    ],
)
def test_bad_duration_is_400(server: CofferServer, world: World, duration: Any, field: str) -> None:
    token = world.token()
    before = len(server.audit())
    r = exchange(server, world.org, token, duration)
    body = check_refusal(server, r, before, status=400, check=None, org_id=ANY, secrets=leaks(token))
    assert [v["field"] for d in body["details"] for v in d.get("fieldViolations", [])] == [field]


DROP = object()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"orgId": DROP}, "orgId"),
        ({"orgId": ""}, "orgId"),
        ({"orgId": 7}, "orgId"),
        ({"orgId": "bad\norg"}, "orgId"),
        ({"oidcToken": DROP}, "oidcToken"),
        ({"oidcToken": ""}, "oidcToken"),
        ({"oidcToken": 5}, "oidcToken"),
        ({"attributes": "x"}, "attributes"),
        ({"attributes": {"bad key!": "v"}}, "attributes.bad key!"),
    ],
)
def test_malformed_exchange_request_is_400(
    server: CofferServer, world: World, change: dict[str, Any], field: str
) -> None:
    token = world.token()
    body = {"durationSeconds": 0, "orgId": world.org, "oidcToken": token} | change
    body = {k: v for k, v in body.items() if v is not DROP}
    before = len(server.audit())
    r = httpx.post(server.api_url + EXCHANGE, json=body, timeout=30)
    error = check_refusal(server, r, before, status=400, check=None, org_id=ANY, secrets=leaks(token))
    assert [v["field"] for d in error["details"] for v in d.get("fieldViolations", [])] == [field]


def test_container_endpoint_without_a_token_is_401(server: CofferServer, world: World) -> None:
    for authorization in (None, "", "Bearer"):
        before = len(server.audit())
        r = container(server, world.org, authorization)
        assert r.status_code == 401, (authorization, r.text)
        assert r.json()["code"] == 16
        [line] = events(server.audit()[before:], "federation_denied")
        assert line["status"] == 401 and line["org_id"] == world.org
        assert line["action"] == "cwobject:CreateAccessKeyFromContainerCreds"
    # the container endpoint does not take an API token either
    _, api_token = create_user(server, unique("bearer"), admin=True)
    r = container(server, world.org, f"Bearer {api_token}")
    assert r.status_code == 400, r.text
    assert r.json()["message"].startswith("token: ")
    assert api_token not in r.text


# --- 6. expiry -----------------------------------------------------------------------------------


def test_key_stops_working_when_the_token_expires(server: CofferServer, world: World) -> None:
    sub = f"system:serviceaccount:ml:{unique('brief')}"
    now = now_utc()
    token = world.token(sub=sub, now=now, lifetime=timedelta(seconds=6))
    exp = int((now + timedelta(seconds=6)).timestamp())
    r = exchange(server, world.org, token, 3600)
    assert r.status_code == 200, r.text
    minted = r.json()
    assert parse_time(minted["expiry"]).timestamp() <= exp
    name = allow_s3(server, world, minted["principalName"])
    try:
        s3 = federated_s3(server, minted["accessKeyId"], minted["secretKey"])
        s3.put_object(Bucket=world.bucket, Key=f"{sub}/a", Body=b"a")
        assert key_info(server, minted["accessKeyId"])["status"] == "ACTIVE"
        time.sleep(max(0.0, exp - time.time()) + 1.5)
        # S3 answers ExpiredToken (HTTP 400, as AWS does) once the key is past its expiry.
        assert s3_error(lambda: s3.get_object(Bucket=world.bucket, Key=f"{sub}/a")) == (400, "ExpiredToken")
        assert s3_error(lambda: s3.put_object(Bucket=world.bucket, Key=f"{sub}/b", Body=b"b")) == (
            400,
            "ExpiredToken",
        )
        assert key_info(server, minted["accessKeyId"])["status"] == "EXPIRED"
        # inside the clock skew the token still verifies, but no key can outlive it
        exchange_refused(server, world.org, token, check="lifetime")
    finally:
        assert delete_policy(server, name).status_code == 200
    assert world.admin_s3.get_object(Bucket=world.bucket, Key=f"{sub}/a")["Body"].read() == b"a"


# --- 7. deleting a configuration revokes its keys ------------------------------------------------


def test_deleting_the_config_revokes_its_keys(server: CofferServer, world: World) -> None:
    with serve_idp() as idp:
        idp.publish([RSA.jwk("k1")])
        cfg = create_config(server, issuerUrl=idp.issuer)
        token = mint_jwt(RSA, issuer=idp.issuer, aud=cfg["audience"], now=now_utc())
        principal = f"role/{idp.issuer}:{SUB}"
        r = exchange(server, world.org, token)
        assert r.status_code == 200, r.text
        minted = r.json()
        r = container(server, world.org, token)
        assert r.status_code == 200, r.text
        creds = r.json()
        r = exchange(server, world.org, world.token())  # through another config: unaffected
        assert r.status_code == 200, r.text
        bystander = r.json()
        name = allow_s3(server, world, principal, world.principal)
        try:
            s3 = federated_s3(server, minted["accessKeyId"], minted["secretKey"])
            s3c = federated_s3(server, creds["AccessKeyId"], creds["SecretAccessKey"], creds["Token"])
            other = federated_s3(server, bystander["accessKeyId"], bystander["secretKey"])
            for client in (s3, s3c, other):
                assert client.get_object(Bucket=world.bucket, Key="seed.txt")["Body"].read() == b"seed"

            before = len(server.audit())
            with server.api() as c:
                r = c.delete(f"{CONFIGS}/{cfg['uid']}")
                assert r.status_code == 200 and r.json() == {}, r.text
            [changed] = events(server.audit()[before:], "federation_config_changed")
            assert changed["config_id"] == cfg["uid"] and changed["revoked_keys"] == 2

            for client in (s3, s3c):
                assert s3_error(lambda: client.get_object(Bucket=world.bucket, Key="seed.txt")) == (
                    403,
                    "InvalidAccessKeyId",
                )
            assert key_info(server, minted["accessKeyId"])["status"] == "REVOKED"
            assert key_info(server, creds["AccessKeyId"])["status"] == "REVOKED"
            assert other.get_object(Bucket=world.bucket, Key="seed.txt")["Body"].read() == b"seed"
            assert key_info(server, bystander["accessKeyId"])["status"] == "ACTIVE"
            # and the issuer is no longer trusted
            exchange_refused(server, world.org, token, check="issuer")
        finally:
            assert delete_policy(server, name).status_code == 200


# --- 4. key rotation at the IdP (last: it waits for the refresh interval) -------------------------


def test_key_rotation_at_the_idp(server: CofferServer, world: World) -> None:
    idp, aud = world.rotating, world.rotating_audience
    old = mint_jwt(RSA, issuer=idp.issuer, aud=aud, kid="k1", now=now_utc())
    assert exchange(server, world.org, old).status_code == 200
    assert idp.hits["/jwks"] == 1, "served from the cache"

    # One refresh per minute per issuer: wait until the first fetch is that old.
    time.sleep(max(0.0, world.rotating_fetched + REFRESH_INTERVAL + 1 - time.monotonic()))
    idp.publish([RSA.jwk("k1"), ROTATED.jwk("k2")])
    new = mint_jwt(ROTATED, issuer=idp.issuer, aud=aud, kid="k2", now=now_utc())
    r = exchange(server, world.org, new)
    assert r.status_code == 200, r.text
    assert r.json()["principalName"] == f"role/{idp.issuer}:{SUB}"
    assert idp.hits["/jwks"] == 2, "exactly one refetch for the unknown kid"
    assert idp.hits["/.well-known/openid-configuration"] == 2

    # Both keys now work from the cache; a flood of made-up kids costs the IdP nothing.
    assert container(server, world.org, new).status_code == 200
    assert exchange(server, world.org, old).status_code == 200
    for i in range(5):
        forged = mint_jwt(ROTATED, issuer=idp.issuer, aud=aud, kid=f"made-up-{i}", now=now_utc())
        r = exchange(server, world.org, forged)
        assert r.status_code == 401 and r.json()["message"].startswith("kid: "), r.text
    assert idp.hits["/jwks"] == 2

    # The IdP retires the old key: it keeps working until the cache is refreshed (TTL),
    # which is the documented trade-off; the new key keeps working.
    idp.publish([ROTATED.jwk("k2")])
    assert exchange(server, world.org, new).status_code == 200


# --- no crash anywhere ---------------------------------------------------------------------------


def test_no_tracebacks_in_the_server_log(server: CofferServer, world: World) -> None:
    """Everything above was answered on purpose: no unhandled error, no 500."""
    problems = []
    for line in server.log().splitlines():
        entry = json.loads(line) if line.startswith("{") else {"message": line}
        text = json.dumps(entry)
        if entry.get("level") in ("error", "critical") or "Traceback" in text:
            problems.append(f"{entry.get('message')}: {str(entry.get('exception', ''))[-300:]}")
    assert not problems, "\n".join(problems)
