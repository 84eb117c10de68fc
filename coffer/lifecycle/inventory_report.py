"""Inventory reports: the executor's "inventory" task (a `BucketTask`).

When one of a bucket's configurations is due (Daily: one rule-day since its last report,
Weekly: seven; the first report at the first pass after it is put), a report walks the
bucket's current objects (`Current`) or every version and delete marker (`All`) in pages,
a budget of keys per step, appending each row to a spool file under the data directory:
never the whole listing in memory. When the walk is done it publishes, as AWS lays it out:

    <prefix>/<source>/<id>/data/<uuid>.<csv|tsv|json>.gz
    <prefix>/<source>/<id>/<YYYY-MM-DDTHH-MMZ>/manifest.json
    <prefix>/<source>/<id>/<YYYY-MM-DDTHH-MMZ>/manifest.checksum

each through `storage.objects.write` (durable, counted against the destination's usage),
data first, the manifest last: a reader never finds a manifest whose files are missing.

Resumable: the cursor (saved by the executor after each step) holds the report's time, its
configuration as it was when the report began, the listing position, and the spool's
length after that step. A step resumes by cutting the spool back to that length, so rows
a killed step wrote after its last saved cursor are dropped and listed again; when the
spool is gone (another node took the bucket over) or shorter, the report restarts from
the first key, under the same report time and data-file name, so a rewrite replaces
rather than duplicates. Publication is idempotent for the same reason.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import logging
import os
import uuid
import zlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote_plus

from coffer.audit import AuditSink
from coffer.datadir import create_private_file, make_private_dir
from coffer.lifecycle.inventory import ARN_PREFIX, InventoryConfig, dumps, loads
from coffer.lifecycle.tasks import StepResult
from coffer.storage.bodies import Expect
from coffer.storage.errors import StorageError
from coffer.storage.models import ListedObject, ListedVersion
from coffer.storage.rules import MAX_LIST, MAX_OBJECT_SIZE
from coffer.storage.service import Storage

log = logging.getLogger("coffer.lifecycle.inventory")

ACTOR = "inventory"
MANIFEST_VERSION = "2016-11-30"
_CONTENT_TYPES = {"CSV": "text/csv", "TSV": "text/tab-separated-values", "JSON": "application/x-ndjson"}
_CHUNK = 1 << 20


@dataclass
class _Report:
    """A report in progress: what the cursor carries between steps."""

    bucket: str
    config: str  # the configuration's JSON as the report began (`inventory.dumps`)
    at: str  # the report's time, ISO 8601 UTC
    name: str  # the data file's uuid
    key: str = ""  # the last key listed ("" : none yet)
    version: str = ""  # ... and its version id (All)
    length: int = 0  # the spool's length after the rows listed so far
    rows: int = 0
    done: bool = False  # the walk is complete; publishing is what is left

    @property
    def configuration(self) -> InventoryConfig:
        return loads(self.config)

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.at)


def _timestamp(value: datetime) -> str:
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _row(config: InventoryConfig, bucket: str, entry: ListedObject) -> dict[str, Any]:
    """One report row: column name to value (None: empty), before the format is applied."""
    marker = isinstance(entry, ListedVersion) and entry.is_delete_marker
    row: dict[str, Any] = {"Bucket": bucket, "Key": entry.key}
    if isinstance(entry, ListedVersion):
        row.update(
            VersionId=entry.version_id, IsLatest=entry.is_latest, IsDeleteMarker=entry.is_delete_marker
        )
    values: dict[str, Any] = {
        "Size": None if marker else entry.size,
        "LastModifiedDate": _timestamp(entry.last_modified),
        "ETag": None if marker else entry.etag.strip('"'),
        "StorageClass": None if marker else entry.storage_class,
        "IsMultipartUploaded": None if marker else "-" in entry.etag,
        "ChecksumAlgorithm": None if marker else entry.checksum_algorithm,
        "ObjectOwner": entry.owner_principal,
    }
    row.update((name, values[name]) for name in config.optional_fields)
    return row


def _encode(config: InventoryConfig, rows: Iterable[dict[str, Any]]) -> bytes:
    """Rows in the report's format: CSV/TSV as AWS writes CSV (every field quoted, keys
    URL-encoded, booleans `true`/`false`), or JSON lines with the key as is."""
    out = io.StringIO()
    if config.format == "JSON":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
        return out.getvalue().encode()
    columns = config.fields()
    writer = csv.writer(
        out, delimiter="\t" if config.format == "TSV" else ",", quoting=csv.QUOTE_ALL, lineterminator="\n"
    )
    for row in rows:
        row["Key"] = quote_plus(row["Key"], safe="")
        writer.writerow(
            "" if row[c] is None else ("true" if row[c] else "false") if isinstance(row[c], bool) else row[c]
            for c in columns
        )
    return out.getvalue().encode()


class InventoryTask:
    """Writes each bucket's due inventory reports, a bounded step at a time."""

    name = "inventory"

    def __init__(
        self, storage: Storage, spool_dir: Path, *, day_seconds: float, audit: AuditSink | None = None
    ) -> None:
        self.storage = storage
        self.spool_dir = spool_dir
        self.day_seconds = day_seconds
        self.audit = audit

    def buckets(self) -> Iterable[str]:
        return self.storage.inventory.buckets_with_reports()

    # the cursor ------------------------------------------------------------------------------
    def _begin(self, bucket: str, now: datetime) -> _Report | None:
        due = self.storage.inventory.due(bucket, now, self.day_seconds)
        if not due:
            return None
        return _Report(bucket, dumps(due[0].config), now.astimezone(UTC).isoformat(), str(uuid.uuid4()))

    def _resume(self, bucket: str, cursor: str | None, now: datetime) -> _Report | None:
        if cursor:
            try:
                report = _Report(**json.loads(cursor))
                report.configuration  # noqa: B018 - a cursor that no longer parses starts over
                if report.bucket == bucket:
                    return report
            except (ValueError, TypeError, KeyError):
                log.warning("inventory: dropping an unreadable cursor for bucket %s", bucket)
        return self._begin(bucket, now)

    def _spool(self, report: _Report) -> Path:
        return self.spool_dir / f"{report.name}.rows"

    def _open_spool(self, report: _Report) -> BinaryIO:
        """The spool, cut back to the cursor's length; restarted when it is shorter or gone."""
        path = self._spool(report)
        create_private_file(make_private_dir(self.spool_dir) / path.name)
        spool = open(path, "r+b")  # noqa: SIM115 - the caller closes it
        size = spool.seek(0, os.SEEK_END)
        if size < report.length:
            report.key, report.version, report.length, report.rows, report.done = "", "", 0, 0, False
        spool.truncate(report.length)
        spool.seek(report.length)
        return spool

    # one step --------------------------------------------------------------------------------
    def step(self, bucket: str, cursor: str | None, now: datetime, budget: int) -> StepResult:
        report = self._resume(bucket, cursor, now)
        if report is None:
            return StepResult(None)
        config = report.configuration
        current = self.storage.inventory.stored(bucket, config.id)
        if current is None:  # deleted while its report ran: drop it
            self._spool(report).unlink(missing_ok=True)
            return StepResult(self._next(bucket, now))
        examined = 0
        with self._open_spool(report) as spool:
            while not report.done and examined < budget:
                n = min(MAX_LIST, budget - examined)
                entries, truncated = self._page(bucket, config, report, n)
                examined += len(entries)
                if entries:
                    spool.write(_encode(config, (_row(config, bucket, e) for e in entries)))
                    report.rows += len(entries)
                    report.key = entries[-1].key
                    if isinstance(entries[-1], ListedVersion):
                        report.version = entries[-1].version_id
                report.done = not truncated
            spool.flush()
            os.fsync(spool.fileno())
            report.length = spool.tell()
        counts = {"examined": examined}
        if not report.done:
            return StepResult(json.dumps(asdict(report)), counts)
        self._publish(report, config)
        self._spool(report).unlink(missing_ok=True)
        counts["reports"] = 1
        return StepResult(self._next(bucket, now), counts)

    def _next(self, bucket: str, now: datetime) -> str | None:
        """The cursor after a finished report: another due configuration's start, or None."""
        report = self._begin(bucket, now)
        return json.dumps(asdict(report)) if report is not None else None

    def _page(
        self, bucket: str, config: InventoryConfig, report: _Report, n: int
    ) -> tuple[list[ListedObject], bool]:
        prefix = config.prefix or ""
        if config.included_versions == "All":
            versions = self.storage.objects.list_versions(
                bucket, prefix=prefix, key_marker=report.key, version_id_marker=report.version, max_keys=n
            )
            return list(versions.versions), versions.is_truncated
        listing = self.storage.objects.list(bucket, prefix=prefix, after=report.key, max_keys=n)
        return listing.contents, listing.is_truncated

    # publishing ------------------------------------------------------------------------------
    def _publish(self, report: _Report, config: InventoryConfig) -> None:
        """Data file, then manifest.json, then manifest.checksum, into the destination. A
        destination that is gone or refuses the write (a capacity cap) loses this report, as
        on AWS: it is logged and the next is due a period later."""
        bucket, at = report.bucket, report.time
        base = "/".join(p for p in ((config.destination_prefix or "").strip("/"), bucket, config.id) if p)
        ext = {"CSV": "csv", "TSV": "tsv", "JSON": "json"}[config.format]
        data_key = f"{base}/data/{report.name}.{ext}.gz"
        folder = f"{base}/{at.astimezone(UTC).strftime('%Y-%m-%dT%H-%MZ')}"
        try:
            owner = self.storage.buckets.get(config.destination_bucket).owner_principal
            size, md5 = self._write(
                config.destination_bucket, data_key, self._gzipped(report), None, owner, "application/gzip"
            )
            manifest = json.dumps(
                {
                    "sourceBucket": bucket,
                    "destinationBucket": ARN_PREFIX + config.destination_bucket,
                    "version": MANIFEST_VERSION,
                    "creationTimestamp": str(int(at.timestamp() * 1000)),
                    "fileFormat": config.format,
                    "fileSchema": ", ".join(config.fields()),
                    "files": [{"key": data_key, "size": size, "MD5checksum": md5}],
                },
                indent=2,
            ).encode()
            self._write(config.destination_bucket, f"{folder}/manifest.json", _once(manifest),
                        len(manifest), owner, "application/json")  # fmt: skip
            checksum = hashlib.md5(manifest, usedforsecurity=False).hexdigest().encode()
            self._write(config.destination_bucket, f"{folder}/manifest.checksum", _once(checksum),
                        len(checksum), owner, "text/plain")  # fmt: skip
        except StorageError as exc:
            log.warning(
                "inventory: report %s of bucket %s not written to %s: %s",
                config.id, bucket, config.destination_bucket, exc,
            )  # fmt: skip
            self.storage.inventory.reported(bucket, config.id, at)
            return
        self.storage.inventory.reported(bucket, config.id, at)
        log.info("inventory: bucket %s report %s: %d rows in %s", bucket, config.id, report.rows, data_key)
        if self.audit is not None:
            self.audit(
                "inventory_report",
                actor=ACTOR,
                bucket=bucket,
                config_id=config.id,
                destination=config.destination_bucket,
                manifest=f"{folder}/manifest.json",
                rows=report.rows,
            )

    async def _gzipped(self, report: _Report) -> AsyncIterator[bytes]:
        """The spool, gzip-compressed a chunk at a time."""
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: the gzip container
        with open(self._spool(report), "rb") as spool:
            while chunk := spool.read(_CHUNK):
                if out := packer.compress(chunk):
                    yield out
        yield packer.flush()

    def _write(
        self, bucket: str, key: str, body: AsyncIterator[bytes], length: int | None, owner: str, ctype: str
    ) -> tuple[int, str]:
        """One object, through the storage core's write path: (size, MD5 hex)."""
        write = self.storage.objects.write(
            bucket,
            key,
            body,
            Expect(length=length, max_size=MAX_OBJECT_SIZE),
            headers={"content-type": ctype},
            owner=owner,
        )
        stored, version = asyncio.run(write)
        return version.size, stored.etag.strip('"')


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
