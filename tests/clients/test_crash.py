"""SIGKILL the server mid-request, restart it on the same data, and look: never a torn object.

A body is streamed slowly from a thread over a raw socket, so it is provably mid-flight
when the plug is pulled: the kill waits until the server's temp file for it has grown
past a threshold. After the restart the key must hold its previous version, byte for byte
(or be absent if it had none); a multipart upload must still list only whole parts; a
CompleteMultipartUpload killed at any moment leaves the object either absent (and the
upload completable) or whole (and the upload gone). Finally `coffer admin gc` clears the
temp files the dead writes left, and every object still reads back whole.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.clients.conftest import MIB, REGION, PatternStream
from tests.harness import CofferServer, start_server, stop_server
from tests.s3.conftest import client_error, s3_client, unique

pytestmark = pytest.mark.slow

BODY = 64 * MIB  # what the slow writers announce; they never get to send it all


@pytest.fixture(scope="module")
def crashy(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CofferServer]:
    server = start_server(tmp_path_factory.mktemp(f"crash-{backend}"), backend)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def owner(crashy: CofferServer) -> dict[str, Any]:
    return crashy.mint_key(duration=0, name="crash")


@pytest.fixture(scope="module")
def bucket(crashy: CofferServer, owner: dict[str, Any]) -> str:
    name = unique("crash")
    s3_client(crashy, owner).create_bucket(Bucket=name)
    return name


def tmp_files(server: CofferServer) -> dict[str, int]:
    tmp = server.data_dir / "blobs" / ".tmp"
    return {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()} if tmp.exists() else {}


def restart(server: CofferServer) -> Any:
    """Start the killed server again on the same data dir and ports; a fresh boto3 client."""
    assert server.proc is not None and server.proc.poll() is not None, "kill it first"
    server.start()
    return s3_client(server, server.mint_key(duration=0, name="after-restart"))


def signed_head(
    server: CofferServer,
    key: dict[str, Any],
    method: str,
    target: str,
    *,
    length: int,
    payload_hash: str,
) -> bytes:
    """The request line and headers of a SigV4-signed request, ready for a raw socket."""
    host = f"127.0.0.1:{server.s3_port}"
    request = AWSRequest(
        method=method, url=server.s3_url + target, headers={"host": host, "content-length": str(length)}
    )
    signer = S3SigV4Auth(Credentials(key["accessKeyId"], key["secretKey"]), "s3", REGION)
    signer.payload = lambda _request: payload_hash  # type: ignore[method-assign]
    signer.add_auth(request)
    lines = [f"{method} {target} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in request.prepare().headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class SlowBody:
    """Sends a signed request whose body (BODY bytes of PatternStream) trickles out of a thread."""

    def __init__(
        self, server: CofferServer, key: dict[str, Any], method: str, target: str, seed: int
    ) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.s3_port), timeout=30)
        self.sock.sendall(
            signed_head(server, key, method, target, length=BODY, payload_hash="UNSIGNED-PAYLOAD")
        )
        self.sent = 0
        self.stream = PatternStream(BODY, seed)
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self) -> None:
        try:
            for chunk in self.stream.chunks(256 << 10):
                self.sock.sendall(chunk)
                self.sent += len(chunk)
                time.sleep(0.005)
        except OSError:
            pass  # the server is gone: exactly what the test is after

    def wait_until_server_holds(self, server: CofferServer, before: set[str], nbytes: int) -> str:
        """Block until a new temp file of at least `nbytes` exists; return its name."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            grown = [n for n, size in tmp_files(server).items() if n not in before and size >= nbytes]
            if grown:
                return grown[0]
            assert self.thread.is_alive(), "the upload ended before it was mid-flight"
            time.sleep(0.01)
        pytest.fail(f"the server never buffered {nbytes} bytes of the slow body ({self.sent} sent)")

    def close(self) -> None:
        self.sock.close()
        self.thread.join(timeout=30)


def gc_leaves_no_temp_files(server: CofferServer) -> int:
    removed = int(server.cli("admin", "gc", "--older-than", "0", "--orphans").stdout.strip())
    assert tmp_files(server) == {}
    return removed


@pytest.mark.parametrize("threshold", [1 * MIB, 16 * MIB])
def test_put_killed_mid_body_leaves_the_old_version(
    crashy: CofferServer, owner: dict[str, Any], bucket: str, threshold: int
) -> None:
    s3 = s3_client(crashy, owner)
    old = PatternStream(3 * MIB + 17, seed=10).read()
    s3.put_object(Bucket=bucket, Key="overwritten.bin", Body=old)
    before = set(tmp_files(crashy))

    slow = SlowBody(crashy, owner, "PUT", f"/{bucket}/overwritten.bin", seed=11)
    fresh = SlowBody(crashy, owner, "PUT", f"/{bucket}/never-existed.bin", seed=12)
    partial = slow.wait_until_server_holds(crashy, before, threshold)
    fresh.wait_until_server_holds(crashy, before | {partial}, MIB)
    crashy.kill()
    slow.close()
    fresh.close()
    assert slow.sent < BODY and fresh.sent < BODY
    left = tmp_files(crashy)
    assert left[partial] >= threshold  # the dead write's temp file is still there

    s3 = restart(crashy)
    got = s3.get_object(Bucket=bucket, Key="overwritten.bin")
    assert got["ContentLength"] == len(old)
    assert got["Body"].read() == old
    with pytest.raises(ClientError) as gone:
        s3.head_object(Bucket=bucket, Key="never-existed.bin")
    assert client_error(gone.value)[0] == 404
    listed = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed.get("overwritten.bin") == len(old) and "never-existed.bin" not in listed

    assert gc_leaves_no_temp_files(crashy) >= 2
    assert s3.get_object(Bucket=bucket, Key="overwritten.bin")["Body"].read() == old
    s3.put_object(Bucket=bucket, Key="overwritten.bin", Body=b"writable again")
    assert s3.get_object(Bucket=bucket, Key="overwritten.bin")["Body"].read() == b"writable again"


def test_upload_part_killed_mid_body_keeps_the_whole_parts(
    crashy: CofferServer, owner: dict[str, Any], bucket: str
) -> None:
    s3 = s3_client(crashy, owner)
    key = "multipart.bin"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part1 = PatternStream(5 * MIB, seed=13).read()
    part2 = PatternStream(MIB + 3, seed=14).read()
    etag1 = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=part1)["ETag"]
    etag2 = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=2, Body=part2)["ETag"]
    before = set(tmp_files(crashy))

    # Part 2 again (a replacement) and a new part 3, both cut off mid-body.
    target = f"/{bucket}/{key}?partNumber={{}}&uploadId={upload_id}"
    replacing = SlowBody(crashy, owner, "PUT", target.format(2), seed=15)
    adding = SlowBody(crashy, owner, "PUT", target.format(3), seed=16)
    first = replacing.wait_until_server_holds(crashy, before, 4 * MIB)
    adding.wait_until_server_holds(crashy, before | {first}, MIB)
    crashy.kill()
    replacing.close()
    adding.close()

    s3 = restart(crashy)
    parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == [
        (1, etag1, len(part1)),
        (2, etag2, len(part2)),
    ]
    assert gc_leaves_no_temp_files(crashy) >= 2
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag1}, {"PartNumber": 2, "ETag": etag2}]},
    )
    assert done["ETag"].endswith('-2"')
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == part1 + part2


def _prepared_upload(s3: Any, bucket: str, key: str, seed: int) -> tuple[str, bytes, bytes]:
    """An upload of three parts (5 MiB, 5 MiB, 1 MiB): (upload id, Complete XML, content)."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    content = b""
    xml = ["<CompleteMultipartUpload>"]
    for number, size in enumerate((5 * MIB, 5 * MIB, MIB), 1):
        data = PatternStream(size, seed=seed * 10 + number).read()
        part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data)
        etag = part["ETag"]
        xml.append(f"<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>")
        content += data
    xml.append("</CompleteMultipartUpload>")
    return upload_id, "".join(xml).encode(), content


def test_complete_killed_at_any_moment_is_all_or_nothing(
    crashy: CofferServer, owner: dict[str, Any], bucket: str
) -> None:
    outcomes = {"absent": 0, "whole": 0}
    for round_, delay in enumerate((0.0, 0.002, 0.005, 0.01, 0.03, 0.2)):
        s3 = s3_client(crashy, owner)
        key = f"completed-{round_}.bin"
        upload_id, xml, content = _prepared_upload(s3, bucket, key, seed=20 + round_)
        target = f"/{bucket}/{key}?uploadId={upload_id}"
        head = signed_head(
            crashy, owner, "POST", target, length=len(xml), payload_hash=hashlib.sha256(xml).hexdigest()
        )
        with socket.create_connection(("127.0.0.1", crashy.s3_port), timeout=30) as sock:
            sock.sendall(head + xml)
            time.sleep(delay)
            crashy.kill()

        s3 = restart(crashy)
        parts = [{"PartNumber": n, "ETag": e} for n, e in _etags(xml)]
        try:
            head_after = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            assert client_error(exc)[0] == 404
            outcomes["absent"] += 1
            # Not completed: the upload is intact and completes now.
            done = s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
            assert done["ETag"].endswith('-3"')
        else:
            outcomes["whole"] += 1
            assert head_after["ContentLength"] == len(content)
            with pytest.raises(ClientError) as again:
                s3.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
            assert client_error(again.value) == (404, "NoSuchUpload")
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(content).digest(), f"torn at delay {delay}"
    print(f"\nCompleteMultipartUpload killed after 0-200 ms: {outcomes}")
    assert sum(outcomes.values()) == 6

    gc_leaves_no_temp_files(crashy)
    s3 = s3_client(crashy, owner)
    for round_ in range(6):
        assert s3.head_object(Bucket=bucket, Key=f"completed-{round_}.bin")["ContentLength"] == 11 * MIB


def _etags(xml: bytes) -> Iterator[tuple[int, str]]:
    text = xml.decode()
    for chunk in text.split("<Part>")[1:]:
        number = int(chunk.split("<PartNumber>")[1].split("</PartNumber>")[0])
        yield number, chunk.split("<ETag>")[1].split("</ETag>")[0]


def test_gc_command_on_a_stopped_store(crashy: CofferServer) -> None:
    """`coffer admin gc` also works with no server at all, and by default spares young files."""
    stray = crashy.data_dir / "blobs" / ".tmp" / ("f" * 32)
    stray.write_bytes(b"left by a writer that died a moment ago")
    assert crashy.cli("admin", "gc").stdout.strip() == "0"  # younger than the 1 h default
    assert stray.exists()
    crashy.stop()
    try:
        assert int(crashy.cli("admin", "gc", "--older-than", "0").stdout.strip()) >= 1
        assert not stray.exists()
    finally:
        crashy.start()
