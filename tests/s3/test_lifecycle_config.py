"""Lifecycle configuration end to end (boto3 and signed raw requests, both stores): every
element round-trips, every refused configuration answers S3's code and leaves the stored
one alone, the policy actions are enforced, `x-amz-expiration` names the soonest rule on
the responses AWS sends it on, a deleted bucket takes its configuration along, and a second
process on the same store sees each change within the cache bound."""

# ruff: noqa: E501 - one refused document per table row reads best

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.harness import CofferServer
from tests.support.policies import create_user, denied, ensure_ok, policy, s3_of, statement
from tests.support.s3 import client_error, new_bucket, s3_client, signed, unique

DATE = datetime(2031, 1, 1, tzinfo=UTC)
RULES: list[dict[str, Any]] = [
    {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled", "Expiration": {"Days": 3}},
    {
        "ID": "temp by date",
        "Filter": {"Tag": {"Key": "temp", "Value": "yes"}},
        "Status": "Enabled",
        "Expiration": {"Date": DATE},
    },
    {
        "ID": "checkpoints",
        "Filter": {
            "And": {
                "Prefix": "ckpt/",
                "Tags": [{"Key": "run", "Value": "a"}, {"Key": "keep", "Value": "no"}],
                "ObjectSizeGreaterThan": 10,
                "ObjectSizeLessThan": 1000,
            }
        },
        "Status": "Enabled",
        "NoncurrentVersionExpiration": {"NoncurrentDays": 7, "NewerNoncurrentVersions": 2},
    },
    {
        "ID": "big",
        "Filter": {"ObjectSizeGreaterThan": 5000},
        "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2},
        "Expiration": {"Days": 30},
    },
    {
        "ID": "markers",
        "Filter": {"Prefix": "gone/"},
        "Status": "Enabled",
        "Expiration": {"ExpiredObjectDeleteMarker": True},
    },
    {"ID": "off", "Filter": {"ObjectSizeLessThan": 5}, "Status": "Disabled", "Expiration": {"Days": 1}},
    {"ID": "a b/c", "Filter": {}, "Status": "Enabled", "Expiration": {"Days": 4000}},
]


def put_raw(server: CofferServer, key: dict[str, Any], bucket: str, body: str, *, md5: bool = True) -> Any:
    data = body.encode()
    headers = {"Content-MD5": base64.b64encode(hashlib.md5(data).digest()).decode()} if md5 else {}
    return signed(server, key, "PUT", f"/{bucket}", body=data, headers=headers, query="lifecycle")


def rules_xml(*rules: str) -> str:
    return (
        "<LifecycleConfiguration>" + "".join(f"<Rule>{r}</Rule>" for r in rules) + "</LifecycleConfiguration>"
    )


OK = "<ID>x</ID><Filter><Prefix>p/</Prefix></Filter><Status>Enabled</Status>"
REFUSED = {
    "no rules": (rules_xml(), "MalformedXML"),
    "not xml": ("<LifecycleConfiguration><Rule>", "MalformedXML"),
    "wrong root": ("<Lifecycle><Rule/></Lifecycle>", "MalformedXML"),
    "top-level prefix": (rules_xml("<ID>x</ID><Prefix>p/</Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>"), "InvalidRequest"),
    "transition": (rules_xml(OK + "<Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>"), "InvalidRequest"),
    "noncurrent transition": (rules_xml(OK + "<NoncurrentVersionTransition><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionTransition>"), "InvalidRequest"),
    "days and marker": (rules_xml(OK + "<Expiration><Days>1</Days><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"), "MalformedXML"),
    "days and date": (rules_xml(OK + "<Expiration><Days>1</Days><Date>2031-01-01T00:00:00Z</Date></Expiration>"), "MalformedXML"),
    "empty expiration": (rules_xml(OK + "<Expiration></Expiration>"), "MalformedXML"),
    "days zero": (rules_xml(OK + "<Expiration><Days>0</Days></Expiration>"), "InvalidArgument"),
    "days negative": (rules_xml(OK + "<Expiration><Days>-1</Days></Expiration>"), "InvalidArgument"),
    "days huge": (rules_xml(OK + "<Expiration><Days>2147483648</Days></Expiration>"), "InvalidArgument"),
    "days text": (rules_xml(OK + "<Expiration><Days>ten</Days></Expiration>"), "MalformedXML"),
    "date not midnight": (rules_xml(OK + "<Expiration><Date>2031-01-01T12:00:00Z</Date></Expiration>"), "InvalidArgument"),
    "noncurrent zero": (rules_xml(OK + "<NoncurrentVersionExpiration><NoncurrentDays>0</NoncurrentDays></NoncurrentVersionExpiration>"), "InvalidArgument"),
    "noncurrent no days": (rules_xml(OK + "<NoncurrentVersionExpiration><NewerNoncurrentVersions>1</NewerNoncurrentVersions></NoncurrentVersionExpiration>"), "MalformedXML"),
    "newer 101": (rules_xml(OK + "<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>101</NewerNoncurrentVersions></NoncurrentVersionExpiration>"), "InvalidArgument"),
    "abort zero": (rules_xml(OK + "<AbortIncompleteMultipartUpload><DaysAfterInitiation>0</DaysAfterInitiation></AbortIncompleteMultipartUpload>"), "InvalidArgument"),
    "no action": (rules_xml(OK), "InvalidRequest"),
    "tag and abort": (rules_xml("<ID>x</ID><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload>"), "InvalidRequest"),
    "tag and marker": (rules_xml("<ID>x</ID><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"), "InvalidRequest"),
    "sizes crossed": (rules_xml("<ID>x</ID><Filter><And><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan><ObjectSizeLessThan>5</ObjectSizeLessThan></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>"), "InvalidRequest"),
    "two predicates": (rules_xml("<ID>x</ID><Filter><Prefix>a</Prefix><ObjectSizeLessThan>5</ObjectSizeLessThan></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>"), "MalformedXML"),
    "duplicate id": (rules_xml(OK + "<Expiration><Days>1</Days></Expiration>", OK + "<Expiration><Days>2</Days></Expiration>"), "InvalidArgument"),
    "long id": (rules_xml(f"<ID>{'i' * 256}</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>"), "InvalidArgument"),
    "bad status": (rules_xml("<ID>x</ID><Filter/><Status>On</Status><Expiration><Days>1</Days></Expiration>"), "MalformedXML"),
    "no status": (rules_xml("<ID>x</ID><Filter/><Expiration><Days>1</Days></Expiration>"), "MalformedXML"),
    "unknown element": (rules_xml(OK + "<Expiration><Days>1</Days></Expiration><Colour>red</Colour>"), "MalformedXML"),
    "1001 rules": (rules_xml(*(f"<ID>r{i}</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>" for i in range(1001))), "MalformedXML"),
}  # fmt: skip


@pytest.fixture(scope="module")
def bucket(s3: Any) -> str:
    name = new_bucket(s3, "lc", versioned=True)
    s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": RULES})
    return name


def test_round_trip_of_every_element(server: CofferServer, s3: Any, bucket: str) -> None:
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == RULES
    # A rule without an ID gets one, as AWS names it; an empty Filter applies to all.
    other = new_bucket(s3, "lc")
    with pytest.raises(ClientError) as err:
        s3.get_bucket_lifecycle_configuration(Bucket=other)
    assert client_error(err.value) == (404, "NoSuchLifecycleConfiguration")
    rule = {"Filter": {"Prefix": ""}, "Status": "Enabled", "Expiration": {"Days": 1}}
    s3.put_bucket_lifecycle_configuration(Bucket=other, LifecycleConfiguration={"Rules": [rule]})
    (got,) = s3.get_bucket_lifecycle_configuration(Bucket=other)["Rules"]
    assert 0 < len(got.pop("ID")) <= 255
    assert got == {"Filter": {}, "Status": "Enabled", "Expiration": {"Days": 1}}
    s3.delete_bucket_lifecycle(Bucket=other)
    s3.delete_bucket_lifecycle(Bucket=other)  # none left: still 204, as S3
    changed = server.audit("bucket_lifecycle_changed", bucket=other)
    assert [(e["rules"], e["action"]) for e in changed] == [(1, "s3:PutLifecycleConfiguration")]
    assert changed[0]["actor"].startswith("coreweave/") and changed[0]["org_id"]
    assert len(server.audit("bucket_lifecycle_deleted", bucket=other)) == 1  # not the second delete
    with pytest.raises(ClientError) as err:
        s3.get_bucket_lifecycle_configuration(Bucket=other)
    assert client_error(err.value) == (404, "NoSuchLifecycleConfiguration")


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_configuration(
    server: CofferServer, key: dict[str, Any], s3: Any, bucket: str, case: str
) -> None:
    body, code = REFUSED[case]
    response = put_raw(server, key, bucket, body)
    assert response.status_code == (501 if code == "NotImplemented" else 400), response.text
    assert f"<Code>{code}</Code>" in response.text, response.text
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == RULES  # nothing lost


def test_integrity_header_required(server: CofferServer, key: dict[str, Any], bucket: str) -> None:
    body = rules_xml(OK + "<Expiration><Days>1</Days></Expiration>")
    response = put_raw(server, key, bucket, body, md5=False)
    assert response.status_code == 400
    assert "<Code>InvalidRequest</Code>" in response.text
    assert "Missing required header for this request" in response.text


def test_policy_denies_lifecycle_actions(server: CofferServer, s3: Any, bucket: str) -> None:
    member, token = create_user(server, unique("nolc"))
    mint = statement("mint", ["cwobject:CreateAccessKey"], ["*"], [member])
    deny = statement(
        "no-lifecycle",
        ["s3:PutLifecycleConfiguration", "s3:GetLifecycleConfiguration"],
        ["*"],
        [member],
        "Deny",
    )
    allow = statement("s3", ["s3:*"], ["*"], [member])
    ensure_ok(server, policy(unique("no-lifecycle"), mint, allow, deny))
    member_s3 = s3_of(server, token)
    member_s3.put_object(Bucket=bucket, Key="member", Body=b"x")  # other calls still pass
    assert denied(lambda: member_s3.get_bucket_lifecycle_configuration(Bucket=bucket))
    assert denied(
        lambda: member_s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": RULES[:1]}
        )
    )
    assert denied(lambda: member_s3.delete_bucket_lifecycle(Bucket=bucket))
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == RULES


def expiry_of(response: dict[str, Any]) -> tuple[datetime, str] | None:
    value = response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-expiration")
    if value is None:
        return None
    date_part, rule_part = value.split('", rule-id="')
    assert date_part.startswith('expiry-date="') and rule_part.endswith('"'), value
    return parsedate_to_datetime(date_part[len('expiry-date="') :]), rule_part[:-1]


def midnight_after(moment: datetime, days: int) -> datetime:
    """AWS's rounding: `days` after `moment`, up to the next midnight UTC."""
    when = moment + timedelta(days=days)
    start = when.replace(hour=0, minute=0, second=0, microsecond=0)
    return start if start == when else start + timedelta(days=1)


def test_expiration_header(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="logs/a", Body=b"x")
    head = s3.head_object(Bucket=bucket, Key="logs/a")
    expected = (midnight_after(head["LastModified"], 3), "logs")
    assert expiry_of(put) == expected
    assert expiry_of(head) == expected
    assert expiry_of(s3.get_object(Bucket=bucket, Key="logs/a")) == expected
    current = s3.head_object(Bucket=bucket, Key="logs/a", VersionId=head["VersionId"])
    assert expiry_of(current) == expected  # the current version, named by its id
    # The soonest rule wins: the tag's Date comes before the catch-all's 4000 days.
    tagged = s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="temp=yes")
    assert expiry_of(tagged) == (DATE, "temp%20by%20date")
    plain = s3.put_object(Bucket=bucket, Key="t2", Body=b"x")
    when = s3.head_object(Bucket=bucket, Key="t2")["LastModified"]
    assert expiry_of(plain) == (midnight_after(when, 4000), "a%20b%2Fc")  # rule ids URL-encoded
    # A size filter: "big" (30 days) only above 5000 bytes.
    big = s3.put_object(Bucket=bucket, Key="big", Body=b"x" * 6000)
    when = s3.head_object(Bucket=bucket, Key="big")["LastModified"]
    assert expiry_of(big) == (midnight_after(when, 30), "big")
    # CopyObject and CompleteMultipartUpload too.
    copied = s3.copy_object(Bucket=bucket, Key="logs/copy", CopySource={"Bucket": bucket, "Key": "t2"})
    when = s3.head_object(Bucket=bucket, Key="logs/copy")["LastModified"]
    assert expiry_of(copied) == (midnight_after(when, 3), "logs")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="logs/mp")
    part = s3.upload_part(Bucket=bucket, Key="logs/mp", UploadId=upload["UploadId"], PartNumber=1, Body=b"p")
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="logs/mp",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    when = s3.head_object(Bucket=bucket, Key="logs/mp")["LastModified"]
    assert expiry_of(done) == (midnight_after(when, 3), "logs")
    # Not on a noncurrent version, nor on a delete marker.
    s3.put_object(Bucket=bucket, Key="logs/a", Body=b"y")
    old = s3.head_object(Bucket=bucket, Key="logs/a", VersionId=head["VersionId"])
    assert expiry_of(old) is None
    marker = s3.delete_object(Bucket=bucket, Key="logs/a")
    assert "x-amz-expiration" not in marker["ResponseMetadata"]["HTTPHeaders"]


def test_no_header_without_a_matching_enabled_rule(s3: Any) -> None:
    name = new_bucket(s3, "lc")
    assert expiry_of(s3.put_object(Bucket=name, Key="k", Body=b"x")) is None
    rules = [
        {"ID": "off", "Filter": {}, "Status": "Disabled", "Expiration": {"Days": 1}},
        {"ID": "other", "Filter": {"Prefix": "x/"}, "Status": "Enabled", "Expiration": {"Days": 1}},
        {"ID": "nc", "Filter": {}, "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    assert expiry_of(s3.put_object(Bucket=name, Key="k", Body=b"x")) is None
    assert expiry_of(s3.head_object(Bucket=name, Key="k")) is None


def test_dates_past_year_9999_do_not_overflow(s3: Any) -> None:
    name = new_bucket(s3, "lc")
    rule = {"ID": "forever", "Filter": {}, "Status": "Enabled", "Expiration": {"Days": 2**31 - 1}}
    s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [rule]})
    put = s3.put_object(Bucket=name, Key="k", Body=b"x")
    assert expiry_of(put) == (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), "forever")


def test_deleting_the_bucket_deletes_its_configuration(s3: Any) -> None:
    name = new_bucket(s3, "lc")
    s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": RULES[:1]})
    s3.delete_bucket(Bucket=name)
    s3.create_bucket(Bucket=name)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_lifecycle_configuration(Bucket=name)
    assert client_error(err.value) == (404, "NoSuchLifecycleConfiguration")
    s3.delete_bucket(Bucket=name)


@pytest.fixture(scope="module")
def second(server: CofferServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CofferServer]:
    """Another process on the module's store, with one rule-day of 60 seconds: on SQLite it
    shares the data directory (this host's change counter), on PostgreSQL only the database
    (and the master key), so only the store's notifications can tell it of a change."""
    env = {"COFFER_LIFECYCLE_DAY_SECONDS": "60"}
    data_dir: Path = server.data_dir
    if server.database_url:
        env["COFFER_MASTER_KEY"] = (server.data_dir / "master.key").read_text().strip()
        data_dir = tmp_path_factory.mktemp("second")
    other = CofferServer(data_dir=data_dir, database_url=server.database_url, env=env).start()
    try:
        yield other
    finally:
        other.stop()


def eventually(check: Any, seconds: float = 5.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_another_process_sees_each_change(s3: Any, key: dict[str, Any], second: CofferServer) -> None:
    other = s3_client(second, key)
    name = new_bucket(s3, "lc")
    other.put_object(Bucket=name, Key="k", Body=b"x")
    assert expiry_of(other.head_object(Bucket=name, Key="k")) is None  # cached: no configuration
    rule = {"ID": "short", "Filter": {}, "Status": "Enabled", "Expiration": {"Days": 3}}
    s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [rule]})

    def configured() -> None:
        head = other.head_object(Bucket=name, Key="k")
        # One rule-day is 60 s there, and nothing rounds to midnight.
        assert expiry_of(head) == (head["LastModified"] + timedelta(seconds=180), "short")

    started = time.monotonic()
    eventually(configured)
    assert time.monotonic() - started < 3  # bounded by the poll (1 s)
    assert other.get_bucket_lifecycle_configuration(Bucket=name)["Rules"] == [rule]
    s3.delete_bucket_lifecycle(Bucket=name)

    def gone() -> None:
        # Not pytest.raises: its failure is no AssertionError, and `eventually` retries those only.
        try:
            other.get_bucket_lifecycle_configuration(Bucket=name)
        except ClientError as exc:
            assert client_error(exc) == (404, "NoSuchLifecycleConfiguration")
        else:
            raise AssertionError("the other process still has the configuration")
        assert expiry_of(other.head_object(Bucket=name, Key="k")) is None

    eventually(gone)
