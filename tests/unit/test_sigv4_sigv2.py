"""Legacy Signature V2: boto3 with signature_version="s3" (HmacV1Auth / HmacV1QueryAuth)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from typing import Any

import pytest
from botocore.auth import HmacV1Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config

from coffer.s3.sigv4 import PayloadMode, SignedRequest
from tests.support.sigv4 import (
    Keyring,
    auth_of,
    boto_client,
    botocreds,
    client_capture,
    make_creds,
    one_key_fixtures,
    refused,
    replace_header,
    to_signed,
    url_request,
)

SECRET = "cwo" + "v2" * 20
AKID = "CWVERSIONTWOAAAA"
V2 = Config(signature_version="s3", s3={"addressing_style": "virtual"}, retries={"max_attempts": 1})
V2_PATH = Config(signature_version="s3", s3={"addressing_style": "path"}, retries={"max_attempts": 1})


keyring, alice = one_key_fixtures(AKID, SECRET)


CALLS = {
    "get_object": lambda c: c.get_object(Bucket="bkt", Key="dir/a b+c~é"),
    "get_object_response_type": lambda c: c.get_object(
        Bucket="bkt", Key="k", ResponseContentType="text/plain"
    ),
    "put_object": lambda c: c.put_object(
        Bucket="bkt", Key="k", Body=b"data", ContentType="text/plain", Metadata={"m": "v"}
    ),
    "get_object_acl": lambda c: c.get_object_acl(Bucket="bkt", Key="k", VersionId="3"),
    "list_objects": lambda c: c.list_objects(Bucket="bkt", Prefix="p/", Delimiter="/"),
    "upload_part": lambda c: c.upload_part(Bucket="bkt", Key="k", UploadId="abc", PartNumber=1, Body=b"x"),
    "delete_objects": lambda c: c.delete_objects(Bucket="bkt", Delete={"Objects": [{"Key": "a"}]}),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_sigv2_header_virtual_hosted(keyring: Keyring, alice: Any, name: str) -> None:
    captured = client_capture(alice, CALLS[name], config=V2, endpoint="http://s3.test.local")
    authorization = captured.request.headers["Authorization"]
    authorization = authorization.decode() if isinstance(authorization, bytes) else authorization
    assert authorization.startswith("AWS ")
    result = auth_of(captured.signed(vhost_bucket="bkt"), keyring)
    assert result.signature_version == 2 and not result.presigned
    assert result.access_key_id == AKID
    # without the face's hint the bucket is found among the host's leading labels
    assert auth_of(captured.signed(), keyring).access_key_id == AKID


@pytest.mark.parametrize("name", sorted(CALLS))
def test_sigv2_header_path_style(keyring: Keyring, alice: Any, name: str) -> None:
    captured = client_capture(alice, CALLS[name], config=V2_PATH, endpoint="http://s3.test.local")
    assert auth_of(captured.signed(), keyring).signature_version == 2


def test_sigv2_presigned(keyring: Keyring, alice: Any) -> None:
    client = boto_client(AKID, SECRET, config=V2)
    url = client.generate_presigned_url(
        "get_object",
        Params={"Bucket": "bkt", "Key": "a b", "ResponseContentDisposition": "inline"},
        ExpiresIn=60,
    )
    assert "AWSAccessKeyId=" in url and "Signature=" in url
    request = url_request(url)
    request = SignedRequest(
        request.method,
        request.raw_path,
        request.raw_query,
        request.headers,
        host=request.host,
        vhost_bucket="bkt",
    )
    result = auth_of(request, keyring)
    assert result.presigned and result.signature_version == 2
    error = refused(request, keyring, "AccessDenied", now=datetime.now(UTC) + timedelta(seconds=120))
    assert error.message == "Request has expired"
    refused(url_request(url.replace("a%20b", "a%20c")), keyring, "SignatureDoesNotMatch")


def test_sigv2_tampered(keyring: Keyring, alice: Any) -> None:
    captured = client_capture(alice, CALLS["put_object"], config=V2, endpoint="http://s3.test.local")
    signed = captured.signed(vhost_bucket="bkt")
    refused(replace_header(signed, "content-type", "text/html"), keyring, "SignatureDoesNotMatch")
    refused(replace_header(signed, "x-amz-meta-m", "other"), keyring, "SignatureDoesNotMatch")
    refused(replace_header(signed, "x-amz-acl", "public-read"), keyring, "SignatureDoesNotMatch")
    refused(captured.signed(vhost_bucket="other"), keyring, "SignatureDoesNotMatch")
    refused(captured.signed(vhost_bucket="bkt", raw_path="/k2"), keyring, "SignatureDoesNotMatch")
    refused(captured.signed(vhost_bucket="bkt", raw_query="acl"), keyring, "SignatureDoesNotMatch")


def test_sigv2_non_subresource_query_is_not_signed(keyring: Keyring, alice: Any) -> None:
    """SigV2 only covers the S3 sub-resources of the query (a known weakness of V2)."""
    captured = client_capture(alice, CALLS["get_object"], config=V2, endpoint="http://s3.test.local")
    auth_of(captured.signed(vhost_bucket="bkt", raw_query="x-id=GetObject"), keyring)


def test_sigv2_wrong_secret_and_unknown_key(keyring: Keyring) -> None:
    impostor = make_creds(AKID, "cwo" + "n" * 40)
    captured = client_capture(impostor, CALLS["get_object"], config=V2, endpoint="http://s3.test.local")
    error = refused(captured.signed(vhost_bucket="bkt"), keyring, "SignatureDoesNotMatch")
    assert "StringToSign" in error.fields
    stranger = make_creds("CWSTRANGERAAAAAA", SECRET)
    captured = client_capture(stranger, CALLS["get_object"], config=V2, endpoint="http://s3.test.local")
    refused(captured.signed(vhost_bucket="bkt"), keyring, "InvalidAccessKeyId")


def test_sigv2_skew_and_date(keyring: Keyring, alice: Any) -> None:
    request = AWSRequest("GET", "http://s3.test.local/bkt/k")
    HmacV1Auth(botocreds(alice)).add_auth(request)
    signed = to_signed(request)
    auth_of(signed, keyring)
    refused(signed, keyring, "RequestTimeTooSkewed", now=datetime.now(UTC) + timedelta(minutes=20))
    refused(replace_header(signed, "date", None), keyring, "AccessDenied")
    refused(replace_header(signed, "date", "yesterday"), keyring, "AccessDenied")
    refused(replace_header(signed, "date", "Fri, 31 Dec 9999 23:59:59 -2359"), keyring, "AccessDenied")


def test_sigv2_x_amz_date_signs_an_empty_date_line(keyring: Keyring, alice: Any) -> None:
    """AWS's rule: with x-amz-date present, the Date line of the string to sign is empty."""
    import base64
    import hashlib
    import hmac

    amz_date = formatdate(usegmt=True)
    string_to_sign = f"GET\n\n\n\nx-amz-date:{amz_date}\n/bkt/k"
    signature = base64.b64encode(
        hmac.new(SECRET.encode(), string_to_sign.encode(), hashlib.sha1).digest()
    ).decode()
    request = SignedRequest(
        "GET",
        "/bkt/k",
        "",
        [("host", "s3.test.local"), ("x-amz-date", amz_date), ("authorization", f"AWS {AKID}:{signature}")],
        host="s3.test.local",
    )
    auth_of(request, keyring)


def test_sigv2_key_standing(keyring: Keyring) -> None:
    expired = keyring.add(
        make_creds("CWEXPIREDAAAAAAA", SECRET, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    captured = client_capture(expired, CALLS["get_object"], config=V2, endpoint="http://s3.test.local")
    refused(captured.signed(vhost_bucket="bkt"), keyring, "ExpiredToken")
    temp = keyring.add(make_creds("CWSESSIONAAAAAAA", SECRET, token="sess"))
    captured = client_capture(
        temp, CALLS["get_object"], config=V2, endpoint="http://s3.test.local", token="sess"
    )
    auth_of(captured.signed(vhost_bucket="bkt"), keyring)
    captured = client_capture(
        temp, CALLS["get_object"], config=V2, endpoint="http://s3.test.local", token="nope"
    )
    refused(captured.signed(vhost_bucket="bkt"), keyring, "InvalidToken")


def test_sigv2_disabled(keyring: Keyring, alice: Any) -> None:
    captured = client_capture(alice, CALLS["get_object"], config=V2, endpoint="http://s3.test.local")
    error = refused(captured.signed(vhost_bucket="bkt"), keyring, "InvalidRequest", allow_sigv2=False)
    assert "AWS4-HMAC-SHA256" in error.message and "Signature Version 2 is disabled" in error.message
    client = boto_client(AKID, SECRET, config=V2)
    url = client.generate_presigned_url("get_object", Params={"Bucket": "bkt", "Key": "k"})
    refused(url_request(url), keyring, "InvalidRequest", allow_sigv2=False)
    assert keyring.calls == 0


def test_sigv2_malformed_header(keyring: Keyring) -> None:
    for value in ["AWS ", "AWS nocolon", f"AWS {AKID}:", "AWS :sig"]:
        request = SignedRequest(
            "GET",
            "/b/k",
            "",
            [("host", "h"), ("date", formatdate(usegmt=True)), ("authorization", value)],
        )
        refused(request, keyring, "InvalidArgument")


def test_sigv2_streaming_signed_payload_refused(keyring: Keyring, alice: Any) -> None:
    request = AWSRequest(
        "PUT",
        "http://s3.test.local/bkt/k",
        headers={"x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
    )
    HmacV1Auth(botocreds(alice)).add_auth(request)
    refused(to_signed(request), keyring, "InvalidRequest")
    request = AWSRequest("PUT", "http://s3.test.local/bkt/k", headers={"x-amz-content-sha256": "e3" * 32})
    HmacV1Auth(botocreds(alice)).add_auth(request)
    result = auth_of(to_signed(request), keyring)
    assert result.payload_mode is PayloadMode.SIGNED and result.payload_sha256 == "e3" * 32
