"""Principal forms in both policy languages, and the matcher they compile to.

Coffer principals are named by CoreWeave's short forms (reference §3.2, §4):
`coreweave/<UID>` for users, `role/<name>` for SAML roles and OIDC workloads
(`role/<ISSUER_URL>:<SUB>`), `saml/<name>` for SAML principals, and `*` for everyone.
Organization policies accept only these. Bucket policies also accept the AWS-style ARN
`arn:aws:iam::<ORG-ID>:<short form>` (which pins the principal's organization),
`arn:aws:iam::<ORG-ID>:root` (every principal of that organization) and CoreWeave's
service principals `arn:aws:iam::coreweave:static/<name>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SHORT_PREFIXES = ("coreweave/", "role/", "saml/")
PLATFORM_ACCOUNT = "coreweave"  # the account of CoreWeave's own service principals
_GROUP_PREFIXES = ("group/", "groups/", "iam-group/")
_ARN = re.compile(r"arn:aws:iam::(?P<org>[A-Za-z0-9-]+):(?P<rest>.+)", re.DOTALL)
_BAD_CHARS = re.compile(r"[\s*?]")


def nameable(name: str) -> bool:
    """Can a policy name this as the part after `role/` or `saml/`? (Federated identities
    are checked with it, so every key minted from an IdP can be granted something.)"""
    return (
        bool(name) and not _BAD_CHARS.search(name) and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)
    )


MAX_PRINCIPAL_LENGTH = 1024


class PrincipalError(ValueError):
    """A principal entry a policy may not use; the message says why."""


def check_short_form(entry: str) -> str:
    """Validate an organization-policy principal; returns it unchanged.

    Full ARNs are refused (CoreWeave: "short form only; a full ARN fails"), as are
    CoreWeave IAM console groups, partial wildcards and unknown forms.
    """
    if entry == "*":
        return entry
    if not entry:
        raise PrincipalError("principal must not be empty")
    if len(entry) > MAX_PRINCIPAL_LENGTH:
        raise PrincipalError(f"principal is longer than {MAX_PRINCIPAL_LENGTH} characters")
    if entry.lower().startswith("arn:"):
        raise PrincipalError(
            f"principal {entry!r} is a full ARN; organization policies require short forms: "
            "'*', 'coreweave/<UID>', 'role/<name>' or 'saml/<name>'"
        )
    if entry.startswith(_GROUP_PREFIXES):
        raise PrincipalError(
            f"principal {entry!r} names a group; CoreWeave IAM groups cannot be policy principals "
            "(use 'role/<name>' for SAML/OIDC roles, or the iam:<ORG-ID>:groups condition in a bucket policy)"
        )
    prefix = next((p for p in SHORT_PREFIXES if entry.startswith(p)), None)
    if prefix is None:
        raise PrincipalError(
            f"principal {entry!r} is not a known form; expected '*', 'coreweave/<UID>', "
            "'role/<name>' or 'saml/<name>'"
        )
    rest = entry[len(prefix) :]
    if not rest:
        raise PrincipalError(f"principal {entry!r} has an empty name after {prefix!r}")
    if _BAD_CHARS.search(rest):
        raise PrincipalError(
            f"principal {entry!r} contains whitespace or a wildcard; only '*' on its own is a wildcard"
        )
    return entry


@dataclass(frozen=True, slots=True)
class BucketPrincipal:
    """One parsed bucket-policy principal value."""

    everyone: bool = False
    name: str | None = None  # a short form, or a `static/...` service principal
    org_id: str | None = None  # pinned organization; None = the bucket owner's
    whole_org: bool = False  # arn:aws:iam::<ORG>:root
    platform: bool = False  # arn:aws:iam::coreweave:static/<name>


def parse_bucket_principal(value: str) -> BucketPrincipal:
    """A bucket-policy principal value; raises PrincipalError if it is not one Coffer knows."""
    if value == "*":
        return BucketPrincipal(everyone=True)
    if not value.startswith("arn:"):
        return BucketPrincipal(name=check_short_form(value))
    match = _ARN.fullmatch(value)
    if match is None:
        raise PrincipalError(f"principal {value!r} is not an arn:aws:iam::<ORG-ID>:<principal> ARN")
    org, rest = match["org"], match["rest"]
    if org == PLATFORM_ACCOUNT and rest.startswith("static/") and len(rest) > len("static/"):
        if _BAD_CHARS.search(rest):
            raise PrincipalError(f"principal {value!r} contains whitespace or a wildcard")
        return BucketPrincipal(name=rest, platform=True)
    if rest == "root":
        return BucketPrincipal(org_id=org, whole_org=True)
    if rest.lower().startswith("arn:"):
        raise PrincipalError(f"principal {value!r} is not a valid ARN")
    return BucketPrincipal(name=check_short_form(rest), org_id=org)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is asking, as principal matching needs it."""

    names: frozenset[str]  # the principal name and its aliases (role/..., saml/...)
    org_id: str | None  # None for anonymous callers
    same_org: bool  # the caller belongs to the organization that owns the resource
    anonymous: bool


class PrincipalMatcher:
    """A compiled principal list: does it name this identity?"""

    __slots__ = ("everyone", "local_names", "orgs", "platform", "qualified")

    def __init__(self, entries: list[BucketPrincipal]) -> None:
        self.everyone = any(e.everyone for e in entries)
        self.local_names = frozenset(
            e.name for e in entries if e.name and e.org_id is None and not e.platform
        )
        self.qualified = frozenset((e.org_id, e.name) for e in entries if e.name and e.org_id is not None)
        self.orgs = frozenset(e.org_id for e in entries if e.whole_org and e.org_id)
        self.platform = frozenset(e.name for e in entries if e.platform and e.name)

    def matches(self, who: Identity) -> bool:
        """`*` names everyone (anonymous included); named principals never match anonymous."""
        if self.everyone:
            return True
        if who.anonymous:
            return False
        if self.platform and not self.platform.isdisjoint(who.names):
            return True
        if who.same_org and not self.local_names.isdisjoint(who.names):
            return True
        if who.org_id is not None:
            if who.org_id in self.orgs:
                return True
            if self.qualified and any((who.org_id, n) in self.qualified for n in who.names):
                return True
        return False
