"""The Buckets page: create, browse like folders, upload (single and multipart) with
progress, download, delete, folders, usage, the bucket policy, and refusals."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from playwright.sync_api import Browser, Page, expect

from tests.support.console import new_context, row, shot, sign_in
from tests.support.harness import CofferServer
from tests.support.s3 import unique

pytestmark = pytest.mark.usefixtures("s3_allowed")

MIB = 1 << 20


def open_buckets(page: Page, server: CofferServer) -> None:
    sign_in(page, server.admin_token)
    page.get_by_role("link", name="Buckets").click()
    expect(page.get_by_role("heading", name="Buckets", exact=True)).to_be_visible()


def create_bucket(page: Page, name: str, *, zone: str | None = None, versioning: bool = False) -> None:
    page.get_by_role("button", name="Create Bucket").click()
    dialog = page.get_by_role("dialog", name="Create Bucket")
    dialog.get_by_label("Bucket name").fill(name)
    if zone:
        dialog.get_by_label("Availability zone").select_option(zone)
    if versioning:
        dialog.get_by_role("switch", name="Enable versioning").check()
    dialog.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()


def upload(
    page: Page, name: str, data: bytes, mime: str = "application/octet-stream", *, folder: Path | None = None
) -> None:
    if folder is not None:
        # By path: Playwright then hands chromium the file itself instead of shipping the
        # bytes through its protocol (which takes about a second per MiB).
        (folder / name).write_bytes(data)
        page.locator("input[type=file]").set_input_files(folder / name)
        return
    page.locator("input[type=file]").set_input_files([{"name": name, "mimeType": mime, "buffer": data}])


def download(page: Page, key_label: str) -> bytes:
    with page.expect_download() as info:
        page.get_by_role("button", name=key_label, exact=True).click()
    path = info.value.path()
    assert path is not None
    return Path(path).read_bytes()


def test_create_upload_download_and_browse(page: Page, server: CofferServer, s3: Any) -> None:
    open_buckets(page, server)
    bucket = unique("console")
    create_bucket(page, bucket, zone="US-EAST-04A", versioning=True)
    meta = page.locator(".meta")
    expect(meta).to_contain_text("US-EAST-04A")
    expect(meta).to_contain_text("Enabled")
    expect(page.get_by_text("This bucket is empty")).to_be_visible()
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == "US-EAST-04A"

    data = os.urandom(200_000)
    upload(page, "random.bin", data)
    expect(page.get_by_text("Uploaded random.bin")).to_be_visible()
    expect(row(page, "random.bin")).to_contain_text("195 KiB")
    assert s3.get_object(Bucket=bucket, Key="random.bin")["Body"].read() == data
    assert download(page, "random.bin") == data

    # Folders: a zero-byte "name/" object, browsed like a directory.
    page.get_by_role("button", name="Create folder").click()
    page.get_by_role("dialog", name="Create folder").get_by_label("Folder name").fill("reports")
    page.get_by_role("dialog", name="Create folder").get_by_role("button", name="Create folder").click()
    expect(page.get_by_text("Folder reports/ created")).to_be_visible()
    assert s3.head_object(Bucket=bucket, Key="reports/")["ContentLength"] == 0
    page.get_by_role("link", name="reports/").click()
    expect(page.get_by_role("navigation", name="Breadcrumb")).to_contain_text("reports")
    expect(page.get_by_text("This folder is empty")).to_be_visible()
    upload(page, "q1.csv", b"quarter,total\n1,42\n", "text/csv")
    expect(row(page, "q1.csv")).to_be_visible()
    head = s3.head_object(Bucket=bucket, Key="reports/q1.csv")
    assert head["ContentType"] == "text/csv" and head["ContentLength"] == 19
    expect(page.get_by_test_id("usage")).to_contain_text("3 objects")
    shot(page, "bucket-folder")

    # Keys written by another client with spaces, unicode and '+' come back byte-exact.
    s3.put_object(Bucket=bucket, Key="reports/naïve résumé + notes.txt", Body=b"odd key")
    page.reload()
    assert download(page, "naïve résumé + notes.txt") == b"odd key"

    # Back to the root through the breadcrumb; the folder is listed as such.
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name=bucket).click()
    expect(row(page, "reports/")).to_be_visible()
    expect(row(page, "random.bin")).to_be_visible()
    shot(page, "bucket-objects")

    # Delete an object.
    r = row(page, "random.bin")
    r.get_by_role("button", name="Actions for object random.bin").click()
    page.get_by_role("menuitem", name="Delete…").click()
    page.get_by_role("dialog", name="Delete object").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Deleted random.bin")).to_be_visible()
    expect(row(page, "random.bin")).to_have_count(0)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="random.bin")
    assert not page.errors  # type: ignore[attr-defined]


def test_large_file_goes_up_as_multipart(page: Page, server: CofferServer, s3: Any, tmp_path: Path) -> None:
    open_buckets(page, server)
    bucket = unique("multipart")
    create_bucket(page, bucket)
    data = os.urandom(33 * MIB + 12345)  # three parts: 16 MiB, 16 MiB, the rest
    upload(page, "big.bin", data, folder=tmp_path)
    expect(page.get_by_text("Uploaded big.bin")).to_be_visible(timeout=120_000)
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-3"')  # a multipart ETag: three parts
    got = download(page, "big.bin")
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    expect(page.get_by_test_id("usage")).to_contain_text("1 object")


def test_upload_progress_is_shown(page: Page, server: CofferServer, tmp_path: Path) -> None:
    open_buckets(page, server)
    bucket = unique("progress")
    create_bucket(page, bucket)
    # Chosen with the keyboard: the "Upload files" control opens the file chooser on Enter.
    (tmp_path / "progress.bin").write_bytes(os.urandom(2 * MIB))
    # The bucket view renders again once its listing arrives; focus the control that stays.
    expect(page.get_by_text("This bucket is empty")).to_be_visible()
    upload = page.get_by_role("button", name="Upload files")
    upload.focus()
    expect(upload).to_be_focused()
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(tmp_path / "progress.bin")
    item = page.locator(".upload").filter(has_text="progress.bin")
    bar = item.get_by_role("progressbar", name="Upload progress of progress.bin")
    expect(bar).to_have_attribute("max", str(2 * MIB))
    expect(item).to_contain_text("Done")
    expect(bar).to_have_attribute("value", str(2 * MIB))


def test_bucket_policy_view_edit_delete(page: Page, server: CofferServer, s3: Any) -> None:
    open_buckets(page, server)
    bucket = unique("policy")
    create_bucket(page, bucket)
    page.get_by_role("tab", name="Bucket policy").click()
    expect(page.get_by_text("This bucket has no policy")).to_be_visible()
    editor = page.get_by_label("Bucket policy (JSON)")
    editor.fill("{not json")
    page.get_by_role("button", name="Save policy").click()
    expect(page.get_by_text("The policy is not valid JSON")).to_be_visible()
    editor.fill('["a list is not a policy"]')
    page.get_by_role("button", name="Save policy").click()
    expect(page.get_by_role("alert").filter(has_text="MalformedPolicy")).to_be_visible()
    shot(page, "bucket-policy-error")

    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OrgMembers",
                "Effect": "Allow",
                "Principal": {"CW": "*"},
                "Action": ["s3:*"],
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            }
        ],
    }
    editor.fill(json.dumps(policy))
    page.get_by_role("button", name="Save policy").click()
    expect(page.get_by_text("Bucket policy saved")).to_be_visible()
    expect(page.get_by_text("This bucket has a policy.")).to_be_visible()
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == policy
    page.reload()
    expect(page.get_by_label("Bucket policy (JSON)")).to_have_value(json.dumps(policy, indent=2))
    shot(page, "bucket-policy")

    page.get_by_role("button", name="Delete policy").click()
    page.get_by_role("dialog", name="Delete bucket policy").get_by_role(
        "button", name="Delete policy"
    ).click()
    expect(page.get_by_text("This bucket has no policy")).to_be_visible()
    with pytest.raises(ClientError) as err:
        s3.get_bucket_policy(Bucket=bucket)
    assert err.value.response["Error"]["Code"] == "NoSuchBucketPolicy"


def test_delete_bucket_needs_it_empty_and_the_name_typed(page: Page, server: CofferServer, s3: Any) -> None:
    bucket = unique("delete")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="keep.txt", Body=b"x")
    open_buckets(page, server)
    r = row(page, bucket)
    expect(r).to_be_visible()
    shot(page, "buckets")
    r.get_by_role("button", name=f"Actions for bucket {bucket}").click()
    page.get_by_role("menuitem", name="Delete…").click()
    dialog = page.get_by_role("dialog", name="Delete bucket")
    confirm = dialog.get_by_role("button", name="Delete bucket")
    expect(confirm).to_be_disabled()
    dialog.get_by_label(f"Type the bucket name {bucket} to confirm").fill(bucket)
    confirm.click()
    expect(dialog.get_by_role("alert")).to_contain_text("BucketNotEmpty")
    dialog.get_by_role("button", name="Cancel").click()
    s3.delete_object(Bucket=bucket, Key="keep.txt")
    r.get_by_role("button", name=f"Actions for bucket {bucket}").click()
    page.get_by_role("menuitem", name="Delete…").click()
    dialog = page.get_by_role("dialog", name="Delete bucket")
    dialog.get_by_label(f"Type the bucket name {bucket} to confirm").fill(bucket)
    dialog.get_by_role("button", name="Delete bucket").click()
    expect(page.get_by_text(f"Bucket {bucket} deleted")).to_be_visible()
    expect(row(page, bucket)).to_have_count(0)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_invalid_bucket_name_is_shown_inline(page: Page, server: CofferServer) -> None:
    open_buckets(page, server)
    page.get_by_role("button", name="Create Bucket").click()
    dialog = page.get_by_role("dialog", name="Create Bucket")
    dialog.get_by_label("Bucket name").fill("Not_A_Valid_Name")
    dialog.get_by_role("button", name="Create", exact=True).click()
    expect(dialog.get_by_text("InvalidBucketName")).to_be_visible()
    shot(page, "create-bucket-invalid")


def test_long_names_do_not_break_the_layout(page: Page, server: CofferServer, s3: Any) -> None:
    bucket = "long-" + "n" * 52 + "-" + unique("x")[-5:]
    s3.create_bucket(Bucket=bucket[:63])
    bucket = bucket[:63]
    long_key = "a-very-long-object-name-" * 12 + ".txt"
    s3.put_object(Bucket=bucket, Key=long_key, Body=b"long")
    open_buckets(page, server)
    link = page.get_by_role("link", name=bucket)
    expect(link).to_have_attribute("title", bucket)
    link.click()
    cell = page.get_by_role("button", name=long_key, exact=True)
    expect(cell).to_have_attribute("title", f"Download {long_key}")
    assert cell.evaluate("e => getComputedStyle(e).textOverflow") == "ellipsis"
    assert cell.evaluate("e => e.scrollWidth > e.clientWidth")  # truncated, not wrapped
    # Nothing overflows the page sideways.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "bucket-long-names")


def test_a_user_without_permission_is_refused_readably(browser: Browser, server: CofferServer) -> None:
    principal, token = server.create_user(unique("nobody"))
    ctx = new_context(browser, server)
    page = ctx.new_page()
    sign_in(page, token)
    page.get_by_role("link", name="Buckets").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The buckets could not be listed.")
    expect(alert).to_contain_text(f"{principal} is not allowed to perform cwobject:CreateAccessKey")
    shot(page, "buckets-forbidden")
    ctx.close()
