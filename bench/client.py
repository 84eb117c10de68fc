"""A minimal HTTP/1.1 client on raw sockets, cheap enough not to be what a benchmark measures.

Bodies go out with `socket.sendfile` (the kernel copies page cache to the socket) or from
one reused buffer; response bodies are received into one preallocated buffer and dropped.
Headers are whatever the caller signed beforehand (`bench.signing`).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

RECV_BUFFER = 1 << 20


class HTTPError(Exception):
    pass


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    length: int = 0  # body bytes received (also when discarded)

    def check(self, *ok: int) -> Response:
        if self.status not in (ok or (200,)):
            raise HTTPError(f"HTTP {self.status}: {self.body[:500]!r}")
        return self


@dataclass
class FileBody:
    """Bytes [offset, offset+count) of an open file, sent with sendfile."""

    file: BinaryIO
    offset: int
    count: int


@dataclass
class RepeatBody:
    """`count` bytes made of one buffer sent again and again (no file, no disk)."""

    chunk: bytes
    count: int


Body = bytes | FileBody | RepeatBody


class Conn:
    """One keep-alive connection; not thread-safe (one per thread)."""

    def __init__(self, host: str, port: int, timeout: float = 600) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.sock: socket.socket | None = None
        self._pending = b""
        self._buf = bytearray(RECV_BUFFER)
        self._view = memoryview(self._buf)

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    def _connect(self) -> socket.socket:
        if self.sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock, self._pending = sock, b""
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]] = (),
        body: Body = b"",
        *,
        discard: bool = False,
    ) -> Response:
        sock = self._connect()
        try:
            return self._exchange(sock, method, target, list(headers), body, discard)
        except BaseException:
            self.close()
            raise

    def _exchange(
        self,
        sock: socket.socket,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: Body,
        discard: bool,
    ) -> Response:
        length = len(body) if isinstance(body, bytes) else body.count
        names = {k.lower() for k, _ in headers}
        lines = [f"{method} {target} HTTP/1.1"]
        if "host" not in names:
            lines.append(f"Host: {self.hostport}")
        lines += [f"{k}: {v}" for k, v in headers]
        if "content-length" not in names and (length or method in ("PUT", "POST")):
            lines.append(f"Content-Length: {length}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if isinstance(body, bytes):
            sock.sendall(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                sock.sendall(body)
        elif isinstance(body, FileBody):
            sock.sendall(head)
            sent = sock.sendfile(body.file, body.offset, body.count)
            if sent != body.count:
                raise HTTPError(f"sendfile sent {sent} of {body.count} bytes")
        else:
            sock.sendall(head)
            left = body.count
            view = memoryview(body.chunk)
            while left:
                n = min(left, len(view))
                sock.sendall(view[:n])
                left -= n
        return self._read_response(sock, method, discard)

    def _recv(self, sock: socket.socket) -> bytes:
        data = sock.recv(RECV_BUFFER)
        if not data:
            raise HTTPError("connection closed by the server")
        return data

    def _read_response(self, sock: socket.socket, method: str, discard: bool) -> Response:
        data = self._pending
        while b"\r\n\r\n" not in data:
            data += self._recv(sock)
        head, _, rest = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        resp = Response(status, headers)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self._pending = rest
            return resp
        if "content-length" in headers:
            self._pending = self._read_exact(sock, rest, int(headers["content-length"]), resp, discard)
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            self._pending = self._read_chunked(sock, rest, resp)
        else:  # until the server closes
            chunks = [rest]
            while True:
                more = sock.recv(RECV_BUFFER)
                if not more:
                    break
                chunks.append(more)
            resp.body = b"".join(chunks)
            resp.length = len(resp.body)
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return resp

    def _read_exact(
        self, sock: socket.socket, rest: bytes, length: int, resp: Response, discard: bool
    ) -> bytes:
        if len(rest) >= length:
            resp.body, resp.length = (b"" if discard else rest[:length]), length
            return rest[length:]
        if not discard:
            chunks, have = [rest], len(rest)
            while have < length:
                more = self._recv(sock)
                chunks.append(more)
                have += len(more)
            data = b"".join(chunks)
            resp.body, resp.length = data[:length], length
            return data[length:]
        left = length - len(rest)
        view = self._view
        while left:
            n = sock.recv_into(view, min(left, RECV_BUFFER))
            if not n:
                raise HTTPError("connection closed mid-body")
            left -= n
        resp.length = length
        return b""

    def _read_chunked(self, sock: socket.socket, data: bytes, resp: Response) -> bytes:
        out = bytearray()
        while True:
            while b"\r\n" not in data:
                data += self._recv(sock)
            size_line, _, data = data.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(data) < size + 2:
                data += self._recv(sock)
            out += data[:size]
            data = data[size + 2 :]
            if size == 0:
                resp.body, resp.length = bytes(out), len(out)
                return data
