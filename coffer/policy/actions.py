"""The one table of policy actions: every `s3:` and `cwobject:` action Coffer knows.

Both policy languages validate action names against this table and expand wildcards
over it, and the engine asks it which actions are *global* (decided by organization
policies alone, CoreWeave reference §3.4). Keeping a single table means a policy
that names an action, the router that requires it and the engine that decides it can
never disagree about spelling or scope.

Action names match case-insensitively, as in AWS IAM (`s3:getobject` is `s3:GetObject`);
`canonical()` returns the spelling below.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from coffer.policy.patterns import compile_glob, has_wildcard


class Scope(enum.Enum):
    """What kind of resource an action applies to (AWS "resource types")."""

    OBJECT = "object"  # resource `bucket/key`
    BUCKET = "bucket"  # resource `bucket`
    ACCOUNT = "account"  # resource `*`: service-level, or an AWS resource Coffer does not have
    CONTROL = "control"  # a control-plane (`cwobject:`) action; resource `*`


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One action: its canonical name, resource scope and whether it is global."""

    name: str  # canonical spelling, e.g. "s3:GetObject"
    scope: Scope
    is_global: bool
    note: str = ""

    @property
    def service(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def key(self) -> str:
        """The case-folded lookup key."""
        return self.name.lower()


S3_SERVICE = "s3"
CONTROL_SERVICE = "cwobject"
SERVICES = (S3_SERVICE, CONTROL_SERVICE)

# --- s3: ---------------------------------------------------------------------------------
# AWS Service Authorization Reference, "Actions defined by Amazon S3", plus the few names
# CoreWeave or Coffer's router use. Grouped by the resource each applies to.

_S3_OBJECT = """
AbortMultipartUpload BypassGovernanceRetention DeleteObject DeleteObjectTagging
DeleteObjectVersion DeleteObjectVersionTagging GetObject GetObjectAcl GetObjectAttributes
GetObjectLegalHold GetObjectRetention GetObjectTagging GetObjectTorrent GetObjectVersion
GetObjectVersionAcl GetObjectVersionAttributes GetObjectVersionForReplication
GetObjectVersionTagging GetObjectVersionTorrent InitiateReplication ListMultipartUploadParts
ObjectOwnerOverrideToBucketOwner PutObject PutObjectAcl PutObjectLegalHold PutObjectRetention
PutObjectTagging PutObjectVersionAcl PutObjectVersionTagging RenameObject ReplicateDelete
ReplicateObject ReplicateTags RestoreObject
"""

_S3_BUCKET = """
CreateBucket CreateBucketMetadataTableConfiguration DeleteBucket
DeleteBucketMetadataTableConfiguration DeleteBucketPolicy DeleteBucketWebsite
GetAccelerateConfiguration GetAnalyticsConfiguration GetBucketAbac GetBucketAcl GetBucketCORS
GetBucketLocation GetBucketLogging GetBucketMetadataTableConfiguration GetBucketNotification
GetBucketObjectLockConfiguration GetBucketOwnershipControls GetBucketPolicy
GetBucketPolicyStatus GetBucketPublicAccessBlock GetBucketRequestPayment GetBucketTagging
GetBucketVersioning GetBucketWebsite GetEncryptionConfiguration
GetIntelligentTieringConfiguration GetInventoryConfiguration GetLifecycleConfiguration
GetMetricsConfiguration GetReplicationConfiguration ListBucket ListBucketMultipartUploads
ListBucketVersions PutAccelerateConfiguration PutAnalyticsConfiguration PutBucketAbac
PutBucketAcl PutBucketCORS PutBucketLogging PutBucketNotification
PutBucketObjectLockConfiguration PutBucketOwnershipControls PutBucketPolicy
PutBucketPublicAccessBlock PutBucketRequestPayment PutBucketTagging PutBucketVersioning
PutBucketWebsite PutEncryptionConfiguration PutIntelligentTieringConfiguration
PutInventoryConfiguration PutLifecycleConfiguration PutMetricsConfiguration
PutReplicationConfiguration UpdateBucketMetadataInventoryTableConfiguration
UpdateBucketMetadataJournalTableConfiguration
"""

# Service-level actions, and actions on AWS resources Coffer does not model (access
# points, batch jobs, Storage Lens, access grants, multi-region access points, ...).
# They are valid in policies so AWS-authored documents parse, but nothing requires them.
_S3_ACCOUNT = """
AssociateAccessGrantsIdentityCenter CreateAccessGrant CreateAccessGrantsInstance
CreateAccessGrantsLocation CreateAccessPoint CreateAccessPointForObjectLambda CreateJob
CreateMultiRegionAccessPoint CreateStorageLensGroup DeleteAccessGrant DeleteAccessGrantsInstance
DeleteAccessGrantsInstanceResourcePolicy DeleteAccessGrantsLocation DeleteAccessPoint
DeleteAccessPointForObjectLambda DeleteAccessPointPolicy DeleteAccessPointPolicyForObjectLambda
DeleteJobTagging DeleteMultiRegionAccessPoint DeleteStorageLensConfiguration
DeleteStorageLensConfigurationTagging DeleteStorageLensGroup DescribeJob
DescribeMultiRegionAccessPointOperation DissociateAccessGrantsIdentityCenter GetAccessGrant
GetAccessGrantsInstance GetAccessGrantsInstanceForPrefix GetAccessGrantsInstanceResourcePolicy
GetAccessGrantsLocation GetAccessPoint GetAccessPointConfigurationForObjectLambda
GetAccessPointForObjectLambda GetAccessPointPolicy GetAccessPointPolicyForObjectLambda
GetAccessPointPolicyStatus GetAccessPointPolicyStatusForObjectLambda
GetAccountPublicAccessBlock GetDataAccess GetJobTagging GetMultiRegionAccessPoint
GetMultiRegionAccessPointPolicy GetMultiRegionAccessPointPolicyStatus
GetMultiRegionAccessPointRoutes GetStorageLensConfiguration GetStorageLensConfigurationTagging
GetStorageLensDashboard GetStorageLensGroup ListAccessGrants ListAccessGrantsInstances
ListAccessGrantsLocations ListAccessPoints ListAccessPointsForObjectLambda ListCallerAccessGrants
ListJobs ListMultiRegionAccessPoints ListStorageLensConfigurations ListStorageLensGroups
ListTagsForResource PauseReplication PutAccessGrantsInstanceResourcePolicy
PutAccessPointConfigurationForObjectLambda PutAccessPointPolicy
PutAccessPointPolicyForObjectLambda PutAccessPointPublicAccessBlock PutAccountPublicAccessBlock
PutJobTagging PutMultiRegionAccessPointPolicy PutStorageLensConfiguration
PutStorageLensConfigurationTagging SubmitMultiRegionAccessPointRoutes TagResource UntagResource
UpdateAccessGrantsLocation UpdateJobPriority UpdateJobStatus UpdateStorageLensGroup
"""

# Global per the reference §3.4: decided by organization policies alone.
_S3_GLOBAL = frozenset({"ListAllMyBuckets", "PutBucketPolicy"})

_S3_NOTES: Mapping[str, str] = {
    "ListAllMyBuckets": "global (§3.4): ListBuckets; resource `*`",
    "PutBucketPolicy": "global (§3.4): org policies only, resource is the bucket, prevents lock-out",
    "DeleteBucketLifecycle": (
        "CoreWeave names it (`s3:DeleteBucketLifeCycle`); AWS uses PutLifecycleConfiguration"
    ),
}

# --- cwobject: ----------------------------------------------------------------------------
# The permission names of reference §2.4, plus `cwobject:<Method>` for every other RPC of
# §2.2. Every one is global (resource `*`).
_CONTROL = """
CreateAccessKey CreateAccessKeySAML CreateAccessKeyOIDC ListAccessKeyInfo GetAccessKeyInfo
UpdateAccessKeyStatus RevokeAccessKeyByAccessKey RevokeAccessKeysByPrincipal ListAccessPolicy
EnsureAccessPolicy DeleteAccessPolicy SetBucketSettings ListBucketInfo GetBucketInfo
SetOrganizationSettings GetOrganizationSettings
ListSAMLConfigs CreateSAMLConfig GetSAMLConfig UpdateSAMLConfig DeleteSAMLConfig
ListOIDCConfigs CreateOIDCConfig GetOIDCConfig UpdateOIDCConfig DeleteOIDCConfig
"""

_CONTROL_NOTES: Mapping[str, str] = {
    "CreateAccessKeyOIDC": "Coffer's name for the OIDC and container-credential exchanges",
    "CreateAccessKeySAML": "a valid name; the anonymous SAML exchange itself checks no permission",
    "GetOrganizationSettings": "Coffer extension (reference §2.2 suggests the GET endpoint)",
    "ListAccessPolicy": "singular, as CoreWeave spells it; the RPC is ListAccessPolicies",
    **{
        f"{verb}{kind}Config{'s' if verb == 'List' else ''}": (
            "Coffer extension: workload-federation configuration (CoreWeave keeps it in IAM)"
        )
        for verb in ("List", "Create", "Get", "Update", "Delete")
        for kind in ("SAML", "OIDC")
    },
}

# Accepted in policies as another spelling of a canonical action: the RPC method names
# whose documented permission has a different name (reference §2.2 vs §2.4).
ALIASES: Mapping[str, str] = {
    "cwobject:CreateAccessKeyFromJWT": "cwobject:CreateAccessKey",
    "cwobject:CreateAccessKeyFromApiToken": "cwobject:CreateAccessKey",
    "cwobject:CreateAccessKeyFromSAML": "cwobject:CreateAccessKeySAML",
    "cwobject:CreateAccessKeyFromOIDC": "cwobject:CreateAccessKeyOIDC",
    "cwobject:CreateAccessKeyFromContainerCreds": "cwobject:CreateAccessKeyOIDC",
    "cwobject:ListAccessPolicies": "cwobject:ListAccessPolicy",
}

# Which action each control-plane RPC requires (None: no permission: AuthCanI's caller asks
# only about itself, as does CheckBucketPolicyLockout's; the federation exchanges are anonymous).
RPC_ACTIONS: Mapping[str, str | None] = {
    "AuthCanI": None,
    "CheckBucketPolicyLockout": None,  # Coffer extension (docs/policies.md, "The lock-out trap")
    "CreateAccessKeyFromJWT": "cwobject:CreateAccessKey",
    "CreateAccessKeyFromApiToken": "cwobject:CreateAccessKey",
    # Anonymous: the IdP-signed credential and the org's federation config are the authority.
    "CreateAccessKeyFromSAML": None,
    "CreateAccessKeyFromOIDC": None,
    "CreateAccessKeyFromContainerCreds": None,
    "ListAccessKeyInfo": "cwobject:ListAccessKeyInfo",
    "GetAccessKeyInfo": "cwobject:GetAccessKeyInfo",
    "UpdateAccessKeyStatus": "cwobject:UpdateAccessKeyStatus",
    "RevokeAccessKeyByAccessKey": "cwobject:RevokeAccessKeyByAccessKey",
    "RevokeAccessKeysByPrincipal": "cwobject:RevokeAccessKeysByPrincipal",
    # Coffer extension: a mint for the key's owner (the handler also asks for the revocation).
    "RotateAccessKey": "cwobject:CreateAccessKey",
    "ListAccessPolicies": "cwobject:ListAccessPolicy",
    "EnsureAccessPolicy": "cwobject:EnsureAccessPolicy",
    "DeleteAccessPolicy": "cwobject:DeleteAccessPolicy",
    "SetBucketSettings": "cwobject:SetBucketSettings",
    "ListBucketInfo": "cwobject:ListBucketInfo",
    "GetBucketInfo": "cwobject:GetBucketInfo",
    "SetOrganizationSettings": "cwobject:SetOrganizationSettings",
    "GetOrganizationSettings": "cwobject:GetOrganizationSettings",
    **{
        f"{verb}{kind}Config{'s' if verb == 'List' else ''}": (
            f"cwobject:{verb}{kind}Config{'s' if verb == 'List' else ''}"
        )
        for verb in ("List", "Create", "Get", "Update", "Delete")
        for kind in ("SAML", "OIDC")
    },
}


def _build() -> dict[str, ActionSpec]:
    table: dict[str, ActionSpec] = {}

    def add(name: str, scope: Scope, is_global: bool, note: str) -> None:
        spec = ActionSpec(name, scope, is_global, note)
        assert spec.key not in table, f"duplicate action {name}"
        table[spec.key] = spec

    for block, scope in (
        (_S3_OBJECT, Scope.OBJECT),
        (_S3_BUCKET, Scope.BUCKET),
        (_S3_ACCOUNT, Scope.ACCOUNT),
    ):
        for short in block.split():
            add(f"s3:{short}", scope, short in _S3_GLOBAL, _S3_NOTES.get(short, ""))
    add("s3:ListAllMyBuckets", Scope.ACCOUNT, True, _S3_NOTES["ListAllMyBuckets"])
    add("s3:DeleteBucketLifecycle", Scope.BUCKET, False, _S3_NOTES["DeleteBucketLifecycle"])
    for short in _CONTROL.split():
        add(f"cwobject:{short}", Scope.CONTROL, True, _CONTROL_NOTES.get(short, ""))
    return table


ACTIONS: Mapping[str, ActionSpec] = _build()
_ALIAS_KEYS: Mapping[str, str] = {alias.lower(): target.lower() for alias, target in ALIASES.items()}
# Every spelling a pattern may match: canonical names and aliases, case-folded.
_SPELLINGS: tuple[str, ...] = tuple(ACTIONS) + tuple(_ALIAS_KEYS)

_ACTION_SYNTAX = re.compile(r"[A-Za-z0-9*?-]+")


def spec(action: str) -> ActionSpec | None:
    """The table entry for an action name or alias, any case; None if unknown."""
    key = action.lower()
    found = ACTIONS.get(key)
    if found is None and key in _ALIAS_KEYS:
        found = ACTIONS[_ALIAS_KEYS[key]]
    return found


def canonical(action: str) -> str | None:
    """The canonical spelling of an action or alias; None if unknown."""
    found = spec(action)
    return found.name if found else None


def is_global(action: str) -> bool:
    """True for actions decided by organization policies alone (§3.4)."""
    found = spec(action)
    return bool(found and found.is_global)


class ActionError(ValueError):
    """An action entry a policy may not use; the message says why."""


@lru_cache(maxsize=2048)
def expand(pattern: str, services: tuple[str, ...] = SERVICES) -> frozenset[str]:
    """The canonical keys (lower case) of every action a policy entry names.

    `*` alone means every action of `services`; otherwise the entry is `service:name`
    with `*`/`?` wildcards allowed in the name. Aliases expand to their target. Raises
    ActionError for malformed entries, unknown services or names, and wildcards that
    match no known action (almost always a typo, e.g. `s3:Gte*`).
    """
    if pattern == "*":
        return frozenset(key for key, s in ACTIONS.items() if s.service in services)
    service, sep, name = pattern.partition(":")
    if not sep or not name or not _ACTION_SYNTAX.fullmatch(name):
        raise ActionError(f"action {pattern!r} is not of the form 'service:Action' or '*'")
    service = service.lower()
    if service not in services:
        allowed = ", ".join(f"'{s}:'" for s in services)
        raise ActionError(f"action {pattern!r} has an unknown service; expected {allowed} or '*'")
    key = f"{service}:{name.lower()}"
    if not has_wildcard(name):
        found = spec(key)
        if found is None:
            raise ActionError(f"action {pattern!r} is not a known action")
        return frozenset({found.key})
    matches = compile_glob(key)
    keys = {_ALIAS_KEYS.get(s, s) for s in _SPELLINGS if matches(s)}
    if not keys:
        raise ActionError(f"action pattern {pattern!r} matches no known action")
    return frozenset(keys)


def names(service: str | None = None) -> list[str]:
    """Canonical action names, optionally of one service, sorted (for docs and tests)."""
    return sorted(s.name for s in ACTIONS.values() if service is None or s.service == service)
