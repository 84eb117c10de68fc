"""The values that cross the boundary between the S3 face and the signature checks."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from coffer.errors import S3Error
from coffer.identity.models import KeyCredentials


@dataclass(frozen=True)
class SignedRequest:
    """The parts of an HTTP request that signatures cover, exactly as received.

    Strings hold the wire bytes decoded as latin-1 (ASGI's convention: one character per
    byte), so raw UTF-8 in a path or header value reaches the signature checks intact.
    """

    method: str
    raw_path: str  # percent-encoded path as on the wire (scope["raw_path"]), no query
    raw_query: str  # the query string as on the wire, without '?'
    headers: list[tuple[str, str]]  # lower-case names, values as received, in order
    host: str = ""  # the Host header (also present in headers)
    secure: bool = False  # arrived over TLS (aws:SecureTransport)
    source_ip: str = ""
    # The bucket named by the Host header of a virtual-hosted-style request ("" for
    # path-style). Only Signature V2 needs it: its canonical resource is /bucket/key.
    vhost_bucket: str = ""

    def header(self, name: str) -> str | None:
        """All values of a header joined with ',' (RFC 9110), or None."""
        values = [v for k, v in self.headers if k == name]
        return ",".join(values) if values else None


class PayloadMode(enum.Enum):
    """How the body is protected, from x-amz-content-sha256 (or the presigned form)."""

    UNSIGNED = "UNSIGNED-PAYLOAD"  # also presigned URLs and SigV2
    SIGNED = "SIGNED"  # a hex SHA-256 of the whole body
    STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

    @property
    def chunked(self) -> bool:
        return self.name.startswith("STREAMING")


@dataclass(frozen=True)
class AuthResult:
    """A request whose signature checked out, made with a key in good standing."""

    credentials: KeyCredentials
    payload_mode: PayloadMode
    payload_sha256: str | None  # hex, when payload_mode is SIGNED
    request_time: datetime
    presigned: bool = False
    signature_version: int = 4
    # For streaming modes: what chunk signatures chain from.
    seed_signature: str = ""
    signing_key: bytes = b""
    scope: str = ""  # 20250101/us-east-1/s3/aws4_request
    amz_date: str = ""  # 20250101T000000Z
    decoded_content_length: int | None = None  # x-amz-decoded-content-length
    trailer_names: tuple[str, ...] = field(default_factory=tuple)  # from x-amz-trailer

    @property
    def access_key_id(self) -> str:
        return self.credentials.key.access_key_id


CredentialLookup = Callable[[str], KeyCredentials | None]


class CredentialRefused(S3Error):
    """A request refused for its credentials rather than their shape: the failed
    authentications the budget counts (coffer.authbudget). `guess` marks a wrong secret
    (signature or session token) for an existing key: only those count against the key id."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        access_key_id: str,
        guess: bool = False,
        fields: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code, message, fields=fields)
        self.access_key_id = access_key_id
        self.guess = guess
