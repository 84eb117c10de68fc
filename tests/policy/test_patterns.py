"""The wildcard matcher: exact against a regex reference, never backtracking, and bounded."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coffer.api.policies import invalid_policy
from coffer.limits import MAX_PATTERN_LENGTH, MAX_PATTERN_WILDCARDS
from coffer.policy import InvalidOrgPolicy, MalformedPolicy, parse_bucket_policy, parse_org_policy
from coffer.policy.conditions import ConditionError, parse_condition
from coffer.policy.patterns import Glob, GlobSet, PatternError, check_pattern, compile_glob, glob_match
from coffer.s3.errors import from_policy
from tests.policy.builders import allow, bstmt, bucket_doc, org_doc

# Short alphabets make collisions (and so near-misses) likely; values may hold `*` and `?`
# literally, and multi-byte characters must count as one character each.
PATTERN_CHARS = st.sampled_from(["a", "b", "/", "é", "日", "*", "?"])
VALUE_CHARS = st.sampled_from(["a", "b", "/", "é", "日", "*", "?", "\n"])
patterns = st.text(PATTERN_CHARS, max_size=10)
values = st.text(VALUE_CHARS, max_size=14)


def reference(pattern: str) -> re.Pattern[str]:
    """What the wildcards mean, spelt as a regex: fine for tests on short inputs."""
    source = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile(source, re.DOTALL)


@settings(max_examples=3000, deadline=None)
@given(patterns, values)
def test_matcher_agrees_with_regex(pattern: str, value: str) -> None:
    expected = reference(pattern).fullmatch(value) is not None
    assert glob_match(pattern, value) is expected
    assert Glob(pattern).matches(value) is expected  # the general path, whatever the shape
    assert GlobSet([pattern]).matches(value) is expected


@settings(max_examples=1500, deadline=None)
@given(st.lists(patterns, max_size=5), values)
def test_globset_agrees_with_any_regex(pattern_list: list[str], value: str) -> None:
    expected = any(reference(p).fullmatch(value) is not None for p in pattern_list)
    assert GlobSet(pattern_list).matches(value) is expected


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from("ab?"), max_size=6), st.text(st.sampled_from("ab"), max_size=6), values)
def test_values_that_contain_the_pattern_match(head: str, tail: str, middle: str) -> None:
    """Generated pairs rarely match; build matches on purpose so both answers are exercised."""
    value = head.replace("?", "x") + middle + tail
    pattern = f"{head}*{tail}"
    assert glob_match(pattern, value)
    assert reference(pattern).fullmatch(value) is not None


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("", "", True),
        ("", "a", False),
        ("*", "", True),
        ("**", "", True),
        ("**", "anything/at/all", True),
        ("a**b", "ab", True),
        ("a**b", "a/x/b", True),
        ("a*?", "a", False),  # `?` needs a character even after `*`
        ("a*?", "ab", True),
        ("a?", "a", False),  # trailing `?` with nothing left
        ("a?", "aé", True),  # one character, two UTF-8 bytes
        ("a?", "a日", True),
        ("??", "日", False),
        ("abc", "ab", False),  # pattern longer than the value
        ("a*b*c", "ac", False),
        ("ab*ba", "aba", False),  # head and tail may not share characters
        ("ab*ba", "abba", True),
        ("*ab*ab*", "abab", True),
        ("*ab*ab*", "aba", False),
        ("b/*a*a*b", "b/aab", True),
        ("b/*a*a*b", "b/ab", False),
        ("?*?", "x", False),
        ("x*", "x\ny", True),
        ("a.c", "abc", False),  # regex syntax is literal
        ("(a|b)", "a", False),
        ("a\\*", "a\\bc", True),  # no escaping: a backslash is a character
        ("a*", "A", False),  # case-sensitive
    ],
)
def test_edge_cases(pattern: str, value: str, matches: bool) -> None:
    assert glob_match(pattern, value) is matches
    assert Glob(pattern).matches(value) is matches
    assert (reference(pattern).fullmatch(value) is not None) is matches


def test_shapes_take_their_fast_path() -> None:
    """Patterns without `?` never reach the segment matcher: `str` methods do it all."""
    for pattern in ("b/*", "*.log", "b/*.log", "b/*/x/*.log"):
        assert not isinstance(getattr(compile_glob(pattern), "__self__", None), Glob), pattern
    assert isinstance(getattr(compile_glob("b/?.log"), "__self__", None), Glob)
    literal = compile_glob("b/key")
    assert literal("b/key") and not literal("b/key2")


def test_globset_mixes_every_shape() -> None:
    patterns = GlobSet(["b1", "b1/pre*", "*.tmp", "b2/?", "b3/*/x?z"])
    for value in ("b1", "b1/prefix", "b9/a.tmp", "b2/x", "b3/a/b/xyz"):
        assert patterns.matches(value), value
    for value in ("b1/", "b2/xy", "b3", "b3/a/xz", "b1.tmpx"):
        assert not patterns.matches(value), value


def _finishes(call: Any, seconds: float = 10.0) -> Any:
    """The call's result; fails (rather than hanging the suite) if it never returns."""
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append(call()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert out, f"still matching after {seconds} s: the matcher backtracks"
    return out[0]


def test_pathological_patterns_do_not_backtrack() -> None:
    """`*a*a*…*b` against `aaa…` is exponential for a backtracking regex."""
    stars = "*a" * (MAX_PATTERN_WILDCARDS - 1) + "*b"
    value = "b/" + "a" * 5000
    assert _finishes(lambda: glob_match("b/" + stars, value)) is False
    assert _finishes(lambda: glob_match("b/" + stars, value + "b")) is True
    many_marks = "b/*" + "a?" * 15 + "b*" + "?a" * 15
    assert _finishes(lambda: GlobSet([many_marks, "b/" + stars]).matches(value)) is False


def test_check_pattern_bounds() -> None:
    assert check_pattern("x" * MAX_PATTERN_LENGTH) == "x" * MAX_PATTERN_LENGTH
    assert check_pattern("*?" * (MAX_PATTERN_WILDCARDS // 2))
    with pytest.raises(PatternError, match=f"at most {MAX_PATTERN_LENGTH} are allowed"):
        check_pattern("x" * (MAX_PATTERN_LENGTH + 1), "resource")
    with pytest.raises(PatternError, match=f"33 wildcards .* at most {MAX_PATTERN_WILDCARDS} are allowed"):
        check_pattern("?" * (MAX_PATTERN_WILDCARDS + 1), "resource")
    assert check_pattern("*" * 40, wildcards=False)  # a literal value only has the length bound


TOO_WILD = "data/" + "*a" * 34  # 34 wildcards
TOO_LONG = "data/" + "k" * MAX_PATTERN_LENGTH


@pytest.mark.parametrize(
    ("resource", "fragment"),
    [
        (TOO_WILD, f"resource has 34 wildcards ('*' and '?'); at most {MAX_PATTERN_WILDCARDS} are allowed"),
        (TOO_LONG, f"at most {MAX_PATTERN_LENGTH} are allowed"),
    ],
)
def test_org_policy_refuses_patterns_over_the_bounds(resource: str, fragment: str) -> None:
    doc = org_doc("p", allow("s", ["s3:GetObject"], ["data/*", resource], ["*"]))
    with pytest.raises(InvalidOrgPolicy) as info:
        parse_org_policy(doc)
    err = invalid_policy(info.value)  # what EnsureAccessPolicy answers
    assert fragment in err.message
    assert err.details[0]["fieldViolations"][0]["field"] == "policy.statements[0].resources[1]"


def test_org_policy_bounds_actions_too() -> None:
    doc = org_doc("p", allow("s", ["s3:" + "?" * 33], ["*"], ["*"]))
    with pytest.raises(InvalidOrgPolicy) as info:
        parse_org_policy(doc)
    err = invalid_policy(info.value)
    assert err.details[0]["fieldViolations"][0]["field"] == "policy.statements[0].actions[0]"
    assert "action has 33 wildcards" in err.message


def test_org_policy_at_the_bounds_is_accepted() -> None:
    at_bound = "data/" + "*a" * MAX_PATTERN_WILDCARDS
    assert parse_org_policy(org_doc("p", allow("s", ["s3:GetObject"], [at_bound], ["*"])))


@pytest.mark.parametrize(
    ("statement", "fragment"),
    [
        (
            bstmt("Allow", "s3:GetObject", f"arn:aws:s3:::data/{'*a' * 34}"),
            "Policy has invalid resource: resource has 34 wildcards",
        ),
        (
            bstmt("Allow", "s3:GetObject", "arn:aws:s3:::data/" + "k" * MAX_PATTERN_LENGTH),
            f"Policy has invalid resource: resource is {MAX_PATTERN_LENGTH + 18} characters long",
        ),
        (
            bstmt("Allow", "s3:" + "?" * 33, "arn:aws:s3:::data/*"),
            "Policy has invalid action: action has 33 wildcards",
        ),
        (
            bstmt(
                "Allow",
                "s3:ListBucket",
                "arn:aws:s3:::data",
                condition={"StringLike": {"s3:prefix": "*a" * 34}},
            ),
            "Condition StringLike on s3:prefix: condition value has 34 wildcards",
        ),
        (
            bstmt(
                "Allow",
                "s3:ListBucket",
                "arn:aws:s3:::data",
                condition={"StringEquals": {"s3:prefix": "p" * (MAX_PATTERN_LENGTH + 1)}},
            ),
            f"condition value is {MAX_PATTERN_LENGTH + 1} characters long; at most {MAX_PATTERN_LENGTH}",
        ),
    ],
)
def test_bucket_policy_refuses_patterns_over_the_bounds(statement: dict[str, Any], fragment: str) -> None:
    with pytest.raises(MalformedPolicy) as info:
        parse_bucket_policy(bucket_doc(statement), "data")
    err = from_policy(info.value)  # what PutBucketPolicy answers
    assert err.code == "MalformedPolicy"
    assert fragment in err.message


def test_literal_condition_values_may_hold_many_stars() -> None:
    """`StringEquals` compares literally, so only the length bound applies to it."""
    condition = parse_condition("StringEquals", "s3:prefix", "*" * 40)
    assert condition.test("*" * 40)
    with pytest.raises(ConditionError, match="condition value has 34 wildcards"):
        parse_condition("ArnLike", "aws:PrincipalArn", "arn:aws:iam::" + "*:" + "?" * 33)
