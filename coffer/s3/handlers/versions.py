"""ListObjectVersions: every version and delete marker of a bucket, a page at a time.

The page comes from `Objects.list_versions` (keys ascending, each key's versions
newest first); here it is addressed by key-marker / version-id-marker and rendered as
`<ListVersionsResult>` with `<Version>` and `<DeleteMarker>` entries in that order and the
common prefixes after them.
"""

from __future__ import annotations

from coffer.s3 import xml
from coffer.s3.context import Context, run
from coffer.s3.handlers.common import list_args, owner, url_encode
from coffer.s3.responses import S3Response
from coffer.storage.models import ListedVersion


def _entry(v: ListedVersion, encode: bool) -> xml.Node:
    if v.is_delete_marker:
        return (
            "DeleteMarker",
            [
                ("Key", url_encode(v.key, encode)),
                ("VersionId", v.version_id),
                ("IsLatest", v.is_latest),
                ("LastModified", v.last_modified),
                ("Owner", owner(v.owner_principal)),
            ],
        )
    nodes: list[xml.Node] = [
        ("Key", url_encode(v.key, encode)),
        ("VersionId", v.version_id),
        ("IsLatest", v.is_latest),
        ("LastModified", v.last_modified),
        ("ETag", v.etag),
        ("Size", v.size),
    ]
    if v.checksum_algorithm:
        nodes.append(("ChecksumAlgorithm", v.checksum_algorithm))
        if v.checksum_type:
            nodes.append(("ChecksumType", v.checksum_type))
    nodes += [("Owner", owner(v.owner_principal)), ("StorageClass", v.storage_class or "STANDARD")]
    return ("Version", nodes)


async def list_object_versions(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    query = ctx.op.query
    args = list_args(query, "max-keys")
    encode, prefix, delimiter, max_keys = args.encode, args.prefix, args.delimiter, args.max_items
    key_marker, version_marker = query.get("key-marker", ""), query.get("version-id-marker", "")
    page = await run(
        ctx.node.storage.objects.list_versions,
        bucket.name,
        prefix=prefix,
        delimiter=delimiter,
        key_marker=key_marker,
        version_id_marker=version_marker,
        max_keys=max_keys,
    )
    body: list[xml.Node] = [  # a None value leaves its element out
        ("Name", bucket.name),
        ("Prefix", url_encode(prefix, encode)),
        ("KeyMarker", url_encode(key_marker, encode)),
        ("VersionIdMarker", version_marker),
        ("NextKeyMarker", url_encode(page.next_key_marker, encode)),
        ("NextVersionIdMarker", page.next_version_id_marker),
        ("MaxKeys", max_keys),
        ("Delimiter", url_encode(delimiter or None, encode)),
        ("IsTruncated", page.is_truncated),
        ("EncodingType", "url" if encode else None),
    ]
    body += [_entry(v, encode) for v in page.versions]
    body += [("CommonPrefixes", [("Prefix", url_encode(p, encode))]) for p in page.common_prefixes]
    return S3Response.xml("ListVersionsResult", body)
