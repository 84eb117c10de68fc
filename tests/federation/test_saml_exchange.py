"""SAML workload federation end to end: the config API, the anonymous exchange, S3 with the key.

Everything goes over real HTTP to a real server (SQLite and PostgreSQL), with assertions signed
by the test IdP's real keys (tests/support/idp.py) and the minted keys used by boto3. The
server's clock is the real clock, so assertions are built around `datetime.now(UTC)`.

Two tests at the end fail against the product as committed, on purpose (they state what must
hold once fixed): `test_withdrawing_trust_during_exchanges_leaves_no_live_key` (an exchange in
flight while its config is deactivated or deleted mints a key that is never revoked) and
`test_every_accepted_identity_can_be_named_by_policy` (the exchange accepts PrincipalName and
Role values with whitespace, which no org policy can name).
"""

from __future__ import annotations

import copy
import json
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from lxml import etree

from tests.support.api import assert_unknown, key_info
from tests.support.harness import CofferServer, connection_owner, start_server, stop_server, worker_processes
from tests.support.idp import (
    DS,
    SP,
    AssertionSpec,
    Key,
    S,
    build_assertion,
    build_response,
    ec_key,
    rsa_key,
    signed_response,
    spec_for_config,
    to_b64,
)
from tests.support.policies import create_org, create_user, ensure_ok, policy, statement
from tests.support.s3 import assert_s3_error, client_error, s3_client, signed

EXCHANGE = "/v1/cwobject/temporary-credentials/saml"
CONFIGS = "/v1beta1/workload-federation/saml-configs"
KEY_INFO = "/v1/cwobject/access-key/"
GRPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6}
IDP = rsa_key("idp")
IDP_NEXT = rsa_key("idp-next")
STRANGER = rsa_key("stranger")


# --- helpers ---------------------------------------------------------------------------------


def tag(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def grant_bucket(server: CofferServer, prefix: str, sid: str, bucket: str, principal: str) -> None:
    """An org policy (named `prefix`-<random>) whose statement `sid` allows `principal` all of S3
    on `bucket` and its objects."""
    ensure_ok(server, policy(tag(prefix), statement(sid, ["s3:*"], [bucket, f"{bucket}/*"], [principal])))


def create_config(
    server: CofferServer, *keys: Key, token: str | None = None, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": tag("idp"),
        "idpEntityId": f"https://{tag('idp')}.example.test/saml/metadata",
        "certificates": [k.cert_pem for k in (keys or (IDP,))],
        **fields,
    }
    with server.api(token) as c:
        r = c.post(CONFIGS, json=body)
    assert r.status_code == 200, r.text
    config: dict[str, Any] = r.json()["config"]
    return config


def patch_config(server: CofferServer, uid: str, body: dict[str, Any]) -> dict[str, Any]:
    with server.api() as c:
        r = c.patch(f"{CONFIGS}/{uid}", json=body)
    assert r.status_code == 200, r.text
    config: dict[str, Any] = r.json()["config"]
    return config


def spec_for(cfg: dict[str, Any], **overrides: Any) -> AssertionSpec:
    """An assertion the IdP behind `cfg` would issue for Coffer, right now."""
    return spec_for_config(cfg, **{"principal": ("alice",), "roles": ("DataEngineer",), **overrides})


def assertion_b64(cfg: dict[str, Any], key: Key = IDP, **overrides: Any) -> str:
    return to_b64(signed_response(spec_for(cfg, **overrides), key))


def exchange(
    server: CofferServer,
    cfg: dict[str, Any],
    saml: str,
    duration: Any = 600,
    *,
    org_id: str | None = None,
    config_id: str | None = None,
) -> httpx.Response:
    """The anonymous exchange: no Authorization header at all."""
    body = {
        "durationSeconds": duration,
        "orgId": org_id if org_id is not None else cfg["orgUid"],
        "configId": config_id if config_id is not None else cfg["uid"],
        "samlResponse": saml,
    }
    return httpx.post(server.api_url + EXCHANGE, json=body, timeout=30)


def minted(server: CofferServer, cfg: dict[str, Any], saml: str, duration: Any = 600) -> dict[str, Any]:
    r = exchange(server, cfg, saml, duration)
    assert r.status_code == 200, r.text
    key: dict[str, Any] = r.json()
    return key


def parse_expiry(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def whole_second(moment: datetime) -> datetime:
    """What the IdP wrote into the XML (xs:dateTime without fractions)."""
    return moment.replace(microsecond=0)


def s3_error(call: Any) -> tuple[int, str]:
    """(HTTP status, S3 code) of a call that must fail."""
    with pytest.raises(ClientError) as info:
        call()
    return client_error(info.value)


def refused(
    server: CofferServer,
    cfg: dict[str, Any],
    saml: str,
    check: str,
    status: int = 401,
    *,
    hidden: tuple[str, ...] = (),
    org_id: str | None = None,
    config_id: str | None = None,
    duration: Any = 600,
) -> dict[str, Any]:
    """The exchange is refused with `status` and `check`; never echoes the assertion; audited."""
    before = len(server.audit())
    r = exchange(server, cfg, saml, duration, org_id=org_id, config_id=config_id)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["code"] == GRPC[status], body
    assert body["message"].startswith(f"{check}: "), body
    for secret in (saml, saml[:40], saml[-40:], *hidden):
        assert secret not in r.text, f"the refusal echoes {secret[:30]!r}"
    denials = [e for e in server.audit()[before:] if e.get("event") == "federation_denied"]
    assert len(denials) == 1, denials
    entry = denials[0]
    assert entry["check"] == check, entry
    assert entry["status"] == status, entry
    assert entry["org_id"] == (org_id if org_id is not None else cfg["orgUid"]), entry
    assert entry["config_id"] == (config_id if config_id is not None else cfg["uid"]), entry
    assert entry["client"] == "127.0.0.1", entry
    assert entry["reason"].startswith(f"{check}: "), entry
    line = json.dumps(entry)
    for secret in (saml[:40], *hidden):
        assert secret not in line, f"the audit line echoes {secret[:30]!r}"
    return entry


def assertion_of(response: etree._Element) -> etree._Element:
    found = response.find(f"{S}Assertion")
    assert found is not None
    return found


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_server_errors(server: CofferServer) -> Iterator[None]:
    """No test may provoke a 5xx or a traceback, whatever it sends."""
    yield
    log = server.log()
    assert "Traceback" not in log, log[-4000:]
    for line in log.splitlines():
        if '"coffer.access"' in line:
            entry = json.loads(line)
            assert entry.get("status", 0) < 500, entry


@pytest.fixture(scope="module")
def org_id(server: CofferServer) -> str:
    with server.api() as c:
        key = server.mint_key(duration=0)
        r = c.get(KEY_INFO + key["accessKeyId"])
    assert r.status_code == 200, r.text
    return str(r.json()["info"]["orgId"])


@pytest.fixture(scope="module")
def admin_s3(server: CofferServer) -> Any:
    return s3_client(server, server.mint_key(duration=0))


@pytest.fixture(scope="module")
def cfg(server: CofferServer) -> dict[str, Any]:
    """One config for the attack tests (they never change it)."""
    return create_config(server)


@pytest.fixture(scope="module")
def engineers(server: CofferServer, admin_s3: Any) -> tuple[str, str]:
    """(bucket, role) where `role/<role>` may do anything in the bucket."""
    bucket, role = tag("fed"), tag("Engineer")
    admin_s3.create_bucket(Bucket=bucket)
    grant_bucket(server, "fed", "all", bucket, f"role/{role}")
    return bucket, role


# --- 1. configuration API ------------------------------------------------------------------------


def test_create_config_fills_defaults_and_fingerprint(server: CofferServer, org_id: str) -> None:
    name = tag("corp-okta")
    config = create_config(server, name=name, description="the corporate IdP")
    assert config["orgUid"] == org_id
    assert config["name"] == name
    assert config["spAudience"] == f"{server.api_url}/saml/{org_id}"
    assert config["recipient"] == f"{server.api_url}{EXCHANGE}"
    assert config["active"] is True
    assert "deactivatedAt" not in config
    assert config["description"] == "the corporate IdP"
    assert [c.strip() for c in config["certificates"]] == [IDP.cert_pem.strip()]
    (fingerprint,) = config["certificateFingerprints"]
    assert len(fingerprint.split(":")) == 32 and fingerprint == fingerprint.upper()
    assert config["createdAt"].endswith("Z") and config["updatedAt"].endswith("Z")

    with server.api() as c:
        got = c.get(f"{CONFIGS}/{config['uid']}")
        listed = c.get(CONFIGS)
    assert got.status_code == 200, got.text
    assert got.json() == {"config": config}
    assert listed.status_code == 200, listed.text
    assert config in listed.json()["configs"]


def test_explicit_audience_and_recipient_are_kept(server: CofferServer) -> None:
    config = create_config(server, spAudience="urn:coffer:test", recipient="https://coffer.example/acs")
    assert (config["spAudience"], config["recipient"]) == ("urn:coffer:test", "https://coffer.example/acs")


def test_patch_description_rotation_and_update_mask(server: CofferServer) -> None:
    config = create_config(server, description="before")
    uid = config["uid"]

    changed = patch_config(server, uid, {"description": "after"})
    assert changed["description"] == "after"
    assert changed["name"] == config["name"] and changed["certificates"] == config["certificates"]

    # Rotation: the IdP's next certificate is added while the old one still signs.
    both = patch_config(server, uid, {"certificates": [IDP.cert_pem, IDP_NEXT.cert_pem]})
    assert len(both["certificates"]) == 2
    assert len(set(both["certificateFingerprints"])) == 2
    assert both["certificateFingerprints"][0] == config["certificateFingerprints"][0]
    assert minted(server, both, assertion_b64(both, IDP))["principalName"] == "saml/alice"
    assert minted(server, both, assertion_b64(both, IDP_NEXT))["principalName"] == "saml/alice"

    # ... then the old one is removed: its signatures stop counting.
    only_next = patch_config(server, uid, {"certificates": [IDP_NEXT.cert_pem]})
    assert only_next["certificateFingerprints"] == both["certificateFingerprints"][1:]
    refused(server, only_next, assertion_b64(only_next, IDP), "signature")
    assert minted(server, only_next, assertion_b64(only_next, IDP_NEXT))["principalName"] == "saml/alice"

    # A field in updateMask but not in the body is cleared (FieldMask semantics).
    cleared = patch_config(server, uid, {"updateMask": "description"})
    assert cleared["description"] == ""
    assert cleared["certificates"] == only_next["certificates"]
    # Fields outside the mask are ignored.
    masked = patch_config(server, uid, {"updateMask": "description", "description": "x", "name": "ignored"})
    assert (masked["description"], masked["name"]) == ("x", config["name"])

    with server.api() as c:
        assert c.get(f"{CONFIGS}/{uid}").json()["config"] == masked


def test_duplicate_name_conflicts(server: CofferServer) -> None:
    first = create_config(server)
    with server.api() as c:
        r = c.post(
            CONFIGS,
            json={
                "name": first["name"],
                "idpEntityId": "https://other.example",
                "certificates": [IDP.cert_pem],
            },
        )
        assert r.status_code == 409, r.text
        assert r.json()["code"] == 6
        other = create_config(server)
        renamed = c.patch(f"{CONFIGS}/{other['uid']}", json={"name": first["name"]})
        assert renamed.status_code == 409, renamed.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"certificates": ["not a certificate"]}, "certificates"),
        ({"certificates": [rsa_key("weak", 1024).cert_pem]}, "certificates"),
        ({"certificates": []}, "certificates"),
        ({"name": "has space"}, "name"),
        ({"name": ""}, "name"),
        ({"idpEntityId": ""}, "idpEntityId"),
        ({"colour": "blue"}, "colour"),
        ({"uid": "chosen-by-me"}, "uid"),
    ],
)
def test_invalid_config_refused(server: CofferServer, change: dict[str, Any], field: str) -> None:
    body = {
        "name": tag("bad"),
        "idpEntityId": "https://idp.example",
        "certificates": [IDP.cert_pem],
        **change,
    }
    with server.api() as c:
        before = {x["name"] for x in c.get(CONFIGS).json()["configs"]}
        r = c.post(CONFIGS, json=body)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == 3
        assert field in r.text
        assert {x["name"] for x in c.get(CONFIGS).json()["configs"]} == before


def test_invalid_patch_refused(server: CofferServer) -> None:
    config = create_config(server)
    uid = config["uid"]
    with server.api() as c:
        for body in (
            {"certificates": [rsa_key("weak", 1024).cert_pem]},
            {"certificates": ["-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"]},
            {"name": "no/slashes"},
            {"colour": "blue"},
            {"updateMask": "colour"},
            {"updateMask": "name"},  # in the mask, but no value
            {},
        ):
            r = c.patch(f"{CONFIGS}/{uid}", json=body)
            assert r.status_code == 400, (body, r.text)
            assert r.json()["code"] == 3
        assert c.get(f"{CONFIGS}/{uid}").json()["config"] == config


def test_unknown_uid_and_double_delete_are_not_found(server: CofferServer) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    config = create_config(server)
    with server.api() as c:
        assert_unknown(c, f"{CONFIGS}/{missing}")
        first = c.delete(f"{CONFIGS}/{config['uid']}")
        assert first.status_code == 200, first.text
        assert first.json() == {}
        second = c.delete(f"{CONFIGS}/{config['uid']}")
        assert second.status_code == 404, second.text
        assert c.get(f"{CONFIGS}/{config['uid']}").status_code == 404
        assert config["uid"] not in {x["uid"] for x in c.get(CONFIGS).json()["configs"]}
    refused(server, config, assertion_b64(config), "config")


def test_non_admin_is_forbidden(server: CofferServer) -> None:
    config = create_config(server)
    _, token = server.create_user(tag("plain"))
    body = {"name": tag("x"), "idpEntityId": "https://idp.example", "certificates": [IDP.cert_pem]}
    with server.api(token) as c:
        for r in (
            c.get(CONFIGS),
            c.post(CONFIGS, json=body),
            c.get(f"{CONFIGS}/{config['uid']}"),
            c.patch(f"{CONFIGS}/{config['uid']}", json={"active": False}),
            c.delete(f"{CONFIGS}/{config['uid']}"),
        ):
            assert r.status_code == 403, r.text
            assert r.json()["code"] == 7
    with server.api() as c:
        assert c.get(f"{CONFIGS}/{config['uid']}").json()["config"] == config
        assert body["name"] not in {x["name"] for x in c.get(CONFIGS).json()["configs"]}


def test_config_api_needs_a_token(server: CofferServer) -> None:
    r = httpx.get(server.api_url + CONFIGS, timeout=30)
    assert r.status_code == 401, r.text


def test_another_org_cannot_see_or_change_the_config(server: CofferServer) -> None:
    config = create_config(server)
    _, token = create_user(server, tag("partner"), org=create_org(server), admin=True)
    with server.api(token) as c:
        assert config["uid"] not in {x["uid"] for x in c.get(CONFIGS).json()["configs"]}
        assert c.get(f"{CONFIGS}/{config['uid']}").status_code == 404
        assert c.patch(f"{CONFIGS}/{config['uid']}", json={"active": False}).status_code == 404
        assert c.delete(f"{CONFIGS}/{config['uid']}").status_code == 404
    with server.api() as c:
        assert c.get(f"{CONFIGS}/{config['uid']}").json()["config"]["active"] is True


# --- 2. the good path ----------------------------------------------------------------------------


@pytest.mark.parametrize(("sign_assertion", "sign_response"), [(True, False), (False, True), (True, True)])
def test_signed_assertion_mints_a_key(
    server: CofferServer, cfg: dict[str, Any], org_id: str, sign_assertion: bool, sign_response: bool
) -> None:
    before = len(server.audit())
    spec = spec_for(cfg, roles=("DataEngineer", "Reader"))
    saml = to_b64(signed_response(spec, IDP, sign_assertion=sign_assertion, sign_response=sign_response))
    started = datetime.now(UTC)
    key = minted(server, cfg, saml, 600)
    assert set(key) == {"accessKeyId", "secretKey", "principalName", "expiry", "attributes"}
    assert key["principalName"] == "saml/alice"
    assert key["accessKeyId"] and key["secretKey"]
    expiry = parse_expiry(key["expiry"])
    assert started + timedelta(seconds=595) <= expiry <= datetime.now(UTC) + timedelta(seconds=601)

    info = key_info(server, key["accessKeyId"])
    assert info["status"] == "ACTIVE"
    assert info["principalName"] == "saml/alice"
    assert info["orgId"] == org_id
    assert info["expiry"] == key["expiry"]
    assert info["multiAttributes"]["roles"]["values"] == ["role/DataEngineer", "role/Reader"]

    events = server.audit()[before:]
    mints = [e for e in events if e.get("event") == "access_key_minted"]
    sign_ins = [e for e in events if e.get("event") == "federated_sign_in"]
    assert [e["access_key_id"] for e in mints] == [key["accessKeyId"]]
    assert [e["access_key_id"] for e in sign_ins] == [key["accessKeyId"]]
    assert sign_ins[0]["config_id"] == cfg["uid"]
    assert sign_ins[0]["issuer"] == cfg["idpEntityId"]
    assert sign_ins[0]["roles"] == ["role/DataEngineer", "role/Reader"]
    assert not [e for e in events if e.get("event") == "federation_denied"]
    assert key["secretKey"] not in json.dumps(events)


def test_ec_signed_assertion_mints_a_key(server: CofferServer) -> None:
    key = ec_key("exchange-ec")
    config = create_config(server, key)
    assert minted(server, config, assertion_b64(config, key))["principalName"] == "saml/alice"


def test_attributes_travel_with_the_key(server: CofferServer, cfg: dict[str, Any]) -> None:
    body = {
        "durationSeconds": 300,
        "orgId": cfg["orgUid"],
        "configId": cfg["uid"],
        "samlResponse": assertion_b64(cfg),
        "attributes": {"team": "ml"},
    }
    r = httpx.post(server.api_url + EXCHANGE, json=body, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["attributes"] == {"team": "ml"}
    assert key_info(server, r.json()["accessKeyId"])["attributes"] == {"team": "ml"}


def test_expiry_clipped_to_assertion_not_on_or_after(server: CofferServer, cfg: dict[str, Any]) -> None:
    spec = spec_for(cfg)  # Conditions NotOnOrAfter = now + 1 h
    end = whole_second(spec.now + spec.not_on_or_after)
    key = minted(server, cfg, to_b64(signed_response(spec, IDP)), 43200)
    expiry = parse_expiry(key["expiry"])
    assert end - timedelta(seconds=2) <= expiry <= end


def test_expiry_clipped_to_session_not_on_or_after(server: CofferServer, cfg: dict[str, Any]) -> None:
    spec = spec_for(cfg, session_not_on_or_after=timedelta(minutes=20))
    end = whole_second(spec.now + timedelta(minutes=20))
    key = minted(server, cfg, to_b64(signed_response(spec, IDP)), 0)
    assert end - timedelta(seconds=2) <= parse_expiry(key["expiry"]) <= end


def test_shorter_duration_is_honoured(server: CofferServer, cfg: dict[str, Any]) -> None:
    started = datetime.now(UTC)
    key = minted(server, cfg, assertion_b64(cfg), 120)
    expiry = parse_expiry(key["expiry"])
    assert started + timedelta(seconds=117) <= expiry <= datetime.now(UTC) + timedelta(seconds=121)


def test_duration_zero_is_never_permanent(server: CofferServer, cfg: dict[str, Any]) -> None:
    spec = spec_for(cfg)
    end = whole_second(spec.now + spec.not_on_or_after)
    key = minted(server, cfg, to_b64(signed_response(spec, IDP)), 0)
    expiry = parse_expiry(key["expiry"])
    assert expiry.year != 1970
    assert end - timedelta(seconds=2) <= expiry <= end
    assert key_info(server, key["accessKeyId"])["status"] == "ACTIVE"

    # Without any end in the assertion, 0 still means at most 12 hours.
    open_ended = spec_for(cfg, not_on_or_after=None, session_not_on_or_after=None)
    started = datetime.now(UTC)
    key = minted(server, cfg, to_b64(signed_response(open_ended, IDP)), 0)
    expiry = parse_expiry(key["expiry"])
    assert started + timedelta(seconds=43195) <= expiry <= datetime.now(UTC) + timedelta(seconds=43200)


def test_duration_over_twelve_hours_refused_without_burning_the_assertion(
    server: CofferServer, cfg: dict[str, Any]
) -> None:
    saml = assertion_b64(cfg)
    before = len(server.audit())
    for duration in (43201, -1, "soon"):
        r = exchange(server, cfg, saml, duration)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == 3
        assert "durationSeconds" in r.text
        assert saml[:40] not in r.text
    denials = [e for e in server.audit()[before:] if e.get("event") == "federation_denied"]
    assert [e["status"] for e in denials] == [400, 400, 400]
    # The refused requests did not consume the assertion: it still works, exactly once.
    assert minted(server, cfg, saml)["principalName"] == "saml/alice"
    refused(server, cfg, saml, "replay")


# --- 3. the key on S3, under org policies ----------------------------------------------------------


def test_key_works_on_s3_only_under_a_policy_naming_its_role(
    server: CofferServer, cfg: dict[str, Any], admin_s3: Any
) -> None:
    bucket, role, other_role = tag("saml"), tag("DataEngineer"), tag("Intern")
    admin_s3.create_bucket(Bucket=bucket)
    key = minted(server, cfg, assertion_b64(cfg, roles=(role,)), 900)
    s3 = s3_client(server, key)
    assert s3_error(lambda: s3.list_buckets()) == (403, "AccessDenied")
    assert s3_error(lambda: s3.put_object(Bucket=bucket, Key="a.txt", Body=b"x")) == (403, "AccessDenied")

    grant_bucket(server, "saml-role", "rw", bucket, f"role/{role}")
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"written with a SAML key")
    assert s3.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"written with a SAML key"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["a.txt"]
    # Only that bucket: the policy grants nothing elsewhere.
    assert s3_error(lambda: s3.list_buckets()) == (403, "AccessDenied")

    # Same IdP, same principal, another role: still nothing.
    intern = s3_client(server, minted(server, cfg, assertion_b64(cfg, roles=(other_role,))))
    assert s3_error(lambda: intern.get_object(Bucket=bucket, Key="a.txt")) == (403, "AccessDenied")
    assert s3_error(lambda: intern.put_object(Bucket=bucket, Key="b.txt", Body=b"x")) == (403, "AccessDenied")

    # A key with several roles answers to each of them.
    both = s3_client(server, minted(server, cfg, assertion_b64(cfg, roles=(other_role, role))))
    assert both.get_object(Bucket=bucket, Key="a.txt")["Body"].read() == b"written with a SAML key"


def test_policy_naming_the_saml_principal(server: CofferServer, cfg: dict[str, Any], admin_s3: Any) -> None:
    bucket, person = tag("saml"), tag("bob")
    admin_s3.create_bucket(Bucket=bucket)
    key = minted(server, cfg, assertion_b64(cfg, principal=(person,), roles=(tag("Nobody"),)))
    assert key["principalName"] == f"saml/{person}"
    s3 = s3_client(server, key)
    assert s3_error(lambda: s3.put_object(Bucket=bucket, Key="p", Body=b"1")) == (403, "AccessDenied")
    grant_bucket(server, "saml-person", "rw", bucket, f"saml/{person}")
    s3.put_object(Bucket=bucket, Key="p", Body=b"1")
    assert s3.get_object(Bucket=bucket, Key="p")["Body"].read() == b"1"
    # The principal name is not a role: a key for someone else with that "role" gets nothing.
    impostor = minted(server, cfg, assertion_b64(cfg, principal=(tag("eve"),), roles=(person,)))
    s3_impostor = s3_client(server, impostor)
    assert s3_error(lambda: s3_impostor.get_object(Bucket=bucket, Key="p")) == (403, "AccessDenied")


# --- 4. expiry is enforced ------------------------------------------------------------------------


def test_key_stops_working_when_the_assertion_ends(
    server: CofferServer, cfg: dict[str, Any], engineers: tuple[str, str]
) -> None:
    bucket, role = engineers
    spec = spec_for(cfg, roles=(role,), not_on_or_after=timedelta(seconds=4))
    end = whole_second(spec.now + timedelta(seconds=4))
    key = minted(server, cfg, to_b64(signed_response(spec, IDP)), 3600)
    expiry = parse_expiry(key["expiry"])
    assert end - timedelta(seconds=2) <= expiry <= end
    s3 = s3_client(server, key)
    s3.put_object(Bucket=bucket, Key="short-lived", Body=b"ok")
    assert key_info(server, key["accessKeyId"])["status"] == "ACTIVE"

    time.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()) + 1.5)
    # S3 answers ExpiredToken (HTTP 400, as AWS does) for a genuine signature by an expired key.
    assert s3_error(lambda: s3.get_object(Bucket=bucket, Key="short-lived")) == (400, "ExpiredToken")
    assert s3_error(lambda: s3.put_object(Bucket=bucket, Key="late", Body=b"x")) == (400, "ExpiredToken")
    assert key_info(server, key["accessKeyId"])["status"] == "EXPIRED"


# --- 5. attacks and faults ------------------------------------------------------------------------


def test_unsigned_assertion_refused(server: CofferServer, cfg: dict[str, Any]) -> None:
    person = tag("mallory")
    doc = signed_response(spec_for(cfg, principal=(person,)), IDP, sign_assertion=False)
    refused(server, cfg, to_b64(doc), "signature", hidden=(person,))
    bare = build_assertion(spec_for(cfg, principal=(person,)))
    refused(server, cfg, to_b64(bare), "signature", hidden=(person,))


def test_signature_by_unknown_key_refused(server: CofferServer, cfg: dict[str, Any]) -> None:
    person = tag("mallory")
    refused(server, cfg, assertion_b64(cfg, STRANGER, principal=(person,)), "signature", hidden=(person,))
    # The trusted certificate pasted into KeyInfo does not make a stranger's signature count.
    doc = signed_response(spec_for(cfg, principal=(person,)), STRANGER)
    cert = doc.find(f".//{DS}X509Certificate")
    assert cert is not None
    cert.text = "".join(IDP.cert_pem.strip().splitlines()[1:-1])
    refused(server, cfg, to_b64(doc), "signature", hidden=(person,))


def _evil(cfg: dict[str, Any], person: str, **overrides: Any) -> etree._Element:
    return build_assertion(spec_for(cfg, principal=(person,), roles=("Admin",), **overrides))


def _wrap_beside(cfg: dict[str, Any], person: str) -> etree._Element:
    response = signed_response(spec_for(cfg), IDP)
    response.insert(response.index(assertion_of(response)), _evil(cfg, person))
    return response


def _wrap_in_extensions(cfg: dict[str, Any], person: str) -> etree._Element:
    response = signed_response(spec_for(cfg), IDP)
    original = assertion_of(response)
    response.remove(original)
    etree.SubElement(response, f"{SP}Extensions").append(original)
    response.append(_evil(cfg, person))
    return response


def _copied_signature(cfg: dict[str, Any], person: str) -> etree._Element:
    response = signed_response(spec_for(cfg), IDP)
    original = assertion_of(response)
    evil = _evil(cfg, person, assertion_id=original.get("ID"))
    evil.insert(1, copy.deepcopy(original.find(f"{DS}Signature")))
    response.replace(original, evil)
    return response


def _original_in_signature_object(cfg: dict[str, Any], person: str) -> etree._Element:
    response = signed_response(spec_for(cfg), IDP)
    original = assertion_of(response)
    signature = copy.deepcopy(original.find(f"{DS}Signature"))
    evil = _evil(cfg, person, assertion_id=original.get("ID"))
    evil.insert(1, signature)
    etree.SubElement(signature, f"{DS}Object").append(copy.deepcopy(original))
    response.replace(original, evil)
    return response


def _signed_response_wrapped(cfg: dict[str, Any], person: str) -> etree._Element:
    signed = signed_response(spec_for(cfg), IDP, sign_assertion=False, sign_response=True)
    outer = build_response(spec_for(cfg), _evil(cfg, person))
    extensions = etree.Element(f"{SP}Extensions")
    extensions.append(signed)
    outer.insert(1, extensions)
    return outer


@pytest.mark.parametrize(
    ("attack", "check"),
    [
        (_wrap_beside, "structure"),
        (_wrap_in_extensions, "structure"),
        (_copied_signature, "signature"),
        (_original_in_signature_object, "structure"),
        (_signed_response_wrapped, "structure"),
    ],
)
def test_signature_wrapping_refused(
    server: CofferServer, cfg: dict[str, Any], attack: Any, check: str
) -> None:
    person = tag("root")
    refused(server, cfg, to_b64(attack(cfg, person)), check, hidden=(person,))


def test_comment_in_signed_principal_refused(server: CofferServer, cfg: dict[str, Any]) -> None:
    """`admin<!-- -->@evil`: the signature still verifies (c14n drops comments), the server refuses."""
    signed_value = f"admin@{tag('evil')}.example"
    response = signed_response(spec_for(cfg, principal=(signed_value,)), IDP)
    value = assertion_of(response).find(f"{S}AttributeStatement/{S}Attribute/{S}AttributeValue")
    assert value is not None and value.text == signed_value
    value.text = "admin"
    comment = etree.Comment(" ")
    comment.tail = signed_value[5:]
    value.append(comment)
    refused(server, cfg, to_b64(response), "xml", hidden=(signed_value,))


def test_external_entity_refused(server: CofferServer, cfg: dict[str, Any]) -> None:
    marker = tag("XXEMARKER")
    raw = etree.tostring(signed_response(spec_for(cfg, principal=(marker,)), IDP))
    raw = raw.replace(marker.encode(), b"&xxe;")
    doc = b'<!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + raw
    before = time.monotonic()
    refused(server, cfg, to_b64(doc), "xml", 400, hidden=("root:",))
    assert time.monotonic() - before < 5
    remote = b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">' + raw
    refused(server, cfg, to_b64(remote), "xml", 400)


def test_billion_laughs_refused(server: CofferServer, cfg: dict[str, Any]) -> None:
    marker = tag("LOLMARKER")
    raw = etree.tostring(signed_response(spec_for(cfg, principal=(marker,)), IDP))
    raw = raw.replace(marker.encode(), b"&lol9;")
    entities = b'<!ENTITY lol "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    doc = b"<!DOCTYPE samlp:Response [" + entities + b"]>" + raw
    before = time.monotonic()
    refused(server, cfg, to_b64(doc), "xml", 400)
    assert time.monotonic() - before < 5


def test_wrong_audience_refused(server: CofferServer, cfg: dict[str, Any]) -> None:
    person = tag("alice")
    saml = assertion_b64(cfg, audiences=(f"{server.api_url}/saml/some-other-org",), principal=(person,))
    refused(server, cfg, saml, "audience", hidden=(person, "some-other-org"))


def test_expired_assertion_refused(server: CofferServer, cfg: dict[str, Any]) -> None:
    # Beyond the 60 s skew; the bearer confirmation is still current.
    saml = assertion_b64(cfg, not_on_or_after=timedelta(seconds=-120), not_before=timedelta(minutes=-10))
    refused(server, cfg, saml, "expired")


def test_not_yet_valid_assertion_refused(server: CofferServer, cfg: dict[str, Any]) -> None:
    saml = assertion_b64(cfg, not_before=timedelta(minutes=5))
    refused(server, cfg, saml, "not_yet_valid")


def test_wrong_issuer_refused(server: CofferServer, cfg: dict[str, Any]) -> None:
    saml = assertion_b64(cfg, issuer="https://evil.example/idp", response_issuer=None)
    refused(server, cfg, saml, "issuer", hidden=("evil.example",))
    saml = assertion_b64(cfg, response_issuer="https://evil.example/idp")
    refused(server, cfg, saml, "issuer", hidden=("evil.example",))


def test_wrong_recipient_refused(server: CofferServer, cfg: dict[str, Any]) -> None:
    saml = assertion_b64(cfg, recipient="https://evil.example/acs")
    refused(server, cfg, saml, "recipient", hidden=("evil.example",))


def test_replayed_assertion_refused(server: CofferServer, cfg: dict[str, Any]) -> None:
    spec = spec_for(cfg)
    saml = to_b64(signed_response(spec, IDP))
    first = minted(server, cfg, saml)
    refused(server, cfg, saml, "replay")
    # The same signed assertion in a fresh (unsigned) Response wrapper is the same assertion.
    rewrapped = build_response(spec_for(cfg), copy.deepcopy(assertion_of(signed_response(spec, IDP))))
    refused(server, cfg, to_b64(rewrapped), "replay")
    # Line-wrapped base64 of the same bytes is no way around it either.
    refused(server, cfg, "\n".join(saml[i : i + 76] for i in range(0, len(saml), 76)), "replay")
    assert key_info(server, first["accessKeyId"])["status"] == "ACTIVE"


def test_refused_assertion_does_not_burn_its_id(server: CofferServer, cfg: dict[str, Any]) -> None:
    """A refusal for another reason (here: the wrong config, then a bad duration) keeps the ID."""
    saml = assertion_b64(cfg)
    other = create_config(server)  # trusts the same key, but another issuer
    refused(server, other, saml, "issuer")
    r = exchange(server, cfg, saml, 99999)
    assert r.status_code == 400, r.text
    assert minted(server, cfg, saml)["principalName"] == "saml/alice"
    refused(server, cfg, saml, "replay")


@pytest.mark.parametrize("payload", ["this is *not* base64!", "%%%%", "QUJD=QUJD"])
def test_not_base64_refused(server: CofferServer, cfg: dict[str, Any], payload: str) -> None:
    refused(server, cfg, payload, "encoding", 400)


def test_missing_role_refused(server: CofferServer, cfg: dict[str, Any]) -> None:
    person = tag("alice")
    refused(server, cfg, assertion_b64(cfg, roles=(), principal=(person,)), "attributes", hidden=(person,))
    refused(server, cfg, assertion_b64(cfg, principal=()), "attributes")
    refused(server, cfg, assertion_b64(cfg, roles=("*",)), "attributes")


def test_unknown_config_refused(server: CofferServer, cfg: dict[str, Any]) -> None:
    saml = assertion_b64(cfg)
    unknown = refused(server, cfg, saml, "config", config_id="00000000-0000-4000-8000-000000000000")
    wrong_org = refused(server, cfg, saml, "config", org_id="no-such-org")
    # Unknown and foreign look the same to an anonymous caller.
    assert unknown["reason"] == wrong_org["reason"]
    assert minted(server, cfg, saml)["principalName"] == "saml/alice"


def test_another_orgs_config_refused(server: CofferServer, cfg: dict[str, Any]) -> None:
    org_b = create_org(server)
    _, token_b = create_user(server, tag("partner"), org=org_b, admin=True)
    # Org B trusts the very same IdP (same entity ID and certificate).
    cfg_b = create_config(server, token=token_b, idpEntityId=cfg["idpEntityId"])
    assert cfg_b["orgUid"] == org_b
    assert cfg_b["spAudience"] == f"{server.api_url}/saml/{org_b}"
    saml = assertion_b64(cfg)  # issued for org A's audience
    # B's config named under A's org id, and A's config under B's: both unknown.
    refused(server, cfg, saml, "config", config_id=cfg_b["uid"])
    refused(server, cfg_b, saml, "config", config_id=cfg["uid"])
    # B's own config, but the assertion is addressed to A: the per-org audience stops it.
    refused(server, cfg_b, saml, "audience")
    # None of this used up A's assertion.
    assert minted(server, cfg, saml)["principalName"] == "saml/alice"
    assert minted(server, cfg_b, assertion_b64(cfg_b))["principalName"] == "saml/alice"


def test_deactivated_config_refused(server: CofferServer) -> None:
    config = create_config(server)
    saml = assertion_b64(config)
    inactive = patch_config(server, config["uid"], {"active": False})
    assert inactive["active"] is False and "deactivatedAt" in inactive
    refused(server, config, saml, "config")
    patch_config(server, config["uid"], {"active": True})
    assert minted(server, config, saml)["principalName"] == "saml/alice"


def test_config_created_inactive_refuses(server: CofferServer) -> None:
    config = create_config(server, active=False)
    assert config["active"] is False and "deactivatedAt" in config
    refused(server, config, assertion_b64(config), "config")


@pytest.mark.parametrize(
    ("org", "config_id"),
    [
        (None, "not-a-uuid"),
        (None, "c" * 255),
        ("o" * 255, None),
        ("organisation-ünïcode-☃", None),
        (None, "'; DROP TABLE federation_configs; --"),
    ],
)
def test_odd_org_and_config_ids_are_just_unknown(
    server: CofferServer, cfg: dict[str, Any], org: str | None, config_id: str | None
) -> None:
    refused(server, cfg, assertion_b64(cfg), "config", org_id=org, config_id=config_id)


def test_odd_config_uids_are_not_found(server: CofferServer) -> None:
    with server.api() as c:
        for uid in ("not-a-uuid", "x" * 300, "%F0%9F%98%80"):
            for r in (c.get(f"{CONFIGS}/{uid}"), c.delete(f"{CONFIGS}/{uid}")):
                assert r.status_code == 404, (uid, r.text)


def test_session_ended_refused(server: CofferServer, cfg: dict[str, Any]) -> None:
    saml = assertion_b64(cfg, session_not_on_or_after=timedelta(minutes=-3))
    refused(server, cfg, saml, "session")


def test_assertion_ending_within_the_skew_mints_nothing(server: CofferServer, cfg: dict[str, Any]) -> None:
    """Inside the 60 s skew the checks pass, but the key would already be dead: `lifetime`."""
    saml = assertion_b64(cfg, not_on_or_after=timedelta(seconds=-20))
    refused(server, cfg, saml, "lifetime")


def test_oversized_response_refused(server: CofferServer, cfg: dict[str, Any]) -> None:
    refused(server, cfg, "A" * (256 * 1024 + 4), "encoding", 400)


def test_assertion_for_two_orgs_is_still_one_time(server: CofferServer, cfg: dict[str, Any]) -> None:
    """An IdP may address one assertion to two orgs that trust it; it buys one key, not two."""
    org_b = create_org(server)
    _, token_b = create_user(server, tag("partner"), org=org_b, admin=True)
    cfg_b = create_config(server, token=token_b, idpEntityId=cfg["idpEntityId"])
    saml = assertion_b64(cfg, audiences=(cfg["spAudience"], cfg_b["spAudience"]))
    assert minted(server, cfg_b, saml)["principalName"] == "saml/alice"
    refused(server, cfg, saml, "replay")


def test_concurrent_presentations_mint_exactly_one_key(server: CofferServer, cfg: dict[str, Any]) -> None:
    saml = assertion_b64(cfg)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: exchange(server, cfg, saml), range(8)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] + [401] * 7, [r.text for r in answers]
    for r in answers:
        if r.status_code == 401:
            assert r.json()["message"].startswith("replay: "), r.text


def test_config_limit_per_org(server: CofferServer) -> None:
    _, token = create_user(server, tag("busy"), org=create_org(server), admin=True)
    with server.api(token) as c:
        for i in range(100):
            r = c.post(
                CONFIGS,
                json={
                    "name": f"idp-{i}",
                    "idpEntityId": f"https://idp{i}.example",
                    "certificates": [IDP.cert_pem],
                },
            )
            assert r.status_code == 200, r.text
        r = c.post(
            CONFIGS,
            json={"name": "one-too-many", "idpEntityId": "https://x.example", "certificates": [IDP.cert_pem]},
        )
        assert r.status_code == 429, r.text
        assert r.json()["code"] == 8
        assert len(c.get(CONFIGS).json()["configs"]) == 100


def test_certificate_chain_string_is_split(server: CofferServer) -> None:
    config = create_config(server, IDP)
    both = patch_config(server, config["uid"], {"certificates": IDP.cert_pem + IDP_NEXT.cert_pem})
    assert len(both["certificates"]) == 2
    assert minted(server, both, assertion_b64(both, IDP_NEXT))["principalName"] == "saml/alice"


def test_non_boolean_active_refused(server: CofferServer) -> None:
    config = create_config(server)
    with server.api() as c:
        for value in ("false", 0, None):
            r = c.patch(f"{CONFIGS}/{config['uid']}", json={"active": value})
            assert r.status_code == 400, (value, r.text)
        assert c.get(f"{CONFIGS}/{config['uid']}").json()["config"]["active"] is True


def test_missing_request_fields_refused(server: CofferServer, cfg: dict[str, Any]) -> None:
    saml = assertion_b64(cfg)
    full = {"durationSeconds": 60, "orgId": cfg["orgUid"], "configId": cfg["uid"], "samlResponse": saml}
    for missing in ("durationSeconds", "orgId", "configId", "samlResponse"):
        body = {k: v for k, v in full.items() if k != missing}
        r = httpx.post(server.api_url + EXCHANGE, json=body, timeout=30)
        assert r.status_code == 400, (missing, r.text)
        assert r.json()["code"] == 3
        assert missing in r.text
        assert saml[:40] not in r.text
    r = httpx.post(server.api_url + EXCHANGE, content=b"not json", timeout=30)
    assert r.status_code == 400, r.text
    assert minted(server, cfg, saml)["principalName"] == "saml/alice"


# --- 6. withdrawing trust revokes keys ------------------------------------------------------------


def test_deactivating_the_config_revokes_its_keys(
    server: CofferServer, cfg: dict[str, Any], engineers: tuple[str, str], admin_s3: Any
) -> None:
    bucket, role = engineers
    config = create_config(server)
    key = minted(server, config, assertion_b64(config, roles=(role,)), 3600)
    unrelated = minted(server, cfg, assertion_b64(cfg, roles=(role,)), 3600)
    s3 = s3_client(server, key)
    s3.put_object(Bucket=bucket, Key="revoke-me", Body=b"1")

    inactive = patch_config(server, config["uid"], {"active": False})
    assert inactive["active"] is False and "deactivatedAt" in inactive
    assert s3_error(lambda: s3.get_object(Bucket=bucket, Key="revoke-me")) == (403, "InvalidAccessKeyId")
    assert key_info(server, key["accessKeyId"])["status"] == "REVOKED"
    # Keys minted through another config, and the admin's, are untouched.
    assert key_info(server, unrelated["accessKeyId"])["status"] == "ACTIVE"
    assert s3_client(server, unrelated).get_object(Bucket=bucket, Key="revoke-me")["Body"].read() == b"1"
    assert admin_s3.get_object(Bucket=bucket, Key="revoke-me")["Body"].read() == b"1"
    refused(server, config, assertion_b64(config, roles=(role,)), "config")

    # Reactivating trusts new assertions again, but does not resurrect the revoked key.
    active = patch_config(server, config["uid"], {"active": True})
    assert active["active"] is True and "deactivatedAt" not in active
    assert key_info(server, key["accessKeyId"])["status"] == "REVOKED"
    assert s3_error(lambda: s3.get_object(Bucket=bucket, Key="revoke-me")) == (403, "InvalidAccessKeyId")
    fresh = minted(server, config, assertion_b64(config, roles=(role,)), 3600)
    assert s3_client(server, fresh).get_object(Bucket=bucket, Key="revoke-me")["Body"].read() == b"1"

    changes = [
        e
        for e in server.audit()
        if e.get("event") == "federation_config_changed" and e.get("config_id") == config["uid"]
    ]
    assert [e.get("active") for e in changes if "active" in e][-2:] == [False, True]


def test_deleting_the_config_revokes_its_keys(server: CofferServer, engineers: tuple[str, str]) -> None:
    bucket, role = engineers
    config = create_config(server)
    keys = [minted(server, config, assertion_b64(config, roles=(role,)), 3600) for _ in range(2)]
    clients = [s3_client(server, k) for k in keys]
    for s3 in clients:
        s3.put_object(Bucket=bucket, Key="delete-me", Body=b"2")

    with server.api() as c:
        r = c.delete(f"{CONFIGS}/{config['uid']}")
    assert r.status_code == 200, r.text
    for key, s3 in zip(keys, clients, strict=True):
        assert s3_error(lambda s3=s3: s3.get_object(Bucket=bucket, Key="delete-me")) == (
            403,
            "InvalidAccessKeyId",
        )
        assert key_info(server, key["accessKeyId"])["status"] == "REVOKED"
    deleted = [
        e
        for e in server.audit()
        if e.get("event") == "federation_config_changed" and e.get("config_id") == config["uid"]
    ]
    assert deleted[-1]["revoked_keys"] == 2
    refused(server, config, assertion_b64(config, roles=(role,)), "config")


# --- several workers share the replay cache and see revocations -------------------------------------


@pytest.fixture(scope="module")
def two_workers(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CofferServer]:
    srv = start_server(tmp_path_factory.mktemp(f"coffer-saml-workers-{backend}"), backend, workers=2)
    yield srv
    assert "Traceback" not in srv.log(), srv.log()[-4000:]
    stop_server(srv)


def _held_per_worker(server: CofferServer) -> dict[int, httpx.Client]:
    """One open control-plane connection on each worker process."""
    procs = worker_processes(server, server.api_port)
    assert len(procs) == 2
    held: dict[int, httpx.Client] = {}
    for _ in range(300):
        client = httpx.Client(base_url=server.api_url, timeout=30)
        r = client.get("/healthz")
        assert r.status_code == 200, r.text
        port = r.extensions["network_stream"].get_extra_info("client_addr")[1]
        pid = connection_owner(procs, server.api_port, port)
        if pid is None or pid in held:
            client.close()
            continue
        held[pid] = client
        if len(held) == 2:
            return held
    raise AssertionError("could not reach both workers")


def test_replay_is_refused_by_the_other_worker(two_workers: CofferServer) -> None:
    server = two_workers
    config = create_config(server)
    held = _held_per_worker(server)
    try:
        first, second = held.values()
        saml = assertion_b64(config)
        body = {
            "durationSeconds": 60,
            "orgId": config["orgUid"],
            "configId": config["uid"],
            "samlResponse": saml,
        }
        ok = first.post(EXCHANGE, json=body)
        assert ok.status_code == 200, ok.text
        again = second.post(EXCHANGE, json=body)
        assert again.status_code == 401, again.text
        assert again.json()["message"].startswith("replay: ")
    finally:
        for client in held.values():
            client.close()


def test_deactivation_revokes_on_every_s3_worker(two_workers: CofferServer) -> None:
    server = two_workers
    admin_key = server.mint_key(duration=0)
    bucket, role = tag("fedw"), tag("Worker")
    s3_client(server, admin_key).create_bucket(Bucket=bucket)
    grant_bucket(server, "fedw", "all", bucket, f"role/{role}")
    config = create_config(server)
    key = minted(server, config, assertion_b64(config, roles=(role,)), 3600)
    s3_client(server, key).put_object(Bucket=bucket, Key="k", Body=b"v")
    for _ in range(20):  # fresh connections: every S3 worker caches the key as good
        assert signed(server, key, "GET", f"/{bucket}/k").status_code == 200
    patch_config(server, config["uid"], {"active": False})
    for _ in range(20):
        assert_s3_error(signed(server, key, "GET", f"/{bucket}/k"), 403, "InvalidAccessKeyId")


@pytest.mark.parametrize("withdraw", ["deactivate", "delete"])
def test_withdrawing_trust_during_exchanges_leaves_no_live_key(server: CofferServer, withdraw: str) -> None:
    """Keys minted by exchanges in flight while the config is withdrawn must not survive it.

    Revocation is promised for *every* key minted through the config. An exchange that read
    the config while it was still active but inserts its key after the revocation committed
    would leave an ACTIVE key behind a deactivated (or deleted) config, for up to 12 hours.
    """
    survivors: list[tuple[int, str]] = []
    for round_ in range(3):
        config = create_config(server)
        payloads = [assertion_b64(config) for _ in range(16)]
        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(exchange, server, config, p, 3600) for p in payloads]
            time.sleep(0.03 + 0.02 * round_)
            if withdraw == "deactivate":
                patch_config(server, config["uid"], {"active": False})
            else:
                with server.api() as c:
                    assert c.delete(f"{CONFIGS}/{config['uid']}").status_code == 200
            answers = [f.result() for f in futures]
        for r in answers:
            assert r.status_code in (200, 401), r.text
            if r.status_code == 401:
                assert r.json()["message"].startswith("config: "), r.text
        for r in answers:
            if r.status_code == 200:
                status = key_info(server, r.json()["accessKeyId"])["status"]
                if status != "REVOKED":
                    survivors.append((round_, status))
    assert survivors == [], f"{len(survivors)} keys outlived the withdrawn config: {survivors}"


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("principal", "x" * 256),
        ("principal", "team/alice@example.com"),
        ("principal", "Zoë Müller"),
        ("role", "Data Engineers"),
        ("role", "ml\u00a0ops"),
    ],
)
def test_every_accepted_identity_can_be_named_by_policy(
    server: CofferServer, cfg: dict[str, Any], admin_s3: Any, kind: str, value: str
) -> None:
    """A key the exchange mints must be grantable: its principal and roles must be policy principals.

    Either the exchange refuses a value no policy could name (as `attributes`), or a policy
    naming it is accepted and works. Minting a key that no policy can ever name is neither.
    """
    bucket = tag("who")
    admin_s3.create_bucket(Bucket=bucket)
    person = value if kind == "principal" else tag("carol")
    roles = (value,) if kind == "role" else (tag("Nobody"),)
    r = exchange(server, cfg, assertion_b64(cfg, principal=(person,), roles=roles))
    if r.status_code != 200:
        assert r.status_code == 401, r.text
        assert r.json()["message"].startswith("attributes: "), r.text
        return
    key = r.json()
    assert key["principalName"] == f"saml/{person}"
    named = f"saml/{value}" if kind == "principal" else f"role/{value}"
    grant_bucket(server, "who", "rw", bucket, named)
    s3 = s3_client(server, key)
    s3.put_object(Bucket=bucket, Key="mine", Body=b"1")
    with server.api() as c:
        r = c.post("/v1/cwobject/revoke-access-key/principal", json={"principalName": f"saml/{person}"})
    assert r.status_code == 200, r.text
    assert key_info(server, key["accessKeyId"])["status"] == "REVOKED"
    assert s3_error(lambda: s3.get_object(Bucket=bucket, Key="mine")) == (403, "InvalidAccessKeyId")
