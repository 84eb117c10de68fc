"""A lifecycle configuration as data, and the dates it gives each object.

Pure: no store, no clock. Every date comes from a rule-day length (`day_seconds`,
86,400 in production, a few seconds in tests, as RGW's `rgw_lc_debug_interval`). With
real days, an expiry rounds up to the next midnight UTC, as AWS computes it.
Where rules overlap, the one that deletes sooner wins (AWS, and CoreWeave §6.4).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

DAY = 86_400.0
MAX_RULES = 1000  # CoreWeave §6.6


@dataclass(frozen=True)
class Filter:
    """Which objects a rule covers; all of its parts must match (an empty filter: all)."""

    prefix: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    size_greater_than: int | None = None
    size_less_than: int | None = None

    def matches(self, key: str, size: int, tags: Mapping[str, str] | None) -> bool:
        if not key.startswith(self.prefix):
            return False
        if self.size_greater_than is not None and not size > self.size_greater_than:
            return False
        if self.size_less_than is not None and not size < self.size_less_than:
            return False
        have = tags or {}
        return all(have.get(name) == value for name, value in self.tags)

    def matches_key(self, key: str) -> bool:
        """For multipart uploads, which have no size or tags yet: only the prefix counts
        (a rule with tags cannot abort uploads; the S3 face refuses that combination)."""
        return key.startswith(self.prefix)


@dataclass(frozen=True)
class Rule:
    id: str
    enabled: bool
    filter: Filter = Filter()
    expiration_days: int | None = None
    expiration_date: datetime | None = None  # midnight UTC
    expired_object_delete_marker: bool = False
    noncurrent_days: int | None = None
    newer_noncurrent_versions: int | None = None
    abort_incomplete_days: int | None = None


@dataclass(frozen=True)
class LifecycleConfiguration:
    rules: tuple[Rule, ...]

    def to_json(self) -> str:
        return json.dumps([_rule_to_dict(rule) for rule in self.rules], separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> LifecycleConfiguration:
        return cls(tuple(_rule_from_dict(item) for item in json.loads(text)))

    def enabled(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.enabled)


def after_days(start: datetime, days: int, day_seconds: float) -> datetime:
    """`days` rule-days after `start`; with real days, rounded up to the next midnight UTC."""
    moment = start + timedelta(seconds=days * day_seconds)
    if day_seconds != DAY:
        return moment
    midnight = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == moment else midnight + timedelta(days=1)


def current_expiry(
    config: LifecycleConfiguration,
    key: str,
    size: int,
    tags: Mapping[str, str] | None,
    last_modified: datetime,
    day_seconds: float,
) -> tuple[datetime, str] | None:
    """When the current version expires and by which rule (the soonest), or None."""
    best: tuple[datetime, str] | None = None
    for rule in config.enabled():
        if not rule.filter.matches(key, size, tags):
            continue
        for when in _current_dates(rule, last_modified, day_seconds):
            if best is None or when < best[0]:
                best = (when, rule.id)
    return best


def noncurrent_expiry(
    config: LifecycleConfiguration,
    key: str,
    size: int,
    tags: Mapping[str, str] | None,
    noncurrent_since: datetime,
    newer_noncurrent: int,
    day_seconds: float,
) -> tuple[datetime, str] | None:
    """When a noncurrent version goes, or None. `noncurrent_since` is when its successor
    was written; `newer_noncurrent` how many noncurrent versions of the key are newer
    than it. A rule with NewerNoncurrentVersions=N keeps the N newest in any case."""
    best: tuple[datetime, str] | None = None
    for rule in config.enabled():
        if rule.noncurrent_days is None or not rule.filter.matches(key, size, tags):
            continue
        if rule.newer_noncurrent_versions is not None and newer_noncurrent < rule.newer_noncurrent_versions:
            continue
        when = after_days(noncurrent_since, rule.noncurrent_days, day_seconds)
        if best is None or when < best[0]:
            best = (when, rule.id)
    return best


def removes_expired_delete_marker(config: LifecycleConfiguration, key: str) -> str | None:
    """The rule that removes `key`'s delete marker once it is the key's only version."""
    for rule in config.enabled():
        if rule.expired_object_delete_marker and rule.filter.matches(key, 0, None):
            return rule.id
    return None


def upload_abort_at(
    config: LifecycleConfiguration, key: str, initiated: datetime, day_seconds: float
) -> tuple[datetime, str] | None:
    """When an incomplete multipart upload of `key` is aborted, and by which rule."""
    best: tuple[datetime, str] | None = None
    for rule in config.enabled():
        if rule.abort_incomplete_days is None or not rule.filter.matches_key(key):
            continue
        when = after_days(initiated, rule.abort_incomplete_days, day_seconds)
        if best is None or when < best[0]:
            best = (when, rule.id)
    return best


def _current_dates(rule: Rule, last_modified: datetime, day_seconds: float) -> list[datetime]:
    dates = []
    if rule.expiration_days is not None:
        dates.append(after_days(last_modified, rule.expiration_days, day_seconds))
    if rule.expiration_date is not None:
        dates.append(rule.expiration_date)
    return dates


def _rule_to_dict(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "enabled": rule.enabled,
        "filter": {
            "prefix": rule.filter.prefix,
            "tags": [list(pair) for pair in rule.filter.tags],
            "gt": rule.filter.size_greater_than,
            "lt": rule.filter.size_less_than,
        },
        "days": rule.expiration_days,
        "date": rule.expiration_date.isoformat() if rule.expiration_date else None,
        "eodm": rule.expired_object_delete_marker,
        "nc_days": rule.noncurrent_days,
        "nc_newer": rule.newer_noncurrent_versions,
        "abort_days": rule.abort_incomplete_days,
    }


def _rule_from_dict(item: dict[str, Any]) -> Rule:
    f = item["filter"]
    return Rule(
        id=item["id"],
        enabled=item["enabled"],
        filter=Filter(
            prefix=f["prefix"],
            tags=tuple((name, value) for name, value in f["tags"]),
            size_greater_than=f["gt"],
            size_less_than=f["lt"],
        ),
        expiration_days=item["days"],
        expiration_date=datetime.fromisoformat(item["date"]) if item["date"] else None,
        expired_object_delete_marker=item["eodm"],
        noncurrent_days=item["nc_days"],
        newer_noncurrent_versions=item["nc_newer"],
        abort_incomplete_days=item["abort_days"],
    )
