"""`python -m bench.attacks`: what issue 12's three attacks cost a node, in numbers.

1. A policy wildcard built to backtrack (`b/*a*a*a*b` against 1,000 `a`): time per match
   with the matcher in coffer/policy/patterns.py, and with a regex translation of the same
   pattern, the way Coffer matched before (only for few stars: each more multiplies it).
2. Eight clients each sending a 64 MiB header that never ends: the worker's RSS before and after.
3. Forty clients that GET a 100 MiB object and never read: what they pin, per client.

Run it from the repository root on an idle machine; it starts its own server.
"""

from __future__ import annotations

import contextlib
import re
import socket
import tempfile
import time
from pathlib import Path

from coffer.policy import patterns
from tests.support.attacks import stalled_readers, worker_rss
from tests.support.harness import CofferServer, start_server, stop_server
from tests.support.s3 import s3_client

KEY = "arn:aws:s3:::b/" + "a" * 1000


def regex_of(pattern: str) -> re.Pattern[str]:
    """The translation Coffer used before: `*` to `.*`, `?` to `.`, the rest literal."""
    source = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(source, re.DOTALL)


def wildcards() -> None:
    for stars, with_regex in ((3, True), (4, True), (10, False), (32, False)):
        pattern = "arn:aws:s3:::b/" + "*a" * (stars - 1) + "*b"
        started = time.perf_counter()
        patterns.glob_match(pattern, KEY)
        linear = time.perf_counter() - started
        line = f"{stars:2d} stars: linear matcher {linear * 1e6:8.1f} µs"
        if with_regex:
            started = time.perf_counter()
            regex_of(pattern).fullmatch(KEY)
            line += f", regex {time.perf_counter() - started:.3f} s"
        print(line)


def endless_headers(server: CofferServer) -> None:
    before = worker_rss(server)
    for _ in range(8):
        with socket.create_connection(("127.0.0.1", server.s3_port)) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ")
            with contextlib.suppress(OSError):
                for _ in range(64):
                    sock.sendall(b"x" * (1 << 20))
    print(f"8 endless 64 MiB headers: worker RSS {before >> 20} -> {worker_rss(server) >> 20} MiB")


def stalled_reader_memory(server: CofferServer) -> None:
    s3 = s3_client(server, server.mint_key(duration=0))
    s3.create_bucket(Bucket="attacks")
    s3.put_object(Bucket="attacks", Key="big", Body=b"z" * (100 << 20))
    before = worker_rss(server)
    readers = stalled_readers(server, s3, "attacks", "big", 40)
    time.sleep(3)
    pinned = worker_rss(server) - before
    print(f"40 stalled readers of 100 MiB: +{pinned >> 20} MiB ({pinned / 40 / 2**20:.1f} MiB each)")
    for sock in readers:
        sock.close()


def main() -> None:
    wildcards()
    server = start_server(Path(tempfile.mkdtemp(prefix="coffer-attacks-")), "sqlite")
    try:
        endless_headers(server)
        stalled_reader_memory(server)
    finally:
        stop_server(server)


if __name__ == "__main__":
    main()
