"""Access control lists, Object Ownership and Block Public Access, as pure values.

AWS lets a bucket turn ACLs on (Object Ownership `ObjectWriter` or `BucketOwnerPreferred`);
then a bucket and each object carry an ACL: an owner and up to 100 grants of a permission
(READ, WRITE, READ_ACP, WRITE_ACP, FULL_CONTROL) to a grantee. This module holds what
that means, without I/O: the ACL as a value (`Acl`, stored as JSON), the canned ACLs, who
owns a new object, which actions each permission stands for (AWS's "mapping of ACL
permissions and access policy permissions"), the grant step of the decision (`AclCheck`,
consulted by `engine.evaluate` where the bucket policy is, never over a Deny), and a
bucket's Block Public Access configuration.

Canonical IDs. AWS names grantees by an account's canonical ID; Coffer names them by
principal, the same way bucket policies do: a principal of the bucket's organization by
its name (`coreweave/<UID>`, `role/<name>`, `saml/<name>`: what every Owner element
already shows), a principal of another organization by `arn:aws:iam::<ORG-ID>:<name>`, and
every principal of an organization by `arn:aws:iam::<ORG-ID>:root`. IDs are relative to the
bucket: its organization never changes, so a stored ID keeps its meaning.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from coffer.limits import MAX_ACL_GRANTS
from coffer.policy.principals import Identity, PrincipalError, check_short_form, parse_bucket_principal

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
GROUPS = frozenset({ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY})
PUBLIC_GROUPS = frozenset({ALL_USERS, AUTHENTICATED_USERS})
ANONYMOUS_OWNER = "anonymous"  # the owner of an object an anonymous caller wrote; matches no one


class Ownership(enum.StrEnum):
    """A bucket's Object Ownership rule."""

    BUCKET_OWNER_ENFORCED = "BucketOwnerEnforced"
    BUCKET_OWNER_PREFERRED = "BucketOwnerPreferred"
    OBJECT_WRITER = "ObjectWriter"


class Permission(enum.StrEnum):
    READ = "READ"
    WRITE = "WRITE"
    READ_ACP = "READ_ACP"
    WRITE_ACP = "WRITE_ACP"
    FULL_CONTROL = "FULL_CONTROL"


class Level(enum.Enum):
    """Which ACL a permission is read from: the bucket's or the object's."""

    BUCKET = "bucket"
    OBJECT = "object"


# AWS's mapping of ACL permissions to policy actions (case-folded action keys). Coffer adds
# s3:AbortMultipartUpload and s3:ListMultipartUploadParts to bucket WRITE: AWS lets an
# upload's initiator do both, and a WRITE grantee is who initiates uploads here.
_BUCKET_ACTIONS: Mapping[Permission, frozenset[str]] = {
    Permission.READ: frozenset({"s3:listbucket", "s3:listbucketversions", "s3:listbucketmultipartuploads"}),
    Permission.WRITE: frozenset(
        {
            "s3:putobject",
            "s3:deleteobject",
            "s3:deleteobjectversion",
            "s3:abortmultipartupload",
            "s3:listmultipartuploadparts",
        }
    ),
    Permission.READ_ACP: frozenset({"s3:getbucketacl"}),
    Permission.WRITE_ACP: frozenset({"s3:putbucketacl"}),
}
_OBJECT_ACTIONS: Mapping[Permission, frozenset[str]] = {
    Permission.READ: frozenset({"s3:getobject", "s3:getobjectversion"}),
    Permission.READ_ACP: frozenset({"s3:getobjectacl", "s3:getobjectversionacl"}),
    Permission.WRITE_ACP: frozenset({"s3:putobjectacl", "s3:putobjectversionacl"}),
}


def actions_of(permission: Permission, level: Level) -> frozenset[str]:
    """The policy actions (case-folded) a permission on a bucket or an object grants."""
    table = _BUCKET_ACTIONS if level is Level.BUCKET else _OBJECT_ACTIONS
    if permission is Permission.FULL_CONTROL:
        return frozenset().union(*table.values())
    return table.get(permission, frozenset())


def _needs() -> dict[str, tuple[Level, frozenset[Permission]]]:
    """action key -> (the ACL it is read from, the permissions that grant it)."""
    out: dict[str, tuple[Level, frozenset[Permission]]] = {}
    for level in Level:
        for permission in Permission:
            for action in actions_of(permission, level) if permission is not Permission.FULL_CONTROL else ():
                out[action] = (level, frozenset({permission, Permission.FULL_CONTROL}))
    return out


ACTION_PERMISSIONS: Mapping[str, tuple[Level, frozenset[Permission]]] = _needs()
# What the owner of a bucket or object may always do, whatever its ACL says (as in AWS).
OWNER_IMPLICIT = frozenset({Permission.READ_ACP, Permission.WRITE_ACP})


# --- canonical IDs ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Principal:
    """Who a canonical ID names: one principal of an organization, or all of it (name None)."""

    org_id: str
    name: str | None


def canonical_id(principal: str, org_id: str | None, bucket_org: str) -> str:
    """A principal's canonical ID as seen from a bucket of organization `bucket_org`."""
    if org_id is None or org_id == bucket_org:
        return principal
    return f"arn:aws:iam::{org_id}:{principal}"


@functools.lru_cache(maxsize=4096)
def parse_canonical_id(text: str, bucket_org: str) -> Principal:
    """Who a canonical ID names; PrincipalError if it is not one (the face answers
    InvalidArgument). `*`, groups and service principals are not canonical IDs."""
    if not text.startswith("arn:"):
        if text == "*":
            raise PrincipalError("'*' is not a canonical ID; grant the AllUsers group instead")
        return Principal(bucket_org, check_short_form(text))
    parsed = parse_bucket_principal(text)
    if parsed.whole_org and parsed.org_id:
        return Principal(parsed.org_id, None)
    if parsed.platform or parsed.everyone or parsed.name is None or parsed.org_id is None:
        raise PrincipalError(f"{text!r} does not name a principal or an organization")
    return Principal(parsed.org_id, parsed.name)


def normalize_canonical_id(text: str, bucket_org: str) -> str:
    """The one spelling of a canonical ID (an ARN naming the bucket's own organization
    becomes the bare principal); PrincipalError if it is not one."""
    principal = parse_canonical_id(text, bucket_org)
    if principal.name is None:
        return f"arn:aws:iam::{principal.org_id}:root"
    return canonical_id(principal.name, principal.org_id, bucket_org)


def _names(principal: Principal, who: Identity) -> bool:
    if who.anonymous or who.org_id != principal.org_id:
        return False
    return principal.name is None or principal.name in who.names


def _is(text: str, bucket_org: str, who: Identity) -> bool:
    """Does canonical ID `text` name the caller? An ID that no longer parses names no one."""
    try:
        return _names(parse_canonical_id(text, bucket_org), who)
    except PrincipalError:
        return False


# --- the ACL -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Grant:
    """One grant: to a canonical ID (`id`) or a group (`uri`); exactly one is set."""

    permission: Permission
    id: str | None = None
    uri: str | None = None

    @property
    def public(self) -> bool:
        return self.uri in PUBLIC_GROUPS

    def grantee(self) -> str:
        return f"group {self.uri}" if self.uri else f"{self.id}"

    def names(self, who: Identity, bucket_org: str, *, ignore_public: bool) -> bool:
        if self.uri is not None:
            if ignore_public and self.public:
                return False
            if self.uri == ALL_USERS:
                return True
            return self.uri == AUTHENTICATED_USERS and not who.anonymous
        return self.id is not None and _is(self.id, bucket_org, who)

    def to_json(self) -> dict[str, str]:
        who = {"uri": self.uri} if self.uri is not None else {"id": self.id or ""}
        return {**who, "permission": self.permission.value}


@dataclass(frozen=True, slots=True)
class Acl:
    """An owner (canonical ID) and its grants, in the order given (duplicates dropped)."""

    owner: str
    grants: tuple[Grant, ...]

    @property
    def public(self) -> bool:
        """Grants something to AllUsers or AuthenticatedUsers (AWS's "public" ACL)."""
        return any(g.public for g in self.grants)

    def only_owner(self) -> bool:
        """Grants nothing to anyone but its owner (what BucketOwnerEnforced requires)."""
        return all(g.id == self.owner for g in self.grants)

    def grant_for(
        self, permissions: frozenset[Permission], who: Identity, bucket_org: str, *, ignore_public: bool
    ) -> str | None:
        """Which grant (or the owner's implicit right) gives the caller one of `permissions`;
        None when nothing does."""
        if not permissions.isdisjoint(OWNER_IMPLICIT) and _is(self.owner, bucket_org, who):
            return f"its owner {self.owner}"
        for grant in self.grants:
            if grant.permission in permissions and grant.names(who, bucket_org, ignore_public=ignore_public):
                return f"its grant of {grant.permission.value} to {grant.grantee()}"
        return None

    def to_json(self) -> dict[str, Any]:
        return {"owner": self.owner, "grants": [g.to_json() for g in self.grants]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Acl:
        grants = []
        for raw in data.get("grants") or ():
            try:
                permission = Permission(raw.get("permission"))
            except ValueError:
                continue  # never written by Coffer; a damaged entry grants nothing
            grants.append(Grant(permission, id=raw.get("id"), uri=raw.get("uri")))
        return cls(owner=str(data.get("owner") or ANONYMOUS_OWNER), grants=tuple(grants))


def make_acl(owner: str, grants: Iterable[Grant]) -> Acl:
    """An ACL of `grants` (repeats dropped); ValueError past MAX_ACL_GRANTS."""
    unique = tuple(dict.fromkeys(grants))
    if len(unique) > MAX_ACL_GRANTS:
        raise ValueError(f"an ACL may hold at most {MAX_ACL_GRANTS} grants, this one has {len(unique)}")
    return Acl(owner, unique)


@functools.lru_cache(maxsize=4096)
def private(owner: str) -> Acl:
    """The ACL of a resource written without one: its owner's FULL_CONTROL (immutable, so
    one value per owner serves every request)."""
    return Acl(owner, (Grant(Permission.FULL_CONTROL, id=owner),))


# Canned ACLs (x-amz-acl): the group grants each adds beside the owner's FULL_CONTROL, and the
# bucket owner's grant the bucket-owner-* ones add (nothing when the owner is the bucket
# owner: on a bucket, as AWS ignores them there). aws-exec-read's grant to EC2 has no
# Coffer principal and adds nothing.
_CANNED_GROUPS: Mapping[str, tuple[tuple[Permission, str], ...]] = {
    "private": (),
    "public-read": ((Permission.READ, ALL_USERS),),
    "public-read-write": ((Permission.READ, ALL_USERS), (Permission.WRITE, ALL_USERS)),
    "authenticated-read": ((Permission.READ, AUTHENTICATED_USERS),),
    "aws-exec-read": (),
    "bucket-owner-read": (),
    "bucket-owner-full-control": (),
    "log-delivery-write": ((Permission.WRITE, LOG_DELIVERY), (Permission.READ_ACP, LOG_DELIVERY)),
}
_CANNED_BUCKET_OWNER = {
    "bucket-owner-read": Permission.READ,
    "bucket-owner-full-control": Permission.FULL_CONTROL,
}
CANNED_ACLS = frozenset(_CANNED_GROUPS)


def canned(name: str, owner: str, bucket_owner: str) -> Acl:
    """The ACL a canned name stands for; ValueError for an unknown name."""
    if name not in _CANNED_GROUPS:
        raise ValueError(f"unknown canned ACL {name!r}")
    extra = [Grant(permission, uri=uri) for permission, uri in _CANNED_GROUPS[name]]
    if name in _CANNED_BUCKET_OWNER and owner != bucket_owner:
        extra.append(Grant(_CANNED_BUCKET_OWNER[name], id=bucket_owner))
    return make_acl(owner, [*private(owner).grants, *extra])


def object_owner(ownership: Ownership | None, bucket_owner: str, writer: str, canned_acl: str | None) -> str:
    """Who owns an object written now (None: the bucket's ownership controls were deleted,
    which behaves as ObjectWriter). BucketOwnerEnforced: the bucket owner; BucketOwnerPreferred:
    the bucket owner when written with bucket-owner-full-control, else the writer; ObjectWriter:
    the writer."""
    if ownership is Ownership.BUCKET_OWNER_ENFORCED:
        return bucket_owner
    if ownership is Ownership.BUCKET_OWNER_PREFERRED:
        return bucket_owner if canned_acl == "bucket-owner-full-control" else writer
    assert ownership in (None, Ownership.OBJECT_WRITER)
    return writer


# --- Block Public Access -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PublicAccessBlock:
    """A bucket's PublicAccessBlockConfiguration."""

    block_public_acls: bool = False
    ignore_public_acls: bool = False
    block_public_policy: bool = False
    restrict_public_buckets: bool = False

    FIELDS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")

    def values(self) -> tuple[bool, bool, bool, bool]:
        return (
            self.block_public_acls,
            self.ignore_public_acls,
            self.block_public_policy,
            self.restrict_public_buckets,
        )

    def to_json(self) -> dict[str, bool]:
        return dict(zip(self.FIELDS, self.values(), strict=True))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PublicAccessBlock:
        return cls(*(bool(data.get(name)) for name in cls.FIELDS))


# New buckets (outside strict mode) block public ACLs and ignore them, as AWS's new buckets
# do; the policy half stays off: a bucket policy opens a bucket to "*" only where an
# organization policy names "*" too (docs/decisions/0130-acls-and-ownership.md).
DEFAULT_PUBLIC_ACCESS_BLOCK = PublicAccessBlock(True, True, False, False)

# Keys of a bucket's `settings` dictionary.
OWNERSHIP_KEY = "objectOwnership"
PUBLIC_ACCESS_BLOCK_KEY = "publicAccessBlock"
ACL_KEY = "acl"


@dataclass(frozen=True, slots=True)
class BucketAccess:
    """A bucket's ownership, ACL and Block Public Access, read from its settings.

    `ownership` None means the ownership controls were deleted (ACLs on, the writer owns
    what it writes); a bucket with no setting at all predates them and is
    BucketOwnerEnforced. In strict CoreWeave mode every bucket is BucketOwnerEnforced with
    no public access block."""

    ownership: Ownership | None
    acl: Acl
    public_access_block: PublicAccessBlock | None

    @property
    def acls_enabled(self) -> bool:
        return self.ownership is not Ownership.BUCKET_OWNER_ENFORCED

    @property
    def pab(self) -> PublicAccessBlock:
        return self.public_access_block or PublicAccessBlock()


_OWNERSHIPS: Mapping[Any, Ownership | None] = {o.value: o for o in Ownership} | {None: None}


def ownership_setting(settings: Mapping[str, Any]) -> Ownership | None:
    """Absent: BucketOwnerEnforced; None: deleted; a value never written by Coffer fails
    closed (ACLs off)."""
    raw = settings.get(OWNERSHIP_KEY, Ownership.BUCKET_OWNER_ENFORCED.value)
    if raw is not None and not isinstance(raw, str):
        return Ownership.BUCKET_OWNER_ENFORCED
    return _OWNERSHIPS.get(raw, Ownership.BUCKET_OWNER_ENFORCED)


def plain(settings: Mapping[str, Any]) -> bool:
    """Do a bucket's settings leave its decisions to policies alone (ACLs off, no
    RestrictPublicBuckets)? The common case, told without parsing anything."""
    if settings.get(OWNERSHIP_KEY, Ownership.BUCKET_OWNER_ENFORCED.value) != Ownership.BUCKET_OWNER_ENFORCED:
        return False
    pab = settings.get(PUBLIC_ACCESS_BLOCK_KEY)
    return not (isinstance(pab, Mapping) and pab.get("RestrictPublicBuckets"))


def bucket_access(settings: Mapping[str, Any], owner: str, *, strict: bool = False) -> BucketAccess:
    if strict:
        return BucketAccess(Ownership.BUCKET_OWNER_ENFORCED, private(owner), None)
    raw_acl = settings.get(ACL_KEY)
    acl = Acl.from_json(raw_acl) if isinstance(raw_acl, Mapping) else private(owner)
    raw_pab = settings.get(PUBLIC_ACCESS_BLOCK_KEY)
    pab = PublicAccessBlock.from_json(raw_pab) if isinstance(raw_pab, Mapping) else None
    return BucketAccess(ownership_setting(settings), acl, pab)


# --- the grant step of the decision --------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AclCheck:
    """What step 2 of the decision may consult beside the bucket policy: the bucket's ACL
    and, for object permissions, the object's (`object_acl` loads it when first needed;
    None when the object does not exist). Public grants are skipped with IgnorePublicAcls."""

    bucket_org: str
    bucket_acl: Acl
    object_acl: Callable[[], Acl | None] | None = None
    ignore_public: bool = False

    def allows(self, action_key: str, who: Identity) -> str | None:
        """A description of what grants the (case-folded) action to the caller, or None."""
        need = ACTION_PERMISSIONS.get(action_key)
        if need is None:
            return None
        level, permissions = need
        if level is Level.BUCKET:
            acl, where = self.bucket_acl, "the bucket ACL"
        else:
            found = self.object_acl() if self.object_acl is not None else None
            if found is None:
                return None
            acl, where = found, "the object ACL"
        grant = acl.grant_for(permissions, who, self.bucket_org, ignore_public=self.ignore_public)
        return f"{where}, {grant}" if grant else None
