"""Closed-loop load from pools of pre-built requests: wrk when installed, else a small asyncio client.

A pool is a list of complete HTTP/1.1 requests (signed or presigned beforehand), replayed in
turn by every connection for a fixed time. wrk runs its event loop in C with one thread, so
on a 2-core machine it leaves the server nearly all the CPU; the asyncio fallback costs more
and is labelled in every result it produces.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common import percentile


@dataclass
class Load:
    tool: str
    concurrency: int
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    cpu_us: float | None = None  # server CPU per request, when the caller measured it

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "rate": self.rate}


def raw_request(method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", *(f"{k}: {v}" for k, v in headers)]
    if body or method in ("PUT", "POST"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


# --- wrk -------------------------------------------------------------------------------------


def _lua_string(data: bytes) -> str:
    out = ['"']
    for b in data:
        if 32 <= b < 127 and b not in (34, 92):
            out.append(chr(b))
        else:
            out.append(f"\\{b:03d}")
    out.append('"')
    return "".join(out)


_LUA_TAIL = r"""
local reqs = {}
for i, h in ipairs(H) do reqs[i] = h[1] .. B[h[2]] end
local n = #reqs
local idx = 0
local threads = 0
setup = function(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
init = function(args)
  idx = ((tid or 0) * 7919) % n
end
request = function()
  idx = idx % n + 1
  return reqs[idx]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50":%.0f,"p90":%.0f,"p99":%.0f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


def _lua_pool(pool: list[bytes]) -> str:
    heads: list[tuple[bytes, int]] = []
    bodies: dict[bytes, int] = {}
    for req in pool:
        head, _, body = req.partition(b"\r\n\r\n")
        index = bodies.setdefault(body, len(bodies) + 1)
        heads.append((head + b"\r\n\r\n", index))
    lines = ["B = {"]
    lines += [f"  {_lua_string(body)}," for body in bodies]
    lines.append("}")
    lines.append("H = {")
    lines += [f"  {{{_lua_string(head)}, {index}}}," for head, index in heads]
    lines.append("}")
    return "\n".join(lines) + _LUA_TAIL


def run_wrk(host: str, port: int, pool: list[bytes], concurrency: int, seconds: float) -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_lua_pool(pool))
        script = f.name
    try:
        cmd = [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "30s",
            "-s",
            script,
            f"http://{host}:{port}/",
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=seconds + 120)
    finally:
        Path(script).unlink(missing_ok=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk produced no result: {out.stdout[-1000:]} {out.stderr[-1000:]}")
    r = json.loads(line[len("WRKJSON ") :])
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return Load(
        tool="wrk",
        concurrency=concurrency,
        requests=r["requests"],
        seconds=r["duration_us"] / 1e6,
        errors=errors,
        p50_ms=r["p50"] / 1000,
        p90_ms=r["p90"] / 1000,
        p99_ms=r["p99"] / 1000,
    )


# --- asyncio fallback ------------------------------------------------------------------------


def parse_head(head: bytes) -> tuple[int, int | None, bool]:
    """A response head's status, Content-Length (None: absent) and whether the server closes."""
    status = int(head.split(b" ", 2)[1])
    length: int | None = None
    close = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    return status, length, close


async def _one_connection(
    host: str, port: int, pool: list[bytes], start: int, deadline: float, lat: list[float], errs: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = start
    try:
        while time.perf_counter() < deadline:
            req = pool[i % len(pool)]
            i += 1
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            status, length, close = parse_head(head)
            if length:
                await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            if status >= 400:
                errs.append(status)
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


def run_python(host: str, port: int, pool: list[bytes], concurrency: int, seconds: float) -> Load:
    lat: list[float] = []
    errs: list[int] = []

    async def main() -> float:
        t0 = time.perf_counter()
        deadline = t0 + seconds
        step = max(1, len(pool) // concurrency)
        await asyncio.gather(
            *(_one_connection(host, port, pool, c * step, deadline, lat, errs) for c in range(concurrency))
        )
        return time.perf_counter() - t0

    elapsed = asyncio.run(main())
    ms = sorted(t * 1000 for t in lat)
    p50, p90, p99 = (percentile(ms, f) for f in (0.5, 0.9, 0.99))
    return Load("python-asyncio", concurrency, len(lat), elapsed, len(errs), p50, p90, p99)


def run(host: str, port: int, pool: list[bytes], concurrency: int, seconds: float, *, use_wrk: bool) -> Load:
    if use_wrk:
        return run_wrk(host, port, pool, concurrency, seconds)
    return run_python(host, port, pool, concurrency, seconds)
