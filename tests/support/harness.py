"""Starts real Coffer server processes for end-to-end tests and drives its CLI."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

PG_ADMIN_DSN = os.environ.get("COFFER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """n distinct ephemeral ports: all sockets stay bound until every port is chosen, since
    the kernel may hand a just-closed port out again (a CI run got api_port == s3_port)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


def postgres_available() -> str | None:
    """None when reachable, else the reason it is not."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as exc:
        return f"PostgreSQL at {PG_ADMIN_DSN} is not reachable: {exc}"


def create_pg_database() -> str:
    """A fresh database per server, so parallel test workers never share state."""
    import psycopg

    name = "coffer_t_" + secrets.token_hex(6)
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_pg_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with contextlib.suppress(Exception), psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def coffer_cmd() -> list[str]:
    return [sys.executable, "-m", "coffer"]


def run_coffer(
    *args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`coffer <args>` as its own process (environment `env`, else this one's); the exit
    status is the caller's to check."""
    return subprocess.run(
        [*coffer_cmd(), *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class CofferServer:
    data_dir: Path
    database_url: str = ""
    workers: int = 1
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    ca_file: Path | None = None  # set when extra_args turn TLS on: the CA that signed its certificate
    api_port: int = 0
    s3_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.ca_file else "http"

    @property
    def api_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.api_port}"

    @property
    def s3_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.s3_port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """httpx's `verify=`: trusting `ca_file` when TLS is on."""
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else True

    @property
    def store_args(self) -> list[str]:
        args = ["--data-dir", str(self.data_dir)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        return args

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin-token").read_text().strip()

    @property
    def budget_args(self) -> list[str]:
        """The failed-authentication budget is off unless a test sets it: every test client
        comes from 127.0.0.1, so one module's deliberate failures (bad signatures, suspended
        keys) would throttle its next test. tests/hardening/test_abuse_limits.py tests the budget."""
        return [] if "--auth-failure-limit" in self.extra_args else ["--auth-failure-limit", "0"]

    def start(self, timeout: float = 60) -> CofferServer:
        for _attempt in range(5):
            if not self.api_port or _attempt:
                self.api_port, self.s3_port = free_ports(2)
            # nodes sharing a data directory may each be given a log of their own
            self.log_path = self.log_path or self.data_dir.parent / f"{self.data_dir.name}-server.log"
            self.data_dir.mkdir(parents=True, exist_ok=True)
            log = open(self.log_path, "ab")  # lives as long as the process
            args = [
                *coffer_cmd(),
                "serve",
                *self.store_args,
                "--host",
                "127.0.0.1",
                "--api-port",
                str(self.api_port),
                "--s3-port",
                str(self.s3_port),
                "--workers",
                str(self.workers),
                *self.budget_args,
                *self.extra_args,
            ]
            env = {**os.environ, **self.env}
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
            if self._wait_ready(timeout):
                return self
            self.stop()
            if "address already in use" not in self.log().lower():
                break
        raise RuntimeError(f"coffer did not start; log:\n{self.log()[-4000:]}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            try:
                a = httpx.get(self.api_url + "/healthz", timeout=1, verify=self.verify)
                b = httpx.get(self.s3_url + "/healthz", timeout=1, verify=self.verify)
                if a.status_code == 200 and b.status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return False

    def log(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")
        return ""

    def audit(
        self, event: str | None = None, /, *, from_log: bool = False, **match: Any
    ) -> list[dict[str, Any]]:
        """The audit trail, oldest first: the JSON lines of `<data_dir>/audit.log` (the server's
        and the CLI's events; none before the file exists), or with `from_log` the `coffer.audit`
        lines of the server's own log (its events only). Only entries of `event`, if given, whose
        fields equal `match` (a missing field equals None)."""
        if from_log:
            lines = [line for line in self.log().splitlines() if '"coffer.audit"' in line]
        else:
            path = self.data_dir / "audit.log"
            lines = path.read_text().splitlines() if path.exists() else []
        entries = [json.loads(line) for line in lines if line.strip()]
        if from_log:
            entries = [e for e in entries if e.get("logger") == "coffer.audit"]
        return [
            e
            for e in entries
            if (event is None or e.get("event") == event) and all(e.get(k) == v for k, v in match.items())
        ]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        """SIGKILL: the crash tests' way of pulling the plug."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def cli(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `coffer <args>`; store-level commands get this server's --data-dir/--database-url."""
        store_cmds = {"admin", "federation"}  # `coffer policy` talks HTTP, like `coffer keys`
        argv = [*args, *self.store_args] if args and args[0] in store_cmds else list(args)
        result = run_coffer(*argv, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"coffer {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def create_user(self, name: str, *, admin: bool = False, groups: tuple[str, ...] = ()) -> tuple[str, str]:
        """Create a user and an API token for it; returns (principal name, token)."""
        args = ["admin", "user", "create", name, "--json"]
        if admin:
            args.append("--admin")
        for g in groups:
            args += ["--group", g]
        created = json.loads(self.cli(*args).stdout)
        token = self.cli("admin", "token", "create", "--user", name).stdout.strip()
        return created["principalName"], token

    def api(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return httpx.Client(base_url=self.api_url, headers=headers, timeout=30, verify=self.verify)

    def mint_key(self, token: str | None = None, duration: int = 0, **attributes: str) -> dict[str, Any]:
        with self.api(token) as c:
            body: dict[str, Any] = {"durationSeconds": duration}
            if attributes:
                body["attributes"] = attributes
            r = c.post("/v1/cwobject/access-key", json=body)
            r.raise_for_status()
            data: dict[str, Any] = r.json()
            return data


def start_server(tmp: Path, backend: str, **kw: Any) -> CofferServer:
    url = create_pg_database() if backend == "postgres" else ""
    server = CofferServer(data_dir=tmp / "data", database_url=url, **kw)
    try:
        return server.start()
    except Exception:
        if url:
            drop_pg_database(url)
        raise


def stop_server(server: CofferServer) -> None:
    server.stop()
    if server.database_url:
        drop_pg_database(server.database_url)


@contextlib.contextmanager
def running_server(tmp: Path, backend: str, **kw: Any) -> Iterator[CofferServer]:
    """start_server(tmp, backend, **kw) for the block, stop_server() after it."""
    server = start_server(tmp, backend, **kw)
    try:
        yield server
    finally:
        stop_server(server)


@contextlib.contextmanager
def three_nodes(tmp: Path, **kw: Any) -> Iterator[dict[str, CofferServer]]:
    """Nodes "a", "b" and "c" on one fresh PostgreSQL database, each started with `kw`
    (CofferServer's env, extra_args, ...): A and B share the data directory too; C only the
    database (and the master key), so nothing but PostgreSQL can tell it what A and B saw."""
    env: dict[str, str] = kw.pop("env", {})
    a = start_server(tmp, "postgres", env=env, **kw)
    started = [a]
    try:
        b = CofferServer(data_dir=a.data_dir, database_url=a.database_url, env=env, **kw).start()
        started.append(b)
        master_key = (a.data_dir / "master.key").read_text().strip()
        c = CofferServer(
            data_dir=tmp / "node-c",
            database_url=a.database_url,
            env={**env, "COFFER_MASTER_KEY": master_key},
            **kw,
        ).start()
        started.append(c)
        yield {"a": a, "b": b, "c": c}
    finally:
        for node in reversed(started[1:]):
            node.stop()
        stop_server(a)


def worker_processes(server: CofferServer, port: int) -> list[Any]:
    """The processes listening on `port`: uvicorn's workers, not its supervisor."""
    import psutil

    assert server.proc is not None
    found = []
    for child in psutil.Process(server.proc.pid).children(recursive=True):
        try:
            conns = child.net_connections(kind="tcp")
        except psutil.Error:
            continue
        if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in conns):
            found.append(child)
    return found


def connection_owner(procs: list[Any], port: int, client_port: int) -> int | None:
    """Which of `procs` holds the server side of the connection from `client_port`."""
    for proc in procs:
        for c in proc.net_connections(kind="tcp"):
            if c.laddr.port == port and c.raddr and c.raddr.port == client_port:
                return int(proc.pid)
    return None
