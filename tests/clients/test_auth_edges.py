"""Authentication edge cases end to end, on a one-worker and a two-worker server.

Requests are signed by botocore's own signers (S3SigV4Auth, the presigner, boto3) and sent
one fresh connection each, so on the two-worker server consecutive requests land on
whichever worker the kernel hands the connection to. Key changes made through the API must
hold on the very next request, whichever worker serves it: every "next request" check is
repeated over fresh connections, with no sleep in between, until each worker has served
some of them (the worker is the process holding the server end of the connection).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import boto3
import botocore.crt.auth  # noqa: F401 - patched below
import httpx
import psutil
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.support.harness import CofferServer
from tests.support.s3 import (
    REGION,
    assert_s3_error,
    bucket_fixture,
    client_error,
    s3_client,
    unique,
)

PER_WORKER = 3  # every "next request" check is served this many times by each worker


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker", "2-workers"])
def server_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"workers": int(request.param)}


bucket = bucket_fixture("bucket", "auth")  # made with the module's `key`, the owner in every test


@contextlib.contextmanager
def clock(skew: timedelta) -> Iterator[None]:
    """botocore's signing clock moved by `skew`: its Python signers and, since awscrt is
    installed, the CRT signers boto3 clients pick for S3."""

    def now(remove_tzinfo: bool = True) -> datetime:
        moved = datetime.now(UTC) + skew
        return moved.replace(tzinfo=None) if remove_tzinfo else moved

    with (
        mock.patch("botocore.auth.get_current_datetime", now),
        mock.patch("botocore.crt.auth.get_current_datetime", now),
    ):
        yield


def sign(
    server: CofferServer,
    key: dict[str, Any],
    method: str,
    path: str,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    skew: timedelta = timedelta(0),
) -> tuple[str, dict[str, str]]:
    """URL and headers of a request signed by botocore's S3 signer (payload hash signed, as
    botocore does over plain HTTP), optionally with its clock moved by `skew`."""
    url = server.s3_url + path + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    signer = S3SigV4Auth(Credentials(key["accessKeyId"], key["secretKey"]), "s3", REGION)
    with clock(skew):
        signer.add_auth(request)
    return url, {k.lower(): v for k, v in request.prepare().headers.items()}


def send(method: str, url: str, headers: dict[str, str], body: bytes = b"") -> httpx.Response:
    """One request on a fresh connection."""
    return httpx.request(method, url, headers=headers, content=body, timeout=30)


def list_buckets(server: CofferServer, key: dict[str, Any]) -> httpx.Response:
    return send("GET", *sign(server, key, "GET", "/"))


def _serving_process(server: CofferServer, client_port: int) -> int | None:
    """The pid of the server process holding the server end of a connection."""
    assert server.proc is not None
    root = psutil.Process(server.proc.pid)
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            for conn in proc.net_connections(kind="tcp"):
                if conn.raddr and conn.raddr.port == client_port and conn.laddr.port == server.s3_port:
                    return proc.pid
    return None


def list_buckets_traced(server: CofferServer, key: dict[str, Any]) -> tuple[httpx.Response, int | None]:
    """ListBuckets on a fresh connection, and which worker process served it."""
    _, headers = sign(server, key, "GET", "/")
    conn = http.client.HTTPConnection("127.0.0.1", server.s3_port, timeout=30)
    try:
        conn.connect()
        assert conn.sock is not None
        port = conn.sock.getsockname()[1]
        conn.request("GET", "/", headers=headers)
        reply = conn.getresponse()
        body = reply.read()
        served_by = _serving_process(server, port)
    finally:
        conn.close()
    return httpx.Response(reply.status, headers=reply.getheaders(), content=body), served_by


def next_requests(server: CofferServer, key: dict[str, Any]) -> list[httpx.Response]:
    """ListBuckets over fresh connections until every worker has served at least
    PER_WORKER of them (bounded); the caller checks every response."""
    served: Counter[int] = Counter()
    replies = []
    for _ in range(PER_WORKER * server.workers * 10):
        reply, pid = list_buckets_traced(server, key)
        replies.append(reply)
        if pid is not None:
            served[pid] += 1
        if len(served) >= server.workers and min(served.values()) >= PER_WORKER:
            return replies
    pytest.fail(f"{len(replies)} fresh connections did not reach all {server.workers} workers: {served}")


def presign(server: CofferServer, key: dict[str, Any], bucket: str, expires: int, skew: timedelta) -> str:
    client = s3_client(server, key)
    with clock(skew):
        url: str = client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "presigned.txt"}, ExpiresIn=expires
        )
    return url


# -- signatures ---------------------------------------------------------------------------------
def test_wrong_secret(server: CofferServer, key: dict[str, Any], bucket: str) -> None:
    wrong = {**key, "secretKey": key["secretKey"][:-1] + ("x" if key["secretKey"][-1] != "x" else "y")}
    for _ in range(2):  # a fresh boto3 client each time: fresh connections
        with pytest.raises(ClientError) as info:
            s3_client(server, wrong).list_objects_v2(Bucket=bucket)
        assert client_error(info.value) == (403, "SignatureDoesNotMatch")
    assert_s3_error(send("GET", *sign(server, wrong, "GET", f"/{bucket}")), 403, "SignatureDoesNotMatch")


def test_tampered_header_query_and_body(server: CofferServer, key: dict[str, Any], bucket: str) -> None:
    # A signed header changed in flight.
    url, headers = sign(server, key, "PUT", f"/{bucket}/meta.txt", headers={"x-amz-meta-colour": "blue"})
    headers["x-amz-meta-colour"] = "red"
    assert_s3_error(send("PUT", url, headers), 403, "SignatureDoesNotMatch")
    url, headers = sign(server, key, "GET", f"/{bucket}/meta.txt", headers={"range": "bytes=0-1"})
    headers["range"] = "bytes=0-9"
    assert_s3_error(send("GET", url, headers), 403, "SignatureDoesNotMatch")

    # A query parameter changed in flight.
    url, headers = sign(server, key, "GET", f"/{bucket}", query="list-type=2&prefix=public/")
    assert send("GET", url, headers).status_code == 200
    tampered = url.replace("prefix=public/", "prefix=private/")
    assert_s3_error(send("GET", tampered, headers), 403, "SignatureDoesNotMatch")

    # The body changed in flight, same length: the signature (over the headers) holds, the
    # signed payload hash does not, and nothing is stored.
    body = b"the body that was signed"
    url, headers = sign(server, key, "PUT", f"/{bucket}/body.txt", body=body)
    assert headers["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()
    forged = b"the body that was FORGED"
    assert len(forged) == len(body)
    assert_s3_error(send("PUT", url, headers, forged), 400, "XAmzContentSHA256Mismatch")
    assert_s3_error(send("GET", *sign(server, key, "GET", f"/{bucket}/body.txt")), 404, "NoSuchKey")
    assert send("PUT", url, headers, body).status_code == 200  # the genuine request still works


# -- time -----------------------------------------------------------------------------------------
def test_presigned_urls_expire_and_are_not_valid_early(
    server: CofferServer, key: dict[str, Any], bucket: str
) -> None:
    s3_client(server, key).put_object(Bucket=bucket, Key="presigned.txt", Body=b"shared")
    good = presign(server, key, bucket, 300, timedelta(0))
    assert httpx.get(good, timeout=30).content == b"shared"

    short = presign(server, key, bucket, 1, timedelta(0))
    signed_at = time.time()
    # X-Amz-Date has whole seconds: 2.5 s after signing, one second of validity has passed.
    time.sleep(max(0.0, signed_at + 2.5 - time.time()))
    expired = httpx.get(short, timeout=30)
    assert_s3_error(expired, 403, "AccessDenied")
    assert "Request has expired" in expired.text

    future = presign(server, key, bucket, 3600, timedelta(minutes=20))
    early = httpx.get(future, timeout=30)
    assert_s3_error(early, 403, "AccessDenied")
    assert "Request is not valid yet" in early.text


@pytest.mark.parametrize("minutes", [-20, 20])
def test_clock_skew(server: CofferServer, key: dict[str, Any], bucket: str, minutes: int) -> None:
    skewed = send("GET", *sign(server, key, "GET", f"/{bucket}", skew=timedelta(minutes=minutes)))
    assert_s3_error(skewed, 403, "RequestTimeTooSkewed")
    assert "<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>" in skewed.text
    # Ten minutes off is within the allowed fifteen.
    within = send("GET", *sign(server, key, "GET", f"/{bucket}", skew=timedelta(minutes=minutes // 2)))
    assert within.status_code == 200, within.text


def test_temporary_key_expires(server: CofferServer) -> None:
    """A 2-second key works, then fails with ExpiredToken (400); polled, bounded."""
    for _attempt in range(3):
        minted_at = time.monotonic()
        temp = server.mint_key(duration=2, name="two-seconds")
        first = list_buckets(server, temp)
        if first.status_code == 200:
            break
        # Only a machine too slow to use the key within its two seconds may see this.
        assert time.monotonic() - minted_at >= 2, first.text
    else:
        pytest.fail("could not use a 2-second key within 2 seconds three times")
    deadline = time.monotonic() + 30
    while True:
        r = list_buckets(server, temp)
        if r.status_code != 200:
            break
        assert time.monotonic() < deadline, "a 2-second key still works after 30 s"
        time.sleep(0.2)
    assert_s3_error(r, 400, "ExpiredToken")
    for later in next_requests(server, temp):
        assert_s3_error(later, 400, "ExpiredToken")
    # boto3 reports it the same way.
    with pytest.raises(ClientError) as info:
        s3_client(server, temp).list_buckets()
    assert client_error(info.value) == (400, "ExpiredToken")


# -- key and principal state -------------------------------------------------------------------
def test_revoked_key_is_refused_on_the_next_request(server: CofferServer) -> None:
    key = server.mint_key(duration=0, name="to-revoke")
    for warm in next_requests(server, key):  # every worker has now cached the key
        assert warm.status_code == 200, warm.text
    with server.api() as api:
        r = api.post("/v1/cwobject/revoke-access-key/access-key", json={"accessKey": key["accessKeyId"]})
        assert r.status_code == 200, r.text
    for refused in next_requests(server, key):
        assert_s3_error(refused, 403, "InvalidAccessKeyId")


def test_suspended_principal_then_reactivated(server: CofferServer) -> None:
    name = unique("suspend")
    principal, token = server.create_user(name, admin=True)
    policy = {  # Object Storage Admin alone grants nothing on S3
        "version": "v1alpha1",
        "name": name,
        "statements": [
            {"name": "s3", "effect": "Allow", "actions": ["s3:*"], "resources": ["*"]}
            | {"principals": [principal]}
        ],
    }
    with server.api() as api:
        api.post("/v1/cwobject/access-policy", json={"policy": policy}).raise_for_status()
    key = server.mint_key(token, duration=0, name="suspend-me")
    assert key["principalName"] == principal
    bystander = server.mint_key(duration=0, name="bystander")
    for warm in next_requests(server, key):
        assert warm.status_code == 200, warm.text

    with server.api() as api:
        r = api.put(
            "/v1/cwobject/access-key-status", json={"principalName": principal, "status": "SUSPENDED"}
        )
        assert r.status_code == 200, r.text
    for refused in next_requests(server, key):
        assert_s3_error(refused, 403, "AccessDenied")
        assert "suspended" in refused.text
    assert list_buckets(server, bystander).status_code == 200  # other principals are untouched

    with server.api() as api:
        r = api.put("/v1/cwobject/access-key-status", json={"principalName": principal, "status": "ACTIVE"})
        assert r.status_code == 200, r.text
    for back in next_requests(server, key):
        assert back.status_code == 200, back.text
    # And through boto3, with its own pooled connections.
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=server.s3_url,
        aws_access_key_id=key["accessKeyId"],
        aws_secret_access_key=key["secretKey"],
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    assert isinstance(client.list_buckets()["Buckets"], list)
