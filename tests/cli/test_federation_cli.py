"""`coffer federation ...`: trusting IdPs straight on the store, next to a running server.

Every test runs the real `coffer` command against the store of a real server (SQLite and
PostgreSQL) and checks the result through the server's HTTP API, so what the CLI writes is what
the server trusts: a SAML assertion signed by a certificate registered with the CLI buys a key
at the running server's exchange, and `saml remove` revokes it.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.harness import CofferServer, coffer_cmd
from tests.support.idp import Key, mint_jwt, rsa_key, signed_response, spec_for_config, to_b64

SAML_CONFIGS = "/v1beta1/workload-federation/saml-configs"
OIDC_CONFIGS = "/v1beta1/workload-federation/oidc-configs"
SAML_EXCHANGE = "/v1/cwobject/temporary-credentials/saml"
OIDC_EXCHANGE = "/v1/cwobject/temporary-credentials/oidc"
KEY_INFO = "/v1/cwobject/access-key/"
IDP = rsa_key("cli-idp")
IDP_NEXT = rsa_key("cli-idp-next")
OTHER = rsa_key("cli-other")


# --- helpers ---------------------------------------------------------------------------------


def tag(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def fed(server: CofferServer, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return server.cli("federation", *args, check=check)


def last_line_id(out: subprocess.CompletedProcess[str]) -> str:
    """The contract of `add`: the new config id alone on stdout's last line."""
    line = out.stdout.strip().splitlines()[-1]
    assert str(uuid.UUID(line)) == line, out.stdout
    return line


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode != 0, out
    assert "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), out.stderr
    return lines[0]


def pem_file(tmp_path: Path, *keys: Key, name: str | None = None) -> str:
    path = tmp_path / (name or f"{tag('cert')}.pem")
    path.write_text("".join(k.cert_pem for k in keys))
    return str(path)


def jwks_file(tmp_path: Path, *keys: dict[str, Any]) -> str:
    path = tmp_path / f"{tag('jwks')}.json"
    path.write_text(json.dumps({"keys": list(keys)}))
    return str(path)


def oidc_add(
    server: CofferServer, tmp_path: Path, name: str, issuer: str, audience: str, *more: str
) -> subprocess.CompletedProcess[str]:
    """`coffer federation oidc add` of `name` for `issuer` and `audience`, with a JWKS file
    holding IDP's key "k1", and `more` arguments."""
    return fed(
        server,
        "oidc",
        "add",
        "--name",
        name,
        "--issuer",
        issuer,
        "--audience",
        audience,
        "--jwks",
        jwks_file(tmp_path, IDP.jwk("k1")),
        *more,
    )


def api_config(server: CofferServer, kind: str, uid: str) -> dict[str, Any]:
    with server.api() as c:
        r = c.get(f"{SAML_CONFIGS if kind == 'saml' else OIDC_CONFIGS}/{uid}")
    assert r.status_code == 200, r.text
    config: dict[str, Any] = r.json()["config"]
    return config


def api_status(server: CofferServer, kind: str, uid: str) -> int:
    with server.api() as c:
        return c.get(f"{SAML_CONFIGS if kind == 'saml' else OIDC_CONFIGS}/{uid}").status_code


def fingerprint(cfg: dict[str, Any], key: Key) -> str:
    """The API's fingerprint of `key`'s certificate in `cfg`."""
    pems = [p.strip() for p in cfg["certificates"]]
    return str(cfg["certificateFingerprints"][pems.index(key.cert_pem.strip())])


def saml_add(server: CofferServer, tmp_path: Path, *extra: str, key: Key = IDP) -> str:
    """A SAML config added by the CLI whose defaults point at this server; its id."""
    out = fed(
        server,
        "saml",
        "add",
        "--name",
        tag("idp"),
        "--entity-id",
        f"https://{tag('idp')}.example.test/saml",
        "--cert",
        pem_file(tmp_path, key),
        "--public-url",
        server.api_url,
        *extra,
    )
    return last_line_id(out)


def saml_exchange(server: CofferServer, cfg: dict[str, Any], key: Key, **spec: Any) -> httpx.Response:
    """What the IdP behind `cfg` would sign for Coffer right now, exchanged anonymously."""
    assertion = spec_for_config(cfg, **{"principal": ("alice",), "roles": ("DataEngineer",), **spec})
    body = {
        "durationSeconds": 300,
        "orgId": cfg["orgUid"],
        "configId": cfg["uid"],
        "samlResponse": to_b64(signed_response(assertion, key)),
    }
    return httpx.post(server.api_url + SAML_EXCHANGE, json=body, timeout=30)


def key_status(server: CofferServer, access_key_id: str) -> str:
    with server.api() as c:
        r = c.get(KEY_INFO + access_key_id)
    assert r.status_code == 200, r.text
    return str(r.json()["info"]["status"])


def config_events(server: CofferServer, config_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in server.audit()
        if e.get("event") == "federation_config_changed" and e.get("config_id") == config_id
    ]


@pytest.fixture(scope="module")
def org_id(server: CofferServer) -> str:
    """The default organization: the admin token's."""
    key = server.mint_key(duration=0)
    with server.api() as c:
        r = c.get(KEY_INFO + key["accessKeyId"])
    assert r.status_code == 200, r.text
    return str(r.json()["info"]["orgId"])


# --- SAML --------------------------------------------------------------------------------------


def test_saml_add_prints_the_id_last_and_the_api_serves_it(
    server: CofferServer, org_id: str, tmp_path: Path
) -> None:
    name, entity = tag("corp-okta"), f"https://{tag('idp')}.example.test/saml"
    out = fed(
        server,
        "saml",
        "add",
        "--name",
        name,
        "--entity-id",
        entity,
        "--cert",
        pem_file(tmp_path, IDP),
        "--description",
        "the corporate IdP",
        "--public-url",
        server.api_url,
    )
    uid = last_line_id(out)
    assert out.stdout.strip() == uid  # the summary is on stderr: ID=$(coffer ...) just works
    assert f"created SAML configuration {name} in organization {org_id}" in out.stderr
    assert f"{server.api_url}/saml/{org_id}" in out.stderr  # what to enter in the IdP

    cfg = api_config(server, "saml", uid)
    assert (cfg["uid"], cfg["orgUid"], cfg["name"], cfg["idpEntityId"]) == (uid, org_id, name, entity)
    assert cfg["spAudience"] == f"{server.api_url}/saml/{org_id}"
    assert cfg["recipient"] == f"{server.api_url}{SAML_EXCHANGE}"
    assert [c.strip() for c in cfg["certificates"]] == [IDP.cert_pem.strip()]
    assert cfg["description"] == "the corporate IdP" and cfg["active"] is True


def test_saml_add_json_is_the_api_form(server: CofferServer, tmp_path: Path) -> None:
    out = fed(
        server,
        "saml",
        "add",
        "--name",
        tag("json"),
        "--entity-id",
        "https://json.example.test",
        "--cert",
        pem_file(tmp_path, IDP),
        "--json",
    )
    data = json.loads(out.stdout)
    assert str(uuid.UUID(data["uid"])) == data["uid"]
    assert api_config(server, "saml", data["uid"]) == data


def test_default_audience_comes_from_public_url_or_host_and_port(
    server: CofferServer, org_id: str, tmp_path: Path
) -> None:
    cert = pem_file(tmp_path, IDP)

    def add(*flags: str) -> tuple[dict[str, Any], str]:
        out = fed(
            server,
            "saml",
            "add",
            "--name",
            tag("d"),
            "--entity-id",
            "https://d.example",
            "--cert",
            cert,
            *flags,
        )
        return api_config(server, "saml", last_line_id(out)), out.stderr

    # The server was started with --host 127.0.0.1 --api-port P: the same flags give its URL.
    cfg, stderr = add("--api-port", str(server.api_port))
    assert cfg["spAudience"] == f"{server.api_url}/saml/{org_id}"
    assert cfg["recipient"] == f"{server.api_url}{SAML_EXCHANGE}"
    assert "public_url is not set" in stderr  # the operator is told where the default came from
    # Nothing given: the settings' defaults (host 127.0.0.1, api_port 8480).
    cfg, _ = add()
    assert cfg["spAudience"] == f"http://127.0.0.1:8480/saml/{org_id}"
    # public_url wins, without its trailing slash.
    cfg, stderr = add("--public-url", "https://coffer.example.com/", "--api-port", "1")
    assert cfg["spAudience"] == f"https://coffer.example.com/saml/{org_id}"
    assert cfg["recipient"] == f"https://coffer.example.com{SAML_EXCHANGE}"
    assert "public_url is not set" not in stderr
    # Explicit values are kept as given.
    cfg, _ = add("--audience", "urn:coffer:test", "--recipient", "https://coffer.example/acs")
    assert (cfg["spAudience"], cfg["recipient"]) == ("urn:coffer:test", "https://coffer.example/acs")

    help_text = fed(server, "saml", "add", "--help").stdout
    assert "<public-url>/saml/<org-id>" in " ".join(help_text.split())


def test_a_pem_file_with_several_certificates_adds_them_all(server: CofferServer, tmp_path: Path) -> None:
    bundle = pem_file(tmp_path, IDP, IDP_NEXT)
    uid = saml_add(server, tmp_path, "--cert", bundle, "--cert", pem_file(tmp_path, OTHER))
    cfg = api_config(server, "saml", uid)
    # IDP appears in both files and is stored once.
    assert [c.strip() for c in cfg["certificates"]] == [k.cert_pem.strip() for k in (IDP, IDP_NEXT, OTHER)]


def test_saml_list_and_show(server: CofferServer, tmp_path: Path) -> None:
    uid = saml_add(server, tmp_path, "--cert", pem_file(tmp_path, IDP_NEXT))
    cfg = api_config(server, "saml", uid)
    fp, fp_next = fingerprint(cfg, IDP), fingerprint(cfg, IDP_NEXT)

    table = fed(server, "saml", "list").stdout
    header = next(line for line in table.splitlines() if "Config ID" in line)
    for column in ("Name", "IdP Entity ID", "Audience", "Active", "Certificates"):
        assert column in header
    row = next(line for line in table.splitlines() if uid in line)
    assert cfg["name"] in row and cfg["idpEntityId"] in row and cfg["spAudience"] in row
    assert " yes " in row
    short = ":".join(fp.split(":")[:8])
    assert short in row and ":".join(fp_next.split(":")[:8]) in row and fp not in row

    listed = json.loads(fed(server, "saml", "list", "--json").stdout)
    assert cfg in listed

    shown = fed(server, "saml", "show", uid).stdout
    assert fp in shown and fp_next in shown and "CN=cli-idp.idp.example.test" in shown
    assert cfg["recipient"] in shown and cfg["name"] in shown
    assert json.loads(fed(server, "saml", "show", uid, "--json").stdout) == cfg


def test_certificate_rotation_with_update(server: CofferServer, tmp_path: Path) -> None:
    uid = saml_add(server, tmp_path)
    cfg = api_config(server, "saml", uid)
    assert saml_exchange(server, cfg, IDP).status_code == 200
    assert saml_exchange(server, cfg, IDP_NEXT).status_code == 401

    # The IdP's next certificate is trusted before it signs with it ...
    out = fed(server, "saml", "update", uid, "--add-cert", pem_file(tmp_path, IDP_NEXT))
    assert "certificates" in out.stdout
    both = api_config(server, "saml", uid)
    assert len(both["certificates"]) == 2
    assert saml_exchange(server, both, IDP).status_code == 200
    assert saml_exchange(server, both, IDP_NEXT).status_code == 200

    # ... and the old one is dropped by (a prefix of) its fingerprint, colons optional.
    old = fingerprint(both, IDP).replace(":", "")[:16].lower()
    fed(server, "saml", "update", uid, "--remove-cert", old)
    after = api_config(server, "saml", uid)
    assert after["certificateFingerprints"] == [fingerprint(both, IDP_NEXT)]
    refused = saml_exchange(server, after, IDP)
    assert refused.status_code == 401 and refused.json()["message"].startswith("signature: ")
    assert saml_exchange(server, after, IDP_NEXT).status_code == 200

    # Both at once: swap the signing certificate in one command.
    fed(
        server,
        "saml",
        "update",
        uid,
        "--add-cert",
        pem_file(tmp_path, OTHER),
        "--remove-cert",
        fingerprint(after, IDP_NEXT),
    )
    swapped = api_config(server, "saml", uid)
    assert [c.strip() for c in swapped["certificates"]] == [OTHER.cert_pem.strip()]


def test_saml_update_fields_and_active_state(server: CofferServer, tmp_path: Path) -> None:
    uid = saml_add(server, tmp_path)
    name = tag("renamed")
    fed(
        server,
        "saml",
        "update",
        uid,
        "--name",
        name,
        "--entity-id",
        "https://moved.example.test/saml",
        "--description",
        "moved",
        "--audience",
        "urn:coffer:moved",
        "--recipient",
        "https://coffer.example/acs",
    )
    cfg = api_config(server, "saml", uid)
    assert (cfg["name"], cfg["idpEntityId"], cfg["description"]) == (
        name,
        "https://moved.example.test/saml",
        "moved",
    )
    assert (cfg["spAudience"], cfg["recipient"]) == ("urn:coffer:moved", "https://coffer.example/acs")

    out = fed(server, "saml", "update", uid, "--inactive", "--json")
    inactive = json.loads(out.stdout)
    assert inactive["active"] is False and "deactivatedAt" in inactive
    assert api_config(server, "saml", uid) == inactive
    active = json.loads(fed(server, "saml", "update", uid, "--active", "--json").stdout)
    assert active["active"] is True and "deactivatedAt" not in active


def test_saml_config_from_the_cli_is_used_by_the_server_and_remove_revokes(
    server: CofferServer, tmp_path: Path
) -> None:
    uid = saml_add(server, tmp_path)
    cfg = api_config(server, "saml", uid)
    r = saml_exchange(server, cfg, IDP)
    assert r.status_code == 200, r.text
    key = r.json()
    assert key["principalName"] == "saml/alice"
    assert key_status(server, key["accessKeyId"]) == "ACTIVE"

    out = fed(server, "saml", "remove", uid)
    assert out.stdout.strip() == f"removed SAML configuration {uid}; revoked 1 access key minted through it"
    assert key_status(server, key["accessKeyId"]) == "REVOKED"
    again = saml_exchange(server, cfg, IDP)
    assert again.status_code == 401, again.text
    assert api_status(server, "saml", uid) == 404
    assert "not found" in one_line_error(fed(server, "saml", "show", uid, check=False))


def test_saml_changes_are_audited(server: CofferServer, tmp_path: Path) -> None:
    uid = saml_add(server, tmp_path)
    fed(server, "saml", "update", uid, "--description", "x")
    fed(server, "saml", "remove", uid)
    created, updated, deleted = config_events(server, uid)
    assert created["action"] == "cwobject:CreateSAMLConfig" and created["config_name"]
    assert updated["action"] == "cwobject:UpdateSAMLConfig" and updated["changed"] == ["description"]
    assert deleted["action"] == "cwobject:DeleteSAMLConfig" and deleted["revoked_keys"] == 0
    for e in (created, updated, deleted):
        assert e["actor"].startswith("cli") and e["org_id"]


# --- OIDC --------------------------------------------------------------------------------------


def test_oidc_add_list_show_update_remove(server: CofferServer, org_id: str, tmp_path: Path) -> None:
    name, issuer, audience = tag("k8s"), f"https://{tag('oidc')}.example.test", tag("aud")
    out = oidc_add(server, tmp_path, name, issuer, audience, "--description", "cluster")
    uid = last_line_id(out)
    cfg = api_config(server, "oidc", uid)
    assert (cfg["orgUid"], cfg["name"], cfg["issuerUrl"], cfg["audience"]) == (org_id, name, issuer, audience)
    assert cfg["jwks"] == {"keys": [IDP.jwk("k1")]} and cfg["description"] == "cluster"

    table = fed(server, "oidc", "list").stdout
    header = next(line for line in table.splitlines() if "Config ID" in line)
    for column in ("Name", "Issuer", "Audience", "Active", "Keys"):
        assert column in header
    row = next(line for line in table.splitlines() if uid in line)
    assert name in row and issuer in row and audience in row and " yes " in row and " inline " in row
    assert cfg in json.loads(fed(server, "oidc", "list", "--json").stdout)
    shown = fed(server, "oidc", "show", uid).stdout
    assert issuer in shown and "k1" in shown
    assert json.loads(fed(server, "oidc", "show", uid, "--json").stdout) == cfg

    # Back to discovery, then other fields.
    fed(server, "oidc", "update", uid, "--discovery")
    assert "jwks" not in api_config(server, "oidc", uid)
    row = next(line for line in fed(server, "oidc", "list").stdout.splitlines() if uid in line)
    assert " discovery " in row
    new_issuer = f"https://{tag('moved')}.example.test/oidc"
    fed(
        server,
        "oidc",
        "update",
        uid,
        "--issuer",
        new_issuer,
        "--audience",
        "aud2",
        "--name",
        f"{name}-2",
        "--description",
        "",
        "--jwks",
        jwks_file(tmp_path, IDP_NEXT.jwk("k2")),
        "--inactive",
    )
    cfg = api_config(server, "oidc", uid)
    assert (cfg["issuerUrl"], cfg["audience"], cfg["name"], cfg["description"]) == (
        new_issuer,
        "aud2",
        f"{name}-2",
        "",
    )
    assert cfg["jwks"] == {"keys": [IDP_NEXT.jwk("k2")]} and cfg["active"] is False

    out = fed(server, "oidc", "remove", uid)
    assert out.stdout.strip() == f"removed OIDC configuration {uid}; revoked 0 access keys minted through it"
    assert api_status(server, "oidc", uid) == 404
    actions = [e["action"] for e in config_events(server, uid)]
    assert actions == [
        "cwobject:CreateOIDCConfig",
        "cwobject:UpdateOIDCConfig",
        "cwobject:UpdateOIDCConfig",
        "cwobject:DeleteOIDCConfig",
    ]


def test_oidc_config_from_the_cli_is_used_by_the_server(
    server: CofferServer, org_id: str, tmp_path: Path
) -> None:
    issuer, audience = f"https://{tag('oidc')}.example.test", tag("aud")
    out = oidc_add(server, tmp_path, tag("ci"), issuer, audience, "--json")
    uid = json.loads(out.stdout)["uid"]

    def exchange() -> httpx.Response:
        token = mint_jwt(IDP, issuer=issuer, aud=audience, now=datetime.now(UTC), jti=tag("jti"))
        body = {"durationSeconds": 300, "orgId": org_id, "oidcToken": token}
        return httpx.post(server.api_url + OIDC_EXCHANGE, json=body, timeout=30)

    r = exchange()
    assert r.status_code == 200, r.text
    key = r.json()
    assert "revoked 1 access key " in fed(server, "oidc", "remove", uid).stdout
    assert key_status(server, key["accessKeyId"]) == "REVOKED"
    assert exchange().status_code == 401


# --- organizations -----------------------------------------------------------------------------


def test_org_option_scopes_every_command(server: CofferServer, tmp_path: Path) -> None:
    other = server.cli("admin", "org", "create", tag("team")).stdout.strip()
    uid = saml_add(server, tmp_path, "--org", other)
    assert json.loads(fed(server, "saml", "show", uid, "--org", other, "--json").stdout)["orgUid"] == other
    assert uid not in fed(server, "saml", "list").stdout
    assert uid in fed(server, "saml", "list", "--org", other).stdout
    assert "not found" in one_line_error(fed(server, "saml", "remove", uid, check=False))
    fed(server, "saml", "remove", uid, "--org", other)
    assert "not found" in one_line_error(fed(server, "saml", "list", "--org", "no-such-org", check=False))


# --- bad input ---------------------------------------------------------------------------------


def test_bad_saml_input_is_one_clear_line(server: CofferServer, tmp_path: Path) -> None:
    good = pem_file(tmp_path, IDP)
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello, I am not a certificate\n")
    garbled = tmp_path / "garbled.pem"
    garbled.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    binary = tmp_path / "cert.der"
    binary.write_bytes(b"\x30\x82\xff\xfe\x00\x81")
    weak = pem_file(tmp_path, rsa_key("cli-weak", 1024))
    taken = tag("taken")
    fed(server, "saml", "add", "--name", taken, "--entity-id", "https://t.example", "--cert", good)

    def add(*args: str, name: str | None = None) -> str:
        base = ["saml", "add", "--name", name or tag("bad"), "--entity-id", "https://b.example"]
        return one_line_error(fed(server, *base, *args, check=False))

    before = json.loads(fed(server, "saml", "list", "--json").stdout)
    missing = str(tmp_path / "missing.pem")
    assert (
        add("--cert", missing) == f"Error: cannot read certificate file {missing}: No such file or directory"
    )
    assert "cannot read certificate file" in add("--cert", str(tmp_path))
    assert add("--cert", str(not_pem)) == (
        f"Error: {not_pem}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)"
    )
    assert add("--cert", str(garbled)) == f"Error: {garbled}: not a valid PEM X.509 certificate"
    assert str(binary) in add("--cert", str(binary))
    assert add("--cert", weak) == f"Error: {weak}: RSA keys must be at least 2048 bits"
    assert add("--cert", good, name="bad name").startswith("Error: invalid --name: ")
    assert add("--cert", good, name=taken) == (
        f"Error: a SAML configuration named {taken!r} already exists in the organization"
    )
    assert add("--cert", good, "--entity-id", "").startswith("Error: invalid --entity-id: ")
    six = [pem_file(tmp_path, rsa_key(f"cli-six-{i}")) for i in range(6)]
    assert add(*[w for p in six for w in ("--cert", p)]).startswith("Error: invalid --cert: ")
    assert add("--cert", good, "--org", "no-such-org") == "Error: organization 'no-such-org' not found"
    assert json.loads(fed(server, "saml", "list", "--json").stdout) == before  # nothing half-made

    unknown = str(uuid.uuid4())
    for args in (["show", unknown], ["remove", unknown], ["update", unknown, "--description", "x"]):
        line = one_line_error(fed(server, "saml", *args, check=False))
        assert line == f"Error: SAML configuration {unknown!r} not found", args

    uid = saml_add(server, tmp_path)
    cfg = api_config(server, "saml", uid)

    def update(*args: str) -> str:
        return one_line_error(fed(server, "saml", "update", uid, *args, check=False))

    assert update() == "Error: nothing to update: give at least one option (see --help)"
    assert "no configured certificate has it" in update("--remove-cert", "00" * 8)
    assert "at least 8 hex digits" in update("--remove-cert", "zz")
    assert "cannot remove every certificate" in update("--remove-cert", fingerprint(cfg, IDP))
    assert "cannot read certificate file" in update("--add-cert", missing)
    assert update("--name", taken) == (
        f"Error: a SAML configuration named {taken!r} already exists in the organization"
    )
    assert api_config(server, "saml", uid) == cfg  # refused updates change nothing


def test_bad_oidc_input_is_one_clear_line(server: CofferServer, tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"keys": [')
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [{**IDP.jwk("k1"), "d": "c2VjcmV0"}]}))
    not_a_set = tmp_path / "list.json"
    not_a_set.write_text("[]")
    taken = tag("taken")
    fed(server, "oidc", "add", "--name", taken, "--issuer", "https://taken.example.test", "--audience", "a")

    def add(*args: str, name: str | None = None, issuer: str = "https://ok.example.test") -> str:
        base = ["oidc", "add", "--name", name or tag("bad"), "--issuer", issuer, "--audience", tag("aud")]
        return one_line_error(fed(server, *base, *args, check=False))

    assert add(issuer="ftp://idp.example").startswith("Error: invalid --issuer: ")
    assert add(issuer="http://idp.example.com").startswith("Error: invalid --issuer: ")
    assert add(issuer="https://idp.example.com/?q=1").startswith("Error: invalid --issuer: ")
    assert add("--jwks", str(bad_json)).startswith(f"Error: {bad_json}: not valid JSON (")
    assert add("--jwks", str(private)) == f"Error: {private}: the JWK Set must contain public keys only"
    assert add("--jwks", str(not_a_set)).startswith(f"Error: {not_a_set}: JWK Set must be a JSON object")
    missing = str(tmp_path / "missing.json")
    assert add("--jwks", missing) == f"Error: cannot read JWKS file {missing}: No such file or directory"
    assert add(name=taken).startswith(f"Error: an OIDC configuration named {taken!r}")

    unknown = str(uuid.uuid4())
    for args in (["show", unknown], ["remove", unknown], ["update", unknown, "--audience", "x"]):
        line = one_line_error(fed(server, "oidc", *args, check=False))
        assert line == f"Error: OIDC configuration {unknown!r} not found", args

    uid = last_line_id(
        fed(
            server, "oidc", "add", "--name", tag("u"), "--issuer", "https://u.example.test", "--audience", "a"
        )
    )

    def update(*args: str) -> str:
        return one_line_error(fed(server, "oidc", "update", uid, *args, check=False))

    assert update() == "Error: nothing to update: give at least one option (see --help)"
    assert "exclude each other" in update("--jwks", str(bad_json), "--discovery")
    assert update("--issuer", "not a url").startswith("Error: invalid --issuer: ")
    assert update("--jwks", str(bad_json)).startswith(f"Error: {bad_json}: not valid JSON")
    assert update("--name", taken).startswith(f"Error: an OIDC configuration named {taken!r}")


def test_every_command_is_in_the_help() -> None:
    for kind in ("saml", "oidc"):
        text = subprocess.run(
            [*coffer_cmd(), "federation", kind, "--help"], capture_output=True, text=True, check=True
        ).stdout
        for command in ("add", "list", "show", "update", "remove"):
            assert re.search(rf"^\s+{command}\s", text, re.MULTILINE), text
