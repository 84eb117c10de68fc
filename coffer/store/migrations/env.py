"""Alembic environment: runs against the connection handed over by coffer.store.db."""

from __future__ import annotations

from alembic import context

from coffer.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when alembic is driven by hand
    raise RuntimeError("run migrations through coffer.store.db.migrate()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
