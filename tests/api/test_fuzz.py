"""No malformed request can provoke a 500: hypothesis throws arbitrary JSON, bytes, query
strings, path segments and headers at a running server.

Every answer must be 200, or status JSON whose gRPC code matches its HTTP status.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import GRPC_HTTP
from tests.support.harness import CofferServer

FUZZ = settings(
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=80)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=15,
)
attribute_maps = st.dictionaries(st.text(max_size=70), json_values, max_size=20) | json_values
statuses = st.sampled_from(
    ["ACTIVE", "SUSPENDED", "ACCESS_KEY_STATUS_ACTIVE", "ACCESS_KEY_STATUS_SUSPENDED", "EXPIRED", "x", ""]
) | st.text(max_size=40)
principals = st.sampled_from(["coreweave/x", "role/a:b", ""]) | st.text(max_size=600) | json_values

create_bodies = st.fixed_dictionaries(
    {}, optional={"durationSeconds": json_values | st.integers(0, 50_000), "attributes": attribute_maps}
)
status_bodies = st.fixed_dictionaries(
    {}, optional={"principalName": principals, "status": statuses | json_values}
)
revoke_bodies = st.fixed_dictionaries({}, optional={"accessKey": st.text(max_size=200) | json_values})
principal_bodies = st.fixed_dictionaries({}, optional={"principalName": principals})

WRITES = [
    ("POST", "/v1/cwobject/access-key", create_bodies),
    ("PUT", "/v1/cwobject/access-key-status", status_bodies),
    ("POST", "/v1/cwobject/revoke-access-key/access-key", revoke_bodies),
    ("POST", "/v1/cwobject/revoke-access-key/principal", principal_bodies),
]


@pytest.fixture(scope="module")
def c(server: CofferServer) -> Iterator[httpx.Client]:
    with server.api() as client:
        yield client


def check(resp: httpx.Response) -> None:
    """200, or google.rpc.Status with the code its HTTP status stands for; never a 5xx."""
    assert resp.status_code < 500, resp.text
    if resp.status_code == 200:
        resp.json()
        return
    body = resp.json()
    assert set(body) == {"code", "message", "details"}, body
    assert GRPC_HTTP[body["code"]] == resp.status_code, body
    assert "Traceback" not in resp.text


def dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


@pytest.mark.parametrize(("method", "path", "bodies"), WRITES, ids=[p for _, p, _ in WRITES])
def test_json_bodies(c: httpx.Client, method: str, path: str, bodies: st.SearchStrategy[Any]) -> None:
    @FUZZ
    @given(body=bodies | json_values)
    def run(body: Any) -> None:
        check(c.request(method, path, content=dumps(body), headers={"content-type": "application/json"}))

    run()


@pytest.mark.parametrize("path", [p for _, p, _ in WRITES])
def test_raw_bytes(c: httpx.Client, path: str) -> None:
    method = "PUT" if path.endswith("status") else "POST"

    @FUZZ
    @given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
    def run(raw: bytes) -> None:
        check(c.request(method, path, content=raw))

    run()


def test_list_query_strings(c: httpx.Client) -> None:
    params = st.dictionaries(
        st.sampled_from(["offset", "limit", "status", "other"]),
        st.text(max_size=30) | st.integers(-(2**40), 2**40).map(str),
        max_size=4,
    )

    @FUZZ
    @given(params=params)
    def run(params: dict[str, str]) -> None:
        check(c.get("/v1/cwobject/access-key", params=params))

    run()


def test_key_ids_in_the_path(c: httpx.Client) -> None:
    @FUZZ
    @given(key_id=st.text(min_size=1, max_size=300))
    def run(key_id: str) -> None:
        r = c.get("/v1/cwobject/access-key/" + quote(key_id, safe=""))
        check(r)
        assert r.status_code in (200, 404)

    run()


def test_authorization_headers(server: CofferServer) -> None:
    header_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=100)

    sources = iter(range(250 * 250))

    @FUZZ
    @given(scheme=st.sampled_from(["Bearer ", "bearer ", "Basic ", ""]), value=header_text)
    def run(scheme: str, value: str) -> None:
        # Each example from a loopback address of its own: one source would be over the
        # failed-authentication budget (429) after 20 bad tokens (docs/operations.md).
        n = next(sources)
        transport = httpx.HTTPTransport(local_address=f"127.1.{n // 250}.{n % 250 + 1}")
        with httpx.Client(transport=transport, timeout=30) as c:
            r = c.get(
                server.api_url + "/v1/cwobject/access-key",
                headers={"Authorization": (scheme + value).strip()},
            )
        check(r)
        assert r.status_code == 401

    run()


def test_nothing_reached_the_catch_all(server: CofferServer) -> None:
    """Runs last in this module: no fuzzed request ended in the 500 handler."""
    assert "unhandled error" not in server.log()
