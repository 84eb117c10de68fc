"""Conditional writes in `--strict-coreweave` mode, where CoreWeave documents its own answers
(docs.coreweave.com, "AI Object Storage conditional writes"): an ETag in If-None-Match is
400 InvalidRequest, and of two racing `If-None-Match: *` writes the loser gets 409
ConditionalRequestConflict. Everything CoreWeave does not document answers as AWS does."""

from __future__ import annotations

from typing import Any

import pytest

from tests.s3.conditional import HeldPut, completion, refused
from tests.support.harness import CofferServer
from tests.support.s3 import unique

pytestmark = pytest.mark.usefixtures("subdomains_resolve")


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {"extra_args": ["--s3-domain", "localhost", "--strict-coreweave"]}


@pytest.fixture(scope="module")
def bucket(vs3: Any) -> str:
    name = unique("strict")
    vs3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "US-EAST-04A"})
    return name


def test_an_etag_in_if_none_match_is_invalid_request(vs3: Any, bucket: str) -> None:
    etag = vs3.put_object(Bucket=bucket, Key="k", Body=b"x")["ETag"]
    assert refused(vs3.put_object, Bucket=bucket, Key="k", Body=b"y", IfNoneMatch=etag) == (
        400,
        "InvalidRequest",
    )
    both = {"IfNoneMatch": "*", "IfMatch": etag}  # CoreWeave says nothing of both: AWS's answer
    assert refused(vs3.put_object, Bucket=bucket, Key="k", Body=b"y", **both) == (501, "NotImplemented")
    assert refused(vs3.put_object, Bucket=bucket, Key="k", Body=b"y", IfNoneMatch="*") == (
        412,
        "PreconditionFailed",
    )
    assert refused(vs3.put_object, Bucket=bucket, Key="k", Body=b"y", IfMatch='"0"') == (
        412,
        "PreconditionFailed",
    )


def test_the_loser_of_a_race_gets_409(
    server: CofferServer, key: dict[str, Any], vs3: Any, bucket: str
) -> None:
    url = f"http://{bucket}.localhost:{server.s3_port}/raced"
    put = HeldPut(server.s3_port, key, url, b"held", {"If-None-Match": "*"})
    assert put.early is None
    vs3.put_object(Bucket=bucket, Key="raced", Body=b"winner", IfNoneMatch="*")
    reply = put.finish()
    assert (reply.status, reply.code()) == (409, "ConditionalRequestConflict"), reply.body
    assert vs3.get_object(Bucket=bucket, Key="raced")["Body"].read() == b"winner"


def test_a_retried_complete_and_part_numbers_answer_as_aws(vs3: Any, bucket: str) -> None:
    upload_id = vs3.create_multipart_upload(Bucket=bucket, Key="mpu")["UploadId"]
    part = vs3.upload_part(Bucket=bucket, Key="mpu", UploadId=upload_id, PartNumber=1, Body=b"only part")
    complete = completion(bucket, "mpu", upload_id, [{"PartNumber": 1, "ETag": part["ETag"]}])
    first = vs3.complete_multipart_upload(**complete)
    assert vs3.complete_multipart_upload(**complete)["ETag"] == first["ETag"]
    assert refused(vs3.get_object, Bucket=bucket, Key="mpu", PartNumber=2) == (416, "InvalidPartNumber")
