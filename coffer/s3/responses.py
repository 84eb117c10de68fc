"""S3 responses: one small value type, the error document, and the ASGI send.

Every response — success, error, HEAD, 304 — carries `x-amz-request-id` and
`x-amz-id-2`, added in exactly one place (`send`), so no path can forget them.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from starlette.types import Send

from coffer.errors import CofferError, Kind, S3Error
from coffer.s3 import xml
from coffer.s3.errors import from_storage
from coffer.s3.metadata import header_bytes
from coffer.storage.errors import StorageError
from coffer.store.errors import StoreUnavailable
from coffer.web import protocol

XML_TYPE = "application/xml"
T = TypeVar("T")
log = logging.getLogger("coffer.s3")

# Domain errors the core raises without an S3 code, mapped onto the closest S3 one.
_KIND_TO_CODE = {
    Kind.INVALID_ARGUMENT: "InvalidArgument",
    Kind.FAILED_PRECONDITION: "InvalidRequest",
    Kind.OUT_OF_RANGE: "InvalidRange",
    Kind.UNAUTHENTICATED: "AccessDenied",
    Kind.PERMISSION_DENIED: "AccessDenied",
    Kind.NOT_FOUND: "NoSuchKey",
    Kind.ALREADY_EXISTS: "InvalidRequest",
    Kind.RESOURCE_EXHAUSTED: "SlowDown",
    Kind.UNIMPLEMENTED: "NotImplemented",
    Kind.INTERNAL: "InternalError",
    Kind.UNAVAILABLE: "ServiceUnavailable",
}


@dataclass
class S3Response:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | AsyncIterator[bytes] = b""
    length: int | None = None  # Content-Length of a streamed body
    code: str = ""  # the S3 error code, for the access log

    @classmethod
    def xml(cls, root: str, children: Sequence[xml.Node | xml.Raw] | str, status: int = 200) -> S3Response:
        return cls(status, [("content-type", XML_TYPE)], xml.render(root, children))


def new_request_id() -> tuple[str, str]:
    """(x-amz-request-id, x-amz-id-2): 16 upper-case hex characters and an opaque host id."""
    raw = os.urandom(32)
    return raw[:8].hex().upper(), base64.b64encode(raw[8:]).decode("ascii")


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@functools.lru_cache(maxsize=4096)
def http_date(value: datetime) -> str:
    """RFC 7231 IMF-fixdate (Last-Modified, Expires). Cached: a hot object's GETs repeat its
    Last-Modified, and email.utils.format_datetime was a visible share of a small GET."""
    t = value.astimezone(UTC)
    return (
        f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year:04d} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} GMT"
    )


def as_s3_error(exc: CofferError) -> S3Error:
    """Any domain error as the S3 error it is answered with (storage's: `errors.from_storage`)."""
    if isinstance(exc, S3Error):
        return exc
    if isinstance(exc, StorageError):
        return from_storage(exc)
    if isinstance(exc, StoreUnavailable):  # a database outage: 503, and when to come back
        return S3Error("ServiceUnavailable", exc.message, headers={"Retry-After": str(exc.retry_after)})
    return S3Error(_KIND_TO_CODE.get(exc.kind, "InternalError"), exc.message)


def error_document(exc: S3Error, *, resource: str, request_id: str, host_id: str) -> bytes:
    children: list[xml.Node] = [("Code", exc.code), ("Message", exc.message)]
    children.extend(exc.fields.items())
    children += [("Resource", resource), ("RequestId", request_id), ("HostId", host_id)]
    return xml.render("Error", children, namespace=False)


async def keepalive_document(
    task: asyncio.Future[T],
    render: Callable[[T], bytes],
    render_error: Callable[[S3Error], bytes],
    *,
    every: float,
) -> AsyncIterator[bytes]:
    """The body of a 200 sent before slow work finished, as S3 does for long
    CompleteMultipartUpload calls: the XML declaration at once, a space every `every`
    seconds so proxies and clients keep the connection, then the result document — or an
    <Error> document, which SDKs look for in a 200 to this call."""
    yield xml.DECLARATION
    while True:
        done, _ = await asyncio.wait({task}, timeout=every)
        if done:
            break
        yield b" "
    skip = len(xml.DECLARATION)
    try:
        result = task.result()
    except CofferError as exc:
        yield render_error(as_s3_error(exc))[skip:]
        return
    except Exception:
        log.exception("slow operation failed after its response started")
        yield render_error(S3Error("InternalError"))[skip:]
        return
    yield render(result)[skip:]


def error_response(exc: S3Error, *, resource: str, request_id: str, host_id: str, head: bool) -> S3Response:
    """The S3 error document; HEAD responses carry the status and headers only."""
    headers = list(exc.headers.items())
    if head:
        return S3Response(exc.status, headers, b"", code=exc.code)
    body = error_document(exc, resource=resource, request_id=request_id, host_id=host_id)
    headers.append(("content-type", XML_TYPE))
    return S3Response(exc.status, headers, body, code=exc.code)


async def send(response: S3Response, send: Send, request_id: str, host_id: str, *, head: bool) -> int:
    """Send `response`; returns the number of body bytes sent. Header values go as latin-1,
    or as an RFC 2047 word where HTTP cannot carry them so (user metadata: `s3.metadata`)."""
    headers = [(k.encode("latin-1"), header_bytes(v)) for k, v in response.headers]
    headers.append((b"x-amz-request-id", request_id.encode()))
    headers.append((b"x-amz-id-2", host_id.encode()))
    body = response.body
    if isinstance(body, bytes):
        if not any(k == b"content-length" for k, _ in headers):
            headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if head or response.status == 304:
            await send({"type": "http.response.body", "body": b""})
            return 0
        await send({"type": "http.response.body", "body": body})
        return len(body)
    if response.length is not None and not any(k == b"content-length" for k, _ in headers):
        headers.append((b"content-length", str(response.length).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    sent = 0
    async for chunk in body:
        if chunk:
            sent += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
    return sent


_CONNECTION_ERRORS = {
    protocol.HEAD_TOO_LARGE: "RequestHeaderSectionTooLarge",
    protocol.HEAD_TIMEOUT: "RequestTimeout",
    protocol.CAP_REFUSED: "SlowDown",
}


def connection_refusal(reason: str, detail: str) -> protocol.Response | None:
    """What the S3 port answers when the connection layer refuses a request (no app ran)."""
    code = _CONNECTION_ERRORS.get(reason)
    if code is None:
        return None
    request_id, host_id = new_request_id()
    err = S3Error(code, detail)
    body = error_document(err, resource="/", request_id=request_id, host_id=host_id)
    headers = [
        (b"content-type", XML_TYPE.encode()),
        (b"x-amz-request-id", request_id.encode()),
        (b"x-amz-id-2", host_id.encode()),
    ]
    if reason == protocol.CAP_REFUSED:
        headers.append((b"retry-after", b"1"))
    return err.status, headers, body
