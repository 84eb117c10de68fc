"""The Access Keys page: create (temporary and permanent), copy, use with boto3, search,
revoke, suspend and reactivate, inline validation, and a user without the permission."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from playwright.sync_api import BrowserContext, Page, expect

from tests.support.console import (
    confirm_by_typing,
    expect_create_key_refused,
    expect_refused_at,
    new_context,
    open_create_key,
    row,
    shot,
    sign_in,
)
from tests.support.harness import CofferServer
from tests.support.s3 import unique

pytestmark = pytest.mark.usefixtures("s3_allowed", "clipboard")


def boto(server: CofferServer, key_id: str, secret: str) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=server.s3_url,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name="us-east-04a",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def create_key(
    page: Page, name: str, *, duration: str | None = "3600", permanent: bool = False
) -> tuple[str, str]:
    page.get_by_role("button", name="Create Key").click()
    dialog = page.get_by_role("dialog", name="Create Key")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Name", exact=True).fill(name)
    if permanent:
        dialog.get_by_role("switch", name="Enable Permanent Key").check()
        expect(dialog.get_by_label("Duration (seconds)")).to_be_disabled()
    elif duration is not None:
        dialog.get_by_label("Duration (seconds)").fill(duration)
    dialog.get_by_role("button", name="Create", exact=True).click()
    created = page.get_by_role("dialog", name="Key created")
    expect(created.get_by_text("It will not be shown again")).to_be_visible()
    key_id = created.get_by_label("Access Key ID", exact=True).input_value()
    secret = created.get_by_label("Secret Key", exact=True).input_value()
    assert re.fullmatch(r"CW[A-Z]{14}", key_id), key_id
    assert re.fullmatch(r"cwo[a-z0-9]{40}", secret)
    return key_id, secret


def test_create_a_temporary_key_copy_it_and_use_it(
    page: Page, context: BrowserContext, server: CofferServer
) -> None:
    sign_in(page, server.admin_token)
    expect(page.get_by_role("heading", name="Access Keys")).to_be_visible()
    shot(page, "access-keys")
    name = unique("temp")
    page.get_by_role("button", name="Create Key").click()
    shot(page, "create-key-dialog")
    page.keyboard.press("Escape")
    key_id, secret = create_key(page, name, duration="1800")
    created = page.get_by_role("dialog", name="Key created")
    shot(page, "key-created")
    # Copy the secret: the clipboard holds exactly the secret shown.
    created.get_by_role("button", name="Copy Secret key").click()
    expect(page.get_by_text("Secret key copied to the clipboard")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    # The aws-cli profile is ready to paste.
    profile = created.get_by_label("aws-cli profile").input_value()
    assert f"aws_access_key_id = {key_id}" in profile
    assert f"aws_secret_access_key = {secret}" in profile
    assert f"endpoint_url = {server.s3_url}" in profile
    created.get_by_role("button", name="Done").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    # The new key is listed: name, ID, the admin's principal, Active, an expiry.
    r = row(page, key_id)
    expect(r).to_contain_text(name)
    expect(r).to_contain_text("Active")
    expect(r).to_contain_text("coreweave/")
    expect(r).not_to_contain_text("Never")
    # And it works with boto3 against the S3 endpoint.
    s3 = boto(server, key_id, secret)
    bucket = unique("keys")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="hello.txt", Body=b"hello from the console key")
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.get_object(Bucket=bucket, Key="hello.txt")["Body"].read() == b"hello from the console key"
    assert not page.errors  # type: ignore[attr-defined]


def test_create_a_permanent_key_and_revoke_it(page: Page, server: CofferServer) -> None:
    sign_in(page, server.admin_token)
    name = unique("perm")
    key_id, secret = create_key(page, name, permanent=True)
    page.get_by_role("dialog", name="Key created").get_by_role("button", name="Copy Access key ID").click()
    assert page.evaluate("navigator.clipboard.readText()") == key_id
    page.get_by_role("button", name="Done").click()
    r = row(page, key_id)
    expect(r).to_contain_text("Never (permanent)")
    s3 = boto(server, key_id, secret)
    s3.list_buckets()

    # Revoke from the row menu; the dialog wants the key ID typed.
    r.get_by_role("button", name=f"Actions for key {key_id}").click()
    page.get_by_role("menuitem", name="Revoke…").click()
    dialog = page.get_by_role("dialog", name="Revoke Key")
    confirm = confirm_by_typing(dialog, "Revoke", f"Type the key ID {key_id} to confirm", key_id)
    shot(page, "revoke-key-dialog")
    confirm.click()
    expect(page.get_by_text(f"Key {key_id} revoked")).to_be_visible()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(row(page, key_id)).to_have_count(0)  # revoked keys are hidden unless asked for
    page.get_by_label("Show revoked and expired keys").check()
    expect(row(page, key_id)).to_contain_text("Revoked")

    with pytest.raises(ClientError) as err:
        s3.list_buckets()
    assert err.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_search_by_name_or_principal(page: Page, server: CofferServer) -> None:
    other_principal, other_token = server.create_user(unique("searchuser"), admin=True)
    other_name = unique("other")
    server.mint_key(other_token, 600, name=other_name)
    sign_in(page, server.admin_token)
    mine = unique("mine")
    my_id, _ = create_key(page, mine)
    page.get_by_role("button", name="Done").click()
    search = page.get_by_role("searchbox", name="Search by name or principal")
    search.fill(mine)
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(row(page, my_id)).to_be_visible()
    search.fill(other_principal)
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_contain_text(other_name)
    search.fill(other_principal.upper())  # case-insensitive
    expect(page.locator("tbody tr")).to_have_count(1)
    search.fill("no-such-key-anywhere")
    expect(page.get_by_text("No keys match")).to_be_visible()
    shot(page, "access-keys-search-empty")
    search.fill("")
    expect(row(page, my_id)).to_be_visible()


def test_invalid_durations_are_shown_inline(page: Page, server: CofferServer) -> None:
    sign_in(page, server.admin_token)
    dialog, create = open_create_key(page)
    duration = dialog.get_by_label("Duration (seconds)")
    # Above the server's cap: the API's own message, next to the field.
    expect_refused_at(dialog, create, duration, "99999999", "must be at most 43200 seconds")
    shot(page, "create-key-invalid-duration")
    duration.fill("soon")
    create.click()
    expect(dialog.get_by_text("must be an integer number of seconds")).to_be_visible()
    duration.fill("-5")
    create.click()
    expect(dialog.get_by_text("must be >= 0")).to_be_visible()
    duration.fill("0")
    create.click()
    expect(dialog.get_by_text("at least 1 second, or enable Permanent Key")).to_be_visible()
    # A name the API refuses is shown at the name field.
    duration.fill("60")
    dialog.get_by_label("Name", exact=True).fill("bad name!")
    create.click()
    expect(dialog.get_by_text("values must be strings of at most 63 characters")).to_be_visible()
    # Nothing was created: the dialog is still the form.
    expect(page.get_by_role("dialog", name="Key created")).to_have_count(0)


def test_dialog_keyboard_escape_and_focus(page: Page, server: CofferServer) -> None:
    sign_in(page, server.admin_token)
    opener = page.get_by_role("button", name="Create Key")
    opener.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Create Key")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Name", exact=True)).to_be_focused()
    # Tab never leaves the dialog.
    for _ in range(12):
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.closest('dialog') !== null")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.closest('dialog') !== null")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(opener).to_be_focused()


def test_suspend_and_reactivate_a_principals_keys(page: Page, server: CofferServer) -> None:
    principal, token = server.create_user(unique("suspendee"), admin=True)
    key = server.mint_key(token, 0, name=unique("svc"))
    sign_in(page, server.admin_token)
    r = row(page, key["accessKeyId"])
    expect(r).to_contain_text("Active")
    r.get_by_role("button", name=f"Actions for key {key['accessKeyId']}").click()
    page.get_by_role("menuitem", name="Suspend principal's keys…").click()
    dialog = page.get_by_role("dialog", name="Suspend keys")
    expect(dialog).to_contain_text(principal)
    dialog.get_by_role("button", name="Suspend keys").click()
    expect(page.get_by_text(f"Keys of {principal} suspended")).to_be_visible()
    expect(row(page, key["accessKeyId"])).to_contain_text("Suspended")
    shot(page, "access-keys-suspended")
    with pytest.raises(ClientError):
        boto(server, key["accessKeyId"], key["secretKey"]).list_buckets()

    r = row(page, key["accessKeyId"])
    r.get_by_role("button", name=f"Actions for key {key['accessKeyId']}").click()
    menu = page.get_by_role("menu")
    expect(menu.get_by_role("menuitem").first).to_be_focused()
    page.keyboard.press("ArrowDown")  # the menu is keyboard-operable
    expect(menu.get_by_role("menuitem", name="Reactivate principal's keys…")).to_be_focused()
    page.keyboard.press("Enter")
    page.get_by_role("dialog", name="Reactivate keys").get_by_role("button", name="Reactivate keys").click()
    expect(row(page, key["accessKeyId"])).to_contain_text("Active")
    boto(server, key["accessKeyId"], key["secretKey"]).list_buckets()


def test_a_user_without_permission_sees_the_servers_refusal(browser: Any, server: CofferServer) -> None:
    principal, token = server.create_user(unique("viewer"))
    ctx = new_context(browser, server)
    page = ctx.new_page()
    sign_in(page, token)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The access keys could not be listed.")
    expect(alert).to_contain_text(f"{principal} is not allowed to perform cwobject:ListAccessKeyInfo")
    shot(page, "access-keys-forbidden")
    # Creating a key is refused by the server too, with its message in the dialog.
    expect_create_key_refused(page)
    ctx.close()
