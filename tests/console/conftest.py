"""Console tests: a real Coffer server and Debian's chromium driven by Playwright.

One server and one browser per test module (tests in a module share them; each test
opens its own browser context, so cookies never leak between tests). The browser is
never downloaded: Playwright launches the system chromium (`COFFER_CHROMIUM` overrides
the path). Screenshots of every page land in artifacts/console/.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.harness import CofferServer

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


@pytest.fixture(scope="module", params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """The console is a client of the API and S3 faces, which the other suites test on
    both stores; its own tests run on SQLite only."""
    return str(request.param)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    path = os.environ.get("COFFER_CHROMIUM", "/usr/bin/chromium")
    if not Path(path).exists():
        pytest.fail(f"chromium is not installed at {path}: run scripts/test (it apt-installs it)")
    b = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
    yield b
    b.close()


def new_context(browser: Browser, server: CofferServer, **kw: Any) -> BrowserContext:
    return browser.new_context(
        base_url=server.api_url, viewport={"width": 1366, "height": 860}, locale="en-GB", **kw
    )


@pytest.fixture
def context(browser: Browser, server: CofferServer) -> Iterator[BrowserContext]:
    ctx = new_context(browser, server)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    p.errors = errors  # type: ignore[attr-defined]
    return p


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


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


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
