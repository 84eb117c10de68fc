"""Deleting objects on a full disk frees space within seconds, and a GET already
streaming a deleted object still gets all of it.

Before issue 12, writes kept failing with 507 InsufficientStorage for the collector's
ten-minute grace after the deletes. Here the blob store is a real 32 MiB tmpfs (mounting
one needs root or CAP_SYS_ADMIN; without it the test skips and says so), the metadata
stays on the ordinary disk, and everything goes through a real server over sockets.
tests/storage/test_space.py covers the same logic with a simulated full disk.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from tests.support.harness import CofferServer, stop_server
from tests.support.s3 import client_error, new_bucket, s3_client

BLOB_FS_SIZE = 32 << 20
STREAMED = 16 << 20  # much more than a stalled reader's socket buffers and read-ahead hold
FILLER = 1 << 20
GRACE = 600  # seconds: the collector's usual grace, which the test must beat by far


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data directory whose blobs/ is a small tmpfs of its own."""
    if sys.platform != "linux":
        pytest.skip("needs Linux to mount a small tmpfs")
    data = tmp_path / "data"
    blobs = data / "blobs"
    blobs.mkdir(parents=True)
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={BLOB_FS_SIZE},mode=0700", "tmpfs", str(blobs)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("no mount command to make a small filesystem for the blob store")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root or CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    yield data
    if subprocess.run(["umount", str(blobs)], capture_output=True, check=False).returncode != 0:
        subprocess.run(["umount", "-l", str(blobs)], capture_output=True, check=False)


class StalledGet:
    """A GET over a raw socket with a tiny receive buffer: it reads the head and a little
    body, then stops reading until told to finish, so the server holds the blob open."""

    def __init__(self, server: CofferServer, url: str) -> None:
        parts = urlsplit(url)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        self.sock.settimeout(60)
        self.sock.connect(("127.0.0.1", server.s3_port))
        request = (
            f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += self._recv()
        head, self.body = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].split(" ")[1] == "200", head
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        self.length = int(headers["content-length"])

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        assert chunk, "the server closed the connection early"
        return chunk

    def finish(self) -> bytes:
        try:
            while len(self.body) < self.length:
                self.body += self._recv()
        finally:
            self.sock.close()
        return self.body


def held_blobs(pid: int, blobs: Path) -> dict[str, str]:
    """Blob files the process has open: {path: what /proc says (ends ' (deleted)' once unlinked)}."""
    held = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        path = target.removesuffix(" (deleted)")
        if path.startswith(f"{blobs}/") and "/.tmp/" not in path and len(Path(path).name) == 32:
            held[path] = target
    return held


def put(s3: Any, bucket: str, key: str, body: bytes) -> bool:
    """True when stored; False on 507 InsufficientStorage (anything else fails the test)."""
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        return True
    except ClientError as exc:
        assert client_error(exc) == (507, "InsufficientStorage"), exc
        return False


def test_deleting_on_a_full_disk_frees_space_within_seconds(data_dir: Path) -> None:
    server = CofferServer(data_dir=data_dir).start()
    try:
        s3 = s3_client(server, server.mint_key())
        bucket = new_bucket(s3, "full")
        streamed = os.urandom(STREAMED)
        assert put(s3, bucket, "streamed", streamed)
        fillers: list[str] = []
        while put(s3, bucket, f"filler-{len(fillers)}", os.urandom(FILLER)):
            fillers.append(f"filler-{len(fillers)}")
            assert len(fillers) < 2 * BLOB_FS_SIZE // FILLER, "the small filesystem never filled up"
        assert len(fillers) >= 4

        url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "streamed"})
        reader = StalledGet(server, url)
        assert server.proc is not None
        held: dict[str, str] = {}
        opened = time.monotonic()
        while not held and time.monotonic() - opened < 30:  # the head goes out before the open
            time.sleep(0.05)
            held = held_blobs(server.proc.pid, data_dir / "blobs")
        assert len(held) == 1, held
        (streamed_blob,) = held

        s3.delete_object(Bucket=bucket, Key="streamed")
        for key in fillers[:4]:
            s3.delete_object(Bucket=bucket, Key=key)
        deleted = time.monotonic()
        attempts = 1
        while not put(s3, bucket, "after-the-deletes", os.urandom(FILLER)):
            assert time.monotonic() - deleted < GRACE / 5, f"still full after {attempts} tries"
            attempts += 1
            time.sleep(0.5)
        waited = time.monotonic() - deleted

        # The streamed object's blob was collected under the running GET, which still has it.
        assert not os.path.exists(streamed_blob), f"stored again after {waited:.1f} s"
        assert held_blobs(server.proc.pid, data_dir / "blobs")[streamed_blob].endswith(" (deleted)")
        body = reader.finish()
        assert len(body) == STREAMED
        assert hashlib.sha256(body).digest() == hashlib.sha256(streamed).digest()
        assert s3.get_object(Bucket=bucket, Key="after-the-deletes")["ContentLength"] == FILLER
    finally:
        stop_server(server)
    assert "short of space" in server.log()
