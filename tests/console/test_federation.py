"""The Workload Federation page: create SAML and OIDC configurations, the Config ID and the
IdP settings the dialog shows (used by a real signed assertion), the server's refusals shown
in the dialog, deactivate and activate (which revokes minted keys), delete with a typed
confirmation, and a user without the permission."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.support.console import confirm_by_typing, new_context, row, shot, sign_in
from tests.support.harness import CofferServer
from tests.support.idp import rsa_key, signed_response, spec_for_config, to_b64
from tests.support.s3 import unique

pytestmark = pytest.mark.usefixtures("clipboard")

SAML = "/v1beta1/workload-federation/saml-configs"
OIDC = "/v1beta1/workload-federation/oidc-configs"
EXCHANGE = "/v1/cwobject/temporary-credentials/saml"
IDP = rsa_key("console-idp")
OIDC_KEY = rsa_key("console-oidc")


def create_dialog(page: Page, kind: str, name: str, fields: dict[str, str]) -> Locator:
    """Opens the "Create <kind> configuration" dialog and types `name` and `fields` (label: value)
    into it; nothing is submitted."""
    page.get_by_role("button", name=f"Create {kind} configuration").click()
    dialog = page.get_by_role("dialog", name=f"Create {kind} configuration")
    dialog.get_by_label("Name", exact=True).fill(name)
    for label, value in fields.items():
        dialog.get_by_label(label).fill(value)
    return dialog


def configs(server: CofferServer, path: str) -> dict[str, dict[str, Any]]:
    with server.api() as c:
        r = c.get(path)
    assert r.status_code == 200, r.text
    return {cfg["name"]: cfg for cfg in r.json()["configs"]}


def create_via_api(server: CofferServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    with server.api() as c:
        r = c.post(path, json=body)
    assert r.status_code == 200, r.text
    config: dict[str, Any] = r.json()["config"]
    return config


def saml_body(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "idpEntityId": f"https://{name}.example.test/saml/metadata",
        "certificates": [IDP.cert_pem],
    }


def saml_exchange(server: CofferServer, cfg: dict[str, Any]) -> str:
    """A workload's anonymous exchange, with an assertion the IdP behind `cfg` would issue
    for Coffer (entity ID, audience, recipient as the config says); the minted key's ID."""
    spec = spec_for_config(cfg)
    body = {
        "durationSeconds": 600,
        "orgId": cfg["orgUid"],
        "configId": cfg["uid"],
        "samlResponse": to_b64(signed_response(spec, IDP)),
    }
    r = httpx.post(server.api_url + EXCHANGE, json=body, timeout=30)
    assert r.status_code == 200, r.text
    key_id: str = r.json()["accessKeyId"]
    return key_id


def assert_key_status(server: CofferServer, key_id: str, status: str) -> None:
    with server.api() as c:
        r = c.get(f"/v1/cwobject/access-key/{key_id}")
    assert r.status_code == 200, r.text
    assert r.json()["info"]["status"] == status, r.json()


def open_federation(page: Page, token: str) -> None:
    sign_in(page, token)
    page.get_by_role("link", name="Workload Federation").click()
    expect(page.get_by_role("heading", name="Workload Federation", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Workload Federation")).to_have_attribute("aria-current", "page")


def section(page: Page, kind: str) -> Locator:
    return page.get_by_role("region", name=f"{kind} configurations")


def row_action(page: Page, kind: str, name: str, action: str) -> None:
    row(page, name).get_by_role("button", name=f"Actions for {kind} configuration {name}").click()
    page.get_by_role("menuitem", name=action).click()


def test_create_a_saml_configuration_and_use_what_the_dialog_shows(
    page: Page, context: BrowserContext, server: CofferServer
) -> None:
    open_federation(page, server.admin_token)
    shot(page, "federation")
    name = unique("okta")
    entity = f"https://{name}.example.test/saml/metadata"
    dialog = create_dialog(
        page,
        "SAML",
        name,
        {
            "IdP Entity ID": entity,
            "X.509 Certificate (PEM)": IDP.cert_pem,
            "Description (optional)": "The <b>corporate</b> IdP",
        },
    )
    shot(page, "federation-create-saml")
    dialog.get_by_role("button", name="Create", exact=True).click()

    created = page.get_by_role("dialog", name=f"SAML configuration {name} created")
    expect(created).to_be_visible()
    shot(page, "federation-saml-created")
    config_id = created.get_by_label("Config ID", exact=True).input_value()
    org_id = created.get_by_label("Organization ID", exact=True).input_value()
    audience = created.get_by_label("SP audience (Entity ID)", exact=True).input_value()
    recipient = created.get_by_label("Recipient (ACS URL)", exact=True).input_value()
    expect(created.get_by_label("Config ID", exact=True)).to_be_focused()
    # The dialog shows exactly what the API stores.
    stored = configs(server, SAML)[name]
    assert config_id == stored["uid"]
    assert org_id == stored["orgUid"]
    assert audience == stored["spAudience"] and audience
    assert recipient == stored["recipient"] and recipient.endswith("/v1/cwobject/temporary-credentials/saml")
    assert stored["idpEntityId"] == entity
    assert stored["description"] == "The <b>corporate</b> IdP"
    assert stored["active"] is True
    created.get_by_role("button", name="Copy Config ID").click()
    assert page.evaluate("navigator.clipboard.readText()") == config_id
    created.get_by_role("button", name="Done").click()
    expect(page.get_by_role("dialog")).to_have_count(0)

    # The row: name, config ID (copyable), entity ID, audience, status.
    r = section(page, "SAML").locator("tr", has_text=name)
    for text in (config_id, entity, audience, "Active"):
        expect(r).to_contain_text(text)
    r.get_by_role("button", name=f"Copy Config ID of {name}").click()
    expect(page.get_by_text(f"Config ID of {name} copied to the clipboard")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == config_id
    # Data is text, never markup.
    expect(page.locator("main b")).to_have_count(0)

    # An IdP set up with what the dialog showed: its signed assertion buys a key.
    shown = {
        "uid": config_id,
        "orgUid": org_id,
        "idpEntityId": entity,
        "spAudience": audience,
        "recipient": recipient,
    }
    assert_key_status(server, saml_exchange(server, shown), "ACTIVE")
    assert not page.errors  # type: ignore[attr-defined]


def test_create_an_oidc_configuration_with_inline_jwks(page: Page, server: CofferServer) -> None:
    open_federation(page, server.admin_token)
    name = unique("gha")
    issuer = f"https://{name}.issuer.example.test"
    dialog = create_dialog(
        page,
        "OIDC",
        name,
        {"Issuer URL": issuer, "Audience": "coffer-console-tests", "Description (optional)": "CI workloads"},
    )
    jwks = dialog.get_by_label("JWKS (optional)")
    # Not JSON: caught before anything is sent, shown at the field.
    jwks.fill('{"keys": [')
    dialog.get_by_role("button", name="Create", exact=True).click()
    expect(dialog.locator(".alert")).to_contain_text("The JWKS is not valid JSON")
    expect(jwks).to_have_attribute("aria-invalid", "true")
    assert name not in configs(server, OIDC)
    jwk = OIDC_KEY.jwk("k1")
    jwks.fill(json.dumps({"keys": [jwk]}, indent=2))
    shot(page, "federation-create-oidc")
    dialog.get_by_role("button", name="Create", exact=True).click()

    created = page.get_by_role("dialog", name=f"OIDC configuration {name} created")
    config_id = created.get_by_label("Config ID", exact=True).input_value()
    expect(created).to_contain_text(issuer)
    stored = configs(server, OIDC)[name]
    assert config_id == stored["uid"]
    assert stored["issuerUrl"] == issuer
    assert stored["audience"] == "coffer-console-tests"
    assert stored["jwks"]["keys"][0]["kid"] == "k1"
    created.get_by_role("button", name="Done").click()
    r = section(page, "OIDC").locator("tr", has_text=name)
    for text in (config_id, issuer, "coffer-console-tests", "Active"):
        expect(r).to_contain_text(text)
    # The SAML table does not list it.
    expect(section(page, "SAML").locator("tr", has_text=name)).to_have_count(0)
    shot(page, "federation-with-configs")
    assert not page.errors  # type: ignore[attr-defined]


def test_a_bad_certificate_shows_the_servers_error_and_creates_nothing(
    page: Page, server: CofferServer
) -> None:
    open_federation(page, server.admin_token)
    name = unique("broken")
    bad = "-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
    entity = "https://broken.example.test"
    body = {"name": name, "idpEntityId": entity, "certificates": bad, "description": ""}
    with server.api() as c:
        expected = c.post(SAML, json=body)
    assert expected.status_code == 400, expected.text
    message = expected.json()["message"]

    dialog = create_dialog(page, "SAML", name, {"IdP Entity ID": entity, "X.509 Certificate (PEM)": bad})
    dialog.get_by_role("button", name="Create", exact=True).click()
    expect(dialog.locator(".alert")).to_have_text(message)
    expect(dialog.get_by_label("X.509 Certificate (PEM)")).to_have_attribute("aria-invalid", "true")
    shot(page, "federation-bad-certificate")
    # The dialog stays open with what was typed; a fix goes through.
    expect(dialog.get_by_label("Name", exact=True)).to_have_value(name)
    assert name not in configs(server, SAML)
    dialog.get_by_label("X.509 Certificate (PEM)").fill(IDP.cert_pem)
    dialog.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_role("dialog", name=f"SAML configuration {name} created")).to_be_visible()
    assert name in configs(server, SAML)


def test_a_duplicate_name_is_refused_in_the_dialog(page: Page, server: CofferServer) -> None:
    name = unique("twice")
    create_via_api(server, SAML, saml_body(name))
    open_federation(page, server.admin_token)
    dialog = create_dialog(
        page,
        "SAML",
        name,
        {"IdP Entity ID": "https://other.example.test", "X.509 Certificate (PEM)": IDP.cert_pem},
    )
    dialog.get_by_role("button", name="Create", exact=True).click()
    expect(dialog.locator(".alert")).to_contain_text(name)
    expect(section(page, "SAML").locator("tr", has_text=name)).to_have_count(1)


def test_deactivate_revokes_minted_keys_then_activate(page: Page, server: CofferServer) -> None:
    name = unique("toggle")
    cfg = create_via_api(server, SAML, saml_body(name))
    key_id = saml_exchange(server, cfg)

    open_federation(page, server.admin_token)
    r = section(page, "SAML").locator("tr", has_text=name)
    expect(r).to_contain_text("Active")
    row_action(page, "SAML", name, "Deactivate…")
    dialog = page.get_by_role("dialog", name="Deactivate SAML configuration")
    expect(dialog).to_contain_text("revoked")
    dialog.get_by_role("button", name="Cancel").click()
    assert configs(server, SAML)[name]["active"] is True
    row_action(page, "SAML", name, "Deactivate…")
    shot(page, "federation-deactivate")
    deactivate = page.get_by_role("dialog", name="Deactivate SAML configuration")
    deactivate.get_by_role("button", name="Deactivate").click()
    expect(page.get_by_text(f"SAML configuration {name} deactivated")).to_be_visible()
    expect(r).to_contain_text("Inactive")
    stored = configs(server, SAML)[name]
    assert stored["active"] is False and stored["deactivatedAt"]
    assert_key_status(server, key_id, "REVOKED")

    row_action(page, "SAML", name, "Activate…")
    activate = page.get_by_role("dialog", name="Activate SAML configuration")
    activate.get_by_role("button", name="Activate").click()
    expect(page.get_by_text(f"SAML configuration {name} activated")).to_be_visible()
    expect(r.locator(".badge")).to_have_text("Active")
    stored = configs(server, SAML)[name]
    assert stored["active"] is True and "deactivatedAt" not in stored
    assert not page.errors  # type: ignore[attr-defined]


def test_delete_with_typed_confirmation(page: Page, server: CofferServer) -> None:
    name = unique("gone")
    create_via_api(server, OIDC, {"name": name, "issuerUrl": f"https://{name}.example.test", "audience": "a"})
    open_federation(page, server.admin_token)
    r = section(page, "OIDC").locator("tr", has_text=name)
    expect(r).to_have_count(1)
    row_action(page, "OIDC", name, "Delete…")
    dialog = page.get_by_role("dialog", name="Delete OIDC configuration")
    expect(dialog).to_contain_text("Every access key minted through this configuration is revoked")
    confirm = confirm_by_typing(dialog, "Delete", f"Type the configuration name {name} to confirm", name)
    shot(page, "federation-delete")
    confirm.click()
    expect(page.get_by_text(f"OIDC configuration {name} deleted")).to_be_visible()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(r).to_have_count(0)
    assert name not in configs(server, OIDC)


def test_a_user_without_permission_sees_the_servers_refusal(browser: Any, server: CofferServer) -> None:
    principal, token = server.create_user(unique("viewer"))
    ctx = new_context(browser, server)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    open_federation(page, token)
    saml = section(page, "SAML").get_by_role("alert")
    expect(saml).to_contain_text("The SAML configurations could not be listed.")
    expect(saml).to_contain_text(f"{principal} is not allowed to perform cwobject:ListSAMLConfigs")
    expect(section(page, "OIDC").get_by_role("alert")).to_contain_text("cwobject:ListOIDCConfigs")
    shot(page, "federation-forbidden")
    # Creating is refused by the server too, with its message in the dialog.
    name = unique("sneaky")
    dialog = create_dialog(page, "OIDC", name, {"Issuer URL": "https://sneaky.example.test", "Audience": "a"})
    dialog.get_by_role("button", name="Create", exact=True).click()
    expect(dialog.locator(".alert")).to_contain_text(
        f"{principal} is not allowed to perform cwobject:CreateOIDCConfig"
    )
    assert name not in configs(server, OIDC)
    assert not errors
    ctx.close()
