"""Helpers for the signature tests (tests/unit): keys and keyrings, real botocore signers,
wire conversion, and an independent aws-chunked signer written from the AWS spec."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import random
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth, _host_from_url
from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials

from coffer import checksums
from coffer.errors import S3Error
from coffer.identity import ids
from coffer.identity.models import AccessKey, KeyCredentials, KeySource
from coffer.s3.sigv4 import AuthResult, PayloadVerifier, SignedRequest, authenticate

REGION = "us-east-04a"
ENDPOINT = "https://s3.test.local"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def make_creds(
    access_key_id: str = "CWTESTKEYAAAAAAA",
    secret: str = "cwo" + "s" * 40,
    *,
    token: str | None = None,
    expires_at: datetime | None = None,
    revoked: bool = False,
    suspended: bool = False,
) -> KeyCredentials:
    now = datetime.now(UTC)
    key = AccessKey(
        access_key_id=access_key_id,
        org_id="org0000001",
        principal_name="coreweave/user1",
        user_id="user1",
        source=KeySource.API_TOKEN,
        role=None,
        attributes={},
        multi_attributes={},
        created_at=now - timedelta(days=1),
        expires_at=expires_at,
        revoked_at=now - timedelta(minutes=1) if revoked else None,
        suspended=suspended,
        has_session_token=token is not None,
    )
    return KeyCredentials(
        key=key, secret_key=secret, session_token_hash=ids.hash_token(token) if token is not None else None
    )


@dataclass
class Keyring:
    """A `CredentialLookup` over a dict, counting lookups."""

    keys: dict[str, KeyCredentials] = field(default_factory=dict)
    calls: int = 0

    def add(self, creds: KeyCredentials) -> KeyCredentials:
        self.keys[creds.key.access_key_id] = creds
        return creds

    def __call__(self, access_key_id: str) -> KeyCredentials | None:
        self.calls += 1
        return self.keys.get(access_key_id)


def one_key_fixtures(access_key_id: str, secret: str) -> tuple[Any, Any]:
    """A test module's `keyring` (holding one key) and `alice` (that key's credentials)
    fixtures: `keyring, alice = one_key_fixtures(AKID, SECRET)`."""

    @pytest.fixture
    def keyring() -> Keyring:
        ring = Keyring()
        ring.add(make_creds(access_key_id, secret))
        return ring

    @pytest.fixture
    def alice(keyring: Keyring) -> KeyCredentials:
        return keyring.keys[access_key_id]

    return keyring, alice


def refused(request: SignedRequest, keyring: Keyring, code: str, **kwargs: Any) -> S3Error:
    """authenticate() must refuse `request` with S3 error `code`; the error."""
    with pytest.raises(S3Error) as info:
        authenticate(request, keyring, **kwargs)
    assert info.value.code == code, (info.value.code, info.value.message)
    return info.value


def boto_client(
    access_key_id: str,
    secret: str,
    *,
    token: str | None = None,
    endpoint: str = ENDPOINT,
    config: Config | None = None,
) -> Any:
    """A real boto3 S3 client (virtual-hosted style unless `config` says otherwise)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
        region_name=REGION,
        config=config or Config(s3={"addressing_style": "virtual"}, retries={"max_attempts": 1}),
    )


def botocreds(creds: KeyCredentials, token: str | None = None) -> Credentials:
    return Credentials(creds.key.access_key_id, creds.secret_key, token)


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def to_signed(
    request: AWSRequest | AWSPreparedRequest,
    *,
    raw_path: str | None = None,
    raw_query: str | None = None,
    vhost_bucket: str = "",
    extra_headers: Iterable[tuple[str, str]] = (),
) -> SignedRequest:
    """What the face would build from this request as it arrives over the wire."""
    prepared = request.prepare() if isinstance(request, AWSRequest) else request
    url = urlsplit(prepared.url)
    headers = [(k.lower(), _text(v)) for k, v in prepared.headers.items()]
    host = _host_from_url(prepared.url)
    if not any(name == "host" for name, _ in headers):
        headers.append(("host", host))
    headers.extend(extra_headers)
    return SignedRequest(
        method=prepared.method,
        raw_path=url.path if raw_path is None else raw_path,
        raw_query=url.query if raw_query is None else raw_query,
        headers=headers,
        host=host,
        secure=url.scheme == "https",
        vhost_bucket=vhost_bucket,
    )


def replace_header(signed: SignedRequest, name: str, value: str | None) -> SignedRequest:
    """The same request with one header changed (None removes it)."""
    headers = [(k, v) for k, v in signed.headers if k != name]
    if value is not None:
        headers.append((name, value))
    return SignedRequest(
        signed.method,
        signed.raw_path,
        signed.raw_query,
        headers,
        host=signed.host,
        secure=signed.secure,
        vhost_bucket=signed.vhost_bucket,
    )


class _ModeSigner(S3SigV4Auth):
    """botocore's S3 header signer with x-amz-content-sha256 set to a chosen value (a mode)."""

    def __init__(self, credentials: Credentials, mode: str) -> None:
        super().__init__(credentials, "s3", REGION)
        self._mode = mode

    def payload(self, request: AWSRequest) -> str:
        return self._mode


def header_signed(
    creds: KeyCredentials,
    method: str = "GET",
    path: str = "/bucket/key",
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    token: str | None = None,
    host: str = "s3.test.local",
    payload: str | None = None,
) -> AWSRequest:
    """A request signed in the Authorization header by botocore's S3SigV4Auth (with
    x-amz-content-sha256 forced to `payload` when given)."""
    url = f"http://{host}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method, url, headers=dict(headers or {}), data=body)
    if payload is None:
        S3SigV4Auth(botocreds(creds, token), "s3", REGION).add_auth(request)
    else:
        _ModeSigner(botocreds(creds, token), payload).add_auth(request)
    return request


# -- a real boto3 client that never touches the network ---------------------------------------
class _EmptyRaw:
    def stream(self, *args: Any, **kwargs: Any) -> Iterable[bytes]:
        yield b""


@dataclass
class Captured:
    request: AWSPreparedRequest
    body: bytes

    def signed(self, **kwargs: Any) -> SignedRequest:
        return to_signed(self.request, **kwargs)


@functools.lru_cache(maxsize=64)
def _client(
    access_key_id: str, secret: str, token: str | None, endpoint: str, config: Config | None
) -> tuple[Any, list[AWSPreparedRequest]]:
    """One boto3 client per identity and endpoint (building one costs tens of ms)."""
    captured: list[AWSPreparedRequest] = []

    def before_send(request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse:
        captured.append(request)
        return AWSResponse(request.url, 200, {"ETag": '"0"', "Content-Length": "0"}, _EmptyRaw())

    client = boto_client(access_key_id, secret, token=token, endpoint=endpoint, config=config)
    client.meta.events.register("before-send.s3.*", before_send)
    return client, captured


def client_capture(
    creds: KeyCredentials,
    call: Callable[[Any], Any],
    *,
    token: str | None = None,
    config: Config | None = None,
    endpoint: str = ENDPOINT,
) -> Captured:
    """Run one boto3 call and capture the request it would send (signed, body encoded)."""
    client, captured = _client(creds.key.access_key_id, creds.secret_key, token, endpoint, config)
    captured.clear()
    try:
        call(client)
    except Exception:  # the fake 200 may not parse as this operation's answer; the request is what we want
        if not captured:
            raise
    request = captured[-1]
    body = request.body
    if body is None:
        data = b""
    elif isinstance(body, bytes | bytearray):
        data = bytes(body)
    elif isinstance(body, str):
        data = body.encode()
    else:
        data = body.read()
    return Captured(request, data)


def presigned_url(
    creds: KeyCredentials, method: str, params: dict[str, Any], expires: int = 3600, token: str | None = None
) -> str:
    config = Config(s3={"addressing_style": "virtual"}, signature_version="s3v4")
    client = boto_client(creds.key.access_key_id, creds.secret_key, token=token, config=config)
    return client.generate_presigned_url(method, Params=params, ExpiresIn=expires)


def url_request(url: str, method: str = "GET", headers: Iterable[tuple[str, str]] = ()) -> SignedRequest:
    """A plain HTTP client (curl, a browser) fetching a URL: only Host and its own headers."""
    parts = urlsplit(url)
    host = parts.netloc
    return SignedRequest(
        method=method,
        raw_path=parts.path,
        raw_query=parts.query,
        headers=[("host", host), ("user-agent", "curl/8.5.0"), ("accept", "*/*"), *headers],
        host=host,
        secure=parts.scheme == "https",
    )


# -- aws-chunked, signed: an independent signer written from the AWS documentation --------------
def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def derive_key(secret: str, date: str, region: str = REGION) -> bytes:
    key = _hmac(("AWS4" + secret).encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, "s3")
    return _hmac(key, "aws4_request")


@dataclass
class SignedStream:
    request: SignedRequest
    amz_date: str
    scope: str
    seed: str
    key: bytes


def start_signed_stream(
    creds: KeyCredentials,
    mode: str,
    decoded_length: int | None,
    *,
    trailer: str | None = None,
    path: str = "/bucket/object.bin",
) -> SignedStream:
    """The headers of a streaming upload, signed by botocore; the seed is its signature."""
    headers = {"Content-Encoding": "aws-chunked"}
    if decoded_length is not None:
        headers["X-Amz-Decoded-Content-Length"] = str(decoded_length)
    if trailer:
        headers["X-Amz-Trailer"] = trailer
    request = AWSRequest("PUT", f"http://s3.test.local{path}", headers=headers)
    _ModeSigner(botocreds(creds), mode).add_auth(request)
    authorization = request.headers["Authorization"]
    seed = authorization.rsplit("Signature=", 1)[1]
    amz_date = request.headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    return SignedStream(to_signed(request), amz_date, scope, seed, derive_key(creds.secret_key, amz_date[:8]))


def chunk_signature(stream: SignedStream, previous: str, chunk: bytes) -> str:
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256-PAYLOAD",
            stream.amz_date,
            stream.scope,
            previous,
            EMPTY_SHA256,
            hashlib.sha256(chunk).hexdigest(),
        ]
    )
    return hmac.new(stream.key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def trailer_signature(stream: SignedStream, previous: str, trailers: list[tuple[str, str]]) -> str:
    canonical = "".join(f"{name}:{value}\n" for name, value in trailers)
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256-TRAILER",
            stream.amz_date,
            stream.scope,
            previous,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    return hmac.new(stream.key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def signed_chunks(
    stream: SignedStream, chunks: list[bytes], *, trailers: list[tuple[str, str]] | None = None
) -> tuple[list[bytes], list[str]]:
    """Frame each chunk (and the final empty one) with its chained signature.

    Returns the framed pieces and the signatures, last one the final chunk's."""
    previous = stream.seed
    framed: list[bytes] = []
    signatures: list[str] = []
    for chunk in [*chunks, b""]:
        signature = chunk_signature(stream, previous, chunk)
        signatures.append(signature)
        piece = f"{len(chunk):x};chunk-signature={signature}\r\n".encode() + chunk
        framed.append(piece + b"\r\n" if chunk else piece)
        previous = signature
    if trailers is None:
        framed.append(b"\r\n")
    else:
        block = b"".join(f"{name}:{value}\r\n".encode() for name, value in trailers)
        sig = trailer_signature(stream, previous, trailers)
        framed.append(block + f"x-amz-trailer-signature:{sig}\r\n\r\n".encode())
    return framed, signatures


# -- feeding bodies -----------------------------------------------------------------------------
def split_randomly(data: bytes, seed: int, max_piece: int = 97) -> list[bytes]:
    """Cut bytes at arbitrary places, including inside size lines and CRLFs."""
    rng = random.Random(seed)
    pieces: list[bytes] = []
    pos = 0
    while pos < len(data):
        n = rng.randint(1, max_piece)
        pieces.append(data[pos : pos + n])
        pos += n
    return pieces


async def _aiter(pieces: Iterable[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def run_payload(
    auth: AuthResult | None, request: SignedRequest, pieces: Iterable[bytes], *, finish: bool = True
) -> tuple[bytes, PayloadVerifier]:
    """Stream a body through a PayloadVerifier, hash what comes out, and call finish()."""
    verifier = PayloadVerifier(auth, request)

    async def consume() -> bytes:
        out = bytearray()
        async for piece in verifier.stream(_aiter(pieces)):
            assert isinstance(piece, bytes)
            out += piece
        return bytes(out)

    decoded = asyncio.run(consume())
    if finish:
        verifier.finish({name: checksums.compute(name, decoded) for name in verifier.required_digests})
    return decoded, verifier


def auth_of(request: SignedRequest, keyring: Keyring, **kwargs: Any) -> AuthResult:
    result = authenticate(request, keyring, **kwargs)
    assert result is not None
    return result
