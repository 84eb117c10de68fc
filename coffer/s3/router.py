"""The named-operation router: one request becomes one `Operation` value.

As in Garage's router, the method, whether the request names a key, the sub-resource
query parameter and a few headers (x-amz-copy-source) pick exactly one S3 operation,
and every S3 operation AWS documents has a name here, with its IAM action. Authorization
then looks at the `Operation` alone; handlers never re-derive what the request is.
Operations Coffer does not implement yet still resolve, so they answer NotImplemented
(501) after authentication instead of being mistaken for a neighbour (a `?tagging` PUT
must never be taken for PutObject).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from coffer.errors import S3Error


@dataclass(frozen=True)
class OpSpec:
    action: str  # the IAM action policies name; "" when none applies (CORS preflight)
    implemented: bool = False
    version_action: str = ""  # the action when a versionId is given (s3:GetObjectVersion)
    reason: str = ""  # why an unimplemented operation answers NotImplemented, when it never will


def _spec(action: str, implemented: bool = False, version_action: str = "", reason: str = "") -> OpSpec:
    return OpSpec(action, implemented, version_action, reason)


OBJECT_LOCK = "Object Lock is not supported by Coffer: objects cannot be locked, retained or held."


# Every S3 API operation (AWS API reference, plus PostObject and the CORS preflight).
OPERATIONS: dict[str, OpSpec] = {
    # service
    "ListBuckets": _spec("s3:ListAllMyBuckets", True),
    "ListDirectoryBuckets": _spec("s3express:ListAllMyDirectoryBuckets"),
    "CreateSession": _spec("s3express:CreateSession"),
    "WriteGetObjectResponse": _spec("s3-object-lambda:WriteGetObjectResponse"),
    "PreflightRequest": _spec("", True),
    # buckets
    "CreateBucket": _spec("s3:CreateBucket", True),
    "HeadBucket": _spec("s3:ListBucket", True),
    "DeleteBucket": _spec("s3:DeleteBucket", True),
    "GetBucketLocation": _spec("s3:GetBucketLocation", True),
    "GetBucketPolicy": _spec("s3:GetBucketPolicy", True),
    "PutBucketPolicy": _spec("s3:PutBucketPolicy", True),
    "DeleteBucketPolicy": _spec("s3:DeleteBucketPolicy", True),
    "GetBucketPolicyStatus": _spec("s3:GetBucketPolicyStatus", True),
    "ListObjects": _spec("s3:ListBucket", True),
    "ListObjectsV2": _spec("s3:ListBucket", True),
    "ListObjectVersions": _spec("s3:ListBucketVersions", True),
    "ListMultipartUploads": _spec("s3:ListBucketMultipartUploads", True),
    "DeleteObjects": _spec("s3:DeleteObject", True),
    "PostObject": _spec("s3:PutObject", True),
    "GetBucketVersioning": _spec("s3:GetBucketVersioning", True),
    "PutBucketVersioning": _spec("s3:PutBucketVersioning", True),
    "GetBucketLifecycle": _spec("s3:GetLifecycleConfiguration"),
    "GetBucketLifecycleConfiguration": _spec("s3:GetLifecycleConfiguration", True),
    "PutBucketLifecycle": _spec("s3:PutLifecycleConfiguration"),
    "PutBucketLifecycleConfiguration": _spec("s3:PutLifecycleConfiguration", True),
    "DeleteBucketLifecycle": _spec("s3:PutLifecycleConfiguration", True),
    "GetBucketTagging": _spec("s3:GetBucketTagging", True),
    "PutBucketTagging": _spec("s3:PutBucketTagging", True),
    "DeleteBucketTagging": _spec("s3:PutBucketTagging", True),
    "GetBucketCors": _spec("s3:GetBucketCORS", True),
    "PutBucketCors": _spec("s3:PutBucketCORS", True),
    "DeleteBucketCors": _spec("s3:PutBucketCORS", True),
    "GetBucketAcl": _spec("s3:GetBucketAcl", True),
    "PutBucketAcl": _spec("s3:PutBucketAcl", True),
    "GetBucketEncryption": _spec("s3:GetEncryptionConfiguration"),
    "PutBucketEncryption": _spec("s3:PutEncryptionConfiguration"),
    "DeleteBucketEncryption": _spec("s3:PutEncryptionConfiguration"),
    "GetBucketWebsite": _spec("s3:GetBucketWebsite"),
    "PutBucketWebsite": _spec("s3:PutBucketWebsite"),
    "DeleteBucketWebsite": _spec("s3:DeleteBucketWebsite"),
    "GetBucketLogging": _spec("s3:GetBucketLogging"),
    "PutBucketLogging": _spec("s3:PutBucketLogging"),
    "GetBucketNotification": _spec("s3:GetBucketNotification"),
    "GetBucketNotificationConfiguration": _spec("s3:GetBucketNotification"),
    "PutBucketNotification": _spec("s3:PutBucketNotification"),
    "PutBucketNotificationConfiguration": _spec("s3:PutBucketNotification"),
    "GetBucketReplication": _spec("s3:GetReplicationConfiguration"),
    "PutBucketReplication": _spec("s3:PutReplicationConfiguration"),
    "DeleteBucketReplication": _spec("s3:PutReplicationConfiguration"),
    "GetBucketRequestPayment": _spec("s3:GetBucketRequestPayment"),
    "PutBucketRequestPayment": _spec("s3:PutBucketRequestPayment"),
    "GetBucketAccelerateConfiguration": _spec("s3:GetAccelerateConfiguration"),
    "PutBucketAccelerateConfiguration": _spec("s3:PutAccelerateConfiguration"),
    "GetBucketAnalyticsConfiguration": _spec("s3:GetAnalyticsConfiguration"),
    "PutBucketAnalyticsConfiguration": _spec("s3:PutAnalyticsConfiguration"),
    "DeleteBucketAnalyticsConfiguration": _spec("s3:PutAnalyticsConfiguration"),
    "ListBucketAnalyticsConfigurations": _spec("s3:GetAnalyticsConfiguration"),
    "GetBucketInventoryConfiguration": _spec("s3:GetInventoryConfiguration", True),
    "PutBucketInventoryConfiguration": _spec("s3:PutInventoryConfiguration", True),
    "DeleteBucketInventoryConfiguration": _spec("s3:PutInventoryConfiguration", True),
    "ListBucketInventoryConfigurations": _spec("s3:GetInventoryConfiguration", True),
    "GetBucketMetricsConfiguration": _spec("s3:GetMetricsConfiguration"),
    "PutBucketMetricsConfiguration": _spec("s3:PutMetricsConfiguration"),
    "DeleteBucketMetricsConfiguration": _spec("s3:PutMetricsConfiguration"),
    "ListBucketMetricsConfigurations": _spec("s3:GetMetricsConfiguration"),
    "GetBucketIntelligentTieringConfiguration": _spec("s3:GetIntelligentTieringConfiguration"),
    "PutBucketIntelligentTieringConfiguration": _spec("s3:PutIntelligentTieringConfiguration"),
    "DeleteBucketIntelligentTieringConfiguration": _spec("s3:PutIntelligentTieringConfiguration"),
    "ListBucketIntelligentTieringConfigurations": _spec("s3:GetIntelligentTieringConfiguration"),
    "GetBucketOwnershipControls": _spec("s3:GetBucketOwnershipControls", True),
    "PutBucketOwnershipControls": _spec("s3:PutBucketOwnershipControls", True),
    "DeleteBucketOwnershipControls": _spec("s3:PutBucketOwnershipControls", True),
    "GetPublicAccessBlock": _spec("s3:GetBucketPublicAccessBlock", True),
    "PutPublicAccessBlock": _spec("s3:PutBucketPublicAccessBlock", True),
    "DeletePublicAccessBlock": _spec("s3:PutBucketPublicAccessBlock", True),
    "GetObjectLockConfiguration": _spec("s3:GetBucketObjectLockConfiguration", reason=OBJECT_LOCK),
    "PutObjectLockConfiguration": _spec("s3:PutBucketObjectLockConfiguration", reason=OBJECT_LOCK),
    "GetBucketMetadataTableConfiguration": _spec("s3:GetBucketMetadataTableConfiguration"),
    "CreateBucketMetadataTableConfiguration": _spec("s3:CreateBucketMetadataTableConfiguration"),
    "DeleteBucketMetadataTableConfiguration": _spec("s3:DeleteBucketMetadataTableConfiguration"),
    "GetBucketMetadataConfiguration": _spec("s3:GetBucketMetadataTableConfiguration"),
    "CreateBucketMetadataConfiguration": _spec("s3:CreateBucketMetadataTableConfiguration"),
    "DeleteBucketMetadataConfiguration": _spec("s3:DeleteBucketMetadataTableConfiguration"),
    "UpdateBucketMetadataInventoryTableConfiguration": _spec(
        "s3:UpdateBucketMetadataInventoryTableConfiguration"
    ),
    "UpdateBucketMetadataJournalTableConfiguration": _spec(
        "s3:UpdateBucketMetadataJournalTableConfiguration"
    ),
    "GetBucketAbac": _spec("s3:GetBucketAbac"),
    "PutBucketAbac": _spec("s3:PutBucketAbac"),
    # objects
    "GetObject": _spec("s3:GetObject", True, "s3:GetObjectVersion"),
    "HeadObject": _spec("s3:GetObject", True, "s3:GetObjectVersion"),
    "PutObject": _spec("s3:PutObject", True),
    "CopyObject": _spec("s3:PutObject", True),
    "DeleteObject": _spec("s3:DeleteObject", True, "s3:DeleteObjectVersion"),
    "RenameObject": _spec("s3:RenameObject"),
    "GetObjectAttributes": _spec("s3:GetObjectAttributes", True, "s3:GetObjectVersionAttributes"),
    "GetObjectAcl": _spec("s3:GetObjectAcl", True, "s3:GetObjectVersionAcl"),
    "PutObjectAcl": _spec("s3:PutObjectAcl", True, "s3:PutObjectVersionAcl"),
    "GetObjectTagging": _spec("s3:GetObjectTagging", True, "s3:GetObjectVersionTagging"),
    "PutObjectTagging": _spec("s3:PutObjectTagging", True, "s3:PutObjectVersionTagging"),
    "DeleteObjectTagging": _spec("s3:DeleteObjectTagging", True, "s3:DeleteObjectVersionTagging"),
    "GetObjectLegalHold": _spec("s3:GetObjectLegalHold", reason=OBJECT_LOCK),
    "PutObjectLegalHold": _spec("s3:PutObjectLegalHold", reason=OBJECT_LOCK),
    "GetObjectRetention": _spec("s3:GetObjectRetention", reason=OBJECT_LOCK),
    "PutObjectRetention": _spec("s3:PutObjectRetention", reason=OBJECT_LOCK),
    "GetObjectTorrent": _spec("s3:GetObjectTorrent"),
    "RestoreObject": _spec("s3:RestoreObject"),
    "SelectObjectContent": _spec("s3:GetObject"),
    # multipart
    "CreateMultipartUpload": _spec("s3:PutObject", True),
    "UploadPart": _spec("s3:PutObject", True),
    "UploadPartCopy": _spec("s3:PutObject", True),
    "CompleteMultipartUpload": _spec("s3:PutObject", True),
    "AbortMultipartUpload": _spec("s3:AbortMultipartUpload", True),
    "ListParts": _spec("s3:ListMultipartUploadParts", True),
}

# A route: (sub-resource, required query parameter or "", requires x-amz-copy-source, operation).
# The first matching route wins, so the more specific forms come first.
Route = tuple[str, str, bool, str]


def _routes(*specs: str) -> list[Route]:
    """Routes written "[sub-resource][?parameter][+copy] Operation": "acl GetObjectAcl",
    "?uploadId ListParts" (no sub-resource, the parameter required), "?partNumber+copy
    UploadPartCopy" (with x-amz-copy-source), "GetObject" (none of them)."""
    routes = []
    for spec in specs:
        head, _, name = spec.rpartition(" ")
        head, copy = head.removesuffix("+copy"), head.endswith("+copy")
        sub, _, needs = head.partition("?")
        routes.append((sub, needs, copy, name))
    return routes


_OBJECT_ROUTES: dict[str, list[Route]] = {
    "GET": _routes(
        "?uploadId ListParts",
        "GetObject",
        "acl GetObjectAcl",
        "attributes GetObjectAttributes",
        "legal-hold GetObjectLegalHold",
        "retention GetObjectRetention",
        "tagging GetObjectTagging",
        "torrent GetObjectTorrent",
    ),
    "HEAD": _routes("HeadObject"),
    "PUT": _routes(
        "?partNumber+copy UploadPartCopy",
        "+copy CopyObject",
        "?partNumber UploadPart",
        "PutObject",
        "acl PutObjectAcl",
        "legal-hold PutObjectLegalHold",
        "retention PutObjectRetention",
        "tagging PutObjectTagging",
        "renameObject RenameObject",
    ),
    "POST": _routes(
        "?uploadId CompleteMultipartUpload",
        "uploads CreateMultipartUpload",
        "restore RestoreObject",
        "select SelectObjectContent",
    ),
    "DELETE": _routes(
        "?uploadId AbortMultipartUpload",
        "DeleteObject",
        "tagging DeleteObjectTagging",
    ),
    "OPTIONS": _routes("PreflightRequest"),
}

_BUCKET_ROUTES: dict[str, list[Route]] = {
    "GET": _routes(
        "?list-type ListObjectsV2",
        "ListObjects",
        "accelerate GetBucketAccelerateConfiguration",
        "acl GetBucketAcl",
        "abac GetBucketAbac",
        "analytics?id GetBucketAnalyticsConfiguration",
        "analytics ListBucketAnalyticsConfigurations",
        "cors GetBucketCors",
        "encryption GetBucketEncryption",
        "intelligent-tiering?id GetBucketIntelligentTieringConfiguration",
        "intelligent-tiering ListBucketIntelligentTieringConfigurations",
        "inventory?id GetBucketInventoryConfiguration",
        "inventory ListBucketInventoryConfigurations",
        "lifecycle GetBucketLifecycleConfiguration",
        "location GetBucketLocation",
        "logging GetBucketLogging",
        "metadataConfiguration GetBucketMetadataConfiguration",
        "metadataTable GetBucketMetadataTableConfiguration",
        "metrics?id GetBucketMetricsConfiguration",
        "metrics ListBucketMetricsConfigurations",
        "notification GetBucketNotificationConfiguration",
        "object-lock GetObjectLockConfiguration",
        "ownershipControls GetBucketOwnershipControls",
        "policy GetBucketPolicy",
        "policyStatus GetBucketPolicyStatus",
        "publicAccessBlock GetPublicAccessBlock",
        "replication GetBucketReplication",
        "requestPayment GetBucketRequestPayment",
        "session CreateSession",
        "tagging GetBucketTagging",
        "uploads ListMultipartUploads",
        "versioning GetBucketVersioning",
        "versions ListObjectVersions",
        "website GetBucketWebsite",
    ),
    "HEAD": _routes("HeadBucket"),
    "PUT": _routes(
        "CreateBucket",
        "accelerate PutBucketAccelerateConfiguration",
        "acl PutBucketAcl",
        "abac PutBucketAbac",
        "analytics PutBucketAnalyticsConfiguration",
        "cors PutBucketCors",
        "encryption PutBucketEncryption",
        "intelligent-tiering PutBucketIntelligentTieringConfiguration",
        "inventory PutBucketInventoryConfiguration",
        "lifecycle PutBucketLifecycleConfiguration",
        "logging PutBucketLogging",
        "metadataInventoryTable UpdateBucketMetadataInventoryTableConfiguration",
        "metadataJournalTable UpdateBucketMetadataJournalTableConfiguration",
        "metrics PutBucketMetricsConfiguration",
        "notification PutBucketNotificationConfiguration",
        "object-lock PutObjectLockConfiguration",
        "ownershipControls PutBucketOwnershipControls",
        "policy PutBucketPolicy",
        "publicAccessBlock PutPublicAccessBlock",
        "replication PutBucketReplication",
        "requestPayment PutBucketRequestPayment",
        "tagging PutBucketTagging",
        "versioning PutBucketVersioning",
        "website PutBucketWebsite",
    ),
    "POST": _routes(
        "PostObject",
        "delete DeleteObjects",
        "metadataConfiguration CreateBucketMetadataConfiguration",
        "metadataTable CreateBucketMetadataTableConfiguration",
    ),
    "DELETE": _routes(
        "DeleteBucket",
        "analytics DeleteBucketAnalyticsConfiguration",
        "cors DeleteBucketCors",
        "encryption DeleteBucketEncryption",
        "intelligent-tiering DeleteBucketIntelligentTieringConfiguration",
        "inventory DeleteBucketInventoryConfiguration",
        "lifecycle DeleteBucketLifecycle",
        "metadataConfiguration DeleteBucketMetadataConfiguration",
        "metadataTable DeleteBucketMetadataTableConfiguration",
        "metrics DeleteBucketMetricsConfiguration",
        "ownershipControls DeleteBucketOwnershipControls",
        "policy DeleteBucketPolicy",
        "publicAccessBlock DeletePublicAccessBlock",
        "replication DeleteBucketReplication",
        "tagging DeleteBucketTagging",
        "website DeleteBucketWebsite",
    ),
    "OPTIONS": _routes("PreflightRequest"),
}

_SERVICE_ROUTES: dict[str, str] = {"GET": "ListBuckets", "OPTIONS": "PreflightRequest"}

# Every sub-resource any route names; at most one of them selects the route.
SUBRESOURCES: frozenset[str] = frozenset(
    sub
    for table in (_OBJECT_ROUTES, _BUCKET_ROUTES)
    for routes in table.values()
    for sub, *_ in routes
    if sub
)

# Query parameters that carry arguments rather than naming a sub-resource.
ARGUMENTS: frozenset[str] = frozenset(
    {
        "uploadId", "partNumber", "versionId", "list-type", "continuation-token", "delimiter",
        "encoding-type", "fetch-owner", "max-keys", "prefix", "start-after", "marker", "key-marker",
        "upload-id-marker", "version-id-marker", "max-uploads", "max-parts", "part-number-marker",
        "id", "response-content-type", "response-content-language", "response-expires",
        "response-cache-control", "response-content-disposition", "response-content-encoding",
        "max-buckets", "bucket-region", "x-id", "select-type", "mfa",
    }
)  # fmt: skip
KNOWN_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class ObjectRef:
    """A (bucket, key, version) another object is read from: CopyObject's source."""

    bucket: str
    key: str
    version_id: str | None = None


@dataclass(frozen=True)
class Operation:
    """What a request asks for, fully named: the only input authorization needs."""

    name: str
    bucket: str | None = None
    key: str | None = None
    version_id: str | None = None
    source: ObjectRef | None = None  # CopyObject / UploadPartCopy
    query: Mapping[str, str] = field(default_factory=dict)

    @property
    def spec(self) -> OpSpec:
        return OPERATIONS[self.name]

    @property
    def action(self) -> str:
        spec = OPERATIONS[self.name]
        if self.version_id is not None and spec.version_action:
            return spec.version_action
        return spec.action

    @property
    def implemented(self) -> bool:
        return OPERATIONS[self.name].implemented

    @property
    def resource(self) -> str:
        """The policy resource: "bucket", "bucket/key", or "*" for service operations."""
        if self.bucket is None:
            return "*"
        if self.key is None:
            return self.bucket
        return f"{self.bucket}/{self.key}"

    def derive(self, name: str, *, bucket: str | None, key: str | None, version_id: str | None) -> Operation:
        """A related operation authorized on its own (a copy's source read, a multi-delete's key)."""
        return Operation(name=name, bucket=bucket, key=key, version_id=version_id)


def _subresource(query: Mapping[str, str], flags: frozenset[str]) -> str:
    """The sub-resource the query names; unknown flag-style parameters are refused."""
    found = ""
    for name in query:
        if name in SUBRESOURCES:
            if not found:
                found = name
        elif name in flags and name not in ARGUMENTS and not name.lower().startswith("x-amz-"):
            raise S3Error(
                "NotImplemented",
                f"The sub-resource '{name}' is not supported.",
                fields={"Subresource": name},
            )
    return found


def route(
    method: str,
    bucket: str | None,
    key: str | None,
    query: Mapping[str, str],
    *,
    flags: frozenset[str] = frozenset(),
    copy_source: ObjectRef | None = None,
    has_copy_source: bool = False,
) -> Operation:
    """Resolve one request. `flags` are query parameters given without '=' (?acl);
    `has_copy_source` is whether x-amz-copy-source is present."""
    if method not in KNOWN_METHODS:
        raise S3Error(
            "MethodNotAllowed", fields={"Method": method, "ResourceType": "OBJECT" if key else "BUCKET"}
        )
    if bucket is None:
        name = _SERVICE_ROUTES.get(method)
        if name is None:
            raise S3Error("MethodNotAllowed", fields={"Method": method, "ResourceType": "SERVICE"})
        return Operation(name=name, query=query)
    sub = _subresource(query, flags)
    table = _OBJECT_ROUTES if key else _BUCKET_ROUTES
    for route_sub, needs, copy, name in table.get(method, ()):
        if route_sub != sub:
            continue
        if needs and needs not in query:
            continue
        if copy and not has_copy_source:
            continue
        version = query.get("versionId")
        return Operation(
            name=name,
            bucket=bucket,
            key=key or None,
            version_id=version if version is not None else None,
            source=copy_source if copy else None,
            query=query,
        )
    raise S3Error(
        "MethodNotAllowed",
        fields={"Method": method, "ResourceType": "OBJECT" if key else "BUCKET"},
    )
