"""Browser-form uploads (PostObject) end to end: boto3's generate_presigned_post, POST policies
signed by hand (SigV4 and SigV2), every condition, the answers (204/200/201/303) and the
errors S3 gives, posted as real multipart/form-data with httpx."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.support.clients import Cli
from tests.support.harness import CofferServer
from tests.support.policies import open_to_everyone, org_of
from tests.support.s3 import REGION, assert_s3_error, client_error, new_bucket


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    return new_bucket(s3, "post")


def message(r: httpx.Response) -> str:
    """The <Message> of an error document, unescaped."""
    return ET.fromstring(r.content).findtext("Message") or ""


def post(url: str, fields: dict[str, str], file: tuple[str, bytes] | None = ("f.txt", b"hello"),
         **kw: Any) -> httpx.Response:  # fmt: skip
    """A multipart/form-data POST: the fields in order, then the file part (or, with
    file=None, an ignorable non-file part so the body is still a form)."""
    if file is None:
        return httpx.post(url, data=fields, files={"x-ignore-none": (None, "")}, timeout=60, **kw)
    files = {"file": (file[0], file[1], "application/octet-stream")}
    return httpx.post(url, data=fields, files=files, timeout=60, **kw)


def v4_fields(
    key: dict[str, Any], bucket: str, conditions: list[Any], *, fields: dict[str, str] | None = None,
    expires: timedelta = timedelta(minutes=5), policy_text: str | None = None,
) -> dict[str, str]:  # fmt: skip
    """A SigV4 POST policy built and signed by hand (not by botocore)."""
    now = datetime.now(UTC)
    date, amz_date = now.strftime("%Y%m%d"), now.strftime("%Y%m%dT%H%M%SZ")
    credential = f"{key['accessKeyId']}/{date}/{REGION}/s3/aws4_request"
    document = {
        "expiration": (now + expires).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "conditions": [
            {"bucket": bucket},
            *conditions,
            {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
            {"x-amz-credential": credential},
            {"x-amz-date": amz_date},
        ],
    }
    text = policy_text if policy_text is not None else json.dumps(document)
    policy = base64.b64encode(text.encode()).decode()
    signing = ("AWS4" + key["secretKey"]).encode()
    for part in (date, REGION, "s3", "aws4_request"):
        signing = hmac.digest(signing, part.encode(), "sha256")
    return {
        **(fields or {}),
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": credential,
        "X-Amz-Date": amz_date,
        "Policy": policy,
        "X-Amz-Signature": hmac.new(signing, policy.encode(), "sha256").hexdigest(),
    }


def v2_fields(key: dict[str, Any], conditions: list[Any], fields: dict[str, str]) -> dict[str, str]:
    """A SigV2 POST policy: base64 JSON signed with HMAC-SHA1, as ceph's s3-tests build it."""
    expiration = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    policy = base64.b64encode(
        json.dumps({"expiration": expiration, "conditions": conditions}).encode()
    ).decode()
    signature = base64.b64encode(hmac.digest(key["secretKey"].encode(), policy.encode(), "sha1")).decode()
    return {**fields, "AWSAccessKeyId": key["accessKeyId"], "policy": policy, "signature": signature}


def test_presigned_post_from_boto3(server: CofferServer, s3: Any, bucket: str, aws: Cli) -> None:
    presigned = s3.generate_presigned_post(bucket, "docs/report.txt")
    assert presigned["url"] == f"{server.s3_url}/{bucket}"
    r = post(presigned["url"], presigned["fields"], ("local.txt", b"posted body"))
    assert r.status_code == 204, r.text
    etag = '"' + hashlib.md5(b"posted body").hexdigest() + '"'
    assert r.headers["etag"] == etag
    assert r.headers["location"] == f"{server.s3_url}/{bucket}/docs%2Freport.txt"
    got = s3.get_object(Bucket=bucket, Key="docs/report.txt")
    assert got["Body"].read() == b"posted body" and got["ContentType"] == "binary/octet-stream"
    head = aws("s3api", "head-object", "--bucket", bucket, "--key", "docs/report.txt")
    assert head["ETag"] == etag and head["ContentLength"] == 11


def test_filename_substitution_and_conditions(s3: Any, bucket: str) -> None:
    presigned = s3.generate_presigned_post(
        bucket,
        "uploads/${filename}",
        Fields={"Content-Type": "image/png", "x-amz-meta-owner": "mary", "success_action_status": "201"},
        Conditions=[
            ["starts-with", "$Content-Type", "image/"],
            {"x-amz-meta-owner": "mary"},
            {"success_action_status": "201"},
            ["content-length-range", 1, 1024],
        ],
    )
    r = post(presigned["url"], presigned["fields"], ("C:\\Users\\mary\\photo.png", b"\x89PNG..."))
    assert r.status_code == 201, r.text
    doc = ET.fromstring(r.content)
    assert doc.tag == "PostResponse"
    assert doc.findtext("Bucket") == bucket and doc.findtext("Key") == "uploads/photo.png"
    assert doc.findtext("ETag") == r.headers["etag"] and doc.findtext("Location") == r.headers["location"]
    head = s3.head_object(Bucket=bucket, Key="uploads/photo.png")
    assert head["ContentType"] == "image/png" and head["Metadata"] == {"owner": "mary"}


def test_success_action_status_and_redirect(s3: Any, bucket: str) -> None:
    for status, expected in (("200", 200), ("204", 204), ("404", 204)):
        presigned = s3.generate_presigned_post(
            bucket, f"status-{status}", Fields={"success_action_status": status},
            Conditions=[{"success_action_status": status}],
        )  # fmt: skip
        r = post(presigned["url"], presigned["fields"])
        assert r.status_code == expected and r.content == b""
    target = "https://app.example.com/done?ticket=7"
    presigned = s3.generate_presigned_post(
        bucket, "a dir/redirected.txt", Fields={"success_action_redirect": target},
        Conditions=[["starts-with", "$success_action_redirect", "https://app.example.com/"]],
    )  # fmt: skip
    r = post(presigned["url"], presigned["fields"], follow_redirects=False)
    assert r.status_code == 303, r.text
    location = urlsplit(r.headers["location"])
    assert location.netloc == "app.example.com" and location.path == "/done"
    query = parse_qs(location.query)
    assert query == {
        "ticket": ["7"],
        "bucket": [bucket],
        "key": ["a dir/redirected.txt"],
        "etag": ['"' + hashlib.md5(b"hello").hexdigest() + '"'],
    }
    assert s3.get_object(Bucket=bucket, Key="a dir/redirected.txt")["Body"].read() == b"hello"


def test_content_length_range(s3: Any, bucket: str) -> None:
    presigned = s3.generate_presigned_post(bucket, "sized", Conditions=[["content-length-range", 5, 10]])
    for body in (b"12345", b"1234567890"):
        assert post(presigned["url"], presigned["fields"], ("f", body)).status_code == 204
    r = post(presigned["url"], presigned["fields"], ("f", b"x" * 11))
    assert_s3_error(r, 400, "EntityTooLarge")
    assert "<MaxSizeAllowed>10</MaxSizeAllowed>" in r.text
    r = post(presigned["url"], presigned["fields"], ("f", b"1234"))
    assert_s3_error(r, 400, "EntityTooSmall")
    assert "<ProposedSize>4</ProposedSize>" in r.text and "<MinSizeAllowed>5</MinSizeAllowed>" in r.text
    assert s3.get_object(Bucket=bucket, Key="sized")["Body"].read() == b"1234567890"  # the last good one


def test_expired_policy(s3: Any, bucket: str) -> None:
    presigned = s3.generate_presigned_post(bucket, "expired", ExpiresIn=-60)
    r = post(presigned["url"], presigned["fields"])
    assert_s3_error(r, 403, "AccessDenied")
    assert message(r) == "Invalid according to Policy: Policy expired."
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="expired")
    assert client_error(err.value)[0] == 404


def test_condition_failures_and_extra_fields(s3: Any, bucket: str) -> None:
    presigned = s3.generate_presigned_post(bucket, "exact")
    fields = dict(presigned["fields"], key="other")
    r = post(presigned["url"], fields)
    assert_s3_error(r, 403, "AccessDenied")
    assert message(r) == 'Invalid according to Policy: Policy Condition failed: ["eq", "$key", "exact"]'
    fields = dict(presigned["fields"], **{"x-amz-meta-sneaky": "1"})
    r = post(presigned["url"], fields)
    assert_s3_error(r, 403, "AccessDenied")
    assert message(r) == "Invalid according to Policy: Extra input fields: x-amz-meta-sneaky"
    prefixed = s3.generate_presigned_post(bucket, "user/${filename}")
    r = post(prefixed["url"], dict(prefixed["fields"], key="admin/x"))
    assert_s3_error(r, 403, "AccessDenied")
    assert message(r).endswith('["starts-with", "$key", "user/"]')
    # x-ignore-* fields need no condition.
    r = post(presigned["url"], dict(presigned["fields"], **{"x-ignore-tracking": "abc"}))
    assert r.status_code == 204
    # A bucket other than the policy's.
    other = new_bucket(s3, "post2")
    r = post(presigned["url"].replace(bucket, other), presigned["fields"])
    assert_s3_error(r, 403, "AccessDenied")
    assert message(r).endswith(f'["eq", "$bucket", "{bucket}"]')


def test_signature_checks(server: CofferServer, key: dict[str, Any], s3: Any, bucket: str) -> None:
    presigned = s3.generate_presigned_post(bucket, "signed")
    sig = presigned["fields"]["x-amz-signature"]
    r = post(presigned["url"], dict(presigned["fields"], **{"x-amz-signature": sig[::-1]}))
    assert_s3_error(r, 403, "SignatureDoesNotMatch")
    assert f"<StringToSign>{presigned['fields']['policy']}</StringToSign>" in r.text
    # A policy changed after signing no longer matches its signature.
    policy = json.loads(base64.b64decode(presigned["fields"]["policy"]))
    policy["conditions"].append(["content-length-range", 0, 1 << 40])
    tampered = base64.b64encode(json.dumps(policy).encode()).decode()
    r = post(presigned["url"], dict(presigned["fields"], policy=tampered))
    assert_s3_error(r, 403, "SignatureDoesNotMatch")
    credential = presigned["fields"]["x-amz-credential"].replace(key["accessKeyId"], "NOSUCHKEY00000000")
    r = post(presigned["url"], dict(presigned["fields"], **{"x-amz-credential": credential}))
    assert_s3_error(r, 403, "InvalidAccessKeyId")


def test_missing_fields(server: CofferServer, s3: Any, bucket: str) -> None:
    presigned = s3.generate_presigned_post(bucket, "missing")
    url, fields = presigned["url"], presigned["fields"]
    r = post(url, {k: v for k, v in fields.items() if k != "key"})
    assert_s3_error(r, 400, "InvalidArgument")
    assert (
        "Bucket POST must contain a field named 'key'." in message(r)
        and "<ArgumentName>key</ArgumentName>" in r.text
    )
    r = post(url, {k: v for k, v in fields.items() if k != "x-amz-signature"})
    assert_s3_error(r, 400, "InvalidArgument")
    assert "<ArgumentName>X-Amz-Signature</ArgumentName>" in r.text
    r = post(url, {k: v for k, v in fields.items() if k != "policy"})
    assert_s3_error(r, 400, "InvalidArgument")
    assert "<ArgumentName>Policy</ArgumentName>" in r.text
    r = post(url, fields, file=None)
    assert_s3_error(r, 400, "InvalidArgument")
    assert message(r) == "POST requires exactly one file upload per request."
    # Not a form at all: 412, as S3 answers.
    r = httpx.post(url, data=fields, timeout=30)
    assert_s3_error(r, 412, "PreconditionFailed")
    assert "multipart/form-data" in r.text
    r = httpx.post(url, content=b"--x\r\n", headers={"content-type": "multipart/form-data"}, timeout=30)
    assert_s3_error(r, 400, "MalformedPOSTRequest")
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="missing")
    assert client_error(err.value)[0] == 404


def _raw_form(
    fields: list[tuple[str, str]], file: bytes, after: list[tuple[str, str]], *, close: bool = True
) -> bytes:
    boundary = b"----cofferboundary7MA4YWxkTrZu0gW"
    out = b""
    for name, value in fields:
        out += b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n'
        out += value.encode() + b"\r\n"
    out += b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
    out += b"Content-Type: application/octet-stream\r\n\r\n" + file
    if not close:
        return out
    out += b"\r\n"
    for name, value in after:
        out += b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n'
        out += value.encode() + b"\r\n"
    return out + b"--" + boundary + b"--\r\n"


CONTENT_TYPE = "multipart/form-data; boundary=----cofferboundary7MA4YWxkTrZu0gW"


def test_fields_after_the_file_are_ignored_and_a_cut_body_stores_nothing(s3: Any, bucket: str) -> None:
    presigned = s3.generate_presigned_post(bucket, "raw")
    body = _raw_form(
        list(presigned["fields"].items()), b"raw file\r\n--not-a-boundary", [("x-amz-meta-late", "1")]
    )
    r = httpx.post(presigned["url"], content=body, headers={"content-type": CONTENT_TYPE}, timeout=30)
    assert r.status_code == 204, r.text
    got = s3.get_object(Bucket=bucket, Key="raw")
    assert got["Body"].read() == b"raw file\r\n--not-a-boundary" and got["Metadata"] == {}
    cut = s3.generate_presigned_post(bucket, "cut")
    body = _raw_form(list(cut["fields"].items()), b"partial content", [], close=False)
    r = httpx.post(cut["url"], content=body, headers={"content-type": CONTENT_TYPE}, timeout=30)
    assert_s3_error(r, 400, "MalformedPOSTRequest")
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="cut")
    assert client_error(err.value)[0] == 404


def test_large_upload_streams_through(s3: Any, bucket: str) -> None:
    size = 24 * 1024 * 1024 + 7
    block = hashlib.sha256(b"big").digest() * (1024 * 1024 // 32)
    data = (block * 25)[:size]
    presigned = s3.generate_presigned_post(bucket, "big.bin", Conditions=[["content-length-range", 0, size]])
    r = post(presigned["url"], presigned["fields"], ("big.bin", data))
    assert r.status_code == 204, r.text
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == size and head["ETag"].strip('"') == hashlib.md5(data).hexdigest()


def test_hand_signed_sigv4_policy(key: dict[str, Any], server: CofferServer, s3: Any, bucket: str) -> None:
    tagging = "<Tagging><TagSet><Tag><Key>source</Key><Value>form</Value></Tag></TagSet></Tagging>"
    conditions = [
        ["StArTs-WiTh", "$KeY", "hand/"],  # operators and names are case-insensitive
        ["eq", "$Content-Type", "text/plain"],
        ["starts-with", "$tagging", ""],
        ["starts-with", "$x-amz-meta-note", "ok"],
        ["content-length-range", "1", "100"],
    ]
    fields = {
        "key": "hand/${filename}",
        "Content-Type": "text/plain",
        "tagging": tagging,
        "X-Amz-Meta-Note": "ok!",
    }
    r = post(
        f"{server.s3_url}/{bucket}", v4_fields(key, bucket, conditions, fields=fields), ("n.txt", b"note")
    )
    assert r.status_code == 204, r.text
    head = s3.head_object(Bucket=bucket, Key="hand/n.txt")
    assert (
        head["ContentType"] == "text/plain" and head["Metadata"] == {"note": "ok!"} and head["TagCount"] == 1
    )
    tags = s3.get_object_tagging(Bucket=bucket, Key="hand/n.txt")["TagSet"]
    assert tags == [{"Key": "source", "Value": "form"}]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("not json", "Invalid Policy: Invalid JSON."),
        ('{"conditions": []}', "Invalid Policy: Policy missing expiration."),
        ('{"expiration": "2099-01-01T00:00:00Z"}', "Invalid Policy: Policy missing conditions."),
        (
            '{"expiration": "2099-01-01 00:00:00", "conditions": []}',
            "Invalid Policy: Invalid 'expiration' value",
        ),
        ('{"expiration": "2099-01-01T00:00:00Z", "conditions": {}}', "must be a List."),
        ('{"expiration": "2099-01-01T00:00:00Z", "conditions": [{}]}', "exactly one property"),
        (
            '{"expiration": "2099-01-01T00:00:00Z", "conditions": [["sounds-like", "$key", "x"]]}',
            "unknown operation",
        ),
        (
            '{"expiration": "2099-01-01T00:00:00Z", "conditions": [["content-length-range", 0]]}',
            "wrong number",
        ),
        (
            '{"expiration": "2099-01-01T00:00:00Z", "conditions": [["content-length-range", -1, 0]]}',
            "Invalid",
        ),
        ('{"expiration": "2099-01-01T00:00:00Z", "CONDITIONS": []}', "Unexpected: 'conditions'"),
    ],
)
def test_malformed_policies(
    key: dict[str, Any], server: CofferServer, s3: Any, bucket: str, document: str, expected: str
) -> None:
    fields = v4_fields(key, bucket, [], fields={"key": "bad-policy"}, policy_text=document)
    r = post(f"{server.s3_url}/{bucket}", fields)
    assert_s3_error(r, 400, "InvalidPolicyDocument")
    assert expected in message(r)
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="bad-policy")
    assert client_error(err.value)[0] == 404


def test_hand_signed_sigv2_policy(key: dict[str, Any], server: CofferServer, s3: Any, bucket: str) -> None:
    conditions = [
        {"bucket": bucket},
        ["starts-with", "$key", "v2/"],
        {"acl": "private"},
        ["starts-with", "$Content-Type", "text/plain"],
        ["content-length-range", 0, 1024],
    ]
    fields = v2_fields(
        key, conditions, {"key": "v2/old-style.txt", "acl": "private", "Content-Type": "text/plain"}
    )
    r = post(f"{server.s3_url}/{bucket}", fields, ("x.txt", b"signed with v2"))
    assert r.status_code == 204, r.text
    assert s3.get_object(Bucket=bucket, Key="v2/old-style.txt")["Body"].read() == b"signed with v2"
    r = post(f"{server.s3_url}/{bucket}", dict(fields, signature="AAAA" + fields["signature"][4:]))
    assert_s3_error(r, 403, "SignatureDoesNotMatch")
    r = post(f"{server.s3_url}/{bucket}", {k: v for k, v in fields.items() if k != "signature"})
    assert_s3_error(r, 400, "InvalidArgument")
    assert "<ArgumentName>Signature</ArgumentName>" in r.text


def test_field_rules(key: dict[str, Any], server: CofferServer, s3: Any, bucket: str) -> None:
    url = f"{server.s3_url}/{bucket}"

    def form(**fields: str) -> dict[str, str]:
        """Every field covered by a starts-with "" condition, so only the field's own rule decides."""
        named = {k.replace("_", "-"): v for k, v in fields.items()}
        conditions = [["starts-with", f"${name}", ""] for name in named]
        return v4_fields(key, bucket, conditions, fields=named)

    r = post(url, form(key="acl", acl="public-read"))
    assert_s3_error(r, 400, "AccessControlListNotSupported")
    assert post(url, form(key="acl-ok", acl="bucket-owner-full-control")).status_code == 204
    r = post(url, form(key="md5", Content_MD5=base64.b64encode(b"0" * 16).decode()))
    assert_s3_error(r, 400, "BadDigest")
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    r = post(url, form(key="sum", x_amz_checksum_sha256=wrong))
    assert_s3_error(r, 400, "BadDigest")
    right = base64.b64encode(hashlib.sha256(b"hello").digest()).decode()
    assert post(url, form(key="sum", x_amz_checksum_sha256=right)).status_code == 204
    assert s3.head_object(Bucket=bucket, Key="sum", ChecksumMode="ENABLED")["ChecksumSHA256"] == right
    r = post(url, form(key="cls", x_amz_storage_class="GLACIER"))
    assert_s3_error(r, 400, "InvalidStorageClass")
    r = post(url, form(key="lock", x_amz_object_lock_mode="GOVERNANCE"))
    assert_s3_error(r, 501, "NotImplemented")
    for name in ("acl", "md5", "cls", "lock"):
        with pytest.raises(ClientError):
            s3.head_object(Bucket=bucket, Key=name)
    # A condition on a field the form does not carry fails, even starts-with "".
    r = post(url, v4_fields(key, bucket, [["starts-with", "$key", ""], ["starts-with", "$x-amz-meta-a", ""]],
                            fields={"key": "absent-field"}))  # fmt: skip
    assert_s3_error(r, 403, "AccessDenied")


def test_anonymous_form_to_a_private_bucket_is_denied(server: CofferServer, s3: Any, bucket: str) -> None:
    r = post(f"{server.s3_url}/{bucket}", {"key": "anon.txt"})
    assert_s3_error(r, 403, "AccessDenied")
    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key="anon.txt")
    assert client_error(err.value)[0] == 404


def test_anonymous_browser_upload_through_policies_and_cors(
    server: CofferServer, key: dict[str, Any], s3: Any
) -> None:
    """A public drop box, the way a browser page would use it: a CORS preflight for the form
    POST, then an unsigned form. It works only once the bucket policy and an organization
    policy both let anyone s3:PutObject under drop/, and only there."""
    bucket = new_bucket(s3, "drop")
    page = "https://upload.example.com"
    s3.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={"CORSRules": [{"AllowedMethods": ["POST"], "AllowedOrigins": [page]}]},
    )
    url = f"{server.s3_url}/{bucket}"
    r = httpx.options(url, headers={"Origin": page, "Access-Control-Request-Method": "POST"}, timeout=30)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == page
    refused = post(url, {"key": "drop/a.txt"}, headers={"Origin": page})
    assert_s3_error(refused, 403, "AccessDenied")
    assert refused.headers["access-control-allow-origin"] == page  # the page can read the refusal
    open_to_everyone(
        server, s3, bucket, "drop/", "s3:PutObject", org=org_of(server, key), sid="drop", name="drop"
    )
    try:
        ok = post(url, {"key": "drop/${filename}"}, ("note.txt", b"from a browser"), headers={"Origin": page})
        assert ok.status_code == 204, ok.text
        assert ok.headers["access-control-allow-origin"] == page
        got = s3.get_object(Bucket=bucket, Key="drop/note.txt")
        assert got["Body"].read() == b"from a browser"
        assert_s3_error(post(url, {"key": "elsewhere.txt"}), 403, "AccessDenied")
        assert_s3_error(
            post(url, {"key": "drop/x", "acl": "public-read"}), 400, "AccessControlListNotSupported"
        )
    finally:
        with server.api() as c:
            assert c.delete("/v1/cwobject/access-policy/public-drop").status_code == 200
    assert_s3_error(post(url, {"key": "drop/late.txt"}), 403, "AccessDenied")
