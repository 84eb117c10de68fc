"""Coffer's own buckets: `cw-<org-id>-audit-logs`, and who may change them.

CoreWeave keeps every organization's audit logs in a bucket of its own whose name begins
with the reserved `cw-` prefix, which no user may create (`rules.validate_bucket_name`).
Coffer creates it when it first has an event to store, and only Coffer writes to it:
storage itself refuses every change to a reserved bucket (its objects, uploads, policy,
versioning, tags, CORS, settings, the bucket itself) with `ReservedBucket` unless the
caller runs inside `system_writes()`, which only the audit-log writer enters
(`coffer.auditlog.writer`). Reading stays an ordinary request that the organization's
policies allow or refuse, like any other bucket's. The check lives in the core, not in a
face, so the S3 endpoint, the control plane, the console and the CLI cannot differ on it
(docs/decisions/0150-audit-log-bucket.md).

Why a context variable rather than a parameter: the refusal sits in the few places every
write goes through (`Transactions.lock_bucket`, `Buckets.delete`/`update`/
`merge_settings`, `Objects.write`), and a flag threaded down to them through every write
signature would be one more argument a face could pass. The variable is set only by
`system_writes()` and copied into the threads and tasks the writer starts, never into a
request's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from coffer.storage.errors import ReservedBucket

AUDIT_BUCKET_PREFIX = "cw-"
AUDIT_BUCKET_SUFFIX = "-audit-logs"
# The owner recorded for the buckets Coffer creates: CoreWeave's audit-log service principal
# is `arn:aws:iam::coreweave:static/audit-logs`; no user's principal can have this form.
SYSTEM_OWNER = "static/audit-logs"

_SYSTEM: ContextVar[bool] = ContextVar("coffer_storage_system_writes", default=False)


def audit_bucket_name(org_id: str) -> str:
    """The organization's audit-log bucket: `cw-<org-id>-audit-logs` (lower case, as bucket names are)."""
    return f"{AUDIT_BUCKET_PREFIX}{org_id.lower()}{AUDIT_BUCKET_SUFFIX}"


def is_reserved(bucket: str) -> bool:
    """A bucket only Coffer may change: a `cw-` name (users can never create one)."""
    return bucket.startswith(AUDIT_BUCKET_PREFIX)


@contextlib.contextmanager
def system_writes() -> Iterator[None]:
    """Lets the enclosed calls (and the tasks and threads they start) change reserved buckets."""
    token = _SYSTEM.set(True)
    try:
        yield
    finally:
        _SYSTEM.reset(token)


def check_writable(bucket: str) -> None:
    """ReservedBucket unless `bucket` is a user's, or the caller is Coffer's own writer."""
    if is_reserved(bucket) and not _SYSTEM.get():
        raise ReservedBucket(bucket)
