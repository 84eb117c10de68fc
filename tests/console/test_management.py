"""The management surface in the console: a bucket's settings and usage (GetBucketInfo,
SetBucketSettings), usage in the bucket list (ListBucketInfo), the Organization Settings page,
and the warning before a bucket policy that locks its author out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.api import wait_for
from tests.support.console import new_context, row, shot, sign_in
from tests.support.harness import CofferServer
from tests.support.policies import create_user, denied, ensure_ok, policy, s3_of, statement
from tests.support.s3 import new_bucket, unique

pytestmark = pytest.mark.usefixtures("s3_allowed")

ORG_SETTINGS = "/v1/cwobject/organization/settings"


def info(server: CofferServer, bucket: str) -> dict[str, Any]:
    with server.api() as c:
        r = c.get(f"/v1/cwobject/bucket-info/{bucket}")
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()["info"]
    return found


def org_settings(server: CofferServer) -> dict[str, Any]:
    with server.api() as c:
        r = c.get(ORG_SETTINGS)
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


def fact(page: Page, testid: str, name: str) -> Locator:
    """The value of `name` in the facts list of `testid`."""
    return page.get_by_test_id(testid).locator(f"dt:text-is('{name}') + dd")


def open_bucket(page: Page, server: CofferServer, bucket: str, tab: str = "") -> None:
    sign_in(page, server.admin_token)
    page.goto(f"/console/buckets/{bucket}" + (f"?tab={tab}" if tab else ""))
    expect(page.get_by_role("heading", name=bucket)).to_be_visible()


def save_settings(page: Page) -> None:
    page.get_by_role("button", name="Save settings").click()


def test_bucket_settings_and_usage_are_shown_and_an_admin_changes_them(
    page: Page, server: CofferServer, s3: Any
) -> None:
    bucket = new_bucket(s3, "settings")
    s3.put_object(Bucket=bucket, Key="a.bin", Body=b"a" * 1000)
    s3.put_object(Bucket=bucket, Key="b.bin", Body=b"b" * 24)
    open_bucket(page, server, bucket)
    expect(page.get_by_test_id("usage")).to_contain_text("2 objects · 1 KiB")
    page.get_by_role("tab", name="Settings").click()

    expect(fact(page, "bucket-settings", "Audit logging")).to_have_text("Off")
    expect(fact(page, "bucket-settings", "Capacity cap")).to_have_text("No cap")
    expect(fact(page, "bucket-settings", "Archive")).to_have_text("Off")
    expect(page.locator("tr[data-measurement=STANDARD_OBJECTS]")).to_contain_text("2")
    expect(page.locator("tr[data-measurement=STANDARD_BYTES]")).to_contain_text("1,024")
    expect(page.locator("tr[data-measurement=TOTAL_BYTES]")).to_contain_text("1,024")
    expect(page.get_by_label("Maximum size")).to_be_disabled()
    shot(page, "bucket-settings")

    page.get_by_role("switch", name="Audit logging").check()
    page.get_by_role("switch", name="Capacity cap").check()
    page.get_by_label("Maximum size").fill("1.5")
    page.get_by_label("Unit of the capacity cap").select_option("GiB")
    save_settings(page)
    expect(page.get_by_text("Bucket settings saved")).to_be_visible()
    expect(fact(page, "bucket-settings", "Audit logging")).to_have_text("On")
    expect(fact(page, "bucket-settings", "Capacity cap")).to_have_text("1.5 GiB (1,610,612,736 bytes)")
    settings = info(server, bucket)["settings"]
    assert settings["auditLoggingEnabled"] is True
    assert settings["configuredCapacityCapBytes"] == str(3 * 2**29)

    # The values persist, shown in the largest unit that states them exactly.
    page.reload()
    expect(page.get_by_role("switch", name="Audit logging")).to_be_checked()
    expect(page.get_by_label("Maximum size")).to_have_value("1536")
    expect(page.get_by_label("Unit of the capacity cap")).to_have_value("MiB")

    # Only what changed is sent: the cap goes, audit logging stays.
    page.get_by_role("switch", name="Capacity cap").uncheck()
    save_settings(page)
    expect(fact(page, "bucket-settings", "Capacity cap")).to_have_text("No cap")
    settings = info(server, bucket)["settings"]
    assert "configuredCapacityCapBytes" not in settings and settings["auditLoggingEnabled"] is True

    # A cap the API refuses is shown under its field.
    page.get_by_role("switch", name="Capacity cap").check()
    page.get_by_label("Maximum size").fill("ten")
    save_settings(page)
    expect(page.get_by_text("Enter a number, such as 10 or 1.5.")).to_be_visible()
    assert not page.errors  # type: ignore[attr-defined]


def test_an_invalid_archive_setting_shows_the_apis_error(page: Page, server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3, "archive")
    open_bucket(page, server, bucket, "settings")
    page.get_by_role("switch", name="Archive").check()
    save_settings(page)
    alert = page.locator("form[aria-label='Bucket settings'] .alert")
    expect(alert).to_have_text(
        "invalid archive settings: archive_after_last_access_days is required when archive is enabled"
    )
    page.get_by_label("Days without access before archiving").fill("30")
    save_settings(page)
    expect(alert).to_have_text("invalid archive settings: archive_after_last_access_days must be >= 60")
    shot(page, "bucket-settings-invalid")
    assert info(server, bucket)["settings"]["archiveEnabled"] is False

    page.get_by_label("Days without access before archiving").fill("90")
    save_settings(page)
    expect(page.get_by_text("Bucket settings saved")).to_be_visible()
    expect(alert).to_be_hidden()
    expect(fact(page, "bucket-settings", "Archive")).to_have_text("After 90 days without access")
    settings = info(server, bucket)["settings"]
    assert settings["archiveEnabled"] is True and settings["archiveAfterLastAccessDays"] == 90


def test_organization_settings_toggle_and_persist(page: Page, server: CofferServer, s3: Any) -> None:
    server.cli("admin", "org", "limits", "--max-buckets", "500")
    before = org_settings(server)
    sign_in(page, server.admin_token)
    page.get_by_role("link", name="Organization Settings").click()
    expect(page.get_by_role("heading", name="Organization Settings")).to_be_visible()
    control_plane = page.get_by_role("switch", name="Control-plane audit logging")
    buckets = page.get_by_role("switch", name="Bucket audit logging")
    expect(control_plane).not_to_be_checked()
    expect(buckets).not_to_be_checked()
    # The limits are the operator's: shown, not editable.
    expect(fact(page, "org-limits", "Buckets")).to_have_text(f"{before['usage']['buckets']} of at most 500")
    expect(fact(page, "org-limits", "Capacity cap")).to_have_text("No cap")
    expect(page.get_by_test_id("org-limits").locator("input")).to_have_count(0)
    org_id = page.evaluate("fetch('/console/api/session').then(r => r.json()).then(s => s.user.orgId)")
    expect(page.get_by_text(f"cw-{org_id.lower()}-audit-logs")).to_be_visible()
    shot(page, "organization-settings")

    def saved(control_plane_on: bool, buckets_on: bool) -> None:
        page.get_by_role("button", name="Save settings").click()
        expect(page.get_by_text("Organization settings saved").last).to_be_visible()
        expected = {
            "controlPlaneAuditLoggingEnabled": control_plane_on,
            "bucketAuditLoggingEnabled": buckets_on,
        }
        assert wait_for(lambda: org_settings(server)["settings"] == expected, timeout=20)

    control_plane.check()
    buckets.check()
    saved(True, True)
    page.reload()
    expect(control_plane).to_be_checked()
    expect(buckets).to_be_checked()
    control_plane.uncheck()
    saved(False, True)
    buckets.uncheck()
    saved(False, False)


def test_the_bucket_list_shows_usage(page: Page, server: CofferServer, s3: Any) -> None:
    full = new_bucket(s3, "usage")
    for i in range(3):
        s3.put_object(Bucket=full, Key=f"k{i}", Body=b"x" * 1024)
    empty = new_bucket(s3, "usage-empty")
    sign_in(page, server.admin_token)
    page.get_by_role("link", name="Buckets").click()
    expect(row(page, full).get_by_test_id("bucket-usage")).to_have_text("3 objects · 3 KiB")
    expect(row(page, empty).get_by_test_id("bucket-usage")).to_have_text("0 objects · 0 B")
    shot(page, "buckets-usage")


def test_usage_is_a_dash_for_a_user_who_may_not_list_bucket_info(
    browser: Browser, server: CofferServer, s3: Any
) -> None:
    # S3 and the console's key, but not cwobject:ListBucketInfo or GetBucketInfo.
    ensure_ok(server, policy("console-keys", statement("keys", ["cwobject:CreateAccessKey"], ["*"], ["*"])))
    _, token = create_user(server, unique("plain"))
    bucket = new_bucket(s3_of(server, token), "plain")
    ctx = new_context(browser, server)
    page = ctx.new_page()
    sign_in(page, token)
    page.get_by_role("link", name="Buckets").click()
    cell = row(page, bucket).get_by_test_id("bucket-usage")
    expect(cell).to_have_text("—")
    expect(cell.locator("span")).to_have_attribute("title", "Usage is unavailable: " + _denied(token, server))
    page.get_by_role("link", name=bucket).click()
    expect(page.get_by_test_id("usage")).to_have_text("Usage unavailable")
    ctx.close()


def _denied(token: str, server: CofferServer) -> str:
    with server.api(token) as c:
        r = c.get("/v1/cwobject/bucket-info")
    assert r.status_code == 403, r.text
    return str(r.json()["message"])


def _locking(bucket: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "TeamOnly",
                    "Effect": "Allow",
                    "Principal": {"CW": "role/DataTeam"},
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                }
            ],
        }
    )


def _safe(bucket: str) -> str:
    return _locking(bucket).replace("role/DataTeam", "*")


def test_a_policy_that_locks_you_out_asks_first(page: Page, server: CofferServer, s3: Any) -> None:
    bucket = new_bucket(s3, "lockout")
    s3.put_object(Bucket=bucket, Key="keep.txt", Body=b"mine")
    open_bucket(page, server, bucket, "policy")
    editor = page.get_by_label("Bucket policy (JSON)")
    editor.fill(_locking(bucket))
    page.get_by_role("button", name="Save policy").click()
    dialog = page.get_by_role("dialog", name="This policy would lock you out")
    expect(dialog).to_be_visible()
    lost = dialog.locator("ul.lost li")
    expect(lost).to_have_count(2)
    expect(lost.nth(0)).to_have_attribute("data-action", "s3:ListBucket")
    expect(lost.nth(1)).to_have_attribute("data-action", "s3:GetObject")
    expect(lost.nth(0)).to_contain_text("no statement of the policy allows it")
    expect(dialog).to_contain_text("coreweave/")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    shot(page, "bucket-policy-lockout")

    # Cancel: nothing is saved.
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_policy(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "NoSuchBucketPolicy"

    # Confirmed: saved, and S3 then does what the warning said.
    page.get_by_role("button", name="Save policy").click()
    page.get_by_role("dialog", name="This policy would lock you out").get_by_role(
        "button", name="Save anyway"
    ).click()
    expect(page.get_by_text("Bucket policy saved")).to_be_visible()
    assert denied(lambda: s3.list_objects_v2(Bucket=bucket))
    assert denied(lambda: s3.get_object(Bucket=bucket, Key="keep.txt"))

    # The policy cannot be read back, but it can be replaced (PutBucketPolicy is global);
    # a safe policy is saved without a question.
    page.reload()
    expect(page.get_by_text("does not let you read it")).to_be_visible()
    page.get_by_label("Bucket policy (JSON)").fill(_safe(bucket))
    page.get_by_role("button", name="Save policy").click()
    expect(page.get_by_text("Bucket policy saved")).to_be_visible()
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(_safe(bucket))
    assert s3.get_object(Bucket=bucket, Key="keep.txt")["Body"].read() == b"mine"
    assert not page.errors  # type: ignore[attr-defined]
