"""The lifecycle model alone: filters, the dates rules give (AWS's midnight rounding with real
days, exact rule-days for tests), the sooner-delete rule on conflicts, the JSON round trip,
and the validation that stores nothing S3 would refuse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from coffer.lifecycle.rules import (
    DAY,
    LATEST,
    MAX_RULES,
    Filter,
    LifecycleConfiguration,
    Rule,
    after_days,
    current_expiry,
    noncurrent_expiry,
    removes_expired_delete_marker,
    upload_abort_at,
    validate,
)
from coffer.storage.errors import InvalidArgument, InvalidRequest, MalformedDocument

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


def config(*rules: Rule) -> LifecycleConfiguration:
    return LifecycleConfiguration(rules)


def test_filter_parts_all_must_match() -> None:
    f = Filter(prefix="a/", tags=(("k", "v"),), size_greater_than=10, size_less_than=20)
    assert f.matches("a/x", 15, {"k": "v", "other": "1"})
    assert not f.matches("b/x", 15, {"k": "v"})
    assert not f.matches("a/x", 10, {"k": "v"})  # strictly greater
    assert not f.matches("a/x", 20, {"k": "v"})  # strictly less
    assert not f.matches("a/x", 15, {"k": "w"})
    assert not f.matches("a/x", 15, None)
    assert Filter().matches("anything", 0, None)
    assert f.matches_key("a/upload") and not f.matches_key("b/upload")


def test_real_days_round_up_to_midnight_utc() -> None:
    assert after_days(T0, 3, DAY) == datetime(2026, 1, 19, tzinfo=UTC)  # AWS's own example shape
    midnight = datetime(2026, 1, 15, tzinfo=UTC)
    assert after_days(midnight, 1, DAY) == datetime(2026, 1, 16, tzinfo=UTC)  # already midnight
    assert after_days(T0, 3, 10) == T0 + timedelta(seconds=30)  # test days: exact, no rounding


def test_dates_past_year_9999_are_latest() -> None:
    assert after_days(T0, 2**31 - 1, DAY) == LATEST
    assert after_days(datetime(9999, 12, 30, 12, tzinfo=UTC), 1, DAY) == LATEST


def test_soonest_rule_wins_and_disabled_rules_do_nothing() -> None:
    rules = config(
        Rule("long", True, expiration_days=30),
        Rule("short", True, Filter(prefix="tmp/"), expiration_days=1),
        Rule("date", True, Filter(tags=(("t", "1"),)), expiration_date=datetime(2026, 1, 10, tzinfo=UTC)),
        Rule("off", False, expiration_days=0),
        Rule("nc", True, noncurrent_days=1),
    )
    assert current_expiry(rules, "x", 1, None, T0, DAY) == (datetime(2026, 2, 15, tzinfo=UTC), "long")
    assert current_expiry(rules, "tmp/x", 1, None, T0, DAY) == (datetime(2026, 1, 17, tzinfo=UTC), "short")
    assert current_expiry(rules, "tmp/x", 1, {"t": "1"}, T0, DAY)[1] == "date"  # type: ignore[index]
    assert current_expiry(config(Rule("nc", True, noncurrent_days=1)), "x", 1, None, T0, DAY) is None


def test_noncurrent_expiry_keeps_the_newest() -> None:
    rules = config(Rule("keep2", True, noncurrent_days=5, newer_noncurrent_versions=2))
    assert noncurrent_expiry(rules, "k", 1, None, T0, 1, DAY) is None  # among the 2 newest
    assert noncurrent_expiry(rules, "k", 1, None, T0, 2, DAY) == (datetime(2026, 1, 21, tzinfo=UTC), "keep2")
    both = config(Rule("slow", True, noncurrent_days=9), Rule("fast", True, noncurrent_days=2))
    assert noncurrent_expiry(both, "k", 1, None, T0, 0, 60)[1] == "fast"  # type: ignore[index]


def test_markers_and_uploads() -> None:
    rules = config(
        Rule("m", True, Filter(prefix="a/"), expired_object_delete_marker=True),
        Rule("u", True, Filter(prefix="a/"), abort_incomplete_days=2),
        Rule("u-off", False, abort_incomplete_days=1),
    )
    assert removes_expired_delete_marker(rules, "a/k") == "m"
    assert removes_expired_delete_marker(rules, "b/k") is None
    assert upload_abort_at(rules, "a/k", T0, 60) == (T0 + timedelta(seconds=120), "u")
    assert upload_abort_at(rules, "b/k", T0, 60) is None


def test_json_round_trip() -> None:
    original = config(
        Rule(
            "all",
            True,
            Filter("p/", (("a", "1"), ("b", "")), 5, 500),
            expiration_date=datetime(2031, 1, 1, tzinfo=UTC),
            noncurrent_days=3,
            newer_noncurrent_versions=4,
        ),
        Rule("two", False, expiration_days=7, abort_incomplete_days=1),
        Rule("m", True, expired_object_delete_marker=True),
    )
    assert LifecycleConfiguration.from_json(original.to_json()) == original


GOOD = Rule("ok", True, expiration_days=1)


@pytest.mark.parametrize(
    ("rules", "error"),
    [
        ((), MalformedDocument),
        (tuple(Rule(f"r{i}", True, expiration_days=1) for i in range(MAX_RULES + 1)), MalformedDocument),
        ((GOOD, GOOD), InvalidArgument),
        ((Rule("x" * 256, True, expiration_days=1),), InvalidArgument),
        ((Rule("", True, expiration_days=1),), InvalidArgument),
        ((Rule("r", True),), InvalidRequest),
        ((Rule("r", True, expiration_days=0),), InvalidArgument),
        ((Rule("r", True, expiration_days=2**31),), InvalidArgument),
        (
            (Rule("r", True, expiration_days=1, expiration_date=datetime(2031, 1, 1, tzinfo=UTC)),),
            MalformedDocument,
        ),
        ((Rule("r", True, expiration_days=1, expired_object_delete_marker=True),), MalformedDocument),
        ((Rule("r", True, expiration_date=datetime(2031, 1, 1, 1, tzinfo=UTC)),), InvalidArgument),
        ((Rule("r", True, noncurrent_days=0),), InvalidArgument),
        ((Rule("r", True, noncurrent_days=1, newer_noncurrent_versions=101),), InvalidArgument),
        ((Rule("r", True, expiration_days=1, newer_noncurrent_versions=1),), MalformedDocument),
        ((Rule("r", True, abort_incomplete_days=0),), InvalidArgument),
        ((Rule("r", True, Filter(tags=(("k", "v"),)), abort_incomplete_days=1),), InvalidRequest),
        ((Rule("r", True, Filter(tags=(("k", "v"),)), expired_object_delete_marker=True),), InvalidRequest),
        ((Rule("r", True, Filter(tags=(("k", "v"), ("k", "w"))), expiration_days=1),), InvalidRequest),
        (
            (Rule("r", True, Filter(size_greater_than=5, size_less_than=5), expiration_days=1),),
            InvalidRequest,
        ),
        ((Rule("r", True, Filter(size_less_than=0), expiration_days=1),), InvalidArgument),
        ((Rule("r", True, Filter(prefix="p" * 1025), expiration_days=1),), InvalidArgument),
    ],
)
def test_validate_refuses(rules: tuple[Rule, ...], error: type[Exception]) -> None:
    with pytest.raises(error):
        validate(config(*rules))


def test_validate_accepts() -> None:
    validate(
        config(
            GOOD,
            Rule("date", False, expiration_date=datetime(2031, 1, 1, tzinfo=UTC)),
            Rule("nc", True, Filter(size_greater_than=0), noncurrent_days=1, newer_noncurrent_versions=100),
            Rule("m", True, Filter(prefix="x/"), expired_object_delete_marker=True, abort_incomplete_days=1),
            *(Rule(f"r{i}", True, expiration_days=1) for i in range(MAX_RULES - 4)),
        )
    )


def test_expiry_index_finds_every_matching_prefix_and_breaks_ties_by_order() -> None:
    rules = config(
        *(Rule(f"p{i}", True, Filter(prefix=f"p{i}/"), expiration_days=50 + i) for i in range(300)),
        Rule("a-long", True, Filter(prefix="a/b/c/"), expiration_days=9),
        Rule("a", True, Filter(prefix="a/"), expiration_days=10),
        Rule("same-as-a", True, Filter(prefix="a/b/"), expiration_days=10),
        Rule("tagged", True, Filter(prefix="a/", tags=(("t", "1"),)), expiration_days=1),
        Rule("off", False, Filter(prefix="a/"), expiration_days=1),
    )
    assert current_expiry(rules, "p7/k", 1, None, T0, 1)[1] == "p7"  # type: ignore[index]
    assert current_expiry(rules, "p", 1, None, T0, 1) is None  # shorter than every prefix
    assert current_expiry(rules, "a/b/c/k", 1, None, T0, 1)[1] == "a-long"  # type: ignore[index]
    assert current_expiry(rules, "a/b/k", 1, None, T0, 1)[1] == "a"  # a tie: the first listed
    assert current_expiry(rules, "a/b/k", 1, {"t": "1"}, T0, 1)[1] == "tagged"  # type: ignore[index]
