"""One client must not stall or exhaust a node: head bounds, deadlines, the connection cap.

Each test reproduces an attack that worked before (issue 12) against a real server over
real sockets, and shows both that the attacker's connection is cut and that everyone else
is still served meanwhile. Deadlines are shortened by settings so the tests wait seconds,
not minutes; the generous waits below only bound how long a broken server may hang a test.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.support.attacks import stalled_readers, worker_rss
from tests.support.harness import CofferServer, start_server, stop_server, worker_processes
from tests.support.s3 import assert_s3_error, new_bucket, s3_client, signed

HEAD_TIMEOUT = 1.5
BODY_IDLE = 1.5
WRITE_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"  # this module runs on SQLite only


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {
        "extra_args": [
            "--head-timeout",
            str(HEAD_TIMEOUT),
            "--body-idle-timeout",
            str(BODY_IDLE),
            "--write-timeout",
            str(WRITE_TIMEOUT),
        ]
    }


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    return new_bucket(s3, "guard")


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def read_until_closed(sock: socket.socket, limit: float = 15.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and how long that took."""
    started = time.monotonic()
    sock.settimeout(limit)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data, time.monotonic() - started


def healthy(server: CofferServer) -> None:
    """Both ports answer at once (the probe gives them two seconds)."""
    assert httpx.get(server.s3_url + "/_coffer/healthz", timeout=2).status_code == 200
    assert httpx.get(server.api_url + "/healthz", timeout=2).status_code == 200


# --- the request head ------------------------------------------------------------------------


def test_a_huge_header_is_refused_on_the_s3_port(server: CofferServer, key: dict[str, Any]) -> None:
    r = signed(server, key, "GET", "/", headers={"x-amz-meta-big": "a" * 200_000})
    assert_s3_error(r, 400, "RequestHeaderSectionTooLarge")
    assert "16384" in r.text
    assert r.headers["connection"] == "close"
    healthy(server)


def test_too_many_headers_are_refused(server: CofferServer, key: dict[str, Any]) -> None:
    many = {f"x-h-{i}": "v" for i in range(5000)}
    r = signed(server, key, "GET", "/", headers=many)
    assert_s3_error(r, 400, "RequestHeaderSectionTooLarge")
    assert "more than 100 headers" in r.text
    # 101 short headers are refused although they are far under the byte bound
    r = httpx.get(server.s3_url + "/", headers={f"x-h-{i}": "v" for i in range(101)}, timeout=10)
    assert_s3_error(r, 400, "RequestHeaderSectionTooLarge")


def test_a_normal_request_with_many_small_headers_is_served(
    server: CofferServer, key: dict[str, Any]
) -> None:
    r = signed(server, key, "GET", "/", headers={f"x-amz-meta-m{i}": "v" for i in range(60)})
    assert r.status_code == 200, r.text


def test_the_api_port_answers_431_in_its_own_dialect(server: CofferServer) -> None:
    r = httpx.get(server.api_url + "/v1/cwobject/access-key", headers={"x-big": "b" * 40_000}, timeout=10)
    assert r.status_code == 431
    body = r.json()
    assert body["code"] == 3 and "16384" in body["message"] and body["details"] == []


def test_a_long_url_counts_toward_the_head(server: CofferServer) -> None:
    r = httpx.get(server.s3_url + "/" + "k" * 20_000, timeout=10)
    assert_s3_error(r, 400, "RequestHeaderSectionTooLarge")


def test_pipelined_requests_past_the_head_bound_are_all_served(server: CofferServer) -> None:
    """The bound is per request head, not per read: 600 pipelined GETs in one write (about
    26 KiB) are each answered."""
    one = b"GET /_coffer/healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with connect(server.s3_port) as sock:
        sock.sendall(one * 599 + b"GET /_coffer/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data, _ = read_until_closed(sock)
    assert data.count(b"HTTP/1.1 200 OK") == 600
    assert b"RequestHeaderSectionTooLarge" not in data


def test_endless_headers_do_not_grow_the_server(server: CofferServer) -> None:
    """Eight unauthenticated clients each sending a 64 MiB header that never ends."""
    healthy(server)
    before = worker_rss(server)
    chunk = b"x" * (1 << 20)
    refused = 0
    for _ in range(8):
        with connect(server.s3_port) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ")
            try:
                for _ in range(64):
                    sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                refused += 1
                continue
            data, _ = read_until_closed(sock)
            assert b"RequestHeaderSectionTooLarge" in data
            refused += 1
    assert refused == 8
    grown = worker_rss(server) - before
    assert grown < 8 << 20, f"the server grew by {grown >> 20} MiB"
    healthy(server)


# --- deadlines ------------------------------------------------------------------------------


def test_a_silent_connection_is_closed_at_the_head_deadline(server: CofferServer) -> None:
    with connect(server.s3_port) as sock:
        data, waited = read_until_closed(sock)
    assert data == b""  # it never said anything: nothing to answer
    assert HEAD_TIMEOUT <= waited < HEAD_TIMEOUT + 5


def test_slowloris_is_cut_off_and_told_why(server: CofferServer) -> None:
    """A head dripped a byte at a time never completes: the clock runs from the connection."""
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    with connect(server.s3_port) as sock:
        started = time.monotonic()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for byte in head:
                sock.sendall(bytes([byte]))
                time.sleep(0.05)
                if time.monotonic() - started > HEAD_TIMEOUT + 5:
                    break
        data, _ = read_until_closed(sock)
        waited = time.monotonic() - started
    assert b"400 " in data.split(b"\r\n", 1)[0] and b"<Code>RequestTimeout</Code>" in data
    assert waited < HEAD_TIMEOUT + 5


def test_many_slow_clients_leave_others_served(server: CofferServer, key: dict[str, Any]) -> None:
    socks = [connect(server.s3_port) for _ in range(50)]
    try:
        for sock in socks:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        r = signed(server, key, "GET", "/")
        assert r.status_code == 200
        healthy(server)
        time.sleep(HEAD_TIMEOUT + 1)
        for sock in socks:
            data, _ = read_until_closed(sock, limit=5)
            assert b"RequestTimeout" in data
    finally:
        for sock in socks:
            sock.close()


def test_a_stalled_upload_is_cut_and_stores_nothing(
    server: CofferServer, key: dict[str, Any], bucket: str
) -> None:
    s3 = s3_client(server, key)
    # An unsigned-payload PUT announcing 1 MiB that sends 10 bytes and stops.
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"{server.s3_url}/{bucket}/stalled"
    req = AWSRequest(
        method="PUT",
        url=url,
        headers={"content-length": str(1 << 20), "x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
    )
    S3SigV4Auth(Credentials(key["accessKeyId"], key["secretKey"]), "s3", "us-east-04a").add_auth(req)
    head = f"PUT /{bucket}/stalled HTTP/1.1\r\nHost: 127.0.0.1:{server.s3_port}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in req.headers.items()
    )
    with connect(server.s3_port) as sock:
        sock.sendall(head.encode() + b"\r\n" + b"0123456789")
        data, waited = read_until_closed(sock)
    assert data == b"", data  # the handler was waiting for the body: nothing was answered
    assert BODY_IDLE <= waited < BODY_IDLE + 5
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=bucket, Key="stalled")
    healthy(server)


def test_a_reader_that_stops_reading_is_cut_off(
    server: CofferServer, key: dict[str, Any], bucket: str
) -> None:
    s3 = s3_client(server, key)
    size = 64 << 20
    s3.put_object(Bucket=bucket, Key="big", Body=b"z" * size)
    before = worker_rss(server)
    socks = stalled_readers(server, s3, bucket, "big", 10)
    try:
        time.sleep(1)
        pinned = worker_rss(server) - before
        # each stalled reader pins the 1 MiB chunk queued, the one in hand, the one read ahead and
        # the 256 KiB write buffer, about 4 MiB with the allocator's rounding (docs/operations.md,
        # WRITE_BUFFER_HIGH); before the bounds it was 10-20 MiB each
        assert pinned < 10 * (4 << 20) + (8 << 20), f"{pinned >> 20} MiB pinned by 10 stalled readers"
        healthy(server)
        time.sleep(WRITE_TIMEOUT + 1.5)
        for sock in socks:
            data, _ = read_until_closed(sock, limit=10)
            assert data.startswith(b"HTTP/1.1 200 ")
            assert len(data) < size  # cut short: the server gave up on it
    finally:
        for sock in socks:
            sock.close()
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == b"z" * size


def test_keep_alive_connections_still_work(server: CofferServer, key: dict[str, Any]) -> None:
    """Deadlines only bite the idle and the slow: a client reusing its connection is served."""
    with httpx.Client(timeout=10) as client:
        for _ in range(3):
            assert client.get(server.s3_url + "/_coffer/healthz").status_code == 200
            time.sleep(HEAD_TIMEOUT + 0.5)  # idle between requests is keep-alive, not a head
        assert client.get(server.s3_url + "/_coffer/healthz").status_code == 200


# --- the connection cap ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CofferServer]:
    srv = start_server(
        tmp_path_factory.mktemp("capped"),
        "sqlite",
        extra_args=["--max-connections", "40", "--head-timeout", "60"],
    )
    yield srv
    stop_server(srv)


def test_at_the_cap_the_longest_idle_connection_makes_room(capped: CofferServer) -> None:
    key = capped.mint_key(duration=0)
    idle = [connect(capped.s3_port) for _ in range(40)]
    try:
        time.sleep(0.3)
        r = signed(capped, key, "GET", "/")
        assert r.status_code == 200, r.text
        data, _ = read_until_closed(idle[0], limit=5)
        assert data == b""  # the oldest silent connection was closed for it
    finally:
        for sock in idle:
            sock.close()
    assert "cap_evicted" in wait_for_log(capped, "cap_evicted")


def test_at_the_cap_with_nobody_idle_a_new_connection_is_refused(capped: CofferServer) -> None:
    busy = [connect(capped.s3_port) for _ in range(40)]
    try:
        for sock in busy:
            sock.sendall(b"GET / HTTP/1.1\r\n")  # mid-head: not idle, so not evicted
        time.sleep(0.3)
        r = httpx.get(capped.s3_url + "/_coffer/healthz", timeout=5)
        assert_s3_error(r, 503, "SlowDown")
        assert r.headers["retry-after"] == "1"
    finally:
        for sock in busy:
            sock.close()
    time.sleep(0.3)
    assert httpx.get(capped.s3_url + "/_coffer/healthz", timeout=5).status_code == 200
    assert "cap_refused" in wait_for_log(capped, "cap_refused")
    closed = scrape(capped, "coffer_connections_closed_total")
    assert closed[("reason", "cap_refused")] >= 1
    assert closed[("reason", "cap_evicted")] >= 1
    assert scrape(capped, "coffer_connections_open")[("port", "api")] >= 1  # the scrape's own


def scrape(server: CofferServer, name: str) -> dict[tuple[str, str], float]:
    """One metric family from /metrics, by its (only) label."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(server.api_url + "/metrics", timeout=5).text
    found: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                ((label, value),) = sample.labels.items()
                found[(label, value)] = sample.value
    return found


def wait_for_log(server: CofferServer, needle: str) -> str:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        log = server.log()
        if needle in log:
            return log
        time.sleep(0.2)
    return server.log()


def test_thousands_of_idle_sockets_do_not_lock_out_a_real_client(
    server: CofferServer, tmp_path: Path
) -> None:
    key = server.mint_key(duration=0)
    idle: list[socket.socket] = []
    try:
        for _ in range(3000):
            sock = socket.socket()
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                sock.connect(("127.0.0.1", server.s3_port))
            idle.append(sock)
        time.sleep(0.5)
        r = signed(server, key, "GET", "/")
        assert r.status_code == 200, r.text
        healthy(server)
    finally:
        for sock in idle:
            sock.close()


def test_the_descriptor_limit_is_raised_to_fit_the_cap(server: CofferServer) -> None:
    assert server.proc is not None
    procs = worker_processes(server, server.s3_port) or [psutil.Process(server.proc.pid)]
    for proc in procs:
        soft, _hard = proc.rlimit(psutil.RLIMIT_NOFILE)
        assert soft >= 8192 + 1024 or soft == psutil.RLIM_INFINITY
