"""Structured (JSON-lines) logging for the server, the audit trail and access logs.

Three loggers matter:

* everything goes to stderr as one JSON object per line (`configure`);
* `coffer.audit` lines (key minted, suspended, revoked, token created, call denied) also go
  to the audit file when one is configured, so the CLI's actions land in the same trail
  as the server's;
* `coffer.access` lines (one per HTTP request, written by `coffer.web.http.AccessLog`) only
  when `access_log` is on.

`audit` is the sink the node injects into the core's services (`coffer.audit.AuditSink`): they
write each event once, after commit. No line ever carries a secret: callers of `audit()` pass
ids and principals only, the access log records the path without its query string (presigned
URLs carry signatures there) and never a header.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

audit_log = logging.getLogger("coffer.audit")
access_log = logging.getLogger("coffer.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


class _PrivateFileHandler(logging.FileHandler):
    """Appends to a file created with mode 0600: the trail names principals and key ids."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding or "utf-8")


def _audit_file_handler(path: Path) -> logging.Handler:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handler = _PrivateFileHandler(str(path), encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.INFO)
    handler.set_name("coffer-audit-file")
    return handler


def configure(level: str = "info", *, audit_path: Path | None = None, to_stderr: bool = True) -> None:
    """Route every logger to JSON lines on stderr, and audit events to `audit_path` too.

    The CLI passes `to_stderr=False`: its stdout and stderr are for people, and its audit
    events only need to reach the trail.
    """
    root = logging.getLogger()
    if to_stderr:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.handlers[:] = [handler]
        root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # uvicorn's own access log would duplicate ours and print raw query strings,
    # which for presigned URLs carry signatures.
    logging.getLogger("uvicorn.access").disabled = True
    # Alembic announces every migration step at INFO; one line from us is enough.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    audit_log.handlers[:] = [h for h in audit_log.handlers if h.get_name() != "coffer-audit-file"]
    audit_log.setLevel(logging.INFO)
    if audit_path is not None:
        audit_log.addHandler(_audit_file_handler(audit_path))


def audit(event: str, /, **fields: Any) -> None:
    """One JSON line per security-relevant event. Callers never pass secrets.

    A field that collides with a LogRecord attribute (`name`, `msg`, ...) gets a trailing
    underscore rather than crashing the caller.
    """
    extra = {(f"{k}_" if k in _RESERVED else k): v for k, v in fields.items()}
    audit_log.info(event, extra={"event": event, **extra})
