"""A writer that the crash test SIGKILLs at random moments (run as a subprocess).

Usage: python -m tests.storage.crash_worker <database-url> <blob-root> <bucket> [<bucket> ...]
Loops forever over PUTs (small and multi-chunk), multipart uploads, overwrites and
deletes on a few keys, printing "ready" once it has done real work.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from pathlib import Path

from coffer.storage import rules
from coffer.storage.blobs import BlobStore
from coffer.storage.errors import StorageError
from coffer.storage.models import BlobInfo
from coffer.storage.service import CompletedPart, Storage, parse_zones
from coffer.store.db import Database

KEYS = [f"k{i}" for i in range(6)] + ["dir/a", "dir/b"]


async def write(blobs: BlobStore, size: int) -> BlobInfo:
    w = blobs.writer(["md5", "crc32c"])
    data = os.urandom(min(size, 1 << 16)) * (size // (1 << 16) + 1)
    step = random.choice([4096, 100_000, 1 << 20])
    for i in range(0, size, step):
        await w.write(data[i : min(i + step, size)])
    return await w.finish()


def one_step(storage: Storage, blobs: BlobStore, bucket: str) -> None:
    key = random.choice(KEYS)
    roll = random.random()
    if roll < 0.45:
        size = random.choice([0, 10, 4096, 70_000, (1 << 20) + 17, 3 << 20])
        info = asyncio.run(write(blobs, size))
        storage.objects.put(
            bucket, key, info, etag=info.digests["md5"].hex(), headers={}, checksums={}, owner="crash"
        )
    elif roll < 0.8:
        up = storage.uploads.create(bucket, key, owner="crash", headers={}, checksum_algorithm="CRC32C")
        done = []
        for n in range(1, random.randint(2, 4)):
            info = asyncio.run(write(blobs, random.choice([1, 5000, 200_000, (1 << 20) + 3])))
            part = storage.uploads.put_part(up, n, info, etag=info.digests["md5"].hex(), checksums={})
            if random.random() < 0.9:
                done.append(CompletedPart(n, part.etag, {}))
        if not done:
            storage.uploads.abort(up)
        elif random.random() < 0.85:
            storage.uploads.complete(up, done)
        # else: leave the upload in progress
    else:
        storage.objects.delete(bucket, key)


def main() -> None:
    url, root, *buckets = sys.argv[1:]
    rules.MIN_PART_SIZE = 1  # the test is about atomicity, not part-size limits
    db = Database(url)
    blobs = BlobStore(Path(root))
    storage = Storage(db, blobs, zones=parse_zones(""), default_zone="US-EAST-04A")
    announced = False
    while True:
        try:
            one_step(storage, blobs, random.choice(buckets))
        except StorageError as exc:  # e.g. SlowDown under contention: carry on
            print(f"s3 error {exc.code}", file=sys.stderr, flush=True)
        if not announced:
            print("ready", flush=True)
            announced = True


if __name__ == "__main__":
    main()
