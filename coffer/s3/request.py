"""`S3Request`: the one place that parses an S3 request.

Addressing (virtual-hosted or path-style), the bucket and the decoded key, the query
(arguments and flag-style sub-resources), headers, the copy source, and the body
stream all come from here, computed once. The signature covers the wire forms
(`raw_path`, `raw_query`, headers as received), which are kept beside the decoded ones.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from urllib.parse import unquote, unquote_to_bytes

from starlette.types import Receive, Scope

from coffer.config import Settings
from coffer.errors import S3Error
from coffer.s3.router import ObjectRef
from coffer.s3.sigv4.types import SignedRequest


class ClientDisconnected(Exception):
    """The client went away mid-request; nothing is left to answer."""


def _decode_component(raw: bytes, plus_is_space: bool) -> str:
    if plus_is_space:
        raw = raw.replace(b"+", b" ")
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise S3Error("InvalidURI") from None  # AWS's words: "Couldn't parse the specified URI."


def parse_query(raw_query: str) -> tuple[dict[str, str], frozenset[str]]:
    """Query arguments (first value wins, as S3 does) and the names given without '='."""
    query: dict[str, str] = {}
    flags: set[str] = set()
    if not raw_query:
        return query, frozenset()
    for part in raw_query.split("&"):
        if not part:
            continue
        name, eq, value = part.partition("=")
        key = _decode_component(name.encode("latin-1"), True)
        if not eq:
            flags.add(key)
        query.setdefault(key, _decode_component(value.encode("latin-1"), True))
    return query, frozenset(flags)


def split_host(host: str) -> str:
    """Host header without its port (IPv6 literals keep their brackets)."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if ":" in host else host


class S3Request:
    """One S3 request, parsed. Built by the app before routing; read by every layer after."""

    __slots__ = (
        "_complete",
        "_consumed",
        "_headers_map",
        "_receive",
        "bucket",
        "flags",
        "headers",
        "host",
        "host_id",
        "key",
        "method",
        "path",
        "path_style",
        "query",
        "raw_path",
        "raw_query",
        "request_id",
        "scheme",
        "source_ip",
    )

    def __init__(
        self, scope: Scope, receive: Receive, settings: Settings, request_id: str, host_id: str = ""
    ) -> None:
        self._receive = receive
        self._consumed = False
        self._complete = False
        self.request_id = request_id
        self.host_id = host_id
        self.method: str = scope["method"]
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
        self.raw_path = raw_path.decode("latin-1")
        self.raw_query: str = scope.get("query_string", b"").decode("latin-1")
        self.scheme: str = scope.get("scheme", "http")
        client = scope.get("client")
        self.source_ip: str = client[0] if client else ""
        self.headers: list[tuple[str, str]] = [
            (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]
        ]
        merged: dict[str, str] = {}
        for k, v in self.headers:
            merged[k] = f"{merged[k]},{v}" if k in merged else v
        self._headers_map = merged
        self.host = merged.get("host", "")
        self.path = _decode_component(raw_path, False)
        self.query, self.flags = parse_query(self.raw_query)
        self.bucket: str | None
        self.key: str | None
        self.path_style = True
        domain = settings.s3_domain.lower().strip(".")
        hostname = split_host(self.host).lower()
        if domain and hostname.endswith("." + domain) and len(hostname) > len(domain) + 1:
            # Virtual-hosted style: the bucket is the Host label(s) before the domain.
            self.path_style = False
            self.bucket = hostname[: -len(domain) - 1]
            key = self.path[1:] if self.path.startswith("/") else self.path
            self.key = key or None
        else:
            rest = self.path[1:] if self.path.startswith("/") else self.path
            bucket, slash, key = rest.partition("/")
            self.bucket = bucket or None
            self.key = key if slash and key else None

    # headers ---------------------------------------------------------------------------
    def header(self, name: str) -> str | None:
        """A header by lower-case name (repeated headers joined with ',')."""
        return self._headers_map.get(name)

    def headers_with_prefix(self, prefix: str) -> dict[str, str]:
        return {k: v for k, v in self._headers_map.items() if k.startswith(prefix)}

    @property
    def content_length(self) -> int | None:
        """Content-Length, or None when absent; a malformed one is refused."""
        raw = self._headers_map.get("content-length")
        if raw is None:
            return None
        raw = raw.strip()
        if not raw.isdigit():
            raise S3Error("InvalidArgument", "Content-Length is not a valid number.")
        return int(raw)

    @property
    def is_chunked_transfer(self) -> bool:
        return "chunked" in self._headers_map.get("transfer-encoding", "").lower()

    @property
    def has_credentials(self) -> bool:
        """Whether the request claims to be signed (header or query-string auth)."""
        if "authorization" in self._headers_map:
            return True
        return any(
            k in self.query for k in ("X-Amz-Signature", "X-Amz-Credential", "Signature", "AWSAccessKeyId")
        )

    def signed(self) -> SignedRequest:
        """What the signature checks see: the request exactly as it came over the wire."""
        return SignedRequest(
            method=self.method,
            raw_path=self.raw_path,
            raw_query=self.raw_query,
            headers=self.headers,
            host=self.host,
            secure=self.scheme == "https",
            source_ip=self.source_ip,
        )

    @property
    def resource(self) -> str:
        """The <Resource> of an error document: the path as S3 names it."""
        if self.bucket is None:
            return "/"
        return f"/{self.bucket}/{self.key}" if self.key else f"/{self.bucket}"

    # copy source -----------------------------------------------------------------------
    def copy_source(self) -> ObjectRef | None:
        """x-amz-copy-source: "[/]bucket/key[?versionId=v]", the key URL-encoded."""
        raw = self._headers_map.get("x-amz-copy-source")
        if raw is None:
            return None
        path, _, qs = raw.partition("?")
        version_id: str | None = None
        if qs:
            params, _ = parse_query(qs)
            if set(params) - {"versionId"}:
                raise S3Error("InvalidArgument", "Unsupported copy source parameter.")
            version_id = params.get("versionId")
            if version_id == "":
                raise S3Error("InvalidArgument", "Version id cannot be the empty string")
        try:
            decoded = unquote(path, errors="strict")
        except UnicodeDecodeError:
            raise S3Error("InvalidArgument", "Invalid copy source encoding.") from None
        decoded = decoded.removeprefix("/")
        bucket, _, key = decoded.partition("/")
        if not bucket or not key:
            raise S3Error(
                "InvalidArgument",
                "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
                fields={"ArgumentName": "x-amz-copy-source", "ArgumentValue": raw},
            )
        return ObjectRef(bucket=bucket, key=key, version_id=version_id)

    # body ------------------------------------------------------------------------------
    async def body(self) -> AsyncIterator[bytes]:
        """The raw body as it arrives (still aws-chunked framed, if it is)."""
        if self._consumed:
            return
        self._consumed = True
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                self._complete = True
                return

    @property
    def body_pending(self) -> bool:
        """Body bytes may still be on the wire: answering now means closing the connection,
        or the next request would be parsed out of them (clients that sent Expect:
        100-continue never send a body they were refused)."""
        if self._complete:
            return False
        if self.is_chunked_transfer:
            return True
        raw = self._headers_map.get("content-length", "0").strip()
        return not raw.isdigit() or int(raw) > 0


def decode_base64(value: str, length: int | None = None) -> bytes | None:
    """Strict base64 of an expected length, or None if it is not that."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    if length is not None and len(raw) != length:
        return None
    return raw
