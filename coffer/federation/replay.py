"""Remembering which one-time credentials were already used.

A SAML bearer assertion is a bearer token: whoever holds it may present it. Refusing the second
presentation of an assertion ID bounds the damage of a leaked assertion to one key. An ID has to
be remembered only until the assertion would be refused anyway by its time checks.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Protocol

from coffer.errors import ResourceExhausted

_PURGE_EVERY = 1024


class ReplayCache(Protocol):
    """Atomically records a one-time ID; a shared (SQL) implementation is needed for several nodes."""

    def check_and_store(self, key: str, *, expires_at: datetime, now: datetime) -> bool:
        """Store `key` until `expires_at`; True if it was new, False if it was seen before."""
        ...


class InMemoryReplayCache:
    """A process-local replay cache. Correct for a single node; bounded by expiry, purged lazily."""

    def __init__(self, *, max_entries: int = 1_000_000) -> None:
        self._seen: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self._inserts = 0

    def check_and_store(self, key: str, *, expires_at: datetime, now: datetime) -> bool:
        with self._lock:
            seen_until = self._seen.get(key)
            if seen_until is not None and seen_until > now:
                return False
            self._inserts += 1
            if self._inserts % _PURGE_EVERY == 0 or len(self._seen) >= self._max_entries:
                self._purge(now)
            if len(self._seen) >= self._max_entries:
                # Refusing is safe; forgetting an unexpired ID would allow a replay.
                raise ResourceExhausted("too many federated sign-ins in flight; try again later")
            self._seen[key] = expires_at
            return True

    def _purge(self, now: datetime) -> None:
        for k in [k for k, until in self._seen.items() if until <= now]:
            del self._seen[k]

    def __len__(self) -> int:
        return len(self._seen)
