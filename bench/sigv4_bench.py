"""Micro-benchmark: microseconds per SigV4 verification on this machine (not a test).

Signs typical requests once with botocore, then times `authenticate()` on them in a
loop, the way the S3 face calls it for every request. Run:

    python -m bench.sigv4_bench [iterations]
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, _host_from_url
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from coffer.identity.models import AccessKey, KeyCredentials, KeySource
from coffer.s3.sigv4 import SignedRequest, authenticate

ACCESS_KEY_ID = "CWBENCHBENCHBENC"
SECRET = "cwo" + "b" * 40


def _signed(request: AWSRequest) -> SignedRequest:
    prepared = request.prepare()
    url = urlsplit(prepared.url)
    host = _host_from_url(prepared.url)
    headers = [(k.lower(), v if isinstance(v, str) else v.decode()) for k, v in prepared.headers.items()]
    headers.append(("host", host))
    headers.append(("user-agent", "Boto3/1.40 md/Botocore#1.40 ua/2.1 os/linux lang/python#3.11"))
    headers.append(("accept-encoding", "identity"))
    return SignedRequest(prepared.method, url.path, url.query, headers, host=host)


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    key = AccessKey(
        access_key_id=ACCESS_KEY_ID,
        org_id="org",
        principal_name="coreweave/bench",
        user_id="bench",
        source=KeySource.API_TOKEN,
        role=None,
        attributes={},
        multi_attributes={},
        created_at=datetime.now(UTC),
        expires_at=None,
        revoked_at=None,
        suspended=False,
    )
    creds = KeyCredentials(key=key, secret_key=SECRET, session_token_hash=None)
    cache = {ACCESS_KEY_ID: creds}
    lookup = cache.get
    botocreds = Credentials(ACCESS_KEY_ID, SECRET)

    cases: dict[str, SignedRequest] = {}
    get = AWSRequest("GET", "https://bucket.cwobject.local/photos/2025/cat.jpg")
    S3SigV4Auth(botocreds, "s3", "us-east-04a").add_auth(get)
    cases["GET object (header auth)"] = _signed(get)
    put = AWSRequest(
        "PUT",
        "https://bucket.cwobject.local/data/part%20one.bin",
        data=b"x" * 1024,
        params={"partNumber": "3", "uploadId": "abcdef0123456789"},
        headers={"Content-Type": "application/octet-stream", "x-amz-meta-owner": "ml team"},
    )
    S3SigV4Auth(botocreds, "s3", "us-east-04a").add_auth(put)
    cases["PUT part (header auth, query, metadata)"] = _signed(put)
    listing = AWSRequest(
        "GET", "https://bucket.cwobject.local/", params={"list-type": "2", "prefix": "logs/2025 01/"}
    )
    S3SigV4Auth(botocreds, "s3", "us-east-04a").add_auth(listing)
    cases["ListObjectsV2 (encoded prefix)"] = _signed(listing)
    presigned = AWSRequest("GET", "https://bucket.cwobject.local/shared/report.pdf")
    S3SigV4QueryAuth(botocreds, "s3", "us-east-04a", expires=3600).add_auth(presigned)
    cases["presigned GET"] = _signed(presigned)

    for name, request in cases.items():
        assert authenticate(request, lookup) is not None
        now = datetime.now(UTC)
        start = time.perf_counter()
        for _ in range(iterations):
            authenticate(request, lookup, now=now)
        elapsed = time.perf_counter() - start
        print(f"{name:45s} {elapsed / iterations * 1e6:7.1f} µs per verification")


if __name__ == "__main__":
    main()
