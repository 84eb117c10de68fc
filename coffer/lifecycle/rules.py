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
from functools import cached_property
from typing import Any

from coffer.storage.errors import InvalidArgument, InvalidRequest, MalformedDocument

DAY = 86_400.0
MAX_RULES = 1000  # CoreWeave §6.6
MAX_ID = 255
MAX_DAYS = 2**31 - 1  # S3's integers are 32-bit
MAX_NEWER_NONCURRENT = 100
MAX_PREFIX = 1024  # the longest key
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
LATEST = datetime.max.replace(tzinfo=UTC)


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
        return self._enabled

    @cached_property
    def _enabled(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.enabled)

    @cached_property
    def _expiring(self) -> dict[int, dict[str, tuple[tuple[int, Rule], ...]]]:
        """Enabled rules with a Days or Date expiration (with their position), by prefix length
        and prefix: `x-amz-expiration` is computed on every object request, and this finds a
        key's candidates with one lookup per distinct prefix length instead of a pass over up
        to 1,000 rules."""
        index: dict[int, dict[str, list[tuple[int, Rule]]]] = {}
        for position, rule in enumerate(self.rules):
            if rule.enabled and (rule.expiration_days is not None or rule.expiration_date is not None):
                prefix = rule.filter.prefix
                index.setdefault(len(prefix), {}).setdefault(prefix, []).append((position, rule))
        return {n: {p: tuple(found) for p, found in by.items()} for n, by in index.items()}

    def expiring(self, key: str) -> list[tuple[int, Rule]]:
        """The enabled Days/Date rules whose prefix `key` starts with, with their positions."""
        found: list[tuple[int, Rule]] = []
        for length, by_prefix in self._expiring.items():
            found += by_prefix.get(key[:length], ())
        return found


def validate(config: LifecycleConfiguration) -> None:
    """S3's checks on PutBucketLifecycleConfiguration that the model can see: MalformedDocument
    for the shape, InvalidArgument for a value, InvalidRequest for a combination."""
    if not config.rules or len(config.rules) > MAX_RULES:
        raise MalformedDocument(f"A lifecycle configuration has 1 to {MAX_RULES} rules.")
    seen: set[str] = set()
    for rule in config.rules:
        if not rule.id or len(rule.id) > MAX_ID:
            raise InvalidArgument(f"ID length should not exceed allowed limit of {MAX_ID}", argument="ID")
        if rule.id in seen:
            raise InvalidArgument(
                "Rule ID must be unique. Found same ID for more than one rule", argument="ID"
            )
        seen.add(rule.id)
        _validate_filter(rule.filter)
        _validate_actions(rule)


def _positive(name: str, action: str, value: int | None) -> None:
    if value is not None and not 0 < value <= MAX_DAYS:
        raise InvalidArgument(f"'{name}' for {action} action must be a positive integer", argument=name)


def _validate_filter(f: Filter) -> None:
    if len(f.prefix) > MAX_PREFIX:
        raise InvalidArgument(f"The prefix is longer than {MAX_PREFIX} characters.", argument="Prefix")
    names = [name for name, _ in f.tags]
    if len(set(names)) != len(names):
        raise InvalidRequest("Duplicate Tag Keys are not allowed.")
    for name, value in f.tags:
        if not 0 < len(name) <= MAX_TAG_KEY or len(value) > MAX_TAG_VALUE:
            raise InvalidArgument("The TagKey you have provided is invalid", argument="Tag")
    greater, less = f.size_greater_than, f.size_less_than
    if greater is not None and not 0 <= greater < 2**63:
        raise InvalidArgument(
            "ObjectSizeGreaterThan must be a non-negative integer", argument="ObjectSizeGreaterThan"
        )
    if less is not None and not 0 < less < 2**63:
        raise InvalidArgument("ObjectSizeLessThan must be a positive integer", argument="ObjectSizeLessThan")
    if greater is not None and less is not None and greater >= less:
        raise InvalidRequest("ObjectSizeGreaterThan must be less than ObjectSizeLessThan")


def _validate_actions(rule: Rule) -> None:
    if rule.expiration_days is not None and rule.expiration_date is not None:
        raise MalformedDocument("Expiration takes Days or Date, not both.")
    dated = rule.expiration_days is not None or rule.expiration_date is not None
    if dated and rule.expired_object_delete_marker:
        raise MalformedDocument("ExpiredObjectDeleteMarker cannot be specified with Days or Date.")
    _positive("Days", "Expiration", rule.expiration_days)
    when = rule.expiration_date
    if when is not None and (when.utcoffset() != timedelta(0) or when.time() != datetime.min.time()):
        raise InvalidArgument("'Date' must be at midnight GMT", argument="Date")
    _positive("NoncurrentDays", "NoncurrentVersionExpiration", rule.noncurrent_days)
    newer = rule.newer_noncurrent_versions
    if newer is not None:
        if rule.noncurrent_days is None:
            raise MalformedDocument("NewerNoncurrentVersions needs NoncurrentDays.")
        if not 0 < newer <= MAX_NEWER_NONCURRENT:
            raise InvalidArgument(
                f"'NewerNoncurrentVersions' must be between 1 and {MAX_NEWER_NONCURRENT}",
                argument="NewerNoncurrentVersions",
            )
    _positive("DaysAfterInitiation", "AbortIncompleteMultipartUpload", rule.abort_incomplete_days)
    actions = (dated, rule.expired_object_delete_marker, rule.noncurrent_days is not None,
               rule.abort_incomplete_days is not None)  # fmt: skip
    if not any(actions):
        raise InvalidRequest("At least one action needs to be specified in a rule")
    if rule.filter.tags and rule.abort_incomplete_days is not None:
        raise InvalidRequest("AbortIncompleteMultipartUpload cannot be specified with Tags.")
    if rule.filter.tags and rule.expired_object_delete_marker:
        raise InvalidRequest("ExpiredObjectDeleteMarker cannot be specified with Tags.")


def after_days(start: datetime, days: int, day_seconds: float) -> datetime:
    """`days` rule-days after `start`; with real days, rounded up to the next midnight UTC.
    A date past year 9999 is `LATEST` (never, in practice)."""
    try:
        moment = start + timedelta(seconds=days * day_seconds)
    except OverflowError:
        return LATEST
    if day_seconds != DAY:
        return moment
    midnight = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if midnight == moment:
        return midnight
    return LATEST if midnight.date() == LATEST.date() else midnight + timedelta(days=1)


def current_expiry(
    config: LifecycleConfiguration,
    key: str,
    size: int,
    tags: Mapping[str, str] | None,
    last_modified: datetime,
    day_seconds: float,
) -> tuple[datetime, str] | None:
    """When the current version expires and by which rule (the soonest), or None."""
    best: tuple[datetime, int, str] | None = None  # ties go to the rule listed first
    for position, rule in config.expiring(key):
        if not rule.filter.matches(key, size, tags):
            continue
        for when in _current_dates(rule, last_modified, day_seconds):
            if best is None or (when, position) < best[:2]:
                best = (when, position, rule.id)
    return None if best is None else (best[0], best[2])


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
