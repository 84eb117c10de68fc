"""Rows of the metadata store to and from the storage models, and the column sets the hot
queries read (never SELECT * of a big table where a few columns do)."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias, TypeVar, cast, get_origin, get_type_hints

import sqlalchemy as sa
from sqlalchemy.engine import Row

from coffer.storage.models import Bucket, ObjectVersion, Part, PartRef, Upload
from coffer.store.schema import objects

AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"
M = TypeVar("M")


def as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def part_json(part: PartRef) -> dict[str, Any]:
    entry: dict[str, Any] = {"blob": part.blob, "size": part.size}
    if part.etag:
        entry["etag"] = part.etag
    if part.checksums:
        entry["checksums"] = dict(part.checksums)
    return entry


def parts_from_json(value: Any) -> list[PartRef]:
    return [
        PartRef(
            blob=p["blob"], size=int(p["size"]), etag=p.get("etag", ""), checksums=p.get("checksums") or {}
        )
        for p in value or []
    ]


def blobs_of(parts_json: Any) -> list[str]:
    return [p["blob"] for p in parts_json or [] if p.get("blob")]


def checksum_algorithm(checksums: Mapping[str, str] | None) -> str | None:
    for name in checksums or {}:
        if name != "type":
            return name
    return None


def _as_dict(value: Any) -> dict[Any, Any]:
    return dict(value or {})


def _converter(hint: Any) -> Callable[[Any], Any] | None:
    """How a column's value becomes a field of type `hint` (None: as it is). SQLite hands back
    booleans as 0/1 and datetimes without their zone; a NULL mapping reads as an empty one."""
    if hint is bool or hint is int:
        return cast("Callable[[Any], Any]", hint)
    if hint is datetime:
        return as_utc
    if get_origin(hint) is dict:
        return _as_dict
    return None


# Per (model, fields given by the caller): the fields read from the row, one getter that reads
# them all (a tuple: every model here has several), and each field's converter.
_Plan: TypeAlias = tuple[tuple[str, ...], Callable[[Any], Any], tuple[Callable[[Any], Any] | None, ...]]
_PLANS: dict[tuple[type[Any], tuple[str, ...]], _Plan] = {}


def _plan(model: type[Any], given: tuple[str, ...]) -> _Plan:
    plan = _PLANS.get((model, given))
    if plan is None:
        hints = get_type_hints(model)
        names = tuple(f.name for f in dataclasses.fields(model) if f.init and f.name not in given)
        converters = tuple(_converter(hints[name]) for name in names)
        plan = _PLANS[model, given] = (names, operator.attrgetter(*names), converters)
    return plan


def from_row(model: type[M], row: Any, **given: Any) -> M:
    """A `model` dataclass from the row's columns of the same names, each converted as its
    field's type says (`_converter`); `given` fields are taken as they are instead."""
    names, read, converters = _plan(model, tuple(given))
    values = zip(names, converters, read(row), strict=True)
    return model(**given, **{name: v if convert is None else convert(v) for name, convert, v in values})


def bucket_from_row(row: AnyRow) -> Bucket:
    return from_row(Bucket, row, versioning=row.versioning or "")


def version_from_row(row: AnyRow) -> ObjectVersion:
    return from_row(ObjectVersion, row, parts=parts_from_json(row.parts))


def upload_from_row(row: AnyRow) -> Upload:
    return from_row(Upload, row)


def part_from_row(row: AnyRow) -> Part:
    return from_row(Part, row)


def latest_only() -> sa.ColumnElement[bool]:
    # Spelled exactly like the partial index predicate so SQLite's planner can use it.
    return objects.c.is_latest == sa.true()


OBJECT_LISTING_COLUMNS = (
    objects.c.key,
    objects.c.last_modified,
    objects.c.etag,
    objects.c.size,
    objects.c.storage_class,
    objects.c.owner_principal,
    objects.c.checksums,
)


LATEST_COLUMNS = (
    objects.c.version_id,
    objects.c.seq,
    objects.c.etag,
    objects.c.is_delete_marker,
    objects.c.parts,
    objects.c.size,  # size and class: what the version counts for (usage.Delta)
    objects.c.storage_class,
)
