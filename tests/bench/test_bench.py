"""The benchmark harness keeps working: `python -m bench --selftest` end to end, and the
pieces it relies on. No timing assertions: performance is measured by `python -m bench`,
never by tests. The self-test uses the Python fallbacks (asyncio load generator, Python
sendfile baseline), so it needs neither wrk nor nginx; moto joins in when installed."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import botocore.auth
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bench.common import best_of, percentile
from bench.loadgen import _lua_pool, parse_head, raw_request
from bench.scenarios import ALL_SECTIONS, SCENARIOS
from bench.signing import Signer
from tests.support.bench import run_selftest

SECTIONS = {"machine", "large", "client", "small", "list", "keys", "cpu", "memory"}


def test_selftest_produces_every_row_and_target(tmp_path: Path) -> None:
    result, stdout = run_selftest("bench", tmp_path)
    assert result["meta"]["mode"] == "selftest"
    assert {row["section"] for row in result["rows"]} == SECTIONS
    for row in result["rows"]:
        value = row["value"]
        assert isinstance(value, int | float) and math.isfinite(value) and value >= 0, row
        if row["bound"] is not None:
            assert row["bound"] > 0 and row["vs_bound"] is not None, row
    names = [t["name"] for t in result["targets"]]
    assert len(names) == 11 and len(set(names)) == 11
    assert all(t["why"] for t in result["targets"]), "every target says what bounds it"
    # --selftest runs without Swift: the targets that compare with it are judged on their other
    # parts (short, or n/a when those are met), and every row that would show Swift says why not
    for t in result["targets"]:
        if "Swift" in t["wanted"]:
            assert "Swift not measured (--no-swift)" in t["measured"] and t["met"] is not True, t
        else:
            assert isinstance(t["met"], bool), t
    assert result["meta"]["swift_missing"] == "--no-swift"
    compared = [row for row in result["rows"] if row["compares_swift"]]
    assert {row["section"] for row in compared} == {"large", "small", "list"}
    assert all(row["swift"] is None for row in compared)
    assert stdout.count("not run: --no-swift") == len(compared)
    # every load ran without a single HTTP error: the signed and presigned pools are valid
    for row in result["rows"]:
        if row["section"] == "small" and "coffer" in row["detail"]:
            assert row["detail"]["coffer"]["errors"] == 0, row
    assert "| target |" in stdout  # the table was printed
    assert not list(tmp_path.glob("coffer-bench-*")), "the run's data directory was left behind"


def test_one_scenario_per_section_and_only_the_machine_runs_before_the_servers() -> None:
    assert ALL_SECTIONS == {"machine", "large", "small", "list", "keys", "federation", "cpu", "memory"}
    assert len(SCENARIOS) == len(ALL_SECTIONS)
    assert [s.section for s in SCENARIOS if not s.needs_servers] == ["machine"]
    # `cpu` budgets against the 4 KiB GET rate that `small` measured
    order = [s.section for s in SCENARIOS]
    assert order.index("small") < order.index("cpu")


def test_percentile_and_best_of() -> None:
    assert percentile([], 0.5) == 0.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.99) == 4.0
    samples = iter([3.0, 5.0, 4.0])
    assert best_of(3, lambda: next(samples)) == (5.0, [3.0, 5.0, 4.0])
    assert best_of(0, lambda: 1.0) == (1.0, [1.0])  # at least one measurement


@pytest.mark.parametrize(
    ("head", "parsed"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 12", (200, 12, False)),
        (b"HTTP/1.1 204 No Content\r\nconnection: Close", (204, None, True)),
        (b"HTTP/1.1 503 Slow Down\r\nConnection: keep-alive\r\ncontent-length:0", (503, 0, False)),
    ],
)
def test_response_head_parsing(head: bytes, parsed: tuple[int, int | None, bool]) -> None:
    assert parse_head(head) == parsed


NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def frozen_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))


@pytest.mark.usefixtures("frozen_botocore")
def test_header_signature_matches_botocore() -> None:
    signer = Signer("AKIDEXAMPLE", "secret/key+with=odd", region="us-east-04a")
    ours = dict(signer.headers("GET", "127.0.0.1:9000", "/bucket/a b/c", [("list-type", "2")], now=NOW))
    request = AWSRequest("GET", "http://127.0.0.1:9000/bucket/a%20b/c?list-type=2")
    request.headers["X-Amz-Content-SHA256"] = ours["x-amz-content-sha256"]
    S3SigV4Auth(Credentials("AKIDEXAMPLE", "secret/key+with=odd"), "s3", "us-east-04a").add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]


@pytest.mark.usefixtures("frozen_botocore")
def test_presigned_url_matches_botocore() -> None:
    signer = Signer("AKIDEXAMPLE", "s3cr3t", region="us-east-1")
    ours = signer.presign("PUT", "127.0.0.1:9000", "/bucket/key", expires=600, now=NOW)
    request = AWSRequest("PUT", "http://127.0.0.1:9000/bucket/key")
    S3SigV4QueryAuth(Credentials("AKIDEXAMPLE", "s3cr3t"), "s3", "us-east-1", expires=600).add_auth(request)
    theirs = dict(p.split("=", 1) for p in request.url.split("?", 1)[1].split("&"))
    assert ours.split("X-Amz-Signature=")[1] == theirs["X-Amz-Signature"]


@pytest.mark.parametrize("body", [b"", b"x" * 4096, b'a"b\\c\r\n\x00\xff'])
def test_wrk_pool_keeps_every_byte(body: bytes) -> None:
    """The Lua pool wrk replays is the exact request, bytes that Lua would mangle included."""
    request = raw_request("PUT", "/b/k", [("Host", "h"), ("X-Amz-Date", "20260102T030405Z")], body)
    script = _lua_pool([request, request])
    lines = [line.strip() for line in script.splitlines()]
    literals = [line.rstrip(",") for line in lines if line.startswith(('"', "{"))]
    assert len(literals) == 3  # one shared body, two heads
    decoded = [_lua_unescape(lit.strip("{}").split(", ")[0]) for lit in literals]
    assert decoded[0] == body
    assert decoded[1] + decoded[0] == request


def _lua_unescape(literal: str) -> bytes:
    assert literal[0] == literal[-1] == '"'
    out, i, text = bytearray(), 1, literal[:-1]
    while i < len(text):
        if text[i] == "\\":
            out.append(int(text[i + 1 : i + 4]))
            i += 4
        else:
            out.append(ord(text[i]))
            i += 1
    return bytes(out)
