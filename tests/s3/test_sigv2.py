"""Legacy Signature Version 2, on by default and switchable off (`--no-sigv2`): header auth
from boto3's `s3` signer, query auth from s3cmd's `signurl` fetched with curl, and SigV2
POST policies; with SigV2 off every one of them is refused while SigV4 keeps working."""

from __future__ import annotations

import base64
import hmac
import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.support.clients import BIN_DIR, client_env, run_cli
from tests.support.harness import CofferServer, running_server
from tests.support.s3 import assert_s3_error, client_error, new_bucket, s3_client, unique

NOT_SUPPORTED = "Signature Version 2 is disabled on this endpoint."


@pytest.fixture(scope="module")
def nosig(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CofferServer]:
    """A second server of the same backend, started with --no-sigv2."""
    with running_server(
        tmp_path_factory.mktemp(f"nosig-{backend}"), backend, extra_args=["--no-sigv2"]
    ) as srv:
        yield srv


def signurl(server: CofferServer, key: dict[str, Any], home: Path, target: str) -> str:
    """s3cmd's presigned URL for `target` (always SigV2 query auth, whatever signature_version says)."""
    host = urlsplit(server.s3_url).netloc
    cfg = home / "s3cfg"
    cfg.write_text(
        f"[default]\naccess_key = {key['accessKeyId']}\nsecret_key = {key['secretKey']}\n"
        f"host_base = {host}\nhost_bucket = {host}\nuse_https = False\nsignature_v2 = False\n"
    )
    env = client_env(home / "home")
    result = run_cli([str(BIN_DIR / "s3cmd"), "-c", str(cfg), "signurl", target, "+300"], env)
    url = result.stdout.strip()
    assert "AWSAccessKeyId=" in url and "Signature=" in url and "Expires=" in url
    return url


def curl(url: str) -> tuple[int, bytes]:
    done = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "%{stderr}%{http_code}", url],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return int(done.stderr.decode().strip()[-3:]), done.stdout


def v2_policy_fields(key: dict[str, Any], bucket: str, object_key: str) -> dict[str, str]:
    expiration = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = {"expiration": expiration, "conditions": [{"bucket": bucket}, {"key": object_key}]}
    policy = base64.b64encode(json.dumps(document).encode()).decode()
    signature = base64.b64encode(hmac.digest(key["secretKey"].encode(), policy.encode(), "sha1")).decode()
    return {"key": object_key, "AWSAccessKeyId": key["accessKeyId"], "policy": policy, "signature": signature}


def test_sigv2_works_by_default(server: CofferServer, key: dict[str, Any], s3: Any, tmp_path: Path) -> None:
    bucket = unique("v2on")
    v2 = s3_client(server, key, signature_version="s3")
    v2.create_bucket(Bucket=bucket)
    v2.put_object(Bucket=bucket, Key="dir/file name.txt", Body=b"via sigv2 header auth")
    assert s3.get_object(Bucket=bucket, Key="dir/file name.txt")["Body"].read() == b"via sigv2 header auth"
    assert v2.get_object(Bucket=bucket, Key="dir/file name.txt")["Body"].read() == b"via sigv2 header auth"
    url = signurl(server, key, tmp_path, f"s3://{bucket}/dir/file name.txt")
    status, body = curl(url)
    assert status == 200 and body == b"via sigv2 header auth"
    r = httpx.post(f"{server.s3_url}/{bucket}", data=v2_policy_fields(key, bucket, "posted"),
                   files={"file": ("f", b"v2 post")}, timeout=30)  # fmt: skip
    assert r.status_code == 204, r.text
    assert s3.get_object(Bucket=bucket, Key="posted")["Body"].read() == b"v2 post"


def test_no_sigv2_refuses_every_sigv2_form(nosig: CofferServer, tmp_path: Path) -> None:
    key = nosig.mint_key(duration=0, name="nosig")
    v4 = s3_client(nosig, key)
    bucket = new_bucket(v4, "v2off")
    v4.put_object(Bucket=bucket, Key="k", Body=b"sigv4 still works")
    v2 = s3_client(nosig, key, signature_version="s3")
    with pytest.raises(ClientError) as err:
        v2.get_object(Bucket=bucket, Key="k")
    assert client_error(err.value) == (400, "InvalidRequest")
    assert NOT_SUPPORTED in err.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as err:
        v2.put_object(Bucket=bucket, Key="v2", Body=b"x")
    assert client_error(err.value) == (400, "InvalidRequest")
    status, body = curl(signurl(nosig, key, tmp_path, f"s3://{bucket}/k"))
    assert status == 400 and b"<Code>InvalidRequest</Code>" in body and NOT_SUPPORTED.encode() in body
    r = httpx.post(f"{nosig.s3_url}/{bucket}", data=v2_policy_fields(key, bucket, "posted"),
                   files={"file": ("f", b"v2 post")}, timeout=30)  # fmt: skip
    assert_s3_error(r, 400, "InvalidRequest")
    assert NOT_SUPPORTED in r.text
    # Nothing was written by the refused requests; SigV4 (header and presigned) still works.
    keys = [o["Key"] for o in v4.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["k"]
    url = v4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    assert httpx.get(url, timeout=30).content == b"sigv4 still works"
