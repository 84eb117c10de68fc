"""S3Request parsing: addressing, key decoding, query, copy source (pure, no server)."""

from __future__ import annotations

from typing import Any

import pytest

from coffer.config import Settings
from coffer.errors import S3Error
from coffer.s3.request import S3Request, parse_query


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def make(
    raw_path: bytes, *, host: str = "127.0.0.1:9000", query: bytes = b"", domain: str = "", **headers: str
) -> S3Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": raw_path.decode("latin-1"),
        "raw_path": raw_path,
        "query_string": query,
        "headers": [(b"host", host.encode())]
        + [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5555),
    }
    return S3Request(scope, _receive, Settings(s3_domain=domain), "RID")


def test_path_style() -> None:
    r = make(b"/bucket/a/b%20c/%E2%82%AC+plus")
    assert (r.bucket, r.key, r.path_style) == ("bucket", "a/b c/€+plus", True)
    assert r.raw_path == "/bucket/a/b%20c/%E2%82%AC+plus"


def test_path_style_bucket_only_and_service() -> None:
    assert (make(b"/bucket").bucket, make(b"/bucket").key) == ("bucket", None)
    assert (make(b"/bucket/").bucket, make(b"/bucket/").key) == ("bucket", None)
    assert (make(b"/").bucket, make(b"/").key) == (None, None)
    assert make(b"/bucket//lead").key == "/lead"


def test_virtual_host_style_ignores_port_and_case() -> None:
    r = make(b"/dir/file.txt", host="My-Bucket.S3.Example.com:8490", domain="s3.example.com")
    assert (r.bucket, r.key, r.path_style) == ("my-bucket", "dir/file.txt", False)
    root = make(b"/", host="s3.example.com:8490", domain="s3.example.com")
    assert (root.bucket, root.key, root.path_style) == (None, None, True)
    other = make(b"/b/k", host="127.0.0.1:8490", domain="s3.example.com")
    assert (other.bucket, other.key, other.path_style) == ("b", "k", True)


def test_invalid_utf8_key_is_invalid_uri() -> None:
    with pytest.raises(S3Error) as err:
        make(b"/bucket/%FF%FE")
    assert err.value.code == "InvalidURI"


def test_query_flags_and_plus() -> None:
    query, flags = parse_query("uploads&prefix=a+b%2Fc&max-keys=5&prefix=ignored&empty=")
    assert query == {"uploads": "", "prefix": "a b/c", "max-keys": "5", "empty": ""}
    assert flags == frozenset({"uploads"})


def test_copy_source_forms() -> None:
    r = make(b"/b/k", x_amz_copy_source="/src/dir/a%20b.txt?versionId=v1")
    ref = r.copy_source()
    assert ref is not None and (ref.bucket, ref.key, ref.version_id) == ("src", "dir/a b.txt", "v1")
    ref2 = make(b"/b/k", x_amz_copy_source="src/k%3Fq").copy_source()
    assert ref2 is not None and (ref2.bucket, ref2.key, ref2.version_id) == ("src", "k?q", None)
    with pytest.raises(S3Error) as err:
        make(b"/b/k", x_amz_copy_source="/only-bucket").copy_source()
    assert err.value.code == "InvalidArgument"


def test_signed_request_keeps_wire_forms() -> None:
    r = make(b"/b/a%2Fb", query=b"prefix=x%20y&list-type=2", x_amz_date="20250101T000000Z")
    s = r.signed()
    assert s.raw_path == "/b/a%2Fb" and s.raw_query == "prefix=x%20y&list-type=2"
    assert ("x-amz-date", "20250101T000000Z") in s.headers and s.host == "127.0.0.1:9000"
    assert s.source_ip == "127.0.0.1"


def test_content_length_must_be_a_number() -> None:
    with pytest.raises(S3Error) as err:
        _ = make(b"/b/k", content_length="12x").content_length
    assert err.value.code == "InvalidArgument"
