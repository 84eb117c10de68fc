"""Every file the console serves is shipped in the package (pyproject package-data)."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import coffer

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(coffer.__file__).parent


def test_console_assets_are_package_data() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "coffer"
    ]
    static = PACKAGE / "console" / "static"
    files = [p.relative_to(PACKAGE).as_posix() for p in static.rglob("*") if p.is_file()]
    assert "console/static/index.html" in files and "console/static/js/app.js" in files
    missing = [f for f in files if not any(fnmatch(f, g) and f.count("/") == g.count("/") for g in globs)]
    assert not missing, f"console files not shipped by package-data: {missing}"


def test_the_page_loads_only_shipped_assets() -> None:
    """No CDN: every script and stylesheet the page loads is a file of the package."""
    page = (PACKAGE / "console" / "static" / "index.html").read_text()
    assets = re.findall(r'<script[^>]* src="([^"]+)"', page) + re.findall(r'<link[^>]* href="([^"]+)"', page)
    assert len(assets) >= 2
    for ref in assets:
        if ref.startswith("data:"):
            continue
        assert ref.startswith("/console/static/"), ref
        assert (PACKAGE / "console" / ref.removeprefix("/console/")).is_file(), ref
    # Nor do the scripts fetch anything from another origin.
    scripts = "".join(p.read_text() for p in (PACKAGE / "console" / "static").rglob("*.js"))
    assert not re.search(r"https?://(?!127\.0\.0\.1:8490)", scripts)
