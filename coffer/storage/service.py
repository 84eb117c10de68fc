"""Storage: the composition root of the S3 domain — buckets, objects, uploads, the collector.

The Node builds one `Storage`; its parts do the work, each in a module of its own:
- `transact.Transactions`: the write-transaction retry loop, locks, blob retirement,
  change notices (shared by the three below);
- `buckets.Buckets`: buckets and their cached lookup;
- `settings.ManagementSettings`: bucket and organization settings and limits;
- `usage.Usage`: what each bucket holds (counted by every write) and the capacity caps;
- `objects.Objects`: object versions — write (stream, verify, commit or abort), read,
  copy, tag, delete, list;
- `uploads.Uploads`: multipart uploads;
- `collector.Collector`: unlinks retired and orphaned blobs;
- `coffer.lifecycle.inventory.InventoryConfigs`: buckets' inventory configurations;
- `coffer.lifecycle.configs.LifecycleConfigs` (`storage.lifecycle`): lifecycle configurations.

All calls but the streaming ones are blocking (they run SQL); faces call them off the
event loop. Errors are the data-carrying exceptions of `coffer.storage.errors`; each face
translates them (the S3 face in its `errors.py`).

Callers address the part that owns the concept: `storage.buckets.get(name)`,
`storage.objects.put(...)`, `storage.uploads.complete(...)`, `storage.collector.collect()`.
"""

from __future__ import annotations

from datetime import timedelta

from coffer.audit import AuditSink
from coffer.lifecycle.configs import LifecycleConfigs
from coffer.lifecycle.inventory import InventoryConfigs
from coffer.storage.blobs import BlobStore
from coffer.storage.buckets import Buckets
from coffer.storage.collector import DEAD_BLOB_GRACE, Collector
from coffer.storage.models import CompletedPart, DeleteResult, PartListing, UploadListing
from coffer.storage.objects import Objects
from coffer.storage.rules import (
    COREWEAVE_ZONES,
    MAX_BUCKETS_PER_ORG,
    parse_zones,
    validate_bucket_name,
    validate_key,
)
from coffer.storage.settings import ManagementSettings
from coffer.storage.transact import Transactions
from coffer.storage.uploads import Uploads
from coffer.storage.usage import Usage
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
        max_bytes: int = 0,
        dead_blob_grace: timedelta = DEAD_BLOB_GRACE,
        audit: AuditSink | None = None,
    ) -> None:
        self.blobs = blobs
        self.tx = Transactions(db, changes)
        self.buckets = Buckets(self.tx, zones=zones, default_zone=default_zone, max_buckets=max_buckets)
        self.settings = ManagementSettings(
            self.tx, self.buckets, max_buckets=max_buckets, max_bytes=max_bytes, audit=audit
        )
        self.buckets.limit_of = self.settings.max_buckets
        self.usage = Usage(self.tx, self.buckets, self.settings)
        self.objects = Objects(self.tx, blobs, self.buckets)
        self.uploads = Uploads(self.tx, blobs, self.buckets, self.objects)
        self.collector = Collector(db, blobs, grace=dead_blob_grace)
        self.inventory = InventoryConfigs(self.tx, self.buckets)
        self.lifecycle = LifecycleConfigs(self.tx, audit=audit)
