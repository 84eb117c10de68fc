"""`storage.rows.from_row`: a model from a row's same-named columns, converted by field type."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from coffer.storage.models import Part, Upload, VersionState
from coffer.storage.rows import from_row


def test_fields_are_converted_as_their_types_say() -> None:
    # As SQLite hands them back: booleans as 0/1, a datetime without its zone, a NULL mapping.
    row = SimpleNamespace(
        key="k",
        version_id="v",
        is_latest=1,
        is_delete_marker=0,
        last_modified=datetime(2026, 1, 2, 3, 4, 5),
        size=7,
        tags=None,
        seq=99,  # a column the model has no field for: ignored
    )
    state = from_row(VersionState, row)
    assert state == VersionState("k", "v", True, False, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), 7, None)
    assert type(state.is_latest) is bool and type(state.is_delete_marker) is bool
    assert state.tags is None  # an optional mapping stays NULL

    part = from_row(
        Part,
        SimpleNamespace(
            part_number=3, blob="b", size=5, etag='"e"', checksums=None, last_modified=datetime(2026, 1, 1)
        ),
    )
    assert part.checksums == {} and part.last_modified.tzinfo is UTC


def test_given_fields_are_taken_as_they_are() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    row = SimpleNamespace(
        upload_id="u",
        bucket="b",
        key="k",
        initiated=when,
        owner_principal="o",
        storage_class="STANDARD",
        headers={"content-type": "text/plain"},
        checksum_algorithm="CRC32",
        checksum_type="FULL_OBJECT",
        tags={"a": "b"},
        acl=None,
    )
    upload = from_row(Upload, row, storage_class="GLACIER")
    assert upload.storage_class == "GLACIER" and upload.headers == {"content-type": "text/plain"}
    assert upload.headers is not row.headers  # a copy: the model never shares the row's mapping
    # The same model with other given fields is read with a plan of its own.
    assert from_row(Upload, row).storage_class == "STANDARD"
