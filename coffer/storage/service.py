"""Storage: the composition root of the S3 domain — buckets, objects, uploads, the collector.

The Node builds one `Storage`; its parts do the work, each in a module of its own:
- `transact.Transactions`: the write-transaction retry loop, locks, blob retirement,
  change notices (shared by the three below);
- `buckets.Buckets`: buckets and their cached lookup;
- `objects.Objects`: object versions — write (stream, verify, commit or abort), read,
  copy, tag, delete, list;
- `uploads.Uploads`: multipart uploads;
- `collector.Collector`: unlinks retired and orphaned blobs.

All calls but the streaming ones are blocking (they run SQL); faces call them off the
event loop. Errors are the data-carrying exceptions of `coffer.storage.errors`; each face
translates them (the S3 face in its `errors.py`).

The old façade's method names (`get_bucket`, `put_object`, `complete_upload`, ...) remain as
attributes bound to the parts' own methods, for callers that still address the whole store
(the app's bucket lookup, the node's authorizer callbacks, tests); the S3 handlers call the parts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from coffer.storage.blobs import BlobStore
from coffer.storage.buckets import Buckets
from coffer.storage.collector import DEAD_BLOB_GRACE, GC_INTERVAL, ORPHAN_SCAN_INTERVAL, Collector
from coffer.storage.models import CompletedPart, DeleteResult, PartListing, UploadListing
from coffer.storage.objects import Objects
from coffer.storage.rules import (
    COREWEAVE_ZONES,
    MAX_BUCKETS_PER_ORG,
    parse_zones,
    validate_bucket_name,
    validate_key,
)
from coffer.storage.transact import Transactions
from coffer.storage.uploads import Uploads
from coffer.store.changes import ChangeWatcher
from coffer.store.db import Database

# Re-exported: the faces import these from here.
__all__ = [
    "COREWEAVE_ZONES",
    "CompletedPart",
    "DeleteResult",
    "PartListing",
    "Storage",
    "UploadListing",
    "parse_zones",
    "validate_bucket_name",
    "validate_key",
]


class Storage:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        *,
        zones: list[str],
        default_zone: str,
        changes: ChangeWatcher | None = None,
        max_buckets: int = MAX_BUCKETS_PER_ORG,
        dead_blob_grace: timedelta = DEAD_BLOB_GRACE,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.changes = changes
        self.tx = Transactions(db, changes)
        self.buckets = Buckets(self.tx, zones=zones, default_zone=default_zone, max_buckets=max_buckets)
        self.objects = Objects(self.tx, blobs, self.buckets)
        self.uploads = Uploads(self.tx, blobs, self.buckets, self.objects)
        self.collector = Collector(db, blobs, grace=dead_blob_grace)
        self.zones = self.buckets.zones
        self.default_zone = self.buckets.default_zone
        self._retire = self.tx.retire
        # buckets
        self.create_bucket = self.buckets.create
        self.get_bucket = self.buckets.get
        self.list_buckets = self.buckets.list
        self.delete_bucket = self.buckets.delete
        self.update_bucket = self.buckets.update
        # objects
        self.put_object = self.objects.put
        self.get_object = self.objects.get
        self.delete_object = self.objects.delete
        self.copy_object = self.objects.copy
        self.list_objects = self.objects.list
        self.list_object_versions = self.objects.list_versions
        self.set_object_tags = self.objects.set_tags
        # multipart
        self.create_upload = self.uploads.create
        self.get_upload = self.uploads.get
        self.put_part = self.uploads.put_part
        self.list_parts = self.uploads.list_parts
        self.complete_upload = self.uploads.complete
        self.abort_upload = self.uploads.abort
        self.list_uploads = self.uploads.list

    # housekeeping ----------------------------------------------------------------------
    def collect_garbage(self, *, older_than: datetime | None = None, orphans: bool = False) -> int:
        """Unlink retired blobs and stale temp files; returns how many were removed.

        Retired blobs go once retired longer than the grace period (10 minutes), temp
        files once idle for an hour. With `orphans`, every published blob older than an
        hour that no object, part or retirement row mentions is removed too: the leftover
        of a crash between publishing a blob and committing its metadata. An explicit
        `older_than` replaces all three cut-offs."""
        return self.collector.collect(older_than=older_than, orphans=orphans)

    def start_collector(
        self, interval: float = GC_INTERVAL, orphan_interval: float = ORPHAN_SCAN_INTERVAL
    ) -> None:
        """Run the collector now and every minute (every second while space is short) in a
        background thread; see collector.py."""
        self.collector.start(interval, orphan_interval)

    def stop_collector(self) -> None:
        self.collector.stop()
