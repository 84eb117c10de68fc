"""Who changed what: the audit sink the core writes to, and the actor a face hands the core.

The services (directory, access keys, org policies, federation configs, federated keys,
console sessions) write each audit event themselves, once, after their transaction
committed, through the `AuditSink` the node injects (`coffer.logs.audit` in a server or
`coffer admin`). A face (API, console, CLI) only says who is asking, through which call
and from where: an `Actor`. A change made without an actor is not audited: it is part of a
larger change that is (a console sign-out revokes its keys), or set-up code (benchmarks,
tests).

`fan_out` joins the trail with a second consumer of the same events: the node's
`coffer.auditlog.AuditLogs`, which copies some of them into each organization's
audit-log bucket.

Event names and fields are documented in docs/api.md (Audit trail); tests/test_docs.py
finds every `audit("<event>", ...)` call and checks that the event is documented.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol


class AuditSink(Protocol):
    """Writes one audit event. Callers never pass a secret."""

    def __call__(self, event: str, /, **fields: Any) -> None: ...


@dataclass(frozen=True)
class Actor:
    """Who asked for a change, as its audit line names them.

    `name` is the `actor` field: the caller's principal (`coreweave/<UID>`), `cli:<os user>`
    or `bootstrap`. `action` is the `cwobject:` call the change came through, where the
    service alone cannot tell (a key is minted by several calls); `client` is the source
    address of a network call (the origin), for the events that record it.
    """

    name: str
    action: str | None = None
    client: str | None = None


def fan_out(first: AuditSink, *more: AuditSink) -> AuditSink:
    """One sink that hands every event to `first` (the audit trail: its errors are the
    caller's, as before) and then to each of `more` (the audit-log buckets), whose errors
    are logged and never reach the service that committed the change."""

    def sink(event: str, /, **fields: Any) -> None:
        first(event, **fields)
        for consumer in more:
            try:
                consumer(event, **fields)
            except Exception:
                # Not `coffer.audit`: that logger is the trail itself.
                logging.getLogger("coffer.auditlog").exception("an audit consumer failed on %s", event)

    return sink
