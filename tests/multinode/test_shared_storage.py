"""The collector's cross-node safety on one shared data directory: two `coffer serve`
processes (nodes A and B) on one store, a slow GET streaming through A while B deletes the
object and a collector pass runs in a third process. The reader gets the whole body, the
blob is reclaimed once the reader is done, and a reader that dies leaves a pin that
expires. The grace is shortened to GRACE seconds (so a read pins after GRACE / 4).

On this machine the directory is local, where an open file survives an unlink anyway; the
pins (hard links under blobs/.pins) are what carry the guarantee to NFS, where only a link
keeps another host's reader from ESTALE: the test checks they are made, renewed, removed
and expired as docs/decisions/0180-faults-and-shared-storage.md says.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.harness import CofferServer, run_coffer, running_server
from tests.support.s3 import new_bucket, s3_client

GRACE = 4
ARGS = ["--gc-grace-seconds", str(GRACE)]
SIZE = 40 << 20


@pytest.fixture(scope="module")
def pair(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[CofferServer, CofferServer]]:
    tmp = tmp_path_factory.mktemp(f"shared-{backend}")
    with running_server(tmp, backend, extra_args=ARGS) as a:
        b = CofferServer(
            data_dir=a.data_dir, database_url=a.database_url, extra_args=ARGS, log_path=tmp / "b.log"
        )
        b.start()
        try:
            yield a, b
        finally:
            b.stop()


def _pins(server: CofferServer, blob: str | None = None) -> list[Path]:
    root = server.data_dir / "blobs" / ".pins"
    found = sorted(root.iterdir()) if root.exists() else []
    return [p for p in found if blob is None or p.name.startswith(blob + ".")]


def _blob_path(server: CofferServer, blob: str) -> Path:
    return server.data_dir / "blobs" / blob[:2] / blob[2:4] / blob


def _collect(server: CofferServer) -> int:
    """One collector pass in a process of its own (`coffer admin gc`), with the nodes' grace."""
    env = {**os.environ, "COFFER_GC_GRACE_SECONDS": str(GRACE)}
    done = run_coffer("admin", "gc", *server.store_args, env=env)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


class SlowReader(threading.Thread):
    """A GET through `server` read at about 2 MiB/s; `digest` is the body's SHA-256 at the end."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        super().__init__()
        self.client, self.bucket, self.key = client, bucket, key
        self.digest = ""
        self.error: BaseException | None = None
        self.started_reading = threading.Event()

    def run(self) -> None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key)["Body"]
            h = hashlib.sha256()
            while chunk := body.read(128 << 10):
                self.started_reading.set()
                h.update(chunk)
                time.sleep(0.06)
            self.digest = h.hexdigest()
        except BaseException as exc:
            self.error = exc


def _wait_for_pin(server: CofferServer, reader: SlowReader) -> str:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and reader.is_alive():
        pins = _pins(server)
        if pins:
            return pins[0].name.split(".")[0]
        time.sleep(0.05)
    raise AssertionError("a read streaming past GRACE / 4 made no pin")


def test_a_slow_reader_keeps_its_body_while_another_node_collects(
    pair: tuple[CofferServer, CofferServer],
) -> None:
    a, b = pair
    via_a, via_b = s3_client(a), s3_client(b)
    bucket = new_bucket(via_a, "shared")
    data = os.urandom(SIZE)
    via_a.put_object(Bucket=bucket, Key="big", Body=data)

    reader = SlowReader(via_a, bucket, "big")
    reader.start()
    blob = _wait_for_pin(a, reader)  # A's read pinned the blob it streams
    assert _blob_path(a, blob).exists()
    assert os.stat(_blob_path(a, blob)).st_nlink == 2

    via_b.delete_object(Bucket=bucket, Key="big")  # through the other node
    time.sleep(GRACE + 0.5)
    assert reader.is_alive(), "the read should still be streaming; make SIZE larger"
    assert _collect(b) >= 1
    assert not _blob_path(a, blob).exists(), "the collector reclaimed the retired blob's name"
    assert _pins(a, blob), "the reader's pin stays while it reads (renewed)"

    reader.join(60)
    assert reader.error is None, reader.error
    assert reader.digest == hashlib.sha256(data).hexdigest(), "the reader got the whole old body"
    deadline = time.monotonic() + 5
    while _pins(a, blob) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pins(a, blob), "the finished reader let its pin go: the file is freed"


def test_a_dead_readers_pin_expires_and_is_collected(pair: tuple[CofferServer, CofferServer]) -> None:
    a, b = pair
    via_a, via_b = s3_client(a), s3_client(b)
    bucket = new_bucket(via_b, "shared")
    via_b.put_object(Bucket=bucket, Key="big", Body=os.urandom(SIZE))
    reader = SlowReader(via_a, bucket, "big")
    reader.start()
    blob = _wait_for_pin(a, reader)
    assert a.proc is not None
    for worker in psutil.Process(a.proc.pid).children(recursive=True):
        worker.kill()
    a.kill()  # the reader's node dies mid-stream: nothing unpins
    reader.join(30)
    assert not reader.is_alive() and reader.error is not None
    assert _pins(a, blob)
    via_b.delete_object(Bucket=bucket, Key="big")
    time.sleep(GRACE + 1.5)  # past the pin's expiry and the blob's grace
    assert _collect(b) >= 2  # the retired blob and the expired pin
    assert not _pins(a, blob) and not _blob_path(a, blob).exists()
    with contextlib.suppress(Exception):
        a.start()  # for the fixture's teardown
