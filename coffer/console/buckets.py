"""/console/api/buckets/...: the Buckets page's calls, each one or a few real S3 requests.

Every handler authenticates the session (cookie plus CSRF header for changes, through
the API port's one `authenticate` in coffer.web.http), checks `cwobject:CreateAccessKey`
through the control plane's one door (the console needs a temporary key, as CoreWeave's
does), and then asks the S3 face, signed with that key, which authorizes the operation itself.
Bodies stream both ways; nothing is buffered but small XML and JSON documents.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import quote, unquote

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from coffer.console.s3client import (
    ConsoleS3,
    S3CallError,
    console_s3,
    error_from,
    parse_xml,
    xml_children,
    xml_text,
)
from coffer.errors import InvalidArgument, Unavailable
from coffer.identity.models import Caller
from coffer.s3.xml import escape
from coffer.web.http import authenticate, call, json_body, node_of, origin_of, required_field

ACTION = "cwobject:CreateAccessKey"
NS = "http://s3.amazonaws.com/doc/2006-03-01/"
PAGE_SIZE = 1000
MAX_POLICY_JSON = 64 * 1024


async def _session(request: Request) -> tuple[Caller, ConsoleS3]:
    caller = await authenticate(request, ACTION)
    await call(node_of(request).authz.authorize_control, caller, ACTION, origin_of(request))
    return caller, console_s3(request)


def _key(request: Request) -> str:
    key = request.query_params.get("key", "")
    if not key:
        raise InvalidArgument.field("key", "is required: the object key")
    return key


def _bucket(request: Request) -> str:
    bucket: str = request.path_params["bucket"]
    return bucket


def _json(data: Any, status: int = 200) -> JSONResponse:
    resp = JSONResponse(data, status_code=status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@contextlib.contextmanager
def _s3_answering() -> Iterator[None]:
    """Around calls on the S3 port: one that gets no answer is the console's 503."""
    try:
        yield
    except httpx.HTTPError as exc:
        raise Unavailable(f"the S3 endpoint did not answer the console: {type(exc).__name__}") from None


# --- buckets -----------------------------------------------------------------------------


async def list_buckets(request: Request) -> JSONResponse:
    caller, s3 = await _session(request)
    buckets: list[dict[str, str]] = []
    token = ""
    with _s3_answering():
        while True:
            query = [("max-buckets", "1000")] + ([("continuation-token", token)] if token else [])
            resp = await s3.call(caller, "GET", query=query)
            root = parse_xml(resp.content)
            container = xml_children(root, "Buckets")
            for entry in xml_children(container[0], "Bucket") if container else []:
                buckets.append(
                    {
                        "name": xml_text(entry, "Name"),
                        "creationDate": xml_text(entry, "CreationDate"),
                        "zone": xml_text(entry, "BucketRegion"),
                    }
                )
            token = xml_text(root, "ContinuationToken")
            if not token:
                break
    return _json({"buckets": buckets})


async def create_bucket(request: Request) -> JSONResponse:
    caller, s3 = await _session(request)
    body = await json_body(request)
    name = required_field(body, "name", str, "is required")
    zone = body.get("zone") or ""
    if not isinstance(zone, str):
        raise InvalidArgument.field("zone", "must be a string")
    versioning = bool(body.get("versioning"))
    config = b""
    if zone:
        config = (
            f'<CreateBucketConfiguration xmlns="{NS}">'
            f"<LocationConstraint>{escape(zone)}</LocationConstraint></CreateBucketConfiguration>"
        ).encode()
    with _s3_answering():
        await s3.call(caller, "PUT", name, body=config)
        if versioning:
            doc = f'<VersioningConfiguration xmlns="{NS}"><Status>Enabled</Status></VersioningConfiguration>'
            try:
                await s3.call(caller, "PUT", name, query=[("versioning", "")], body=doc.encode())
            except S3CallError as exc:
                raise S3CallError(
                    exc.status,
                    exc.code,
                    f"the bucket was created, but versioning was not enabled: {exc.message}",
                ) from None
    return _json({"name": name, "zone": zone, "versioning": versioning})


async def bucket_info(request: Request) -> JSONResponse:
    caller, s3 = await _session(request)
    bucket = _bucket(request)
    with _s3_answering():
        location = parse_xml((await s3.call(caller, "GET", bucket, query=[("location", "")])).content)
        versioning = parse_xml((await s3.call(caller, "GET", bucket, query=[("versioning", "")])).content)
    return _json(
        {"name": bucket, "zone": location.text or "", "versioning": xml_text(versioning, "Status") or "Off"}
    )


async def delete_bucket(request: Request) -> JSONResponse:
    caller, s3 = await _session(request)
    with _s3_answering():
        await s3.call(caller, "DELETE", _bucket(request))
    return _json({})


# --- objects -----------------------------------------------------------------------------


async def list_objects(request: Request) -> JSONResponse:
    """One page of a 'folder': objects and sub-prefixes directly under `prefix`."""
    caller, s3 = await _session(request)
    bucket = _bucket(request)
    prefix = request.query_params.get("prefix", "")
    token = request.query_params.get("token", "")
    query = [
        ("list-type", "2"),
        ("delimiter", "/"),
        ("prefix", prefix),
        ("max-keys", str(PAGE_SIZE)),
        ("encoding-type", "url"),
    ]
    if token:
        query.append(("continuation-token", token))
    with _s3_answering():
        root = parse_xml((await s3.call(caller, "GET", bucket, query=query)).content)
    folders = [unquote(xml_text(cp, "Prefix")) for cp in xml_children(root, "CommonPrefixes")]
    objects = [
        {
            "key": unquote(xml_text(entry, "Key")),
            "size": int(xml_text(entry, "Size", "0") or 0),
            "lastModified": xml_text(entry, "LastModified"),
            "etag": xml_text(entry, "ETag"),
        }
        for entry in xml_children(root, "Contents")
    ]
    truncated = xml_text(root, "IsTruncated") == "true"
    return _json(
        {
            "prefix": prefix,
            "folders": folders,
            "objects": objects,
            "nextToken": xml_text(root, "NextContinuationToken") if truncated else None,
        }
    )


def _content_disposition(key: str) -> str:
    name = key.rstrip("/").rsplit("/", 1)[-1] or "download"
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


async def download_object(request: Request) -> Response:
    caller, s3 = await _session(request)
    bucket, key = _bucket(request), _key(request)
    with _s3_answering():
        resp = await s3.send(caller, "GET", bucket, key)
    if resp.status_code != 200:
        try:
            body = await resp.aread()
        finally:
            await resp.aclose()
        raise error_from(resp.status_code, body)
    headers = {
        "Content-Disposition": _content_disposition(key),
        "Content-Type": resp.headers.get("content-type", "application/octet-stream"),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "no-store",
    }
    for name in ("content-length", "etag", "last-modified"):
        if name in resp.headers:
            headers[name] = resp.headers[name]
    return StreamingResponse(resp.aiter_raw(), headers=headers, background=BackgroundTask(resp.aclose))


async def object_info(request: Request) -> JSONResponse:
    caller, s3 = await _session(request)
    with _s3_answering():
        resp = await s3.call(caller, "HEAD", _bucket(request), _key(request))
    return _json(
        {
            "size": int(resp.headers.get("content-length", "0")),
            "contentType": resp.headers.get("content-type", ""),
            "etag": resp.headers.get("etag", ""),
            "lastModified": resp.headers.get("last-modified", ""),
        }
    )


def _length(request: Request) -> str:
    raw = request.headers.get("content-length", "").strip()
    if not raw.isdigit():
        raise InvalidArgument("an upload needs a Content-Length header")
    return raw


async def _stream(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


async def _put_stream(
    request: Request, caller: Caller, s3: ConsoleS3, bucket: str, key: str, query: list[tuple[str, str]]
) -> str:
    headers = {"content-length": _length(request)}
    ctype = request.headers.get("content-type")
    if ctype and not query:
        headers["content-type"] = ctype
    with _s3_answering():
        resp = await s3.send(caller, "PUT", bucket, key, query, headers=headers, content=_stream(request))
        try:
            body = await resp.aread()
        finally:
            await resp.aclose()
    if resp.status_code != 200:
        raise error_from(resp.status_code, body)
    return resp.headers.get("etag", "")


async def upload_object(request: Request) -> JSONResponse:
    caller, s3 = await _session(request)
    etag = await _put_stream(request, caller, s3, _bucket(request), _key(request), [])
    return _json({"etag": etag})


async def delete_object(request: Request) -> JSONResponse:
    caller, s3 = await _session(request)
    with _s3_answering():
        await s3.call(caller, "DELETE", _bucket(request), _key(request))
    return _json({})


# --- multipart uploads --------------------------------------------------------------------


def _upload_id(request: Request) -> str:
    upload_id = request.query_params.get("uploadId", "")
    if not upload_id:
        raise InvalidArgument.field("uploadId", "is required")
    return upload_id


async def create_upload(request: Request) -> JSONResponse:
    caller, s3 = await _session(request)
    bucket, key = _bucket(request), _key(request)
    ctype = request.query_params.get("contentType", "")
    headers = {"content-type": ctype} if ctype else None
    with _s3_answering():
        resp = await s3.call(caller, "POST", bucket, key, [("uploads", "")], headers=headers)
    return _json({"uploadId": xml_text(parse_xml(resp.content), "UploadId")})


async def upload_part(request: Request) -> JSONResponse:
    caller, s3 = await _session(request)
    number = request.query_params.get("partNumber", "")
    if not number.isdigit():
        raise InvalidArgument.field("partNumber", "must be a number from 1 to 10000")
    query = [("partNumber", number), ("uploadId", _upload_id(request))]
    etag = await _put_stream(request, caller, s3, _bucket(request), _key(request), query)
    return _json({"etag": etag, "partNumber": int(number)})


async def complete_upload(request: Request) -> JSONResponse:
    caller, s3 = await _session(request)
    body = await json_body(request)
    parts = required_field(body, "parts", list, "must list the uploaded parts")
    xml_parts = []
    for part in parts:
        if not isinstance(part, dict) or not isinstance(part.get("partNumber"), int):
            raise InvalidArgument.field("parts", "each part needs partNumber and etag")
        xml_parts.append(
            f"<Part><PartNumber>{part['partNumber']}</PartNumber>"
            f"<ETag>{escape(str(part.get('etag', '')))}</ETag></Part>"
        )
    doc = f'<CompleteMultipartUpload xmlns="{NS}">{"".join(xml_parts)}</CompleteMultipartUpload>'
    query = [("uploadId", _upload_id(request))]
    with _s3_answering():
        resp = await s3.call(caller, "POST", _bucket(request), _key(request), query, body=doc.encode())
    # S3 may answer 200 and still report an error in the body (keep-alive whitespace first).
    root = parse_xml(resp.content)
    if root.tag.endswith("Error"):
        raise error_from(500, resp.content)
    return _json({"etag": xml_text(root, "ETag")})


async def abort_upload(request: Request) -> JSONResponse:
    caller, s3 = await _session(request)
    query = [("uploadId", _upload_id(request))]
    with _s3_answering():
        await s3.call(caller, "DELETE", _bucket(request), _key(request), query)
    return _json({})


# --- bucket policy ------------------------------------------------------------------------


async def get_policy(request: Request) -> JSONResponse:
    caller, s3 = await _session(request)
    try:
        with _s3_answering():
            resp = await s3.call(caller, "GET", _bucket(request), query=[("policy", "")])
    except S3CallError as exc:
        if exc.code == "NoSuchBucketPolicy":
            return _json({"policy": None})
        raise
    return _json({"policy": resp.text})


async def put_policy(request: Request) -> JSONResponse:
    caller, s3 = await _session(request)
    body = await json_body(request)
    policy = body.get("policy")
    if isinstance(policy, dict):
        policy = json.dumps(policy, indent=2)
    if not isinstance(policy, str) or not policy.strip():
        raise InvalidArgument.field("policy", "is required: a JSON policy document")
    if len(policy.encode()) > MAX_POLICY_JSON:
        raise InvalidArgument.field("policy", "is too large")
    with _s3_answering():
        await s3.call(caller, "PUT", _bucket(request), query=[("policy", "")], body=policy.encode())
    return _json({})


async def delete_policy(request: Request) -> JSONResponse:
    caller, s3 = await _session(request)
    with _s3_answering():
        await s3.call(caller, "DELETE", _bucket(request), query=[("policy", "")])
    return _json({})


def _methods(path: str, **handlers: Callable[[Request], Awaitable[Response]]) -> list[Route]:
    return [Route(path, handler, methods=[method]) for method, handler in handlers.items()]


def routes(prefix: str) -> list[Route]:
    """One line per resource, its handlers by method."""
    b = prefix + "/buckets/{bucket}"
    return [
        *_methods(prefix + "/buckets", GET=list_buckets, POST=create_bucket),
        *_methods(b, GET=bucket_info, DELETE=delete_bucket),
        *_methods(b + "/objects", GET=list_objects),
        *_methods(b + "/object", GET=download_object, PUT=upload_object, DELETE=delete_object),
        *_methods(b + "/object-info", GET=object_info),
        *_methods(b + "/multipart", POST=create_upload, DELETE=abort_upload),
        *_methods(b + "/multipart/part", PUT=upload_part),
        *_methods(b + "/multipart/complete", POST=complete_upload),
        *_methods(b + "/policy", GET=get_policy, PUT=put_policy, DELETE=delete_policy),
    ]
