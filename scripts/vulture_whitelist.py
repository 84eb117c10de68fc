"""Names vulture (`scripts/test`, settings in pyproject.toml [tool.vulture]) cannot see used.

Each entry is used by something outside `coffer/` that vulture does not read: a framework
calling it by name, or a test reading it. Keep this short; delete dead code instead of
listing it here. Click commands and SQLAlchemy event listeners are covered by
`ignore_decorators` in pyproject.toml.
"""

# Frameworks calling by name or attribute.
redirect_slashes  # Starlette's Router reads it (coffer/api/app.py)
disabled  # logging.Logger reads it (coffer/logs.py)
exit_code  # click.ClickException reads it (coffer/cli/serve.py)
data_received  # asyncio calls it on the protocol (coffer/web/protocol.py)
handle_hup  # uvicorn's Multiprocess calls it (coffer/web/tls.py)
create_app  # uvicorn's factory, "coffer.server:create_app"
isolation_level  # the DB-API connection reads it (coffer/store/db.py)

# Fields read by name (getattr over a table of names), never as `x.name`.
noncurrent_objects  # ClassUsage: GetBucketInfo's CLASS_MEASUREMENTS (coffer/api/management.py)
delete_markers  # ClassUsage: likewise

# Alembic reads these from every migration script.
revision
down_revision
branch_labels
depends_on
downgrade

# Read only by tests, which check the very thing they describe.
AUTH_REASONS  # the bounded `reason` label values (tests/hardening/test_metrics.py)
SCRAPE_TIME_METRICS  # metrics computed at scrape time (tests/hardening/test_metrics.py)
fetch_count  # JWKS fetches so far (tests/federation/test_jwks.py)
decoded_size  # payload bytes a verifier yielded (tests/unit/test_sigv4_streaming.py)
glob_match  # the matcher's one-shot form (tests/policy/test_patterns.py)
header_name  # checksum registry (tests/unit/test_sigv4_checksums.py)
running  # GarbageCollector.running (tests/storage/test_node.py, test_gc.py)
has_session_token  # AccessKey field, set from the row; nothing reads it yet
__call__  # AuditSink is a Protocol: services call the sink they were given (coffer/audit.py)
is_disconnect  # ExceptionContext field SQLAlchemy reads after handle_error (coffer/store/db.py)
