"""AWS request authentication for the S3 face: SigV4 (header, presigned, streaming) and SigV2.

The face builds a `SignedRequest` from the raw HTTP request and calls `authenticate()`;
it gets back an `AuthResult` (or None for an anonymous request) and, for bodies, a
`PayloadVerifier` that decodes aws-chunked framing, verifies every chunk signature and
the trailing checksums, and checks x-amz-content-sha256 at the end. Every failure is an
`S3Error` with the code AWS gives.

Modules: `canonical` (canonical request, string to sign, cached signing keys),
`header` (Authorization header), `presigned` (query-string auth), `streaming`
(aws-chunked decoding and chunk/trailer signatures), `sigv2` (legacy), `verifier` (the
entry points below). The checksum algorithms come from the one registry, `coffer.checksums`.
"""

from coffer.s3.sigv4.types import (
    AuthResult,
    CredentialLookup,
    PayloadMode,
    SignedRequest,
)
from coffer.s3.sigv4.verifier import PayloadVerifier, authenticate

__all__ = [
    "AuthResult",
    "CredentialLookup",
    "PayloadMode",
    "PayloadVerifier",
    "SignedRequest",
    "authenticate",
]
