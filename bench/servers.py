"""Everything the benchmark starts besides Coffer: nginx (the loopback baseline), a Python
sendfile fallback, a discard sink (what the client alone costs on PUT), and moto (the peer).

Run as `python -m bench.servers sendfile ROOT PORT` or `python -m bench.servers sink PORT`
for the Python servers (they live in their own process, like nginx, so they never share
the benchmark's GIL).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Self

import psutil

MOTO_VENV = Path(os.environ.get("COFFER_BENCH_CACHE", Path.home() / ".cache" / "coffer-bench")) / "moto-venv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


class Proc:
    """A child process we started on a free port, its output in `work/<log_name>`; stopped
    by its pid only. Subclasses say what to run (`launch_command`)."""

    label = "process"
    log_name = "process.out"
    start_timeout = 30.0  # seconds for the port to open

    def __init__(self, work: Path) -> None:
        self.work = work
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def launch_command(self) -> list[str]:
        """The argv to run, listening on `self.port` (and any config file it needs, written)."""
        raise NotImplementedError

    def launch_environment(self) -> dict[str, str] | None:
        return None  # inherit ours

    def start(self) -> Self:
        self.port = free_port()
        self.work.mkdir(parents=True, exist_ok=True)
        with open(self.work / self.log_name, "ab") as out:
            self.proc = subprocess.Popen(
                self.launch_command(), stdout=out, stderr=subprocess.STDOUT, env=self.launch_environment()
            )
        wait_port(self.port, self.proc, self.start_timeout)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _python_server(kind: str, *args: object) -> list[str]:
    """The argv of one of this module's own servers (`python -m bench.servers KIND ...`)."""
    return [sys.executable, "-m", "bench.servers", kind, *map(str, args)]


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


class Nginx(Proc):
    """nginx serving `root` with sendfile: the zero-copy loopback ceiling for GET."""

    label = "nginx sendfile"
    log_name = "nginx.out"

    def __init__(self, root: Path, work: Path, workers: int) -> None:
        super().__init__(work)
        self.root, self.workers = root, workers

    def launch_command(self) -> list[str]:
        binary = nginx_binary()
        assert binary is not None
        user = "user root root;" if os.geteuid() == 0 else ""
        temp = "\n".join(
            f"  {name}_temp_path {self.work / name};"
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        conf = self.work / "nginx.conf"
        conf.write_text(
            f"""{user}
worker_processes {self.workers};
daemon off;
pid {self.work / "nginx.pid"};
error_log {self.work / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  default_type application/octet-stream;
{temp}
  server {{
    listen 127.0.0.1:{self.port};
    root {self.root};
    location / {{ }}
  }}
}}
"""
        )
        return [binary, "-p", str(self.work), "-c", str(conf)]

    def stop(self, sig: int = signal.SIGQUIT) -> None:
        super().stop(sig)


class PySendfile(Proc):
    """Fallback GET baseline when nginx is missing: a Python server that calls sendfile."""

    label = "python sendfile (nginx not installed)"
    log_name = "sendfile.out"

    def __init__(self, root: Path, work: Path) -> None:
        super().__init__(work)
        self.root = root

    def launch_command(self) -> list[str]:
        return _python_server("sendfile", self.root, self.port)


class Sink(Proc):
    """Reads request bodies into one buffer and drops them: what the PUT client costs alone."""

    label = "discard sink"
    log_name = "sink.out"

    def launch_command(self) -> list[str]:
        return _python_server("sink", self.port)


def moto_python(explicit: str | None = None) -> str | None:
    """An interpreter that can import moto.server: --moto-python, this one, or the bench cache venv."""
    candidates = [explicit] if explicit else [sys.executable, str(MOTO_VENV / "bin" / "python")]
    for python in candidates:
        if python and Path(python).exists():
            ok = subprocess.run([python, "-c", "import moto.server, flask"], capture_output=True, check=False)
            if ok.returncode == 0:
                return python
    return None


class Moto(Proc):
    """moto's server (Werkzeug, threaded): S3 without signature checks, objects in memory."""

    label = "moto (no signature checks)"
    log_name = "moto.out"

    def __init__(self, python: str, work: Path) -> None:
        super().__init__(work)
        self.python = python

    def launch_command(self) -> list[str]:
        return [self.python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    def launch_environment(self) -> dict[str, str]:
        return {**os.environ, "MOTO_PORT": str(self.port)}

    @property
    def version(self) -> str:
        out = subprocess.run(
            [self.python, "-c", "import moto; print(moto.__version__)"],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.strip()


# --- resident memory --------------------------------------------------------------------------


class RssSampler:
    """Samples the resident set of a process and its children every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_total = 0
        self.peak_single = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def snapshot(self) -> tuple[int, int]:
        total = single = 0
        for proc in [self.root, *self.root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                rss = proc.memory_info().rss
                total += rss
                single = max(single, rss)
        return total, single

    def _run(self) -> None:
        while not self._stop.is_set():
            total, single = self.snapshot()
            self.peak_total = max(self.peak_total, total)
            self.peak_single = max(self.peak_single, single)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- the Python servers, run in their own process ---------------------------------------------


def _read_head(conn: socket.socket, pending: bytes) -> tuple[bytes, bytes] | None:
    while b"\r\n\r\n" not in pending:
        data = conn.recv(65536)
        if not data:
            return None
        pending += data
    head, _, rest = pending.partition(b"\r\n\r\n")
    return head, rest


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def _serve_sendfile(conn: socket.socket, root: Path) -> None:
    pending = b""
    with conn:
        while (got := _read_head(conn, pending)) is not None:
            head, pending = got
            path = head.split(b" ")[1].decode().split("?")[0]
            target = (root / path.lstrip("/")).resolve()
            if not target.is_relative_to(root) or not target.is_file():
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                continue
            with open(target, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
                conn.sendfile(f)


def _serve_sink(conn: socket.socket) -> None:
    buf = memoryview(bytearray(1 << 20))
    pending = b""
    with conn:
        while (got := _read_head(conn, pending)) is not None:
            head, rest = got
            left = _content_length(head) - len(rest)
            pending = b"" if left >= 0 else rest[len(rest) + left :]
            while left > 0:
                n = conn.recv_into(buf, min(left, len(buf)))
                if not n:
                    return
                left -= n
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


_HELLO = b"x" * 4096


async def hello_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The least an ASGI app can do per request: GET answers 4 KiB, PUT reads its body."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = _HELLO if scope["method"] == "GET" else b""
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/octet-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class HelloASGI(Proc):
    """uvicorn + httptools + uvloop running `hello_app`, as many workers as Coffer: the
    ceiling of the HTTP stack Coffer is built on, for small requests."""

    label = "uvicorn hello app"
    log_name = "asgi.out"

    def __init__(self, work: Path, workers: int) -> None:
        super().__init__(work)
        self.workers = workers

    def launch_command(self) -> list[str]:
        return _python_server("asgi", self.workers, self.port)


def _serve_asgi(workers: int, port: int) -> None:
    import uvicorn

    uvicorn.run(
        "bench.servers:hello_app",
        host="127.0.0.1",
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
    )


def _main(argv: list[str]) -> None:
    kind = argv[0]
    if kind == "asgi":
        _serve_asgi(int(argv[1]), int(argv[2]))
        return
    port = int(argv[-1])
    root = Path(argv[1]).resolve() if kind == "sendfile" else None
    listener = socket.create_server(("127.0.0.1", port), backlog=128)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if root is not None:
            threading.Thread(target=_serve_sendfile, args=(conn, root), daemon=True).start()
        else:
            threading.Thread(target=_serve_sink, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    _main(sys.argv[1:])
