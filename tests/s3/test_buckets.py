"""Buckets end to end: create/head/delete/location/list, policies, and the request plumbing
every response shares (request ids, health, NotImplemented, MethodNotAllowed, AccessDenied)."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.support.harness import CofferServer
from tests.support.s3 import NS, assert_s3_error, client_error, new_bucket, s3_client, signed, unique


def other_org_key(server: CofferServer) -> dict[str, Any]:
    """A key of an admin in a second organization, whose organization policy allows it all of S3
    (Object Storage Admin grants nothing on S3: without a policy every S3 call is refused)."""
    org_name = unique("org")
    server.cli("admin", "org", "create", org_name, check=False)
    orgs = json.loads(server.cli("admin", "org", "list", "--json").stdout)
    org_id = next(o["id"] for o in orgs if o["name"] == org_name)
    name = unique("user")
    created = json.loads(
        server.cli("admin", "user", "create", name, "--org", org_id, "--admin", "--json").stdout
    )
    token = server.cli("admin", "token", "create", "--user", name).stdout.strip()
    statement = {"name": "all-s3", "effect": "Allow", "actions": ["s3:*"], "resources": ["*"]}
    policy = {
        "version": "v1alpha1",
        "name": "s3",
        "statements": [{**statement, "principals": [created["principalName"]]}],
    }
    with server.api(token) as c:
        c.post("/v1/cwobject/access-policy", json={"policy": policy}).raise_for_status()
    return server.mint_key(token=token)


def test_create_head_location_list_delete(server: CofferServer, s3: Any, key: dict[str, Any]) -> None:
    name = unique()
    created = s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "US-EAST-04A"})
    assert created["Location"] == f"/{name}"
    head = s3.head_bucket(Bucket=name)
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "US-EAST-04A"
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == "US-EAST-04A"
    listed = s3.list_buckets()
    assert name in [b["Name"] for b in listed["Buckets"]]
    assert listed["Owner"]["ID"] == key["principalName"]
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as err:
        s3.head_bucket(Bucket=name)
    assert client_error(err.value) == (404, "404")  # HEAD errors have no body


def test_create_without_configuration_uses_default_zone(s3: Any) -> None:
    name = new_bucket(s3)
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == "US-EAST-04A"


def test_create_is_idempotent_in_the_same_zone(s3: Any) -> None:
    name = new_bucket(s3)
    s3.create_bucket(Bucket=name)
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]].count(name) == 1


def test_create_bucket_malformed_xml(server: CofferServer, key: dict[str, Any]) -> None:
    r = signed(server, key, "PUT", f"/{unique()}", body=b"<CreateBucketConfiguration><Locat")
    assert_s3_error(r, 400, "MalformedXML")


def test_create_bucket_bad_name_and_zone(s3: Any) -> None:
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket="Bad_Name")
    assert client_error(err.value) == (400, "InvalidBucketName")
    with pytest.raises(ClientError) as err:
        s3.create_bucket(Bucket=unique(), CreateBucketConfiguration={"LocationConstraint": "MARS-01A"})
    assert client_error(err.value)[0] == 400


def test_missing_bucket_errors(s3: Any, server: CofferServer, key: dict[str, Any]) -> None:
    name = unique("gone")
    with pytest.raises(ClientError) as err:
        s3.get_bucket_location(Bucket=name)
    assert client_error(err.value) == (404, "NoSuchBucket")
    r = signed(server, key, "GET", f"/{name}", query="location")
    assert_s3_error(r, 404, "NoSuchBucket")
    assert f"<BucketName>{name}</BucketName>" in r.text
    assert f"<Resource>/{name}</Resource>" in r.text


def test_delete_non_empty_bucket(s3: Any) -> None:
    name = new_bucket(s3)
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(ClientError) as err:
        s3.delete_bucket(Bucket=name)
    assert client_error(err.value) == (409, "BucketNotEmpty")


def test_bucket_policy_store_get_delete(s3: Any) -> None:
    name = new_bucket(s3)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_policy(Bucket=name)
    assert client_error(err.value) == (404, "NoSuchBucketPolicy")
    # Once a bucket has a policy it decides (reference §3.4), so it also lets the owner read
    # and delete it: a policy allowing only GetObject would refuse GetBucketPolicy.
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{name}/*",
            },
            {
                "Sid": "owner",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetBucketPolicy", "s3:DeleteBucketPolicy"],
                "Resource": f"arn:aws:s3:::{name}",
            },
        ],
    }
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
    assert json.loads(s3.get_bucket_policy(Bucket=name)["Policy"]) == policy
    s3.delete_bucket_policy(Bucket=name)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_policy(Bucket=name)
    assert client_error(err.value) == (404, "NoSuchBucketPolicy")


@pytest.mark.parametrize("document", ["not json", "[1, 2]", '"a string"', "{unclosed"])
def test_malformed_policy(s3: Any, document: str) -> None:
    name = new_bucket(s3)
    with pytest.raises(ClientError) as err:
        s3.put_bucket_policy(Bucket=name, Policy=document)
    assert client_error(err.value) == (400, "MalformedPolicy")


def test_every_response_has_unique_request_ids(server: CofferServer, s3: Any, key: dict[str, Any]) -> None:
    name = new_bucket(s3)
    seen = set()
    for r in (
        signed(server, key, "GET", "/"),
        signed(server, key, "HEAD", f"/{name}"),
        signed(server, key, "HEAD", f"/{unique('gone')}"),
        signed(server, key, "GET", f"/{name}", query="tagging"),
        httpx.get(server.s3_url + f"/{name}"),
    ):
        rid = r.headers.get("x-amz-request-id")
        assert rid and len(rid) == 16 and r.headers.get("x-amz-id-2")
        seen.add(rid)
    assert len(seen) == 5


def test_head_errors_have_no_body(server: CofferServer, key: dict[str, Any]) -> None:
    r = signed(server, key, "HEAD", f"/{unique('gone')}")
    assert r.status_code == 404 and r.content == b""


def test_unbuilt_operation_is_not_implemented(server: CofferServer, s3: Any, key: dict[str, Any]) -> None:
    name = new_bucket(s3)
    with pytest.raises(ClientError) as err:
        s3.get_bucket_website(Bucket=name)
    assert client_error(err.value) == (501, "NotImplemented")
    r = signed(server, key, "PUT", f"/{name}/k", query="retention", body=b"<Retention/>")
    assert_s3_error(r, 501, "NotImplemented")
    assert s3.list_objects_v2(Bucket=name)["KeyCount"] == 0  # it was not taken for a PutObject
    r = signed(server, key, "GET", f"/{name}", query="frobnicate")
    assert_s3_error(r, 501, "NotImplemented")


def test_wrong_method(server: CofferServer, key: dict[str, Any]) -> None:
    assert_s3_error(signed(server, key, "PATCH", f"/{unique()}/k"), 405, "MethodNotAllowed")
    assert_s3_error(signed(server, key, "DELETE", "/"), 405, "MethodNotAllowed")


def test_anonymous_requests_are_denied(server: CofferServer, s3: Any) -> None:
    name = new_bucket(s3)
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    for method, path in (("GET", "/"), ("GET", f"/{name}"), ("GET", f"/{name}/k"), ("PUT", f"/{unique()}")):
        assert_s3_error(httpx.request(method, server.s3_url + path), 403, "AccessDenied")


def test_other_organization_is_denied(server: CofferServer, s3: Any) -> None:
    name = new_bucket(s3)
    s3.put_object(Bucket=name, Key="k", Body=b"secret")
    stranger = s3_client(server, other_org_key(server))
    for call in (
        lambda: stranger.get_object(Bucket=name, Key="k"),
        lambda: stranger.list_objects_v2(Bucket=name),
        lambda: stranger.put_object(Bucket=name, Key="k2", Body=b"x"),
        lambda: stranger.delete_bucket(Bucket=name),
        lambda: stranger.copy_object(Bucket=name, Key="k3", CopySource={"Bucket": name, "Key": "k"}),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert client_error(err.value) == (403, "AccessDenied")
    assert name not in [b["Name"] for b in stranger.list_buckets()["Buckets"]]
    with pytest.raises(ClientError) as err:
        stranger.create_bucket(Bucket=name)
    assert client_error(err.value) == (409, "BucketAlreadyExists")


def test_health_paths(server: CofferServer, s3: Any) -> None:
    assert httpx.get(server.s3_url + "/_coffer/healthz").json() == {"status": "ok"}
    assert httpx.get(server.s3_url + "/healthz").status_code == 200


def test_bucket_named_healthz_is_not_shadowed(server: CofferServer, s3: Any) -> None:
    # Runs on its own module server: once `healthz` is a bucket, /healthz is that bucket.
    if "healthz" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket="healthz")
    s3.put_object(Bucket="healthz", Key="inside", Body=b"x")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="healthz")["Contents"]] == ["inside"]
    assert_s3_error(httpx.get(server.s3_url + "/healthz"), 403, "AccessDenied")
    assert httpx.get(server.s3_url + "/_coffer/healthz").status_code == 200


def test_list_buckets_xml_shape(server: CofferServer, key: dict[str, Any], s3: Any) -> None:
    s3.create_bucket(Bucket=unique())
    r = signed(server, key, "GET", "/")
    assert r.status_code == 200 and r.headers["content-type"] == "application/xml"
    root = ElementTree.fromstring(r.content)
    assert root.tag == NS + "ListAllMyBucketsResult"
    assert root.find(f"{NS}Owner/{NS}DisplayName").text == key["principalName"]
    created = root.find(f"{NS}Buckets/{NS}Bucket/{NS}CreationDate").text
    assert created.endswith("Z") and "T" in created
