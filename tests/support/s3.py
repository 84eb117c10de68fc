"""S3 client helpers: boto3 clients, raw signed requests, names, S3 error checks.

Virtual-hosted style needs `<bucket>.localhost` to resolve. RFC 6761 says every
`*.localhost` name is loopback, and systemd-resolved and browsers honour that, but glibc
alone does not (checked on this machine: getaddrinfo fails). `localhost_subdomains()`
makes the test process resolve them to 127.0.0.1, exactly what a resolver following RFC
6761 does; clients still open real sockets and send the real Host header.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from tests.support.harness import CofferServer

REGION = "us-east-04a"
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def s3_client(
    server: CofferServer,
    key: dict[str, Any] | None = None,
    *,
    addressing_style: str = "path",
    endpoint: str | None = None,
    **config: Any,
) -> Any:
    """A boto3 S3 client for `key` (a minted key's JSON), with the SDK's default checksums."""
    key = key or server.mint_key()
    cfg = Config(
        s3={"addressing_style": addressing_style},
        retries={"max_attempts": 1, "mode": "standard"},
        **config,
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint or server.s3_url,
        aws_access_key_id=key["accessKeyId"],
        aws_secret_access_key=key["secretKey"],
        region_name=REGION,
        config=cfg,
        verify=str(server.ca_file) if server.ca_file else None,
    )


def unique(prefix: str = "b") -> str:
    """A fresh, valid bucket name (tests in one module share a server)."""
    return f"{prefix}-{secrets.token_hex(5)}"


def new_bucket(client: Any, prefix: str = "b", *, versioned: bool = False, **kw: Any) -> str:
    """Create a bucket with a fresh name through a boto3 client (`kw`: create_bucket's other
    arguments), with versioning enabled if asked; return the name."""
    name = unique(prefix)
    client.create_bucket(Bucket=name, **kw)
    if versioned:
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def bucket_fixture(name: str, prefix: str, *, versioned: bool = False) -> Any:
    """A module-scoped fixture `name`: a new bucket of the module's `s3` client, shared by the
    module's tests (`bucket = bucket_fixture("bucket", "copy")` at module level)."""

    @pytest.fixture(scope="module", name=name)
    def fixture(s3: Any) -> str:
        return new_bucket(s3, prefix, versioned=versioned)

    return fixture


def signed(
    server: CofferServer,
    key: dict[str, Any],
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    query: str = "",
    payload_hash: str | None = None,
    client: httpx.Client | None = None,
) -> httpx.Response:
    """A request signed by botocore's SigV4 signer and sent with httpx (through `client` if
    given: building a client per call costs an SSL context): for the cases an SDK will not
    produce (missing headers, wrong lengths)."""
    url = server.s3_url + path + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    creds = Credentials(key["accessKeyId"], key["secretKey"])
    signer = S3SigV4Auth(creds, "s3", REGION)
    if payload_hash is not None:
        signer.payload = lambda _request: payload_hash
    signer.add_auth(request)
    prepared = request.prepare()
    send = client.request if client is not None else httpx.request
    return send(method, url, content=body, headers=dict(prepared.headers.items()), timeout=30)


def assert_s3_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert f"<Code>{code}</Code>" in response.text, response.text
    assert response.headers.get("x-amz-request-id")
    assert response.headers.get("x-amz-id-2")


def client_error(exc: BaseException) -> tuple[int, str]:
    """(HTTP status, S3 error code) of a botocore ClientError."""
    resp = exc.response  # type: ignore[attr-defined]
    return resp["ResponseMetadata"]["HTTPStatusCode"], resp["Error"]["Code"]


@contextlib.contextmanager
def localhost_subdomains() -> Iterator[None]:
    """Resolve `*.localhost` to 127.0.0.1 in this process (RFC 6761 §6.3)."""
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.lower().endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    socket.getaddrinfo = resolve
    try:
        yield
    finally:
        socket.getaddrinfo = real


def host_of(url: str) -> str:
    return urlsplit(url).netloc
