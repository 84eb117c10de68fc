"""A Coffer cluster for end-to-end tests and the bench: three `coffer serve` nodes (two workers
each) on one fresh PostgreSQL database and one data directory, behind a real nginx that the
harness configures and starts on loopback ports.

nginx spreads requests round-robin, so consecutive calls of one client land on different
nodes. `Cluster.front` is a CofferServer whose ports are nginx's: every helper that takes a
server (s3_client, mint_key, api, cli) works through the balancer with it; `Cluster.nodes[i]`
are the nodes themselves, on their own direct ports. The fault tests pull a node's plug with
`kill(i)` and bring it back on the same ports with `restart(i)`.

`nginx_conf()` is the one template: docs/deployment.md shows it rendered for example
addresses, and tests/multinode/test_deployment_doc.py checks the two agree.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.harness import CofferServer, create_pg_database, drop_pg_database, free_ports

NGINX = os.environ.get("COFFER_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"

# Seconds, matching coffer/limits.py: nginx gives up on a client no sooner than a node would,
# and drops an idle upstream connection before the node does (so it never reuses one the
# node has just closed).
HEAD_TIMEOUT = 10
BODY_IDLE_TIMEOUT = 30
WRITE_TIMEOUT = 60
KEEPALIVE_TIMEOUT = 30
UPSTREAM_IDLE = KEEPALIVE_TIMEOUT - 5
READ_TIMEOUT = 300  # a CompleteMultipartUpload of many parts may think for a while


def nginx_conf(
    *,
    s3_nodes: list[str],
    api_nodes: list[str],
    s3_listen: str,
    api_listen: str,
    work: str,
    user: str = "",
) -> str:
    """nginx.conf for nodes `s3_nodes` / `api_nodes` (host:port each), listening on
    `s3_listen` / `api_listen`, its pid, logs and temp files under `work`. `user` is a `user`
    directive (a root test run needs one so the workers can use `work`)."""
    s3_servers = "\n".join(f"    server {n} max_fails=1 fail_timeout=2s;" for n in s3_nodes)
    api_servers = "\n".join(f"    server {n} max_fails=1 fail_timeout=2s;" for n in api_nodes)
    temps = "\n".join(
        f"  {name}_temp_path {work}/{name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    head = f"{user}\n" if user else ""
    return f"""{head}worker_processes 2;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 4096; }}

http {{
  log_format upstream '$remote_addr "$request" $status $upstream_addr $request_time';
  access_log {work}/access.log upstream;
{temps}

  # Bodies stream both ways: an upload reaches a node as it arrives (the node checks its
  # signature and checksums, and a 200 means on disk), and a download leaves as it is read.
  client_max_body_size 0;
  proxy_request_buffering off;
  proxy_buffering off;
  proxy_http_version 1.1;

  # Coffer's own timeouts (coffer/limits.py): head 10 s, idle body 30 s, stalled reader 60 s,
  # keep-alive 30 s.
  client_header_timeout {HEAD_TIMEOUT}s;
  client_body_timeout {BODY_IDLE_TIMEOUT}s;
  send_timeout {WRITE_TIMEOUT}s;
  keepalive_timeout {KEEPALIVE_TIMEOUT}s;
  keepalive_requests 100000;
  proxy_connect_timeout 5s;
  proxy_send_timeout {BODY_IDLE_TIMEOUT}s;
  proxy_read_timeout {READ_TIMEOUT}s;
  # A request head may be 16 KiB (MAX_HEAD_BYTES): let nginx read as much.
  large_client_header_buffers 4 16k;
  # A node that refuses connections (stopped, restarting) is skipped for a request nginx has
  # not yet sent; a request already sent is never replayed (its body is gone).
  proxy_next_upstream error timeout;
  proxy_next_upstream_tries 3;

  upstream coffer_s3 {{
{s3_servers}
    keepalive 64;
    keepalive_timeout {UPSTREAM_IDLE}s;
  }}
  upstream coffer_api {{
{api_servers}
    keepalive 64;
    keepalive_timeout {UPSTREAM_IDLE}s;
  }}

  server {{
    listen {s3_listen} reuseport;
    location / {{
      proxy_pass http://coffer_s3;
      proxy_set_header Host $http_host;  # SigV4 signs it, port and all
      proxy_set_header Connection "";    # keep the upstream connection alive
    }}
  }}
  server {{
    listen {api_listen} reuseport;
    location / {{
      proxy_pass http://coffer_api;
      proxy_set_header Host $http_host;
      proxy_set_header Connection "";
    }}
  }}
}}
"""


@dataclass
class Balancer:
    """nginx in front of the nodes, its files under `work`."""

    work: Path
    s3_port: int = 0
    api_port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def conf_path(self) -> Path:
        return self.work / "nginx.conf"

    def write_conf(self, nodes: list[CofferServer]) -> None:
        self.conf_path.write_text(
            nginx_conf(
                s3_nodes=[f"127.0.0.1:{n.s3_port}" for n in nodes],
                api_nodes=[f"127.0.0.1:{n.api_port}" for n in nodes],
                s3_listen=f"127.0.0.1:{self.s3_port}",
                api_listen=f"127.0.0.1:{self.api_port}",
                work=str(self.work),
                user="user root root;" if os.geteuid() == 0 else "",
            )
        )

    def start(self, nodes: list[CofferServer]) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.s3_port, self.api_port = free_ports(2)
        self.write_conf(nodes)
        cmd = [NGINX, "-p", str(self.work), "-c", str(self.conf_path), "-g", "daemon off;"]
        with open(self.work / "nginx.out", "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.s3_port}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"nginx did not start:\n{self.log()}")

    def reload(self, nodes: list[CofferServer]) -> None:
        """New upstream ports (a node restarted elsewhere): rewrite the config, SIGHUP nginx."""
        self.write_conf(nodes)
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)  # the new workers take over; old ones finish their requests

    def log(self) -> str:
        files = (self.work / "nginx.out", self.work / "error.log")
        return "\n".join(p.read_text(errors="replace") for p in files if p.exists())[-4000:]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish the requests in flight
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class Cluster:
    """`nodes` behind `balancer`; `front` reaches them through it. Built by `running_cluster`."""

    nodes: list[CofferServer]
    balancer: Balancer
    database_url: str
    data_dir: Path
    front: CofferServer = field(init=False)

    def __post_init__(self) -> None:
        self.front = CofferServer(data_dir=self.data_dir, database_url=self.database_url)
        self.front.api_port, self.front.s3_port = self.balancer.api_port, self.balancer.s3_port

    @property
    def s3_url(self) -> str:
        return self.front.s3_url

    @property
    def api_url(self) -> str:
        return self.front.api_url

    def kill(self, i: int) -> None:
        """SIGKILL node i's supervisor and its workers at once, mid-request or not."""
        import psutil

        node = self.nodes[i]
        if node.proc is None or node.proc.poll() is not None:
            return
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(node.proc.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.kill()
        node.kill()

    def stop_node(self, i: int) -> None:
        """SIGTERM node i: graceful, in-flight requests finish."""
        self.nodes[i].stop()

    def restart(self, i: int) -> None:
        """Start node i again (stopped or killed) on its ports; if one was taken meanwhile it
        comes up elsewhere and nginx is told."""
        node = self.nodes[i]
        before = (node.api_port, node.s3_port)
        node.start()
        if (node.api_port, node.s3_port) != before:
            self.balancer.reload(self.nodes)

    def internal_errors(self) -> list[str]:
        """What says a bug: a 500 that nginx passed on, and every node log line at error level
        or with a traceback. (A 502/504 from nginx itself is a fault test's business.)"""
        found = []
        access = self.balancer.work / "access.log"
        if access.exists():
            found += [line for line in access.read_text().splitlines() if '" 500 ' in line]
        for node in self.nodes:
            for line in node.log().splitlines():
                if "Traceback" in line or '"level":"error"' in line or '"level":"critical"' in line:
                    found.append(line)
        return found

    def alive(self, i: int) -> bool:
        proc = self.nodes[i].proc
        return proc is not None and proc.poll() is None


def _start_all(nodes: list[CofferServer]) -> None:
    """The first node migrates and bootstraps; the others start together after it."""
    nodes[0].start()
    errors: list[BaseException] = []

    def start(node: CofferServer) -> None:
        try:
            node.start()
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(n,)) for n in nodes[1:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@contextlib.contextmanager
def running_cluster(tmp: Path, *, size: int = 3, workers: int = 2, **kw: Any) -> Iterator[Cluster]:
    """`size` nodes of `workers` workers on a fresh PostgreSQL database and one data directory
    under `tmp`, behind nginx; `kw` are every node's CofferServer keyword arguments (env,
    extra_args). Everything is stopped and the database dropped afterwards."""
    url = create_pg_database()
    data = tmp / "data"
    nodes = [
        CofferServer(data_dir=data, database_url=url, workers=workers, log_path=tmp / f"node-{i}.log", **kw)
        for i in range(size)
    ]
    balancer = Balancer(tmp / "nginx")
    try:
        _start_all(nodes)
        balancer.start(nodes)
        cluster = Cluster(nodes=nodes, balancer=balancer, database_url=url, data_dir=data)
        yield cluster
    finally:
        balancer.stop()
        for node in nodes:
            node.stop()
        drop_pg_database(url)
