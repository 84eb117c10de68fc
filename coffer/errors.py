"""Domain errors. The core raises these; each face renders them in its own dialect.

The kinds follow gRPC status codes because the control plane is wire-compatible with a
gRPC-gateway service; the S3 face maps them onto S3 error codes where it needs to.
"""

from __future__ import annotations

import enum
from typing import Any


class Kind(enum.Enum):
    """gRPC code name, number and the HTTP status gRPC-gateway gives it."""

    INVALID_ARGUMENT = (3, 400)
    FAILED_PRECONDITION = (9, 400)
    OUT_OF_RANGE = (11, 400)
    UNAUTHENTICATED = (16, 401)
    PERMISSION_DENIED = (7, 403)
    NOT_FOUND = (5, 404)
    ALREADY_EXISTS = (6, 409)
    RESOURCE_EXHAUSTED = (8, 429)
    UNIMPLEMENTED = (12, 501)
    INTERNAL = (13, 500)
    UNAVAILABLE = (14, 503)

    @property
    def grpc_code(self) -> int:
        return self.value[0]

    @property
    def http_status(self) -> int:
        return self.value[1]


class CofferError(Exception):
    """An expected failure with a kind, a message safe to show the caller, and optional details."""

    kind: Kind = Kind.INTERNAL

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class InvalidArgument(CofferError):
    kind = Kind.INVALID_ARGUMENT

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        """A BadRequest naming the offending field, as google.rpc.BadRequest does."""
        return cls(
            f"invalid {field}: {description}",
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{"field": field, "description": description}],
                }
            ],
        )


class Unauthenticated(CofferError):
    kind = Kind.UNAUTHENTICATED


class PermissionDenied(CofferError):
    kind = Kind.PERMISSION_DENIED


class NotFound(CofferError):
    kind = Kind.NOT_FOUND

    @classmethod
    def resource(cls, resource_type: str, name: str) -> NotFound:
        return cls(
            f"{resource_type} {name!r} not found",
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.ResourceInfo",
                    "resourceType": resource_type,
                    "resourceName": name,
                    "description": "not found",
                }
            ],
        )


class AlreadyExists(CofferError):
    kind = Kind.ALREADY_EXISTS


class ResourceExhausted(CofferError):
    kind = Kind.RESOURCE_EXHAUSTED


class Unavailable(CofferError):
    kind = Kind.UNAVAILABLE


# --- S3 --------------------------------------------------------------------------------
# code -> (HTTP status, default message, gRPC kind used when the control plane reports it)
S3_ERRORS: dict[str, tuple[int, str, Kind]] = {
    "AccessDenied": (403, "Access Denied", Kind.PERMISSION_DENIED),
    "AccountProblem": (403, "There is a problem with your account.", Kind.PERMISSION_DENIED),
    "AuthorizationHeaderMalformed": (
        400,
        "The authorization header you provided is invalid.",
        Kind.INVALID_ARGUMENT,
    ),
    "AuthorizationQueryParametersError": (
        400,
        "Error parsing the X-Amz-Credential parameter.",
        Kind.INVALID_ARGUMENT,
    ),
    "BadDigest": (
        400,
        "The Content-MD5 you specified did not match what was received.",
        Kind.INVALID_ARGUMENT,
    ),
    "BucketAlreadyExists": (409, "The requested bucket name is not available.", Kind.ALREADY_EXISTS),
    "BucketAlreadyOwnedByYou": (
        409,
        "The bucket you tried to create already exists, and you own it.",
        Kind.ALREADY_EXISTS,
    ),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty.", Kind.FAILED_PRECONDITION),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed size.", Kind.INVALID_ARGUMENT),
    "EntityTooSmall": (
        400,
        "Your proposed upload is smaller than the minimum allowed object size.",
        Kind.INVALID_ARGUMENT,
    ),
    "ExpiredToken": (400, "The provided token has expired.", Kind.UNAUTHENTICATED),
    "IllegalLocationConstraintException": (
        400,
        "The specified location-constraint is not valid.",
        Kind.INVALID_ARGUMENT,
    ),
    "IncompleteBody": (
        400,
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        Kind.INVALID_ARGUMENT,
    ),
    "InternalError": (500, "We encountered an internal error. Please try again.", Kind.INTERNAL),
    "InvalidAccessKeyId": (
        403,
        "The AWS access key Id you provided does not exist in our records.",
        Kind.UNAUTHENTICATED,
    ),
    "InvalidArgument": (400, "Invalid Argument", Kind.INVALID_ARGUMENT),
    "InvalidBucketName": (400, "The specified bucket is not valid.", Kind.INVALID_ARGUMENT),
    "InvalidBucketState": (
        409,
        "The request is not valid with the current state of the bucket.",
        Kind.FAILED_PRECONDITION,
    ),
    "InvalidDigest": (400, "The Content-MD5 you specified is not valid.", Kind.INVALID_ARGUMENT),
    "InvalidEncryptionAlgorithmError": (
        400,
        "The encryption request you specified is not valid.",
        Kind.INVALID_ARGUMENT,
    ),
    "InvalidLocationConstraint": (
        400,
        "The specified location constraint is not valid.",
        Kind.INVALID_ARGUMENT,
    ),
    "InvalidObjectState": (
        403,
        "The operation is not valid for the current state of the object.",
        Kind.FAILED_PRECONDITION,
    ),
    "InvalidPart": (
        400,
        "One or more of the specified parts could not be found. The part might not have been uploaded, "
        "or the specified entity tag might not have matched the part's entity tag.",
        Kind.INVALID_ARGUMENT,
    ),
    "InvalidPartOrder": (
        400,
        "The list of parts was not in ascending order. "
        "The parts list must be specified in order by part number.",
        Kind.INVALID_ARGUMENT,
    ),
    "InvalidPolicyDocument": (
        400,
        "The content of the form does not meet the conditions specified in the policy document.",
        Kind.INVALID_ARGUMENT,
    ),
    "InvalidRange": (416, "The requested range is not satisfiable", Kind.OUT_OF_RANGE),
    "InvalidPartNumber": (416, "The requested partnumber is not satisfiable", Kind.OUT_OF_RANGE),
    "InvalidRequest": (400, "Invalid Request", Kind.INVALID_ARGUMENT),
    "InvalidStorageClass": (400, "The storage class you specified is not valid.", Kind.INVALID_ARGUMENT),
    "InvalidTag": (400, "The tag provided was not a valid tag.", Kind.INVALID_ARGUMENT),
    "InvalidToken": (400, "The provided token is malformed or otherwise invalid.", Kind.UNAUTHENTICATED),
    "InvalidURI": (400, "Couldn't parse the specified URI.", Kind.INVALID_ARGUMENT),
    "KeyTooLongError": (400, "Your key is too long.", Kind.INVALID_ARGUMENT),
    "MalformedPOSTRequest": (
        400,
        "The body of your POST request is not well-formed multipart/form-data.",
        Kind.INVALID_ARGUMENT,
    ),
    "MalformedPolicy": (
        400,
        "Policies must be valid JSON and the first byte must be '{'",
        Kind.INVALID_ARGUMENT,
    ),
    "MalformedXML": (
        400,
        "The XML you provided was not well-formed or did not validate against our published schema.",
        Kind.INVALID_ARGUMENT,
    ),
    "MaxMessageLengthExceeded": (400, "Your request was too big.", Kind.INVALID_ARGUMENT),
    "MetadataTooLarge": (
        400,
        "Your metadata headers exceed the maximum allowed metadata size.",
        Kind.INVALID_ARGUMENT,
    ),
    "MethodNotAllowed": (
        405,
        "The specified method is not allowed against this resource.",
        Kind.INVALID_ARGUMENT,
    ),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header.", Kind.INVALID_ARGUMENT),
    "MissingRequestBodyError": (400, "Request Body is empty", Kind.INVALID_ARGUMENT),
    "MissingSecurityHeader": (400, "Your request is missing a required header.", Kind.INVALID_ARGUMENT),
    "NoSuchBucket": (404, "The specified bucket does not exist", Kind.NOT_FOUND),
    "NoSuchBucketPolicy": (404, "The bucket policy does not exist", Kind.NOT_FOUND),
    "NoSuchCORSConfiguration": (404, "The CORS configuration does not exist", Kind.NOT_FOUND),
    "NoSuchKey": (404, "The specified key does not exist.", Kind.NOT_FOUND),
    "NoSuchLifecycleConfiguration": (404, "The lifecycle configuration does not exist.", Kind.NOT_FOUND),
    "NoSuchTagSet": (404, "The TagSet does not exist", Kind.NOT_FOUND),
    "NoSuchUpload": (
        404,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been "
        "aborted or completed.",
        Kind.NOT_FOUND,
    ),
    "NoSuchVersion": (404, "The specified version does not exist.", Kind.NOT_FOUND),
    "NotImplemented": (
        501,
        "A header you provided implies functionality that is not implemented.",
        Kind.UNIMPLEMENTED,
    ),
    "ObjectLockConfigurationNotFoundError": (
        404,
        "Object Lock configuration does not exist for this bucket",
        Kind.NOT_FOUND,
    ),
    "OwnershipControlsNotFoundError": (404, "The bucket ownership controls were not found", Kind.NOT_FOUND),
    "PreconditionFailed": (
        412,
        "At least one of the pre-conditions you specified did not hold",
        Kind.FAILED_PRECONDITION,
    ),
    "QuotaExceeded": (403, "The bucket's capacity cap would be exceeded.", Kind.RESOURCE_EXHAUSTED),
    "RequestTimeTooSkewed": (
        403,
        "The difference between the request time and the current time is too large.",
        Kind.PERMISSION_DENIED,
    ),
    "ServiceUnavailable": (503, "Please reduce your request rate.", Kind.UNAVAILABLE),
    "SignatureDoesNotMatch": (
        403,
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
        Kind.UNAUTHENTICATED,
    ),
    "SlowDown": (503, "Please reduce your request rate.", Kind.UNAVAILABLE),
    "RequestHeaderSectionTooLarge": (
        400,
        "Your request header section exceeds the maximum allowed size.",
        Kind.INVALID_ARGUMENT,
    ),
    "RequestTimeout": (
        400,
        "Your socket connection to the server was not read from or written to within the timeout period.",
        Kind.INVALID_ARGUMENT,
    ),
    "TooManyBuckets": (
        400,
        "You have attempted to create more buckets than allowed.",
        Kind.RESOURCE_EXHAUSTED,
    ),
    "XAmzContentSHA256Mismatch": (
        400,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
        Kind.INVALID_ARGUMENT,
    ),
    "AccessControlListNotSupported": (400, "The bucket does not allow ACLs", Kind.INVALID_ARGUMENT),
    "InsufficientStorage": (
        507,
        "There is not enough space left to store the object.",
        Kind.RESOURCE_EXHAUSTED,
    ),
    "NotModified": (304, "Not Modified", Kind.FAILED_PRECONDITION),
    "BadRequest": (400, "Bad Request", Kind.INVALID_ARGUMENT),
    "AccessForbidden": (
        403,
        "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, "
        "request method / Access-Control-Request-Method or Access-Control-Request-Headers are not "
        "whitelisted by the resource's CORS spec.",
        Kind.PERMISSION_DENIED,
    ),
    "InvalidBucketAclWithObjectOwnership": (
        400,
        "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
        Kind.INVALID_ARGUMENT,
    ),
    "MalformedACLError": (
        400,
        "The XML you provided was not well-formed or did not validate against our published schema",
        Kind.INVALID_ARGUMENT,
    ),
    "MaxPostPreDataLengthExceeded": (
        400,
        "Your POST request fields preceeding the upload file was too large.",
        Kind.INVALID_ARGUMENT,
    ),
}


class S3Error(CofferError):
    """An S3 error by code; its HTTP status and gRPC kind come from S3_ERRORS.

    `fields` become extra child elements of the XML <Error> (BucketName, Key, ...).
    `headers` are added to the error response.
    """

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        status, default, kind = S3_ERRORS[code]
        super().__init__(message or default)
        self.code = code
        self.status = status
        self.kind = kind
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})
