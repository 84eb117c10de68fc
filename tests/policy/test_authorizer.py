"""The authorizer and the policy store without HTTP: a real node on a real metadata store.

What the end-to-end tests cannot reach from outside: the migration against the schema,
the compiled-policy cache surviving unrelated changes, stored documents that no longer
validate (they deny, never open), and every condition key the request context fills.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from coffer.authz import Origin
from coffer.config import Settings
from coffer.identity.bootstrap import STARTER_POLICY, bootstrap
from coffer.identity.models import AccessKey, KeySource
from coffer.node import Node
from coffer.policy import Rule, parse_org_policy
from coffer.s3.router import route
from coffer.store.db import alembic_config
from coffer.store.schema import metadata, org_policies
from tests.support.harness import create_pg_database, drop_pg_database
from tests.support.policies import policy, statement


def org_and_admin(node: Node) -> tuple[str, str]:
    org = node.directory.default_org().id
    (admin,) = [u for u in node.directory.list_users(org) if u.name == "admin"]
    return org, admin.principal_name


def key_of(node: Node, principal: str, **kw: Any) -> AccessKey:
    org, _ = org_and_admin(node)
    return node.keys.mint(
        org_id=org, principal_name=principal, duration_seconds=0, source=KeySource.JWT, **kw
    ).key


def test_the_migration_creates_what_the_schema_declares(node: Node) -> None:
    with node.db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    mine = [d for d in diffs if "org_policies" in repr(d)]
    assert mine == []
    with node.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(org_policies)).scalar_one() >= 1


def test_the_migration_goes_down_and_up_again(backend: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp(f"migrate-{backend}")
    url = create_pg_database() if backend == "postgres" else ""
    n = Node.open(Settings(data_dir=str(root / "data"), database_url=url))
    try:
        with n.db.engine.connect() as conn:
            command.downgrade(alembic_config(conn), "0001")
            conn.commit()
            assert "org_policies" not in sa.inspect(conn).get_table_names()
            command.upgrade(alembic_config(conn), "head")
            conn.commit()
            assert "org_policies" in sa.inspect(conn).get_table_names()
    finally:
        n.close()
        if url:
            drop_pg_database(url)


def test_bootstrap_creates_the_starter_policy_once(node: Node) -> None:
    org, admin = org_and_admin(node)
    (starter,) = [p for p in node.policies.list_policies(org) if p["name"] == STARTER_POLICY]
    assert starter["statements"][0]["principals"] == [admin]
    node.policies.delete(org, STARTER_POLICY)
    try:
        bootstrap(node.directory, node.data_path, node.policies)  # a later start: nothing is re-created
        assert STARTER_POLICY not in [p["name"] for p in node.policies.list_policies(org)]
    finally:
        node.policies.ensure(org, parse_org_policy(starter))


def test_unrelated_changes_keep_the_compiled_policies(node: Node) -> None:
    org, admin = org_and_admin(node)
    first = node.policies.compiled(org)
    assert node.policies.compiled(org) is first
    key_of(node, admin)  # a mint moves the change counter...
    assert node.policies.compiled(org) is first  # ...but the policies are the same: no recompilation
    node.policies.ensure(
        org, parse_org_policy(policy("extra", statement("s", ["s3:GetObject"], ["x/*"], ["*"])))
    )
    try:
        second = node.policies.compiled(org)
        assert second is not first and "extra" in second.names
    finally:
        node.policies.delete(org, "extra")
    assert "extra" not in node.policies.compiled(org).names


def test_a_stored_policy_that_no_longer_validates_denies_everything(node: Node) -> None:
    org, admin = org_and_admin(node)
    bucket = node.storage.buckets.create(org_id=org, owner=admin, name="broken-org-policy", zone=None)
    key = key_of(node, admin)
    read = route("GET", bucket.name, "k", {})
    assert node.authz.decide_s3(key, read, bucket).allowed
    now = datetime.now(UTC)
    bad = json.dumps(policy("legacy", statement("s", ["s3:RetiredAction"], ["*"], ["*"], effect="Deny")))
    with node.db.write() as conn:
        conn.execute(
            org_policies.insert().values(
                org_id=org, name="legacy", document=bad, etag="x", created_at=now, updated_at=now
            )
        )
        node.db.bump_changes(conn, "policies")
    node.changes.changed()
    try:
        decision = node.authz.decide_s3(key, read, bucket)
        assert not decision.allowed and decision.rule is Rule.ORG_DENY
        assert (decision.policy, decision.statement) == ("legacy", "stored-policy-is-invalid")
        # The admin keeps the control plane, so the policy can be fixed or removed.
        node.policies.delete(org, "legacy")
    finally:
        with node.db.write() as conn:
            conn.execute(org_policies.delete().where(org_policies.c.name == "legacy"))
        node.changes.changed()
    assert node.authz.decide_s3(key, read, bucket).allowed


def test_a_stored_bucket_policy_that_does_not_validate_denies(node: Node) -> None:
    org, admin = org_and_admin(node)
    bucket = node.storage.buckets.create(org_id=org, owner=admin, name="broken-bucket-policy", zone=None)
    key = key_of(node, admin)
    node.storage.buckets.update(bucket.name, policy='{"Statement": "from before validation"}')
    decision = node.authz.decide_s3(
        key, route("GET", bucket.name, "k", {}), node.storage.buckets.get(bucket.name)
    )
    assert not decision.allowed and decision.rule is Rule.BUCKET_IMPLICIT_DENY
    # PutBucketPolicy is global: the owner can still replace it.
    put = route("PUT", bucket.name, None, {"policy": ""}, flags=frozenset({"policy"}))
    assert node.authz.decide_s3(key, put, node.storage.buckets.get(bucket.name)).allowed


def test_the_request_context_fills_every_condition_key(node: Node) -> None:
    org, admin = org_and_admin(node)
    name = "context-keys"
    bucket = node.storage.buckets.create(org_id=org, owner=admin, name=name, zone=None)
    analyst = key_of(node, "saml/jane", role="role/Analyst")
    admin_key = key_of(node, admin)
    node.policies.ensure(
        org, parse_org_policy(policy("analysts", statement("s3", ["s3:*"], ["*"], ["role/Analyst"])))
    )

    def allow(
        sid: str, action: str, resource: str, condition: dict[str, Any], principal: Any = "*"
    ) -> dict[str, Any]:
        return {
            "Sid": sid,
            "Effect": "Allow",
            "Principal": principal,
            "Action": action,
            "Resource": f"arn:aws:s3:::{resource}",
            "Condition": condition,
        }

    document = {
        "Version": "2012-10-17",
        "Statement": [
            allow("list", "s3:ListBucket", name, {"StringEquals": {"s3:prefix": "a/", "s3:delimiter": "/"}}),
            allow("version", "s3:GetObjectVersion", f"{name}/*", {"StringEquals": {"s3:VersionId": "v1"}}),
            allow(
                "lan-tls",
                "s3:GetObject",
                f"{name}/*",
                {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}, "Bool": {"aws:SecureTransport": "true"}},
            ),
            allow(
                "arn",
                "s3:PutObject",
                f"{name}/*",
                {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{org}:saml/*"}},
                principal={"AWS": "role/Analyst"},
            ),
        ],
    }
    node.storage.buckets.update(name, policy=json.dumps(document))
    bucket = node.storage.buckets.get(name)
    try:

        def decide(method: str, key: str | None, query: dict[str, str], origin: Origin = Origin()) -> bool:
            return node.authz.decide_s3(analyst, route(method, name, key, query), bucket, origin).allowed

        assert decide("GET", None, {"prefix": "a/", "delimiter": "/"})
        assert not decide("GET", None, {"prefix": "b/", "delimiter": "/"})
        assert not decide("GET", None, {"prefix": "a/"})
        assert decide("GET", "k", {"versionId": "v1"})
        assert not decide("GET", "k", {"versionId": "v2"})
        assert decide("GET", "k", {}, Origin("10.1.2.3", True))
        assert not decide("GET", "k", {}, Origin("10.1.2.3", False))
        assert not decide("GET", "k", {}, Origin("192.168.1.1", True))
        assert not decide("GET", "k", {})  # no origin known: the conditions cannot hold
        assert decide("PUT", "k", {})  # principal by role alias, condition by ARN
        # The admin is not in role/Analyst, and its ARN is coreweave/..., not saml/...
        assert not node.authz.decide_s3(admin_key, route("PUT", name, "k", {}), bucket).allowed
    finally:
        node.policies.delete(org, "analysts")
