"""`machine`: the machine's own limits (hashing, disk, small durable files, SQLite commits),
measured before any server starts; the bounds of the later sections."""

from __future__ import annotations

import os

from bench import limits
from bench.profiles import size_label
from bench.report import MB, Row
from bench.scenarios.base import Scenario


class MachineLimits(Scenario):
    section = "machine"
    needs_servers = False

    def run(self) -> None:
        self.env.section("machine limits: hashing, disk, small durable files, SQLite commits")
        p, work, found = self.profile, self.env.work_dir, self.env.limits
        data = limits.random_buffer(p.hash_bytes)
        found["md5"] = limits.hash_rate("md5", data)
        found["sha256"] = limits.hash_rate("sha256", data)
        found["crc64nvme"] = limits.hash_rate("crc64nvme", data)
        found["md5_sha256_parallel"] = limits.md5_sha256_parallel(data)
        found["md5_sha256_series"] = limits.md5_sha256_series(data)
        del data
        found["disk_write_sync"] = limits.disk_write_sync(work, p.disk_bytes)
        found["small_files_c1"] = limits.small_file_creates(work, p.small_files, 1)
        found["small_files_c16"] = limits.small_file_creates(work, p.small_files * 2, 16)
        found["sqlite_commits"] = limits.sqlite_commits(work, p.small_files)
        cores = os.cpu_count() or 1
        found["put_bound_single"] = min(found["md5"], found["disk_write_sync"])
        # Several streams: every byte costs one MD5 and one SHA-256 somewhere, on `cores` cores.
        found["put_bound_parallel"] = min(cores * found["md5_sha256_series"], found["disk_write_sync"])

        def row(name: str, limit: str, unit: str, note: str = "") -> Row:
            value = found[limit] / MB if unit == "MB/s" else found[limit]
            return Row(self.section, name, unit, value, note=note)

        self.add(
            row("MD5, one core, 1 MiB chunks", "md5", "MB/s"),
            row("SHA-256, one core", "sha256", "MB/s"),
            row("CRC64NVME (awscrt), one core", "crc64nvme", "MB/s", "Coffer's default stored checksum"),
            row(
                "MD5 || SHA-256, two threads",
                "md5_sha256_parallel",
                "MB/s",
                "what a signed PUT stream can hash",
            ),
            row("MD5 then SHA-256, one core", "md5_sha256_series", "MB/s"),
            row(f"disk: write {size_label(p.disk_bytes)} + fsync", "disk_write_sync", "MB/s"),
            row(
                "durable 4 KiB creates, c1",
                "small_files_c1",
                "files/s",
                "create+write+fsync file+fsync dir",
            ),
            row("durable 4 KiB creates, c16", "small_files_c16", "files/s", "16 threads"),
            row("SQLite one-row commits (WAL, FULL)", "sqlite_commits", "commits/s", "single writer"),
        )
