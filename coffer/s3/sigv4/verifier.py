"""Entry points: authenticate a request, then verify its payload as it streams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from coffer.s3.sigv4.types import AuthResult, CredentialLookup, SignedRequest


def authenticate(
    request: SignedRequest,
    lookup: CredentialLookup,
    *,
    now: datetime | None = None,
    allow_sigv2: bool = True,
) -> AuthResult | None:
    """Check the request's signature; None means the request carries no credentials.

    Raises S3Error: AuthorizationHeaderMalformed, AuthorizationQueryParametersError,
    InvalidAccessKeyId (unknown or revoked key), SignatureDoesNotMatch,
    RequestTimeTooSkewed (more than 15 minutes off), AccessDenied (expired or
    not-yet-valid presigned URL, suspended principal), ExpiredToken (temporary key past
    its expiry), InvalidToken (session token missing, unexpected or wrong),
    InvalidRequest / InvalidArgument for contradictory or unsupported auth inputs.
    """
    raise NotImplementedError


class PayloadVerifier:
    """Turns the raw body stream into the object's bytes, verifying as it goes.

    For aws-chunked bodies it strips the framing, checks every chunk signature (signed
    modes) and collects the trailing headers (checksums, trailer signature). For
    SIGNED payloads the whole-body SHA-256 is compared with x-amz-content-sha256 at the
    end (XAmzContentSHA256Mismatch). Whole-body digests are not computed here: the blob
    writer computes them in parallel threads while it writes (see `required_digests`),
    and `finish()` is handed the results. Content-MD5 is the face's business.
    """

    def __init__(self, auth: AuthResult | None, request: SignedRequest) -> None:
        raise NotImplementedError

    async def stream(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Yield the decoded payload; raise S3Error on a bad chunk, framing or length."""
        raise NotImplementedError
        yield b""  # pragma: no cover

    @property
    def required_digests(self) -> set[str]:
        """Whole-payload digests `finish` needs ("sha256" for SIGNED payloads, and the
        algorithm of a trailing x-amz-checksum-* named in x-amz-trailer: "crc32",
        "crc32c", "crc64nvme", "sha1", "sha256")."""
        raise NotImplementedError

    @property
    def trailers(self) -> dict[str, str]:
        """Trailing headers (lower-case names), available once `stream` is exhausted."""
        raise NotImplementedError

    def finish(self, digests: dict[str, bytes]) -> None:
        """After the body: check x-amz-content-sha256 and any trailing checksum against
        `digests` (algorithm -> raw digest), and the trailer signature."""
        raise NotImplementedError
