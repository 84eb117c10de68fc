"""Every bound a client can run into, in one place.

A hostile client should cost a node a known, small amount: so each input that a
client controls has a bound here, and docs/operations.md ("Limits") lists the same
numbers (tests/test_docs.py compares the two). Bounds an operator may want to move are
also settings (coffer/config.py); their defaults are the names below.
"""

from __future__ import annotations

# --- HTTP request head (coffer/web/protocol.py) --------------------------------------------
# The request line plus every header line. AWS refuses about 8 KiB of user headers; a SigV4
# request with a 1,024-byte key, percent-encoded three times over, stays well inside 16 KiB.
MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100

# --- connections, per worker process (settings of the same names) -------------------------
MAX_CONNECTIONS = 8192
HEAD_TIMEOUT = 10.0  # seconds from the first byte (or the connection) to the end of the head
BODY_IDLE_TIMEOUT = 30.0  # seconds without a byte while the handler waits for more body
WRITE_TIMEOUT = 60.0  # seconds a response may wait for a client that stopped reading
KEEPALIVE_TIMEOUT = 30.0  # seconds an idle keep-alive connection stays open
WRITE_BUFFER_HIGH = 256 * 1024  # bytes queued for one connection before its sender waits
FD_RESERVE = 1024  # descriptors kept for the database, blobs and logs beyond the connections

# --- policies (coffer/policy/) ------------------------------------------------------------
MAX_PATTERN_LENGTH = 2048  # characters in one principal, action, resource or condition value
MAX_PATTERN_WILDCARDS = 32  # `*` and `?` in one pattern
MAX_ACL_GRANTS = 100  # grants in one bucket or object ACL, as AWS allows (coffer/policy/acl.py)

# --- abuse budgets (settings of the same names) -------------------------------------------
AUTH_FAILURE_LIMIT = 20  # failed authentications per source or key id in one window
AUTH_FAILURE_WINDOW = 60.0  # seconds
AUTH_FAILURE_TRACKED = 65536  # sources and key ids remembered per worker (least recent go first)
MAX_LIVE_KEYS_PER_PRINCIPAL = 500

# --- control-plane bodies -----------------------------------------------------------------
MAX_JSON_BODY = 1 << 20  # control-plane bodies are a few hundred bytes; 1 MiB is generous

# --- management settings (coffer/storage/settings.py; settings of the same names) --------
MAX_BUCKETS_PER_ORG = 1000  # CoreWeave's buckets per account; an organization's own limit overrides it
MAX_BYTES_PER_ORG = 0  # bytes an organization may store over all its buckets; 0 means no cap
MAX_ARCHIVE_AFTER_DAYS = 36500  # archiveAfterLastAccessDays: at least 60, at most 100 years
MAX_BUCKET_INFO_PAGE = 1000  # ListBucketInfo `limit`, as CoreWeave (1-1000)

# --- audit logs into the organization's bucket (coffer/auditlog/) ------------------------
AUDIT_SPOOL_MAX_BYTES = 256 << 20  # events a worker holds on disk before it drops new ones
AUDIT_SEGMENT_MAX_BYTES = 8 << 20  # a spool file (and so one flushed object) before a new one
