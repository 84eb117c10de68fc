"""The bucket page's Lifecycle tab in Chromium: list the rules S3 has (set by boto3 too), add a
rule with the form, see S3's refusals in the dialog, delete rules; what S3 stores is checked
with boto3 after each step, rules the form does not know included."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from playwright.sync_api import Page, expect

from tests.support.console import row, shot, sign_in
from tests.support.harness import CofferServer
from tests.support.s3 import client_error, unique

pytestmark = pytest.mark.usefixtures("s3_allowed")

TAGGED = {
    "ID": "tagged",
    "Filter": {
        "And": {
            "Prefix": "tmp/",
            "Tags": [{"Key": "team", "Value": "ml"}],
            "ObjectSizeGreaterThan": 10,
        }
    },
    "Status": "Enabled",
    "Expiration": {"Days": 5},
}


def rules_of(s3: Any, bucket: str) -> list[dict[str, Any]]:
    try:
        rules: list[dict[str, Any]] = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except ClientError as exc:
        assert client_error(exc) == (404, "NoSuchLifecycleConfiguration")
        return []
    return rules


def open_lifecycle(page: Page, server: CofferServer, bucket: str) -> None:
    sign_in(page, server.admin_token)
    page.goto(f"{server.api_url}/console/buckets/{bucket}")
    page.get_by_role("tab", name="Lifecycle").click()


def add_rule(page: Page, rule_id: str, **days: str) -> Any:
    page.get_by_role("button", name="Add rule").click()
    dialog = page.get_by_role("dialog", name="Add lifecycle rule")
    dialog.get_by_label("Rule ID").fill(rule_id)
    labels = {
        "prefix": "Prefix (optional)",
        "expiration": "Expire current versions after (days)",
        "noncurrent": "Delete noncurrent versions after (days)",
        "abort": "Abort incomplete multipart uploads after (days)",
    }
    for name, value in days.items():
        dialog.get_by_label(labels[name]).fill(value)
    dialog.get_by_role("button", name="Add rule").click()
    return dialog


def test_list_add_refuse_and_delete_rules(page: Page, server: CofferServer, s3: Any) -> None:
    bucket = unique("lifecycle")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [TAGGED]})
    open_lifecycle(page, server, bucket)
    tagged = row(page, "tagged")
    expect(tagged).to_contain_text("prefix tmp/, tag team=ml, larger than 10 B")
    expect(tagged).to_contain_text("Expire current versions after 5 days")

    dialog = add_rule(page, "logs", prefix="logs/", expiration="30", noncurrent="7", abort="2")
    expect(page.get_by_text("Rule logs added")).to_be_visible()
    logs = row(page, "logs/")
    expect(logs).to_contain_text("Expire current versions after 30 days")
    expect(logs).to_contain_text("Delete noncurrent versions after 7 days")
    expect(logs).to_contain_text("Abort incomplete uploads after 2 days")
    shot(page, "bucket-lifecycle")
    assert rules_of(s3, bucket) == [
        TAGGED,  # what the form does not know stays as it was
        {
            "ID": "logs",
            "Filter": {"Prefix": "logs/"},
            "Status": "Enabled",
            "Expiration": {"Days": 30},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 7},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2},
        },
    ]

    # Refusals: no action (the page), an id in use (the console), a value S3 refuses.
    dialog = add_rule(page, "empty")
    expect(dialog.get_by_role("alert").filter(has_text="Choose at least one action")).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    dialog = add_rule(page, "logs", expiration="1")
    expect(dialog.get_by_text("is already the id of a rule of this bucket", exact=True)).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    dialog = add_rule(page, "zero", expiration="0")
    expect(dialog.get_by_role("alert").filter(has_text="InvalidArgument")).to_be_visible()
    shot(page, "bucket-lifecycle-refused")
    dialog.get_by_role("button", name="Cancel").click()
    assert [r["ID"] for r in rules_of(s3, bucket)] == ["tagged", "logs"]

    for rule_id, left in (("logs", ["tagged"]), ("tagged", [])):
        row(page, rule_id).first.get_by_role("button", name=f"Actions for rule {rule_id}").click()
        page.get_by_role("menuitem", name="Delete…").click()
        page.get_by_role("dialog", name="Delete lifecycle rule").get_by_role(
            "button", name="Delete rule"
        ).click()
        expect(page.get_by_text(f"Rule {rule_id} deleted")).to_be_visible()
        assert [r["ID"] for r in rules_of(s3, bucket)] == left
    expect(page.get_by_text("No lifecycle rules")).to_be_visible()
    page.reload()
    expect(page.get_by_text("No lifecycle rules")).to_be_visible()
    assert not page.errors  # type: ignore[attr-defined]
