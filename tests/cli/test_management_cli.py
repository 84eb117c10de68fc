"""`coffer bucket ...` and `coffer org ...` as a user runs them: subprocesses speaking HTTP
to a running server (GetBucketInfo, ListBucketInfo, SetBucketSettings, organization settings)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from coffer.cli.management import parse_size
from tests.support.cli import coffer_as, error_line
from tests.support.harness import CofferServer
from tests.support.policies import create_org, create_user
from tests.support.s3 import new_bucket


def as_json(server: CofferServer, *args: str, token: str | None = None) -> Any:
    return json.loads(coffer_as(server, *args, "--json", token=token).stdout)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1024", 1024),
        ("0", 0),
        ("10GiB", 10 << 30),
        ("10 GiB", 10 << 30),
        ("10G", 10 << 30),
        ("1.5TiB", 3 << 39),
        ("500MB", 500_000_000),
        ("2kb", 2000),
        ("7B", 7),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "GiB", "-1", "10 parsecs", "1e9", "10GiBs"])
def test_not_sizes(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_bucket_settings_and_info(server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x" * 1536)
    got = as_json(
        server,
        "bucket",
        "settings",
        bucket,
        "--audit-logging",
        "--capacity-cap",
        "10GiB",
        "--archive",
        "--archive-after-days",
        "90",
    )
    assert got == {
        "auditLoggingEnabled": True,
        "archiveEnabled": True,
        "archiveAfterLastAccessDays": 90,
        "configuredCapacityCapBytes": str(10 << 30),
    }
    # Only what is named changes.
    got = as_json(server, "bucket", "settings", bucket, "--no-audit-logging")
    assert got["auditLoggingEnabled"] is False and got["configuredCapacityCapBytes"] == str(10 << 30)
    assert "configuredCapacityCapBytes" not in as_json(
        server, "bucket", "settings", bucket, "--capacity-cap", "none"
    )
    table = coffer_as(server, "bucket", "settings", bucket, "--capacity-cap", "0").stdout
    assert "Capacity cap" in table and "0 bytes" in table and "after 90 days" in table

    info = as_json(server, "bucket", "info", bucket)
    assert info["name"] == bucket and info["settings"]["configuredCapacityCapBytes"] == "0"
    usage = {u["measurementType"]: u for u in info["usage"]}
    assert usage["STANDARD_BYTES"]["value"] == "1536"
    assert usage["STANDARD_BYTES"]["valueHumanReadable"] == "1.5 KiB"
    shown = coffer_as(server, "bucket", "info", bucket).stdout
    for text in (bucket, "Location", "STANDARD_OBJECTS", "1.5 KiB", "Archive"):
        assert text in shown, shown

    every = as_json(server, "bucket", "info")
    assert bucket in {i["name"] for i in every}
    listing = coffer_as(server, "bucket", "info").stdout
    assert bucket in listing and "Stored" in listing


def test_bucket_errors_are_one_line(server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3)
    line = error_line(coffer_as(server, "bucket", "settings", bucket, check=False), 2)
    assert "nothing to change" in line
    out = coffer_as(server, "bucket", "settings", bucket, "--archive", check=False)
    assert error_line(out) == (
        "Error: 400 INVALID_ARGUMENT: invalid archive settings: "
        "archive_after_last_access_days is required when archive is enabled"
    )
    out = coffer_as(
        server, "bucket", "settings", bucket, "--archive", "--archive-after-days", "59", check=False
    )
    assert error_line(out).endswith("must be >= 60")
    out = coffer_as(server, "bucket", "settings", bucket, "--capacity-cap", "ten", check=False)
    assert "not a size" in error_line(out, 2)
    assert error_line(coffer_as(server, "bucket", "info", "no-such-bucket-cli", check=False)).startswith(
        "Error: 404 NOT_FOUND"
    )
    out = coffer_as(server, "bucket", "settings", "no-such-bucket-cli", "--audit-logging", check=False)
    assert error_line(out).startswith("Error: 404 NOT_FOUND")
    _, nobody = create_user(server, "cli-nobody")
    out = coffer_as(server, "bucket", "info", token=nobody, check=False)
    assert error_line(out).startswith("Error: 403 PERMISSION_DENIED")


def test_org_settings(server: CofferServer) -> None:
    org_id = create_org(server)
    _, token = create_user(server, "cli-org-admin", org=org_id, admin=True)
    got = as_json(server, "org", "settings", token=token)
    assert got["settings"] == {"controlPlaneAuditLoggingEnabled": False, "bucketAuditLoggingEnabled": False}
    assert got["limits"] == {"maxBuckets": 1000}
    got = as_json(server, "org", "settings", "--bucket-audit-logging", token=token)
    assert got["settings"] == {"controlPlaneAuditLoggingEnabled": False, "bucketAuditLoggingEnabled": True}
    got = as_json(
        server,
        "org",
        "settings",
        "--no-bucket-audit-logging",
        "--no-control-plane-audit-logging",
        token=token,
    )
    assert got["settings"] == {"controlPlaneAuditLoggingEnabled": False, "bucketAuditLoggingEnabled": False}
    table = coffer_as(server, "org", "settings", token=token).stdout
    assert "Bucket audit logging" in table and "0 of at most 1000" in table
    # The operator's limits show up in the user's view.
    server.cli("admin", "org", "limits", "--org", org_id, "--max-buckets", "7", "--capacity-cap", "1GiB")
    got = as_json(server, "org", "settings", token=token)
    assert got["limits"] == {"maxBuckets": 7, "configuredCapacityCapBytes": str(1 << 30)}
