"""S3 operation handlers, one module per group; `HANDLERS` maps operation names to them.

A handler turns a routed, authenticated, authorized request into a call on the core and
the core's answer into an `S3Response`. It never checks permissions itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from coffer.s3.context import Context
from coffer.s3.handlers import (
    acl,
    attributes,
    bucket,
    copy,
    cors,
    delete,
    inventory,
    lifecycle,
    listing,
    multipart,
    objects,
    post,
    service,
    tagging,
    versions,
)
from coffer.s3.responses import S3Response

Handler = Callable[[Context], Awaitable[S3Response]]

HANDLERS: dict[str, Handler] = {
    "ListBuckets": service.list_buckets,
    "CreateBucket": bucket.create_bucket,
    "HeadBucket": bucket.head_bucket,
    "DeleteBucket": bucket.delete_bucket,
    "GetBucketLocation": bucket.get_bucket_location,
    "GetBucketPolicy": bucket.get_bucket_policy,
    "PutBucketPolicy": bucket.put_bucket_policy,
    "DeleteBucketPolicy": bucket.delete_bucket_policy,
    "GetBucketVersioning": bucket.get_bucket_versioning,
    "PutBucketVersioning": bucket.put_bucket_versioning,
    "PutObject": objects.put_object,
    "GetObject": objects.get_object,
    "HeadObject": objects.head_object,
    "DeleteObject": objects.delete_object,
    "CopyObject": copy.copy_object,
    "UploadPartCopy": copy.upload_part_copy,
    "DeleteObjects": delete.delete_objects,
    "ListObjects": listing.list_objects,
    "ListObjectsV2": listing.list_objects_v2,
    "CreateMultipartUpload": multipart.create_upload,
    "UploadPart": multipart.upload_part,
    "CompleteMultipartUpload": multipart.complete_upload,
    "AbortMultipartUpload": multipart.abort_upload,
    "ListParts": multipart.list_parts,
    "ListMultipartUploads": multipart.list_uploads,
    "ListObjectVersions": versions.list_object_versions,
    "GetObjectTagging": tagging.get_object_tagging,
    "PutObjectTagging": tagging.put_object_tagging,
    "DeleteObjectTagging": tagging.delete_object_tagging,
    "GetBucketTagging": tagging.get_bucket_tagging,
    "PutBucketTagging": tagging.put_bucket_tagging,
    "DeleteBucketTagging": tagging.delete_bucket_tagging,
    "GetObjectAttributes": attributes.get_object_attributes,
    "GetBucketCors": cors.get_bucket_cors,
    "PutBucketCors": cors.put_bucket_cors,
    "DeleteBucketCors": cors.delete_bucket_cors,
    "PreflightRequest": cors.preflight_handler,
    "PostObject": post.post_object,
    "GetBucketAcl": acl.get_bucket_acl,
    "PutBucketAcl": acl.put_bucket_acl,
    "GetObjectAcl": acl.get_object_acl,
    "PutObjectAcl": acl.put_object_acl,
    "GetBucketOwnershipControls": acl.get_bucket_ownership_controls,
    "PutBucketOwnershipControls": acl.put_bucket_ownership_controls,
    "DeleteBucketOwnershipControls": acl.delete_bucket_ownership_controls,
    "GetPublicAccessBlock": acl.get_public_access_block,
    "PutPublicAccessBlock": acl.put_public_access_block,
    "DeletePublicAccessBlock": acl.delete_public_access_block,
    "GetBucketPolicyStatus": acl.get_bucket_policy_status,
    "PutBucketLifecycleConfiguration": lifecycle.put_bucket_lifecycle,
    "GetBucketLifecycleConfiguration": lifecycle.get_bucket_lifecycle,
    "DeleteBucketLifecycle": lifecycle.delete_bucket_lifecycle,
    "PutBucketInventoryConfiguration": inventory.put_bucket_inventory,
    "GetBucketInventoryConfiguration": inventory.get_bucket_inventory,
    "DeleteBucketInventoryConfiguration": inventory.delete_bucket_inventory,
    "ListBucketInventoryConfigurations": inventory.list_bucket_inventory,
}
