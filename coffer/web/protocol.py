"""uvicorn's httptools protocol with the bounds a server facing a network needs.

uvicorn buffers a request head of any size, keeps a connection that never sends a byte
open forever, and lets a client that stops reading pin whatever was queued for it. One
client could so stall or exhaust a worker. Here, per connection:

- the request head (request line and headers) is fed to the parser at most
  `MAX_HEAD_BYTES` at a time and refused past that or past `MAX_HEADERS` headers,
  before anything is buffered beyond the bound;
- a head must arrive within `head_timeout` of the connection (or of its first byte
  after a keep-alive pause); a body that pauses for `body_idle_timeout` while the handler
  waits for it, and a response stalled for `write_timeout` on a client that does not
  read, end the connection;
- at most `max_connections` are open per worker: at the cap the connection idle the
  longest is closed to make room, and only when none is idle is the new one refused.

Deadlines are checked by one sweep per worker each quarter second rather than a timer per
connection, so the hot path only stores a timestamp. What a face answers to a refused
head comes from the `Refusals` the server installs, so this module knows no face.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from coffer import limits

log = logging.getLogger("coffer.web")

SWEEP_INTERVAL = 0.25
LOG_EVERY = 10.0  # seconds between summaries of closed connections under a flood

# Why a connection was closed by the server; also the `reason` label of the metric.
HEAD_TOO_LARGE = "head_too_large"
HEAD_TIMEOUT = "head_timeout"
BODY_IDLE_TIMEOUT = "body_idle_timeout"
WRITE_TIMEOUT = "write_timeout"
CAP_EVICTED = "cap_evicted"
CAP_REFUSED = "cap_refused"

Response = tuple[int, list[tuple[bytes, bytes]], bytes]
# (local port, reason, detail) -> the response a face gives, or None to just close.
Refusal = Callable[[int, str, str], Response | None]


@dataclass
class Bounds:
    """The per-worker numbers, from settings (defaults in coffer/limits.py)."""

    max_connections: int = limits.MAX_CONNECTIONS
    head_timeout: float = limits.HEAD_TIMEOUT
    body_idle_timeout: float = limits.BODY_IDLE_TIMEOUT
    write_timeout: float = limits.WRITE_TIMEOUT
    max_head_bytes: int = limits.MAX_HEAD_BYTES
    max_headers: int = limits.MAX_HEADERS
    write_buffer_high: int = limits.WRITE_BUFFER_HIGH


def _plain(status: int, message: str) -> Response:
    body = message.encode()
    return status, [(b"content-type", b"text/plain; charset=utf-8")], body


def default_refusal(port: int, reason: str, detail: str) -> Response | None:
    if reason == HEAD_TOO_LARGE:
        return _plain(431, detail)
    if reason == CAP_REFUSED:
        return _plain(503, detail)
    return None


@dataclass
class Guard:
    """Per worker process: the open connections, the idle ones in age order, the sweep."""

    bounds: Bounds = field(default_factory=Bounds)
    refusal: Refusal = default_refusal
    port_names: dict[int, str] = field(default_factory=dict)
    on_open: Callable[[str, int], None] = lambda port, delta: None
    on_close: Callable[[str], None] = lambda reason: None
    open: set[GuardedHttpToolsProtocol] = field(default_factory=set)
    idle: dict[GuardedHttpToolsProtocol, None] = field(default_factory=dict)
    _sweeper: asyncio.Task[None] | None = None
    _counts: dict[str, int] = field(default_factory=dict)  # suppressed closes per reason, this window
    _window_start: float = 0.0

    def port_name(self, port: int) -> str:
        return self.port_names.get(port, "other")

    def ensure_sweeper(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = loop.create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while self.open or self._counts:
            await asyncio.sleep(SWEEP_INTERVAL)
            self.sweep(asyncio.get_running_loop().time())
            self.flush(time.monotonic())
        self._sweeper = None

    def sweep(self, now: float) -> None:
        for conn in list(self.open):
            reason = conn.overdue(now, self.bounds)
            if reason:
                conn.close_for(reason)

    def closed(self, reason: str) -> None:
        """Count a connection the server closed and log it: the first of each reason in a
        window at once, the rest as one summary when the window ends (a flood is one line)."""
        self.on_close(reason)
        if reason in self._counts:
            self._counts[reason] += 1
            return
        if not self._counts:
            self._window_start = time.monotonic()
        self._counts[reason] = 0
        self._log({reason: 1}, f"closed a connection: {reason}")

    def flush(self, now: float) -> None:
        if now - self._window_start < LOG_EVERY:
            return
        suppressed = {k: v for k, v in self._counts.items() if v}
        self._counts, self._window_start = {}, now
        if suppressed:
            summary = ", ".join(f"{k}={v}" for k, v in sorted(suppressed.items()))
            self._log(suppressed, f"closed {sum(suppressed.values())} more connections: {summary}")

    def _log(self, counts: dict[str, int], message: str) -> None:
        level = logging.WARNING if CAP_REFUSED in counts or CAP_EVICTED in counts else logging.INFO
        extra = {"closed": counts, "open": len(self.open), "max_connections": self.bounds.max_connections}
        log.log(level, message, extra=extra)

    def make_room(self) -> bool:
        """At the cap: close the longest-idle connection; False when none is idle."""
        if len(self.open) < self.bounds.max_connections:
            return True
        for victim in self.idle:
            victim.close_for(CAP_EVICTED)
            return True
        return False


_guard = Guard()


def install(guard: Guard) -> None:
    """Called once per worker (from the app factory) before any connection arrives."""
    global _guard
    _guard = guard


def current() -> Guard:
    return _guard


class _Flow(FlowControl):
    """uvicorn's flow control, remembering when writing paused and reading resumed."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(transport)
        self._loop = loop
        self.write_paused_at = 0.0
        self.read_resumed_at = 0.0

    def pause_writing(self) -> None:
        if not self.write_paused:
            self.write_paused_at = self._loop.time()
        super().pause_writing()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_resumed_at = self._loop.time()
        super().resume_reading()


class _HeadRefused(Exception):
    pass


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = _guard
        self.in_head = True  # bytes arriving now belong to a request head
        self.head_started: float | None = None  # None: the head's clock starts at its first byte
        self.head_bytes = 0
        self.header_count = 0
        self.heads_done = 0  # request heads parsed on this connection
        self.last_read = 0.0

    # --- connection lifecycle ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = _Flow(transport, self.loop)
        transport.set_write_buffer_limits(high=self.guard.bounds.write_buffer_high)
        self.head_started = self.last_read = self.loop.time()
        guard = self.guard
        if not guard.make_room():
            self._respond(CAP_REFUSED, "the server has too many open connections; retry shortly")
            guard.closed(CAP_REFUSED)
            return
        guard.open.add(self)
        guard.idle[self] = None
        guard.on_open(self._port_name, 1)
        guard.ensure_sweeper(self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        super().connection_lost(exc)

    def _forget(self) -> None:
        """Leave the guard's books at once, so a connection being closed is not counted or picked again."""
        guard = self.guard
        guard.idle.pop(self, None)
        if self in guard.open:
            guard.open.discard(self)
            guard.on_open(self._port_name, -1)

    @property
    def _local_port(self) -> int:
        return (self.server[1] if self.server else None) or 0

    @property
    def _port_name(self) -> str:
        return self.guard.port_name(self._local_port)

    # --- reading -----------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        now = self.last_read = self.loop.time()
        while data:
            if not self.in_head:
                self._feed(data)
                return
            if self.head_started is None:
                self.head_started = now
            self.guard.idle.pop(self, None)
            room = self.guard.bounds.max_head_bytes - self.head_bytes
            if len(data) <= room:
                self.head_bytes += len(data)
                self._feed(data)
                return
            # Never hand the parser more head than the bound: feed up to it, and if no head
            # ended there, refuse before reading on. If one did, the rest is its body or the
            # next (pipelined) request, which gets a bound of its own.
            piece, data = data[:room], data[room:]
            self.head_bytes += room
            heads = self.heads_done
            if not self._feed(piece):
                return
            if self.heads_done == heads:
                self._refuse_head(f"the request head is larger than {self.guard.bounds.max_head_bytes} bytes")
                return

    def _feed(self, data: bytes) -> bool:
        """uvicorn's data_received, knowing a refused head from a malformed one."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadRefused):
                self._refuse_head(str(exc.__context__))
            else:
                self._bad_request()
            return False
        except httptools.HttpParserError:
            self._bad_request()
            return False
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return False
        return not self.transport.is_closing()

    def _bad_request(self) -> None:
        msg = "Invalid HTTP request received."
        self.logger.warning(msg)
        self.send_400_response(msg)

    # --- parser callbacks --------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        if self.header_count > self.guard.bounds.max_headers:
            raise _HeadRefused(f"the request has more than {self.guard.bounds.max_headers} headers")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.heads_done += 1
        self.in_head = False
        self.head_started = None
        self.head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_head = True

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.timeout_keep_alive_task is not None and self in self.guard.open:
            self.guard.idle[self] = None  # waiting for its next request: first to go at the cap

    # --- deadlines ---------------------------------------------------------------------------
    def overdue(self, now: float, bounds: Bounds) -> str | None:
        """Why this connection has outstayed its welcome, or None."""
        if self.transport is None or self.transport.is_closing():
            return None
        flow = self.flow
        if (
            isinstance(flow, _Flow)
            and flow.write_paused
            and now - flow.write_paused_at > bounds.write_timeout
        ):
            return WRITE_TIMEOUT
        if self.in_head:
            started = self.head_started
            if started is not None and now - started > bounds.head_timeout:
                return HEAD_TIMEOUT
            return None
        cycle = self.cycle
        if (
            cycle is not None
            and cycle.more_body
            and not cycle.response_complete
            and not cycle.body  # the handler has taken all there was: it is waiting on the client
            and not cycle.waiting_for_100_continue
            and isinstance(flow, _Flow)
            and not flow.read_paused
            and now - max(self.last_read, flow.read_resumed_at) > bounds.body_idle_timeout
        ):
            return BODY_IDLE_TIMEOUT
        return None

    def close_for(self, reason: str) -> None:
        self._forget()
        if reason == HEAD_TIMEOUT and self.head_bytes:
            self._respond(
                reason, f"the request head did not arrive within {self.guard.bounds.head_timeout:g} s"
            )
        elif reason in (WRITE_TIMEOUT, BODY_IDLE_TIMEOUT):
            self.transport.abort()  # nothing queued will ever drain; a graceful close would wait
        else:
            self.transport.close()
        self.guard.closed(reason)

    def _refuse_head(self, detail: str) -> None:
        self._forget()
        self._respond(HEAD_TOO_LARGE, detail)
        self.guard.closed(HEAD_TOO_LARGE)

    def _respond(self, reason: str, detail: str) -> None:
        """A whole response straight onto the transport, then close: no app is involved."""
        response = self.guard.refusal(self._local_port, reason, detail)
        if response is not None:
            status, headers, body = response
            head = [STATUS_LINE[status]]
            for name, value in [
                *headers,
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]:
                head += [name, b": ", value, b"\r\n"]
            self.transport.write(b"".join([*head, b"\r\n", body]))
        self.transport.close()


def raise_descriptor_limit(max_connections: int) -> int:
    """Lift RLIMIT_NOFILE so a worker can hold `max_connections` plus its own files.

    Returns the connection cap the limit allows (a soft limit of 1,024 or 20,000 would
    otherwise refuse clients with EMFILE, silently, long before the cap)."""
    import resource

    wanted = max_connections + limits.FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target_hard = hard if hard == resource.RLIM_INFINITY or hard >= wanted else wanted
        try:  # raising the hard limit needs privilege; try, then settle for the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, target_hard))
        except (ValueError, OSError):
            if hard != resource.RLIM_INFINITY:
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    allowed = (
        max_connections if soft == resource.RLIM_INFINITY else min(max_connections, soft - limits.FD_RESERVE)
    )
    if allowed < max_connections:
        log.warning(
            "the descriptor limit (%d) allows %d connections per worker, not max_connections=%d",
            soft,
            max(allowed, 16),
            max_connections,
            extra={"nofile": soft, "max_connections": max_connections},
        )
    return max(allowed, 16)
