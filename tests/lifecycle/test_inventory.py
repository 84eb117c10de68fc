"""Inventory end to end: the configuration calls (boto3, and signed raw requests for the
bodies an SDK will not send), the policy actions, and the reports the background executor
writes into the destination bucket, read back with Python's gzip, csv and json and
compared with ListObjectVersions. One rule-day is a few seconds here
(`lifecycle_day_seconds`), so "Daily" comes round while the test waits."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote_plus

import pytest
from botocore.exceptions import ClientError

from tests.support.harness import CofferServer
from tests.support.policies import create_user, ensure_ok, policy, s3_of, statement, user_allowed
from tests.support.s3 import assert_s3_error, client_error, new_bucket, s3_client, signed

DAY = 15  # seconds in a rule-day: Daily reports come every 15 s
OBJECTS = 10_000


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {
        "env": {
            "COFFER_LIFECYCLE_DAY_SECONDS": str(DAY),
            "COFFER_LIFECYCLE_INTERVAL_SECONDS": "1",
            "COFFER_LIFECYCLE_STEP_KEYS": "700",  # steps end mid-page: the cursor carries reports
        }
    }


def config(
    config_id: str,
    destination: str,
    *,
    fmt: str = "CSV",
    versions: str = "Current",
    fields: tuple[str, ...] = (),
    prefix: str | None = None,
    dest_prefix: str | None = "reports",
    enabled: bool = True,
) -> dict[str, Any]:
    dest: dict[str, Any] = {"Bucket": f"arn:aws:s3:::{destination}", "Format": fmt}
    if dest_prefix is not None:
        dest["Prefix"] = dest_prefix
    doc: dict[str, Any] = {
        "Destination": {"S3BucketDestination": dest},
        "IsEnabled": enabled,
        "Id": config_id,
        "IncludedObjectVersions": versions,
        "Schedule": {"Frequency": "Daily"},
    }
    if fields:
        doc["OptionalFields"] = list(fields)
    if prefix is not None:
        doc["Filter"] = {"Prefix": prefix}
    return doc


ALL_FIELDS = (
    "Size",
    "LastModifiedDate",
    "ETag",
    "StorageClass",
    "IsMultipartUploaded",
    "ChecksumAlgorithm",
    "ObjectOwner",
)


def put(s3: Any, bucket: str, doc: dict[str, Any]) -> None:
    s3.put_bucket_inventory_configuration(Bucket=bucket, Id=doc["Id"], InventoryConfiguration=doc)


def refused(call: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as err:
        call()
    return client_error(err.value)


def manifest_of(s3: Any, destination: str, base: str, timeout: float = 240) -> dict[str, Any]:
    """The newest report's manifest under `base`, once one is there; its checksum is checked
    (read again if a newer report replaced the pair between the two reads)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = s3.list_objects_v2(Bucket=destination, Prefix=f"{base}/").get("Contents", [])
        folders = sorted(o["Key"] for o in listed if o["Key"].endswith("/manifest.checksum"))
        if folders:
            folder = folders[-1].rsplit("/", 1)[0]
            raw = s3.get_object(Bucket=destination, Key=f"{folder}/manifest.json")["Body"].read()
            checksum = s3.get_object(Bucket=destination, Key=f"{folder}/manifest.checksum")["Body"].read()
            if hashlib.md5(raw).hexdigest() == checksum.decode().strip():
                manifest: dict[str, Any] = json.loads(raw)
                return manifest
        time.sleep(1)
    raise AssertionError(f"no report under {destination}/{base} after {timeout} s")


def rows_of(s3: Any, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row of the report's data files, their size and MD5 checked against the manifest."""
    destination = manifest["destinationBucket"].removeprefix("arn:aws:s3:::")
    columns = [c.strip() for c in manifest["fileSchema"].split(",")]
    rows: list[dict[str, Any]] = []
    for entry in manifest["files"]:
        data = s3.get_object(Bucket=destination, Key=entry["key"])["Body"].read()
        assert len(data) == entry["size"]
        assert hashlib.md5(data).hexdigest() == entry["MD5checksum"]
        text = gzip.decompress(data).decode()
        if manifest["fileFormat"] == "JSON":
            rows += [json.loads(line) for line in text.splitlines()]
            continue
        delimiter = "\t" if manifest["fileFormat"] == "TSV" else ","
        for record in csv.reader(io.StringIO(text), delimiter=delimiter):
            row = dict(zip(columns, record, strict=True))
            row["Key"] = unquote_plus(row["Key"])
            rows.append(row)
    return rows


def versions_of(s3: Any, bucket: str) -> list[dict[str, Any]]:
    """ListObjectVersions, every page: versions and delete markers in S3's order."""
    found: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        entries = [dict(v, marker=False) for v in page.get("Versions", [])]
        entries += [dict(m, marker=True) for m in page.get("DeleteMarkers", [])]
        found += sorted(entries, key=lambda e: (e["Key"], -e["LastModified"].timestamp()))
    return found


def _text(value: Any) -> str:
    """A CSV cell as it reads back; JSON keeps the types."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


# --- configuration ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def buckets(s3: Any) -> tuple[str, str]:
    return new_bucket(s3, "inv-src"), new_bucket(s3, "inv-dst")


def test_round_trip_list_and_delete(s3: Any, buckets: tuple[str, str]) -> None:
    source, dest = buckets
    assert refused(lambda: s3.get_bucket_inventory_configuration(Bucket=source, Id="a")) == (
        404,
        "NoSuchConfiguration",
    )
    doc = config("a", dest, fields=ALL_FIELDS, prefix="logs/", enabled=False)
    doc["Destination"]["S3BucketDestination"]["AccountId"] = "123456789012"
    put(s3, source, doc)
    got = s3.get_bucket_inventory_configuration(Bucket=source, Id="a")["InventoryConfiguration"]
    assert got == doc
    # a replaced configuration keeps its id and takes the new values
    put(s3, source, config("a", dest, fmt="JSON", versions="All", dest_prefix=None, enabled=False))
    got = s3.get_bucket_inventory_configuration(Bucket=source, Id="a")["InventoryConfiguration"]
    assert got["Destination"]["S3BucketDestination"] == {"Bucket": f"arn:aws:s3:::{dest}", "Format": "JSON"}
    assert got["IncludedObjectVersions"] == "All"
    for i in range(102):  # more than a page of the list
        put(s3, source, config(f"c{i:03d}", dest, fmt="TSV", enabled=False))
    first = s3.list_bucket_inventory_configurations(Bucket=source)
    assert first["IsTruncated"] is True and len(first["InventoryConfigurationList"]) == 100
    second = s3.list_bucket_inventory_configurations(
        Bucket=source, ContinuationToken=first["NextContinuationToken"]
    )
    assert second["IsTruncated"] is False
    ids = [c["Id"] for c in first["InventoryConfigurationList"] + second["InventoryConfigurationList"]]
    assert ids == ["a"] + [f"c{i:03d}" for i in range(102)]
    s3.delete_bucket_inventory_configuration(Bucket=source, Id="a")
    assert refused(lambda: s3.delete_bucket_inventory_configuration(Bucket=source, Id="a")) == (
        404,
        "NoSuchConfiguration",
    )
    for i in range(102):
        s3.delete_bucket_inventory_configuration(Bucket=source, Id=f"c{i:03d}")
    assert s3.list_bucket_inventory_configurations(Bucket=source).get("InventoryConfigurationList", []) == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"fmt": "ORC"}, "InvalidArgument"),
        ({"fmt": "Parquet"}, "InvalidArgument"),
        ({"fmt": "XLSX"}, "InvalidArgument"),
        ({"fields": ("ReplicationStatus",)}, "InvalidArgument"),
        ({"fields": ("Size", "Size")}, "InvalidArgument"),
        ({"fields": ("Bogus",)}, "InvalidArgument"),
        ({"versions": "Some"}, "InvalidArgument"),
        ({"dest_prefix": "p" * 600}, "InvalidArgument"),
    ],
)
def test_refused_values(s3: Any, buckets: tuple[str, str], change: dict[str, Any], code: str) -> None:
    source, dest = buckets
    assert refused(lambda: put(s3, source, config("bad", dest, **change))) == (400, code)
    assert refused(lambda: s3.get_bucket_inventory_configuration(Bucket=source, Id="bad"))[0] == 404


def test_refused_destinations(s3: Any, server: CofferServer, buckets: tuple[str, str]) -> None:
    source, _ = buckets
    for arn in ("no-arn", "arn:aws:s3:::", "arn:aws:s3:::missing-bucket-xyz", "arn:aws:s3:::a/b"):
        doc = config("d", "x")
        doc["Destination"]["S3BucketDestination"]["Bucket"] = arn
        assert refused(lambda doc=doc: put(s3, source, doc)) == (400, "InvalidArgument")
    # another organization's bucket
    org = server.cli("admin", "org", "create", "inv-other").stdout.strip()
    _, token = create_user(server, "inv-other-admin", org=org, admin=True)
    ensure_ok(server, policy("inv-other-all", statement("all", ["s3:*"], ["*"], ["*"])), token)
    other = new_bucket(s3_of(server, token), "inv-other")
    assert refused(lambda: put(s3, source, config("d", other))) == (400, "InvalidArgument")
    # the reserved audit-log bucket: no user bucket may be named cw-..., so it is refused by name
    assert refused(lambda: put(s3, source, config("d", f"cw-{org.lower()}-audit-logs"))) == (
        400,
        "InvalidArgument",
    )
    # Encryption: Coffer does not encrypt reports, and says so
    doc = config("d", source)
    doc["Destination"]["S3BucketDestination"]["Encryption"] = {"SSES3": {}}
    assert refused(lambda: put(s3, source, doc)) == (400, "InvalidArgument")
    # the same bucket is a valid destination
    put(s3, source, config("self", source, enabled=False))
    s3.delete_bucket_inventory_configuration(Bucket=source, Id="self")


RAW = (
    '<InventoryConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    "<Destination><S3BucketDestination><Bucket>arn:aws:s3:::{dest}</Bucket><Format>CSV</Format>"
    "</S3BucketDestination></Destination><IsEnabled>{enabled}</IsEnabled><Id>{id}</Id>"
    "<IncludedObjectVersions>Current</IncludedObjectVersions>{schedule}</InventoryConfiguration>"
)
SCHEDULE = "<Schedule><Frequency>{frequency}</Frequency></Schedule>"


def test_refused_bodies(server: CofferServer, key: dict[str, Any], buckets: tuple[str, str]) -> None:
    source, dest = buckets

    def put_raw(body: str, query: str = "inventory&id=r") -> Any:
        return signed(server, key, "PUT", f"/{source}", body=body.encode(), query=query)

    good = {"dest": dest, "enabled": "false", "id": "r", "schedule": SCHEDULE.format(frequency="Daily")}
    assert put_raw(RAW.format(**good)).status_code == 200
    assert_s3_error(put_raw(RAW.format(**{**good, "schedule": ""})), 400, "MalformedXML")
    assert_s3_error(put_raw(RAW.format(**{**good, "enabled": "maybe"})), 400, "MalformedXML")
    assert_s3_error(put_raw("<InventoryConfiguration><Id>"), 400, "MalformedXML")
    assert_s3_error(put_raw("<Other/>"), 400, "MalformedXML")
    assert_s3_error(put_raw(""), 400, "MalformedXML")
    bad_frequency = {**good, "schedule": SCHEDULE.format(frequency="Hourly")}
    assert_s3_error(put_raw(RAW.format(**bad_frequency)), 400, "InvalidArgument")
    assert_s3_error(
        put_raw(RAW.format(**{**good, "id": "x y"}), "inventory&id=x%20y"), 400, "InvalidArgument"
    )
    assert_s3_error(put_raw(RAW.format(**good), "inventory&id=other"), 400, "InvalidArgument")
    assert_s3_error(put_raw(RAW.format(**good), "inventory"), 400, "InvalidArgument")
    assert_s3_error(put_raw("<x>" * 70_000), 400, "MaxMessageLengthExceeded")  # bodies are bounded
    listed = signed(server, key, "GET", f"/{source}", query="inventory&continuation-token=%25%25")
    assert_s3_error(listed, 400, "InvalidArgument")
    assert signed(server, key, "DELETE", f"/{source}", query="inventory&id=r").status_code == 204


def test_at_most_1000_configurations(s3: Any) -> None:
    source = new_bucket(s3, "inv-many")
    for i in range(1000):
        put(s3, source, config(f"n{i:04d}", source, enabled=False))
    assert refused(lambda: put(s3, source, config("one-more", source, enabled=False))) == (
        400,
        "TooManyConfigurations",
    )
    put(s3, source, config("n0000", source, fmt="JSON", enabled=False))  # replacing one is fine
    # deleting the bucket deletes its configurations: a new bucket of the same name has none
    s3.delete_bucket(Bucket=source)
    s3.create_bucket(Bucket=source)
    assert s3.list_bucket_inventory_configurations(Bucket=source).get("InventoryConfigurationList", []) == []


def test_policy_actions(s3: Any, server: CofferServer, buckets: tuple[str, str]) -> None:
    source, dest = buckets
    put(s3, source, config("pol", dest, enabled=False))
    as_reader = user_allowed(server, "inv-reader", ["s3:GetInventoryConfiguration"], [source])
    assert as_reader.get_bucket_inventory_configuration(Bucket=source, Id="pol")["InventoryConfiguration"]
    assert as_reader.list_bucket_inventory_configurations(Bucket=source)["InventoryConfigurationList"]
    assert refused(lambda: put(as_reader, source, config("pol2", dest))) == (403, "AccessDenied")
    assert refused(lambda: as_reader.delete_bucket_inventory_configuration(Bucket=source, Id="pol")) == (
        403,
        "AccessDenied",
    )
    assert refused(lambda: as_reader.get_bucket_inventory_configuration(Bucket=dest, Id="pol"))[0] == 403
    as_writer = user_allowed(server, "inv-writer", ["s3:PutInventoryConfiguration"], [source])
    put(as_writer, source, config("pol2", dest, enabled=False))
    assert refused(lambda: as_writer.list_bucket_inventory_configurations(Bucket=source)) == (
        403,
        "AccessDenied",
    )
    as_writer.delete_bucket_inventory_configuration(Bucket=source, Id="pol2")
    s3.delete_bucket_inventory_configuration(Bucket=source, Id="pol")


# --- reports --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big(s3: Any, server: CofferServer, key: dict[str, Any]) -> str:
    """A versioned bucket of 10,000 objects (tiny bodies, PUT by 16 threads over boto3), 300 of
    them overwritten (noncurrent versions) and 150 deleted (delete markers), one multipart."""
    bucket = new_bucket(s3, "inv-big", versioned=True)
    keys = [f"k/{i // 100:03d}/obj {i:05d}+ü" for i in range(OBJECTS)]
    started = time.monotonic()
    pooled = s3_client(server, key, max_pool_connections=16)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: pooled.put_object(Bucket=bucket, Key=k, Body=k.encode()[-7:]), keys))
        list(pool.map(lambda k: pooled.put_object(Bucket=bucket, Key=k, Body=b"v2"), keys[:300]))
        list(pool.map(lambda k: pooled.delete_object(Bucket=bucket, Key=k), keys[300:450]))
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload, PartNumber=1, Body=b"p" * 10)
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    print(f"seeded {OBJECTS} objects in {time.monotonic() - started:.1f} s")
    return bucket


def test_reports_match_list_object_versions(s3: Any, server: CofferServer, big: str) -> None:
    dest = new_bucket(s3, "inv-out")
    put(s3, big, config("current-csv", dest, fields=ALL_FIELDS))
    put(s3, big, config("all-csv", dest, versions="All", fields=ALL_FIELDS))
    put(s3, big, config("all-json", dest, fmt="JSON", versions="All", fields=ALL_FIELDS))
    put(s3, big, config("current-tsv", dest, fmt="TSV", fields=("Size",), prefix="k/00", dest_prefix=None))
    listed = versions_of(s3, big)
    markers = sum(1 for e in listed if e["marker"])
    assert len(listed) == OBJECTS + 1 + 300 + 150 and markers == 150

    def expect(entry: dict[str, Any], versions: bool) -> dict[str, Any]:
        row: dict[str, Any] = {"Bucket": big, "Key": entry["Key"]}
        if versions:
            row |= {
                "VersionId": entry["VersionId"],
                "IsLatest": entry["IsLatest"],
                "IsDeleteMarker": entry["marker"],
            }
        marker = entry["marker"]
        return row | {
            "Size": None if marker else entry["Size"],
            "LastModifiedDate": entry["LastModified"].strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{entry['LastModified'].microsecond // 1000:03d}Z",
            "ETag": None if marker else entry["ETag"].strip('"'),
            "StorageClass": None if marker else entry["StorageClass"],
            "IsMultipartUploaded": None if marker else "-" in entry["ETag"],
            "ChecksumAlgorithm": None if marker else (entry.get("ChecksumAlgorithm") or [None])[0],
            "ObjectOwner": entry["Owner"]["ID"] if "Owner" in entry else None,
        }

    every = [expect(e, True) for e in listed]
    current = [expect(e, False) for e in listed if e["IsLatest"] and not e["marker"]]
    owners = {r["ObjectOwner"] for r in every if r["IsDeleteMarker"] is False}
    assert len(owners) == 1 and "" not in owners, owners  # ListObjectVersions names the owner

    manifest = manifest_of(s3, dest, f"reports/{big}/all-json")
    assert manifest["sourceBucket"] == big and manifest["destinationBucket"] == f"arn:aws:s3:::{dest}"
    assert manifest["version"] == "2016-11-30" and manifest["fileFormat"] == "JSON"
    assert int(manifest["creationTimestamp"]) > 0
    assert manifest["files"][0]["key"].startswith(f"reports/{big}/all-json/data/")
    assert manifest["files"][0]["key"].endswith(".json.gz")
    assert rows_of(s3, manifest) == every  # JSON keeps the types; empty cells are null

    manifest = manifest_of(s3, dest, f"reports/{big}/all-csv")
    assert manifest["fileSchema"] == (
        "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass, "
        "IsMultipartUploaded, ChecksumAlgorithm, ObjectOwner"
    )
    expected = [{k: "" if v is None else _text(v) for k, v in r.items()} for r in every]
    assert rows_of(s3, manifest) == expected

    manifest = manifest_of(s3, dest, f"reports/{big}/current-csv")
    assert manifest["fileSchema"].startswith("Bucket, Key, Size,")
    expected = [{k: "" if v is None else _text(v) for k, v in r.items()} for r in current]
    assert rows_of(s3, manifest) == expected
    assert len(expected) == OBJECTS + 1 - 150
    assert sum(1 for r in expected if r["IsMultipartUploaded"] == "true") == 1

    manifest = manifest_of(s3, dest, f"{big}/current-tsv")  # no destination prefix
    assert manifest["fileSchema"] == "Bucket, Key, Size"
    expected = [
        {"Bucket": big, "Key": r["Key"], "Size": str(r["Size"])}
        for r in current
        if r["Key"].startswith("k/00")
    ]
    assert rows_of(s3, manifest) == expected and len(expected) == 1000 - 150

    # written by Coffer's own writer, audited as `inventory`
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        events = [
            e for e in server.audit() if e.get("event") == "inventory_report" and e.get("bucket") == big
        ]
        if {e["config_id"] for e in events} >= {"current-csv", "all-csv", "all-json", "current-tsv"}:
            break
        time.sleep(0.5)
    assert {e["actor"] for e in events} == {"inventory"}
    for doc_id in ("current-csv", "all-csv", "all-json", "current-tsv"):
        s3.delete_bucket_inventory_configuration(Bucket=big, Id=doc_id)


def test_daily_reports_repeat_and_stop_when_disabled(s3: Any) -> None:
    source = new_bucket(s3, "inv-daily")
    s3.put_object(Bucket=source, Key="one", Body=b"1")
    put(s3, source, config("daily", source, fmt="JSON"))
    deadline = time.monotonic() + DAY * 6
    data: set[str] = set()
    while time.monotonic() < deadline and len(data) < 2:
        listed = s3.list_objects_v2(Bucket=source, Prefix=f"reports/{source}/daily/data/").get("Contents", [])
        data = {o["Key"] for o in listed}
        time.sleep(1)
    assert len(data) >= 2, "a second daily report did not come a rule-day later"
    put(s3, source, config("daily", source, fmt="JSON", enabled=False))
    time.sleep(2)  # a report already under way finishes
    settled = s3.list_objects_v2(Bucket=source, Prefix=f"reports/{source}/daily/data/")["KeyCount"]
    time.sleep(DAY + 3)
    assert s3.list_objects_v2(Bucket=source, Prefix=f"reports/{source}/daily/data/")["KeyCount"] == settled
