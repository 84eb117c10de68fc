"""DeleteObjects: up to 1000 keys in one request, each authorized as a DeleteObject.

S3 requires an integrity check on this body: Content-MD5, or (current SDKs) a flexible
checksum header or trailer. Each key is decided on its own, so one refused or failed key
becomes an <Error> entry and the rest still go through.
"""

from __future__ import annotations

from coffer.errors import CofferError, S3Error
from coffer.s3 import xml
from coffer.s3.context import Context, run
from coffer.s3.payload import read_small_body, require_integrity_header
from coffer.s3.responses import S3Response, as_s3_error
from coffer.storage.models import DeleteResult

MAX_KEYS = 1000
MAX_BODY = 2 * 1024 * 1024


async def delete_objects(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    require_integrity_header(ctx)
    root = xml.parse(await read_small_body(ctx, MAX_BODY), "Delete")
    quiet = (xml.child_text(root, "Quiet") or "").strip().lower() == "true"
    targets: list[tuple[str, str | None]] = []
    for element in xml.children(root, "Object"):
        key = xml.child_text(element, "Key")
        if not key:
            raise S3Error("MalformedXML")
        version = xml.child_text(element, "VersionId")
        targets.append((key, version or None))
    if not targets or len(targets) > MAX_KEYS:
        raise S3Error("MalformedXML")
    objects = ctx.node.storage.objects
    outcomes: list[DeleteResult | S3Error] = []
    allowed: list[tuple[int, str, str | None]] = []
    for index, (key, version) in enumerate(targets):
        op = ctx.op.derive("DeleteObject", bucket=bucket.name, key=key, version_id=version)
        try:
            ctx.authorize(op, bucket)
        except CofferError as exc:
            outcomes.append(as_s3_error(exc))
            continue
        outcomes.append(S3Error("InternalError"))
        allowed.append((index, key, version))

    def delete_all() -> None:
        """One trip to the thread pool for the whole batch."""
        for index, key, version in allowed:
            try:
                outcomes[index] = objects.delete(bucket.name, key, version)
            except CofferError as exc:
                outcomes[index] = as_s3_error(exc)

    await run(delete_all)
    results: list[xml.Node] = []
    for (key, version), outcome in zip(targets, outcomes, strict=True):
        if isinstance(outcome, S3Error):
            entry: list[xml.Node] = [("Key", key)]
            if version:
                entry.append(("VersionId", version))
            entry += [("Code", outcome.code), ("Message", outcome.message)]
            results.append(("Error", entry))
            continue
        if quiet:
            continue
        deleted: list[xml.Node] = [("Key", key)]
        if version:
            deleted.append(("VersionId", version))
        if outcome.delete_marker:
            deleted.append(("DeleteMarker", True))
            if outcome.version_id:
                deleted.append(("DeleteMarkerVersionId", outcome.version_id))
        results.append(("Deleted", deleted))
    return S3Response.xml("DeleteResult", results)
