"""The management surface end to end: SetBucketSettings, GetBucketInfo, ListBucketInfo,
SetOrganizationSettings and Coffer's GET of organization settings, over real sockets.

CoreWeave's documented curl commands run in a real shell with only the host changed; the
rest are the same requests made with httpx. Buckets come from boto3 against the S3 port.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from typing import Any

import httpx
import pytest

from tests.support.api import assert_status, field_violation
from tests.support.harness import CofferServer
from tests.support.policies import create_org, create_user, ensure_ok, policy, statement
from tests.support.s3 import new_bucket, s3_client, unique

SETTINGS = "/v1/cwobject/bucket/settings"
INFO = "/v1/cwobject/bucket-info"
ORG = "/v1/cwobject/organization/settings"
COREWEAVE = "https://api.coreweave.com"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def put_settings(c: httpx.Client, bucket: str, **settings: Any) -> httpx.Response:
    return c.put(SETTINGS, json={"bucketName": bucket, "settings": settings})


def settings_of(c: httpx.Client, bucket: str, **settings: Any) -> dict[str, Any]:
    r = put_settings(c, bucket, **settings)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"settings"}
    out: dict[str, Any] = r.json()["settings"]
    return out


def info_of(c: httpx.Client, bucket: str) -> dict[str, Any]:
    r = c.get(f"{INFO}/{bucket}")
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"info"}
    out: dict[str, Any] = r.json()["info"]
    return out


def usage(info: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {u["measurementType"]: u for u in info["usage"]}


def measurement(kind: str, value: str, human: str) -> dict[str, str]:
    """One entry of a bucket's usage, as GetBucketInfo lists it."""
    return {"measurementType": kind, "value": value, "valueHumanReadable": human}


def invalid(r: httpx.Response) -> str:
    return str(assert_status(r, 400, 3)["message"])


def curl(server: CofferServer, command: str, token: str | None = None) -> Any:
    """A CoreWeave-documented curl command with only the host changed; its JSON answer."""
    assert command.count(COREWEAVE) == 1
    env = {**os.environ, "TOKEN": token or server.admin_token}
    out = subprocess.run(
        ["bash", "-c", command.replace(COREWEAVE, server.api_url)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def outsider(server: CofferServer) -> tuple[str, str, Any]:
    """(org id, admin API token, boto3 client) of a second organization."""
    org_id = create_org(server)
    principal, token = create_user(server, unique("outsider"), org=org_id, admin=True)
    ensure_ok(server, policy("s3", statement("all-s3", ["s3:*"], ["*"], [principal])), token)
    return org_id, token, s3_client(server, server.mint_key(token))


# --- SetBucketSettings ---------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_documented_curl_example(server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3)
    got = curl(
        server,
        f"curl -s -X PUT {COREWEAVE}/v1/cwobject/bucket/settings "
        '-H "Content-Type: application/json" -H "Authorization: Bearer $TOKEN" '
        f'-d \'{{"bucketName":"{bucket}","settings":{{"auditLoggingEnabled":true}}}}\'',
    )
    assert got == {"settings": {"auditLoggingEnabled": True, "archiveEnabled": False}}
    info = curl(
        server, f'curl -s {COREWEAVE}/v1/cwobject/bucket-info/{bucket} -H "Authorization: Bearer $TOKEN"'
    )
    assert info["info"]["settings"] == got["settings"]
    listed = curl(
        server,
        f'curl -s -X GET "{COREWEAVE}/v1/cwobject/bucket-info?offset=0&limit=1000" '
        '-H "Authorization: Bearer $TOKEN"',
    )
    assert bucket in {i["name"] for i in listed["info"]}


def test_only_the_fields_present_change(server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3)
    with server.api() as c:
        assert info_of(c, bucket)["settings"] == {"auditLoggingEnabled": False, "archiveEnabled": False}
        assert settings_of(c, bucket, auditLoggingEnabled=True) == {
            "auditLoggingEnabled": True,
            "archiveEnabled": False,
        }
        # The cap is written as capacityCapBytes and read back as configuredCapacityCapBytes, a string.
        assert settings_of(c, bucket, capacityCapBytes="10737418240") == {
            "auditLoggingEnabled": True,
            "archiveEnabled": False,
            "configuredCapacityCapBytes": "10737418240",
        }
        both = settings_of(c, bucket, archiveEnabled=True, archiveAfterLastAccessDays=90)
        assert both == {
            "auditLoggingEnabled": True,
            "archiveEnabled": True,
            "archiveAfterLastAccessDays": 90,
            "configuredCapacityCapBytes": "10737418240",
        }
        assert settings_of(c, bucket, archiveAfterLastAccessDays="120")["archiveAfterLastAccessDays"] == 120
        assert settings_of(c, bucket, auditLoggingEnabled=False)["archiveAfterLastAccessDays"] == 120
        assert info_of(c, bucket)["settings"] == {
            "auditLoggingEnabled": False,
            "archiveEnabled": True,
            "archiveAfterLastAccessDays": 120,
            "configuredCapacityCapBytes": "10737418240",
        }
        # Null is proto3 JSON's "unset"; read-only and unknown fields are ignored beside real ones.
        assert settings_of(
            c, bucket, auditLoggingEnabled=None, capacityCapBytes=0, foo=1, configuredCapacityCapBytes="7"
        ) == {
            "auditLoggingEnabled": False,
            "archiveEnabled": True,
            "archiveAfterLastAccessDays": 120,
            "configuredCapacityCapBytes": "0",
        }
    event = server.audit("bucket_settings_changed", bucket=bucket, from_log=True)[-1]
    assert event["action"] == "cwobject:SetBucketSettings"
    assert event["changed"] == ["capacity_cap_bytes"]
    assert event["settings"]["capacity_cap_bytes"] == 0


def test_64_bit_caps_travel_as_strings(server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3)
    with server.api() as c:
        # A JSON number is accepted too (proto3 JSON parsers take both); the answer is a string.
        assert settings_of(c, bucket, capacityCapBytes=5)["configuredCapacityCapBytes"] == "5"
        big = str(2**63 - 2)  # beyond a double's precision: kept exactly
        assert settings_of(c, bucket, capacityCapBytes=big)["configuredCapacityCapBytes"] == big
        assert info_of(c, bucket)["settings"]["configuredCapacityCapBytes"] == big
        # A cap no bucket can reach (2^63-1 bytes and up, to uint64's top) is no cap at all.
        assert "configuredCapacityCapBytes" not in settings_of(c, bucket, capacityCapBytes=str(2**64 - 1))
        for bad in ("-1", "1e3", "12abc", "", str(2**64), " 5", True, [5], 1.5, -1):
            violation = field_violation(assert_status(put_settings(c, bucket, capacityCapBytes=bad), 400, 3))
            assert violation["field"] == "settings.capacityCapBytes", bad
        assert "configuredCapacityCapBytes" not in info_of(c, bucket)["settings"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"bucketName": "x"},
        {"bucketName": "x", "settings": None},
        {"bucketName": "x", "settings": {}},
        {"bucketName": "x", "settings": {"configuredCapacityCapBytes": "5"}},
        {"bucketName": "x", "settings": {"unknownField": True}},
        {"bucketName": "x", "settings": {"auditLoggingEnabled": None}},
    ],
)
def test_settings_are_required(server: CofferServer, s3: Any, body: dict[str, Any]) -> None:
    if "bucketName" in body:
        body = {**body, "bucketName": new_bucket(s3)}
    with server.api() as c:
        assert invalid(c.put(SETTINGS, json=body)) == "bucket settings are required"


def test_archive_rules_use_the_references_messages(server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3)
    prefix = "invalid archive settings: archive_after_last_access_days "
    with server.api() as c:
        assert (
            invalid(put_settings(c, bucket, archiveEnabled=True))
            == prefix + "is required when archive is enabled"
        )
        assert invalid(put_settings(c, bucket, archiveEnabled=True, archiveAfterLastAccessDays=59)) == (
            prefix + "must be >= 60"
        )
        assert invalid(put_settings(c, bucket, archiveEnabled=True, archiveAfterLastAccessDays=-1)) == (
            prefix + "must be >= 60"
        )
        assert invalid(put_settings(c, bucket, archiveEnabled=True, archiveAfterLastAccessDays=36501)) == (
            prefix + "must be <= 36500"
        )
        # Days are refused while archive is off, whether turned off now or already.
        assert invalid(put_settings(c, bucket, archiveEnabled=False, archiveAfterLastAccessDays=90)) == (
            prefix + "must not be set when archive is disabled"
        )
        assert invalid(put_settings(c, bucket, archiveAfterLastAccessDays=90)) == (
            prefix + "must not be set when archive is disabled"
        )
        # A refused change changes nothing.
        assert info_of(c, bucket)["settings"] == {"auditLoggingEnabled": False, "archiveEnabled": False}
        on = settings_of(c, bucket, archiveEnabled=True, archiveAfterLastAccessDays=60)
        assert on["archiveAfterLastAccessDays"] == 60
        # Turning archive off forgets the days; turning it on again needs them again.
        off = settings_of(c, bucket, archiveEnabled=False)
        assert off == {"auditLoggingEnabled": False, "archiveEnabled": False}
        assert (
            invalid(put_settings(c, bucket, archiveEnabled=True))
            == prefix + "is required when archive is enabled"
        )
        for bad in ("sixty", 60.5, str(2**31), True):
            r = put_settings(c, bucket, archiveEnabled=True, archiveAfterLastAccessDays=bad)
            assert field_violation(assert_status(r, 400, 3))["field"] == "settings.archiveAfterLastAccessDays"


@pytest.mark.parametrize("name", ["auditLoggingEnabled", "archiveEnabled"])
def test_booleans_must_be_booleans(server: CofferServer, s3: Any, name: str) -> None:
    bucket = new_bucket(s3)
    with server.api() as c:
        for bad in ("true", 1, {}, []):
            violation = field_violation(assert_status(put_settings(c, bucket, **{name: bad}), 400, 3))
            assert violation["field"] == f"settings.{name}"


def test_bad_bodies(server: CofferServer) -> None:
    with server.api() as c:
        assert (
            field_violation(
                assert_status(c.put(SETTINGS, json={"settings": {"archiveEnabled": False}}), 400, 3)
            )["field"]
            == "bucketName"
        )
        r = c.put(SETTINGS, json={"bucketName": 5, "settings": {"archiveEnabled": False}})
        assert field_violation(assert_status(r, 400, 3))["field"] == "bucketName"
        r = c.put(SETTINGS, json={"bucketName": "b", "settings": "on"})
        assert field_violation(assert_status(r, 400, 3))["field"] == "settings"
        assert_status(c.put(SETTINGS, content=b"{not json"), 400, 3)
        assert_status(c.put(SETTINGS, json=[1]), 400, 3)
        assert_status(c.post(SETTINGS, json={}), 405, 12)


@pytest.mark.parametrize("name", ["no-such-bucket-here", "x" * 64, "UPPER", "a", "%2E%2E", "b" * 5000])
def test_unknown_buckets_are_not_found(server: CofferServer, name: str) -> None:
    with server.api() as c:
        body = assert_status(put_settings(c, name, auditLoggingEnabled=True), 404, 5)
        assert body["details"][0]["@type"] == "type.googleapis.com/google.rpc.ResourceInfo"
        assert body["details"][0]["resourceType"] == "bucket"
        if len(name) < 100 and "%" not in name:
            assert_status(c.get(f"{INFO}/{name}"), 404, 5)


def test_another_organizations_bucket_is_not_found(
    server: CofferServer, s3: Any, outsider: tuple[str, str, Any]
) -> None:
    _, token, theirs_s3 = outsider
    mine, theirs = new_bucket(s3), new_bucket(theirs_s3)
    with server.api() as c, server.api(token) as them:
        settings_of(them, theirs, auditLoggingEnabled=True)  # they may change their own
        missing = assert_status(put_settings(c, "no-such-bucket-at-all", auditLoggingEnabled=True), 404, 5)
        for r in (put_settings(c, theirs, auditLoggingEnabled=False), c.get(f"{INFO}/{theirs}")):
            body = assert_status(r, 404, 5)
            # Word for word what an unknown bucket gets, but for the name.
            assert body["message"].replace(theirs, "?") == missing["message"].replace(
                "no-such-bucket-at-all", "?"
            )
        assert info_of(them, theirs)["settings"]["auditLoggingEnabled"] is True
        assert theirs not in {i["name"] for i in c.get(INFO).json()["info"]}
        assert mine not in {i["name"] for i in them.get(INFO).json()["info"]}
        assert info_of(c, mine)["name"] == mine
        assert_status(them.get(f"{INFO}/{mine}"), 404, 5)


# --- GetBucketInfo / ListBucketInfo ----------------------------------------------------------------
def test_bucket_info_reports_settings_location_and_usage(
    server: CofferServer, s3: Any, key: dict[str, Any]
) -> None:
    bucket = new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="a", Body=b"x" * 1024)
    s3.put_object(Bucket=bucket, Key="b", Body=b"y" * 2048)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")
    s3.upload_part(Bucket=bucket, Key="big", UploadId=upload["UploadId"], PartNumber=1, Body=b"z" * 100)
    with server.api() as c:
        info = info_of(c, bucket)
        org_id = c.get(f"/v1/cwobject/access-key/{key['accessKeyId']}").json()["info"]["orgId"]
    assert set(info) == {"orgId", "name", "creationTime", "settings", "location", "usage"}
    assert info["orgId"] == org_id and info["name"] == bucket
    assert RFC3339.match(info["creationTime"])
    assert info["location"] == s3.get_bucket_location(Bucket=bucket)["LocationConstraint"].upper()
    for u in info["usage"]:
        assert set(u) == {"measurementType", "value", "valueHumanReadable"}
        assert isinstance(u["value"], str) and u["value"].isdigit(), u
    got = usage(info)
    assert got["STANDARD_OBJECTS"]["value"] == "2"
    assert got["STANDARD_BYTES"] == measurement("STANDARD_BYTES", "3072", "3 KiB")
    assert got["STANDARD_NONCURRENT_OBJECTS"]["value"] == "0"
    assert got["STANDARD_DELETE_MARKERS"]["value"] == "0"
    assert got["INCOMPLETE_UPLOADS"]["value"] == "1"
    assert got["INCOMPLETE_UPLOAD_BYTES"] == measurement("INCOMPLETE_UPLOAD_BYTES", "100", "100 B")
    assert got["TOTAL_BYTES"]["value"] == "3172"
    assert info["usage"][0]["measurementType"] == "STANDARD_BYTES"


def test_usage_per_storage_class_and_versions(server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3, versioned=True)
    s3.put_object(Bucket=bucket, Key="k", Body=b"1" * 10)
    s3.put_object(Bucket=bucket, Key="k", Body=b"2" * 20)  # the first becomes noncurrent
    s3.delete_object(Bucket=bucket, Key="k")  # a delete marker; the second becomes noncurrent
    s3.put_object(Bucket=bucket, Key="cold", Body=b"3" * 5, StorageClass="STANDARD_IA")
    with server.api() as c:
        got = usage(info_of(c, bucket))
    assert got["STANDARD_OBJECTS"]["value"] == "0"
    assert got["STANDARD_NONCURRENT_OBJECTS"]["value"] == "2"
    assert got["STANDARD_NONCURRENT_BYTES"]["value"] == "30"
    assert got["STANDARD_DELETE_MARKERS"]["value"] == "1"
    assert got["STANDARD_IA_OBJECTS"]["value"] == "1"
    assert got["STANDARD_IA_BYTES"]["value"] == "5"
    assert got["TOTAL_BYTES"]["value"] == "35"


def test_list_bucket_info_pages(server: CofferServer, outsider: tuple[str, str, Any]) -> None:
    _, token, theirs_s3 = outsider
    made = sorted(new_bucket(theirs_s3, "page") for _ in range(5))
    with server.api(token) as c:
        everything = c.get(INFO).json()["info"]
        names = [i["name"] for i in everything]
        assert names == sorted(names) and set(made) <= set(names)
        paged: list[str] = []
        for offset in range(0, len(names) + 2, 2):
            r = c.get(INFO, params={"offset": offset, "limit": 2})
            assert r.status_code == 200, r.text
            paged += [i["name"] for i in r.json()["info"]]
        assert paged == names
        assert c.get(INFO, params={"offset": len(names)}).json() == {"info": []}
        assert c.get(INFO, params={"offset": 2**32 - 1, "limit": 1000}).json() == {"info": []}
        assert len(c.get(INFO, params={"limit": 1}).json()["info"]) == 1
        for field, bad in (
            ("limit", "0"),
            ("limit", "1001"),
            ("limit", "-1"),
            ("limit", "ten"),
            ("offset", "-1"),
            ("offset", str(2**32)),
            ("offset", "1.5"),
        ):
            violation = field_violation(assert_status(c.get(INFO, params={field: bad}), 400, 3))
            assert violation["field"] == field


# --- organization settings -------------------------------------------------------------------------
def test_organization_settings(server: CofferServer) -> None:
    org_id = create_org(server)
    _, token = create_user(server, unique("orgadmin"), org=org_id, admin=True)
    with server.api(token) as c:
        got = c.get(ORG).json()
        assert got == {
            "settings": {"controlPlaneAuditLoggingEnabled": False, "bucketAuditLoggingEnabled": False},
            "limits": {"maxBuckets": 1000},
            "usage": {"buckets": 0, "bytes": "0"},
        }
        for body in ({}, {"settings": None}, {"settings": {}}, {"settings": {"other": True}}):
            assert invalid(c.put(ORG, json=body)) == "organization settings are required"
        r = c.put(ORG, json={"settings": {"bucketAuditLoggingEnabled": True}})
        assert r.status_code == 200, r.text
        assert r.json() == {
            "settings": {"controlPlaneAuditLoggingEnabled": False, "bucketAuditLoggingEnabled": True}
        }
        r = c.put(ORG, json={"settings": {"controlPlaneAuditLoggingEnabled": False}})
        assert r.json()["settings"]["bucketAuditLoggingEnabled"] is True
        assert c.get(ORG).json()["settings"] == {
            "controlPlaneAuditLoggingEnabled": False,
            "bucketAuditLoggingEnabled": True,
        }
        # Limits are the operator's: this API does not move them.
        for name, value in (
            ("maxBuckets", 5000),
            ("capacityCapBytes", "1"),
            ("configuredCapacityCapBytes", "1"),
        ):
            r = c.put(ORG, json={"settings": {"bucketAuditLoggingEnabled": False, name: value}})
            assert field_violation(assert_status(r, 400, 3))["field"] == f"settings.{name}"
        assert c.get(ORG).json()["limits"] == {"maxBuckets": 1000}
        r = c.put(ORG, json={"settings": {"bucketAuditLoggingEnabled": "yes"}})
        assert field_violation(assert_status(r, 400, 3))["field"] == "settings.bucketAuditLoggingEnabled"
        assert_status(c.delete(ORG), 405, 12)
    event = server.audit("org_settings_changed", org_id=org_id, from_log=True)[0]
    assert event["action"] == "cwobject:SetOrganizationSettings"
    assert event["changed"] == ["bucket_audit_logging_enabled"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_set_organization_settings_with_curl(server: CofferServer) -> None:
    org_id = create_org(server)
    _, token = create_user(server, unique("curlorg"), org=org_id, admin=True)
    got = curl(
        server,
        f"curl -s -X PUT {COREWEAVE}/v1/cwobject/organization/settings "
        '-H "Content-Type: application/json" -H "Authorization: Bearer $TOKEN" '
        '-d \'{"settings":{"controlPlaneAuditLoggingEnabled":false,"bucketAuditLoggingEnabled":true}}\'',
        token,
    )
    assert got == {"settings": {"controlPlaneAuditLoggingEnabled": False, "bucketAuditLoggingEnabled": True}}


# --- who may --------------------------------------------------------------------------------------
CALLS: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "cwobject:SetBucketSettings": ("PUT", SETTINGS, {"settings": {"auditLoggingEnabled": True}}),
    "cwobject:GetBucketInfo": ("GET", INFO + "/{bucket}", None),
    "cwobject:ListBucketInfo": ("GET", INFO, None),
    "cwobject:SetOrganizationSettings": ("PUT", ORG, {"settings": {"bucketAuditLoggingEnabled": False}}),
    "cwobject:GetOrganizationSettings": ("GET", ORG, None),
}


def _call(c: httpx.Client, action: str, bucket: str) -> httpx.Response:
    method, path, body = CALLS[action]
    if body is not None and action == "cwobject:SetBucketSettings":
        body = {"bucketName": bucket, **body}
    return c.request(method, path.format(bucket=bucket), json=body)


@pytest.mark.parametrize("action", list(CALLS))
def test_each_operation_needs_its_action(server: CofferServer, s3: Any, action: str) -> None:
    bucket = new_bucket(s3)
    principal, token = create_user(server, unique("nobody"))
    with server.api(token) as c:
        body = assert_status(_call(c, action, bucket), 403, 7)
        assert action in body["message"]
        # Granted exactly that action by an organization policy, the same call succeeds.
        policy = {
            "version": "v1alpha1",
            "name": unique("grant"),
            "statements": [
                {
                    "name": "one",
                    "effect": "Allow",
                    "actions": [action],
                    "resources": ["*"],
                    "principals": [principal],
                }
            ],
        }
        with server.api() as admin:
            assert admin.post("/v1/cwobject/access-policy", json={"policy": policy}).status_code == 200
        r = _call(c, action, bucket)
        assert r.status_code == 200, r.text
        others = [a for a in CALLS if a != action]
        assert_status(_call(c, others[0], bucket), 403, 7)


def test_unauthenticated(server: CofferServer) -> None:
    for method, path, _ in CALLS.values():
        r = httpx.request(method, server.api_url + path.format(bucket="b-x"), json={})
        assert_status(r, 401, 16)


def test_openapi_names_the_operations(server: CofferServer) -> None:
    spec = httpx.get(server.api_url + "/openapi.json").json()
    ops = {
        op["operationId"]: (method, path)
        for path, item in spec["paths"].items()
        for method, op in item.items()
    }
    assert ops["CWObject_SetBucketSettings"] == ("put", SETTINGS)
    assert ops["CWObject_GetBucketInfo"] == ("get", INFO + "/{bucketName}")
    assert ops["CWObject_ListBucketInfo"] == ("get", INFO)
    assert ops["CWObject_SetOrganizationSettings"] == ("put", ORG)
    assert ops["CWObject_GetOrganizationSettings"] == ("get", ORG)
