"""Console fixtures (a pytest plugin, loaded by tests/conftest.py): one browser per test
module, and a fresh browser context and page per test (cookies never leak between tests).
The browser is never downloaded: Playwright launches the system chromium
(`COFFER_CHROMIUM` overrides the path)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.support.console import CHROMIUM_ARGS, allow_s3, new_context
from tests.support.harness import CofferServer


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


@pytest.fixture
def clipboard(context: BrowserContext, server: CofferServer) -> None:
    """The test's browser context may read and write the clipboard (the copy buttons); a
    module asks for it with `pytestmark = pytest.mark.usefixtures("clipboard")`."""
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.api_url)


@pytest.fixture(scope="module")
def s3_allowed(server: CofferServer) -> None:
    """An organization policy granting S3 to everyone on the module's server (S3 needs one); a
    module asks for it with `pytestmark = pytest.mark.usefixtures("s3_allowed")`."""
    allow_s3(server)
