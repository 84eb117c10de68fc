"""The setting `default_object_ownership`, and strict CoreWeave mode answering as Coffer did
before it had ACLs: a server started with COFFER_DEFAULT_OBJECT_OWNERSHIP=BucketOwnerPreferred,
and one more, strict, that ignores it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.harness import CofferServer, running_server
from tests.support.s3 import client_error, localhost_subdomains, s3_client, unique

ZONE = "US-EAST-04A"
PREFERRED = {"COFFER_DEFAULT_OBJECT_OWNERSHIP": "BucketOwnerPreferred"}


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {"env": PREFERRED}


def error_of(call: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as err:
        call()
    return client_error(err.value)


def rules(s3: Any, bucket: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"][
        "Rules"
    ]
    return found


def test_default_object_ownership_applies_to_buckets_created_without_the_header(s3: Any) -> None:
    name = unique("dflt")
    s3.create_bucket(Bucket=name)
    assert rules(s3, name) == [{"ObjectOwnership": "BucketOwnerPreferred"}]
    s3.put_object(Bucket=name, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    assert error_of(lambda: s3.put_object(Bucket=name, Key="p", Body=b"x", ACL="public-read")) == (
        403,
        "AccessDenied",  # ACLs on, but public ones blocked: new buckets' Block Public Access
    )
    explicit = unique("expl")
    s3.create_bucket(Bucket=explicit, ObjectOwnership="BucketOwnerEnforced")
    assert rules(s3, explicit) == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert error_of(lambda: s3.put_object(Bucket=explicit, Key="p", Body=b"x", ACL="public-read")) == (
        400,
        "AccessControlListNotSupported",
    )


@pytest.fixture(scope="module")
def strict(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CofferServer]:
    """A strict CoreWeave server that is also told to default to ObjectWriter."""
    args = ["--s3-domain", "localhost", "--strict-coreweave"]
    with running_server(tmp_path_factory.mktemp(f"strict-{backend}"), backend, extra_args=args,
                        env={"COFFER_DEFAULT_OBJECT_OWNERSHIP": "ObjectWriter"}) as srv:  # fmt: skip
        yield srv


@pytest.fixture(scope="module")
def vs3(strict: CofferServer) -> Iterator[Any]:
    """A virtual-hosted client (strict mode refuses path-style); `*.localhost` resolves while
    the module runs."""
    key = strict.mint_key(duration=0)
    with localhost_subdomains():
        yield s3_client(
            strict, key, addressing_style="virtual", endpoint=f"http://localhost:{strict.s3_port}"
        )


def test_strict_mode_answers_as_before_acls(vs3: Any) -> None:
    name = unique("strict")
    vs3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": ZONE})
    assert rules(vs3, name) == [{"ObjectOwnership": "BucketOwnerEnforced"}]  # the setting is ignored
    other = unique("strict")
    assert error_of(
        lambda: vs3.create_bucket(
            Bucket=other,
            ObjectOwnership="ObjectWriter",
            CreateBucketConfiguration={"LocationConstraint": ZONE},
        )
    ) == (501, "NotImplemented")
    writer = {"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    not_implemented = [
        lambda: vs3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=writer),
        lambda: vs3.delete_bucket_ownership_controls(Bucket=name),
        lambda: vs3.get_public_access_block(Bucket=name),
        lambda: vs3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration={"BlockPublicAcls": False}
        ),
        lambda: vs3.delete_public_access_block(Bucket=name),
        lambda: vs3.get_bucket_policy_status(Bucket=name),
    ]
    for call in not_implemented:
        assert error_of(call) == (501, "NotImplemented")
    vs3.put_object(Bucket=name, Key="k", Body=b"x", ACL="private")
    for canned in ("public-read", "public-read-write", "authenticated-read"):
        assert error_of(lambda c=canned: vs3.put_object(Bucket=name, Key="p", Body=b"x", ACL=c)) == (
            400,
            "AccessControlListNotSupported",
        )
        assert error_of(lambda c=canned: vs3.put_bucket_acl(Bucket=name, ACL=c)) == (
            400,
            "AccessControlListNotSupported",
        )
    acl = vs3.get_object_acl(Bucket=name, Key="k")
    assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL"]
    # No Block Public Access in strict mode: a public bucket policy is accepted as before.
    arn = f"arn:aws:s3:::{name}"
    public = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{arn}/*"}
    vs3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Statement": [public]}))
