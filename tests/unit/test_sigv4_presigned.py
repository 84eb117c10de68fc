"""Presigned URLs (SigV4 query authentication), made by boto3's generate_presigned_url."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest

from coffer.s3.sigv4 import PayloadMode
from tests.support.sigv4 import (
    Keyring,
    auth_of,
    botocreds,
    make_creds,
    one_key_fixtures,
    presigned_url,
    refused,
    to_signed,
    url_request,
)

SECRET = "cwo" + "p9" * 20
AKID = "CWPRESIGNAAAAAAA"


keyring, alice = one_key_fixtures(AKID, SECRET)


def with_param(url: str, name: str, value: str | None) -> str:
    """The URL with one query parameter replaced (None drops it), order kept."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    out = [(k, value if k == name else v) for k, v in pairs if not (k == name and value is None)]
    return parts._replace(query=urlencode(out, quote_via=quote, safe="")).geturl()


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("get_object", {"Bucket": "bkt", "Key": "reports/q1.pdf"}),
        (
            "get_object",
            {"Bucket": "bkt", "Key": "sp ace+plus~tilde/ünï/%/a=b", "ResponseContentType": "text/plain"},
        ),
        ("put_object", {"Bucket": "bkt", "Key": "upload.bin"}),
        ("list_objects_v2", {"Bucket": "bkt", "Prefix": "a b/"}),
        ("head_object", {"Bucket": "bkt", "Key": "k", "VersionId": "v1+/="}),
    ],
)
def test_presigned_urls_verify(keyring: Keyring, alice: Any, method: str, params: dict[str, str]) -> None:
    url = presigned_url(alice, method, params, expires=600)
    http_method = {"put_object": "PUT", "head_object": "HEAD"}.get(method, "GET")
    result = auth_of(url_request(url, http_method), keyring)
    assert result.presigned and result.signature_version == 4
    assert result.access_key_id == AKID
    assert result.payload_mode is PayloadMode.UNSIGNED
    assert result.seed_signature == dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]


def test_presigned_with_signed_header(keyring: Keyring, alice: Any) -> None:
    request = AWSRequest("PUT", "http://s3.test.local/bkt/k", headers={"x-amz-acl": "private"})
    S3SigV4QueryAuth(botocreds(alice), "s3", "r", expires=60).add_auth(request)
    signed = to_signed(request)
    assert "x-amz-acl" in urlsplit(request.url).query.lower() or ("x-amz-acl", "private") in signed.headers
    auth_of(signed, keyring)


def test_presigned_tampered(keyring: Keyring, alice: Any) -> None:
    url = presigned_url(alice, "get_object", {"Bucket": "bkt", "Key": "mine"})
    refused(url_request(url.replace("/mine?", "/yours?")), keyring, "SignatureDoesNotMatch")
    refused(url_request(url, "DELETE"), keyring, "SignatureDoesNotMatch")
    refused(url_request(url + "&versionId=1"), keyring, "SignatureDoesNotMatch")
    refused(url_request(with_param(url, "X-Amz-Expires", "3599")), keyring, "SignatureDoesNotMatch")
    sig = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    refused(url_request(with_param(url, "X-Amz-Signature", flipped)), keyring, "SignatureDoesNotMatch")


def test_presigned_wrong_secret(keyring: Keyring) -> None:
    url = presigned_url(make_creds(AKID, "cwo" + "x" * 40), "get_object", {"Bucket": "b", "Key": "k"})
    refused(url_request(url), keyring, "SignatureDoesNotMatch")


def test_presigned_unsigned_amz_header(keyring: Keyring, alice: Any) -> None:
    url = presigned_url(alice, "put_object", {"Bucket": "bkt", "Key": "k"})
    error = refused(url_request(url, "PUT", [("x-amz-acl", "public-read")]), keyring, "AccessDenied")
    assert error.fields["HeadersNotSigned"] == "x-amz-acl"


def test_presigned_expired(keyring: Keyring, alice: Any) -> None:
    url = presigned_url(alice, "get_object", {"Bucket": "b", "Key": "k"}, expires=60)
    request = url_request(url)
    auth_of(request, keyring, now=datetime.now(UTC) + timedelta(seconds=30))
    error = refused(request, keyring, "AccessDenied", now=datetime.now(UTC) + timedelta(seconds=90))
    assert error.message == "Request has expired"
    assert error.status == 403
    assert error.fields["X-Amz-Expires"] == "60"


def test_presigned_not_yet_valid(keyring: Keyring, alice: Any) -> None:
    url = presigned_url(alice, "get_object", {"Bucket": "b", "Key": "k"}, expires=3600)
    request = url_request(url)
    auth_of(request, keyring, now=datetime.now(UTC) - timedelta(minutes=14))
    error = refused(request, keyring, "AccessDenied", now=datetime.now(UTC) - timedelta(minutes=16))
    assert error.message == "Request is not valid yet"


def test_presigned_max_expiry_accepted(keyring: Keyring, alice: Any) -> None:
    url = presigned_url(alice, "get_object", {"Bucket": "b", "Key": "k"}, expires=604800)
    auth_of(url_request(url), keyring, now=datetime.now(UTC) + timedelta(days=6, hours=23))


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("0", "at least 1"),
        ("604801", "less than a week"),
        ("-7", "non-negative"),
        ("abc", "should be a number"),
        ("", "should be a number"),
        ("1e3", "should be a number"),
    ],
)
def test_presigned_expires_out_of_range(keyring: Keyring, alice: Any, value: str, fragment: str) -> None:
    url = presigned_url(alice, "get_object", {"Bucket": "b", "Key": "k"})
    error = refused(
        url_request(with_param(url, "X-Amz-Expires", value)), keyring, "AuthorizationQueryParametersError"
    )
    assert fragment in error.message
    assert error.status == 400
    assert keyring.calls == 0


def test_presigned_via_botocore_expires_limits(keyring: Keyring, alice: Any) -> None:
    for expires in (0, 604801):
        request = AWSRequest("GET", "http://s3.test.local/b/k")
        S3SigV4QueryAuth(botocreds(alice), "s3", "r", expires=expires).add_auth(request)
        refused(to_signed(request), keyring, "AuthorizationQueryParametersError")


@pytest.mark.parametrize(
    "param",
    [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-SignedHeaders",
        "X-Amz-Expires",
        "X-Amz-Signature",
    ],
)
def test_presigned_missing_parameter(keyring: Keyring, alice: Any, param: str) -> None:
    url = presigned_url(alice, "get_object", {"Bucket": "b", "Key": "k"})
    error = refused(url_request(with_param(url, param, None)), keyring, "AuthorizationQueryParametersError")
    assert "requires the X-Amz-Algorithm" in error.message


@pytest.mark.parametrize(
    ("param", "value", "fragment"),
    [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA1", "only supports"),
        ("X-Amz-Credential", "CWPRESIGNAAAAAAA/20250101/r/s3", "mal-formed"),
        ("X-Amz-Credential", "{akid}/{date}/r/iam/aws4_request", 'incorrect service "iam"'),
        ("X-Amz-Credential", "{akid}/{date}/r/s3/aws4_req", "incorrect terminal"),
        ("X-Amz-Credential", "{akid}/20000101/r/s3/aws4_request", "not the same as X-Amz-Date"),
        ("X-Amz-Date", "2025-01-01T00:00:00Z", "ISO8601"),
        ("X-Amz-Date", "20250230T000000Z", "ISO8601"),
    ],
)
def test_presigned_malformed(keyring: Keyring, alice: Any, param: str, value: str, fragment: str) -> None:
    url = presigned_url(alice, "get_object", {"Bucket": "b", "Key": "k"})
    date = dict(parse_qsl(urlsplit(url).query))["X-Amz-Date"][:8]
    value = value.format(akid=AKID, date=date)
    error = refused(url_request(with_param(url, param, value)), keyring, "AuthorizationQueryParametersError")
    assert fragment in error.message


def test_presigned_host_must_be_signed(keyring: Keyring, alice: Any) -> None:
    url = presigned_url(alice, "get_object", {"Bucket": "b", "Key": "k"})
    error = refused(
        url_request(with_param(url, "X-Amz-SignedHeaders", "x-amz-date")), keyring, "AccessDenied"
    )
    assert error.fields["HeadersNotSigned"] == "host"


def test_presigned_key_standing(keyring: Keyring) -> None:
    unknown = make_creds("CWUNKNOWNAAAAAAA", SECRET)
    refused(
        url_request(presigned_url(unknown, "get_object", {"Bucket": "b", "Key": "k"})),
        keyring,
        "InvalidAccessKeyId",
    )
    revoked = keyring.add(make_creds("CWREVOKEDAAAAAAA", SECRET, revoked=True))
    refused(
        url_request(presigned_url(revoked, "get_object", {"Bucket": "b", "Key": "k"})),
        keyring,
        "InvalidAccessKeyId",
    )
    expired = keyring.add(
        make_creds("CWEXPIREDAAAAAAA", SECRET, expires_at=datetime.now(UTC) - timedelta(seconds=5))
    )
    refused(
        url_request(presigned_url(expired, "get_object", {"Bucket": "b", "Key": "k"})),
        keyring,
        "ExpiredToken",
    )
    suspended = keyring.add(make_creds("CWSUSPENDAAAAAAA", SECRET, suspended=True))
    error = refused(
        url_request(presigned_url(suspended, "get_object", {"Bucket": "b", "Key": "k"})),
        keyring,
        "AccessDenied",
    )
    assert "suspended" in error.message


def test_presigned_session_tokens(keyring: Keyring, alice: Any) -> None:
    temp = keyring.add(make_creds("CWSESSIONAAAAAAA", SECRET, token="tok/with+odd=chars"))
    params = {"Bucket": "b", "Key": "k"}
    url = presigned_url(temp, "get_object", params, token="tok/with+odd=chars")
    assert "X-Amz-Security-Token" in url
    auth_of(url_request(url), keyring)
    refused(url_request(presigned_url(temp, "get_object", params)), keyring, "InvalidToken")
    refused(
        url_request(presigned_url(temp, "get_object", params, token="tok-wrong")), keyring, "InvalidToken"
    )
    refused(
        url_request(presigned_url(alice, "get_object", params, token="unexpected")), keyring, "InvalidToken"
    )


def test_presigned_empty_session_token_counts_as_none(keyring: Keyring, alice: Any) -> None:
    """botocore writes X-Amz-Security-Token= for credentials whose token is ""."""
    request = AWSRequest("GET", "http://s3.test.local/b/k")
    S3SigV4QueryAuth(botocreds(alice, token=""), "s3", "r", expires=60).add_auth(request)
    assert "X-Amz-Security-Token=&" in request.url
    auth_of(to_signed(request), keyring)


def test_presigned_content_sha256_parameter(keyring: Keyring, alice: Any) -> None:
    """The JavaScript SDK hoists x-amz-content-sha256 into the query."""
    request = AWSRequest("PUT", "http://s3.test.local/b/k?X-Amz-Content-Sha256=UNSIGNED-PAYLOAD")
    S3SigV4QueryAuth(botocreds(alice), "s3", "r", expires=60).add_auth(request)
    assert auth_of(to_signed(request), keyring).payload_mode is PayloadMode.UNSIGNED
