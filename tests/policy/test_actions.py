"""The action table: completeness, global marks, aliases and wildcard expansion."""

from __future__ import annotations

import pytest

from coffer.policy import actions
from coffer.policy.actions import (
    ACTIONS,
    ALIASES,
    RPC_ACTIONS,
    ActionError,
    Scope,
    canonical,
    expand,
    is_global,
)
from coffer.policy.patterns import GlobSet, glob_match

# Named in the brief, the reference (§2.4, §3.3, §6.4) or by Coffer's S3 router.
REQUIRED_S3 = """
GetObject PutObject ListBucket ListAllMyBuckets CreateBucket DeleteBucket GetBucketPolicy
PutBucketPolicy DeleteBucketPolicy GetBucketLocation ListBucketVersions ListBucketMultipartUploads
ListMultipartUploadParts AbortMultipartUpload DeleteObject DeleteObjectVersion GetObjectVersion
GetObjectTagging PutObjectTagging DeleteObjectTagging GetBucketTagging PutBucketTagging
GetBucketVersioning PutBucketVersioning GetBucketCORS PutBucketCORS GetLifecycleConfiguration
PutLifecycleConfiguration GetObjectAttributes GetObjectAcl PutObjectAcl GetBucketAcl PutBucketAcl
GetInventoryConfiguration PutInventoryConfiguration GetObjectVersionTagging PutObjectVersionTagging
DeleteObjectVersionTagging GetObjectVersionAttributes GetObjectVersionAcl PutObjectVersionAcl
RestoreObject GetObjectRetention PutObjectRetention GetObjectLegalHold PutObjectLegalHold
BypassGovernanceRetention GetBucketPolicyStatus GetBucketPublicAccessBlock
PutBucketPublicAccessBlock GetEncryptionConfiguration PutEncryptionConfiguration
GetBucketOwnershipControls PutBucketOwnershipControls GetBucketObjectLockConfiguration
PutBucketObjectLockConfiguration GetReplicationConfiguration PutReplicationConfiguration
GetBucketLogging PutBucketLogging GetBucketNotification PutBucketNotification GetBucketWebsite
PutBucketWebsite DeleteBucketWebsite GetBucketRequestPayment PutBucketRequestPayment
GetAccelerateConfiguration PutAccelerateConfiguration GetAnalyticsConfiguration
PutAnalyticsConfiguration GetMetricsConfiguration PutMetricsConfiguration
GetIntelligentTieringConfiguration PutIntelligentTieringConfiguration GetObjectTorrent RenameObject
GetBucketAbac PutBucketAbac CreateBucketMetadataTableConfiguration
GetBucketMetadataTableConfiguration DeleteBucketMetadataTableConfiguration
UpdateBucketMetadataInventoryTableConfiguration UpdateBucketMetadataJournalTableConfiguration
""".split()

REQUIRED_CWOBJECT = """
CreateAccessKey CreateAccessKeySAML CreateAccessKeyOIDC RevokeAccessKeyByAccessKey ListAccessKeyInfo
EnsureAccessPolicy DeleteAccessPolicy ListAccessPolicy ListBucketInfo GetAccessKeyInfo
RevokeAccessKeysByPrincipal UpdateAccessKeyStatus SetBucketSettings GetBucketInfo
SetOrganizationSettings
""".split()


@pytest.mark.parametrize("name", REQUIRED_S3)
def test_s3_action_is_known(name: str) -> None:
    assert canonical(f"s3:{name}") == f"s3:{name}"


@pytest.mark.parametrize("name", REQUIRED_CWOBJECT)
def test_cwobject_action_is_known_and_global(name: str) -> None:
    spec = actions.spec(f"cwobject:{name}")
    assert spec is not None and spec.scope is Scope.CONTROL and spec.is_global


def test_global_actions_are_exactly_those_of_the_reference() -> None:
    globals_ = {s.name for s in ACTIONS.values() if s.is_global}
    assert {n for n in globals_ if n.startswith("s3:")} == {"s3:ListAllMyBuckets", "s3:PutBucketPolicy"}
    assert {n for n in globals_ if n.startswith("cwobject:")} == set(actions.names("cwobject"))
    assert is_global("S3:listallmybuckets")
    assert not is_global("s3:GetObject")
    assert not is_global("s3:NoSuchThing")


def test_names_match_case_insensitively() -> None:
    assert canonical("S3:GETOBJECT") == "s3:GetObject"
    assert canonical("s3:DeleteBucketLifeCycle") == "s3:DeleteBucketLifecycle"
    assert canonical("s3:Nope") is None


def test_every_s3_action_has_a_scope_matching_its_name() -> None:
    for spec in ACTIONS.values():
        short = spec.name.split(":", 1)[1]
        if spec.service == "s3" and "Object" in short and "Bucket" not in short and "Lambda" not in short:
            assert spec.scope is Scope.OBJECT, spec.name


def test_aliases_resolve_to_canonical_actions() -> None:
    for alias, target in ALIASES.items():
        assert canonical(alias) == target
        assert expand(alias) == frozenset({target.lower()})


def test_every_rpc_maps_to_a_known_action() -> None:
    # No permission: can-i answers about its caller; the federated exchanges are anonymous.
    unchecked = {rpc for rpc, action in RPC_ACTIONS.items() if action is None}
    assert unchecked == {
        "AuthCanI",
        "CheckBucketPolicyLockout",
        "CreateAccessKeyFromSAML",
        "CreateAccessKeyFromOIDC",
        "CreateAccessKeyFromContainerCreds",
    }
    for rpc, action in RPC_ACTIONS.items():
        if action is not None:
            assert canonical(action) == action, rpc


EXPANSIONS = [
    ("s3:GetObject", {"s3:getobject"}),
    ("s3:getobject", {"s3:getobject"}),
    (
        "s3:GetObjectVersion*",
        {
            "s3:getobjectversion" + s
            for s in ("", "acl", "attributes", "forreplication", "tagging", "torrent")
        },
    ),
    ("s3:?utObject", {"s3:putobject"}),
    (
        "cwobject:CreateAccessKey*",
        {"cwobject:createaccesskey", "cwobject:createaccesskeysaml", "cwobject:createaccesskeyoidc"},
    ),
]


@pytest.mark.parametrize(("pattern", "expected"), EXPANSIONS)
def test_expansion(pattern: str, expected: set[str]) -> None:
    assert expand(pattern) == expected


def test_star_expansions() -> None:
    everything = expand("*")
    assert len(everything) == len(ACTIONS)
    assert expand("s3:*") | expand("cwobject:*") == everything
    assert expand("*", ("s3",)) == expand("s3:*")
    assert all(key.startswith("s3:") for key in expand("S3:*"))


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("GetObject", "form"),
        ("s3:", "form"),
        ("s3:Get Object", "form"),
        ("iam:GetUser", "unknown service"),
        ("s3:GetObjekt", "not a known action"),
        ("s3:Xyz*", "matches no known action"),
        ("*:GetObject", "unknown service"),
    ],
)
def test_refused_patterns(pattern: str, message: str) -> None:
    with pytest.raises(ActionError, match=message):
        expand(pattern)


def test_bucket_policies_refuse_cwobject() -> None:
    with pytest.raises(ActionError, match="unknown service"):
        expand("cwobject:*", ("s3",))


# --- wildcard patterns ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("a*", "a/b/c", True),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("a.c", "abc", False),
        ("a[b]c", "a[b]c", True),
        ("a[b]c", "abc", False),
        ("a**b", "ab", True),
        ("*", "", True),
        ("x*", "x\ny", True),
        ("(a|b)", "a", False),
    ],
)
def test_glob_semantics(pattern: str, value: str, matches: bool) -> None:
    assert glob_match(pattern, value) is matches
    assert GlobSet([pattern]).matches(value) is matches


def test_globset_mixes_literals_and_wildcards() -> None:
    patterns = GlobSet(["b1", "b1/pre*", "b2/?"])
    assert patterns.matches("b1")
    assert patterns.matches("b1/prefix")
    assert patterns.matches("b2/x")
    assert not patterns.matches("b2/xy")
    assert not patterns.matches("b3")
    assert GlobSet(["*", "x"]).matches("anything")
