"""docs/policies.md stays true to the code: every rule and control-plane mapping is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from coffer.policy import RPC_ACTIONS, Rule
from coffer.policy.conditions import OPERATORS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "policies.md").read_text()


@pytest.mark.parametrize("rule", list(Rule), ids=[r.value for r in Rule])
def test_every_rule_is_in_the_decision_table(rule: Rule) -> None:
    assert f"| `{rule.value}` |" in DOC


@pytest.mark.parametrize("rpc", sorted(RPC_ACTIONS))
def test_every_rpc_mapping_is_documented(rpc: str) -> None:
    assert rpc in DOC
    action = RPC_ACTIONS[rpc]
    if action is not None and not action.endswith(rpc):
        assert f"`{action}`" in DOC


@pytest.mark.parametrize("operator", sorted(OPERATORS))
def test_every_condition_operator_is_documented(operator: str) -> None:
    base = (
        operator.removesuffix("Equals")
        if operator.startswith(("NumericLess", "NumericGreater", "DateLess", "DateGreater"))
        else operator
    )
    assert f"`{base}" in DOC
