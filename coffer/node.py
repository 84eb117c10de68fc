"""A Coffer node: the store, the caches and the services, wired once per process.

Faces (API, S3, console) and the CLI all drive the core through one of these.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from coffer import datadir, logs
from coffer.audit import AuditSink, fan_out
from coffer.auditlog import AuditLogs
from coffer.authbudget import AuthBudget
from coffer.authz import Authorizer
from coffer.config import Settings
from coffer.federation import HttpJwksProvider
from coffer.identity.accesskeys import AccessKeyService
from coffer.identity.directory import Directory
from coffer.identity.federated_keys import FederatedKeys
from coffer.identity.federation_configs import FederationConfigs
from coffer.identity.policies import OrgPolicies
from coffer.identity.replay import SqlReplayCache
from coffer.identity.secretbox import SecretBox, load_master_key
from coffer.lifecycle.executor import Executor
from coffer.lifecycle.expiration import LifecycleTask
from coffer.lifecycle.inventory_report import InventoryTask
from coffer.lifecycle.tasks import BucketTask
from coffer.storage.blobs import BlobStore
from coffer.storage.errors import StorageError
from coffer.storage.models import Bucket, ObjectVersion
from coffer.storage.service import Storage, parse_zones
from coffer.store.changes import ChangeWatcher
from coffer.store.db import Database

log = logging.getLogger("coffer.node")


@dataclass
class Node:
    settings: Settings
    db: Database
    changes: ChangeWatcher
    directory: Directory
    keys: AccessKeyService
    blobs: BlobStore
    storage: Storage
    policies: OrgPolicies
    authz: Authorizer
    federation: FederationConfigs
    federated_keys: FederatedKeys
    # Where every audit event goes: the services write theirs, the faces their refusals.
    audit: AuditSink = logs.audit
    # The organizations' audit-log buckets: fed by `audit` and by the S3 face (coffer.auditlog).
    audit_logs: AuditLogs | None = None
    # Per process, like the caches: failed authentications by source and key id.
    auth_budget: AuthBudget = field(default_factory=lambda: AuthBudget(0, 60.0))
    # The background passes of the bucket tasks (lifecycle rules, inventory reports).
    executor: Executor | None = None

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> Node:
        data = settings.data_path
        datadir.prepare(data)
        db = Database(settings.effective_database_url)
        if migrate:
            db.migrate()
        changes = ChangeWatcher(db, data / "run", settings.cache_poll_seconds)
        box = SecretBox(load_master_key(settings.master_key, data))
        audit_logs = AuditLogs(
            data, flush_seconds=settings.audit_flush_seconds, max_bytes=settings.audit_spool_max_bytes
        )
        audit = fan_out(logs.audit, audit_logs.control_plane)
        directory = Directory(db, changes, audit=audit)
        keys = AccessKeyService(
            db,
            changes,
            box,
            audit=audit,
            max_duration=settings.max_key_duration,
            max_live_keys=settings.max_live_keys_per_principal,
            last_used_flush_seconds=settings.last_used_flush_seconds,
            expiry_warning_seconds=settings.key_expiry_warning_seconds,
            max_age_days=settings.key_max_age_days,
        )
        blobs = BlobStore(data / "blobs")
        storage = Storage(
            db,
            blobs,
            zones=parse_zones(settings.zones, settings.default_zone),
            default_zone=settings.default_zone,
            changes=changes,
            max_buckets=settings.max_buckets_per_org,
            max_bytes=settings.max_bytes_per_org,
            dead_blob_grace=timedelta(seconds=settings.gc_grace_seconds),
            audit=audit,
        )
        policies = OrgPolicies(db, changes, audit=audit)
        audit_logs.connect(storage, directory.get_user)

        def find_bucket(name: str) -> Bucket | None:
            try:
                return storage.buckets.get(name)
            except StorageError:
                return None

        def find_object(bucket: str, key: str, version_id: str | None) -> ObjectVersion | None:
            try:
                return storage.objects.get(bucket, key, version_id)
            except StorageError:  # no such object (or version): no tags or ACL to test
                return None

        def object_tags(bucket: str, key: str, version_id: str | None) -> dict[str, str] | None:
            found = find_object(bucket, key, version_id)
            return found.tags if found is not None else None

        authz = Authorizer(
            policies, find_bucket, object_tags, objects=find_object, acls=not settings.strict_coreweave
        )
        federation = FederationConfigs(db, changes, audit=audit)
        federated_keys = FederatedKeys(
            federation,
            keys,
            replay_cache=SqlReplayCache(db),
            jwks_provider=HttpJwksProvider(),
            audit=audit,
            max_duration=settings.max_key_duration,
        )
        tasks: list[BucketTask] = [
            LifecycleTask(storage, day_seconds=settings.lifecycle_day_seconds, audit=audit),
            InventoryTask(
                storage, data / "inventory-spool", day_seconds=settings.lifecycle_day_seconds, audit=audit
            ),
        ]
        executor = Executor(
            db,
            tasks,
            interval=settings.lifecycle_interval_seconds,
            budget=settings.lifecycle_step_keys,
            lease_seconds=settings.lifecycle_lease_seconds,
        )
        return cls(
            settings,
            db,
            changes,
            directory,
            keys,
            blobs=blobs,
            storage=storage,
            policies=policies,
            authz=authz,
            federation=federation,
            federated_keys=federated_keys,
            audit=audit,
            audit_logs=audit_logs,
            auth_budget=AuthBudget(settings.auth_failure_limit, settings.auth_failure_window),
            executor=executor,
        )

    @property
    def data_path(self) -> Path:
        return self.settings.data_path

    def start_background(self) -> None:
        self.changes.start()
        self.keys.last_used.start()
        self.storage.collector.start()
        if self.audit_logs is not None:
            self.audit_logs.start()  # replays what stopped workers spooled
        if self.executor is not None:
            self.executor.start()

    def close(self) -> None:
        if self.executor is not None:
            self.executor.stop()  # its step ends and hands its bucket back, cursor saved
        if self.audit_logs is not None:
            self.audit_logs.close()  # the last flush, while the store is still open
        self.keys.last_used.close()  # the keys' last uses, as well
        self.storage.collector.stop()
        self.changes.stop()
        self.federated_keys.close()
        self.blobs.close()
        self.db.dispose()
