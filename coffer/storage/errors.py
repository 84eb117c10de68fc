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

from coffer.errors import CofferError, Kind


class StorageError(CofferError):
    """Base of every storage failure; `code` names it (the class name)."""

    kind = Kind.INVALID_ARGUMENT
    default = "The storage request is not valid."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.default)
        self.detail = detail

    @property
    def code(self) -> str:
        return type(self).__name__


# --- buckets ---------------------------------------------------------------------------------
class NoSuchBucket(StorageError):
    kind = Kind.NOT_FOUND
    default = "The bucket does not exist."

    def __init__(self, bucket: str) -> None:
        super().__init__()
        self.bucket = bucket


class BucketAlreadyExists(StorageError):
    """The name belongs to another organization's bucket."""

    kind = Kind.ALREADY_EXISTS
    default = "The bucket name is not available."

    def __init__(self, bucket: str) -> None:
        super().__init__()
        self.bucket = bucket


class BucketAlreadyOwnedByYou(StorageError):
    """The organization has a bucket of that name, in another zone."""

    kind = Kind.ALREADY_EXISTS
    default = "The bucket already exists, and you own it."

    def __init__(self, bucket: str) -> None:
        super().__init__()
        self.bucket = bucket


class BucketNotEmpty(StorageError):
    kind = Kind.FAILED_PRECONDITION
    default = "The bucket is not empty."

    def __init__(self, bucket: str) -> None:
        super().__init__()
        self.bucket = bucket


class TooManyBuckets(StorageError):
    kind = Kind.RESOURCE_EXHAUSTED
    default = "The organization has as many buckets as it may."


class InvalidBucketName(StorageError):
    default = "The bucket name is not valid."

    def __init__(self, bucket: str) -> None:
        super().__init__()
        self.bucket = bucket


class InvalidLocationConstraint(StorageError):
    default = "The zone is not one this node serves."

    def __init__(self, zone: str) -> None:
        super().__init__()
        self.zone = zone


class InvalidBucketState(StorageError):
    kind = Kind.FAILED_PRECONDITION
    default = "The request is not valid with the current state of the bucket."


# --- objects and versions --------------------------------------------------------------------
class NoSuchKey(StorageError):
    """No current object under the key. `delete_marker` is the version id of the delete
    marker that is the key's latest version, when that is why."""

    kind = Kind.NOT_FOUND
    default = "The key does not exist."

    def __init__(self, key: str, *, delete_marker: str | None = None) -> None:
        super().__init__()
        self.key = key
        self.delete_marker = delete_marker


class NoSuchVersion(StorageError):
    kind = Kind.NOT_FOUND
    default = "The version does not exist."

    def __init__(self, key: str, version_id: str) -> None:
        super().__init__()
        self.key = key
        self.version_id = version_id


class IsDeleteMarker(StorageError):
    """The version named is a delete marker: it has no body, tags or metadata, and the
    only operation it allows is `allowed` (deleting it)."""

    default = "The version is a delete marker."

    def __init__(self, key: str, version_id: str, *, allowed: str = "DELETE") -> None:
        super().__init__()
        self.key = key
        self.version_id = version_id
        self.allowed = allowed


class KeyTooLong(StorageError):
    default = "The key is too long."

    def __init__(self, size: int, max_size: int) -> None:
        super().__init__()
        self.size = size
        self.max_size = max_size


class PreconditionFailed(StorageError):
    """A conditional write's condition (`If-Match`, `If-None-Match`) did not hold."""

    kind = Kind.FAILED_PRECONDITION
    default = "A precondition did not hold."

    def __init__(self, condition: str) -> None:
        super().__init__()
        self.condition = condition


class InvalidRange(StorageError):
    kind = Kind.OUT_OF_RANGE
    default = "The byte range is not inside the object."


class BadDigest(StorageError):
    default = "The data does not match the digest declared for it."


class IncompleteBody(StorageError):
    """A body ended before (or went on after) the length announced for it."""

    default = "The body is not the length announced."

    def __init__(self, size: int, declared: int) -> None:
        super().__init__()
        self.size = size
        self.declared = declared


# --- multipart -------------------------------------------------------------------------------
class NoSuchUpload(StorageError):
    kind = Kind.NOT_FOUND
    default = "The upload does not exist."

    def __init__(self, upload_id: str) -> None:
        super().__init__()
        self.upload_id = upload_id


class InvalidPart(StorageError):
    """A listed part was not uploaded, or its ETag (`etag`, as listed) or checksum differs."""

    default = "A listed part was not found or does not match."

    def __init__(self, part_number: int, *, etag: str | None = None, detail: str | None = None) -> None:
        super().__init__(detail)
        self.part_number = part_number
        self.etag = etag


class InvalidPartOrder(StorageError):
    default = "The parts are not in ascending order."


class EntityTooSmall(StorageError):
    """A part other than the last (`part_number`, `etag`) is below the minimum part size,
    or a body is smaller than its writer allowed."""

    default = "The data is smaller than allowed."

    def __init__(
        self, size: int, min_size: int, *, part_number: int | None = None, etag: str | None = None
    ) -> None:
        super().__init__()
        self.size = size
        self.min_size = min_size
        self.part_number = part_number
        self.etag = etag


class EntityTooLarge(StorageError):
    default = "The data is larger than allowed."

    def __init__(self, max_size: int, *, size: int | None = None) -> None:
        super().__init__()
        self.max_size = max_size
        self.size = size


# --- values --------------------------------------------------------------------------------
class InvalidArgument(StorageError):
    """A value is not acceptable; `argument` names it when it is a request argument."""

    def __init__(self, detail: str, *, argument: str | None = None, value: str | None = None) -> None:
        super().__init__(detail)
        self.argument = argument
        self.value = value


class InvalidRequest(StorageError):
    """A combination of values the domain does not accept (checksum modes, sizes)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class MalformedDocument(StorageError):
    """A configuration or list is not the shape it must have (no rules, no parts)."""

    default = "The document is not well-formed."


class InvalidTag(StorageError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class TooManyTags(StorageError):
    """More tags than an object (`bucket` False) or a bucket may carry."""

    def __init__(self, detail: str, *, bucket: bool) -> None:
        super().__init__(detail)
        self.bucket = bucket


# --- the machinery -------------------------------------------------------------------------
class InsufficientStorage(StorageError):
    """The disk is full, even after the collector freed what it could."""

    kind = Kind.RESOURCE_EXHAUSTED
    default = "There is not enough space left to store the data."


class Busy(StorageError):
    """The metadata store is busy, or concurrent writers kept winning: try again."""

    kind = Kind.UNAVAILABLE
    default = "The metadata store is busy; please retry."


class BlobUnavailable(StorageError):
    """A body the metadata points at is missing or shorter than recorded, or was discarded
    before it could be stored: our fault, never the caller's."""

    kind = Kind.INTERNAL
    default = "A stored body is unavailable."
