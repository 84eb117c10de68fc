"""Audit logs into each organization's `cw-<org-id>-audit-logs` bucket (reference §6.10).

- `events`: the records' fields, built from the audit trail and from S3 requests (pure);
- `spool`: each process's local, bounded, crash-safe spool of events;
- `writer`: the flusher that turns spool segments into gzip-compressed JSON-lines objects;
- `service`: `AuditLogs`, the node's recorder (which events, for whom) and its flush thread.

The local audit trail (`coffer.audit`, the JSON-lines `audit_file`) is unchanged: this is a
second consumer of the same events. docs/operations.md describes the layout, the fields,
the flush and the spool; docs/decisions/0150-audit-log-bucket.md the choices.
"""

from coffer.auditlog.events import DataRequest
from coffer.auditlog.service import AuditLogs

__all__ = ["AuditLogs", "DataRequest"]
