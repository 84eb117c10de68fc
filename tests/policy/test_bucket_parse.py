"""Bucket policy validation: S3's MalformedPolicy reasons, one row per rule."""

from __future__ import annotations

import json
from typing import Any

import pytest

from coffer.policy import MalformedPolicy, parse_bucket_policy
from coffer.policy.bucket import MAX_POLICY_BYTES
from coffer.s3.errors import from_policy
from tests.policy.builders import bstmt, bucket_doc

B = "my-bucket"
OBJ = f"arn:aws:s3:::{B}/*"
GOOD_STATEMENT = bstmt("Allow", "s3:GetObject", OBJ, {"AWS": "*"}, sid="read")


def doc(**statement_changes: Any) -> str:
    statement = dict(GOOD_STATEMENT)
    for key, value in statement_changes.items():
        if value is None:
            statement.pop(key, None)
        else:
            statement[key] = value
    return bucket_doc(statement)


INVALID: list[tuple[str, str | bytes, str]] = [
    # (id, policy text, reason fragment)
    ("not JSON", "{nope", "Policies must be valid JSON and the first byte must be '{'"),
    ("not an object", "[]", "first byte must be '{'"),
    ("not UTF-8", b'{"Version": "\xff"}', "must be valid JSON"),
    ("NaN constant", '{"Statement": NaN}', "must be valid JSON"),
    ("duplicate field", '{"Statement": [], "Statement": []}', "Duplicate field Statement"),
    ("too large", '{"Id": "' + "x" * MAX_POLICY_BYTES + '"}', "maximum allowed document size"),
    ("unknown top-level field", json.dumps({"Statement": [GOOD_STATEMENT], "Foo": 1}), "Unknown field Foo"),
    (
        "bad version",
        json.dumps({"Version": "2020-01-01", "Statement": [GOOD_STATEMENT]}),
        "valid version string",
    ),
    ("missing Statement", json.dumps({"Version": "2012-10-17"}), "Missing required field Statement"),
    (
        "empty Statement",
        json.dumps({"Version": "2012-10-17", "Statement": []}),
        "Missing required field Statement",
    ),
    ("Id not a string", json.dumps({"Id": 3, "Statement": [GOOD_STATEMENT]}), "Id must be a string"),
    ("unknown statement field", doc(Principle="*"), "Unknown field Principle"),
    ("missing Effect", doc(Effect=None), "Missing required field Effect"),
    ("lower-case Effect", doc(Effect="allow"), "Invalid effect: allow"),
    ("missing Principal", doc(Principal=None), "Missing required field Principal"),
    ("Principal and NotPrincipal", doc(NotPrincipal="*"), "both Principal and NotPrincipal"),
    ("missing Action", doc(Action=None), "Missing required field Action"),
    ("Action and NotAction", doc(NotAction="s3:PutObject"), "both Action and NotAction"),
    ("missing Resource", doc(Resource=None), "Missing required field Resource"),
    ("Resource and NotResource", doc(NotResource=OBJ), "both Resource and NotResource"),
    ("Sid not a string", doc(Sid=5), "Sid must be a string"),
    (
        "duplicate Sid",
        bucket_doc(GOOD_STATEMENT, GOOD_STATEMENT),
        "Statement IDs (SID) in a single policy must be unique",
    ),
    ("unknown action", doc(Action="s3:GetObjekt"), "Policy has invalid action"),
    ("cwobject action", doc(Action="cwobject:CreateAccessKey"), "Policy has invalid action"),
    ("empty action list", doc(Action=[]), "Policy has invalid action"),
    ("wildcard matching nothing", doc(Action="s3:Zzz*"), "Policy has invalid action"),
    ("another bucket", doc(Resource="arn:aws:s3:::other-bucket/*"), "Policy has invalid resource"),
    ("bucket-name prefix", doc(Resource="arn:aws:s3:::my-bucket-2/*"), "Policy has invalid resource"),
    ("wildcard bucket", doc(Resource="arn:aws:s3:::my-*/*"), "Policy has invalid resource"),
    ("star resource", doc(Resource="*"), "Policy has invalid resource"),
    ("short-form resource", doc(Resource=f"{B}/*"), "Policy has invalid resource"),
    ("empty key", doc(Resource=f"arn:aws:s3:::{B}/"), "Policy has invalid resource"),
    ("non-S3 ARN", doc(Resource=f"arn:aws:iam::org1:{B}"), "Policy has invalid resource"),
    (
        "object action on the bucket only",
        doc(Resource=f"arn:aws:s3:::{B}"),
        "Action does not apply to any resource(s) in statement",
    ),
    (
        "bucket action on objects only",
        doc(Action="s3:ListBucket"),
        "Action does not apply to any resource(s) in statement",
    ),
    ("account action", doc(Action="s3:ListAllMyBuckets"), "Action does not apply to any resource(s)"),
    ("bad principal key", doc(Principal={"Service": "s3.amazonaws.com"}), "Invalid principal in policy"),
    ("empty principal object", doc(Principal={}), "Invalid principal in policy"),
    ("principal list empty", doc(Principal={"AWS": []}), "Invalid principal in policy"),
    ("principal wildcard part", doc(Principal={"CW": "coreweave/*"}), "Invalid principal in policy"),
    ("principal junk", doc(Principal={"CW": "alice"}), "Invalid principal in policy"),
    ("principal bad ARN", doc(Principal={"AWS": "arn:aws:s3:::x"}), "Invalid principal in policy"),
    ("principal group", doc(Principal={"CW": "group/admins"}), "Invalid principal in policy"),
    ("principal string not star", doc(Principal="coreweave/alice"), "Invalid principal in policy"),
    ("unknown operator", doc(Condition={"StringEqualz": {"s3:prefix": "a"}}), "Unknown condition operator"),
    ("NullIfExists", doc(Condition={"NullIfExists": {"s3:prefix": "true"}}), "Unknown condition operator"),
    ("bad condition key", doc(Condition={"StringEquals": {"prefix": "a"}}), "invalid condition key"),
    ("condition not an object", doc(Condition=["x"]), "Condition must be an object"),
    ("operator body not an object", doc(Condition={"StringEquals": "a"}), "must map condition keys"),
    ("empty value list", doc(Condition={"StringEquals": {"s3:prefix": []}}), "has no values"),
    ("object value", doc(Condition={"StringEquals": {"s3:prefix": {"a": 1}}}), "not a string"),
    ("bad number", doc(Condition={"NumericLessThan": {"s3:max-keys": "ten"}}), "needs a number"),
    ("bad date", doc(Condition={"DateGreaterThan": {"aws:CurrentTime": "soon"}}), "ISO 8601"),
    ("bad CIDR", doc(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}), "Invalid IP address"),
    ("bad bool", doc(Condition={"Bool": {"aws:SecureTransport": "yes"}}), "'true' or 'false'"),
    ("bad null", doc(Condition={"Null": {"s3:prefix": "maybe"}}), "'true' or 'false'"),
    ("bad ARN pattern", doc(Condition={"ArnLike": {"aws:PrincipalArn": "coreweave/*"}}), "Invalid ARN"),
]


@pytest.mark.parametrize(("text", "fragment"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_bucket_policies(text: str | bytes, fragment: str) -> None:
    with pytest.raises(MalformedPolicy) as info:
        parse_bucket_policy(text, B)
    err = from_policy(info.value)  # what PutBucketPolicy answers
    assert err.code == "MalformedPolicy"
    assert err.status == 400
    assert fragment in err.message


VALID: list[tuple[str, str]] = [
    ("as documented", doc()),
    ("single statement object", json.dumps({"Version": "2012-10-17", "Statement": GOOD_STATEMENT})),
    ("old version", json.dumps({"Version": "2008-10-17", "Statement": [GOOD_STATEMENT]})),
    ("no version", json.dumps({"Statement": [GOOD_STATEMENT]})),
    ("leading whitespace", "  \n" + doc()),
    ("principal star string", doc(Principal="*")),
    ("CW star list", doc(Principal={"CW": ["*"]})),
    ("CW user ARN", doc(Principal={"AWS": "arn:aws:iam::123456789012:coreweave/JeanDoe"})),
    ("org root", doc(Principal={"AWS": "arn:aws:iam::org2:root"})),
    ("audit-log writer", doc(Principal={"CW": ["arn:aws:iam::coreweave:static/audit-logs"]})),
    ("short forms", doc(Principal={"CW": ["coreweave/u1", "role/Admin", "saml/x"]})),
    ("no Sid", doc(Sid=None)),
    ("both resource kinds", doc(Action="s3:*", Resource=[f"arn:aws:s3:::{B}", OBJ])),
    ("bucket resource", doc(Action="s3:ListBucket", Resource=f"arn:aws:s3:::{B}")),
    ("lifecycle", doc(Action="s3:PutLifecycleConfiguration", Resource=f"arn:aws:s3:::{B}")),
    ("NotAction skips the applicability check", doc(Action=None, NotAction="s3:ListBucket")),
    ("NotResource", doc(Resource=None, NotResource=f"arn:aws:s3:::{B}/public/*")),
    ("numeric values", doc(Condition={"NumericLessThanEquals": {"s3:max-keys": 100}})),
    ("bool value", doc(Condition={"Bool": {"aws:SecureTransport": False}})),
    ("IPv6 CIDR", doc(Condition={"IpAddress": {"aws:SourceIp": ["2001:db8::/32", "10.0.0.1"]}})),
    ("set qualifier", doc(Condition={"ForAllValues:StringLike": {"iam:org1:groups": ["data-*"]}})),
    ("epoch date", doc(Condition={"DateLessThan": {"aws:EpochTime": "1767225600"}})),
    ("unknown key accepted", doc(Condition={"StringEquals": {"aws:Referer": "x"}})),
]


@pytest.mark.parametrize("text", [c[1] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_bucket_policies(text: str) -> None:
    policy = parse_bucket_policy(text, B)
    assert policy.bucket == B
    assert policy.text == text
    assert len(policy.statements) == 1
    assert len(policy.compile().statements) == 1


def test_version_defaults_to_2008() -> None:
    assert parse_bucket_policy(json.dumps({"Statement": [GOOD_STATEMENT]}), B).version == "2008-10-17"


def test_size_limit_is_inclusive_of_20kb() -> None:
    base = json.dumps({"Id": "", "Statement": [GOOD_STATEMENT]})
    padded = base.replace('"Id": ""', '"Id": "' + "x" * (MAX_POLICY_BYTES - len(base)) + '"')
    assert len(padded.encode()) == MAX_POLICY_BYTES
    assert parse_bucket_policy(padded, B).id
    with pytest.raises(MalformedPolicy):
        parse_bucket_policy(padded.replace('"Id": "', '"Id": "x'), B)


def test_bytes_input() -> None:
    assert parse_bucket_policy(doc().encode(), B).statements[0].sid == "read"
