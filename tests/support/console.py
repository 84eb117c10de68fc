"""Console test helpers: Debian's chromium driven by Playwright against a real server.

Screenshots of every page land in artifacts/console/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.support.harness import CofferServer

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Auto-waiting, not timing: a loaded 2-core machine running four workers may be slow.
expect.set_options(timeout=20_000)


def new_context(browser: Browser, server: CofferServer, **kw: Any) -> BrowserContext:
    return browser.new_context(
        base_url=server.api_url, viewport={"width": 1366, "height": 860}, locale="en-GB", **kw
    )


def confirm_by_typing(dialog: Locator, button: str, label: str, text: str) -> Locator:
    """In a dialog whose `button` stays disabled until `text` is typed in full into the field
    `label`: check that, type it, and return the (now enabled) button, not yet clicked."""
    confirm = dialog.get_by_role("button", name=button)
    expect(confirm).to_be_disabled()
    field = dialog.get_by_label(label)
    field.fill(text[:-1])
    expect(confirm).to_be_disabled()
    field.fill(text)
    return confirm


def open_create_key(page: Page) -> tuple[Locator, Locator]:
    """Opens the Create Key dialog: the dialog and its Create button (not yet clicked)."""
    page.get_by_role("button", name="Create Key").click()
    dialog = page.get_by_role("dialog", name="Create Key")
    return dialog, dialog.get_by_role("button", name="Create", exact=True)


def expect_refused_at(dialog: Locator, create: Locator, field: Locator, value: str, message: str) -> None:
    """`value` typed into `field` and submitted is refused there: `message` shows in the dialog,
    and the field is marked invalid and has the focus."""
    field.fill(value)
    create.click()
    expect(dialog.get_by_text(message)).to_be_visible()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_be_focused()


def expect_create_key_refused(page: Page) -> None:
    """The Create Key dialog shows the server's refusal (cwobject:CreateAccessKey not allowed)."""
    dialog, create = open_create_key(page)
    create.click()
    expect(dialog.get_by_role("alert").filter(has_text="not allowed")).to_contain_text(
        "cwobject:CreateAccessKey"
    )


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, token: str) -> None:
    page.goto("/console/")
    expect(page.get_by_role("heading", name="Sign in to Coffer")).to_be_visible()
    page.get_by_label("API access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def session_cookie(context: BrowserContext) -> dict[str, Any]:
    cookies = [c for c in context.cookies() if c["name"] in ("coffer-session", "__Host-coffer-session")]
    assert len(cookies) == 1, cookies
    return dict(cookies[0])


def allow_s3(server: CofferServer, name: str = "console-tests-s3") -> None:
    """An organization policy granting S3 to everyone: S3 needs one (reference §3.1)."""
    policy = {
        "version": "v1alpha1",
        "name": name,
        "statements": [
            {
                "name": "s3-for-all",
                "effect": "Allow",
                "actions": ["s3:*"],
                "resources": ["*"],
                "principals": ["*"],
            }
        ],
    }
    with server.api() as c:
        r = c.post("/v1/cwobject/access-policy", json={"policy": policy})
    assert r.status_code == 200, r.text


def api_with_cookie(server: CofferServer, cookie: dict[str, Any]) -> httpx.Client:
    return httpx.Client(base_url=server.api_url, cookies={cookie["name"]: cookie["value"]}, timeout=30)


def row(page: Page, text: str) -> Any:
    return page.get_by_role("row").filter(has_text=re.compile(re.escape(text)))
