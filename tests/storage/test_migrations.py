"""The migrations against the schema the code declares, on both dialects.

`coffer/store/schema.py` is what the code reads and writes; `coffer/store/migrations/versions`
is how a database gets there. A fresh database migrated to the newest revision must hold
exactly the declared tables, columns, types, keys and indexes, and every revision must go
down and up again.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from coffer.config import normalize_database_url
from coffer.store.db import MIGRATIONS_DIR, Database, alembic_config
from coffer.store.schema import metadata
from tests.support.harness import create_pg_database, drop_pg_database


@pytest.fixture
def empty_db(backend: str, tmp_path: Path) -> Iterator[Database]:
    url = create_pg_database() if backend == "postgres" else f"sqlite:///{tmp_path / 'coffer.db'}"
    db = Database(normalize_database_url(url))
    try:
        yield db
    finally:
        db.dispose()
        if backend == "postgres":
            drop_pg_database(url)


def differences(db: Database) -> list[object]:
    with db.engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def tables(db: Database) -> list[str]:
    with db.engine.connect() as conn:
        return sorted(sa.inspect(conn).get_table_names())


def test_the_migrations_create_the_declared_schema(empty_db: Database) -> None:
    empty_db.migrate()
    assert differences(empty_db) == []
    assert tables(empty_db) == sorted([*metadata.tables, "alembic_version"])


def test_every_revision_goes_down_and_up_again(empty_db: Database) -> None:
    empty_db.migrate()
    with empty_db.engine.connect() as conn:
        command.downgrade(alembic_config(conn), "base")
        conn.commit()
    assert tables(empty_db) == ["alembic_version"]
    empty_db.migrate()
    assert differences(empty_db) == []


def test_a_revision_never_imports_the_live_schema() -> None:
    """A revision must create the same tables forever; `coffer.store.schema` moves on with the
    code. Shared column shapes come from the frozen `coffer.store.migrations.columns`."""
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not [n for n in names if n.startswith("coffer.store.schema")], path.name
