"""Errors name their kind (and storage errors their default message) as class keywords."""

from __future__ import annotations

import pytest

from coffer import errors
from coffer.errors import Kind
from coffer.storage import errors as storage


def test_class_keywords_set_kind_and_default_and_subclasses_inherit_them() -> None:
    assert (
        errors.NotFound.kind is Kind.NOT_FOUND
        and errors.NotFound.resource("bucket", "b").kind is Kind.NOT_FOUND
    )
    assert errors.CofferError.kind is Kind.INTERNAL  # a subclass's keyword never reaches its base
    missing = storage.NoSuchBucket("b")
    assert (missing.kind, str(missing), missing.code) == (
        Kind.NOT_FOUND,
        "The bucket does not exist.",
        "NoSuchBucket",
    )
    assert storage.BucketError.kind is Kind.INVALID_ARGUMENT  # StorageError's own
    # ReservedBucketName states only its message: its kind comes from InvalidBucketName (and on).
    assert storage.ReservedBucketName.kind is storage.InvalidBucketName.kind is Kind.INVALID_ARGUMENT
    assert storage.ReservedBucketName.default != storage.InvalidBucketName.default


def test_detail_overrides_the_default_and_fields_stay_positional() -> None:
    conflict = storage.ConditionalRequestConflict("k")
    assert (conflict.key, str(conflict), conflict.kind) == ("k", conflict.default, Kind.FAILED_PRECONDITION)
    assert str(storage.InvalidPart(3, detail="its checksum differs")) == "its checksum differs"
    assert str(storage.InvalidPart(3)) == storage.InvalidPart.default
    marker = storage.IsDeleteMarker("k", "v1")
    assert (marker.key, marker.version_id, marker.allowed) == ("k", "v1", "DELETE")
    with pytest.raises(TypeError):
        storage.InvalidArgument()  # type: ignore[call-arg]  # its message is always the raiser's
    assert str(storage.InvalidTag("bad tag")) == "bad tag"


@pytest.mark.parametrize(
    "cls", [c for c in vars(storage).values() if isinstance(c, type) and issubclass(c, storage.StorageError)]
)
def test_every_storage_error_has_a_kind_and_words(cls: type[storage.StorageError]) -> None:
    assert isinstance(cls.kind, Kind) and cls.default
