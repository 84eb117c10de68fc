"""SigV4 in the Authorization header: real botocore-signed requests verify; every tamper,
bad key state and malformed header is refused with the code AWS gives."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest

from coffer.s3.sigv4 import PayloadMode, SignedRequest, authenticate
from tests.support.sigv4 import (
    Keyring,
    auth_of,
    botocreds,
    client_capture,
    header_signed,
    make_creds,
    one_key_fixtures,
    refused,
    replace_header,
    to_signed,
)

SECRET = "cwo" + "a1" * 20


keyring, alice = one_key_fixtures("CWALICEAAAAAAAAA", SECRET)


# -- real clients ------------------------------------------------------------------------------
CALLS = {
    "get_object": lambda c: c.get_object(Bucket="bkt", Key="photos/cat.jpg"),
    "get_object_range": lambda c: c.get_object(Bucket="bkt", Key="a", Range="bytes=0-9"),
    "put_object": lambda c: c.put_object(Bucket="bkt", Key="k", Body=b"hello", Metadata={"owner": "a  b"}),
    "list_objects_v2": lambda c: c.list_objects_v2(Bucket="bkt", Prefix="logs/2025 01/é+x", MaxKeys=5),
    "head_bucket": lambda c: c.head_bucket(Bucket="bkt"),
    "list_buckets": lambda c: c.list_buckets(),
    "create_multipart_upload": lambda c: c.create_multipart_upload(Bucket="bkt", Key="big"),
    "upload_part": lambda c: c.upload_part(
        Bucket="bkt", Key="big", UploadId="u/1+2=", PartNumber=2, Body=b"x"
    ),
    "delete_objects": lambda c: c.delete_objects(
        Bucket="bkt", Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]}
    ),
    "copy_object": lambda c: c.copy_object(
        Bucket="bkt", Key="dst", CopySource={"Bucket": "src", "Key": "a b"}
    ),
    "put_bucket_tagging": lambda c: c.put_bucket_tagging(
        Bucket="bkt", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]}
    ),
}


@pytest.mark.parametrize("endpoint", ["http://s3.test.local:8080", "https://s3.test.local"])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_real_boto3_requests_verify(keyring: Keyring, alice: Any, name: str, endpoint: str) -> None:
    captured = client_capture(alice, CALLS[name], endpoint=endpoint)
    result = auth_of(captured.signed(), keyring)
    assert result.access_key_id == "CWALICEAAAAAAAAA"
    assert result.signature_version == 4 and not result.presigned
    assert result.credentials is alice
    content = captured.request.headers["x-amz-content-sha256"]
    content = content.decode() if isinstance(content, bytes) else content
    if result.payload_mode is PayloadMode.SIGNED:
        assert result.payload_sha256 == hashlib.sha256(captured.body).hexdigest() == content
    else:
        assert result.payload_mode.value == content


@pytest.mark.parametrize(
    "key",
    [
        "with space",
        "plus+sign",
        "tilde~",
        "ünïcødé/日本語",
        "100%",
        "double//slash",
        "a=b&c",
        "end/",
        "*()!'$,;:@",
    ],
)
def test_awkward_keys_verify(keyring: Keyring, alice: Any, key: str) -> None:
    captured = client_capture(alice, lambda c: c.get_object(Bucket="bkt", Key=key))
    assert auth_of(captured.signed(), keyring).access_key_id == "CWALICEAAAAAAAAA"


def test_raw_utf8_and_overencoded_paths_verify(keyring: Keyring, alice: Any) -> None:
    """A client that signs the canonical form but sends the path differently encoded."""
    request = header_signed(alice, path="/bkt/caf%C3%A9%20au%20lait~%3Dx")
    signed = to_signed(request)
    auth_of(signed, keyring)
    raw_utf8 = "/bkt/café au lait~=x".encode().decode("latin-1")  # raw bytes on the wire
    auth_of(to_signed(request, raw_path=raw_utf8), keyring)
    auth_of(to_signed(request, raw_path="/bkt/caf%c3%a9%20au%20lait%7E%3dx"), keyring)
    # %2F inside a segment is not the same as '/': the canonical URI keeps it apart.
    refused(
        to_signed(request, raw_path="/bkt%2Fcaf%C3%A9%20au%20lait~%3Dx"), keyring, "SignatureDoesNotMatch"
    )


def test_literal_url_signers_verify(keyring: Keyring, alice: Any) -> None:
    """botocore hashes a hand-written URL's path and query verbatim; those verify too."""
    request = header_signed(alice, path="/bkt/a=b,c", query="prefix=x+y&delimiter=/")
    assert auth_of(to_signed(request), keyring).access_key_id == "CWALICEAAAAAAAAA"


def test_date_header_instead_of_x_amz_date(keyring: Keyring, alice: Any) -> None:
    request = AWSRequest("GET", "http://s3.test.local/bkt/k", headers={"Date": "placeholder"})
    S3SigV4Auth(botocreds(alice), "s3", "any-region").add_auth(request)
    assert "X-Amz-Date" not in request.headers
    result = auth_of(to_signed(request), keyring)
    assert abs(result.request_time - datetime.now(UTC)) < timedelta(minutes=1)


def test_any_region_is_accepted(keyring: Keyring, alice: Any) -> None:
    for region in ["US-EAST-04A", "notempty", "us-east-1"]:
        request = AWSRequest("GET", "http://s3.test.local/bkt/k")
        S3SigV4Auth(botocreds(alice), "s3", region).add_auth(request)
        assert auth_of(to_signed(request), keyring).scope.split("/")[1] == region


def test_repeated_and_padded_headers_fold_like_botocore(keyring: Keyring, alice: Any) -> None:
    request = AWSRequest("PUT", "http://s3.test.local/bkt/k", data=b"")
    request.headers["x-amz-meta-a"] = "  one   two  "
    request.headers["x-amz-meta-b"] = "first"
    request.headers["x-amz-meta-b"] = " second "  # HTTPHeaders appends: two values on the wire
    request.headers["x-amz-meta-c"] = "tab\there"
    S3SigV4Auth(botocreds(alice), "s3", "r").add_auth(request)
    headers = [(k.lower(), v) for k, v in request.headers.items()] + [("host", "s3.test.local")]
    assert sum(1 for k, _ in headers if k == "x-amz-meta-b") == 2
    signed = SignedRequest("PUT", "/bkt/k", "", headers, host="s3.test.local")
    auth_of(signed, keyring)


def test_anonymous_request_is_none_without_lookup(keyring: Keyring) -> None:
    request = SignedRequest("GET", "/bkt/k", "prefix=a%2Fb&X-Amz-Meta=1", [("host", "s3.test.local")])
    assert authenticate(request, keyring) is None
    assert keyring.calls == 0


def test_result_carries_streaming_seed_material(keyring: Keyring, alice: Any) -> None:
    request = header_signed(alice)
    result = auth_of(to_signed(request), keyring)
    assert result.seed_signature == request.headers["Authorization"].rsplit("Signature=", 1)[1]
    assert result.amz_date == request.headers["X-Amz-Date"]
    assert result.scope == f"{result.amz_date[:8]}/us-east-04a/s3/aws4_request"
    assert len(result.signing_key) == 32


# -- tampering -----------------------------------------------------------------------------------
def test_wrong_secret(keyring: Keyring, alice: Any) -> None:
    impostor = make_creds("CWALICEAAAAAAAAA", "cwo" + "z" * 40)
    error = refused(to_signed(header_signed(impostor)), keyring, "SignatureDoesNotMatch")
    assert error.status == 403
    assert error.fields["AWSAccessKeyId"] == "CWALICEAAAAAAAAA"
    assert error.fields["StringToSign"].startswith("AWS4-HMAC-SHA256\n")
    assert SECRET not in str(error.fields)


def test_tampered_header(keyring: Keyring, alice: Any) -> None:
    request = to_signed(header_signed(alice, "PUT", headers={"x-amz-meta-owner": "alice"}))
    refused(replace_header(request, "x-amz-meta-owner", "mallory"), keyring, "SignatureDoesNotMatch")


def test_tampered_range_header(keyring: Keyring, alice: Any) -> None:
    request = to_signed(header_signed(alice, headers={"Range": "bytes=0-9"}))
    refused(replace_header(request, "range", "bytes=0-999"), keyring, "SignatureDoesNotMatch")


def test_tampered_query(keyring: Keyring, alice: Any) -> None:
    request = header_signed(alice, query="versionId=v1")
    refused(to_signed(request, raw_query="versionId=v2"), keyring, "SignatureDoesNotMatch")
    refused(to_signed(request, raw_query="versionId=v1&acl"), keyring, "SignatureDoesNotMatch")
    refused(to_signed(request, raw_query=""), keyring, "SignatureDoesNotMatch")


def test_tampered_path(keyring: Keyring, alice: Any) -> None:
    request = header_signed(alice, path="/bkt/mine")
    refused(to_signed(request, raw_path="/bkt/yours"), keyring, "SignatureDoesNotMatch")
    refused(to_signed(request, raw_path="/bkt//mine"), keyring, "SignatureDoesNotMatch")


def test_tampered_method(keyring: Keyring, alice: Any) -> None:
    signed = to_signed(header_signed(alice, "GET"))
    forged = SignedRequest("DELETE", signed.raw_path, signed.raw_query, signed.headers, host=signed.host)
    refused(forged, keyring, "SignatureDoesNotMatch")


def test_tampered_payload_hash(keyring: Keyring, alice: Any) -> None:
    signed = to_signed(header_signed(alice, "PUT", body=b"original"))
    forged = replace_header(signed, "x-amz-content-sha256", hashlib.sha256(b"forged").hexdigest())
    refused(forged, keyring, "SignatureDoesNotMatch")


def test_unsigned_extra_amz_header(keyring: Keyring, alice: Any) -> None:
    signed = to_signed(header_signed(alice, "PUT"))
    smuggled = SignedRequest(
        "PUT", signed.raw_path, "", [*signed.headers, ("x-amz-acl", "public-read")], host=signed.host
    )
    error = refused(smuggled, keyring, "AccessDenied")
    assert error.fields["HeadersNotSigned"] == "x-amz-acl"
    # a non-x-amz header that was not signed is fine (proxies add those)
    extra = SignedRequest(
        "PUT", signed.raw_path, "", [*signed.headers, ("via", "1.1 proxy")], host=signed.host
    )
    auth_of(extra, keyring)


def test_host_must_be_signed(keyring: Keyring, alice: Any) -> None:
    signed = to_signed(header_signed(alice))
    authorization = dict(signed.headers)["authorization"].replace("SignedHeaders=host;", "SignedHeaders=")
    error = refused(replace_header(signed, "authorization", authorization), keyring, "AccessDenied")
    assert error.fields["HeadersNotSigned"] == "host"


def test_signature_case_and_length_do_not_pass(keyring: Keyring, alice: Any) -> None:
    signed = to_signed(header_signed(alice))
    authorization = dict(signed.headers)["authorization"]
    head, signature = authorization.rsplit("Signature=", 1)
    for forged in [signature[:-1], signature + "0", signature.upper(), "ü" * 64]:
        refused(
            replace_header(signed, "authorization", head + "Signature=" + forged),
            keyring,
            "SignatureDoesNotMatch",
        )


# -- time --------------------------------------------------------------------------------------
@pytest.mark.parametrize("offset", [timedelta(minutes=16), -timedelta(minutes=16), timedelta(days=2)])
def test_clock_skew_refused(keyring: Keyring, alice: Any, offset: timedelta) -> None:
    signed = to_signed(header_signed(alice))
    error = refused(signed, keyring, "RequestTimeTooSkewed", now=datetime.now(UTC) + offset)
    assert error.status == 403
    assert error.fields["MaxAllowedSkewMilliseconds"] == "900000"


@pytest.mark.parametrize("offset", [timedelta(minutes=14), -timedelta(minutes=14)])
def test_clock_skew_within_limit(keyring: Keyring, alice: Any, offset: timedelta) -> None:
    auth_of(to_signed(header_signed(alice)), keyring, now=datetime.now(UTC) + offset)


def test_missing_or_bad_date(keyring: Keyring, alice: Any) -> None:
    signed = to_signed(header_signed(alice))
    error = refused(replace_header(signed, "x-amz-date", None), keyring, "AccessDenied")
    assert "Date or x-amz-date" in error.message
    refused(replace_header(signed, "x-amz-date", "2025-01-01T00:00:00Z"), keyring, "AccessDenied")
    refused(replace_header(signed, "x-amz-date", "20251301T000000Z"), keyring, "AccessDenied")


# -- key standing -------------------------------------------------------------------------------
def test_unknown_key(keyring: Keyring) -> None:
    stranger = make_creds("CWSTRANGERAAAAAA", SECRET)
    error = refused(to_signed(header_signed(stranger)), keyring, "InvalidAccessKeyId")
    assert error.status == 403
    assert error.fields["AWSAccessKeyId"] == "CWSTRANGERAAAAAA"


def test_revoked_key(keyring: Keyring) -> None:
    revoked = keyring.add(make_creds("CWREVOKEDAAAAAAA", SECRET, revoked=True))
    refused(to_signed(header_signed(revoked)), keyring, "InvalidAccessKeyId")


def test_expired_temporary_key(keyring: Keyring) -> None:
    expired = keyring.add(
        make_creds("CWEXPIREDAAAAAAA", SECRET, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    error = refused(to_signed(header_signed(expired)), keyring, "ExpiredToken")
    assert error.status == 400


def test_temporary_key_before_expiry(keyring: Keyring) -> None:
    fresh = keyring.add(
        make_creds("CWFRESHAAAAAAAAA", SECRET, expires_at=datetime.now(UTC) + timedelta(minutes=5))
    )
    auth_of(to_signed(header_signed(fresh)), keyring)


def test_expiry_is_checked_after_the_signature(keyring: Keyring) -> None:
    keyring.add(make_creds("CWEXPIREDAAAAAAA", SECRET, expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    wrong = make_creds("CWEXPIREDAAAAAAA", "cwo" + "q" * 40)
    refused(to_signed(header_signed(wrong)), keyring, "SignatureDoesNotMatch")


def test_suspended_key(keyring: Keyring) -> None:
    suspended = keyring.add(make_creds("CWSUSPENDEDAAAAA", SECRET, suspended=True))
    error = refused(to_signed(header_signed(suspended)), keyring, "AccessDenied")
    assert "suspended" in error.message


def test_session_token_required_and_checked(keyring: Keyring) -> None:
    temp = keyring.add(make_creds("CWSESSIONAAAAAAA", SECRET, token="tok-right"))
    result = auth_of(to_signed(header_signed(temp, token="tok-right")), keyring)
    assert result.access_key_id == "CWSESSIONAAAAAAA"
    missing = refused(to_signed(header_signed(temp)), keyring, "InvalidToken")
    assert "requires a session token" in missing.message
    refused(to_signed(header_signed(temp, token="tok-wrong")), keyring, "InvalidToken")


def test_unexpected_session_token(keyring: Keyring, alice: Any) -> None:
    error = refused(to_signed(header_signed(alice, token="surprise")), keyring, "InvalidToken")
    assert error.status == 400
    assert "takes no session token" in error.message


def test_session_token_in_error_is_not_echoed(keyring: Keyring) -> None:
    temp = keyring.add(make_creds("CWSESSIONAAAAAAA", SECRET, token="tok-secret-value"))
    wrong = make_creds("CWSESSIONAAAAAAA", "cwo" + "w" * 40)
    error = refused(
        to_signed(header_signed(wrong, token="tok-secret-value")), keyring, "SignatureDoesNotMatch"
    )
    assert "tok-secret-value" not in str(error.fields)
    assert temp.key.access_key_id == error.fields["AWSAccessKeyId"]


# -- malformed Authorization headers ---------------------------------------------------------------
def _with_authorization(keyring: Keyring, alice: Any, value: str) -> SignedRequest:
    return replace_header(to_signed(header_signed(alice)), "authorization", value)


def _parts(alice: Any) -> tuple[str, str, str, str]:
    request = header_signed(alice)
    authorization = request.headers["Authorization"]
    credential = authorization.split("Credential=", 1)[1].split(",", 1)[0]
    signed = authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0]
    signature = authorization.rsplit("Signature=", 1)[1]
    return credential, signed, signature, request.headers["X-Amz-Date"]


@pytest.mark.parametrize(
    ("template", "code", "fragment"),
    [
        (
            "AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}",
            "AuthorizationHeaderMalformed",
            "three components",
        ),
        ("AWS4-HMAC-SHA256 SignedHeaders={h}, Signature={s}", "AuthorizationHeaderMalformed", "Credential"),
        ("AWS4-HMAC-SHA256 Credential={c}, Signature={s}", "AuthorizationHeaderMalformed", "SignedHeaders"),
        ("AWS4-HMAC-SHA256", "AuthorizationHeaderMalformed", "three components"),
        (
            "AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature=",
            "AuthorizationHeaderMalformed",
            "empty",
        ),
        (
            "AWS4-HMAC-SHA256 Credential={c}, Credential={c}, SignedHeaders={h}, Signature={s}",
            "AuthorizationHeaderMalformed",
            "malformed",
        ),
        (
            "AWS4-HMAC-SHA256 Credential={c} SignedHeaders={h} Signature={s}",
            "AuthorizationHeaderMalformed",
            "",
        ),
        (
            "AWS4-HMAC-SHA256 Credential={c}, SignedHeaders={h}, Signature={s}, Extra=1",
            "AuthorizationHeaderMalformed",
            "",
        ),
        (
            "AWS4-HMAC-SHA256 Credential={c}, SignedHeaders=host;;x-amz-date, Signature={s}",
            "AuthorizationHeaderMalformed",
            "empty",
        ),
        (
            "AWS4-HMAC-SHA512 Credential={c}, SignedHeaders={h}, Signature={s}",
            "InvalidArgument",
            "Unsupported",
        ),
        (
            "AWS4-ECDSA-P256-SHA256 Credential={c}, SignedHeaders={h}, Signature={s}",
            "InvalidArgument",
            "Unsupported",
        ),
        ("Bearer abc", "InvalidArgument", "Unsupported"),
        ("", "InvalidArgument", "Unsupported"),
    ],
)
def test_malformed_authorization(
    keyring: Keyring, alice: Any, template: str, code: str, fragment: str
) -> None:
    credential, signed, signature, _ = _parts(alice)
    value = template.format(c=credential, h=signed, s=signature)
    error = refused(_with_authorization(keyring, alice, value), keyring, code)
    assert error.status == 400
    assert fragment in error.message
    assert keyring.calls == 0


@pytest.mark.parametrize(
    ("credential", "fragment"),
    [
        ("CWALICEAAAAAAAAA/{d}/r/s3", "mal-formed"),
        ("CWALICEAAAAAAAAA/{d}/r/s3/aws4_request/extra", "mal-formed"),
        ("/{d}/r/s3/aws4_request", "mal-formed"),
        ("CWALICEAAAAAAAAA//r/s3/aws4_request", "mal-formed"),
        ("CWALICEAAAAAAAAA/2025-1-1/r/s3/aws4_request", "credential date"),
        ("CWALICEAAAAAAAAA/19990101/r/s3/aws4_request", "not the same as X-Amz-Date"),
        ("CWALICEAAAAAAAAA/{d}/r/ec2/aws4_request", 'incorrect service "ec2"'),
        ("CWALICEAAAAAAAAA/{d}/r/S3/aws4_request", "incorrect service"),
        ("CWALICEAAAAAAAAA/{d}/r/s3/aws5_request", 'incorrect terminal "aws5_request"'),
    ],
)
def test_bad_credential_scope(keyring: Keyring, alice: Any, credential: str, fragment: str) -> None:
    _, signed, signature, amz_date = _parts(alice)
    credential = credential.format(d=amz_date[:8])
    value = f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={signed}, Signature={signature}"
    error = refused(_with_authorization(keyring, alice, value), keyring, "AuthorizationHeaderMalformed")
    assert fragment in error.message
    assert error.message.startswith("The authorization header is malformed; ")


def test_components_without_spaces_parse(keyring: Keyring, alice: Any) -> None:
    credential, signed, signature, _ = _parts(alice)
    value = f"AWS4-HMAC-SHA256 Credential={credential},SignedHeaders={signed},Signature={signature}"
    auth_of(_with_authorization(keyring, alice, value), keyring)


# -- x-amz-content-sha256 ------------------------------------------------------------------------
def test_content_sha256_is_required(keyring: Keyring, alice: Any) -> None:
    signed = to_signed(header_signed(alice))
    error = refused(replace_header(signed, "x-amz-content-sha256", None), keyring, "InvalidRequest")
    assert error.message == "Missing required header for this request: x-amz-content-sha256"


@pytest.mark.parametrize("method, body", [("GET", b""), ("PUT", b"uploaded with curl -T")])
def test_content_sha256_neither_sent_nor_signed_is_old_curl(
    keyring: Keyring, alice: Any, method: str, body: bytes
) -> None:
    """curl < 8.1 `--aws-sigv4` signs without the header, over the empty payload's hash
    (botocore's generic SigV4Auth produces the same shape); the body is then unsigned."""
    request = AWSRequest(method, "http://s3.test.local/bucket/key", data=body)
    SigV4Auth(botocreds(alice), "s3", "us-east-04a").add_auth(request)
    if body:  # curl -T signs the empty hash whatever it uploads
        request.headers.replace_header("Authorization", _empty_payload_signature(alice, method))
    signed = to_signed(request)
    assert signed.header("x-amz-content-sha256") is None
    result = auth_of(signed, keyring)
    assert result.payload_mode is PayloadMode.UNSIGNED and result.payload_sha256 is None
    # Still a signature: tampering with what it covers is refused.
    for other_method, path in (("DELETE", "/bucket/key"), (method, "/bucket/other")):
        tampered = SignedRequest(other_method, path, "", signed.headers, host=signed.host)
        refused(tampered, keyring, "SignatureDoesNotMatch")


def _old_curl_signed(creds: Any, raw_query: str, sent_query: str) -> SignedRequest:
    """A GET signed the way curl < 8.1 does, by hand: the query as sent (not sorted, not
    re-encoded), no x-amz-content-sha256, the empty payload's hash."""
    amz_date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz_date[:8]}/us-east-04a/s3/aws4_request"
    lines = ["GET", "/bucket", raw_query, "host:s3.test.local", f"x-amz-date:{amz_date}", ""]
    canonical = "\n".join([*lines, "host;x-amz-date", hashlib.sha256(b"").hexdigest()])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + creds.secret_key).encode()
    for part in (amz_date[:8], "us-east-04a", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={creds.key.access_key_id}/{scope}, "
        f"SignedHeaders=host;x-amz-date, Signature={signature}"
    )
    headers = [("host", "s3.test.local"), ("x-amz-date", amz_date), ("authorization", authorization)]
    return SignedRequest("GET", "/bucket", sent_query, headers, host="s3.test.local")


def test_query_signed_verbatim_in_sent_order(keyring: Keyring, alice: Any) -> None:
    """curl < 8.1 signs the query in the order it sends it; that order is then what is bound."""
    query = "list-type=2&prefix=dir%2F&max-keys=1"
    assert auth_of(_old_curl_signed(alice, query, query), keyring).payload_mode is PayloadMode.UNSIGNED
    reordered = "max-keys=1&list-type=2&prefix=dir%2F"
    refused(_old_curl_signed(alice, query, reordered), keyring, "SignatureDoesNotMatch")
    refused(
        _old_curl_signed(alice, query, "list-type=2&prefix=dir%2F&max-keys=2"),
        keyring,
        "SignatureDoesNotMatch",
    )


def _empty_payload_signature(creds: Any, method: str) -> str:
    request = AWSRequest(method, "http://s3.test.local/bucket/key", data=b"")
    SigV4Auth(botocreds(creds), "s3", "us-east-04a").add_auth(request)
    return str(request.headers["Authorization"])


@pytest.mark.parametrize("value", ["", "abc", "g" * 64, "UNSIGNED", "STREAMING-AWS4-HMAC-SHA256", "a" * 63])
def test_content_sha256_values_refused(keyring: Keyring, alice: Any, value: str) -> None:
    signed = to_signed(header_signed(alice))
    error = refused(replace_header(signed, "x-amz-content-sha256", value), keyring, "InvalidArgument")
    assert error.fields["ArgumentName"] == "x-amz-content-sha256"


def test_sigv4a_streaming_not_implemented(keyring: Keyring, alice: Any) -> None:
    signed = to_signed(header_signed(alice))
    value = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
    refused(replace_header(signed, "x-amz-content-sha256", value), keyring, "NotImplemented")


def test_unsigned_payload_mode(keyring: Keyring, alice: Any) -> None:
    request = header_signed(alice, "PUT", body=b"anything", payload="UNSIGNED-PAYLOAD")
    result = auth_of(to_signed(request), keyring)
    assert result.payload_mode is PayloadMode.UNSIGNED and result.payload_sha256 is None


def test_header_and_query_auth_together(keyring: Keyring, alice: Any) -> None:
    request = header_signed(alice)
    signed = to_signed(request, raw_query="X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00")
    error = refused(signed, keyring, "InvalidArgument")
    assert "Only one auth mechanism" in error.message


def test_bad_trailer_declaration(keyring: Keyring, alice: Any) -> None:
    request = header_signed(alice, "PUT", headers={"X-Amz-Trailer": "x-amz-checksum-crc32"})
    error = refused(to_signed(request), keyring, "InvalidRequest")
    assert "x-amz-trailer" in error.message
    request = header_signed(
        alice,
        "PUT",
        headers={"X-Amz-Trailer": "x-amz-meta-nope"},
        payload="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    )
    refused(to_signed(request), keyring, "InvalidRequest")


def test_bad_decoded_content_length(keyring: Keyring, alice: Any) -> None:
    request = header_signed(
        alice,
        "PUT",
        headers={"X-Amz-Decoded-Content-Length": "-5"},
        payload="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    )
    error = refused(to_signed(request), keyring, "InvalidArgument")
    assert error.fields["ArgumentName"] == "x-amz-decoded-content-length"
