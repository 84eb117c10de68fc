"""Clients that misbehave on purpose, for the hardening tests and `python -m bench.attacks`."""

from __future__ import annotations

import socket
from typing import Any

import psutil

from tests.support.harness import CofferServer, worker_processes


def worker_rss(server: CofferServer) -> int:
    """Resident memory of the server's workers (of the server itself with one worker)."""
    assert server.proc is not None
    procs = worker_processes(server, server.s3_port) or [psutil.Process(server.proc.pid)]
    return sum(int(p.memory_info().rss) for p in procs)


def stalled_readers(server: CofferServer, s3: Any, bucket: str, key: str, count: int) -> list[socket.socket]:
    """`count` connections that GET `bucket/key` (presigned) with a 4 KiB receive buffer and
    never read: the server's response stalls on each."""
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})
    path = url.split(str(server.s3_port), 1)[1]
    readers = []
    for _ in range(count):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.s3_port))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.s3_port}\r\n\r\n".encode())
        readers.append(sock)
    return readers
