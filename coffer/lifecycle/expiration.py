"""The lifecycle task: what a bucket's rules delete, found one bounded page of keys at a time.

A step reads the versions of the next `budget` keys after the cursor (`Objects.scan_versions`),
plans each key's actions with the pure rules (`plan`), and carries each out through storage's
conditional delete (`Objects.delete_if`), which plans the key again on its versions as they
are under the key's lock in the deleting transaction: an action the fresh plan no longer
contains (the object was overwritten, re-tagged, or another node already did it) is skipped.
So a write that lands after the rule matched is never lost, and each deletion happens once
however many nodes race. Deletions go through storage's ordinary delete paths, which keep
the usage counters and retire blobs to the collector. When the keys are done, the bucket's
incomplete multipart uploads are walked the same way.

Each deletion is an audit event `lifecycle_expired` with the actor `lifecycle`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

from coffer.audit import AuditSink
from coffer.lifecycle.rules import (
    LifecycleConfiguration,
    current_expiry,
    noncurrent_expiry,
    removes_expired_delete_marker,
    upload_abort_at,
)
from coffer.lifecycle.tasks import StepResult
from coffer.storage.errors import NoSuchBucket, NoSuchUpload, StorageError
from coffer.storage.models import VersionState
from coffer.storage.service import Storage

ACTOR = "lifecycle"
# What a step counts: the keys and uploads it looked at, and each kind of action (metric labels).
EXAMINED = "examined"
CURRENT = "expire_current"
NONCURRENT = "expire_noncurrent"
DELETE_MARKER = "remove_delete_marker"
ABORT = "abort_upload"
SKIPPED = "skipped"  # planned on a read, no longer due under the key's lock: a write won

# Deletions per transaction: one commit (one fsync) for many, each key still locked and
# re-checked on its own; small enough that writers of those keys wait only milliseconds.
BATCH = 100
_OBJECTS, _UPLOADS = "o", "u"  # the two phases of a pass, as the cursor names them


@dataclass(frozen=True)
class Action:
    kind: str
    version_id: str
    rule: str


def plan(
    config: LifecycleConfiguration, versions: list[VersionState], now: datetime, day_seconds: float
) -> list[Action]:
    """What is due for one key (`versions`: all of them, newest first), in the order to do
    it: noncurrent versions oldest first (so each one's successor, whose age makes it
    noncurrent, is still there when its removal is checked again), then the current
    version, then a delete marker left as the key's only version."""
    if not versions:
        return []
    actions = []
    gone = 0
    for index in range(len(versions) - 1, 0, -1):
        version = versions[index]
        hit = noncurrent_expiry(
            config,
            version.key,
            version.size,
            None if version.is_delete_marker else version.tags,
            versions[index - 1].last_modified,
            index - 1,
            day_seconds,
        )
        if hit is not None and hit[0] <= now:
            actions.append(Action(NONCURRENT, version.version_id, hit[1]))
            gone += 1
    current = versions[0]
    if not current.is_delete_marker:
        hit = current_expiry(
            config, current.key, current.size, current.tags, current.last_modified, day_seconds
        )
        if hit is not None and hit[0] <= now:
            actions.append(Action(CURRENT, current.version_id, hit[1]))
    elif gone == len(versions) - 1:
        rule = removes_expired_delete_marker(config, current.key)
        if rule is not None:
            actions.append(Action(DELETE_MARKER, current.version_id, rule))
    return actions


def _decode(cursor: str | None) -> tuple[str, str, str]:
    """(phase, key, upload id) of a saved cursor; a fresh pass starts at the first key."""
    if cursor is None:
        return _OBJECTS, "", ""
    phase, key, upload_id = json.loads(cursor)
    return str(phase), str(key), str(upload_id)


def _encode(phase: str, key: str, upload_id: str = "") -> str:
    return json.dumps([phase, key, upload_id])


class LifecycleTask:
    """The `BucketTask` that applies each bucket's lifecycle configuration."""

    name = "lifecycle"

    def __init__(self, storage: Storage, *, day_seconds: float, audit: AuditSink | None = None) -> None:
        self.storage = storage
        self.day_seconds = day_seconds
        self.audit = audit

    def buckets(self) -> Iterable[str]:
        return self.storage.lifecycle.buckets()

    def step(self, bucket: str, cursor: str | None, now: datetime, budget: int) -> StepResult:
        config = self.storage.lifecycle.get(bucket)
        if config is None or not config.enabled():
            return StepResult(None)
        try:
            org_id = self.storage.buckets.get(bucket).org_id
        except NoSuchBucket:
            return StepResult(None)
        phase, key, upload_id = _decode(cursor)
        counts: dict[str, int] = {}
        if phase == _OBJECTS and _touches_objects(config):
            after = self._objects(bucket, org_id, config, key, now, budget, counts)
            if after is not None:
                return StepResult(_encode(_OBJECTS, after), counts)
            key = upload_id = ""
        if not any(rule.abort_incomplete_days is not None for rule in config.enabled()):
            return StepResult(None, counts)
        marker = self._uploads(bucket, org_id, config, key, upload_id, now, budget, counts)
        return StepResult(None if marker is None else _encode(_UPLOADS, *marker), counts)

    def _objects(
        self,
        bucket: str,
        org_id: str,
        config: LifecycleConfiguration,
        after: str,
        now: datetime,
        budget: int,
        counts: dict[str, int],
    ) -> str | None:
        """Act on the next `budget` keys; the last key seen, or None at the bucket's end."""
        states = self.storage.objects.scan_versions(bucket, after, budget)
        last, keys = after, 0
        due: list[tuple[str, Action]] = []
        for key, group in groupby(states, key=lambda state: state.key):
            last, keys = key, keys + 1
            due += [(key, action) for action in plan(config, list(group), now, self.day_seconds)]
        for start in range(0, len(due), BATCH):
            self._delete(bucket, org_id, due[start : start + BATCH], config, now, counts)
        counts[EXAMINED] = counts.get(EXAMINED, 0) + keys
        return last if keys >= budget else None

    def _delete(
        self,
        bucket: str,
        org_id: str,
        due: list[tuple[str, Action]],
        config: LifecycleConfiguration,
        now: datetime,
        counts: dict[str, int],
    ) -> None:
        """Carry out `due` in one transaction, each action only if still due (see the top)."""

        def still(action: Action) -> Callable[[list[VersionState]], bool]:
            return lambda versions: action in plan(config, versions, now, self.day_seconds)

        deletions = [
            (key, None if action.kind == CURRENT else action.version_id, still(action)) for key, action in due
        ]
        try:
            results = self.storage.objects.delete_if(bucket, deletions)
        except StorageError:  # the bucket went (or is reserved): nothing more to do here
            results = [None] * len(due)
        for (key, action), result in zip(due, results, strict=True):
            if result is None:
                counts[SKIPPED] = counts.get(SKIPPED, 0) + 1
                continue
            marker = result.version_id if action.kind == CURRENT and result.delete_marker else None
            self._done(
                counts,
                action.kind,
                action.rule,
                org_id,
                bucket,
                key,
                version_id=action.version_id,
                delete_marker=marker,
            )

    def _uploads(
        self,
        bucket: str,
        org_id: str,
        config: LifecycleConfiguration,
        key_marker: str,
        upload_id_marker: str,
        now: datetime,
        budget: int,
        counts: dict[str, int],
    ) -> tuple[str, str] | None:
        """Abort the stale uploads of the next page; where the next page starts, or None."""
        page = self.storage.uploads.list(
            bucket, key_marker=key_marker, upload_id_marker=upload_id_marker, max_uploads=budget
        )
        for upload in page.uploads:
            hit = upload_abort_at(config, upload.key, upload.initiated, self.day_seconds)
            if hit is None or hit[0] > now:
                continue
            try:
                self.storage.uploads.abort(upload)
            except NoSuchUpload:  # completed or aborted meanwhile
                counts[SKIPPED] = counts.get(SKIPPED, 0) + 1
                continue
            self._done(counts, ABORT, hit[1], org_id, bucket, upload.key, upload_id=upload.upload_id)
        counts[EXAMINED] = counts.get(EXAMINED, 0) + len(page.uploads)
        if not page.is_truncated or page.next_key_marker is None:
            return None
        return page.next_key_marker, page.next_upload_id_marker or ""

    def _done(
        self,
        counts: dict[str, int],
        kind: str,
        rule: str,
        org_id: str,
        bucket: str,
        key: str,
        **ids: str | None,
    ) -> None:
        """Count an action carried out, and audit it (`ids`: the version or upload it removed)."""
        counts[kind] = counts.get(kind, 0) + 1
        if self.audit is not None:
            fields = dict(org_id=org_id, bucket=bucket, key=key, kind=kind, rule=rule, **ids)
            self.audit("lifecycle_expired", actor=ACTOR, **fields)


def _touches_objects(config: LifecycleConfiguration) -> bool:
    return any(
        rule.expiration_days is not None
        or rule.expiration_date is not None
        or rule.expired_object_delete_marker
        or rule.noncurrent_days is not None
        for rule in config.enabled()
    )
