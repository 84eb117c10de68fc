"""The sizes of a run: `full` (the figures in docs/performance.md), `quick` and `selftest`."""

from __future__ import annotations

from dataclasses import dataclass

from bench.common import GiB, MiB


@dataclass(frozen=True)
class Profile:
    name: str
    big: int  # single-stream object
    streams: int  # parallel streams of big/streams bytes each
    part: int  # multipart part size
    reps: int  # large transfers: best of this many
    hash_bytes: int
    disk_bytes: int
    small_files: int  # durable small-file creates per concurrency level
    small_objects: int  # distinct 4 KiB objects read by the GET pools
    put_pool: int  # distinct keys written by the PUT pools
    seconds: float  # each closed-loop load
    list_keys: int  # bucket filled with real PUTs
    huge_keys: int  # bucket filled straight through the store
    page_samples: int
    memory: int  # object streamed in and out of Coffer while RSS is sampled
    peer_memory: int  # the same for the peer, which keeps objects in RAM
    sigv4_iterations: int
    policy_iterations: int

    @property
    def stream_size(self) -> int:
        """Bytes of each of the `streams` parallel transfers."""
        return self.big // self.streams


# fmt: off
PROFILES = {
    "full": Profile(
        "full", GiB, 4, 64 * MiB, 3, 512 * MiB, GiB, 2000, 256, 4096, 8, 10_000, 1_000_000, 200,
        5 * GiB, GiB, 20_000, 2000,
    ),
    "quick": Profile(
        "quick", 256 * MiB, 4, 16 * MiB, 2, 128 * MiB, 256 * MiB, 400, 128, 1024, 2, 1000, 100_000, 100,
        GiB, 256 * MiB, 5000, 300,
    ),
    "selftest": Profile(
        "selftest", 12 * MiB, 4, 5 * MiB, 1, 8 * MiB, 8 * MiB, 20, 16, 64, 0.3, 100, 2000, 5,
        16 * MiB, 8 * MiB, 200, 20,
    ),
}
# fmt: on


def size_label(n: int) -> str:
    return f"{n // GiB} GiB" if n % GiB == 0 else f"{n // MiB} MiB"
