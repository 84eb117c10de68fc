"""The console's SigV4 signer agrees with botocore's, byte for byte, and the S3 face accepts it."""

from __future__ import annotations

from datetime import UTC, datetime

import botocore.auth
import httpx
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from coffer.config import Settings
from coffer.console.s3client import loopback_base_url
from coffer.web.signer import (
    Credentials,
    body_hash,
    encode_query,
    encode_segment,
    object_path,
    sign_request,
)
from tests.support.console import allow_s3
from tests.support.harness import CofferServer
from tests.support.s3 import unique

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
CREDS = Credentials("CWABCDEFGHIJKLMN", "cwo1234567890abcdefghijklmnopqrstuvwxyz1234")
REGION = "US-EAST-04A"


def sign(
    credentials: Credentials,
    method: str,
    host: str,
    raw_path: str,
    raw_query: str,
    body: bytes,
    *,
    now: datetime | None = None,
) -> dict[str, str]:
    """sign_request() in REGION, with no headers of the caller's and the body's hash as the payload hash."""
    return sign_request(
        method=method,
        host=host,
        raw_path=raw_path,
        raw_query=raw_query,
        headers={},
        credentials=credentials,
        region=REGION,
        payload_hash=body_hash(body),
        now=now,
    )


@pytest.mark.parametrize(
    ("method", "bucket", "key", "query", "body"),
    [
        ("GET", None, None, [], b""),
        ("GET", "my-bucket", None, [("list-type", "2"), ("prefix", "a b/ü+"), ("delimiter", "/")], b""),
        ("PUT", "my-bucket", "dir/naïve résumé + notes (1).txt", [], b"hello"),
        ("GET", "my-bucket", "odd=key&with~chars*!", [("continuation-token", "YWJj/ZA==")], b""),
        ("POST", "my-bucket", "multi/part.bin", [("uploads", "")], b""),
        ("PUT", "my-bucket", "x", [("partNumber", "3"), ("uploadId", "u-1/2+3")], b"\x00\x01"),
    ],
)
def test_signature_matches_botocore(
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    bucket: str | None,
    key: str | None,
    query: list,
    body: bytes,
) -> None:
    raw_path = object_path(bucket, key)
    raw_query = encode_query(query)
    host = "127.0.0.1:8490"
    mine = sign(CREDS, method, host, raw_path, raw_query, body, now=NOW)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    url = f"http://{host}{raw_path}" + (f"?{raw_query}" if raw_query else "")
    request = AWSRequest(method=method, url=url, data=body)
    botocore.auth.S3SigV4Auth(BotoCredentials(CREDS.access_key_id, CREDS.secret_key), "s3", REGION).add_auth(
        request
    )
    assert mine["authorization"] == request.headers["Authorization"]
    assert mine["x-amz-date"] == request.headers["X-Amz-Date"]


def test_dot_segments_are_encoded() -> None:
    assert encode_segment(".") == "%2E"
    assert encode_segment("..") == "%2E%2E"
    assert object_path("b", "a/../c/./d") == "/b/a/%2E%2E/c/%2E/d"
    assert object_path("b", "a//b") == "/b/a//b"
    assert object_path("b", "k", virtual_host=True) == "/k"


def test_loopback_url_for_wildcard_binds() -> None:
    assert loopback_base_url(Settings(host="0.0.0.0", s3_port=9000)) == "http://127.0.0.1:9000"
    assert loopback_base_url(Settings(host="::", s3_port=9000)) == "http://[::1]:9000"
    assert loopback_base_url(Settings(host="10.1.2.3", s3_port=9000)) == "http://10.1.2.3:9000"
    assert loopback_base_url(Settings(host="fd00::5", s3_port=9000)) == "http://[fd00::5]:9000"


def test_the_s3_face_accepts_what_it_signs(server: CofferServer) -> None:
    """Odd keys, signed here and sent as-is, are stored under exactly that name."""
    allow_s3(server)
    minted = server.mint_key(duration=600)
    creds = Credentials(minted["accessKeyId"], minted["secretKey"])
    bucket = unique("signer")
    host = f"127.0.0.1:{server.s3_port}"

    def send(method: str, key: str | None, query: list[tuple[str, str]], body: bytes = b"") -> httpx.Response:
        raw_path, raw_query = object_path(bucket, key), encode_query(query)
        headers = sign(creds, method, host, raw_path, raw_query, body)
        url = server.s3_url + raw_path + (f"?{raw_query}" if raw_query else "")
        return httpx.request(method, url, headers=headers, content=body)

    assert send("PUT", None, []).status_code == 200
    keys = ["a/../b", "./x", "sp ace+plus=eq&amp", "ünï/cødé", "a//b"]
    for key in keys:
        r = send("PUT", key, [], key.encode())
        assert r.status_code == 200, r.text
    listing = send("GET", None, [("list-type", "2"), ("encoding-type", "url")])
    assert listing.status_code == 200
    for key in keys:
        got = send("GET", key, [])
        assert got.status_code == 200 and got.content == key.encode(), key
