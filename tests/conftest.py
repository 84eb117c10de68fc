"""Shared fixtures are pytest plugins in tests/support/fixtures*.py; helpers are plain
functions imported from tests.support.* (never from a conftest).

Two markers are applied here at collection rather than written on each test:

* `postgres`: every item whose `backend` parameter is "postgres" (the module-scoped
  `backend` fixture, tests.support.fixtures), so `-m "not postgres"` runs the SQLite half.
* `unit`: every item of the modules listed in UNIT below: pure functions, in-process, no
  server process, no PostgreSQL, no system package. `./scripts/test --unit` runs them
  (`-m unit`). A unit module may not use the server fixtures: collection fails if it does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = [
    "tests.support.fixtures",
    "tests.support.fixtures_s3",
    "tests.support.fixtures_storage",
    "tests.support.fixtures_console",
    "tests.support.pgcluster",
]

TESTS = Path(__file__).parent

# Folders (ending in "/") and modules, relative to tests/, whose tests are unit tests.
UNIT = (
    "unit/",
    "test_docs.py",
    "test_layering.py",
    "console/test_packaging.py",
    "federation/test_building_blocks.py",
    "federation/test_jwks.py",
    "federation/test_mutations.py",
    "federation/test_oidc.py",
    "federation/test_saml.py",
    "multinode/test_deployment_doc.py",
    "policy/test_actions.py",
    "policy/test_bucket_parse.py",
    "policy/test_conditions.py",
    "policy/test_docs.py",
    "policy/test_engine.py",
    "policy/test_org_parse.py",
    "policy/test_patterns.py",
    "policy/test_properties.py",
    "policy/test_scope_properties.py",
    "s3/test_app_unit.py",
    "s3/test_docs.py",
    "s3/test_form_units.py",
    "s3/test_keepalive.py",
    "s3/test_request.py",
    "s3/test_router.py",
    "s3/test_xml.py",
    "storage/test_blobs.py",
    "storage/test_node.py",
)
SERVER_FIXTURES = {"server", "backend", "env", "pg_reason", "browser", "private_pg"}


def _is_unit(path: Path) -> bool:
    rel = path.relative_to(TESTS).as_posix()
    return any(rel.startswith(entry) if entry.endswith("/") else rel == entry for entry in UNIT)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "postgres":
            item.add_marker(pytest.mark.postgres)
        if _is_unit(item.path):
            heavy = SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
            if heavy:
                raise pytest.UsageError(f"{item.nodeid} is listed as a unit test but uses {sorted(heavy)}")
            item.add_marker(pytest.mark.unit)
