"""The browser features on virtual-hosted-style URLs, as CoreWeave serves them: a server
started with `--s3-domain localhost --strict-coreweave`, a CORS preflight and a form POST to
`http://<bucket>.localhost:<port>/`, and an object listing of versions through the same host.

`<bucket>.localhost` resolves to 127.0.0.1 inside this process only (see
`localhost_subdomains`); the clients use real sockets and send the real Host header.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.harness import CofferServer
from tests.support.s3 import s3_client, unique

ZONE = "US-EAST-04A"
PAGE = "https://uploader.example.com"


pytestmark = pytest.mark.usefixtures("subdomains_resolve")


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {"extra_args": ["--s3-domain", "localhost", "--strict-coreweave"]}


@pytest.fixture(scope="module")
def vs3(server: CofferServer) -> Any:
    key = server.mint_key(duration=0, name="vhost-browser")
    return s3_client(server, key, addressing_style="virtual", endpoint=f"http://localhost:{server.s3_port}")


@pytest.fixture(scope="module")
def bucket(vs3: Any) -> str:
    name = unique("vhb")
    vs3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": ZONE})
    vs3.put_bucket_cors(
        Bucket=name,
        CORSConfiguration={
            "CORSRules": [
                {"AllowedMethods": ["POST", "GET"], "AllowedOrigins": [PAGE], "ExposeHeaders": ["ETag"]}
            ]
        },
    )
    return name


def test_preflight_then_form_post_on_the_bucket_host(server: CofferServer, vs3: Any, bucket: str) -> None:
    host_url = f"http://{bucket}.localhost:{server.s3_port}/"
    r = httpx.options(host_url, headers={"Origin": PAGE, "Access-Control-Request-Method": "POST"}, timeout=30)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == PAGE
    presigned = vs3.generate_presigned_post(
        bucket,
        "in/${filename}",
        Fields={"success_action_status": "201"},
        Conditions=[{"success_action_status": "201"}],
    )
    assert presigned["url"] == host_url
    r = httpx.post(
        presigned["url"],
        data=presigned["fields"],
        files={"file": ("pic.jpg", b"jpeg bytes")},
        headers={"Origin": PAGE},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    assert (
        r.headers["access-control-allow-origin"] == PAGE
        and r.headers["access-control-expose-headers"] == "ETag"
    )
    assert r.headers["location"] == f"{host_url}in%2Fpic.jpg"
    assert vs3.get_object(Bucket=bucket, Key="in/pic.jpg")["Body"].read() == b"jpeg bytes"


def test_versions_and_tags_on_the_bucket_host(vs3: Any, bucket: str) -> None:
    vs3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = vs3.put_object(Bucket=bucket, Key="doc", Body=b"1", Tagging="v=1")["VersionId"]
    second = vs3.put_object(Bucket=bucket, Key="doc", Body=b"2", Tagging="v=2")["VersionId"]
    versions = vs3.list_object_versions(Bucket=bucket, Prefix="doc")["Versions"]
    assert [v["VersionId"] for v in versions] == [second, first]
    tags = vs3.get_object_tagging(Bucket=bucket, Key="doc", VersionId=first)["TagSet"]
    assert tags == [{"Key": "v", "Value": "1"}]
    attrs = vs3.get_object_attributes(
        Bucket=bucket, Key="doc", VersionId=first, ObjectAttributes=["ObjectSize"]
    )
    assert attrs["ObjectSize"] == 1 and attrs["VersionId"] == first
