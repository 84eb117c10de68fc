"""The Access Keys page's Coffer extensions: the last-used column and its "not used for N days"
filter, the expiry-in-sight badge, and the Rotate action (Chromium, a real server)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support.api import wait_for
from tests.support.console import row, shot, sign_in
from tests.support.harness import CofferServer
from tests.support.s3 import client_error, s3_client, unique

pytestmark = pytest.mark.usefixtures("s3_allowed", "clipboard")


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {"env": {"COFFER_LAST_USED_FLUSH_SECONDS": "0.5"}}


def flushed(server: CofferServer, key_id: str) -> bool:
    with server.api() as c:
        info = c.get(f"/v1/cwobject/access-key/{key_id}", headers={"X-Coffer-Extensions": "lastUsed"})
    return info.json()["info"]["lastUsed"] is not None


def test_last_used_column_filter_and_expiry_badge(page: Page, server: CofferServer) -> None:
    idle = server.mint_key(name=unique("idle"))
    busy = server.mint_key(name=unique("busy"))
    soon = server.mint_key(duration=1800, name=unique("soon"))  # within the default hour's warning
    time.sleep(10)
    s3_client(server, busy).list_buckets()
    assert wait_for(lambda: flushed(server, busy["accessKeyId"]), timeout=30)

    sign_in(page, server.admin_token)
    busy_row, idle_row = row(page, busy["accessKeyId"]), row(page, idle["accessKeyId"])
    expect(busy_row.get_by_test_id("last-used")).to_contain_text("ListBuckets")
    expect(busy_row.get_by_test_id("last-used")).to_contain_text("127.0.0.1")
    expect(idle_row.get_by_test_id("last-used")).to_have_text("Not used yet")
    expect(row(page, soon["accessKeyId"]).get_by_test_id("in-sight")).to_have_text("Expires soon")
    expect(idle_row.get_by_test_id("in-sight")).to_have_count(0)

    # Unused for 0.0001 days (8.6 s): the idle key (minted 10 s ago) is; the busy key was just used.
    page.get_by_label("Not used for").fill("0.0001")
    expect(idle_row).to_have_count(1)
    expect(busy_row).to_have_count(0)
    shot(page, "access-keys-unused-filter")
    page.get_by_label("Not used for").fill("")
    expect(busy_row).to_have_count(1)


def test_rotate_from_the_row_menu(page: Page, server: CofferServer) -> None:
    old = server.mint_key(name=unique("rotating"))
    sign_in(page, server.admin_token)
    r = row(page, old["accessKeyId"])
    r.get_by_role("button", name=f"Actions for key {old['accessKeyId']}").click()
    page.get_by_role("menuitem", name="Rotate…").click()
    dialog = page.get_by_role("dialog", name="Rotate Key")
    expect(dialog.get_by_label("Overlap")).to_have_value("3600")
    shot(page, "rotate-key-dialog")
    dialog.get_by_role("button", name="Rotate", exact=True).click()
    rotated = page.get_by_role("dialog", name="Key rotated")
    expect(rotated.get_by_text("It will not be shown again")).to_be_visible()
    new_id = rotated.get_by_label("Access Key ID", exact=True).input_value()
    secret = rotated.get_by_label("Secret Key", exact=True).input_value()
    assert new_id != old["accessKeyId"]
    s3_client(server, {"accessKeyId": new_id, "secretKey": secret}).list_buckets()
    s3_client(server, old).list_buckets()  # the hour's overlap: the old key still works
    rotated.get_by_role("button", name="Done").click()
    expect(r.get_by_test_id("rotation-note")).to_contain_text(f"Rotated to {new_id}")
    new_row = page.locator(f'tr[data-key-id="{new_id}"]')  # the old row names it too
    expect(new_row).to_have_count(1)
    # A rotated key is not rotated twice; its successor, with no overlap, ends the new key at once.
    r.get_by_role("button", name=f"Actions for key {old['accessKeyId']}").click()
    expect(page.get_by_role("menuitem", name="Rotate…")).to_be_disabled()
    page.keyboard.press("Escape")
    new_row.get_by_role("button", name=f"Actions for key {new_id}").click()
    page.get_by_role("menuitem", name="Rotate…").click()
    dialog = page.get_by_role("dialog", name="Rotate Key")
    dialog.get_by_label("Overlap").select_option("0")
    dialog.get_by_role("button", name="Rotate", exact=True).click()
    expect(page.get_by_role("dialog", name="Key rotated")).to_be_visible()
    with pytest.raises(Exception) as refused:
        s3_client(server, {"accessKeyId": new_id, "secretKey": secret}).list_buckets()
    assert client_error(refused.value) == (403, "InvalidAccessKeyId")
