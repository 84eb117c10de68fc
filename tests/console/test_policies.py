"""The Organization Access Policies page: statement builder, JSON view, search, delete,
server validation shown inline, and a policy edit that changes what another user may do."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.console import expect_create_key_refused, new_context, row, shot, sign_in
from tests.support.harness import CofferServer
from tests.support.s3 import unique


def policies(server: CofferServer) -> dict[str, Any]:
    with server.api() as c:
        r = c.get("/v1/cwobject/access-policy")
        r.raise_for_status()
        return {p["name"]: p for p in r.json()["policies"]}


def create_get_object_policy(server: CofferServer, name: str) -> dict[str, Any]:
    """Create, through the API, the org policy `name` whose one statement "a" allows
    s3:GetObject on everything to everyone; return the document."""
    doc = {
        "version": "v1alpha1",
        "name": name,
        "statements": [
            {
                "name": "a",
                "effect": "Allow",
                "actions": ["s3:GetObject"],
                "resources": ["*"],
                "principals": ["*"],
            }
        ],
    }
    with server.api() as c:
        c.post("/v1/cwobject/access-policy", json={"policy": doc}).raise_for_status()
    return doc


def open_policies(page: Page, server: CofferServer) -> None:
    sign_in(page, server.admin_token)
    page.get_by_role("link", name="Organization Access Policies").click()
    expect(page.get_by_role("heading", name="Organization Access Policies")).to_be_visible()


def add_chips(statement: Locator, label: str, *values: str) -> None:
    box = statement.get_by_label(label, exact=True)
    for value in values:
        box.fill(value)
        box.press("Enter")
    for value in values:
        expect(statement.get_by_role("list", name=f"{label} added")).to_contain_text(value)


def test_create_a_policy_with_the_statement_builder(page: Page, server: CofferServer) -> None:
    open_policies(page, server)
    shot(page, "access-policies")
    name = unique("readers")
    page.get_by_role("link", name="Create Policy").click()
    expect(page.get_by_role("heading", name="Create Policy")).to_be_visible()
    page.get_by_label("Policy Name").fill(name)
    first = page.locator("fieldset.statement").nth(0)
    first.get_by_label("Statement name").fill("read-data")
    first.get_by_label("Allow access").check()
    add_chips(first, "Principals", "*")
    add_chips(first, "Actions", "s3:GetObject", "s3:ListBucket")
    add_chips(first, "Resources", "data-bucket", "data-bucket/*")
    # Remove a chip again.
    first.get_by_role("button", name="Remove s3:ListBucket from Actions").click()
    expect(first.get_by_role("list", name="Actions added")).not_to_contain_text("s3:ListBucket")

    # Add a second statement, then remove it: one statement is left.
    page.get_by_role("button", name="+ Add Statement").click()
    expect(page.locator("fieldset.statement")).to_have_count(2)
    second = page.locator("fieldset.statement").nth(1)
    second.get_by_label("Statement name").fill("temporary")
    second.get_by_label("Deny access").check()
    shot(page, "policy-builder")
    second.get_by_role("button", name="Remove statement 2").click()
    expect(page.locator("fieldset.statement")).to_have_count(1)

    page.get_by_role("button", name="Create policy").click()
    expect(page.get_by_text(f"Policy {name} created")).to_be_visible()
    expect(page.get_by_role("heading", name="Organization Access Policies")).to_be_visible()
    r = row(page, name)
    expect(r).to_contain_text("s3:GetObject")
    stored = policies(server)[name]
    assert stored["version"] == "v1alpha1"
    assert stored["statements"] == [
        {
            "name": "read-data",
            "effect": "Allow",
            "actions": ["s3:GetObject"],
            "resources": ["data-bucket", "data-bucket/*"],
            "principals": ["*"],
        }
    ]


def test_edit_in_the_json_view_and_search(page: Page, server: CofferServer) -> None:
    name = unique("editme")
    doc = create_get_object_policy(server, name)
    open_policies(page, server)
    search = page.get_by_role("searchbox", name="Search by name")
    search.fill(name)
    expect(page.locator("tbody tr")).to_have_count(1)
    search.fill("zz-no-policy-has-this-name")
    expect(page.get_by_text("No policies match")).to_be_visible()
    search.fill(name[:6])
    r = row(page, name)
    r.get_by_role("button", name=f"Actions for policy {name}").click()
    page.get_by_role("menuitem", name="Edit").click()
    expect(page.get_by_role("heading", name=f"Edit policy {name}")).to_be_visible()
    expect(page.get_by_label("Policy Name")).to_be_disabled()

    page.get_by_role("tab", name="JSON").click()
    area = page.get_by_label("Policy JSON")
    shown = json.loads(area.input_value())
    assert shown == doc
    shown["statements"].append(
        {
            "name": "no-deletes",
            "effect": "Deny",
            "actions": ["s3:DeleteObject"],
            "resources": ["*"],
            "principals": ["*"],
        }
    )
    area.fill(json.dumps(shown, indent=2))
    shot(page, "policy-json")
    # Back to the builder: the JSON is parsed into statements.
    page.get_by_role("tab", name="Builder").click()
    expect(page.locator("fieldset.statement")).to_have_count(2)
    expect(page.locator("fieldset.statement").nth(1).get_by_label("Deny access")).to_be_checked()
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text(f"Policy {name} saved")).to_be_visible()
    expect(row(page, name)).to_contain_text("2 (1 Deny)")
    assert policies(server)[name]["statements"][1]["effect"] == "Deny"


def test_the_servers_validation_is_shown_inline(page: Page, server: CofferServer) -> None:
    open_policies(page, server)
    page.get_by_role("link", name="Create Policy").click()
    page.get_by_label("Policy Name").fill(unique("broken"))
    st = page.locator("fieldset.statement").nth(0)
    st.get_by_label("Statement name").fill("typo")
    add_chips(st, "Principals", "*")
    add_chips(st, "Actions", "s3:GetObjekt")
    add_chips(st, "Resources", "*")
    page.get_by_role("button", name="Create policy").click()
    alert = page.locator("form .alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("s3:GetObjekt")
    # The field the server names (policy.statements[0].actions[0]) is marked in its statement.
    actions = st.get_by_label("Actions", exact=True)
    expect(actions).to_have_attribute("aria-invalid", "true")
    expect(st.locator(".field-error").filter(has_text="s3:GetObjekt")).to_be_visible()
    shot(page, "policy-invalid")
    # Bad JSON in the JSON view is caught before it is sent.
    page.get_by_role("tab", name="JSON").click()
    page.get_by_label("Policy JSON").fill("{ nope")
    page.get_by_role("button", name="Create policy").click()
    expect(alert).to_contain_text("The JSON is not valid")


def test_delete_with_confirmation(page: Page, server: CofferServer) -> None:
    name = unique("gone")
    create_get_object_policy(server, name)
    open_policies(page, server)
    row(page, name).get_by_role("button", name=f"Actions for policy {name}").click()
    page.get_by_role("menuitem", name="Delete…").click()
    dialog = page.get_by_role("dialog", name="Delete policy")
    expect(dialog).to_contain_text(name)
    dialog.get_by_role("button", name="Cancel").click()
    assert name in policies(server)
    row(page, name).get_by_role("button", name=f"Actions for policy {name}").click()
    page.get_by_role("menuitem", name="Delete…").click()
    page.get_by_role("dialog", name="Delete policy").get_by_role("button", name="Delete").click()
    expect(page.get_by_text(f"Policy {name} deleted")).to_be_visible()
    expect(row(page, name)).to_have_count(0)
    assert name not in policies(server)


def test_a_policy_edit_changes_what_another_user_may_do(
    browser: Browser, page: Page, server: CofferServer
) -> None:
    principal, token = server.create_user(unique("auditor"))
    listed = server.mint_key(duration=600, name=unique("listed"))
    other = new_context(browser, server)
    their_page = other.new_page()
    sign_in(their_page, token)
    expect(their_page.get_by_role("alert")).to_contain_text(
        "not allowed to perform cwobject:ListAccessKeyInfo"
    )
    their_page.get_by_role("link", name="Organization Access Policies").click()
    expect(their_page.get_by_role("alert")).to_contain_text(
        "not allowed to perform cwobject:ListAccessPolicy"
    )
    shot(their_page, "access-policies-forbidden")

    # The admin grants that user read access to the key list, in the builder.
    open_policies(page, server)
    page.get_by_role("link", name="Create Policy").click()
    name = unique("auditors")
    page.get_by_label("Policy Name").fill(name)
    st = page.locator("fieldset.statement").nth(0)
    st.get_by_label("Statement name").fill("list-keys")
    add_chips(st, "Principals", principal)
    add_chips(st, "Actions", "cwobject:ListAccessKeyInfo")
    add_chips(st, "Resources", "*")
    page.get_by_role("button", name="Create policy").click()
    expect(page.get_by_text(f"Policy {name} created")).to_be_visible()

    their_page.get_by_role("link", name="Access Keys").click()
    expect(their_page.get_by_role("table", name="Access keys")).to_contain_text(listed["accessKeyId"])
    # Listing is allowed now; creating a key still is not.
    expect_create_key_refused(their_page)
    other.close()


def test_s3_refusals_reach_the_page(browser: Browser, server: CofferServer) -> None:
    """The console's S3 calls carry the user's own permissions: an org-policy Deny of
    s3:PutObject stops an upload made in the console, with S3's refusal shown."""
    principal, token = server.create_user(unique("uploader"))
    name = unique("uploader-policy")
    doc = {
        "version": "v1alpha1",
        "name": name,
        "statements": [
            {
                "name": "console",
                "effect": "Allow",
                "actions": ["cwobject:CreateAccessKey"],
                "resources": ["*"],
                "principals": [principal],
            },
            {
                "name": "s3",
                "effect": "Allow",
                "actions": ["s3:*"],
                "resources": ["*"],
                "principals": [principal],
            },
            {
                "name": "no-uploads",
                "effect": "Deny",
                "actions": ["s3:PutObject"],
                "resources": ["*"],
                "principals": [principal],
            },
        ],
    }
    ctx = new_context(browser, server)
    page = ctx.new_page()
    sign_in(page, token)
    page.get_by_role("link", name="Buckets").click()
    expect(page.get_by_role("alert")).to_contain_text(
        f"{principal} is not allowed to perform cwobject:CreateAccessKey"
    )
    with server.api() as c:
        c.post("/v1/cwobject/access-policy", json={"policy": doc}).raise_for_status()
    page.reload()
    expect(page.get_by_text("No buckets yet").or_(page.get_by_role("table", name="Buckets"))).to_be_visible()
    bucket = unique("denied")
    page.get_by_role("button", name="Create Bucket").click()
    dialog = page.get_by_role("dialog", name="Create Bucket")
    dialog.get_by_label("Bucket name").fill(bucket)
    dialog.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_role("heading", name=bucket)).to_be_visible()
    page.locator("input[type=file]").set_input_files(
        [{"name": "no.txt", "mimeType": "text/plain", "buffer": b"no"}]
    )
    failed = page.locator(".upload.failed").filter(has_text="no.txt")
    expect(failed.get_by_role("alert")).to_contain_text("AccessDenied")
    shot(page, "bucket-upload-denied")
    expect(page.get_by_text("This bucket is empty")).to_be_visible()
    ctx.close()
