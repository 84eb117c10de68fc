"""Entry points: authenticate a request, then verify its payload as it streams.

`authenticate` decides who signed a request, or that nobody did. The order of checks
follows AWS: the shape of the credentials first (malformed header or query, date,
clock skew, x-amz-content-sha256, unsigned x-amz-* headers), then the key
(InvalidAccessKeyId), then the signature (SignatureDoesNotMatch), then the standing of
a key whose signature is genuine (ExpiredToken, suspended principal, session token).
Only a request that passes everything yields an `AuthResult`.

Leniencies, each because real clients need it:
- An empty session token (botocore presigns `X-Amz-Security-Token=` for credentials
  whose token is the empty string, as container credentials may be) counts as none.
- If the signature over the canonical URI and query fails, the path and query exactly
  as received are tried too: signers that hash a URL they did not build themselves
  (botocore with a hand-written URL, for one) sign it verbatim, sorted or (curl before
  8.1) in the order sent. Every form binds the same bytes, so this widens nothing an
  attacker controls.
- A header-signed request that neither sends nor signs x-amz-content-sha256 (curl
  before 8.1) is verified over the empty payload's hash, with its body unsigned.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from coffer import checksums
from coffer.errors import S3Error
from coffer.identity.accesskeys import AccessKeyService
from coffer.identity.models import KeyCredentials, as_utc
from coffer.s3.sigv4 import sigv2
from coffer.s3.sigv4.canonical import (
    ALGORITHM,
    EMPTY_SHA256,
    canonical_headers,
    canonical_query,
    canonical_request,
    canonical_uri,
    literal_query,
    sign,
    signatures_match,
    signing_key,
    string_to_sign,
    wire_bytes,
)
from coffer.s3.sigv4.header import (
    Authorization,
    check_credential_date,
    parse_amz_date,
    parse_authorization,
)
from coffer.s3.sigv4.presigned import (
    SIGNATURE_PARAM,
    Presigned,
    check_validity,
    decode_query,
    is_presigned,
    parse_presigned,
)
from coffer.s3.sigv4.streaming import ChunkedDecoder, ChunkSigning
from coffer.s3.sigv4.types import (
    AuthResult,
    CredentialLookup,
    CredentialRefused,
    PayloadMode,
    SignedRequest,
)

MAX_SKEW = timedelta(minutes=15)
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}").fullmatch
_STREAMING_MODES = {mode.value: mode for mode in PayloadMode if mode.chunked}
_SIGNED_STREAMING = frozenset({PayloadMode.STREAMING_SIGNED, PayloadMode.STREAMING_SIGNED_TRAILER})
_TRAILER_MODES = frozenset({PayloadMode.STREAMING_SIGNED_TRAILER, PayloadMode.STREAMING_UNSIGNED_TRAILER})
_SIGV4A_STREAMING = frozenset(
    {"STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"}
)
_HEADER_PREFIX = "The authorization header is malformed; "
_NO_DATE = "AWS authentication requires a valid Date or x-amz-date header"
_ONE_MECHANISM = (
    "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query "
    "string parameter or the Authorization header should be specified"
)
_QUERY_AUTH_HINTS = ("X-Amz-", "Signature", "AWSAccessKeyId", "%")


# -- small helpers ---------------------------------------------------------------------------
def _header_map(headers: list[tuple[str, str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in headers:
        values = found.get(name)
        if values is None:
            found[name] = [value]
        else:
            values.append(value)
    return found


def _one(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    if values is None:
        return None
    return values[0] if len(values) == 1 else ",".join(values)


def parse_payload_mode(value: str) -> PayloadMode:
    """The payload mode an x-amz-content-sha256 value names; InvalidArgument otherwise."""
    if value == "UNSIGNED-PAYLOAD":
        return PayloadMode.UNSIGNED
    mode = _STREAMING_MODES.get(value)
    if mode is not None:
        return mode
    if _HEX64(value):
        return PayloadMode.SIGNED
    if value in _SIGV4A_STREAMING:
        raise S3Error("NotImplemented", "Signature Version 4A (ECDSA) streaming payloads are not supported.")
    raise S3Error(
        "InvalidArgument",
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER "
        "or a valid sha256 value.",
        fields={"ArgumentName": "x-amz-content-sha256", "ArgumentValue": value[:128]},
    )


def _body_shape(headers: dict[str, list[str]], mode: PayloadMode) -> tuple[int | None, tuple[str, ...]]:
    """x-amz-decoded-content-length and the trailer names of x-amz-trailer, validated."""
    decoded: int | None = None
    raw = _one(headers, "x-amz-decoded-content-length")
    if raw is not None and mode.chunked:
        raw = raw.strip()
        if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
            raise S3Error(
                "InvalidArgument",
                "x-amz-decoded-content-length must be a non-negative integer.",
                fields={"ArgumentName": "x-amz-decoded-content-length", "ArgumentValue": raw[:64]},
            )
        decoded = int(raw)
    names: tuple[str, ...] = ()
    trailer = _one(headers, "x-amz-trailer")
    if trailer is not None and trailer.strip():
        names = tuple(dict.fromkeys(n.strip().lower() for n in trailer.split(",") if n.strip()))
        for name in names:
            if checksums.algorithm_for_header(name) is None:
                raise S3Error(
                    "InvalidRequest",
                    f"The value specified in the x-amz-trailer header is not supported: {name[:64]}",
                )
        if mode not in _TRAILER_MODES:
            raise S3Error(
                "InvalidRequest",
                "x-amz-trailer needs x-amz-content-sha256 STREAMING-UNSIGNED-PAYLOAD-TRAILER "
                "or STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER.",
            )
    return decoded, names


def _check_skew(request_time: datetime, now: datetime) -> None:
    if abs(now - request_time) > MAX_SKEW:
        raise S3Error(
            "RequestTimeTooSkewed",
            fields={
                "RequestTime": request_time.strftime(_TIME_FORMAT),
                "ServerTime": now.strftime(_TIME_FORMAT),
                "MaxAllowedSkewMilliseconds": str(int(MAX_SKEW.total_seconds() * 1000)),
            },
        )


def _check_signed_headers(headers: dict[str, list[str]], signed: list[str]) -> None:
    """`host` and every x-amz-* header present must be signed, as S3 requires."""
    signed_set = set(signed)
    unsigned = [] if "host" in signed_set else ["host"]
    unsigned.extend(n for n in headers if n.startswith("x-amz-") and n not in signed_set)
    if unsigned:
        raise S3Error(
            "AccessDenied",
            "There were headers present in the request which were not signed",
            fields={"HeadersNotSigned": ", ".join(unsigned)},
        )


def _lookup(lookup: CredentialLookup, access_key_id: str) -> KeyCredentials:
    creds = lookup(access_key_id) if access_key_id else None
    # A rotated key's scheduled revocation is honoured here, the instant it falls due.
    if creds is None or creds.key.revoked_at is not None or _rotated_out(creds):
        raise CredentialRefused(
            "InvalidAccessKeyId", access_key_id=access_key_id, fields={"AWSAccessKeyId": access_key_id[:128]}
        )
    return creds


def _rotated_out(creds: KeyCredentials) -> bool:
    return creds.key.revoke_at is not None and creds.key.revoked(datetime.now(UTC))


def _check_key_standing(creds: KeyCredentials, now: datetime, token: str | None) -> None:
    """After a genuine signature: the key must be unexpired, its principal active, and
    the session token (if the key has one) presented and right."""
    key_id = creds.key.access_key_id
    expires_at = as_utc(creds.key.expires_at)
    if expires_at is not None and expires_at <= now:
        raise CredentialRefused("ExpiredToken", access_key_id=key_id, fields={"AWSAccessKeyId": key_id})
    if creds.key.suspended:
        raise CredentialRefused(
            "AccessDenied",
            f"The access key {key_id} is suspended: its principal has been suspended.",
            access_key_id=key_id,
        )
    presented = token or None
    if not AccessKeyService.session_token_matches(creds, presented):
        if presented is None:
            message = "This access key requires a session token; send it as x-amz-security-token."
        elif creds.session_token_hash is None:
            message = "This access key takes no session token, but x-amz-security-token was sent."
        else:
            message = "The provided token is malformed or otherwise invalid."
        raise CredentialRefused("InvalidToken", message, access_key_id=key_id, guess=True)


def _verify_v4(
    request: SignedRequest,
    headers: dict[str, list[str]],
    *,
    signed: list[str],
    payload_hash: str,
    amz_date: str,
    scope: str,
    key: bytes,
    provided: str,
    access_key_id: str,
    exclude: str | None,
    has_token: bool,
) -> str:
    """Compute and compare the signature; return it (the seed for chunk signatures)."""
    canon_headers = canonical_headers(headers, signed)
    signed_line = ";".join(signed)
    uri = canonical_uri(request.raw_path)
    query = canonical_query(request.raw_query, exclude)
    creq = canonical_request(request.method, uri, query, canon_headers, signed_line, payload_hash)
    sts = string_to_sign(amz_date, scope, creq)
    expected = sign(key, sts)
    if signatures_match(expected, provided):
        return expected
    uris = [uri] if not request.raw_path or request.raw_path == uri else [uri, request.raw_path]
    queries = [query]
    for literal in (
        literal_query(request.raw_query, exclude),
        literal_query(request.raw_query, exclude, ordered=False),
    ):
        if literal not in queries:
            queries.append(literal)
    for alt_uri in uris:
        for alt_query in queries:
            if alt_uri is uri and alt_query is query:
                continue
            alt = canonical_request(
                request.method, alt_uri, alt_query, canon_headers, signed_line, payload_hash
            )
            candidate = sign(key, string_to_sign(amz_date, scope, alt))
            if signatures_match(candidate, provided):
                return candidate
    fields = {"AWSAccessKeyId": access_key_id, "StringToSign": sts, "SignatureProvided": provided[:128]}
    if not has_token:  # the canonical request would echo the session token
        fields["CanonicalRequest"] = creq
    raise CredentialRefused("SignatureDoesNotMatch", access_key_id=access_key_id, guess=True, fields=fields)


# -- authenticate -----------------------------------------------------------------------------
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
    now = now if now is not None else datetime.now(UTC)
    headers = _header_map(request.headers)
    authorization = headers.get("authorization")
    raw_query = request.raw_query
    params: dict[str, str] = {}
    query_v4 = query_v2 = False
    if raw_query and any(hint in raw_query for hint in _QUERY_AUTH_HINTS):
        params = decode_query(raw_query)
        query_v4 = is_presigned(params)
        query_v2 = not query_v4 and ("Signature" in params or "AWSAccessKeyId" in params)
    if authorization is not None:
        value = ",".join(authorization).strip()
        if query_v4 or query_v2:
            raise S3Error("InvalidArgument", _ONE_MECHANISM, fields={"ArgumentName": "Authorization"})
        if value.startswith(ALGORITHM):
            return _signed_v4(request, headers, lookup, now, _header_v4(headers, value, now))
        if value.startswith("AWS "):
            if not allow_sigv2:
                raise S3Error("InvalidRequest", sigv2.NOT_SUPPORTED)
            return _header_v2(request, headers, value, lookup, now)
        raise S3Error(
            "InvalidArgument",
            "Unsupported Authorization Type",
            fields={"ArgumentName": "Authorization", "ArgumentValue": value.split(" ", 1)[0][:64]},
        )
    if query_v4:
        return _signed_v4(request, headers, lookup, now, _presigned_v4(headers, params, now))
    if query_v2:
        if not allow_sigv2:
            raise S3Error("InvalidRequest", sigv2.NOT_SUPPORTED)
        return _query_v2(request, headers, params, lookup, now)
    return None


@dataclass(frozen=True)
class _Claim:
    """What a SigV4 request says of itself, read from its Authorization header or from its
    presigned query: all `_signed_v4` checks."""

    signed: Authorization | Presigned  # the credential, the signed headers, the signature
    amz_date: str
    request_time: datetime
    content_sha256: str
    mode: PayloadMode
    token: str | None


def _header_v4(headers: dict[str, list[str]], value: str, now: datetime) -> _Claim:
    """The claim of a request signed in its Authorization header."""
    auth = parse_authorization(value)
    credential = auth.credential
    amz_date_header = _one(headers, "x-amz-date")
    if amz_date_header is not None:
        amz_date = amz_date_header.strip()
        request_time = parse_amz_date(amz_date)
    else:
        date_header = _one(headers, "date")
        request_time = sigv2.parse_http_date(date_header) if date_header else None
        amz_date = request_time.strftime(_AMZ_DATE_FORMAT) if request_time else ""
    if request_time is None:
        raise S3Error("AccessDenied", _NO_DATE)
    check_credential_date(credential, amz_date, code="AuthorizationHeaderMalformed", prefix=_HEADER_PREFIX)
    _check_skew(request_time, now)
    content_sha256 = _one(headers, "x-amz-content-sha256")
    if content_sha256 is None:
        if "x-amz-content-sha256" in auth.signed_headers:
            raise S3Error("InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
        # curl before 8.1 (`--aws-sigv4`, still Debian 12's and RHEL 9's) neither sends nor
        # signs the header and signs over the empty payload's hash whatever it uploads
        # (`-T`). Accept that shape, as MinIO does, with the body unsigned: the same
        # protection UNSIGNED-PAYLOAD gives, which newer curl sends for the same command.
        content_sha256, mode = EMPTY_SHA256, PayloadMode.UNSIGNED
    else:
        content_sha256 = content_sha256.strip()
        mode = parse_payload_mode(content_sha256)
    return _Claim(auth, amz_date, request_time, content_sha256, mode, _one(headers, "x-amz-security-token"))


def _presigned_v4(headers: dict[str, list[str]], params: dict[str, str], now: datetime) -> _Claim:
    """The claim of a presigned URL (a session token may also come as a header)."""
    presigned = parse_presigned(params)
    check_validity(presigned, now)
    content_sha256 = _one(headers, "x-amz-content-sha256")
    if content_sha256 is None:
        content_sha256 = presigned.content_sha256 or "UNSIGNED-PAYLOAD"
    content_sha256 = content_sha256.strip()
    mode = parse_payload_mode(content_sha256)
    token = presigned.security_token
    if token is None:
        token = _one(headers, "x-amz-security-token")
    return _Claim(presigned, presigned.amz_date, presigned.request_time, content_sha256, mode, token)


def _signed_v4(
    request: SignedRequest,
    headers: dict[str, list[str]],
    lookup: CredentialLookup,
    now: datetime,
    claim: _Claim,
) -> AuthResult:
    """What header and presigned SigV4 share once their own parts are read: the body's shape, the
    signed headers, the key and its signature, the key's standing."""
    credential = claim.signed.credential
    presigned = isinstance(claim.signed, Presigned)
    decoded_length, trailer_names = _body_shape(headers, claim.mode)
    _check_signed_headers(headers, claim.signed.signed_headers)
    creds = _lookup(lookup, credential.access_key_id)
    key = signing_key(creds.secret_key, credential.date, credential.region, credential.service)
    seed = _verify_v4(
        request,
        headers,
        signed=claim.signed.signed_headers,
        payload_hash=claim.content_sha256,
        amz_date=claim.amz_date,
        scope=credential.scope,
        key=key,
        provided=claim.signed.signature,
        access_key_id=credential.access_key_id,
        exclude=SIGNATURE_PARAM if presigned else None,
        has_token=claim.token is not None,
    )
    _check_key_standing(creds, now, claim.token)
    return AuthResult(
        credentials=creds,
        payload_mode=claim.mode,
        payload_sha256=claim.content_sha256.lower() if claim.mode is PayloadMode.SIGNED else None,
        request_time=claim.request_time,
        presigned=presigned,
        signature_version=4,
        seed_signature=seed,
        signing_key=key,
        scope=credential.scope,
        amz_date=claim.amz_date,
        decoded_content_length=decoded_length,
        trailer_names=trailer_names,
    )


def _v2_payload(headers: dict[str, list[str]]) -> tuple[PayloadMode, str | None]:
    """SigV2 does not cover the body; an x-amz-content-sha256 still gets checked."""
    value = _one(headers, "x-amz-content-sha256")
    if value is None:
        return PayloadMode.UNSIGNED, None
    mode = parse_payload_mode(value.strip())
    if mode in _SIGNED_STREAMING:
        raise S3Error("InvalidRequest", f"{mode.value} payloads need Signature Version 4.")
    return mode, value.strip().lower() if mode is PayloadMode.SIGNED else None


def _verify_v2(
    request: SignedRequest,
    headers: dict[str, list[str]],
    *,
    creds: KeyCredentials,
    provided: str,
    date_lines: list[str],
    query_params: dict[str, str] | None,
) -> None:
    content_md5 = (_one(headers, "content-md5") or "").strip()
    content_type = (_one(headers, "content-type") or "").strip()
    if query_params is not None:
        content_md5 = content_md5 or query_params.get("content-md5", "").strip()
        content_type = content_type or query_params.get("content-type", "").strip()
    amz = sigv2.amz_headers(headers, query_params)
    first = ""
    for path in sigv2.resource_candidates(request.raw_path, request.vhost_bucket, request.host):
        resource = sigv2.canonical_resource(path, request.raw_query)
        for date_line in date_lines:
            sts = sigv2.string_to_sign(request.method, content_md5, content_type, date_line, amz, resource)
            first = first or sts
            if hmac.compare_digest(sigv2.sign(creds.secret_key, sts).encode("ascii"), wire_bytes(provided)):
                return
    raise CredentialRefused(
        "SignatureDoesNotMatch",
        access_key_id=creds.key.access_key_id,
        guess=True,
        fields={
            "AWSAccessKeyId": creds.key.access_key_id,
            "StringToSign": first,
            "SignatureProvided": provided[:128],
        },
    )


def _header_v2(
    request: SignedRequest,
    headers: dict[str, list[str]],
    value: str,
    lookup: CredentialLookup,
    now: datetime,
) -> AuthResult:
    v2 = sigv2.parse_header(value)
    amz_date = _one(headers, "x-amz-date")
    date = _one(headers, "date")
    stamp = amz_date if amz_date is not None else date
    request_time = sigv2.parse_http_date(stamp) if stamp else None
    if request_time is None:
        raise S3Error("AccessDenied", _NO_DATE)
    _check_skew(request_time, now)
    mode, payload_sha256 = _v2_payload(headers)
    creds = _lookup(lookup, v2.access_key_id)
    # With x-amz-date, AWS signs an empty Date line; some signers put the Date header there anyway.
    date_lines = [date.strip() if date else ""] if amz_date is None else list(dict.fromkeys(["", date or ""]))
    _verify_v2(request, headers, creds=creds, provided=v2.signature, date_lines=date_lines, query_params=None)
    _check_key_standing(creds, now, _one(headers, "x-amz-security-token"))
    return AuthResult(
        credentials=creds,
        payload_mode=mode,
        payload_sha256=payload_sha256,
        request_time=request_time,
        signature_version=2,
    )


def _query_v2(
    request: SignedRequest,
    headers: dict[str, list[str]],
    params: dict[str, str],
    lookup: CredentialLookup,
    now: datetime,
) -> AuthResult:
    v2 = sigv2.parse_query(params, request.raw_query)
    assert v2.expires is not None
    if now.timestamp() > v2.expires:
        raise S3Error(
            "AccessDenied",
            "Request has expired",
            fields={"Expires": str(v2.expires), "ServerTime": now.strftime(_TIME_FORMAT)},
        )
    mode, payload_sha256 = _v2_payload(headers)
    creds = _lookup(lookup, v2.access_key_id)
    _verify_v2(
        request,
        headers,
        creds=creds,
        provided=v2.signature,
        date_lines=[str(v2.expires)],
        query_params=params,
    )
    token = _one(headers, "x-amz-security-token")
    if token is None:
        token = params.get("x-amz-security-token")
    _check_key_standing(creds, now, token)
    return AuthResult(
        credentials=creds,
        payload_mode=mode,
        payload_sha256=payload_sha256,
        request_time=now,
        presigned=True,
        signature_version=2,
    )


# -- payload ----------------------------------------------------------------------------------
class PayloadVerifier:
    """Turns the raw body stream into the object's bytes, verifying as it goes.

    For aws-chunked bodies it strips the framing, checks every chunk signature (signed
    modes) and collects the trailing headers (checksums, trailer signature). For
    SIGNED payloads the whole-body SHA-256 is compared with x-amz-content-sha256 at the
    end (XAmzContentSHA256Mismatch). Whole-body digests are not computed here: the blob
    writer computes them in parallel threads while it writes (see `required_digests`),
    and `finish()` is handed the results. Content-MD5 is the face's business.

    Without an AuthResult (anonymous requests) the x-amz-content-sha256 header still
    decides the framing and is still checked, but signed streaming is refused.
    """

    def __init__(self, auth: AuthResult | None, request: SignedRequest) -> None:
        if auth is not None:
            mode = auth.payload_mode
            payload_sha256 = auth.payload_sha256
            decoded_length: int | None = auth.decoded_content_length
            trailer_names = auth.trailer_names
        else:
            headers = _header_map(request.headers)
            value = _one(headers, "x-amz-content-sha256")
            mode = parse_payload_mode(value.strip()) if value is not None else PayloadMode.UNSIGNED
            if mode in _SIGNED_STREAMING:
                raise S3Error("InvalidRequest", f"{mode.value} payloads need a signed request.")
            payload_sha256 = (
                value.strip().lower() if value is not None and mode is PayloadMode.SIGNED else None
            )
            decoded_length, trailer_names = _body_shape(headers, mode)
        self.mode = mode
        self._payload_sha256 = payload_sha256
        self._trailer_names = trailer_names
        self._decoder: ChunkedDecoder | None = None
        self._plain_size = 0
        self._streamed = False
        if mode.chunked:
            signing: ChunkSigning | None = None
            if mode in _SIGNED_STREAMING:
                assert auth is not None
                signing = ChunkSigning(auth.signing_key, auth.amz_date, auth.scope, auth.seed_signature)
            self._decoder = ChunkedDecoder(
                signing=signing,
                trailer=mode in _TRAILER_MODES,
                declared_trailers=trailer_names,
                decoded_length=decoded_length,
            )

    async def stream(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """Yield the decoded payload; raise S3Error on a bad chunk, framing or length."""
        decoder = self._decoder
        if decoder is None:
            async for piece in body:
                self._plain_size += len(piece)
                yield piece
        else:
            async for piece in body:
                if piece:
                    for out in decoder.feed(piece):
                        yield out
            decoder.close()
        self._streamed = True

    @property
    def decoded_size(self) -> int:
        """Payload bytes yielded so far (the object's size once `stream` is exhausted)."""
        return self._decoder.size if self._decoder is not None else self._plain_size

    @property
    def required_digests(self) -> set[str]:
        """Whole-payload digests `finish` needs ("sha256" for SIGNED payloads, and the
        algorithm of a trailing x-amz-checksum-* named in x-amz-trailer: "crc32",
        "crc32c", "crc64nvme", "sha1", "sha256")."""
        needed = {"sha256"} if self.mode is PayloadMode.SIGNED else set()
        for name in self._trailer_names:
            algorithm = checksums.algorithm_for_header(name)
            if algorithm is not None:
                needed.add(algorithm)
        return needed

    @property
    def trailers(self) -> dict[str, str]:
        """Trailing headers (lower-case names), available once `stream` is exhausted."""
        if self._decoder is None or not self._decoder.done:
            return {}
        return dict(self._decoder.trailers)

    def finish(self, digests: dict[str, bytes]) -> None:
        """After the body: check x-amz-content-sha256 and any trailing checksum against
        `digests` (algorithm -> raw digest), and the trailer signature."""
        if not self._streamed:
            raise RuntimeError("PayloadVerifier.finish() called before the body was fully streamed")
        missing = self.required_digests - digests.keys()
        if missing:
            raise RuntimeError(f"PayloadVerifier.finish() needs digests {sorted(missing)}")
        if self.mode is PayloadMode.SIGNED:
            assert self._payload_sha256 is not None
            computed = digests["sha256"].hex()
            if not hmac.compare_digest(computed, self._payload_sha256):
                raise S3Error(
                    "XAmzContentSHA256Mismatch",
                    fields={
                        "ClientComputedContentSHA256": self._payload_sha256,
                        "S3ComputedContentSHA256": computed,
                    },
                )
        trailers = self.trailers
        for name in self._trailer_names:
            algorithm = checksums.algorithm_for_header(name)
            if algorithm is None:
                continue
            try:
                claimed = checksums.from_header_value(algorithm, trailers[name])
            except ValueError:
                raise S3Error("InvalidRequest", f"Value for {name} trailing header is invalid.") from None
            if not hmac.compare_digest(claimed, digests[algorithm]):
                raise S3Error(
                    "BadDigest",
                    f"The {checksums.display_name(algorithm)} you specified did not match the calculated "
                    "checksum.",
                )
