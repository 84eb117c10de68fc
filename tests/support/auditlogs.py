"""Helpers for the audit-log bucket tests: the settings that turn logging on, and the records
read back from `cw-<org-id>-audit-logs` with boto3 (gunzipped JSON lines)."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from tests.support.harness import CofferServer
from tests.support.policies import org_of
from tests.support.s3 import new_bucket, s3_client

ORG_SETTINGS = "/v1/cwobject/organization/settings"
BUCKET_SETTINGS = "/v1/cwobject/bucket/settings"
CONTROL = "control-plane/"
DATA = "data-plane/"
CONTROL_FIELDS = {"action", "principal", "principalRole", "timestamp", "identifier", "duration_seconds"}
DATA_FIELDS = {
    "action",
    "aws:arn",
    "principal",
    "timestamp",
    "sourceIp",
    "host",
    "bucketName",
    "accessKeyId",
    "requestId",
}


def audit_bucket(org_id: str) -> str:
    return f"cw-{org_id}-audit-logs"


def set_org_logging(
    server: CofferServer, *, control: bool | None = None, data: bool | None = None, token: str | None = None
) -> None:
    settings: dict[str, bool] = {}
    if control is not None:
        settings["controlPlaneAuditLoggingEnabled"] = control
    if data is not None:
        settings["bucketAuditLoggingEnabled"] = data
    with server.api(token) as c:
        r = c.put(ORG_SETTINGS, json={"settings": settings})
    assert r.status_code == 200, r.text


def set_bucket_logging(server: CofferServer, bucket: str, enabled: bool, token: str | None = None) -> Any:
    """SetBucketSettings(auditLoggingEnabled); returns the response for the caller to check."""
    with server.api(token) as c:
        return c.put(
            BUCKET_SETTINGS, json={"bucketName": bucket, "settings": {"auditLoggingEnabled": enabled}}
        )


def logged_bucket(server: CofferServer, owner_name: str, prefix: str) -> tuple[dict[str, Any], Any, str, str]:
    """A new key `owner_name` of the admin (its key, boto3 client and org) and a new bucket of
    `prefix` logging data events, in an org logging control and data events."""
    owner = server.mint_key(name=owner_name)
    s3 = s3_client(server, owner)
    set_org_logging(server, control=True, data=True)
    bucket = new_bucket(s3, prefix)
    assert set_bucket_logging(server, bucket, True).status_code == 200
    return owner, s3, org_of(server, owner), bucket


def audit_objects(s3: Any, org_id: str, prefix: str) -> dict[str, list[dict[str, Any]]]:
    """Every object under `prefix` of the organization's audit bucket: key -> its records.

    `s3` is a boto3 client, or a list of clients of nodes that do not share their blobs
    (tests.support.harness.three_nodes' node C): each object is read through the first that has it."""
    clients = s3 if isinstance(s3, list) else [s3]
    bucket = audit_bucket(org_id)
    found: dict[str, list[dict[str, Any]]] = {}
    try:
        for page in clients[0].get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                body = _read(clients, bucket, item["Key"])
                lines = gzip.decompress(body).decode().splitlines()
                found[item["Key"]] = [json.loads(line) for line in lines if line]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchBucket":
            return {}
        raise
    return found


def _read(clients: list[Any], bucket: str, key: str) -> bytes:
    for client in clients[:-1]:
        try:
            body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            return body
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "InternalError":  # the blob is another node's
                raise
    last: bytes = clients[-1].get_object(Bucket=bucket, Key=key)["Body"].read()
    return last


def audit_records(s3: Any, org_id: str, prefix: str) -> list[dict[str, Any]]:
    return [record for records in audit_objects(s3, org_id, prefix).values() for record in records]


def wait_for_records(
    s3: Any,
    org_id: str,
    prefix: str,
    done: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 15,
) -> list[dict[str, Any]]:
    """The records under `prefix` once `done(records)` holds (AssertionError after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        records = audit_records(s3, org_id, prefix)
        if done(records):
            return records
        if time.monotonic() > deadline:
            raise AssertionError(f"audit records under {prefix} never got there; have {records}")
        time.sleep(0.25)
