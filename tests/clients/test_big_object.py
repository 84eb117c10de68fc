"""A 5 GiB object through boto3, with the server's memory watched the whole way.

The data is generated on the fly (PatternStream: never more than a part in the client's
memory) and hashed as it is read; downloads are hashed as they arrive. A sampler thread
reads the resident set size of the server process and all its children every 0.2 s; the
assertion is on the peak, a memory bound, not on time. Run on one backend (SQLite): the
bytes take the same path on both, and the metadata is a handful of rows.

Measured numbers are printed (run with `-s` to see them) for the record in the docs.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from boto3.s3.transfer import TransferConfig

from tests.support.data import MIB, HashSink, PatternStream
from tests.support.harness import CofferServer, running_server
from tests.support.s3 import new_bucket, s3_client

pytestmark = pytest.mark.slow

GIB = 1 << 30
SIZE = 5 * GIB
PART = 64 * MIB
RSS_HEADROOM = 300 * MIB  # the server may grow by at most this much while moving 5 GiB
DISK_NEEDED = SIZE + 2 * GIB


class RssSampler:
    """Peak RSS (bytes) of a process tree, sampled every `interval` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        total = 0
        for proc in [self.root, *self.root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


@pytest.fixture(scope="module")
def big_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CofferServer]:
    tmp = tmp_path_factory.mktemp("big")
    free = shutil.disk_usage(tmp).free
    if free < DISK_NEEDED:
        need, have = DISK_NEEDED / GIB, free / GIB
        pytest.fail(f"the 5 GiB test needs {need:.0f} GiB free under {tmp}; {have:.1f} GiB free")
    with running_server(tmp, "sqlite") as server:
        yield server
    shutil.rmtree(server.data_dir, ignore_errors=True)  # never leave gigabytes in pytest's tmp


def blob_bytes(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in (data_dir / "blobs").rglob("*") if p.is_file())


def mib_s(nbytes: int, seconds: float) -> str:
    return f"{nbytes / MIB / seconds:.0f} MiB/s"


def test_5gib_round_trip_in_bounded_server_memory(big_server: CofferServer) -> None:
    assert big_server.proc is not None
    key = big_server.mint_key(duration=0, name="big")
    s3: Any = s3_client(big_server, key, max_pool_connections=8)
    bucket = new_bucket(s3, "big")
    s3.put_object(Bucket=bucket, Key="warm-up", Body=b"x" * MIB)  # thread pools and caches in place
    s3.get_object(Bucket=bucket, Key="warm-up")["Body"].read()
    probe = RssSampler(big_server.proc.pid)
    baseline = probe.rss()
    bound = baseline + RSS_HEADROOM
    report = [f"server RSS baseline {baseline / MIB:.0f} MiB, bound {bound / MIB:.0f} MiB"]

    # Upload: multipart, 64 MiB parts, three in flight, from a stream that is not seekable.
    config = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=3)
    config.max_in_memory_upload_chunks = 4  # s3transfer's knob: bounds the client's buffered parts
    source = PatternStream(SIZE, seed=8)
    started = time.monotonic()
    with RssSampler(big_server.proc.pid) as upload_rss:
        s3.upload_fileobj(source, bucket, "five.bin", Config=config)
    upload_s = time.monotonic() - started
    expected = source.sha256.hexdigest()
    assert source.pos == SIZE
    report.append(
        f"upload 5 GiB: {upload_s:.1f} s ({mib_s(SIZE, upload_s)}), "
        f"server peak RSS {upload_rss.peak / MIB:.0f} MiB ({upload_rss.samples} samples)"
    )
    head = s3.head_object(Bucket=bucket, Key="five.bin")
    assert head["ContentLength"] == SIZE
    assert head["ETag"].endswith(f'-{SIZE // PART}"'), head["ETag"]

    # Download: ranged GETs in parallel, written in order into a hash.
    sink = HashSink()
    started = time.monotonic()
    with RssSampler(big_server.proc.pid) as download_rss:
        s3.download_fileobj(bucket, "five.bin", sink, Config=config)
    download_s = time.monotonic() - started
    assert sink.size == SIZE
    assert sink.sha256.hexdigest() == expected
    report.append(
        f"download (3 ranged streams): {download_s:.1f} s ({mib_s(SIZE, download_s)}), "
        f"server peak RSS {download_rss.peak / MIB:.0f} MiB"
    )

    # One GET, one stream, the whole object through a Range header.
    single = HashSink()
    started = time.monotonic()
    with RssSampler(big_server.proc.pid) as range_rss:
        got = s3.get_object(Bucket=bucket, Key="five.bin", Range=f"bytes=0-{SIZE - 1}")
        assert got["ContentRange"] == f"bytes 0-{SIZE - 1}/{SIZE}"
        for chunk in got["Body"].iter_chunks(MIB):
            single.write(chunk)
    range_s = time.monotonic() - started
    assert single.size == SIZE
    assert single.sha256.hexdigest() == expected
    report.append(
        f"single-stream ranged GET: {range_s:.1f} s ({mib_s(SIZE, range_s)}), "
        f"server peak RSS {range_rss.peak / MIB:.0f} MiB"
    )

    # A small range across the boundary of the first two parts.
    generated = PatternStream(PART + MIB, seed=8).read()
    lo, hi = PART - 100, PART + 99
    part_edge = s3.get_object(Bucket=bucket, Key="five.bin", Range=f"bytes={lo}-{hi}")["Body"].read()
    assert part_edge == generated[lo : hi + 1]

    print("\n" + "\n".join(report))
    for name, sampler in (("upload", upload_rss), ("download", download_rss), ("ranged GET", range_rss)):
        assert sampler.samples > 10, name
        assert sampler.peak < bound, f"{name}: server peak RSS {sampler.peak / MIB:.0f} MiB; " + "; ".join(
            report
        )

    # Deleting retires the blobs; a collection pass removes them from the disk.
    assert blob_bytes(big_server.data_dir) >= SIZE
    s3.delete_object(Bucket=bucket, Key="five.bin")
    removed = int(big_server.cli("admin", "gc", "--older-than", "0").stdout.strip())
    assert removed >= SIZE // PART
    assert blob_bytes(big_server.data_dir) < 2 * MIB  # the warm-up object is all that is left
