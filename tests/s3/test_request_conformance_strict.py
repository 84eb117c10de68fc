"""The request-conformance tests again, virtual-hosted, on a server started with
`--s3-domain localhost --strict-coreweave`: CoreWeave documents nothing different for any of
these behaviours, so strict mode answers exactly as AWS (docs/s3-compatibility.md)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.s3.test_request_conformance import *  # noqa: F403  (the same tests, collected here too)
from tests.s3.test_request_conformance import Target
from tests.support.harness import CofferServer

pytestmark = pytest.mark.usefixtures("subdomains_resolve")


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {"extra_args": ["--s3-domain", "localhost", "--strict-coreweave"]}


@pytest.fixture(scope="module")  # type: ignore[no-redef]
def target(server: CofferServer, key: dict[str, Any]) -> Target:
    return Target(server, key, virtual=True)
