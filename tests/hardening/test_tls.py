"""TLS on both ports: real clients verifying a throwaway CA, refusals, and the certificate
replaced under a running two-worker server with SIGHUP, without a worker restarting or an
open connection dropping."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.clients import BIN_DIR, client_env, run_cli
from tests.support.harness import (
    CofferServer,
    coffer_cmd,
    run_coffer,
    start_server,
    stop_server,
    worker_processes,
)
from tests.support.s3 import REGION, new_bucket, s3_client, unique
from tests.support.tlsca import Issued, ThrowawayCA, peer_serial


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return ThrowawayCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def served(ca: ThrowawayCA) -> Issued:
    """The paths the server is started with; tests replace what is in them."""
    first = ca.issue("first")
    live = Issued(ca.directory / "live.pem", ca.directory / "live.key", first.serial)
    install(first, live)
    return live


@pytest.fixture(scope="module")
def backend() -> str:
    return "sqlite"  # this module runs on SQLite only


@pytest.fixture(scope="module")
def server_options(ca: ThrowawayCA, served: Issued) -> dict[str, Any]:
    return {
        "workers": 2,
        "ca_file": ca.pem,
        "extra_args": ["--tls-cert", str(served.cert), "--tls-key", str(served.key)],
    }


def install(pair: Issued, live: Issued, *, cert: bool = True, key: bool = True) -> None:
    """Replace the served files the way an operator (or certbot) does: write, then rename."""
    for wanted, source, target in ((cert, pair.cert, live.cert), (key, pair.key, live.key)):
        if wanted:
            staged = target.with_suffix(".new")
            staged.write_bytes(source.read_bytes())
            os.replace(staged, target)
    live.serial = pair.serial


@contextlib.contextmanager
def handshake(port: int, context: ssl.SSLContext) -> Iterator[ssl.SSLSocket]:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        yield tls


def presented(port: int, ca: ThrowawayCA) -> int:
    """The serial of the certificate a new connection to `port` is shown."""
    with handshake(port, ca.client_context()) as tls:
        return peer_serial(tls)


def log_lines(server: CofferServer, message: str) -> list[dict[str, Any]]:
    lines = []
    for line in server.log().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and message in str(entry.get("message", "")):
                lines.append(entry)
    return lines


def hangup_and_wait(server: CofferServer, message: str) -> list[dict[str, Any]]:
    """SIGHUP the server; wait until every worker (or the one process) has logged `message` once more."""
    assert server.proc is not None
    workers = worker_pids(server) or {server.proc.pid}
    assert len(workers) == server.workers, workers
    seen = len(log_lines(server, message))
    os.kill(server.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        fresh = log_lines(server, message)[seen:]
        if {line.get("pid") for line in fresh} >= workers:
            return fresh
        time.sleep(0.1)
    raise AssertionError(f"not every worker logged {message!r} after SIGHUP:\n{server.log()[-3000:]}")


def worker_pids(server: CofferServer) -> set[int]:
    return {p.pid for p in worker_processes(server, server.s3_port)}


def test_boto3_and_the_aws_cli_over_tls(server: CofferServer, ca: ThrowawayCA, tmp_path: Path) -> None:
    key = server.mint_key(duration=0, name="tls")
    s3 = s3_client(server, key)  # https endpoint, verify=<ca.pem>
    bucket = new_bucket(s3, "tls")
    s3.put_object(Bucket=bucket, Key="boto.txt", Body=b"over TLS from boto3")
    assert s3.get_object(Bucket=bucket, Key="boto.txt")["Body"].read() == b"over TLS from boto3"

    home = tmp_path / "aws"
    home.mkdir()
    (home / "config").write_text(f"[default]\nregion = {REGION}\noutput = json\n")
    (home / "credentials").write_text(
        f"[default]\naws_access_key_id = {key['accessKeyId']}\naws_secret_access_key = {key['secretKey']}\n"
    )
    env = client_env(
        home / "home",
        AWS_CONFIG_FILE=str(home / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "credentials"),
    )
    aws = [str(BIN_DIR / "aws"), "--endpoint-url", server.s3_url]
    upload = tmp_path / "cli.txt"
    upload.write_bytes(b"over TLS from the aws cli\n")
    trusted = [*aws, "--ca-bundle", str(ca.pem)]
    run_cli([*trusted, "s3", "cp", "--no-progress", str(upload), f"s3://{bucket}/cli.txt"], env)
    run_cli(
        [*trusted, "s3", "cp", "--no-progress", f"s3://{bucket}/cli.txt", str(tmp_path / "back.txt")], env
    )
    assert (tmp_path / "back.txt").read_bytes() == upload.read_bytes()
    assert s3.get_object(Bucket=bucket, Key="cli.txt")["Body"].read() == upload.read_bytes()
    listed = json.loads(run_cli([*trusted, "s3api", "list-objects-v2", "--bucket", bucket], env).stdout)
    assert sorted(o["Key"] for o in listed["Contents"]) == ["boto.txt", "cli.txt"]

    # Without the CA the CLI refuses the certificate: the verification above was real.
    refused = run_cli([*aws, "s3", "ls", f"s3://{bucket}"], env, check=False)
    assert refused.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr, refused.stderr


def test_the_control_plane_over_tls(server: CofferServer, ca: ThrowawayCA) -> None:
    with server.api() as api:  # httpx trusting the CA
        r = api.post("/v1/cwobject/access-key", json={"durationSeconds": 900})
    assert r.status_code == 200, r.text
    assert r.json()["accessKeyId"]
    assert r.url.scheme == "https"

    # `coffer keys` finds the CA the way httpx does, through SSL_CERT_FILE.
    env = {**os.environ, "SSL_CERT_FILE": str(ca.pem), "COFFER_API_TOKEN": server.admin_token}
    result = run_cli(
        [*coffer_cmd(), "keys", "--endpoint", server.api_url, "create", "--duration", "900", "--json"],
        env,
        timeout=60,
    )
    assert json.loads(result.stdout)["accessKeyId"]


def test_tls_1_2_is_accepted_by_default(server: CofferServer, ca: ThrowawayCA) -> None:
    context = ca.client_context(maximum_version=ssl.TLSVersion.TLSv1_2)
    for port in (server.api_port, server.s3_port):
        with handshake(port, context) as tls:
            assert tls.version() == "TLSv1.2"
            assert tls.selected_alpn_protocol() in (None, "http/1.1")
    with httpx.Client(verify=context) as client:
        assert client.get(server.s3_url + "/healthz").status_code == 200


def test_plain_http_to_a_tls_port_fails_cleanly(server: CofferServer, ca: ThrowawayCA) -> None:
    workers = worker_pids(server)
    for url in (server.api_url, server.s3_url):
        plain = url.replace("https://", "http://")
        with pytest.raises(httpx.TransportError):
            httpx.get(plain + "/healthz", timeout=10)
    # And a raw socket gets no HTTP answer either, just a closed connection.
    with socket.create_connection(("127.0.0.1", server.s3_port), timeout=10) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = raw.recv(4096)
    assert not answer.startswith(b"HTTP/"), answer
    with httpx.Client(verify=server.verify) as client:
        assert client.get(server.s3_url + "/healthz").status_code == 200
        assert client.get(server.api_url + "/healthz").status_code == 200
    assert worker_pids(server) == workers
    assert "Traceback" not in server.log()


def test_min_version_1_3_refuses_1_2(ca: ThrowawayCA, tmp_path: Path) -> None:
    pair = ca.issue("strict")
    srv = start_server(
        tmp_path,
        "sqlite",
        ca_file=ca.pem,
        extra_args=["--tls-cert", str(pair.cert), "--tls-key", str(pair.key), "--tls-min-version", "1.3"],
    )
    try:
        old = ca.client_context(maximum_version=ssl.TLSVersion.TLSv1_2)
        for port in (srv.api_port, srv.s3_port):
            with pytest.raises(ssl.SSLError), handshake(port, old):
                pass
            with handshake(port, ca.client_context()) as tls:
                assert tls.version() == "TLSv1.3"
        with httpx.Client(verify=ca.client_context(minimum_version=ssl.TLSVersion.TLSv1_3)) as client:
            assert client.get(srv.s3_url + "/healthz").status_code == 200

        # A single-process server reloads on SIGHUP too, and keeps its minimum version.
        renewed = ca.issue("strict-renewed")
        install(renewed, pair)
        hangup_and_wait(srv, "reloaded the TLS certificate")
        assert srv.proc is not None and srv.proc.poll() is None
        assert presented(srv.s3_port, ca) == renewed.serial
        with pytest.raises(ssl.SSLError), handshake(srv.s3_port, old):
            pass
    finally:
        stop_server(srv)


def test_sighup_swaps_the_certificate_in_place(server: CofferServer, ca: ThrowawayCA, served: Issued) -> None:
    before = served.serial
    assert presented(server.s3_port, ca) == before
    workers = worker_pids(server)
    # A keep-alive connection opened before the reload.
    kept = http.client.HTTPSConnection("127.0.0.1", server.s3_port, timeout=10, context=ca.client_context())
    kept.request("GET", "/healthz")
    first = kept.getresponse()
    assert first.status == 200
    first.read()
    kept_socket = kept.sock
    assert isinstance(kept_socket, ssl.SSLSocket)
    assert peer_serial(kept_socket) == before

    renewed = ca.issue("renewed")
    install(renewed, served)
    lines = hangup_and_wait(server, "reloaded the TLS certificate")
    assert all(line["serial"] == f"{renewed.serial:x}" for line in lines), lines

    for port in (server.api_port, server.s3_port):
        # Enough new connections that both workers (SO_REUSEPORT) are shown to have it.
        assert {presented(port, ca) for _ in range(12)} == {renewed.serial}
    kept.request("GET", "/healthz")
    response = kept.getresponse()
    assert response.status == 200
    response.read()
    assert kept.sock is kept_socket, "the old connection was replaced"
    assert peer_serial(kept_socket) == before
    kept.close()
    with server.api() as api:
        assert api.get("/healthz").status_code == 200
    assert worker_pids(server) == workers


@pytest.mark.parametrize("broken", ["garbage", "mismatched", "missing"])
def test_a_bad_replacement_keeps_the_old_certificate(
    server: CofferServer, ca: ThrowawayCA, served: Issued, broken: str
) -> None:
    current = served.serial
    good_cert, good_key = served.cert.read_bytes(), served.key.read_bytes()
    workers = worker_pids(server)
    if broken == "garbage":
        served.cert.write_text("not a certificate\n")
    elif broken == "mismatched":
        # A new certificate whose key was not installed: OpenSSL would take the
        # certificate into the live context and then fail on the old key.
        served.cert.write_bytes(ca.issue("orphan").cert.read_bytes())
    else:
        served.key.unlink()
    try:
        lines = hangup_and_wait(server, "cannot reload the TLS certificate")
        assert all(line["level"] == "error" for line in lines)
        for port in (server.api_port, server.s3_port):
            assert {presented(port, ca) for _ in range(8)} == {current}
        with server.api() as api:
            assert api.get("/healthz").status_code == 200
        assert worker_pids(server) == workers
    finally:
        served.cert.write_bytes(good_cert)
        served.key.write_bytes(good_key)


def test_the_console_lists_buckets_over_tls(server: CofferServer, ca: ThrowawayCA, served: Issued) -> None:
    """The console's backend signs S3 requests to the node's own TLS port."""
    key = server.mint_key(duration=0, name="console-tls")
    bucket = unique("console-tls")
    s3_client(server, key).create_bucket(Bucket=bucket)

    def list_via_console() -> list[str]:
        # A client per call, so both workers (each with its own backend) get asked.
        with httpx.Client(base_url=server.api_url, verify=server.verify, timeout=30) as browser:
            r = browser.post("/console/api/session", json={"token": server.admin_token})
            assert r.status_code == 200, r.text
            assert r.json()["s3Endpoint"] == server.s3_url
            assert r.cookies.get("__Host-coffer-session"), r.headers.get("set-cookie")
            r = browser.get("/console/api/buckets")  # the cookie jar sends the Secure cookie
            assert r.status_code == 200, r.text
            return [b["name"] for b in r.json()["buckets"]]

    for _ in range(4):
        assert bucket in list_via_console()

    # After a reload the backend trusts the new certificate too. Its pooled connections
    # (idle ones expire after httpx's 5 s) give way to new handshakes, which must verify.
    install(ca.issue("console"), served)
    hangup_and_wait(server, "reloaded the TLS certificate")
    time.sleep(6)
    for _ in range(4):
        assert bucket in list_via_console()
    assert "CERTIFICATE_VERIFY_FAILED" not in server.log()


def test_a_bad_certificate_fails_the_start(ca: ThrowawayCA, tmp_path: Path) -> None:
    pair, other = ca.issue("start"), ca.issue("other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = {
        "holds no PEM certificate": (garbage, pair.key),
        "is not the key of the first certificate": (pair.cert, other.key),
        "No such file": (tmp_path / "absent.pem", pair.key),
    }
    for expected, (cert, key) in cases.items():
        data = tmp_path / f"data-{len(expected)}"
        result = run_coffer(
            "serve", "--data-dir", str(data), "--tls-cert", str(cert), "--tls-key", str(key), timeout=60
        )
        assert result.returncode == 2, result.stderr
        message = result.stderr.strip()
        assert message.startswith("Error: cannot start: tls"), message
        assert expected in message and "\n" not in message, message
        assert not (data / "coffer.db").exists(), "the store was touched before the check"
