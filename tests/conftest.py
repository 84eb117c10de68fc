"""Shared fixtures. Every end-to-end module gets one real server per backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import CofferServer, postgres_available, start_server, stop_server

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def pg_reason() -> str | None:
    return postgres_available()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest, pg_reason: str | None) -> str:
    if request.param == "postgres" and pg_reason:
        pytest.skip(pg_reason)
    return str(request.param)


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CofferServer]:
    """One Coffer per test module and backend; tests inside a module share it."""
    srv = start_server(tmp_path_factory.mktemp(f"coffer-{backend}"), backend)
    yield srv
    stop_server(srv)
