"""Column shapes the migrations repeat, frozen.

A migration must create the same schema on every run, today and years from now, so each
helper here is frozen once a revision calls it: never change what one returns (a new shape
gets a new helper). The live schema is `coffer.store.schema`; a migration never imports it,
since that moves on with the code while a revision must not.

Each helper returns new Column objects (a Column belongs to one table), to be spread into
`op.create_table(...)` or passed to `batch.add_column(...)`. `required` and `optional` state
a run of plain columns once, as `name=type` keywords, instead of a `sa.Column` line each.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

Column = sa.Column[Any]


def timestamp(name: str, *, nullable: bool = False) -> Column:
    """A point in time, with its time zone."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def org_id() -> tuple[Column, sa.ForeignKeyConstraint]:
    """The organization a row belongs to: the column and its foreign key to `organizations.id`.

    The key is a constraint of its own, made here (not `sa.ForeignKey` on the column), so that
    SQLite keeps the table's constraints in the order the first revisions wrote them."""
    column = sa.Column("org_id", sa.String(length=32), nullable=False)
    return column, sa.ForeignKeyConstraint(["org_id"], ["organizations.id"])


def user_id() -> tuple[Column, sa.ForeignKeyConstraint]:
    """The user a row belongs to: the column and its foreign key to `users.id` (as `org_id`)."""
    column = sa.Column("user_id", sa.String(length=32), nullable=False)
    return column, sa.ForeignKeyConstraint(["user_id"], ["users.id"])


def object_key() -> Column:
    """An object key, sorted by its UTF-8 bytes on both dialects (the C collation on PostgreSQL)."""
    return sa.Column("key", sa.Text().with_variant(sa.Text(collation="C"), "postgresql"), nullable=False)


def lifetime() -> tuple[Column, Column, Column]:
    """When a credential was made, when it expires and when it was revoked (NULL: never, not yet)."""
    return (
        timestamp("created_at"),
        timestamp("expires_at", nullable=True),
        timestamp("revoked_at", nullable=True),
    )


def edited() -> tuple[Column, Column]:
    """When a row was created and last changed."""
    return timestamp("created_at"), timestamp("updated_at")


def required(**types: sa.types.TypeEngine[Any]) -> list[Column]:
    """NOT NULL columns, named by the keywords, in the order given."""
    return [sa.Column(name, type_, nullable=False) for name, type_ in types.items()]


def optional(**types: sa.types.TypeEngine[Any]) -> list[Column]:
    """Nullable columns (NULL: not set), named by the keywords, in the order given."""
    return [sa.Column(name, type_, nullable=True) for name, type_ in types.items()]
