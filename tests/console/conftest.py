"""Console tests: a real Coffer server and Debian's chromium driven by Playwright.

One server and one browser per test module (tests in a module share them; each test
opens its own browser context, so cookies never leak between tests); the fixtures are in
tests.support.fixtures_console, the helpers in tests.support.console.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module", params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """The console is a client of the API and S3 faces, which the other suites test on
    both stores; its own tests run on SQLite only."""
    return str(request.param)
