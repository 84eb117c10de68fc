"""Organization policy validation: every rule, with the field it names and its message."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from coffer.api.policies import invalid_policy
from coffer.errors import Kind
from coffer.policy import Effect, InvalidOrgPolicy, parse_org_policy
from tests.policy.builders import allow, org_doc

GOOD = org_doc(
    "data-team",
    allow("read", ["s3:GetObject", "s3:List*"], ["my-bucket", "my-bucket/*"], ["role/Admin"]),
)


def with_statement(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    doc["statements"][0].update(changes)
    return doc


def without_statement_field(field: str) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    del doc["statements"][0][field]
    return doc


def with_top(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    doc.update(changes)
    return doc


S0 = "policy.statements[0]"

INVALID: list[tuple[str, Any, str, str]] = [
    # (id, document, field path, message fragment)
    ("not an object", ["x"], "policy", "must be an object"),
    ("unknown top-level field", with_top(statement=[]), "policy.statement", "unknown field 'statement'"),
    ("missing version", {k: v for k, v in GOOD.items() if k != "version"}, "policy.version", "'v1alpha1'"),
    ("wrong version", with_top(version="v1"), "policy.version", "must be 'v1alpha1', got 'v1'"),
    ("missing name", {k: v for k, v in GOOD.items() if k != "name"}, "policy.name", "name is required"),
    ("empty name", with_top(name=""), "policy.name", "name is required"),
    ("name with a slash", with_top(name="a/b"), "policy.name", "letters, digits"),
    ("name with spaces", with_top(name="my policy"), "policy.name", "letters, digits"),
    ("name starting with a dash", with_top(name="-x"), "policy.name", "starting with a letter or digit"),
    ("name too long", with_top(name="a" * 129), "policy.name", "1-128"),
    ("no statements", with_top(statements=[]), "policy.statements", "at least one statement"),
    ("statements not a list", with_top(statements={}), "policy.statements", "at least one statement"),
    (
        "too many statements",
        with_top(statements=[allow(f"s{i}", ["s3:*"], ["*"], ["*"]) for i in range(101)]),
        "policy.statements",
        "at most 100",
    ),
    ("statement not an object", with_top(statements=["x"]), S0, "must be an object"),
    ("unknown statement field", with_statement(Effect="Allow"), f"{S0}.Effect", "unknown field 'Effect'"),
    ("statement without a name", without_statement_field("name"), f"{S0}.name", "name is required"),
    (
        "duplicate statement names",
        with_top(statements=[GOOD["statements"][0], GOOD["statements"][0]]),
        "policy.statements[1].name",
        "used twice",
    ),
    (
        "missing effect",
        without_statement_field("effect"),
        f"{S0}.effect",
        "statement 'read': effect is required",
    ),
    ("lower-case effect", with_statement(effect="allow"), f"{S0}.effect", "case-sensitive"),
    ("unknown effect", with_statement(effect="Permit"), f"{S0}.effect", "'Permit'"),
    ("missing actions", without_statement_field("actions"), f"{S0}.actions", "list of strings"),
    ("empty actions", with_statement(actions=[]), f"{S0}.actions", "must not be empty"),
    ("actions as a string", with_statement(actions="s3:*"), f"{S0}.actions", "list of strings"),
    ("unknown action", with_statement(actions=["s3:GetObjekt"]), f"{S0}.actions[0]", "not a known action"),
    ("unknown service", with_statement(actions=["ec2:RunInstances"]), f"{S0}.actions[0]", "unknown service"),
    (
        "wildcard matching nothing",
        with_statement(actions=["s3:Gte*"]),
        f"{S0}.actions[0]",
        "matches no known",
    ),
    ("action without service", with_statement(actions=["GetObject"]), f"{S0}.actions[0]", "service:Action"),
    ("empty resources", with_statement(resources=[]), f"{S0}.resources", "must not be empty"),
    (
        "ARN resource",
        with_statement(resources=["arn:aws:s3:::my-bucket"]),
        f"{S0}.resources[0]",
        "organization policies require short forms",
    ),
    ("upper-case bucket", with_statement(resources=["MyBucket"]), f"{S0}.resources[0]", "bucket name"),
    ("empty key pattern", with_statement(resources=["b/"]), f"{S0}.resources[0]", "empty key pattern"),
    ("empty bucket", with_statement(resources=["/key"]), f"{S0}.resources[0]", "bucket name"),
    ("empty resource", with_statement(resources=[""]), f"{S0}.resources[0]", "must not be empty"),
    ("control character", with_statement(resources=["b/a\nb"]), f"{S0}.resources[0]", "control characters"),
    ("empty principals", with_statement(principals=[]), f"{S0}.principals", "must not be empty"),
    (
        "ARN principal",
        with_statement(principals=["arn:aws:iam::org1:coreweave/alice"]),
        f"{S0}.principals[0]",
        "full ARN; organization policies require short forms",
    ),
    ("console group", with_statement(principals=["group/admins"]), f"{S0}.principals[0]", "names a group"),
    ("unknown form", with_statement(principals=["alice"]), f"{S0}.principals[0]", "not a known form"),
    ("partial wildcard", with_statement(principals=["coreweave/*"]), f"{S0}.principals[0]", "wildcard"),
    ("empty role", with_statement(principals=["role/"]), f"{S0}.principals[0]", "empty name"),
    ("principal not a string", with_statement(principals=[7]), f"{S0}.principals", "list of strings"),
]


@pytest.mark.parametrize(("doc", "field", "fragment"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_org_policies(doc: Any, field: str, fragment: str) -> None:
    with pytest.raises(InvalidOrgPolicy) as info:
        parse_org_policy(doc)
    err = invalid_policy(info.value)  # what EnsureAccessPolicy answers
    assert err.kind is Kind.INVALID_ARGUMENT
    assert fragment in err.message
    assert err.details[0]["fieldViolations"][0]["field"] == field


VALID_ENTRIES: list[tuple[str, list[str], list[str], list[str]]] = [
    ("all", ["*"], ["*"], ["*"]),
    ("s3 wildcard", ["s3:*"], ["my-bucket", "my-bucket/*"], ["*"]),
    ("cwobject wildcard", ["cwobject:*"], ["*"], ["coreweave/ueqXfgRCYGqptEXAMPLE1"]),
    ("lower-case action", ["s3:getobject"], ["b/pre*"], ["role/Admin"]),
    ("question mark", ["s3:?etObject"], ["b?/x?"], ["saml/jdoe"]),
    ("oidc role", ["s3:GetObject"], ["*"], ["role/https://idp.example.com:svc-data-ingest"]),
    ("rpc alias", ["cwobject:CreateAccessKeyFromJWT", "cwobject:ListAccessPolicies"], ["*"], ["*"]),
    ("legacy bucket resource on cwobject", ["cwobject:CreateAccessKey"], ["my-bucket"], ["*"]),
    ("email principal", ["s3:*"], ["*"], ["coreweave/jean.doe@example.com"]),
    ("coreweave lifecycle name", ["s3:DeleteBucketLifeCycle"], ["b"], ["*"]),
]


@pytest.mark.parametrize(
    ("actions", "resources", "principals"), [c[1:] for c in VALID_ENTRIES], ids=[c[0] for c in VALID_ENTRIES]
)
def test_valid_org_policies(actions: list[str], resources: list[str], principals: list[str]) -> None:
    policy = parse_org_policy(org_doc("p-1.x_y", allow("s", actions, resources, principals)))
    assert policy.statements[0].actions == tuple(actions)
    assert policy.statements[0].effect is Effect.ALLOW


def test_round_trip_to_dict() -> None:
    policy = parse_org_policy(GOOD)
    assert policy.to_dict() == GOOD
    assert parse_org_policy(policy.to_dict()) == policy


def test_field_prefix_is_configurable() -> None:
    with pytest.raises(InvalidOrgPolicy) as info:
        parse_org_policy(with_top(version="x"), field_prefix="body")
    assert invalid_policy(info.value).details[0]["fieldViolations"][0]["field"] == "body.version"
