"""The audit-log machinery in process: the spool's bound and locks, replay, the flusher's
grouping and idempotency, the core's refusal of writes to the audit bucket, the records.

On a real store of each backend (the `node` fixture: a bootstrapped Node, no HTTP); the
end-to-end behaviour through a server and boto3 is tests/s3/test_audit_logs*.py.
"""

from __future__ import annotations

import gzip
import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from coffer import metrics
from coffer.auditlog import AuditLogs, DataRequest
from coffer.auditlog import events as ev
from coffer.auditlog.spool import Spool
from coffer.identity.models import AccessKey, KeySource
from coffer.node import Node
from coffer.storage.errors import ReservedBucket, ReservedBucketName, TooManyBuckets
from coffer.storage.reserved import audit_bucket_name, is_reserved, system_writes

ROOT = Path(__file__).resolve().parents[2]
LINE = b'{"org":"o","plane":"control-plane","event":{"timestamp":"2026-12-05T18:00:00.000Z"}}\n'


# --- the spool ---------------------------------------------------------------------------------
def test_the_spool_is_bounded_and_rotates(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=len(LINE) * 4, segment_bytes=len(LINE) * 2)
    assert all(spool.append(LINE) for _ in range(4))
    assert not spool.append(LINE), "a full spool refuses, it does not wait"
    spool.sync()  # the open and the rotated segment, and the directory's new entries
    assert spool.size == len(LINE) * 4
    segments = spool.take()
    assert [s.size for s in segments] == [len(LINE) * 2, len(LINE) * 2]
    assert all(s.path.stat().st_mode & 0o777 == 0o600 for s in segments)
    assert segments[0].read() == LINE * 2
    spool.done(segments[0])
    assert not segments[0].path.exists() and spool.size == len(LINE) * 2
    assert spool.append(LINE), "room again once a segment is flushed"
    spool.close()


def test_orphans_are_adopted_only_once_their_owner_is_gone(tmp_path: Path) -> None:
    owner = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=1 << 20)
    other = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=1 << 20)
    assert owner.append(LINE) and owner.append(LINE)
    assert other.adopt_orphans() == 0, "its owner holds the lock"
    owner.close()  # as a killed process would: the file stays, the lock goes
    assert other.adopt_orphans() == 1
    [adopted] = other.take()
    assert adopted.adopted and adopted.read() == LINE * 2 and other.size == len(LINE) * 2
    third = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=1 << 20)
    assert third.adopt_orphans() == 0, "adopted segments are held too"
    other.done(adopted)
    assert list(tmp_path.iterdir()) == []
    for spool in (other, third):
        spool.close()


# --- flushing ----------------------------------------------------------------------------------
@pytest.fixture
def org(node: Node) -> str:
    """A fresh organization with both switches on."""
    org_id = node.directory.create_org("audit-" + secrets.token_hex(3)).id
    node.storage.settings.update_org(
        org_id, control_plane_audit_logging_enabled=True, bucket_audit_logging_enabled=True
    )
    return org_id


def recorder(node: Node, root: Path, **kw: Any) -> AuditLogs:
    logs = AuditLogs(root, flush_seconds=60, max_bytes=kw.pop("max_bytes", 1 << 20), **kw)
    logs.connect(node.storage, node.directory.get_user)
    return logs


def caller(org_id: str) -> AccessKey:
    """The key a data-plane request was signed with."""
    now = datetime.now(UTC)
    return AccessKey(
        "CWXXXXXXXXXXXXXX", org_id, "coreweave/x", "x", KeySource.JWT, None, {}, {}, now, None, None, False
    )


def minted(org_id: str, key_id: str) -> dict[str, Any]:
    return {
        "action": "cwobject:CreateAccessKey",
        "access_key_id": key_id,
        "principal": "coreweave/someone",
        "actor": "cli:root",
        "org_id": org_id,
        "duration_seconds": 60,
    }


def stored(node: Node, org_id: str) -> dict[str, list[dict[str, Any]]]:
    bucket = audit_bucket_name(org_id)
    out = {}
    for item in node.storage.objects.list(bucket).contents:
        body = node.storage.objects.read_bytes(node.storage.objects.get(bucket, item.key))
        out[item.key] = [json.loads(line) for line in gzip.decompress(body).splitlines()]
    return out


def test_a_flush_groups_by_plane_and_skips_a_torn_line(node: Node, org: str, tmp_path: Path) -> None:
    logs = recorder(node, tmp_path)
    logs.control_plane("access_key_minted", **minted(org, "CWAAAAAAAAAAAAAA"))
    logs.control_plane("user_created", org_id=org, actor="cli:root")  # not a control-plane record
    assert logs.spool.append(b'{"org":"' + org.encode() + b'","plane":"contr\n')  # cut short by a crash
    assert logs.flusher is not None
    report = logs.flusher.flush()
    assert report.events == {"control-plane": 1} and report.unreadable == 1 and report.objects == 1
    [(key, records)] = stored(node, org).items()
    assert key.startswith("control-plane/") and key.endswith(".json.gz")
    assert records[0]["identifier"] == "CWAAAAAAAAAAAAAA" and records[0]["principalRole"] == ev.ROLE_OPERATOR
    assert node.storage.buckets.get(audit_bucket_name(org)).owner_principal == "static/audit-logs"
    assert list(logs.spool.root.iterdir()) == []
    logs.close()


def test_replaying_a_half_flushed_segment_rewrites_the_same_objects(
    node: Node, org: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = recorder(node, tmp_path)
    for i in range(3):
        first.control_plane("access_key_minted", **minted(org, f"CWREPLAY{i:08d}"))
    # Written into the bucket, then the process dies before it deletes the segment.
    monkeypatch.setattr(first.spool, "done", lambda segment: None)
    assert first.flusher is not None and first.flusher.flush().objects == 1
    before = stored(node, org)
    first.spool.close()
    second = recorder(node, tmp_path)
    assert second.flusher is not None
    report = second.flusher.flush(adopt=True)
    assert report.events == {"control-plane": 3}
    assert stored(node, org) == before, "the same keys, each event once"
    assert list(second.spool.root.iterdir()) == []
    second.close()


def test_a_full_spool_drops_and_counts(node: Node, org: str, tmp_path: Path) -> None:
    logs = recorder(node, tmp_path, max_bytes=1 << 16)
    sample = {"plane": "control-plane", "reason": "spool_full"}
    before = metrics.REGISTRY.get_sample_value("coffer_audit_log_events_dropped_total", sample) or 0
    for i in range(400):  # ~250 bytes each: the 64 KiB spool fills
        logs.control_plane("access_key_minted", **minted(org, f"CWFULL{i:010d}"))
    after = metrics.REGISTRY.get_sample_value("coffer_audit_log_events_dropped_total", sample) or 0
    assert after - before > 0
    assert logs.spool.size <= 1 << 16
    assert logs.flusher is not None
    report = logs.flusher.flush()
    assert report.dropped == {"control-plane:spool_full": after - before}
    assert sum(report.events.values()) + (after - before) == 400
    logs.close()


def test_data_plane_follows_the_bucket_and_org_switches(node: Node, org: str, tmp_path: Path) -> None:
    logs = recorder(node, tmp_path)
    name = "audited-" + secrets.token_hex(4)
    bucket = node.storage.buckets.create(org_id=org, owner="coreweave/x", name=name, zone=None)

    def request(operation: str = "GetObject") -> DataRequest:
        return DataRequest(operation, "s3:GetObject", name, "k", caller(org), "10.0.0.1", "h", "req", 200)

    logs.data_plane(request(), bucket)  # the bucket does not log
    node.storage.settings.update_bucket(name, audit_logging_enabled=True)
    audited = node.storage.buckets.get(name)
    logs.data_plane(request(), audited)
    logs.data_plane(request("PutBucketTagging"), audited)  # not a logged operation
    node.storage.settings.update_org(org, bucket_audit_logging_enabled=False)
    logs.data_plane(request(), audited)
    logs.data_plane(request("ListBuckets"), None)
    assert logs.flusher is not None and logs.flusher.flush().events == {"data-plane": 1}
    logs.close()


def test_the_audit_bucket_does_not_count_against_the_bucket_limit(
    node: Node, org: str, tmp_path: Path
) -> None:
    node.storage.settings.update_org(org, max_buckets=1)
    node.storage.buckets.create(
        org_id=org, owner="coreweave/x", name="only-" + secrets.token_hex(4), zone=None
    )
    logs = recorder(node, tmp_path)
    logs.control_plane("access_key_minted", **minted(org, "CWLIMITAAAAAAAAA"))
    assert logs.flusher is not None and logs.flusher.flush().objects == 1
    assert node.storage.buckets.count(org) == 1, "the audit bucket is not counted"
    with pytest.raises(TooManyBuckets):
        node.storage.buckets.create(
            org_id=org, owner="coreweave/x", name="two-" + secrets.token_hex(4), zone=None
        )
    logs.close()


# --- the reserved bucket, in the core ------------------------------------------------------------
def test_the_core_refuses_every_change_to_the_audit_bucket(node: Node, org: str, tmp_path: Path) -> None:
    logs = recorder(node, tmp_path)
    logs.control_plane("access_key_minted", **minted(org, "CWGUARDAAAAAAAAA"))
    assert logs.flusher is not None and logs.flusher.flush().objects == 1
    logs.close()
    name = audit_bucket_name(org)
    [key] = stored(node, org)
    storage = node.storage
    refused = [
        lambda: storage.objects.delete(name, key),
        lambda: storage.objects.set_tags(name, key, None, {"a": "b"}),
        lambda: storage.buckets.delete(name),
        lambda: storage.buckets.update(name, policy=None),
        lambda: storage.buckets.update(name, versioning="Enabled"),
        lambda: storage.settings.update_bucket(name, audit_logging_enabled=True),
    ]
    for call in refused:
        with pytest.raises(ReservedBucket):
            call()
    with pytest.raises(ReservedBucketName):
        storage.buckets.create(org_id=org, owner="coreweave/x", name=name, zone=None)
    assert stored(node, org)[key], "still there, unchanged"
    with system_writes():  # Coffer's own writer may
        storage.buckets.update(name, tags=None)


def test_only_the_audit_log_writer_enters_system_writes() -> None:
    users = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "coffer").rglob("*.py")
        if "system_writes(" in path.read_text() and path.name != "reserved.py"
    }
    assert users == {"coffer/auditlog/writer.py"}


# --- the records -------------------------------------------------------------------------------
def test_records_carry_the_reference_fields() -> None:
    now = datetime(2026, 12, 5, 18, 5, 9, 123456, tzinfo=UTC)
    control = ev.control_record(
        "access_key_revoked", {"actor": "coreweave/u", "access_key_id": "CWK"}, "Member", now
    )
    assert control == {
        "action": "cwobject:RevokeAccessKeyByAccessKey",
        "principal": "coreweave/u",
        "principalRole": "Member",
        "timestamp": "2026-12-05T18:05:09.123Z",
        "identifier": "CWK",
        "duration_seconds": None,
        "event": "access_key_revoked",
    }
    assert ev.hour_of(control["timestamp"]) == "2026/12/05/18"
    request = DataRequest("HeadObject", "s3:GetObject", "b", "k/1", None, "::1", "h", "r", 404)
    data = ev.data_record(request, now)
    assert data["principal"] == "anonymous" and data["aws:arn"] == "arn:aws:s3:::b/k/1"
    assert data["accessKeyId"] is None and data["sourceIp"] == "::1" and data["status"] == 404
    signed = ev.data_record(
        DataRequest("ListBuckets", "s3:ListAllMyBuckets", None, None, caller("o1"), "ip", "h", "r", 200), now
    )
    assert (
        signed["principal"] == "arn:aws:iam::o1:coreweave/x" and signed["accessKeyId"] == "CWXXXXXXXXXXXXXX"
    )
    assert signed["aws:arn"] == "arn:aws:s3:::*" and signed["bucketName"] is None


def test_principal_roles() -> None:
    class User:
        def __init__(self, admin: bool) -> None:
            self.has_storage_admin = admin

    users = {"admin": User(True), "member": User(False)}
    assert ev.principal_role("coreweave/admin", users.get) == ev.ROLE_ADMIN
    assert ev.principal_role("coreweave/member", users.get) == ev.ROLE_MEMBER
    assert ev.principal_role("coreweave/gone", users.get) == ev.ROLE_MEMBER
    assert ev.principal_role("role/https://idp.example:svc", users.get) == ev.ROLE_FEDERATED
    assert ev.principal_role("saml/alice", users.get) == ev.ROLE_FEDERATED
    assert ev.principal_role("cli:root", users.get) == ev.ROLE_OPERATOR
    assert ev.principal_role("bootstrap", users.get) == ev.ROLE_SYSTEM


def test_reserved_names() -> None:
    assert audit_bucket_name("AbC123") == "cw-abc123-audit-logs"
    assert is_reserved("cw-abc123-audit-logs") and not is_reserved("acw-x")
