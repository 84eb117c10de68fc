"""CORS end to end: the bucket configuration (boto3 and the aws CLI, with S3's validation),
unauthenticated preflights over real sockets (httpx), and the headers actual responses
carry when a rule admits their origin."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.support.clients import Cli
from tests.support.harness import CofferServer
from tests.support.s3 import assert_s3_error, client_error, new_bucket, signed, unique

VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"
RULES = [
    {
        "ID": "uploads",
        "AllowedMethods": ["PUT", "POST"],
        "AllowedOrigins": ["https://app.example.com"],
        "AllowedHeaders": ["content-type", "x-amz-*"],
        "ExposeHeaders": ["ETag", "x-amz-version-id"],
        "MaxAgeSeconds": 600,
    },
    {"AllowedMethods": ["GET", "HEAD"], "AllowedOrigins": ["https://*.example.com"], "MaxAgeSeconds": 60},
    {"AllowedMethods": ["GET"], "AllowedOrigins": ["start*end"]},
    {"AllowedMethods": ["GET"], "AllowedOrigins": ["prefix*"]},
    {"AllowedMethods": ["GET"], "AllowedOrigins": ["*suffix"]},
    {"AllowedMethods": ["DELETE"], "AllowedOrigins": ["*"]},
]


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    name = new_bucket(s3, "cors")
    with pytest.raises(ClientError) as err:
        s3.get_bucket_cors(Bucket=name)
    assert client_error(err.value) == (404, "NoSuchCORSConfiguration")
    s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": RULES})
    s3.put_object(Bucket=name, Key="obj", Body=b"data")
    return name


def preflight(server: CofferServer, path: str, **headers: str) -> httpx.Response:
    names = {
        "origin": "Origin",
        "method": "Access-Control-Request-Method",
        "headers": "Access-Control-Request-Headers",
    }
    return httpx.options(server.s3_url + path, headers={names[k]: v for k, v in headers.items()}, timeout=30)


def test_configuration_round_trip(s3: Any, bucket: str) -> None:
    rules = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert rules == RULES


@pytest.mark.parametrize(
    ("origin", "method", "allowed"),
    [
        ("https://app.example.com", "GET", "https://app.example.com"),  # rule 2 through its wildcard
        ("https://cdn.example.com", "HEAD", "https://cdn.example.com"),
        ("https://example.com", "GET", None),  # "https://*.example.com" needs a label
        ("startend", "GET", "startend"),
        ("start12end", "GET", "start12end"),
        ("0start12end", "GET", None),
        ("prefix", "GET", "prefix"),
        ("prefix.suffix", "GET", "prefix.suffix"),
        ("bla.prefix", "GET", None),
        ("foo.suffix", "GET", "foo.suffix"),
        ("foo.suffix.get", "GET", None),
        ("foo.suffix", "PUT", None),  # right origin, wrong method
        ("anything.at.all", "DELETE", "*"),
    ],
)
def test_preflight_origin_and_method_matching(
    server: CofferServer, bucket: str, origin: str, method: str, allowed: str | None
) -> None:
    r = preflight(server, f"/{bucket}/obj", origin=origin, method=method)
    if allowed is None:
        assert_s3_error(r, 403, "AccessForbidden")
        assert "CORSResponse: This CORS request is not allowed." in r.text
        assert "<Method>" + method + "</Method>" in r.text and "<ResourceType>OBJECT</ResourceType>" in r.text
        assert "access-control-allow-origin" not in r.headers
        return
    assert r.status_code == 200, r.text
    assert r.content == b""
    assert r.headers["access-control-allow-origin"] == allowed
    assert method in r.headers["access-control-allow-methods"].split(", ")
    assert r.headers["vary"] == VARY
    assert ("access-control-allow-credentials" in r.headers) == (allowed != "*")


def test_first_matching_rule_wins_and_requested_headers(server: CofferServer, bucket: str) -> None:
    r = preflight(
        server, f"/{bucket}/obj", origin="https://app.example.com", method="PUT",
        headers="Content-Type, X-Amz-Meta-Owner, x-amz-date",
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-methods"] == "PUT, POST"
    assert r.headers["access-control-allow-headers"] == "content-type, x-amz-meta-owner, x-amz-date"
    assert r.headers["access-control-expose-headers"] == "ETag, x-amz-version-id"
    assert r.headers["access-control-max-age"] == "600"
    assert r.headers["access-control-allow-credentials"] == "true"
    # A header no AllowedHeader admits fails the whole preflight.
    r = preflight(
        server, f"/{bucket}/obj", origin="https://app.example.com", method="PUT", headers="authorization"
    )
    assert_s3_error(r, 403, "AccessForbidden")
    # Rule 2 admits GET for this origin but allows no request headers at all.
    r = preflight(server, f"/{bucket}", origin="https://app.example.com", method="GET", headers="x-custom")
    assert_s3_error(r, 403, "AccessForbidden")
    assert "<ResourceType>BUCKET</ResourceType>" in r.text


def test_preflight_errors(server: CofferServer, s3: Any, bucket: str) -> None:
    r = preflight(server, f"/{bucket}/obj")
    assert_s3_error(r, 400, "BadRequest")
    assert "Origin request header needed" in r.text
    r = preflight(server, f"/{bucket}/obj", origin="https://app.example.com")
    assert_s3_error(r, 400, "BadRequest")
    assert "Invalid Access-Control-Request-Method: null" in r.text
    r = preflight(server, f"/{bucket}/obj", origin="https://app.example.com", method="PATCH")
    assert_s3_error(r, 400, "BadRequest")
    plain = new_bucket(s3, "nocors")
    r = preflight(server, f"/{plain}/k", origin="https://app.example.com", method="GET")
    assert_s3_error(r, 403, "AccessForbidden")
    assert "CORSResponse: CORS is not enabled for this bucket." in r.text
    r = preflight(server, f"/{unique('absent')}/k", origin="https://app.example.com", method="GET")
    assert_s3_error(r, 403, "AccessForbidden")
    assert "CORSResponse: Bucket not found" in r.text


def test_actual_responses_carry_cors_headers(server: CofferServer, key: dict[str, Any], bucket: str) -> None:
    origin = {"Origin": "https://app.example.com"}
    r = signed(server, key, "GET", f"/{bucket}/obj", headers=origin)
    assert r.status_code == 200 and r.content == b"data"
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    assert r.headers["access-control-allow-methods"] == "GET, HEAD"
    assert r.headers["access-control-max-age"] == "60"
    assert r.headers["vary"] == VARY
    # PUT matches the first rule, whose expose headers let a browser read the ETag.
    r = signed(server, key, "PUT", f"/{bucket}/put-from-browser", body=b"x", headers=origin)
    assert r.status_code == 200
    assert r.headers["access-control-expose-headers"] == "ETag, x-amz-version-id"
    # Errors are decorated too, so a page can read them.
    r = signed(server, key, "GET", f"/{bucket}/absent", headers=origin)
    assert_s3_error(r, 404, "NoSuchKey")
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    # An origin no rule admits: no Allow-Origin, but the answer still varies on it.
    r = signed(server, key, "GET", f"/{bucket}/obj", headers={"Origin": "https://evil.test"})
    assert (
        r.status_code == 200 and "access-control-allow-origin" not in r.headers and r.headers["vary"] == VARY
    )
    # Without an Origin nothing CORS-related is added.
    r = signed(server, key, "GET", f"/{bucket}/obj")
    assert "access-control-allow-origin" not in r.headers and "vary" not in r.headers


def _cors_xml(*rules: str) -> bytes:
    return (
        "<CORSConfiguration>" + "".join(f"<CORSRule>{r}</CORSRule>" for r in rules) + "</CORSConfiguration>"
    ).encode()


OK_RULE = "<AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin>"


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (_cors_xml("<AllowedMethod>PATCH</AllowedMethod><AllowedOrigin>*</AllowedOrigin>"), "InvalidRequest",
         "Unsupported method is PATCH"),
        (_cors_xml("<AllowedMethod>GET</AllowedMethod><AllowedOrigin>http://*.*.com</AllowedOrigin>"),
         "InvalidRequest", "can not have more than one wildcard"),
        (_cors_xml(OK_RULE + "<AllowedHeader>x-*-*</AllowedHeader>"), "InvalidRequest",
         "can not have more than one wildcard"),
        (_cors_xml(OK_RULE + "<ExposeHeader>*</ExposeHeader>"), "InvalidRequest", "contains wildcard"),
        (_cors_xml("<AllowedMethod>GET</AllowedMethod>"), "MalformedXML", ""),
        (_cors_xml("<AllowedOrigin>*</AllowedOrigin>"), "MalformedXML", ""),
        (_cors_xml(OK_RULE + "<MaxAgeSeconds>soon</MaxAgeSeconds>"), "MalformedXML", ""),
        (_cors_xml(*[OK_RULE] * 101), "MalformedXML", "100 rules"),
        (b"<CORSConfiguration/>", "MalformedXML", ""),
        (b"<CORSConfiguration><CORSRule>", "MalformedXML", ""),
    ],
)  # fmt: skip
def test_invalid_configurations_change_nothing(
    server: CofferServer, key: dict[str, Any], s3: Any, bucket: str, body: bytes, code: str, message: str
) -> None:
    r = signed(server, key, "PUT", f"/{bucket}", query="cors", body=body)
    assert_s3_error(r, 400, code)
    assert message in r.text
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES


def test_delete_configuration(server: CofferServer, s3: Any) -> None:
    name = new_bucket(s3, "corsdel")
    s3.put_bucket_cors(
        Bucket=name, CORSConfiguration={"CORSRules": [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]}
    )
    assert preflight(server, f"/{name}/k", origin="https://x.test", method="GET").status_code == 200
    s3.delete_bucket_cors(Bucket=name)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_cors(Bucket=name)
    assert client_error(err.value) == (404, "NoSuchCORSConfiguration")
    r = preflight(server, f"/{name}/k", origin="https://x.test", method="GET")
    assert_s3_error(r, 403, "AccessForbidden")


def test_aws_cli_cors(aws: Cli, server: CofferServer) -> None:
    name = unique("clicors")
    aws("s3api", "create-bucket", "--bucket", name)
    config = {
        "CORSRules": [
            {"AllowedMethods": ["GET"], "AllowedOrigins": ["https://site.test"], "MaxAgeSeconds": 5}
        ]
    }
    aws("s3api", "put-bucket-cors", "--bucket", name, "--cors-configuration", json.dumps(config))
    assert aws("s3api", "get-bucket-cors", "--bucket", name)["CORSRules"] == config["CORSRules"]
    r = preflight(server, f"/{name}/any", origin="https://site.test", method="GET")
    assert r.status_code == 200 and r.headers["access-control-max-age"] == "5"
    bad = {"CORSRules": [{"AllowedMethods": ["TRACE"], "AllowedOrigins": ["*"]}]}
    result = aws(
        "s3api", "put-bucket-cors", "--bucket", name, "--cors-configuration", json.dumps(bad), check=False
    )
    assert result.returncode != 0 and "InvalidRequest" in result.stderr
    aws("s3api", "delete-bucket-cors", "--bucket", name)
    missing = aws("s3api", "get-bucket-cors", "--bucket", name, check=False)
    assert missing.returncode != 0 and "NoSuchCORSConfiguration" in missing.stderr
