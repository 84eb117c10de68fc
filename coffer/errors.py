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
    """An expected failure with a kind, a message safe to show the caller, and optional details.

    A subclass names its kind as a class keyword: `class NotFound(CofferError, kind=Kind.NOT_FOUND)`."""

    kind: Kind = Kind.INTERNAL

    def __init_subclass__(cls, *, kind: Kind | None = None, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if kind is not None:
            cls.kind = kind

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


def _rpc_detail(type_name: str, **fields: Any) -> dict[str, Any]:
    """A google.rpc error detail of type `type_name` (BadRequest, ResourceInfo, ...)."""
    return {"@type": f"type.googleapis.com/google.rpc.{type_name}", **fields}


class InvalidArgument(CofferError, kind=Kind.INVALID_ARGUMENT):
    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        """A BadRequest naming the offending field, as google.rpc.BadRequest does."""
        violation = {"field": field, "description": description}
        return cls(
            f"invalid {field}: {description}",
            details=[_rpc_detail("BadRequest", fieldViolations=[violation])],
        )


class Unauthenticated(CofferError, kind=Kind.UNAUTHENTICATED): ...


class PermissionDenied(CofferError, kind=Kind.PERMISSION_DENIED): ...


class NotFound(CofferError, kind=Kind.NOT_FOUND):
    @classmethod
    def resource(cls, resource_type: str, name: str) -> NotFound:
        info = _rpc_detail(
            "ResourceInfo", resourceType=resource_type, resourceName=name, description="not found"
        )
        return cls(f"{resource_type} {name!r} not found", details=[info])


class AlreadyExists(CofferError, kind=Kind.ALREADY_EXISTS): ...


class ResourceExhausted(CofferError, kind=Kind.RESOURCE_EXHAUSTED): ...


class Unavailable(CofferError, kind=Kind.UNAVAILABLE): ...


class FailedPrecondition(CofferError, kind=Kind.FAILED_PRECONDITION):
    """The request is well formed but the resource's state refuses it (a key already rotated)."""


# --- S3 --------------------------------------------------------------------------------
# (HTTP status, gRPC kind used when the control plane reports it) -> {code: default message}.
_S3_ERROR_GROUPS: dict[tuple[int, Kind], dict[str, str]] = {
    (304, Kind.FAILED_PRECONDITION): dict(NotModified="Not Modified"),
    (400, Kind.INVALID_ARGUMENT): dict(
        AccessControlListNotSupported="The bucket does not allow ACLs",
        AuthorizationHeaderMalformed="The authorization header you provided is invalid.",
        AuthorizationQueryParametersError="Error parsing the X-Amz-Credential parameter.",
        BadDigest="The Content-MD5 you specified did not match what was received.",
        BadRequest="Bad Request",
        EntityTooLarge="Your proposed upload exceeds the maximum allowed size.",
        EntityTooSmall="Your proposed upload is smaller than the minimum allowed object size.",
        IllegalLocationConstraintException="The specified location-constraint is not valid.",
        IncompleteBody="You did not provide the number of bytes specified by the Content-Length HTTP header.",
        InvalidArgument="Invalid Argument",
        InvalidBucketAclWithObjectOwnership=(
            "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
        ),
        InvalidBucketName="The specified bucket is not valid.",
        InvalidDigest="The Content-MD5 you specified is not valid.",
        InvalidEncryptionAlgorithmError="The encryption request you specified is not valid.",
        InvalidLocationConstraint="The specified location constraint is not valid.",
        InvalidPart=(
            "One or more of the specified parts could not be found. The part might not have been uploaded, "
            "or the specified entity tag might not have matched the part's entity tag."
        ),
        InvalidPartOrder=(
            "The list of parts was not in ascending order. The parts list must be specified in order by "
            "part number."
        ),
        InvalidPolicyDocument=(
            "The content of the form does not meet the conditions specified in the policy document."
        ),
        InvalidRequest="Invalid Request",
        InvalidStorageClass="The storage class you specified is not valid.",
        InvalidTag="The tag provided was not a valid tag.",
        InvalidURI="Couldn't parse the specified URI.",
        KeyTooLongError="Your key is too long.",
        MalformedACLError=(
            "The XML you provided was not well-formed or did not validate against our published schema"
        ),
        MalformedPOSTRequest="The body of your POST request is not well-formed multipart/form-data.",
        MalformedPolicy="Policies must be valid JSON and the first byte must be '{'",
        MalformedXML=(
            "The XML you provided was not well-formed or did not validate against our published schema."
        ),
        MaxMessageLengthExceeded="Your request was too big.",
        MaxPostPreDataLengthExceeded="Your POST request fields preceeding the upload file was too large.",
        MetadataTooLarge="Your metadata headers exceed the maximum allowed metadata size.",
        MissingRequestBodyError="Request Body is empty",
        MissingSecurityHeader="Your request is missing a required header.",
        RequestHeaderSectionTooLarge="Your request header section exceeds the maximum allowed size.",
        RequestTimeout=(
            "Your socket connection to the server was not read from or written to within the timeout period."
        ),
        XAmzContentSHA256Mismatch=(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        ),
        UnresolvableGrantByEmailAddress=(
            "The email address you provided does not match any account on record."
        ),
    ),
    (400, Kind.RESOURCE_EXHAUSTED): dict(
        TooManyBuckets="You have attempted to create more buckets than allowed.",
        TooManyConfigurations=(
            "You are attempting to create a new configuration but have already reached the "
            "1,000-configuration limit."
        ),
    ),
    (400, Kind.UNAUTHENTICATED): dict(
        ExpiredToken="The provided token has expired.",
        InvalidToken="The provided token is malformed or otherwise invalid.",
    ),
    (403, Kind.FAILED_PRECONDITION): dict(
        InvalidObjectState="The operation is not valid for the current state of the object."
    ),
    (403, Kind.PERMISSION_DENIED): dict(
        AccessDenied="Access Denied",
        AccessForbidden=(
            "CORSResponse: This CORS request is not allowed. This is usually because the evalution of "
            "Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are "
            "not whitelisted by the resource's CORS spec."
        ),
        AccountProblem="There is a problem with your account.",
        RequestTimeTooSkewed="The difference between the request time and the current time is too large.",
    ),
    (403, Kind.RESOURCE_EXHAUSTED): dict(QuotaExceeded="The bucket's capacity cap would be exceeded."),
    (403, Kind.UNAUTHENTICATED): dict(
        InvalidAccessKeyId="The AWS access key Id you provided does not exist in our records.",
        SignatureDoesNotMatch=(
            "The request signature we calculated does not match the signature you provided. Check your key "
            "and signing method."
        ),
    ),
    (404, Kind.NOT_FOUND): dict(
        NoSuchBucket="The specified bucket does not exist",
        NoSuchBucketPolicy="The bucket policy does not exist",
        NoSuchConfiguration="The specified configuration does not exist.",
        NoSuchCORSConfiguration="The CORS configuration does not exist",
        NoSuchKey="The specified key does not exist.",
        NoSuchLifecycleConfiguration="The lifecycle configuration does not exist.",
        NoSuchTagSet="The TagSet does not exist",
        NoSuchUpload=(
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been "
            "aborted or completed."
        ),
        NoSuchVersion="The specified version does not exist.",
        ObjectLockConfigurationNotFoundError="Object Lock configuration does not exist for this bucket",
        OwnershipControlsNotFoundError="The bucket ownership controls were not found",
        NoSuchPublicAccessBlockConfiguration="The public access block configuration was not found",
    ),
    (405, Kind.INVALID_ARGUMENT): dict(
        MethodNotAllowed="The specified method is not allowed against this resource."
    ),
    (409, Kind.ALREADY_EXISTS): dict(
        BucketAlreadyExists="The requested bucket name is not available.",
        BucketAlreadyOwnedByYou="The bucket you tried to create already exists, and you own it.",
    ),
    (409, Kind.FAILED_PRECONDITION): dict(
        BucketNotEmpty="The bucket you tried to delete is not empty.",
        InvalidBucketState="The request is not valid with the current state of the bucket.",
        ConditionalRequestConflict=(
            "A conflicting operation occurred. If using PutObject you can retry the request. If using "
            "multipart upload you should initiate another CreateMultipartUpload request and re-upload each "
            "part."
        ),
    ),
    (411, Kind.INVALID_ARGUMENT): dict(
        MissingContentLength="You must provide the Content-Length HTTP header."
    ),
    (412, Kind.FAILED_PRECONDITION): dict(
        PreconditionFailed="At least one of the pre-conditions you specified did not hold"
    ),
    (416, Kind.OUT_OF_RANGE): dict(
        InvalidPartNumber="The requested partnumber is not satisfiable",
        InvalidRange="The requested range is not satisfiable",
    ),
    (500, Kind.INTERNAL): dict(InternalError="We encountered an internal error. Please try again."),
    (501, Kind.UNIMPLEMENTED): dict(
        NotImplemented="A header you provided implies functionality that is not implemented."
    ),
    (503, Kind.UNAVAILABLE): dict(
        ServiceUnavailable="Please reduce your request rate.",
        SlowDown="Please reduce your request rate.",
    ),
    (507, Kind.RESOURCE_EXHAUSTED): dict(
        InsufficientStorage="There is not enough space left to store the object."
    ),
}

# code -> (HTTP status, default message, gRPC kind).
S3_ERRORS: dict[str, tuple[int, str, Kind]] = {
    code: (status, message, kind)
    for (status, kind), messages in _S3_ERROR_GROUPS.items()
    for code, message in messages.items()
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
