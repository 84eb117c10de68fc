"""s3cmd (SigV4 mode, path-style, plain HTTP) against a real server, including its SigV2
presigned URLs fetched with curl."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.clients import BIN_DIR, client_env, run_cli
from tests.support.data import MIB, PatternStream, make_tree, read_tree, sha256_file
from tests.support.harness import CofferServer
from tests.support.s3 import client_error, unique

S3cmd = Callable[..., Any]


@pytest.fixture(scope="module")
def s3cmd(server: CofferServer, key: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> S3cmd:
    home = tmp_path_factory.mktemp("s3cmd-home")
    host = urlsplit(server.s3_url).netloc
    cfg = home / "s3cfg"
    cfg.write_text(
        "[default]\n"
        f"access_key = {key['accessKeyId']}\n"
        f"secret_key = {key['secretKey']}\n"
        f"host_base = {host}\n"
        f"host_bucket = {host}\n"  # no %(bucket)s: path-style
        "use_https = False\n"
        "bucket_location = us-east-04a\n"
        "signature_v2 = False\n"
        "check_ssl_certificate = False\n"
        "progress_meter = False\n"
    )
    env = client_env(home / "home")

    def call(*args: str, check: bool = True) -> Any:
        return run_cli([str(BIN_DIR / "s3cmd"), "-c", str(cfg), *args], env, check=check)

    return call


def curl(url: str) -> subprocess.CompletedProcess[bytes]:
    """GET with curl; stdout is the body, the status code is on stderr's last line."""
    return subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "%{stderr}%{http_code}", url],
        capture_output=True,
        timeout=60,
        check=True,
    )


def test_bucket_and_object_commands(s3cmd: S3cmd, boto: Any, tmp_path: Path) -> None:
    bucket = unique("s3cmd")
    assert f"Bucket 's3://{bucket}/' created" in s3cmd("mb", f"s3://{bucket}").stdout

    small = tmp_path / "hello world.txt"
    small.write_bytes(b"hello from s3cmd\n")
    s3cmd("put", str(small), f"s3://{bucket}/docs/hello world.txt")
    got = tmp_path / "got.txt"
    s3cmd("get", f"s3://{bucket}/docs/hello world.txt", str(got))
    assert got.read_bytes() == small.read_bytes()

    listing = s3cmd("ls", f"s3://{bucket}").stdout
    assert f"DIR  s3://{bucket}/docs/" in listing
    listing = s3cmd("ls", f"s3://{bucket}/docs/").stdout
    assert f"s3://{bucket}/docs/hello world.txt" in listing
    assert " 17  " in listing  # the size column

    everything = s3cmd("la").stdout  # every object of every bucket the key sees
    assert f"s3://{bucket}/docs/" in everything

    info = s3cmd("info", f"s3://{bucket}/docs/hello world.txt").stdout
    assert "File size: 17" in info
    assert "MIME type: text/plain" in info
    head = boto.head_object(Bucket=bucket, Key="docs/hello world.txt")
    assert head["ETag"].strip('"') in info  # "MD5 sum:"
    assert f"s3://{bucket}/ (bucket)" in s3cmd("info", f"s3://{bucket}").stdout

    s3cmd("del", f"s3://{bucket}/docs/hello world.txt")
    with pytest.raises(Exception) as gone:
        boto.head_object(Bucket=bucket, Key="docs/hello world.txt")
    assert client_error(gone.value)[0] == 404
    missing = s3cmd("get", f"s3://{bucket}/docs/hello world.txt", str(tmp_path / "none"), check=False)
    assert missing.returncode != 0 and "does not exist" in missing.stderr

    s3cmd("rb", f"s3://{bucket}")
    assert bucket not in {b["Name"] for b in boto.list_buckets()["Buckets"]}


def test_sync_twice(s3cmd: S3cmd, boto: Any, tmp_path: Path) -> None:
    bucket = unique("s3sync")
    s3cmd("mb", f"s3://{bucket}")
    src = tmp_path / "src"
    files = make_tree(src)
    first = s3cmd("sync", f"{src}/", f"s3://{bucket}/tree/").stdout
    assert first.count("upload: ") == len(files)
    keys = {o["Key"] for o in boto.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {f"tree/{rel}" for rel in files}

    second = s3cmd("sync", f"{src}/", f"s3://{bucket}/tree/").stdout
    assert "upload: " not in second, second

    back = tmp_path / "back"
    s3cmd("sync", f"s3://{bucket}/tree/", f"{back}/")
    assert read_tree(back) == read_tree(src)
    s3cmd("del", "--recursive", "--force", f"s3://{bucket}/")
    s3cmd("rb", f"s3://{bucket}")


def test_multipart_put(s3cmd: S3cmd, boto: Any, tmp_path: Path) -> None:
    bucket = unique("s3mp")
    s3cmd("mb", f"s3://{bucket}")
    big = tmp_path / "big.bin"
    stream = PatternStream(12 * MIB + 5, seed=4)
    with big.open("wb") as f:
        for chunk in stream.chunks():
            f.write(chunk)
    s3cmd("put", "--multipart-chunk-size-mb=5", str(big), f"s3://{bucket}/big.bin")
    head = boto.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == 12 * MIB + 5
    assert head["ETag"].endswith('-3"'), head["ETag"]
    back = tmp_path / "back.bin"
    s3cmd("get", f"s3://{bucket}/big.bin", str(back))  # s3cmd verifies its recorded MD5 too
    assert sha256_file(back) == stream.sha256.hexdigest()
    s3cmd("del", f"s3://{bucket}/big.bin")
    s3cmd("rb", f"s3://{bucket}")


def test_signurl_is_sigv2_and_curl_fetches_it(s3cmd: S3cmd, tmp_path: Path) -> None:
    bucket = unique("s3sign")
    s3cmd("mb", f"s3://{bucket}")
    body = tmp_path / "shared.txt"
    body.write_bytes(b"shared by a presigned url\n")
    s3cmd("put", str(body), f"s3://{bucket}/shared.txt")

    url = s3cmd("signurl", f"s3://{bucket}/shared.txt", "+300").stdout.strip()
    assert "AWSAccessKeyId=" in url and "Signature=" in url and "Expires=" in url  # SigV2
    fetched = curl(url)
    assert fetched.stderr.decode().strip().endswith("200")
    assert fetched.stdout == body.read_bytes()

    # A URL whose Expires lies in the past is refused, as is one for another key.
    expired = s3cmd("signurl", f"s3://{bucket}/shared.txt", str(int(time.time()) - 60)).stdout.strip()
    refused = curl(expired)
    assert refused.stderr.decode().strip().endswith("403")
    assert b"<Code>AccessDenied</Code>" in refused.stdout
    forged = curl(url.replace("shared.txt", "other.txt", 1))
    assert forged.stderr.decode().strip().endswith("403")
    assert b"<Code>SignatureDoesNotMatch</Code>" in forged.stdout
    s3cmd("del", f"s3://{bucket}/shared.txt")
    s3cmd("rb", f"s3://{bucket}")
