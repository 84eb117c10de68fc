"""The metadata store unreachable, as a domain error, and how periodic work reports it.

A database outage (PostgreSQL down, restarting, refusing connections) is not a bug: every
request during it gets `StoreUnavailable` (S3 503 ServiceUnavailable, control plane
UNAVAILABLE, both with Retry-After) within the connect timeout, and the pool reconnects by
itself once the database is back (see `coffer.store.db`). Background threads report an
outage once, through `OutageLog`, instead of once per pass.
"""

from __future__ import annotations

import logging

from coffer.errors import Unavailable


class StoreUnavailable(Unavailable):
    """The metadata store cannot be reached now; the same request may succeed later."""

    retry_after = 1  # seconds: a PostgreSQL restart takes about that

    def __init__(self, message: str = "The metadata store is unavailable; please retry.") -> None:
        super().__init__(message)


class OutageLog:
    """One warning when a periodic task starts failing on an outage, one info line when it
    works again: a thread retrying every second would otherwise log a line per second."""

    def __init__(self, log: logging.Logger, task: str) -> None:
        self._log = log
        self._task = task
        self._down = False

    def failed(self, exc: BaseException) -> None:
        if self._down:
            return
        self._down = True
        self._log.warning("%s: the metadata store is unavailable (%s); retrying quietly", self._task, exc)

    def ok(self) -> None:
        if self._down:
            self._down = False
            self._log.info("%s: the metadata store is back", self._task)
