"""How the console reaches buckets and objects: as an ordinary S3 client of this node.

For each signed-in session the console holds a short-lived access key of the session's
user, minted through the normal key service (so it needs `cwobject:CreateAccessKey`,
as CoreWeave's console does). It signs real SigV4 requests with that key and sends them
over loopback HTTP to the node's own S3 listener, streaming bodies both ways. The S3
face authenticates and authorizes them like any other request: the console has no
side door. The secret of a console key never leaves the server process. With TLS on
the listener speaks nothing else, so the console's requests go over TLS too, trusting
exactly the certificate the node serves (and each one a reload brings).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from xml.etree.ElementTree import Element

import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from starlette.requests import Request

from coffer.audit import Actor
from coffer.config import Settings
from coffer.errors import S3_ERRORS, CofferError, Kind
from coffer.identity.accesskeys import Page
from coffer.identity.models import Caller, KeySource, KeyStatus, utcnow
from coffer.node import Node
from coffer.web import tls
from coffer.web.signer import Credentials, body_hash, encode_query, object_path, sign_request

CONSOLE_KEY_SECONDS = 900  # a console key lives 15 minutes and is replaced before it runs out
RENEW_MARGIN = timedelta(seconds=120)
SESSION_ATTRIBUTE = "console-session"
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_WILDCARD_HOSTS = {"", "0.0.0.0", "*"}  # noqa: S104 - recognising a wildcard bind, not binding one


_KIND_BY_STATUS = {
    400: Kind.INVALID_ARGUMENT,
    401: Kind.UNAUTHENTICATED,
    403: Kind.PERMISSION_DENIED,
    404: Kind.NOT_FOUND,
    409: Kind.ALREADY_EXISTS,
    412: Kind.FAILED_PRECONDITION,
    503: Kind.UNAVAILABLE,
}


class S3CallError(CofferError):
    """An S3 error answered to the console, carried to the page as status JSON.

    The HTTP status is S3's own; the message names the S3 code, as a person reading the
    page (or a log) wants to see it: "AccessDenied: Access Denied".
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code, details=[{"s3Code": code}])
        self.status = status
        self.code = code
        known = S3_ERRORS.get(code)
        self.kind = known[2] if known else _KIND_BY_STATUS.get(status, Kind.INTERNAL)


def loopback_base_url(settings: Settings) -> str:
    """Where this node's S3 listener answers, seen from inside the node."""
    host = settings.host.strip()
    if host in _WILDCARD_HOSTS:
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a host name
    return f"{settings.scheme}://{host}:{settings.s3_port}"


@dataclass
class _SessionKey:
    access_key_id: str
    secret_key: str
    expires_at: datetime
    renew_margin: timedelta = RENEW_MARGIN


@dataclass
class ConsoleKeys:
    """This worker's console keys, one per session, renewed before they expire.

    A key that was revoked or suspended meanwhile is not used again: a revoked one is
    replaced; for a suspended principal every new key is suspended too, so the S3
    face's refusal is what the page shows.
    """

    node: Node
    _keys: dict[str, _SessionKey] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def _usable(self, key: _SessionKey, now: datetime) -> bool:
        if key.expires_at - key.renew_margin <= now:
            return False
        creds = self.node.keys.credentials(key.access_key_id)
        return creds is not None and creds.key.revoked_at is None

    async def for_caller(self, caller: Caller) -> Credentials:
        session = caller.token_id or caller.user.id
        async with self._lock:
            now = utcnow()
            key = self._keys.get(session)
            if key is None or not await asyncio.to_thread(self._usable, key, now):
                key = await asyncio.to_thread(self._mint, caller)
                self._keys[session] = key
                # Bounded: drop keys of sessions that have surely ended.
                for sid in [s for s, k in self._keys.items() if k.expires_at <= now]:
                    del self._keys[sid]
            return Credentials(key.access_key_id, key.secret_key)

    def _mint(self, caller: Caller) -> _SessionKey:
        duration = min(CONSOLE_KEY_SECONDS, self.node.settings.max_key_duration)
        attributes = {"name": "console"}
        if caller.token_id:
            attributes[SESSION_ATTRIBUTE] = caller.token_id
        groups = list(caller.user.groups)
        minted = self.node.keys.mint(
            org_id=caller.org_id,
            principal_name=caller.principal_name,
            user_id=caller.user.id,
            duration_seconds=duration,
            source=KeySource.JWT,
            attributes=attributes,
            multi_attributes={"groups": groups} if groups else None,
            actor=Actor(caller.principal_name, "cwobject:CreateAccessKey"),
            audit_source="console",
        )
        assert minted.key.expires_at is not None
        # Renew 2 minutes before expiry, or after 3/4 of a life shorter than 8 minutes.
        margin = min(RENEW_MARGIN, timedelta(seconds=duration / 4))
        return _SessionKey(minted.key.access_key_id, minted.secret_key, minted.key.expires_at, margin)

    def forget(self, session_token_id: str) -> None:
        self._keys.pop(session_token_id, None)

    def revoke_session_keys(self, org_id: str, session_token_id: str) -> int:
        """Revoke the console keys minted for a session, by every worker; blocking."""
        self.forget(session_token_id)
        revoked = 0
        for status in (KeyStatus.ACTIVE, KeyStatus.FULL_SUSPENDED):
            offset = 0
            while True:
                batch = self.node.keys.list(org_id, Page(offset, 1000), status)
                for key in batch:
                    if key.attributes.get(SESSION_ATTRIBUTE) == session_token_id:
                        self.node.keys.revoke_key(org_id, key.access_key_id)
                        revoked += 1
                if len(batch) < 1000:
                    break
                offset += 1000
        return revoked


def _text(el: Element | None, name: str, default: str = "") -> str:
    if el is None:
        return default
    child = el.find(_NS + name)
    if child is None:
        child = el.find(name)
    return child.text or default if child is not None else default


def parse_xml(body: bytes) -> Element:
    try:
        return fromstring(body)
    except (ParseError, DefusedXmlException, ValueError):
        raise S3CallError(502, "InvalidResponse", "the S3 endpoint answered with unreadable XML") from None


def error_from(status: int, body: bytes) -> S3CallError:
    """The S3 error in a response; HEAD-style empty bodies get the code their status implies."""
    if body.strip():
        try:
            root = fromstring(body)
        except (ParseError, DefusedXmlException, ValueError):
            root = None
        if root is not None and root.tag.endswith("Error"):
            return S3CallError(status, _text(root, "Code", "Error"), _text(root, "Message"))
    implied = {403: "AccessDenied", 404: "NotFound", 409: "Conflict", 412: "PreconditionFailed"}
    code = implied.get(status, "Error")
    return S3CallError(status, code, httpx.codes.get_reason_phrase(status) or f"HTTP {status}")


class ConsoleS3:
    """Signed S3 requests to this node's own S3 listener, one connection pool per worker."""

    def __init__(self, node: Node) -> None:
        self.node = node
        settings = node.settings
        self.base_url = loopback_base_url(settings)
        self.region = settings.default_zone
        # With strict CoreWeave addressing only virtual-hosted requests are served.
        self.domain = settings.s3_domain.lower().strip(".") if settings.strict_coreweave else ""
        self.keys = ConsoleKeys(node)
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                timeout=httpx.Timeout(30.0, read=600.0, write=600.0),
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
                verify=tls.client_context(self.node.settings) if self.node.settings.tls else True,
                trust_env=False,
                follow_redirects=False,
            )
        return self._client

    async def send(
        self,
        caller: Caller,
        method: str,
        bucket: str | None = None,
        key: str | None = None,
        query: Iterable[tuple[str, str]] = (),
        *,
        headers: dict[str, str] | None = None,
        content: bytes | AsyncIterator[bytes] | None = None,
        payload_hash: str = "UNSIGNED-PAYLOAD",
    ) -> httpx.Response:
        """Send one signed request; the response is open (streamed) and the caller closes it."""
        creds = await self.keys.for_caller(caller)
        virtual = bool(self.domain and bucket)
        raw_path = object_path(bucket, key, virtual_host=virtual)
        raw_query = encode_query(query)
        netloc = self.client.base_url.netloc.decode("ascii")
        host = f"{bucket}.{self.domain}" if virtual else netloc
        send_headers = dict(headers or {})
        if virtual:
            send_headers["host"] = host
        signed = sign_request(
            method=method,
            host=host,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=send_headers,
            credentials=creds,
            region=self.region,
            payload_hash=payload_hash,
        )
        url = raw_path + (f"?{raw_query}" if raw_query else "")
        request = self.client.build_request(method, url, headers=signed, content=content)
        return await self.client.send(request, stream=True)

    async def call(
        self,
        caller: Caller,
        method: str,
        bucket: str | None = None,
        key: str | None = None,
        query: Iterable[tuple[str, str]] = (),
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> httpx.Response:
        """A request with a small body, read whole; an S3 error is raised as S3CallError."""
        payload = body_hash(body) if body is not None else body_hash(b"")
        resp = await self.send(
            caller, method, bucket, key, query, headers=headers, content=body, payload_hash=payload
        )
        try:
            await resp.aread()
        finally:
            await resp.aclose()
        if resp.status_code >= 300:
            raise error_from(resp.status_code, resp.content)
        return resp


def xml_children(root: Element, name: str) -> list[Element]:
    return [*root.findall(_NS + name), *root.findall(name)]


def xml_text(el: Element | None, name: str, default: str = "") -> str:
    return _text(el, name, default)


def console_s3(request: Request) -> ConsoleS3:
    """This worker's console S3 client, created on first use."""
    state = request.app.state
    client: ConsoleS3 | None = getattr(state, "console_s3", None)
    if client is None:
        client = ConsoleS3(state.node)
        state.console_s3 = client
    return client
