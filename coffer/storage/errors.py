"""What can go wrong in storage, as data: no HTTP status, no header, no XML.

The domain is S3's (buckets, keys, versions, uploads), so the names stay close to S3's
error codes; each error carries what a face needs to explain it (the bucket, the key, the
version, the sizes) and, where the wording matters, a message (`detail`; None means the
face's usual words). Each face translates: the S3 face in exactly one place (`from_storage`
in its `errors.py`), which picks the S3 code, status, XML fields and headers (`Allow`,
`x-amz-delete-marker`, ...). `kind` (a gRPC code, as for every `CofferError`) lets any
other caller report them without knowing the list.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from coffer.errors import CofferError, Kind


class StorageError(CofferError):
    """Base of every storage failure; `code` names it (the class name).

    A subclass states its `kind` and `default` message as class keywords (a long message:
    in its body). An error that carries data is a dataclass whose fields are that data; its
    message is `detail`, or the class's `default` when that is None (the face's usual words)."""

    kind = Kind.INVALID_ARGUMENT
    default = "The storage request is not valid."
    detail: str | None = None

    def __init_subclass__(cls, *, default: str | None = None, **kw: Any) -> None:
        super().__init_subclass__(**kw)  # `kind`: CofferError's
        if default is not None:
            cls.default = default

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail
        self.__post_init__()

    def __post_init__(self) -> None:
        super().__init__(self.detail or self.default)

    @property
    def code(self) -> str:
        return type(self).__name__


# --- buckets ---------------------------------------------------------------------------------
@dataclass(eq=False, repr=False)
class BucketError(StorageError):
    """About the bucket `bucket`."""

    bucket: str


class NoSuchBucket(BucketError, kind=Kind.NOT_FOUND, default="The bucket does not exist."): ...


class BucketAlreadyExists(BucketError, kind=Kind.ALREADY_EXISTS, default="The bucket name is not available."):
    """The name belongs to another organization's bucket."""


class BucketAlreadyOwnedByYou(
    BucketError, kind=Kind.ALREADY_EXISTS, default="The bucket already exists, and you own it."
):
    """The organization has a bucket of that name, in another zone."""


class BucketNotEmpty(BucketError, kind=Kind.FAILED_PRECONDITION, default="The bucket is not empty."): ...


class TooManyBuckets(
    StorageError, kind=Kind.RESOURCE_EXHAUSTED, default="The organization has as many buckets as it may."
): ...


class InvalidBucketName(BucketError, default="The bucket name is not valid."): ...


@dataclass(eq=False, repr=False)
class InvalidLocationConstraint(StorageError, default="The zone is not one this node serves."):
    zone: str


class InvalidBucketState(
    StorageError,
    kind=Kind.FAILED_PRECONDITION,
    default="The request is not valid with the current state of the bucket.",
): ...


# --- objects and versions --------------------------------------------------------------------
@dataclass(eq=False, repr=False)
class ObjectError(StorageError):
    """About the object key `key`."""

    key: str


@dataclass(eq=False, repr=False)
class NoSuchKey(ObjectError, kind=Kind.NOT_FOUND, default="The key does not exist."):
    """No current object under the key. `delete_marker` is the version id of the delete
    marker that is the key's latest version, when that is why."""

    _: KW_ONLY
    delete_marker: str | None = None


@dataclass(eq=False, repr=False)
class VersionError(ObjectError):
    """About the version `version_id` of the key."""

    version_id: str


class NoSuchVersion(VersionError, kind=Kind.NOT_FOUND, default="The version does not exist."): ...


@dataclass(eq=False, repr=False)
class IsDeleteMarker(VersionError, default="The version is a delete marker."):
    """The version named is a delete marker: it has no body, tags or metadata, and the
    only operation it allows is `allowed` (deleting it)."""

    _: KW_ONLY
    allowed: str = "DELETE"


@dataclass(eq=False, repr=False)
class KeyTooLong(StorageError, default="The key is too long."):
    size: int
    max_size: int


@dataclass(eq=False, repr=False)
class PreconditionFailed(StorageError, kind=Kind.FAILED_PRECONDITION, default="A precondition did not hold."):
    """A conditional write's condition (`If-Match`, `If-None-Match`) did not hold. `raced`:
    it held when the request began, and a write committed while it was in flight made it
    fail (a face that answers a lost race differently reads it)."""

    condition: str
    _: KW_ONLY
    raced: bool = False


class InvalidRange(
    StorageError, kind=Kind.OUT_OF_RANGE, default="The byte range is not inside the object."
): ...


class BadDigest(StorageError, default="The data does not match the digest declared for it."): ...


@dataclass(eq=False, repr=False)
class IncompleteBody(StorageError, default="The body is not the length announced."):
    """A body ended before (or went on after) the length announced for it."""

    size: int
    declared: int


# --- multipart -------------------------------------------------------------------------------
@dataclass(eq=False, repr=False)
class NoSuchUpload(StorageError, kind=Kind.NOT_FOUND, default="The upload does not exist."):
    upload_id: str


@dataclass(eq=False, repr=False)
class InvalidPart(StorageError, default="A listed part was not found or does not match."):
    """A listed part was not uploaded, or its ETag (`etag`, as listed) or checksum differs."""

    part_number: int
    _: KW_ONLY
    etag: str | None = None
    detail: str | None = None


class InvalidPartOrder(StorageError, default="The parts are not in ascending order."): ...


@dataclass(eq=False, repr=False)
class EntityTooSmall(StorageError, default="The data is smaller than allowed."):
    """A part other than the last (`part_number`, `etag`) is below the minimum part size,
    or a body is smaller than its writer allowed."""

    size: int
    min_size: int
    _: KW_ONLY
    part_number: int | None = None
    etag: str | None = None


@dataclass(eq=False, repr=False)
class EntityTooLarge(StorageError, default="The data is larger than allowed."):
    max_size: int
    _: KW_ONLY
    size: int | None = None


# --- values (the message is the caller's) ----------------------------------------------------
@dataclass(eq=False, repr=False)
class DescribedError(StorageError):
    """An error whose message (`detail`) its raiser always writes."""

    detail: str = field()


@dataclass(eq=False, repr=False)
class InvalidArgument(DescribedError):
    """A value is not acceptable; `argument` names it when it is a request argument."""

    _: KW_ONLY
    argument: str | None = None
    value: str | None = None


class InvalidRequest(DescribedError):
    """A combination of values the domain does not accept (checksum modes, sizes)."""


class MalformedDocument(StorageError, default="The document is not well-formed."):
    """A configuration or list is not the shape it must have (no rules, no parts)."""


class NoSuchInventoryConfiguration(
    StorageError, kind=Kind.NOT_FOUND, default="The specified configuration does not exist."
):
    """The bucket has no inventory configuration of that id (coffer/lifecycle/inventory.py)."""


class TooManyConfigurations(
    StorageError,
    kind=Kind.RESOURCE_EXHAUSTED,
    default="The bucket already has the 1,000 inventory configurations it may have.",
):
    """A bucket may have at most 1,000 inventory configurations, as on AWS."""


class InvalidTag(DescribedError): ...


@dataclass(eq=False, repr=False)
class TooManyTags(DescribedError):
    """More tags than an object (`bucket` False) or a bucket may carry."""

    _: KW_ONLY
    bucket: bool


# --- capacity caps (coffer/storage/usage.py) ------------------------------------------------
@dataclass(eq=False, repr=False)
class QuotaExceeded(StorageError, kind=Kind.RESOURCE_EXHAUSTED):
    """A write into `bucket` would take it (`scope` "bucket") or its organization
    ("organization") beyond its capacity cap of `cap` bytes (0: no new writes at all)."""

    bucket: str
    _: KW_ONLY
    scope: str
    cap: int

    def __post_init__(self) -> None:
        if self.detail is None:
            owner = "bucket" if self.scope == "bucket" else "organization"
            self.detail = (
                f"The {owner}'s capacity cap of {self.cap} bytes does not allow this write."
                if self.cap
                else f"The {owner}'s capacity cap of 0 bytes blocks all new writes."
            )
        super().__post_init__()


# --- the machinery -------------------------------------------------------------------------
class InsufficientStorage(
    StorageError, kind=Kind.RESOURCE_EXHAUSTED, default="There is not enough space left to store the data."
):
    """The disk is full, even after the collector freed what it could."""


class Busy(StorageError, kind=Kind.UNAVAILABLE, default="The metadata store is busy; please retry."):
    """The metadata store is busy, or concurrent writers kept winning: try again."""


class BlobUnavailable(StorageError, kind=Kind.INTERNAL, default="A stored body is unavailable."):
    """A body the metadata points at is missing or shorter than recorded, or was discarded
    before it could be stored: our fault, never the caller's."""


# --- Coffer's own buckets (coffer/storage/reserved.py) ----------------------------------------
class ReservedBucket(BucketError, kind=Kind.PERMISSION_DENIED):
    """A change to a bucket only Coffer writes (`cw-<org-id>-audit-logs`): its objects can be
    read as the organization's policies allow, never written, deleted or reconfigured."""

    default = (
        "This bucket is reserved for the organization's audit logs: only Coffer writes to it; "
        "it can be read (s3:GetObject, s3:ListBucket), not changed or deleted."
    )


class ReservedBucketName(InvalidBucketName):
    """A name only Coffer may give a bucket (`cw-`, `vip-`, `log-stitcher-ch-`, `int`)."""

    default = (
        "The bucket name is reserved: names beginning with cw-, vip- or log-stitcher-ch- (and int) "
        "are kept for the service; cw-<org-id>-audit-logs holds an organization's audit logs."
    )


# --- conditional writes (coffer/storage/rules.py: check_preconditions) ------------------------
class ConditionalRequestConflict(
    ObjectError,
    kind=Kind.FAILED_PRECONDITION,
    default="A conflicting operation occurred during the conditional request; retry it.",
):
    """A conditional write's condition still holds, but another write or delete of `key`
    committed while this one was in flight: retry it (a multipart upload: start anew)."""
