"""Typed records that travel through the core."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from coffer.policy.scope import KeyScope

PERMANENT_EXPIRY = datetime(1970, 1, 1, tzinfo=UTC)
ADMIN_GROUP = "admin"


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(value: datetime) -> str:
    """A time as the API and the audit trail write it: `2006-01-02T15:04:05Z`."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every one Coffer stores is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def user_principal(user_id: str) -> str:
    return f"coreweave/{user_id}"


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class User:
    id: str
    org_id: str
    name: str
    is_storage_admin: bool
    groups: tuple[str, ...]
    created_at: datetime

    @property
    def principal_name(self) -> str:
        return user_principal(self.id)

    @property
    def has_storage_admin(self) -> bool:
        """Object Storage Admin, held directly or through the legacy `admin` group."""
        return self.is_storage_admin or ADMIN_GROUP in self.groups

    def as_json(self, *, detail: bool = False) -> dict[str, Any]:
        """The user as the console and the CLI show them, with one name for the admin flag;
        `detail` adds the id and the groups (the admin commands)."""
        shown: dict[str, Any] = {"id": self.id} if detail else {}
        shown |= {"name": self.name, "principalName": self.principal_name, "orgId": self.org_id}
        shown["objectStorageAdmin"] = self.has_storage_admin
        return shown | ({"groups": list(self.groups)} if detail else {})


@dataclass(frozen=True)
class ApiToken:
    id: str
    user_id: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class KeyStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    FULL_SUSPENDED = "FULL_SUSPENDED"
    REVOKED = "REVOKED"


class KeySource(enum.Enum):
    JWT = "jwt"
    API_TOKEN = "api-token"  # noqa: S105 - a source label
    SAML = "saml"
    OIDC = "oidc"


@dataclass(frozen=True)
class AccessKey:
    """An access key as stored, without its secret."""

    access_key_id: str
    org_id: str
    principal_name: str
    user_id: str | None
    source: KeySource
    role: str | None
    attributes: dict[str, str]
    multi_attributes: dict[str, list[str]]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    suspended: bool
    has_session_token: bool = False
    # A rotation's scheduled revocation (the key is refused from then on) and its link.
    revoke_at: datetime | None = None
    rotated_from: str | None = None
    # The key's scope (coffer/policy/scope.py): it may do only what this and its owner allow; None: no scope.
    scope: KeyScope | None = None

    @property
    def permanent(self) -> bool:
        return self.expires_at is None

    def revoked(self, now: datetime) -> bool:
        """Revoked now: explicitly, or because the overlap of its rotation has ended."""
        return self.revoked_at is not None or (self.revoke_at is not None and self.revoke_at <= now)

    def status(self, now: datetime | None = None) -> KeyStatus:
        now = now or utcnow()
        if self.revoked(now):
            return KeyStatus.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return KeyStatus.EXPIRED
        if self.suspended:
            return KeyStatus.FULL_SUSPENDED
        return KeyStatus.ACTIVE

    @property
    def expiry_for_api(self) -> datetime:
        return self.expires_at or PERMANENT_EXPIRY

    @property
    def groups(self) -> list[str]:
        return list(self.multi_attributes.get("groups", []))


@dataclass(frozen=True)
class MintedKey:
    """The one moment a secret is visible: the answer to a mint."""

    key: AccessKey
    secret_key: str
    session_token: str | None = None


@dataclass(frozen=True)
class KeyCredentials:
    """What the S3 face needs to check a signature; lives in the in-memory key cache."""

    key: AccessKey
    secret_key: str
    session_token_hash: bytes | None


@dataclass(frozen=True)
class Caller:
    """An authenticated control-plane caller."""

    user: User
    token_id: str | None = None
    org_id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "org_id", self.user.org_id)

    @property
    def principal_name(self) -> str:
        return self.user.principal_name
