"""Condition operators with AWS semantics: one table row per operator and edge case."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from coffer.policy import Rule, evaluate
from coffer.policy.conditions import (
    OPERATORS,
    ConditionError,
    parse_condition,
    parse_condition_block,
    parse_date,
)
from tests.policy.builders import NOW, ORG, OTHER_ORG, S3_FOR_ALL, bstmt, bucket, ctx, orgs

MISSING = None

# (operator, policy values, request values (None = key missing), expected)
CASES: list[tuple[str, Any, tuple[str, ...] | None, bool]] = [
    # strings
    ("StringEquals", "abc", ("abc",), True),
    ("StringEquals", "abc", ("ABC",), False),
    ("StringEquals", ["x", "abc"], ("abc",), True),
    ("StringEquals", "abc", MISSING, False),
    ("StringNotEquals", "abc", ("abd",), True),
    ("StringNotEquals", ["abc", "abd"], ("abd",), False),
    ("StringNotEquals", "abc", MISSING, True),
    ("StringEqualsIgnoreCase", "AbC", ("aBc",), True),
    ("StringEqualsIgnoreCase", "AbC", ("abd",), False),
    ("StringNotEqualsIgnoreCase", "AbC", ("aBc",), False),
    ("StringNotEqualsIgnoreCase", "AbC", MISSING, True),
    ("StringLike", "home/*", ("home/a/b",), True),
    ("StringLike", "home/?", ("home/ab",), False),
    ("StringLike", "home/*", ("Home/a",), False),
    ("StringLike", ["a*", "*z"], ("xyz",), True),
    ("StringNotLike", "tmp/*", ("tmp/x",), False),
    ("StringNotLike", "tmp/*", ("data/x",), True),
    ("StringNotLike", "tmp/*", MISSING, True),
    # ARNs: ArnEquals and ArnLike both take wildcards, compared component by component
    ("ArnLike", "arn:aws:iam::org1:coreweave/*", ("arn:aws:iam::org1:coreweave/alice",), True),
    ("ArnLike", "arn:aws:iam::org1:coreweave/*", ("arn:aws:iam::org2:coreweave/alice",), False),
    ("ArnLike", "arn:aws:iam::*:role/*", ("arn:aws:iam::org9:role/https://idp:sub",), True),
    ("ArnEquals", "arn:aws:iam::org1:coreweave/alice", ("arn:aws:iam::org1:coreweave/alice",), True),
    ("ArnEquals", "arn:aws:iam::org1:coreweave/alice", ("not-an-arn",), False),
    ("ArnNotEquals", "arn:aws:iam::org1:coreweave/alice", ("arn:aws:iam::org1:coreweave/bob",), True),
    ("ArnNotLike", "arn:aws:iam::org1:*", ("arn:aws:iam::org1:coreweave/bob",), False),
    ("ArnNotLike", "arn:aws:iam::org1:*", MISSING, True),
    # numbers
    ("NumericEquals", "10", ("10",), True),
    ("NumericEquals", "10", ("10.0",), True),
    ("NumericEquals", 10, ("11",), False),
    ("NumericEquals", "10", ("ten",), False),
    ("NumericNotEquals", "10", ("11",), True),
    ("NumericNotEquals", "10", ("10",), False),
    ("NumericNotEquals", "10", MISSING, True),
    ("NumericLessThan", "100", ("99",), True),
    ("NumericLessThan", "100", ("100",), False),
    ("NumericLessThanEquals", "100", ("100",), True),
    ("NumericGreaterThan", "100", ("100",), False),
    ("NumericGreaterThan", "100", ("100.5",), True),
    ("NumericGreaterThanEquals", "-1", ("-1",), True),
    ("NumericLessThan", "100", MISSING, False),
    # dates: ISO 8601 and epoch seconds on either side
    ("DateEquals", "2026-06-01T12:00:00Z", ("2026-06-01T12:00:00Z",), True),
    ("DateEquals", "2026-06-01T12:00:00Z", ("1780315200",), True),
    ("DateEquals", "1780315200", ("2026-06-01T14:00:00+02:00",), True),
    ("DateNotEquals", "2026-06-01T12:00:00Z", ("2026-06-01T12:00:01Z",), True),
    ("DateNotEquals", "2026-06-01", MISSING, True),
    ("DateLessThan", "2026-06-02", ("2026-06-01T23:59:59Z",), True),
    ("DateLessThan", "2026-06-01", ("2026-06-01T00:00:00Z",), False),
    ("DateLessThanEquals", "2026-06-01", ("2026-06-01T00:00:00Z",), True),
    ("DateGreaterThan", "2026-01-01T00:00:00Z", ("1780315200",), True),
    ("DateGreaterThanEquals", "2027-01-01T00:00:00Z", ("2026-12-31T23:59:59Z",), False),
    ("DateGreaterThan", "2026-01-01", ("not a date",), False),
    ("DateGreaterThan", "2026-01-01", MISSING, False),
    # booleans
    ("Bool", "true", ("true",), True),
    ("Bool", True, ("true",), True),
    ("Bool", "false", ("true",), False),
    ("Bool", "TRUE", ("true",), True),
    ("Bool", "true", MISSING, False),
    # IP addresses, v4 and v6
    ("IpAddress", "10.0.0.0/8", ("10.1.2.3",), True),
    ("IpAddress", "10.0.0.0/8", ("11.1.2.3",), False),
    ("IpAddress", "10.0.0.7", ("10.0.0.7",), True),
    ("IpAddress", "2001:db8::/32", ("2001:db8:1::5",), True),
    ("IpAddress", "2001:db8::/32", ("2001:db9::5",), False),
    ("IpAddress", "10.0.0.0/8", ("2001:db8::1",), False),
    ("IpAddress", "10.0.0.0/8", ("::ffff:10.9.9.9",), True),
    ("IpAddress", ["192.168.0.0/16", "2001:db8::/32"], ("2001:db8::1",), True),
    ("IpAddress", "10.0.0.0/8", ("garbage",), False),
    ("IpAddress", "10.0.0.0/8", MISSING, False),
    ("NotIpAddress", "10.0.0.0/8", ("11.0.0.1",), True),
    ("NotIpAddress", "10.0.0.0/8", ("10.0.0.1",), False),
    ("NotIpAddress", "2001:db8::/32", ("2001:db8::1",), False),
    ("NotIpAddress", "10.0.0.0/8", MISSING, True),
    # Null tests presence only
    ("Null", "true", MISSING, True),
    ("Null", "true", ("x",), False),
    ("Null", "false", ("x",), True),
    ("Null", "false", MISSING, False),
    ("Null", "true", (), True),
    # IfExists: a missing key satisfies the condition; a present one is tested
    ("StringEqualsIfExists", "abc", MISSING, True),
    ("StringEqualsIfExists", "abc", ("abd",), False),
    ("StringEqualsIfExists", "abc", ("abc",), True),
    ("StringNotEqualsIfExists", "abc", ("abc",), False),
    ("NumericLessThanIfExists", "5", MISSING, True),
    ("NumericLessThanIfExists", "5", ("6",), False),
    ("DateLessThanIfExists", "2026-01-01", MISSING, True),
    ("BoolIfExists", "true", MISSING, True),
    ("BoolIfExists", "true", ("false",), False),
    ("IpAddressIfExists", "10.0.0.0/8", MISSING, True),
    ("ArnLikeIfExists", "arn:aws:iam::*:*", MISSING, True),
    ("StringLikeIfExists", "a*", ("b",), False),
    # multi-valued keys without a qualifier: "includes" / "does not include"
    ("StringEquals", "data", ("ops", "data"), True),
    ("StringEquals", "data", ("ops", "eng"), False),
    ("StringNotEquals", "data", ("ops", "data"), False),
    ("StringNotEquals", "data", ("ops", "eng"), True),
    # ForAnyValue: some request value matches; a missing or empty key never does
    ("ForAnyValue:StringEquals", ["data", "ml"], ("ops", "ml"), True),
    ("ForAnyValue:StringEquals", ["data", "ml"], ("ops", "eng"), False),
    ("ForAnyValue:StringEquals", "data", MISSING, False),
    ("ForAnyValue:StringEquals", "data", (), False),
    ("ForAnyValue:StringNotEquals", "data", ("data", "ops"), True),
    ("ForAnyValue:StringNotEquals", "data", ("data",), False),
    ("ForAnyValue:StringLike", "team-*", ("x", "team-a"), True),
    ("ForAnyValue:StringEqualsIfExists", "data", MISSING, True),
    # ForAllValues: every request value matches; a missing or empty key trivially does
    ("ForAllValues:StringEquals", ["data", "ml"], ("data", "ml"), True),
    ("ForAllValues:StringEquals", ["data", "ml"], ("data", "ops"), False),
    ("ForAllValues:StringEquals", "data", MISSING, True),
    ("ForAllValues:StringEquals", "data", (), True),
    ("ForAllValues:StringNotEquals", ["root", "admin"], ("ops", "eng"), True),
    ("ForAllValues:StringNotEquals", ["root", "admin"], ("ops", "admin"), False),
    ("ForAllValues:StringLike", "team-*", ("team-a", "team-b"), True),
    ("ForAllValues:NumericLessThan", "10", ("1", "9"), True),
    ("ForAllValues:NumericLessThan", "10", ("1", "19"), False),
    ("ForAllValues:IpAddress", "10.0.0.0/8", ("10.0.0.1", "10.2.0.1"), True),
]


@pytest.mark.parametrize(("operator", "values", "request_values", "expected"), CASES)
def test_operator_table(
    operator: str, values: Any, request_values: tuple[str, ...] | None, expected: bool
) -> None:
    condition = parse_condition(operator, "test:key", values)
    lookup = {"test:key": request_values}.get
    assert condition.evaluate(lookup) is expected


def test_every_operator_is_in_the_table() -> None:
    used = {
        op.removeprefix("ForAnyValue:").removeprefix("ForAllValues:").removesuffix("IfExists")
        for op, *_ in CASES
    }
    assert used == set(OPERATORS)


@pytest.mark.parametrize("operator", sorted(set(OPERATORS) - {"Null"}))
def test_every_operator_has_an_if_exists_form(operator: str) -> None:
    sample = {
        "Bool": "true",
        "IpAddress": "10.0.0.0/8",
        "NotIpAddress": "10.0.0.0/8",
    }.get(operator, "1" if operator.startswith(("Numeric", "Date")) else "arn:aws:iam::o:x")
    condition = parse_condition(f"{operator}IfExists", "test:key", sample)
    assert condition.evaluate(lambda key: None) is True


def test_block_ands_operators_and_keys() -> None:
    block = parse_condition_block(
        {
            "StringEquals": {"a:one": "1", "a:two": "2"},
            "StringLike": {"a:three": "3*"},
        }
    )
    values: dict[str, tuple[str, ...]] = {"a:one": ("1",), "a:two": ("2",), "a:three": ("33",)}
    assert block.evaluate(values.get)
    for key in values:
        broken = dict(values, **{key: ("nope",)})
        assert not block.evaluate(broken.get), key


def test_keys_are_case_insensitive_but_tag_keys_are_not() -> None:
    condition = parse_condition("StringEquals", "S3:ExistingObjectTag/Env", "prod")
    assert condition.lookup_key == "s3:existingobjecttag/Env"


def test_dates_parse_iso_and_epoch() -> None:
    assert parse_date("2026-06-01T12:00:00Z") == NOW
    assert parse_date("2026-06-01T12:00:00") == NOW
    assert parse_date("1780315200") == NOW
    assert parse_date("2026-06-01") == datetime(2026, 6, 1, tzinfo=UTC)
    assert parse_date("tomorrow") is None


def test_condition_error_is_a_value_error() -> None:
    with pytest.raises(ConditionError, match="Unknown condition operator ForAnyValue:Null"):
        parse_condition("ForAnyValue:Null", "a:b", "true")


# --- keys the engine fills in from the request context --------------------------------


def _decide(condition: dict[str, Any], **context: Any) -> bool:
    policy = bucket(
        "b1", bstmt("Allow", "s3:GetObject", "arn:aws:s3:::b1/*", {"CW": "*"}, condition=condition)
    )
    decision = evaluate("s3:GetObject", "b1/k", ctx(**context), orgs(S3_FOR_ALL), policy)
    assert decision.rule in (Rule.BUCKET_ALLOW, Rule.BUCKET_IMPLICIT_DENY)
    return decision.allowed


def test_principal_org_id() -> None:
    cond = {"StringEquals": {"cw:PrincipalOrgID": ORG}}
    assert _decide(cond)
    assert not _decide(cond, org_id=OTHER_ORG, resource_org_id=ORG)


def test_groups_key_is_per_org_and_multi_valued() -> None:
    cond = {"StringEquals": {f"iam:{ORG}:groups": "data-team"}}
    assert _decide(cond, groups=("ops", "data-team"))
    assert not _decide(cond, groups=("ops",))
    assert not _decide({"StringEquals": {f"iam:{OTHER_ORG}:groups": "data-team"}}, groups=("data-team",))
    assert _decide({"ForAllValues:StringLike": {f"iam:{ORG}:groups": "data-*"}}, groups=("data-a", "data-b"))
    assert _decide({"Null": {f"iam:{ORG}:groups": "true"}})


def test_source_ip_and_secure_transport() -> None:
    assert _decide({"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}, source_ip="2001:db8::7")
    assert not _decide({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, source_ip="192.0.2.1")
    assert _decide({"Bool": {"aws:SecureTransport": "true"}}, secure=True)
    assert not _decide({"Bool": {"aws:SecureTransport": "true"}}, secure=False)
    assert not _decide({"Bool": {"aws:SecureTransport": "true"}})


def test_current_time_and_epoch_time() -> None:
    assert _decide({"DateLessThan": {"aws:CurrentTime": "2026-06-02T00:00:00Z"}})
    assert not _decide({"DateGreaterThan": {"aws:CurrentTime": "2026-06-02T00:00:00Z"}})
    assert _decide({"NumericEquals": {"aws:EpochTime": "1780315200"}})
    assert _decide({"DateEquals": {"aws:EpochTime": "2026-06-01T12:00:00Z"}})


def test_principal_arn_username_and_userid() -> None:
    assert _decide({"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ORG}:coreweave/*"}})
    assert not _decide({"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ORG}:role/*"}})
    assert _decide({"StringEquals": {"aws:username": "Alice"}}, username="Alice")
    assert _decide({"StringEquals": {"aws:userid": "alice"}})
    assert _decide({"StringEquals": {"aws:PrincipalAccount": ORG}})


def test_request_values_prefix_tags_and_unknown_keys() -> None:
    assert _decide({"StringLike": {"s3:prefix": "home/alice/*"}}, values={"s3:prefix": "home/alice/docs"})
    assert not _decide({"StringLike": {"s3:prefix": "home/alice/*"}}, values={"s3:prefix": "home/bob/"})
    assert _decide({"StringNotEquals": {"s3:prefix": "secret/"}})
    assert _decide({"NumericLessThanEquals": {"s3:max-keys": "100"}}, values={"S3:Max-Keys": "50"})
    tag = {"StringEquals": {"s3:ExistingObjectTag/Env": "prod"}}
    assert _decide(tag, values={"s3:ExistingObjectTag/Env": "prod"})
    assert not _decide(tag, values={"s3:ExistingObjectTag/env": "prod"})
    assert not _decide({"StringEquals": {"aws:Referer": "x"}})
    assert _decide({"StringNotEquals": {"aws:Referer": "x"}})
    assert _decide(
        {"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": "a"}},
        values={"s3:RequestObjectTagKeys": ["b", "a"]},
    )
