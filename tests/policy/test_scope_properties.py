"""Key scopes over generated policies, scopes and requests (hypothesis): the decision for a
scoped key is exactly the intersection of its owner's and its scope's, never wider than either.

The owners, bucket policies and requests are test_properties.py's generators; the scopes are
generated here from the same universe of actions, resources and conditions.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coffer.policy import InvalidOrgPolicy, Rule, evaluate
from coffer.policy import actions as action_table
from coffer.policy.scope import MAX_SCOPE_BYTES, KeyScope, parse_scope
from tests.policy.test_properties import ORG_ACTIONS, PROPERTY_SETTINGS, Scenario, names, scenarios

SCOPE_ACTIONS = ORG_ACTIONS[:7]  # "*" to "s3:ListAllMyBuckets": the owners' actions but the last three
SCOPE_RESOURCES = ["*", "b1", "b1/*", "b1/pub*", "b2/*", "b?/*", "b1*"]
SCOPE_CONDITIONS: list[dict[str, Any] | None] = [
    None,
    None,
    {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    {"Bool": {"aws:SecureTransport": "true"}},
    {"ForAnyValue:StringEquals": {"iam:org1:groups": "data"}},
]


@st.composite
def scope_statement(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": draw(names),
        "effect": draw(st.sampled_from(["Allow", "Allow", "Deny"])),
        "actions": draw(st.lists(st.sampled_from(SCOPE_ACTIONS), min_size=1, max_size=3)),
        "resources": draw(st.lists(st.sampled_from(SCOPE_RESOURCES), min_size=1, max_size=3)),
    }
    condition = draw(st.sampled_from(SCOPE_CONDITIONS))
    if condition is not None:
        out["conditions"] = condition
    return out


scopes = st.lists(scope_statement(), min_size=1, max_size=4, unique_by=lambda s: s["name"]).map(
    lambda statements: parse_scope({"statements": statements})
)


def scoped(s: Scenario, scope: KeyScope) -> Any:
    return evaluate(s.action, s.resource, s.ctx, s.org(), s.bucket(), scope=scope)


def scope_alone(s: Scenario, scope: KeyScope) -> Any:
    """What the scope alone says, on the resource the engine evaluates (`*` for account scope)."""
    spec = action_table.spec(s.action)
    assert spec is not None
    resource = "*" if spec.scope in (action_table.Scope.CONTROL, action_table.Scope.ACCOUNT) else s.resource
    return scope.decide(spec.key, resource, s.ctx.condition_value)


@PROPERTY_SETTINGS
@given(scenarios(), scopes)
def test_a_scoped_key_is_never_wider_than_its_owner_or_its_scope(s: Scenario, scope: KeyScope) -> None:
    decision = scoped(s, scope)
    if decision.allowed:
        assert s.decide().allowed, decision.reason
        assert scope_alone(s, scope).allowed, decision.reason


@PROPERTY_SETTINGS
@given(scenarios(), scopes)
def test_the_decision_is_exactly_the_intersection(s: Scenario, scope: KeyScope) -> None:
    owner, verdict, decision = s.decide(), scope_alone(s, scope), scoped(s, scope)
    assert decision.allowed == (owner.allowed and verdict.allowed)
    if not owner.allowed:  # the owner's refusal is reported as it is
        assert (decision.rule, decision.policy, decision.statement) == (
            owner.rule,
            owner.policy,
            owner.statement,
        )
    elif not verdict.allowed:
        expected = Rule.KEY_SCOPE_NO_ALLOW if verdict.statement is None else Rule.KEY_SCOPE_DENY
        assert (decision.rule, decision.policy, decision.statement) == (
            expected,
            "key-scope",
            verdict.statement,
        )
    else:
        assert decision.rule is owner.rule


@PROPERTY_SETTINGS
@given(scenarios(), scopes)
def test_a_deny_in_the_scope_always_wins(s: Scenario, scope: KeyScope) -> None:
    spec = action_table.spec(s.action)
    assert spec is not None
    guard = {"name": "zz-deny", "effect": "Deny", "actions": [s.action], "resources": ["*", s.resource]}
    if spec.service != "s3":
        with pytest.raises(InvalidOrgPolicy):
            parse_scope({"statements": [*scope.document["statements"], guard]})
        return
    denied = parse_scope({"statements": [*scope.document["statements"], guard]})
    decision = scoped(s, denied)
    assert not decision.allowed
    assert decision.rule is Rule.KEY_SCOPE_DENY or not s.decide().allowed


@PROPERTY_SETTINGS
@given(scenarios())
def test_a_scope_allowing_everything_changes_nothing_on_s3(s: Scenario) -> None:
    everything = parse_scope(
        {"statements": [{"name": "all", "effect": "Allow", "actions": ["s3:*"], "resources": ["*"]}]}
    )
    owner = s.decide()
    decision = scoped(s, everything)
    if s.action.startswith("s3:"):
        assert (decision.allowed, decision.rule) == (owner.allowed, owner.rule)
    else:  # a scope holds s3: actions only: a scoped key does nothing on the control plane
        assert not decision.allowed


@PROPERTY_SETTINGS
@given(st.lists(scope_statement(), min_size=1, max_size=4, unique_by=lambda s: s["name"]))
def test_a_parsed_scope_parses_to_itself(statements: list[dict[str, Any]]) -> None:
    """What is stored (the document) is what is evaluated after a restart: parse is idempotent."""
    first = parse_scope({"statements": statements})
    again = parse_scope(first.document)
    assert again.document == first.document
    assert [(s.name, s.effect, s.actions) for s in again.statements] == [
        (s.name, s.effect, s.actions) for s in first.statements
    ]


@pytest.mark.parametrize(
    ("scope", "field"),
    [
        ([], "scope"),
        ({"statements": []}, "scope.statements"),
        ({"statements": [], "extra": 1}, "scope.extra"),
        (
            {"statements": [{"name": "a", "effect": "Allow", "actions": ["cwobject:*"], "resources": ["*"]}]},
            "scope.statements[0].actions[0]",
        ),
        (
            {
                "statements": [
                    {
                        "name": "a",
                        "effect": "Allow",
                        "actions": ["s3:*"],
                        "resources": ["*"],
                        "principals": ["*"],
                    }
                ]
            },
            "scope.statements[0].principals",
        ),
        (
            {"statements": [{"name": "a", "effect": "allow", "actions": ["s3:*"], "resources": ["*"]}]},
            "scope.statements[0].effect",
        ),
        (
            {
                "statements": [
                    {"name": "a", "effect": "Allow", "actions": ["s3:*"], "resources": ["arn:aws:s3:::x"]}
                ]
            },
            "scope.statements[0].resources[0]",
        ),
        (
            {
                "statements": [
                    {
                        "name": "a",
                        "effect": "Allow",
                        "actions": ["s3:*"],
                        "resources": ["*"],
                        "conditions": {"StringEqualz": {"s3:prefix": "x"}},
                    }
                ]
            },
            "scope.statements[0].conditions",
        ),
        (
            {"statements": [{"name": "a", "effect": "Allow", "actions": ["s3:*"], "resources": ["*" * 40]}]},
            "scope.statements[0].resources[0]",
        ),
        (
            {"statements": [{"name": "a", "effect": "Allow", "actions": ["s3:*"], "resources": ["*"]}] * 2},
            "scope.statements[1].name",
        ),
        (
            {
                "statements": [
                    {"name": f"s{i}", "effect": "Allow", "actions": ["s3:*"], "resources": ["*"]}
                    for i in range(101)
                ]
            },
            "scope.statements",
        ),
        (
            {
                "statements": [
                    {
                        "name": "a",
                        "effect": "Allow",
                        "actions": ["s3:*"],
                        "resources": [f"b/{'x' * 1000}{i}" for i in range(30)],
                    }
                ]
            },
            "scope",
        ),
    ],
)
def test_invalid_scopes_name_the_field(scope: Any, field: str) -> None:
    with pytest.raises(InvalidOrgPolicy) as info:
        parse_scope(scope)
    assert info.value.field == field, info.value


def test_the_size_bound_is_the_documented_one() -> None:
    assert MAX_SCOPE_BYTES == 20 * 1024
