"""OpenStack Swift as a production peer: Debian's packages, the s3api middleware built into
swift (≥ 2.18) and tempauth, started on loopback ports from a temporary directory.

One proxy (2 workers), one object server (2 workers), one container and one account server,
one memcached (the proxy caches account and container info there, as any real deployment
does), rings of one device and one replica, `mount_check = false`, fsync left at Swift's
defaults. Swift runs under Debian's /usr/bin/python3 (python3-swift), never our venv.

`python -m bench.swift serve WORK PORT` is the launcher the bench starts: it renders the
configs (`render_configs`), builds the rings, starts every server as its child and stops
them all on SIGTERM, so one pid carries the whole cluster's CPU and memory.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.servers import Proc, free_port
from bench.signing import Signer

SWIFT_PYTHON = "/usr/bin/python3"
RING_BUILDER = "swift-ring-builder"
ACCOUNT, USER, SECRET = "test", "tester", "testing"
ACCESS_KEY = f"{ACCOUNT}:{USER}"  # s3api + tempauth: the access key is account:user
SERVERS = ("account", "container", "object", "proxy")
SIGNER = Signer(ACCESS_KEY, SECRET)
WORKERS = 2  # proxy and object server workers: the machine's two cores, as Coffer's --workers 2
LAYOUT = f"s3api + tempauth, proxy and object server x{WORKERS} workers, 1 replica, memcached, fsync on"
APT_PACKAGES = ("swift", "swift-proxy", "swift-object", "swift-container", "swift-account", "memcached")


def missing() -> str:
    """Why Swift cannot run here ("" when it can)."""
    if not Path(SWIFT_PYTHON).exists():
        return f"{SWIFT_PYTHON} not found"
    if shutil.which(RING_BUILDER) is None or shutil.which("memcached") is None:
        return "swift or memcached not installed (python -m bench --install-deps)"
    probe = [SWIFT_PYTHON, "-c", "import swift.common.middleware.s3api.s3api"]
    if subprocess.run(probe, capture_output=True, check=False).returncode != 0:
        return "python3-swift has no s3api middleware"
    return ""


def version() -> str:
    out = subprocess.run(
        [SWIFT_PYTHON, "-c", "import swift; print(swift.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "?"


def render_configs(work: Path, ports: dict[str, int], workers: int = WORKERS) -> dict[str, str]:
    """Every config file of the cluster, by file name under `work` (swift_dir = work)."""
    devices = work / "devices"
    common = (
        f"[DEFAULT]\nbind_ip = 127.0.0.1\nswift_dir = {work}\ndevices = {devices}\n"
        f"user = {getpass.getuser()}\nmount_check = false\nlog_level = WARNING\n"
    )
    backend = "[pipeline:main]\npipeline = {name}-server\n\n[app:{name}-server]\nuse = egg:swift#{name}\n"
    files = {
        "swift.conf": (
            "[swift-hash]\nswift_hash_path_suffix = coffer-bench\nswift_hash_path_prefix = coffer-bench\n\n"
            "[storage-policy:0]\nname = Policy-0\ndefault = yes\n"
        ),
        "account-server.conf": common
        + f"bind_port = {ports['account']}\nworkers = 1\n\n"
        + backend.format(name="account"),
        "container-server.conf": common
        + f"bind_port = {ports['container']}\nworkers = 1\n\n"
        + backend.format(name="container"),
        "object-server.conf": common
        + f"bind_port = {ports['object']}\nworkers = {workers}\n\n"
        + backend.format(name="object"),
        "proxy-server.conf": common + f"bind_port = {ports['proxy']}\nworkers = {workers}\n\n"
        "[pipeline:main]\npipeline = catch_errors gatekeeper proxy-logging cache listing_formats "
        "s3api tempauth copy slo dlo proxy-logging proxy-server\n\n"
        "[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n\n"
        "[filter:catch_errors]\nuse = egg:swift#catch_errors\n\n"
        "[filter:gatekeeper]\nuse = egg:swift#gatekeeper\n\n"
        "[filter:proxy-logging]\nuse = egg:swift#proxy_logging\n\n"
        f"[filter:cache]\nuse = egg:swift#memcache\nmemcache_servers = 127.0.0.1:{ports['memcached']}\n\n"
        "[filter:listing_formats]\nuse = egg:swift#listing_formats\n\n"
        "[filter:s3api]\nuse = egg:swift#s3api\nlocation = us-east-1\n\n"
        f"[filter:tempauth]\nuse = egg:swift#tempauth\nuser_{ACCOUNT}_{USER} = {SECRET} .admin\n\n"
        "[filter:copy]\nuse = egg:swift#copy\n\n"
        "[filter:slo]\nuse = egg:swift#slo\n\n"
        "[filter:dlo]\nuse = egg:swift#dlo\n",
    }
    return files


def build_rings(work: Path, ports: dict[str, int]) -> None:
    """One device, one replica, 2^10 partitions per ring; the three rings built at once."""

    def build(ring: str) -> None:
        builder = str(work / f"{ring}.builder")
        for args in (
            ["create", "10", "1", "1"],
            ["add", f"r1z1-127.0.0.1:{ports[ring]}/d1", "100"],
            ["rebalance"],
        ):
            done = subprocess.run([RING_BUILDER, builder, *args], capture_output=True, text=True, check=False)
            if done.returncode not in (0, 1):  # 1: "warning" (e.g. balance) but written
                raise RuntimeError(f"{RING_BUILDER} {' '.join(args)}: {done.stdout}{done.stderr}")

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(build, ("account", "container", "object")))


def serve(work: Path, proxy_port: int) -> None:
    """Render, build the rings, start memcached and the four servers; wait; stop them on SIGTERM."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "devices" / "d1").mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in ("account", "container", "object", "memcached")}
    ports["proxy"] = proxy_port
    for name, text in render_configs(work, ports).items():
        (work / name).write_text(text)
    build_rings(work, ports)
    children: list[subprocess.Popen[bytes]] = []

    def stop(*_: object) -> None:
        for child in children:
            with contextlib.suppress(OSError):
                child.terminate()
        deadline = time.monotonic() + 10  # within the bench's 15 s for the launcher
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(max(0.1, deadline - time.monotonic()))
            if child.poll() is None:
                child.kill()
                child.wait()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    out = open(work / "servers.log", "ab")  # noqa: SIM115 (lives as long as this process)
    memcached = ["memcached", "-l", "127.0.0.1", "-p", str(ports["memcached"]), "-U", "0", "-m", "256"]
    if os.geteuid() == 0:
        memcached += ["-u", "root"]
    children.append(subprocess.Popen(memcached, stdout=out, stderr=subprocess.STDOUT))
    for name in SERVERS:  # the proxy last: the bench waits for its port
        if name == "proxy":
            for backend in ("account", "container", "object", "memcached"):
                wait_listening(ports[backend])
        binary = shutil.which(f"swift-{name}-server") or f"/usr/bin/swift-{name}-server"
        argv = [SWIFT_PYTHON, binary, str(work / f"{name}-server.conf"), "--verbose"]  # log to stderr
        children.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT))
    while True:
        for child in children:
            if child.poll() is not None:
                print(f"{child.args!r} exited with {child.returncode}", file=sys.stderr)
                stop()
        time.sleep(0.5)


def wait_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


class Swift(Proc):
    """The whole Swift cluster under one launcher process (`python -m bench.swift serve`)."""

    label = "OpenStack Swift (s3api + tempauth)"
    log_name = "launcher.out"
    start_timeout = 180.0  # rings, then five servers importing swift, on a busy 2-core machine

    def launch_command(self) -> list[str]:
        return [sys.executable, "-m", "bench.swift", "serve", str(self.work), str(self.port)]

    def start(self) -> Swift:
        super().start()
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        """The proxy's port opens before a worker answers: wait for any HTTP response."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 2) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(12).startswith(b"HTTP/1."):
                    return
            time.sleep(0.2)
        raise RuntimeError(f"Swift's proxy does not answer on port {self.port}")

    def log_tail(self, lines: int = 20) -> str:
        parts = []
        for name in (self.log_name, "servers.log"):
            path = self.work / name
            if path.exists():
                parts += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(parts)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit("usage: python -m bench.swift serve WORK PORT")
