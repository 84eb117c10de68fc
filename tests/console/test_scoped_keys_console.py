"""The Create Key dialog's optional "Scope (JSON)": a scoped key made in the console is narrowed
on S3; bad JSON and scopes the API refuses are shown at the field, and nothing is created."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from tests.support.console import expect_refused_at, open_create_key, shot, sign_in
from tests.support.harness import CofferServer
from tests.support.policies import denied
from tests.support.s3 import s3_client, unique

pytestmark = pytest.mark.usefixtures("s3_allowed")


def test_create_a_scoped_key_and_use_it(page: Page, server: CofferServer) -> None:
    bucket = unique("console-scope")
    s3_client(server).create_bucket(Bucket=bucket)
    sign_in(page, server.admin_token)
    page.get_by_role("button", name="Create Key").click()
    dialog = page.get_by_role("dialog", name="Create Key")
    dialog.get_by_label("Name", exact=True).fill(unique("scoped"))
    dialog.get_by_role("switch", name="Enable Permanent Key").check()
    scope = {
        "statements": [
            {
                "name": "ci",
                "effect": "Allow",
                "actions": ["s3:PutObject"],
                "resources": [f"{bucket}/builds/*"],
            }
        ]
    }
    dialog.get_by_label("Scope (JSON)").fill(json.dumps(scope, indent=2))
    shot(page, "create-scoped-key-dialog")
    dialog.get_by_role("button", name="Create", exact=True).click()
    created = page.get_by_role("dialog", name="Key created")
    expect(created.get_by_test_id("key-scope")).to_contain_text("Scoped: 1 statement")
    key = {
        "accessKeyId": created.get_by_label("Access Key ID", exact=True).input_value(),
        "secretKey": created.get_by_label("Secret Key", exact=True).input_value(),
    }
    scoped = s3_client(server, key)
    scoped.put_object(Bucket=bucket, Key="builds/console", Body=b"ok")
    assert denied(lambda: scoped.put_object(Bucket=bucket, Key="elsewhere", Body=b"no"))
    # the admin who made it may write there: the scope took it away
    s3_client(server).put_object(Bucket=bucket, Key="elsewhere", Body=b"yes")
    with server.api() as c:
        info = c.get(
            f"/v1/cwobject/access-key/{key['accessKeyId']}", headers={"X-Coffer-Extensions": "scope"}
        )
    assert info.json()["info"]["scope"] == scope
    # an unscoped key's dialog says nothing about scopes
    created.get_by_role("button", name="Done").click()
    dialog, create = open_create_key(page)
    dialog.get_by_role("switch", name="Enable Permanent Key").check()
    create.click()
    created = page.get_by_role("dialog", name="Key created")
    expect(created.get_by_text("It will not be shown again")).to_be_visible()
    expect(created.get_by_test_id("key-scope")).to_have_count(0)
    assert not page.errors  # type: ignore[attr-defined]


def test_bad_scopes_are_shown_at_the_field(page: Page, server: CofferServer) -> None:
    sign_in(page, server.admin_token)
    with server.api() as c:
        before = len(c.get("/v1/cwobject/access-key", params={"limit": 1000}).json()["info"])
    dialog, create = open_create_key(page)
    field = dialog.get_by_label("Scope (JSON)")
    expect_refused_at(dialog, create, field, '{"statements": [', "The scope is not valid JSON")
    bad = {"statements": [{"name": "a", "effect": "Allow", "actions": ["cwobject:*"], "resources": ["*"]}]}
    field.fill(json.dumps(bad))
    create.click()
    expect(dialog.get_by_text("invalid scope.statements[0].actions[0]")).to_be_visible()
    expect(field).to_be_focused()
    shot(page, "create-key-invalid-scope")
    expect(page.get_by_role("dialog", name="Key created")).to_have_count(0)
    with server.api() as c:
        assert len(c.get("/v1/cwobject/access-key", params={"limit": 1000}).json()["info"]) == before
