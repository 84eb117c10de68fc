"""Organization access policies and AuthCanI over the control plane, and who may call what.

ListAccessPolicies / EnsureAccessPolicy / DeleteAccessPolicy / AuthCanI against a real
server, the starter policy the first start creates, validation errors as status JSON,
the per-organization limit, and every key-management route admitting a non-admin
exactly when an organization policy allows its cwobject: action.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from coffer.policy import RPC_ACTIONS
from tests.support.api import assert_status, field_violation
from tests.support.harness import CofferServer
from tests.support.policies import (
    CAN_I,
    POLICIES,
    STARTER,
    can_i,
    create_org,
    create_user,
    delete,
    ensure,
    ensure_ok,
    listed,
    policy,
    s3_of,
    statement,
)
from tests.support.s3 import unique


def admin_principal(server: CofferServer) -> str:
    with server.api() as c:
        return str(c.post("/v1/cwobject/access-key", json={"durationSeconds": 60}).json()["principalName"])


def test_every_route_names_the_action_of_its_rpc() -> None:
    from coffer.api.app import OPERATIONS

    assert {op.name: op.action for op in OPERATIONS} == {op.name: RPC_ACTIONS[op.name] for op in OPERATIONS}


def test_first_start_creates_the_starter_policy_for_the_admin(server: CofferServer) -> None:
    (starter,) = [p for p in listed(server) if p["name"] == STARTER]
    assert starter == policy(
        STARTER,
        statement("bootstrap-admin-full-s3", ["s3:*"], ["*"], [admin_principal(server)]),
    )


def test_ensure_creates_then_replaces_by_name(server: CofferServer) -> None:
    name = unique("team")
    first = policy(name, statement("read", ["s3:GetObject"], ["data/*"], ["role/Data"]))
    r = ensure(server, first)
    assert r.status_code == 200 and r.json() == {"policy": first}
    assert [p for p in listed(server) if p["name"] == name] == [first]

    second = policy(
        name,
        statement("write", ["s3:PutObject"], ["data/*"], ["role/Data"]),
        statement("no-delete", ["s3:Delete*"], ["data/*"], ["*"], effect="Deny"),
    )
    ensure_ok(server, second)
    # A full replacement: the old statement is gone, not merged.
    assert [p for p in listed(server) if p["name"] == name] == [second]
    names = [p["name"] for p in listed(server)]
    assert names == sorted(names) and names.count(name) == 1

    r = delete(server, name)
    assert r.status_code == 200 and r.json() == {}
    assert name not in [p["name"] for p in listed(server)]
    body = assert_status(delete(server, name), 404, 5)
    assert name in body["message"]
    assert body["details"][0]["resourceType"] == "access policy"


def test_delete_of_a_name_that_could_never_exist_is_not_found(server: CofferServer) -> None:
    for name in ("-starts-with-dash", "x" * 200, "sp%20ace", "%00"):
        assert_status(delete(server, name), 404, 5)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({}, "policy", "required"),
        ({"policy": "text"}, "policy", "must be an object"),
        (
            {"policy": {**policy("p", statement("s", ["s3:*"], ["*"], ["*"])), "version": "v1"}},
            "policy.version",
            "v1alpha1",
        ),
        (
            {"policy": policy("bad name", statement("s", ["s3:*"], ["*"], ["*"]))},
            "policy.name",
            "letters, digits",
        ),
        ({"policy": policy("p")}, "policy.statements", "at least one statement"),
        (
            {"policy": policy("p", statement("s", ["s3:Gte*"], ["*"], ["*"]))},
            "policy.statements[0].actions[0]",
            "matches no known action",
        ),
        (
            {"policy": policy("p", statement("s", ["s3:*"], ["arn:aws:s3:::b/*"], ["*"]))},
            "policy.statements[0].resources[0]",
            "short forms",
        ),
        (
            {"policy": policy("p", statement("s", ["s3:*"], ["*"], ["arn:aws:iam::o:coreweave/u"]))},
            "policy.statements[0].principals[0]",
            "full ARN",
        ),
        (
            {
                "policy": policy(
                    "p", statement("s", ["s3:*"], ["*"], ["*"]), statement("s", ["s3:*"], ["*"], ["*"])
                )
            },
            "policy.statements[1].name",
            "used twice",
        ),
        (
            {"policy": policy("p", {**statement("s", ["s3:*"], ["*"], ["*"]), "effect": "allow"})},
            "policy.statements[0].effect",
            "case-sensitive",
        ),
        (
            {"policy": policy("p", {**statement("s", ["s3:*"], ["*"], ["*"]), "condition": {}})},
            "policy.statements[0].condition",
            "unknown field",
        ),
    ],
)
def test_invalid_policies_are_refused_naming_the_field(
    server: CofferServer, body: dict[str, Any], field: str, words: str
) -> None:
    with server.api() as c:
        err = assert_status(c.post(POLICIES, json=body), 400, 3)
    violation = field_violation(err)
    assert violation["field"] == field, err
    assert words in violation["description"], err
    assert "Traceback" not in err["message"]


def test_malformed_json_is_invalid_argument(server: CofferServer) -> None:
    with server.api() as c:
        err = assert_status(c.post(POLICIES, content=b"{not json"), 400, 3)
    assert "not valid JSON" in err["message"]


def test_non_admin_needs_a_policy_for_every_control_plane_route(server: CofferServer) -> None:
    principal, token = create_user(server, unique("clerk"))
    routes = [
        ("GET", POLICIES, None, "cwobject:ListAccessPolicy"),
        (
            "POST",
            POLICIES,
            {"policy": policy("x", statement("s", ["s3:*"], ["*"], ["*"]))},
            "cwobject:EnsureAccessPolicy",
        ),
        ("DELETE", f"{POLICIES}/{STARTER}", None, "cwobject:DeleteAccessPolicy"),
        ("POST", "/v1/cwobject/access-key", {"durationSeconds": 0}, "cwobject:CreateAccessKey"),
        ("GET", "/v1/cwobject/access-key", None, "cwobject:ListAccessKeyInfo"),
        ("GET", "/v1/cwobject/temporary-credentials/api-token", None, "cwobject:CreateAccessKey"),
    ]
    headers = {"Authorization": f"Bearer {token}"}
    for method, path, body, action in routes:
        r = httpx.request(method, server.api_url + path, json=body, headers=headers, timeout=30)
        err = assert_status(r, 403, 7)
        assert principal in err["message"] and action in err["message"], err
        assert STARTER not in err["message"] and "statement" not in err["message"]
    assert STARTER in [p["name"] for p in listed(server)]  # the refused delete did nothing
    denials = server.audit("denied", from_log=True, principal=principal, plane="control")
    assert {d["action"] for d in denials} == {a for *_, a in routes}
    assert all(
        d["rule"] == "org-implicit-deny" and "no organization policy allows" in d["reason"] for d in denials
    )


def test_a_policy_admits_a_non_admin_to_exactly_the_actions_it_names(server: CofferServer) -> None:
    minter, minter_token = create_user(server, unique("minter"))
    _, other_token = create_user(server, unique("other"))
    name = unique("key-minters")
    ensure_ok(
        server,
        policy(
            name,
            statement("mint", ["cwobject:CreateAccessKey", "cwobject:ListAccessPolicies"], ["*"], [minter]),
        ),
    )
    try:
        minted = server.mint_key(token=minter_token)
        assert minted["principalName"] == minter
        with server.api(minter_token) as c:
            assert c.get("/v1/cwobject/temporary-credentials/api-token").status_code == 200
            # The RPC-name alias (ListAccessPolicies) grants the documented action (ListAccessPolicy).
            assert c.get(POLICIES).status_code == 200
            assert_status(c.get("/v1/cwobject/access-key"), 403, 7)  # ListAccessKeyInfo: not granted
            err = assert_status(
                c.post(POLICIES, json={"policy": policy("mine", statement("s", ["s3:*"], ["*"], [minter]))}),
                403,
                7,
            )
            assert "cwobject:EnsureAccessPolicy" in err["message"]
        with server.api(other_token) as c:
            assert_status(c.post("/v1/cwobject/access-key", json={"durationSeconds": 0}), 403, 7)
        # A Deny on top wins over the Allow for the non-admin...
        ensure_ok(
            server,
            policy(
                name,
                statement("mint", ["cwobject:CreateAccessKey"], ["*"], [minter]),
                statement("but-not-now", ["cwobject:*"], ["*"], [minter], effect="Deny"),
            ),
        )
        with server.api(minter_token) as c:
            assert_status(c.post("/v1/cwobject/access-key", json={"durationSeconds": 0}), 403, 7)
        (denial,) = server.audit("denied", from_log=True, principal=minter, rule="org-deny")
        assert denial["policy"] == name and denial["statement"] == "but-not-now"
    finally:
        assert delete(server, name).status_code == 200


def test_admin_keeps_the_control_plane_with_no_policy_at_all(server: CofferServer) -> None:
    """Object Storage Admin holds every cwobject: action regardless of policies; S3 needs one."""
    saved = listed(server)
    s3 = s3_of(server)
    bucket = unique("admin-bucket")
    s3.create_bucket(Bucket=bucket)
    try:
        for p in saved:
            assert delete(server, p["name"]).status_code == 200
        assert listed(server) == []
        with server.api() as c:
            assert c.post("/v1/cwobject/access-key", json={"durationSeconds": 0}).status_code == 200
        assert can_i(server, ["cwobject:EnsureAccessPolicy", "cwobject:CreateAccessKey"], ["*"])
        assert not can_i(server, ["s3:ListBucket"], [bucket])
        with pytest.raises(Exception, match="AccessDenied"):
            s3.list_objects_v2(Bucket=bucket)
    finally:
        for p in saved:
            ensure_ok(server, p)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_can_i_answers_for_several_combinations(server: CofferServer) -> None:
    reader, token = create_user(server, unique("reader"))
    bucket = unique("cani")
    s3_of(server).create_bucket(Bucket=bucket)
    name = unique("cani-reader")
    ensure_ok(
        server,
        policy(
            name,
            statement("read-reports", ["s3:GetObject"], [f"{bucket}/reports/*"], [reader]),
            statement("list", ["s3:ListBucket"], [bucket], [reader]),
            statement("see-policies", ["cwobject:ListAccessPolicy"], ["*"], [reader]),
        ),
    )
    try:
        yes = [
            (["s3:GetObject"], [f"{bucket}/reports/q3.csv"]),
            (["s3:getobject"], [f"{bucket}/reports/a", f"{bucket}/reports/b/c"]),
            (["s3:ListBucket"], [bucket]),
            (["cwobject:ListAccessPolicy"], ["*"]),
            (["cwobject:ListAccessPolicies"], [bucket]),  # control actions ignore the resource
        ]
        no = [
            (["s3:PutObject"], [f"{bucket}/reports/q3.csv"]),
            (["s3:GetObject"], [f"{bucket}/private/x"]),
            (["s3:GetObject"], [f"{bucket}/reports/a", f"{bucket}/private/x"]),  # all must pass
            (["s3:GetObject", "s3:PutObject"], [f"{bucket}/reports/a"]),
            (["s3:GetObject"], ["*"]),
            (["s3:ListAllMyBuckets"], ["*"]),
            (["cwobject:CreateAccessKey"], ["*"]),
            (["s3:NoSuchThing"], [f"{bucket}/reports/a"]),  # unknown actions fail closed
            (["s3:*"], [f"{bucket}/reports/a"]),  # a pattern is not an action
        ]
        for actions, resources in yes:
            assert can_i(server, actions, resources, token), (actions, resources)
        for actions, resources in no:
            assert not can_i(server, actions, resources, token), (actions, resources)
        # The admin: every cwobject: action by role, all of S3 by the starter policy.
        assert can_i(server, ["s3:PutObject", "cwobject:DeleteAccessPolicy"], [f"{bucket}/x", "*"])
    finally:
        assert delete(server, name).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"resources": ["*"]}, "actions"),
        ({"actions": ["s3:GetObject"]}, "resources"),
        ({"actions": [], "resources": ["*"]}, "actions"),
        ({"actions": "s3:GetObject", "resources": ["*"]}, "actions"),
        ({"actions": ["s3:GetObject"], "resources": [7]}, "resources[0]"),
        ({"actions": ["s3:GetObject", ""], "resources": ["*"]}, "actions[1]"),
        ({"actions": ["s3:GetObject"] * 101, "resources": ["*"]}, "actions"),
        ({"actions": ["s3:GetObject"], "resources": ["b/" + "k" * 3000]}, "resources[0]"),
    ],
)
def test_can_i_validation(server: CofferServer, body: dict[str, Any], field: str) -> None:
    with server.api() as c:
        err = assert_status(c.post(CAN_I, json=body), 400, 3)
    assert field_violation(err)["field"] == field


def test_can_i_needs_a_token_but_no_permission(server: CofferServer) -> None:
    assert_status(
        httpx.post(server.api_url + CAN_I, json={"actions": ["s3:GetObject"], "resources": ["*"]}), 401, 16
    )
    _, token = create_user(server, unique("nobody"))
    assert can_i(server, ["cwobject:CreateAccessKey"], ["*"], token) is False


def test_an_organization_may_have_at_most_200_policies(server: CofferServer) -> None:
    org = create_org(server)
    _, token = create_user(server, unique("org-admin"), org=org, admin=True)
    doc = policy("p", statement("s", ["s3:GetObject"], ["b/*"], ["*"]))
    with server.api(token) as c:
        for i in range(200):
            r = c.post(POLICIES, json={"policy": {**doc, "name": f"p{i:03d}"}})
            assert r.status_code == 200, r.text
        err = assert_status(c.post(POLICIES, json={"policy": {**doc, "name": "one-too-many"}}), 429, 8)
        assert "200" in err["message"]
        # Replacing an existing policy is still possible at the limit.
        assert c.post(POLICIES, json={"policy": {**doc, "name": "p007"}}).status_code == 200
        assert len(c.get(POLICIES).json()["policies"]) == 200
    # Another organization's policies are its own: the default one is untouched.
    assert STARTER in [p["name"] for p in listed(server)]
    assert "p007" not in [p["name"] for p in listed(server)]


# --- the coffer policy CLI -------------------------------------------------------------------


def cli(server: CofferServer, *args: str, token: str | None = None, stdin: str | None = None) -> Any:
    return server.cli(
        "policy",
        "--endpoint",
        server.api_url,
        "--token",
        token or server.admin_token,
        *args,
        check=False,
        input=stdin,
    )


def test_cli_apply_list_can_i_delete(server: CofferServer, tmp_path: Any) -> None:
    name = unique("cli")
    bucket = unique("cli-bucket")
    doc = policy(
        name,
        statement("read", ["s3:GetObject"], [f"{bucket}/*"], ["role/Analyst"]),
        statement("no-private", ["s3:GetObject"], [f"{bucket}/private/*"], ["*"], effect="Deny"),
    )
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(doc))
    applied = cli(server, "apply", "-f", str(path))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.strip() == f"applied policy {name} (2 statements)"

    table = cli(server, "list")
    assert table.returncode == 0, table.stderr
    rows = [line for line in table.stdout.splitlines() if name in line]
    assert (
        len(rows) == 2 and "no-private" in rows[1] and "Deny" in rows[1] and f"{bucket}/private/*" in rows[1]
    )
    as_json = cli(server, "list", "--json")
    assert [p for p in json.loads(as_json.stdout) if p["name"] == name] == [doc]

    yes = cli(server, "can-i", "s3:GetObject", f"{bucket}/public/x", f"{bucket}/y")
    assert (yes.returncode, yes.stdout.strip()) == (0, "yes")
    no = cli(server, "can-i", "s3:GetObject", f"{bucket}/private/x", "--json")
    assert (no.returncode, json.loads(no.stdout)) == (1, {"verdict": False})

    deleted = cli(server, "delete", name)
    assert (deleted.returncode, deleted.stdout.strip()) == (0, f"deleted policy {name}")
    again = cli(server, "delete", name)
    assert again.returncode == 1
    assert f"404 NOT_FOUND: access policy '{name}' not found" in again.stderr
    assert "Traceback" not in again.stderr


def test_cli_apply_from_stdin_and_its_errors(server: CofferServer, tmp_path: Any) -> None:
    name = unique("stdin")
    doc = policy(name, statement("s", ["s3:ListBucket"], ["b"], ["*"]))
    applied = cli(server, "apply", "-f", "-", "--json", stdin=json.dumps({"policy": doc}))
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout) == doc
    assert name in [p["name"] for p in listed(server)]
    assert delete(server, name).status_code == 200

    bad = cli(
        server, "apply", "-f", "-", stdin=json.dumps(policy(name, statement("s", ["s3:Nope"], ["b"], ["*"])))
    )
    assert bad.returncode == 1
    assert "400 INVALID_ARGUMENT: invalid policy.statements[0].actions[0]" in bad.stderr
    not_json = tmp_path / "broken.json"
    not_json.write_text("{version: v1alpha1")
    broken = cli(server, "apply", "-f", str(not_json))
    assert broken.returncode == 2 and "is not valid JSON" in broken.stderr
    _, token = create_user(server, unique("cli-nobody"))
    refused = cli(server, "list", token=token)
    assert refused.returncode == 1 and "403 PERMISSION_DENIED" in refused.stderr
    assert "cwobject:ListAccessPolicy" in refused.stderr
