"""`node.audit_logs`: decides which events an organization's audit bucket receives, and spools them.

Two doors in, neither of them in a handler or a service:

- `control_plane` is a second consumer of the audit trail (`coffer.audit.fan_out` hands it
  every event the services write after their commits): the events of CONTROL_EVENTS
  become `control-plane/` records while the organization's
  `controlPlaneAuditLoggingEnabled` is on.
- `data_plane` is fed by the S3 face from the one point where it knows a request's
  outcome (beside the access-log details, just before the response is sent): object puts, gets and deletes and
  listings of a bucket with `auditLoggingEnabled` become `data-plane/` records while the
  bucket's organization has `bucketAuditLoggingEnabled` on; CreateBucket and ListBuckets
  follow the organization's switch alone (docs/decisions/0150-audit-log-bucket.md).

Either way the record is appended to this process's spool before the call returns, so
before the response that reports the change or request is sent. A failure to record
never fails the caller: it is counted as dropped and logged.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coffer import limits
from coffer.auditlog import events as ev
from coffer.auditlog.spool import Spool, host_name
from coffer.auditlog.writer import Flusher, dropped, spooled
from coffer.storage.rules import utcnow
from coffer.storage.settings import BucketSettings

if TYPE_CHECKING:
    from coffer.storage.models import Bucket
    from coffer.storage.service import Storage

log = logging.getLogger("coffer.auditlog")

SHUTDOWN_SECONDS = 15.0  # the most the last flush may hold up a stopping worker
_ERROR_LOG_SECONDS = 60.0


def spool_dir(data_dir: Path) -> Path:
    """Where this host's processes spool: `<data-dir>/audit-spool/<host>/`."""
    return data_dir / "audit-spool" / host_name()


class AuditLogs:
    """The audit-log recorder and flusher of one process."""

    def __init__(
        self,
        data_dir: Path,
        *,
        flush_seconds: float,
        max_bytes: int,
        segment_bytes: int = limits.AUDIT_SEGMENT_MAX_BYTES,
    ) -> None:
        self.spool = Spool(spool_dir(data_dir), max_bytes=max_bytes, segment_bytes=segment_bytes)
        self.flush_seconds = flush_seconds
        self.storage: Storage | None = None
        self.flusher: Flusher | None = None
        self._users: Callable[[str], Any | None] = lambda _uid: None
        self._error_logged = 0.0

    def connect(self, storage: Storage, users: Callable[[str], Any | None]) -> None:
        """What deciding and writing need, once the node has built it (the services that
        feed `control_plane` are built first, with it as their sink)."""
        self.storage = storage
        self._users = users
        self.flusher = Flusher(self.spool, storage, interval=self.flush_seconds)

    # --- recording ---------------------------------------------------------------------------
    def control_plane(self, event: str, /, **fields: Any) -> None:
        """An `AuditSink`: the audit trail's event, as a control-plane record if it is one and
        its organization logs them."""
        if event == ev.LIFECYCLE_EVENT:
            self._lifecycle(fields)
            return
        if not ev.is_control_event(event) or self.storage is None:
            return
        org_id = fields.get("org_id")
        if not isinstance(org_id, str) or not org_id:
            return
        try:
            enabled = self.storage.settings.org(org_id).control_plane_audit_logging_enabled
            if not (enabled or ev.logs_switch_change(event, fields)):
                return
            role = ev.principal_role(str(fields.get("actor") or ""), self._user)
            record = ev.control_record(event, fields, role, utcnow())
        except Exception:
            self._failed(ev.CONTROL_PLANE)
            return
        self._append(org_id, ev.CONTROL_PLANE, record)

    def data_plane(self, request: ev.DataRequest, bucket: Bucket | None) -> None:
        """An S3 request, as a data-plane record if its bucket (or, for CreateBucket and
        ListBuckets, its caller's organization) logs them. `bucket` is the bucket the request
        addressed, as it was looked up for it."""
        if self.storage is None:
            return
        try:
            if request.operation in ev.BUCKET_OPERATIONS:
                if bucket is None or not BucketSettings.from_json(bucket.settings).audit_logging_enabled:
                    return
                org_id: str | None = bucket.org_id
            elif request.operation in ev.ORG_OPERATIONS:
                org_id = request.org_id
            else:
                return
            if org_id is None or not self.storage.settings.org(org_id).bucket_audit_logging_enabled:
                return
            record = ev.data_record(request, utcnow())
        except Exception:
            self._failed(ev.DATA_PLANE)
            return
        self._append(org_id, ev.DATA_PLANE, record)

    def _lifecycle(self, fields: dict[str, Any]) -> None:
        """A deletion by the lifecycle executor: a data-plane record if its bucket logs them."""
        if self.storage is None:
            return
        try:
            bucket = self.storage.buckets.get(str(fields.get("bucket")))
            if not BucketSettings.from_json(bucket.settings).audit_logging_enabled:
                return
            if not self.storage.settings.org(bucket.org_id).bucket_audit_logging_enabled:
                return
            record = ev.lifecycle_record(fields, utcnow())
        except Exception:
            self._failed(ev.DATA_PLANE)
            return
        self._append(bucket.org_id, ev.DATA_PLANE, record)

    def _user(self, user_id: str) -> Any | None:
        try:
            return self._users(user_id)
        except Exception:  # no such user (any more): the role says Member
            return None

    def _append(self, org_id: str, plane: str, record: dict[str, Any]) -> None:
        entry = {"org": org_id, "plane": plane, "event": record}
        line = json.dumps(entry, separators=(",", ":"), default=str).encode() + b"\n"
        try:
            appended = self.spool.append(line)
        except OSError:
            self._failed(plane)
            return
        if appended:
            spooled(plane)
            return
        dropped(plane, "spool_full")
        if self.flusher is not None:
            self.flusher.full_drops[plane] += 1  # reported by the next flush's log line

    def _failed(self, plane: str) -> None:
        dropped(plane, "error")
        now = time.monotonic()
        if now - self._error_logged >= _ERROR_LOG_SECONDS:
            self._error_logged = now
            log.exception("cannot record an audit-log event (%s); dropped", plane)

    # --- the process's lifetime -----------------------------------------------------------------
    def start(self) -> None:
        """Replay what stopped processes left, then flush every `flush_seconds`."""
        if self.flusher is not None:
            self.flusher.start()

    def close(self) -> None:
        """The last flush (what cannot be written stays in the spool for the next start)."""
        if self.flusher is not None:
            self.flusher.stop(SHUTDOWN_SECONDS)
        self.spool.close()
