"""The failed-authentication budget: guessing credentials gets slow, the owner of a key does not.

Each worker counts failed authentications per source address and per access key id in a
window (`auth_failure_limit` failures per `auth_failure_window` seconds). A source over
its budget is refused, and so is a key id over its budget when asked for from a source
that has itself failed recently: key ids are public (URLs, logs), so a stranger must not
be able to lock a key's owner out, but a guesser spread over many addresses still runs
into the key's budget. Refusals come before any signature is computed or token hashed.
The faces turn `Throttled` into `503 SlowDown` (S3) or `429 RESOURCE_EXHAUSTED` (API);
docs/operations.md ("Abuse limits") gives the reasoning.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from coffer import limits, metrics
from coffer.errors import ResourceExhausted
from coffer.logs import audit

SOURCE = "source"
KEY = "key"


class Throttled(ResourceExhausted):
    """Over budget: retry after `retry_after` whole seconds."""

    def __init__(self, scope: str, retry_after: int) -> None:
        what = "from this address" if scope == SOURCE else "for this access key"
        super().__init__(f"too many failed authentications {what}; retry after {retry_after} seconds")
        self.scope = scope
        self.retry_after = retry_after


class _Tally:
    """Failures in the window that began at `start` (a fixed window, from the first failure)."""

    __slots__ = ("count", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.count = 0


def source_of(address: str | None) -> str:
    """The budget's name for a client address: IPv4 as is, IPv6 by its /64.

    One IPv6 subscriber holds at least a /64, so counting single addresses would give a
    guesser 2^64 fresh budgets."""
    if not address or ":" not in address:
        return address or ""
    if address.startswith("::ffff:") and "." in address:
        return address[7:]  # an IPv4 client on a dual-stack socket
    try:
        prefix = socket.inet_pton(socket.AF_INET6, address)[:8]
    except OSError:
        return address
    return socket.inet_ntop(socket.AF_INET6, prefix + bytes(8)) + "/64"


class AuthBudget:
    """Per-worker failure counts in two bounded LRU tables (sources, key ids).

    Reads take no lock: a clean source costs one dict lookup. Changes (failures only)
    take the lock, so the faces may call from the event loop and from worker threads."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        tracked: int = limits.AUTH_FAILURE_TRACKED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.tracked = tracked
        self.enabled = limit > 0
        self._clock = clock
        self._sources: OrderedDict[str, _Tally] = OrderedDict()
        self._keys: OrderedDict[str, _Tally] = OrderedDict()
        self._lock = threading.Lock()

    # -- before authenticating ------------------------------------------------------------
    def suspect(self, client: str | None) -> bool:
        """Has this client's source failed within its window? False for almost every request."""
        tally = self._sources.get(source_of(client))
        return tally is not None and self._clock() - tally.start < self.window

    def admit(self, client: str | None, access_key_id: str | None = None, *, face: str) -> None:
        """Raise Throttled if the source is over budget, or if it is suspect and the key id is.

        A source with no recent failure is never refused for its key id: that is how the
        owner of a key someone else is guessing at keeps using it."""
        tally = self._sources.get(source_of(client))
        if tally is None:
            return
        now = self._clock()
        if now - tally.start >= self.window:
            return
        if tally.count >= self.limit:
            self._refuse(SOURCE, tally, now, face)
        key = self._keys.get(access_key_id) if access_key_id is not None else None
        if key is not None and key.count >= self.limit and now - key.start < self.window:
            self._refuse(KEY, key, now, face)

    def _refuse(self, scope: str, tally: _Tally, now: float, face: str) -> None:
        metrics.AUTH_THROTTLED.labels(face=face, scope=scope).inc()
        raise Throttled(scope, max(1, math.ceil(tally.start + self.window - now)))

    # -- after a failure ------------------------------------------------------------------
    def failed(self, client: str | None, access_key_id: str | None = None, *, face: str) -> None:
        """Count one failed authentication from the client's source, and against `access_key_id` if given.

        The faces pass a key id only for a wrong signature or session token (a guess at that
        key's secrets): a made-up or revoked id has no owner to protect, and so cannot flood
        the key table. Crossing into throttling is audited once, not each refusal after it."""
        if not self.enabled:
            return
        source = source_of(client)
        with self._lock:
            now = self._clock()
            source_crossed = self._count(self._sources, source, now)
            key_crossed = access_key_id is not None and self._count(self._keys, access_key_id, now)
        fields = {"face": face, "client": source, "limit": self.limit, "window_seconds": self.window}
        if source_crossed:
            audit("auth_throttled", scope=SOURCE, **fields)
        if key_crossed:
            audit("auth_throttled", scope=KEY, access_key_id=access_key_id, **fields)

    def _count(self, table: OrderedDict[str, _Tally], name: str, now: float) -> bool:
        """One more failure for `name`; True when this one reaches the limit (audited once)."""
        tally = table.get(name)
        if tally is None:
            if len(table) >= self.tracked:
                table.popitem(last=False)
            tally = table[name] = _Tally(now)
        else:
            table.move_to_end(name)
            if now - tally.start >= self.window:
                tally.start, tally.count = now, 0
        tally.count += 1
        return tally.count == self.limit
