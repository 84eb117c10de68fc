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
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.support.data import MIB, PatternStream
from tests.support.harness import CofferServer
from tests.support.s3 import REGION, client_error, new_bucket, s3_client

pytestmark = pytest.mark.slow

BODY = 64 * MIB  # what the slow writers announce; they never get to send it all


@pytest.fixture(scope="module")
def owner(server: CofferServer) -> dict[str, Any]:
    return server.mint_key(duration=0, name="crash")


@pytest.fixture(scope="module")
def bucket(server: CofferServer, owner: dict[str, Any]) -> str:
    return new_bucket(s3_client(server, owner), "crash")


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


class HeldBody:
    """A signed request announcing a BODY-byte body (PatternStream) that sends only the first
    `send` bytes, then holds the connection open: the server is left waiting mid-body."""

    def __init__(
        self, server: CofferServer, key: dict[str, Any], method: str, target: str, *, seed: int, send: int
    ) -> None:
        assert 0 < send < BODY
        self.sock = socket.create_connection(("127.0.0.1", server.s3_port), timeout=30)
        self.sock.sendall(
            signed_head(server, key, method, target, length=BODY, payload_hash="UNSIGNED-PAYLOAD")
        )
        self.to_send = send
        self.sent = 0
        self.thread = threading.Thread(target=self._send, args=(seed,), daemon=True)
        self.thread.start()

    def _send(self, seed: int) -> None:
        stream = PatternStream(self.to_send, seed)
        try:
            for chunk in stream.chunks(256 << 10):
                self.sock.sendall(chunk)
                self.sent += len(chunk)
        except OSError:
            pass  # the server is gone: exactly what the test is after

    def wait_until_server_holds(self, server: CofferServer, before: set[str], nbytes: int) -> str:
        """Block until a temp file not in `before` has at least `nbytes`; return its name."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            grown = [n for n, size in tmp_files(server).items() if n not in before and size >= nbytes]
            if grown:
                return grown[0]
            time.sleep(0.01)
        pytest.fail(f"the server never wrote {nbytes} bytes of the held body ({self.sent} sent)")

    def close(self) -> None:
        self.sock.close()
        self.thread.join(timeout=30)


def gc_leaves_no_temp_files(server: CofferServer) -> int:
    removed = int(server.cli("admin", "gc", "--older-than", "0", "--orphans").stdout.strip())
    assert tmp_files(server) == {}
    return removed


def test_put_killed_mid_body_leaves_the_old_version(
    server: CofferServer, owner: dict[str, Any], bucket: str
) -> None:
    """Three PUTs cut off at once: early, midway and one byte short of the end."""
    s3 = s3_client(server, owner)
    old = {key: PatternStream(3 * MIB + n, seed=10 + n).read() for n, key in enumerate(("early", "late"))}
    for key, data in old.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    held: dict[str, HeldBody] = {}
    temp: dict[str, str] = {}
    for name, key, sent, seen in (
        ("never-existed", "never-existed", MIB + 1, 512 << 10),
        ("early", "early", 16 * MIB, 8 * MIB),
        ("late", "late", BODY - 1, BODY - 2 * MIB),
    ):
        before = set(tmp_files(server))
        held[name] = HeldBody(server, owner, "PUT", f"/{bucket}/{key}", seed=len(held) + 20, send=sent)
        temp[name] = held[name].wait_until_server_holds(server, before, seen)
    server.kill()
    for body in held.values():
        body.close()
    left = tmp_files(server)
    assert set(temp.values()) <= set(left)  # the dead writes' temp files are still there

    s3 = restart(server)
    for key, data in old.items():
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["ContentLength"] == len(data)
        assert got["Body"].read() == data, key
    with pytest.raises(ClientError) as gone:
        s3.head_object(Bucket=bucket, Key="never-existed")
    assert client_error(gone.value)[0] == 404
    listed = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {k: listed.get(k) for k in old} == {k: len(v) for k, v in old.items()}
    assert "never-existed" not in listed

    assert gc_leaves_no_temp_files(server) >= 3
    for key, data in old.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    s3.put_object(Bucket=bucket, Key="early", Body=b"writable again")
    assert s3.get_object(Bucket=bucket, Key="early")["Body"].read() == b"writable again"


def test_upload_part_killed_mid_body_keeps_the_whole_parts(
    server: CofferServer, owner: dict[str, Any], bucket: str
) -> None:
    s3 = s3_client(server, owner)
    key = "multipart.bin"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    part1 = PatternStream(5 * MIB, seed=13).read()
    part2 = PatternStream(MIB + 3, seed=14).read()
    etag1 = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=part1)["ETag"]
    etag2 = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=2, Body=part2)["ETag"]
    before = set(tmp_files(server))

    # Part 2 again (a replacement) and a new part 3, both cut off mid-body.
    target = f"/{bucket}/{key}?partNumber={{}}&uploadId={upload_id}"
    replacing = HeldBody(server, owner, "PUT", target.format(2), seed=15, send=8 * MIB)
    first = replacing.wait_until_server_holds(server, before, 4 * MIB)
    adding = HeldBody(server, owner, "PUT", target.format(3), seed=16, send=2 * MIB)
    adding.wait_until_server_holds(server, before | {first}, MIB)
    server.kill()
    replacing.close()
    adding.close()

    s3 = restart(server)
    parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == [
        (1, etag1, len(part1)),
        (2, etag2, len(part2)),
    ]
    assert gc_leaves_no_temp_files(server) >= 2
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag1}, {"PartNumber": 2, "ETag": etag2}]},
    )
    assert done["ETag"].endswith('-2"')
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == part1 + part2


def _prepared_upload(s3: Any, bucket: str, key: str, seed: int) -> tuple[str, list[dict[str, Any]], bytes]:
    """An upload of two parts (5 MiB and 1 MiB): (upload id, parts, content)."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts, content = [], b""
    for number, size in enumerate((5 * MIB, MIB), 1):
        data = PatternStream(size, seed=seed * 10 + number).read()
        part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data)
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
        content += data
    return upload_id, parts, content


def _complete_xml(parts: list[dict[str, Any]]) -> bytes:
    inner = "".join(
        f"<Part><PartNumber>{p['PartNumber']}</PartNumber><ETag>{p['ETag']}</ETag></Part>" for p in parts
    )
    return f"<CompleteMultipartUpload>{inner}</CompleteMultipartUpload>".encode()


COMPLETES_PER_KILL = 4


@pytest.mark.parametrize("step", [0.0005, 0.004, 0.02])
def test_complete_killed_at_any_moment_is_all_or_nothing(
    server: CofferServer, owner: dict[str, Any], bucket: str, step: float
) -> None:
    """Four CompleteMultipartUploads sent `step` seconds apart, the server killed `step`
    after the last: each object is then absent (and its upload still completes) or whole
    (and its upload is gone) — never anything in between."""
    s3 = s3_client(server, owner)
    uploads = {}
    for n in range(COMPLETES_PER_KILL):
        key = f"completed-{step}-{n}.bin"
        uploads[key] = _prepared_upload(s3, bucket, key, seed=n + int(step * 10000))
    sockets = []
    try:
        for key, (upload_id, parts, _) in uploads.items():
            xml = _complete_xml(parts)
            target = f"/{bucket}/{key}?uploadId={upload_id}"
            digest = hashlib.sha256(xml).hexdigest()
            head = signed_head(server, owner, "POST", target, length=len(xml), payload_hash=digest)
            sock = socket.create_connection(("127.0.0.1", server.s3_port), timeout=30)
            sockets.append(sock)
            sock.sendall(head + xml)
            time.sleep(step)
        server.kill()
    finally:
        for sock in sockets:
            sock.close()

    s3 = restart(server)
    outcomes = {"absent": 0, "whole": 0}
    for key, (upload_id, parts, content) in uploads.items():
        try:
            head_after = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            assert client_error(exc)[0] == 404
            outcomes["absent"] += 1
            # Not completed: the upload is intact and completes now.
            done = s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
            assert done["ETag"].endswith('-2"')
        else:
            outcomes["whole"] += 1
            assert head_after["ContentLength"] == len(content)
            # Completed before the kill: a retried Complete answers as the first did (AWS).
            again = s3.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
            assert again["ETag"] == head_after["ETag"]
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).digest() == hashlib.sha256(content).digest(), f"{key} is torn"
    print(f"\n{COMPLETES_PER_KILL} Completes {step * 1000:g} ms apart, then SIGKILL: {outcomes}")

    assert tmp_files(server) == {}  # completing copies nothing: no write was cut off


def test_gc_command_on_a_stopped_store(server: CofferServer) -> None:
    """`coffer admin gc` also works with no server at all, and by default spares young files."""
    stray = server.data_dir / "blobs" / ".tmp" / ("f" * 32)
    stray.write_bytes(b"left by a writer that died a moment ago")
    assert server.cli("admin", "gc").stdout.strip() == "0"  # younger than the 1 h default
    assert stray.exists()
    server.stop()
    try:
        assert int(server.cli("admin", "gc", "--older-than", "0").stdout.strip()) >= 1
        assert not stray.exists()
    finally:
        server.start()
