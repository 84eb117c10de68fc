"""Storage errors in S3's words: the one place where the S3 face translates them.

Storage raises errors that carry data (`coffer.storage.errors`); `from_storage` turns each
into the `S3Error` with its code (hence its status, from `coffer.errors.S3_ERRORS`), the
extra fields of the XML <Error> and the headers S3 sends with it (`Allow`,
`x-amz-delete-marker`, `x-amz-version-id`). `responses.as_s3_error` calls it for every
error a handler lets through.
"""

from __future__ import annotations

from coffer.errors import S3Error
from coffer.policy.errors import MalformedPolicy
from coffer.storage import errors as e

# Storage errors S3 answers with a code and the message alone.
_PLAIN: dict[type[e.StorageError], str] = {
    e.TooManyBuckets: "TooManyBuckets",
    e.InvalidBucketState: "InvalidBucketState",
    e.InvalidRange: "InvalidRange",
    e.BadDigest: "BadDigest",
    e.IncompleteBody: "IncompleteBody",
    e.InvalidPartOrder: "InvalidPartOrder",
    e.InvalidRequest: "InvalidRequest",
    e.MalformedDocument: "MalformedXML",
    e.NoSuchInventoryConfiguration: "NoSuchConfiguration",
    e.TooManyConfigurations: "TooManyConfigurations",
    e.InvalidTag: "InvalidTag",
    e.InsufficientStorage: "InsufficientStorage",
    e.QuotaExceeded: "QuotaExceeded",  # 403, as Ceph RGW: a capacity cap (coffer/storage/usage.py)
    e.Busy: "SlowDown",
    e.BlobUnavailable: "InternalError",
}


def from_storage(exc: e.StorageError) -> S3Error:
    """The S3 error a storage error is answered with."""
    detail = exc.detail
    plain = _PLAIN.get(type(exc))
    if plain is not None:
        return S3Error(plain, detail)
    match exc:
        case e.ReservedBucket():  # the audit-log bucket: only Coffer writes it
            return S3Error("AccessDenied", detail or exc.default)
        case e.ReservedBucketName():
            return S3Error("InvalidBucketName", detail or exc.default, fields={"BucketName": exc.bucket})
        case e.BucketError():  # NoSuchBucket, BucketAlreadyExists, ...: S3's code is the name
            return S3Error(exc.code, detail, fields={"BucketName": exc.bucket})
        case e.InvalidLocationConstraint():
            return S3Error("InvalidLocationConstraint", detail, fields={"LocationConstraint": exc.zone})
        case e.NoSuchKey():
            headers = {}
            if exc.delete_marker is not None:
                headers = {"x-amz-delete-marker": "true", "x-amz-version-id": exc.delete_marker}
            return S3Error("NoSuchKey", detail, fields={"Key": exc.key}, headers=headers)
        case e.NoSuchVersion():
            return S3Error("NoSuchVersion", detail, fields={"Key": exc.key, "VersionId": exc.version_id})
        case e.IsDeleteMarker():
            headers = {
                "x-amz-delete-marker": "true",
                "x-amz-version-id": exc.version_id,
                "Allow": exc.allowed,
            }
            return S3Error("MethodNotAllowed", detail, headers=headers)
        case e.KeyTooLong():
            return S3Error(
                "KeyTooLongError", detail, fields={"Size": str(exc.size), "MaxSizeAllowed": str(exc.max_size)}
            )
        case e.PreconditionFailed():
            return S3Error("PreconditionFailed", detail, fields={"Condition": exc.condition})
        case e.ConditionalRequestConflict():
            return S3Error("ConditionalRequestConflict", detail, fields={"Key": exc.key})
        case e.NoSuchUpload():
            return S3Error("NoSuchUpload", detail, fields={"UploadId": exc.upload_id})
        case e.InvalidPart():
            fields = {"PartNumber": str(exc.part_number)}
            if exc.etag is not None:
                fields["ETag"] = exc.etag
            return S3Error("InvalidPart", detail, fields=fields)
        case e.EntityTooSmall():
            fields = {"ProposedSize": str(exc.size), "MinSizeAllowed": str(exc.min_size)}
            if exc.part_number is not None:
                fields["PartNumber"] = str(exc.part_number)
            if exc.etag is not None:
                fields["ETag"] = exc.etag
            return S3Error("EntityTooSmall", detail, fields=fields)
        case e.EntityTooLarge():
            fields = {} if exc.size is None else {"ProposedSize": str(exc.size)}
            fields["MaxSizeAllowed"] = str(exc.max_size)
            return S3Error("EntityTooLarge", detail, fields=fields)
        case e.InvalidArgument():
            fields = {}
            if exc.argument is not None:
                fields["ArgumentName"] = exc.argument
            if exc.value is not None:
                fields["ArgumentValue"] = exc.value
            return S3Error("InvalidArgument", detail, fields=fields)
        case e.TooManyTags():
            # S3 answers InvalidTag for a bucket's tag set, but BadRequest for an object's.
            return S3Error("InvalidTag" if exc.bucket else "BadRequest", detail)
    return S3Error("InternalError", detail)


def from_policy(exc: MalformedPolicy) -> S3Error:
    """A bucket policy the parser refused (PutBucketPolicy): 400 MalformedPolicy with its reason."""
    return S3Error("MalformedPolicy", exc.reason)
