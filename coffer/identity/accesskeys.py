"""Access keys: minting, inventory, suspension, revocation, and the hot-path lookup.

The S3 face resolves every request's access key through `credentials()`, which serves
from memory and is flushed whenever the change counter moves (see store.changes), so
a revoke or suspend is refused by the very next request.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from coffer import metrics
from coffer.audit import Actor, AuditSink
from coffer.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, ResourceExhausted
from coffer.identity import ids
from coffer.identity.lastused import LastUsedTracker
from coffer.identity.models import (
    AccessKey,
    KeyCredentials,
    KeySource,
    KeyStatus,
    MintedKey,
    as_utc,
    rfc3339,
    utcnow,
)
from coffer.identity.secretbox import SecretBox
from coffer.policy.errors import InvalidOrgPolicy
from coffer.policy.scope import DENY_ALL, KeyScope, parse_scope
from coffer.store.changes import ChangeCache, ChangeWatcher
from coffer.store.db import Database
from coffer.store.schema import access_keys, principal_suspensions

UINT32_MAX = 2**32 - 1
_log = logging.getLogger("coffer.policy")
_CACHE = metrics.cache("access_keys")
MAX_ATTRIBUTES = 15
MAX_PRINCIPAL = 512
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Control characters (PostgreSQL refuses NUL, logs should not carry the rest) and lone
# surrogates (not encodable as UTF-8) cannot be part of a name Coffer stores.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
PRINCIPAL_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"  # the same rule, for the OpenAPI
_ATTR_KEY = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_ATTR_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_RESERVED_ATTR_PREFIXES = ("cw-", "role", "groups")

# Both spellings CoreWeave's docs have used, mapped to one meaning.
_STATUS_ALIASES = {
    "ACTIVE": KeyStatus.ACTIVE,
    "ACCESS_KEY_STATUS_ACTIVE": KeyStatus.ACTIVE,
    "SUSPENDED": KeyStatus.FULL_SUSPENDED,
    "FULL_SUSPENDED": KeyStatus.FULL_SUSPENDED,
    "ACCESS_KEY_STATUS_SUSPENDED": KeyStatus.FULL_SUSPENDED,
    "ACCESS_KEY_STATUS_FULL_SUSPENDED": KeyStatus.FULL_SUSPENDED,
    "EXPIRED": KeyStatus.EXPIRED,
    "ACCESS_KEY_STATUS_EXPIRED": KeyStatus.EXPIRED,
    "REVOKED": KeyStatus.REVOKED,
    "ACCESS_KEY_STATUS_REVOKED": KeyStatus.REVOKED,
}
_SETTABLE = {KeyStatus.ACTIVE, KeyStatus.FULL_SUSPENDED}


def parse_status(value: object, *, settable: bool = False) -> KeyStatus:
    status = _STATUS_ALIASES.get(value) if isinstance(value, str) else None
    if status is None or (settable and status not in _SETTABLE):
        allowed = (
            "ACCESS_KEY_STATUS_ACTIVE, ACCESS_KEY_STATUS_SUSPENDED (or ACTIVE, SUSPENDED)"
            if settable
            else "ACTIVE, SUSPENDED, EXPIRED, REVOKED (or their ACCESS_KEY_STATUS_ forms)"
        )
        raise InvalidArgument.field("status", f"must be one of {allowed}; got {value!r}")
    return status


def _shown(value: str, limit: int = 64) -> str:
    """A caller-supplied string as it may appear in an error message: short and printable."""
    text = value if len(value) <= limit else value[:limit] + "..."
    return text.encode("unicode_escape").decode("ascii")


def plausible_key_id(value: str) -> bool:
    """Could this ever name a key? Anything else is answered NOT_FOUND without a query."""
    return bool(_KEY_ID.fullmatch(value))


def key_not_found(access_key_id: str) -> NotFound:
    return NotFound.resource("access key", _shown(access_key_id))


def validate_principal(value: object, field: str = "principalName") -> str:
    """A principal as policies name it (`coreweave/<UID>`, `role/...`): printable text, bounded."""
    if value is None or value == "":
        raise InvalidArgument.field(field, "is required")
    if not isinstance(value, str):
        raise InvalidArgument.field(field, "must be a string")
    if len(value) > MAX_PRINCIPAL or _CONTROL.search(value):
        raise InvalidArgument.field(
            field,
            f"must be at most {MAX_PRINCIPAL} characters without control characters, such as coreweave/<UID>",
        )
    return value


def parse_duration(value: object, *, field: str = "durationSeconds") -> int:
    """A proto3 uint32: a JSON integer or a decimal string. JSON null counts as absent."""
    if value is None:
        raise InvalidArgument.field(field, "is required (0 makes a permanent key)")
    if isinstance(value, bool):
        raise InvalidArgument.field(field, "must be an integer number of seconds")
    if isinstance(value, float):
        if not value.is_integer():
            raise InvalidArgument.field(field, "must be a whole number of seconds")
        value = int(value)
    if isinstance(value, str):  # proto3 JSON lets 64-bit-safe integers travel as strings
        if not re.fullmatch(r"-?[0-9]{1,20}", value):
            raise InvalidArgument.field(field, "must be an integer number of seconds")
        value = int(value)
    if not isinstance(value, int):
        raise InvalidArgument.field(field, "must be an integer number of seconds")
    if value < 0:
        raise InvalidArgument.field(field, "must be >= 0 (0 makes a permanent key)")
    if value > UINT32_MAX:
        raise InvalidArgument.field(field, "must fit in an unsigned 32-bit integer")
    return value


def validate_attributes(value: object) -> dict[str, str]:
    """CoreWeave's rules: at most 15, DNS-label keys not reserved, label-like values."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument.field("attributes", "must be an object mapping strings to strings")
    if len(value) > MAX_ATTRIBUTES:
        raise InvalidArgument.field("attributes", f"at most {MAX_ATTRIBUTES} entries are allowed")
    out: dict[str, str] = {}
    for key, val in value.items():
        shown = f"attributes.{_shown(str(key))}"
        if not isinstance(key, str) or not (1 <= len(key) <= 63) or not _ATTR_KEY.fullmatch(key):
            raise InvalidArgument.field(
                shown, "keys must be lower-case DNS labels (a-z, 0-9, '-'), 1-63 characters"
            )
        if key.startswith(_RESERVED_ATTR_PREFIXES):
            raise InvalidArgument.field(
                shown, "keys must not start with 'cw-', 'role' or 'groups' (reserved)"
            )
        if not isinstance(val, str) or len(val) > 63 or not _ATTR_VALUE.fullmatch(val):
            raise InvalidArgument.field(
                shown,
                "values must be strings of at most 63 characters: alphanumerics, '-', '_', '.',"
                " starting and ending alphanumeric",
            )
        out[key] = val
    return out


def validate_scope(value: object, field: str = "scope") -> KeyScope | None:
    """A key's optional scope (coffer/policy/scope.py); JSON null or absent means none."""
    if value is None:
        return None
    try:
        return parse_scope(value, field_prefix=field)
    except InvalidOrgPolicy as exc:
        raise InvalidArgument.field(exc.field, exc.description) from None


def stored_scope(access_key_id: str, document: object) -> KeyScope | None:
    """A stored scope; one that no longer validates admits nothing (fail closed) and is logged."""
    if document is None:
        return None
    try:
        return parse_scope(document)
    except InvalidOrgPolicy as exc:
        _log.error(
            "access key %s has a stored scope that no longer validates (%s): it admits nothing",
            access_key_id,
            exc,
        )
        return DENY_ALL


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int


def parse_page(offset: object, limit: object, *, default_limit: int = 100) -> Page:
    def uint(name: str, raw: object, default: int) -> int:
        if raw is None:
            return default
        text = str(raw)
        if not re.fullmatch(r"[0-9]{1,20}", text):
            raise InvalidArgument.field(name, f"must be a non-negative integer, got {_shown(text, 32)!r}")
        number = int(text)
        if number > UINT32_MAX:
            raise InvalidArgument.field(name, "must fit in an unsigned 32-bit integer")
        return number

    off = uint("offset", offset, 0)
    lim = uint("limit", limit, default_limit)
    if not 1 <= lim <= 1000:
        raise InvalidArgument.field("limit", "must be between 1 and 1000")
    return Page(off, lim)


# The statements of a mint, built once (SQLAlchemy skips construction and cache keys).
_KEY_TAKEN = sa.select(access_keys.c.access_key_id).where(
    access_keys.c.access_key_id == sa.bindparam("key_id")
)
_INSERT_KEY = access_keys.insert()
_SUSPENDED = sa.select(principal_suspensions.c.principal_name).where(
    principal_suspensions.c.org_id == sa.bindparam("org_id"),
    principal_suspensions.c.principal_name == sa.bindparam("principal"),
)
# Served by ix_access_keys_live: only the principal's live keys are visited, however many
# expired or revoked ones it has accumulated.
_LIVE_KEYS = (
    sa.select(sa.func.count())
    .select_from(access_keys)
    .where(
        access_keys.c.org_id == sa.bindparam("org_id"),
        access_keys.c.principal_name == sa.bindparam("principal"),
        access_keys.c.revoked_at.is_(None),
        sa.or_(access_keys.c.expires_at.is_(None), access_keys.c.expires_at > sa.bindparam("now")),
        sa.or_(access_keys.c.revoke_at.is_(None), access_keys.c.revoke_at > sa.bindparam("now")),
    )
)


class AccessKeyService:
    def __init__(
        self,
        db: Database,
        changes: ChangeWatcher,
        box: SecretBox,
        *,
        audit: AuditSink,
        max_duration: int = 43200,
        max_live_keys: int = 0,
        last_used_flush_seconds: float = 60.0,
        expiry_warning_seconds: int = 3600,
        max_age_days: int = 90,
    ) -> None:
        self.db = db
        self.changes = changes
        self.box = box
        self.audit = audit
        self.max_duration = max_duration
        self.max_live_keys = max_live_keys  # per principal; 0 = no cap
        self._cache: ChangeCache[str, KeyCredentials | None] = ChangeCache(changes, _CACHE, 100_000)
        self.last_used = LastUsedTracker(db, last_used_flush_seconds)
        self.expiry_warning = timedelta(seconds=expiry_warning_seconds)
        self.max_age = timedelta(days=max_age_days) if max_age_days else None
        self.last_used.every_flush(self.count_in_sight)

    # minting ---------------------------------------------------------------------------
    def mint(
        self,
        *,
        org_id: str,
        principal_name: str,
        duration_seconds: int,
        source: KeySource,
        user_id: str | None = None,
        role: str | None = None,
        attributes: dict[str, str] | None = None,
        multi_attributes: dict[str, list[str]] | None = None,
        with_session_token: bool = False,
        max_duration: int | None = None,
        not_after: datetime | None = None,
        federation_config_id: str | None = None,
        precondition: Callable[[Connection], None] | None = None,
        actor: Actor | None = None,
        audit_source: str | None = None,
        rotated_from: str | None = None,
        scope: KeyScope | None = None,
    ) -> MintedKey:
        """Create a key. 0 seconds means permanent; a positive lifetime is capped.

        `not_after` clips the expiry (a federated key never outlives its assertion);
        `federation_config_id` records the config a federated key came through;
        `precondition` runs inside the write transaction, before the insert, and may refuse
        (a federated mint re-checks that its config is still trusted there). Every minting
        path comes through here, so the live-key cap holds for all of them, and so does the
        audit line (with an `actor`; `audit_source` names the source there when the key's
        own does not say it, as for the console's keys).
        """
        cap = self.max_duration if max_duration is None else max_duration
        if duration_seconds > cap:
            raise InvalidArgument.field(
                "durationSeconds", f"must be at most {cap} seconds (0 makes a permanent key)"
            )
        now = utcnow()
        expires_at = now + timedelta(seconds=duration_seconds) if duration_seconds else None
        if not_after is not None and (expires_at is None or expires_at > not_after):
            expires_at = not_after
        secret = ids.new_secret_key()
        session_token = ids.new_session_token() if with_session_token else None
        attrs = dict(attributes or {})
        multi = {k: list(v) for k, v in (multi_attributes or {}).items()}
        row: dict[str, Any] = {
            "org_id": org_id,
            "principal_name": principal_name,
            "user_id": user_id,
            "session_token_hash": ids.hash_token(session_token) if session_token else None,
            "source": source.value,
            "role": role,
            "attributes": attrs,
            "multi_attributes": multi,
            "created_at": now,
            "expires_at": expires_at,
            "federation_config_id": federation_config_id,
            "rotated_from": rotated_from,
            "scope": scope.document if scope is not None else None,
        }

        def fresh_id() -> str:
            key_id = ids.new_access_key_id()
            row["access_key_id"], row["secret_ciphertext"] = key_id, self.box.seal(secret, key_id)
            return key_id

        # Everything but the writes is prepared before taking the (single) write lock,
        # and the statements are prebuilt: concurrent mints queue on that lock.
        key_id = fresh_id()
        with self.db.write() as conn:
            if precondition is not None:
                precondition(conn)
            if self.max_live_keys:
                self._check_live_cap(conn, org_id, principal_name, now)
            for _ in range(5):
                if not conn.execute(_KEY_TAKEN, {"key_id": key_id}).first():
                    break
                key_id = fresh_id()
            else:  # pragma: no cover - 26**14 ids make this unreachable in practice
                raise RuntimeError("could not allocate an access key id")
            conn.execute(_INSERT_KEY, row)
            suspended = self._is_suspended(conn, org_id, principal_name)
        # No change-counter bump: a new key makes nothing cached stale. The only entry it
        # could contradict is a cached "no such key" for its id, and ids are 14 random
        # letters (26^14), never asked for before they exist. Bumping flushed every
        # worker's key, token and compiled-policy caches on each mint, so the next request
        # (the next mint, too) re-read and recompiled them: minting ran at half the rate.
        key = AccessKey(
            key_id,
            org_id,
            principal_name,
            user_id,
            source,
            role,
            attrs,
            multi,
            now,
            expires_at,
            None,
            suspended,
            session_token is not None,
            rotated_from=rotated_from,
            scope=scope,
        )
        if actor is not None:
            self.audit(
                "access_key_minted",
                action=actor.action,
                access_key_id=key.access_key_id,
                principal=key.principal_name,
                actor=actor.name,
                org_id=key.org_id,
                source=audit_source or key.source.value,
                duration_seconds=duration_seconds,
                expiry=rfc3339(key.expiry_for_api),
                suspended=key.suspended,
                **({"scope": scope.document} if scope is not None else {}),
            )
        return MintedKey(key, secret, session_token)

    def _check_live_cap(self, conn: Connection, org_id: str, principal: str, now: datetime) -> None:
        """Refuse a mint that would give the principal more than `max_live_keys` live keys.

        The count and the insert after it share the transaction, and concurrent mints for
        one principal queue on `serialize`, so two of them can never both take the last slot."""
        self.db.serialize(conn, f"live-keys:{org_id}/{principal}")
        live = conn.execute(_LIVE_KEYS, {"org_id": org_id, "principal": principal, "now": now}).scalar_one()
        if live >= self.max_live_keys:
            cap = self.max_live_keys
            raise ResourceExhausted(
                f"principal {_shown(principal)!r} already holds {live} live access keys, the most "
                f"max_live_keys_per_principal ({cap}) allows; revoke one or let a temporary key expire",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                        "violations": [
                            {
                                "subject": f"principal:{_shown(principal)}",
                                "description": f"at most {cap} live access keys per principal",
                            }
                        ],
                    }
                ],
            )

    # reading ---------------------------------------------------------------------------
    @staticmethod
    def _is_suspended(conn: Connection, org_id: str, principal: str) -> bool:
        return conn.execute(_SUSPENDED, {"org_id": org_id, "principal": principal}).first() is not None

    @staticmethod
    def _key(r: Row[Any], suspended: bool) -> AccessKey:
        return AccessKey(
            access_key_id=r.access_key_id,
            org_id=r.org_id,
            principal_name=r.principal_name,
            user_id=r.user_id,
            source=KeySource(r.source),
            role=r.role,
            attributes=dict(r.attributes or {}),
            multi_attributes={k: list(v) for k, v in (r.multi_attributes or {}).items()},
            created_at=as_utc(r.created_at) or utcnow(),
            expires_at=as_utc(r.expires_at),
            revoked_at=as_utc(r.revoked_at),
            suspended=suspended,
            has_session_token=r.session_token_hash is not None,
            revoke_at=as_utc(r.revoke_at),
            rotated_from=r.rotated_from,
            scope=stored_scope(r.access_key_id, r.scope),
        )

    def _select(self) -> sa.Select[Any]:
        suspended = (
            sa.select(sa.literal(1))
            .where(
                principal_suspensions.c.org_id == access_keys.c.org_id,
                principal_suspensions.c.principal_name == access_keys.c.principal_name,
            )
            .exists()
        )
        return sa.select(access_keys, suspended.label("suspended"))

    def get(self, org_id: str, access_key_id: str) -> AccessKey:
        """A key of this organization, in any state; another org's key is as unknown as a made-up id."""
        if not plausible_key_id(access_key_id):
            raise key_not_found(access_key_id)
        with self.db.read() as conn:
            r = conn.execute(
                self._select().where(
                    access_keys.c.access_key_id == access_key_id, access_keys.c.org_id == org_id
                )
            ).first()
        if r is None:
            raise key_not_found(access_key_id)
        return self._key(r, bool(r.suspended))

    def list(
        self, org_id: str, page: Page, status: KeyStatus | None = None, now: datetime | None = None
    ) -> list[AccessKey]:
        now = now or utcnow()
        q = self._select().where(access_keys.c.org_id == org_id)
        not_revoked = sa.and_(
            access_keys.c.revoked_at.is_(None),
            sa.or_(access_keys.c.revoke_at.is_(None), access_keys.c.revoke_at > now),
        )
        live = sa.and_(
            not_revoked, sa.or_(access_keys.c.expires_at.is_(None), access_keys.c.expires_at > now)
        )
        suspended_col = q.selected_columns.suspended
        if status is KeyStatus.ACTIVE:
            q = q.where(live, sa.not_(suspended_col))
        elif status is KeyStatus.FULL_SUSPENDED:
            q = q.where(live, suspended_col)
        elif status is KeyStatus.EXPIRED:
            q = q.where(not_revoked, access_keys.c.expires_at <= now)
        elif status is KeyStatus.REVOKED:
            q = q.where(sa.not_(not_revoked))
        q = q.order_by(access_keys.c.created_at, access_keys.c.access_key_id)
        q = q.offset(page.offset).limit(page.limit)
        with self.db.read() as conn:
            return [self._key(r, bool(r.suspended)) for r in conn.execute(q).all()]

    # changing state ----------------------------------------------------------------------
    def _principal_known(self, conn: Connection, org_id: str, principal: str) -> bool:
        from coffer.store.schema import users

        if (
            conn.execute(
                sa.select(access_keys.c.access_key_id)
                .where(access_keys.c.org_id == org_id, access_keys.c.principal_name == principal)
                .limit(1)
            ).first()
            is not None
        ):
            return True
        if principal.startswith("coreweave/"):
            uid = principal.removeprefix("coreweave/")
            return (
                conn.execute(sa.select(users.c.id).where(users.c.id == uid, users.c.org_id == org_id)).first()
                is not None
            )
        return False

    def set_principal_status(
        self, org_id: str, principal: str, status: KeyStatus, *, actor: Actor | None = None
    ) -> None:
        """Suspend or reactivate every key of a principal, including keys minted later."""
        with self.db.write() as conn:
            if not self._principal_known(conn, org_id, principal):
                raise NotFound.resource("principal", _shown(principal))
            conn.execute(
                principal_suspensions.delete().where(
                    principal_suspensions.c.org_id == org_id,
                    principal_suspensions.c.principal_name == principal,
                )
            )
            if status is KeyStatus.FULL_SUSPENDED:
                conn.execute(
                    principal_suspensions.insert().values(
                        org_id=org_id, principal_name=principal, suspended_at=utcnow()
                    )
                )
            self.db.bump_changes(conn)
        self.changes.changed()
        if actor is not None:
            self.audit(
                "access_keys_suspended" if status is KeyStatus.FULL_SUSPENDED else "access_keys_reactivated",
                action="cwobject:UpdateAccessKeyStatus",
                principal=principal,
                status=status.value,
                actor=actor.name,
                org_id=org_id,
            )

    def revoke_key(
        self, org_id: str, access_key_id: str, *, actor: Actor | None = None
    ) -> tuple[AccessKey, bool]:
        """Revoke one key; idempotent. Returns the key and whether this call revoked it."""
        if not plausible_key_id(access_key_id):
            raise key_not_found(access_key_id)
        changed = False
        with self.db.write() as conn:
            r = conn.execute(
                sa.select(access_keys.c.access_key_id, access_keys.c.revoked_at).where(
                    access_keys.c.access_key_id == access_key_id, access_keys.c.org_id == org_id
                )
            ).first()
            if r is None:
                raise key_not_found(access_key_id)
            if r.revoked_at is None:
                conn.execute(
                    access_keys.update()
                    .where(access_keys.c.access_key_id == access_key_id)
                    .values(revoked_at=utcnow())
                )
                self.db.bump_changes(conn)
                changed = True
        if changed:
            self.changes.changed()
        key = self.get(org_id, access_key_id)
        if actor is not None:
            self.audit(
                "access_key_revoked",
                action="cwobject:RevokeAccessKeyByAccessKey",
                access_key_id=key.access_key_id,
                principal=key.principal_name,
                already_revoked=not changed,
                actor=actor.name,
                org_id=org_id,
            )
        return key, changed

    def revoke_principal(self, org_id: str, principal: str, *, actor: Actor | None = None) -> int:
        """Revoke every live key of a principal; returns how many this call revoked.

        Keys minted later are not affected (unlike a suspension): revocation acts on keys.
        """
        with self.db.write() as conn:
            if not self._principal_known(conn, org_id, principal):
                raise NotFound.resource("principal", _shown(principal))
            count = conn.execute(
                access_keys.update()
                .where(
                    access_keys.c.org_id == org_id,
                    access_keys.c.principal_name == principal,
                    access_keys.c.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
            ).rowcount
            self.db.bump_changes(conn)
        self.changes.changed()
        revoked = int(count or 0)
        if actor is not None:
            self.audit(
                "principal_keys_revoked",
                action="cwobject:RevokeAccessKeysByPrincipal",
                principal=principal,
                count=revoked,
                actor=actor.name,
                org_id=org_id,
            )
        return revoked

    def rotate(
        self, org_id: str, access_key_id: str, overlap_seconds: int, *, owner: str, actor: Actor | None = None
    ) -> tuple[MintedKey, AccessKey]:
        """Mint a successor of a key and schedule the key's revocation after `overlap_seconds`.

        Minting a key is something one does for oneself, so only the key's owner (`owner`)
        may rotate it. The scheduled revocation is written in the successor's own
        transaction (the change counter moves, so every node's cache learns `revoke_at`),
        and the auth check refuses the key from that instant: no job has to run on time.
        Returns the successor and the old key as it now stands.
        """
        old = self.get(org_id, access_key_id)
        now = utcnow()
        if old.principal_name != owner:
            raise PermissionDenied(
                f"access key {old.access_key_id} belongs to {_shown(old.principal_name)}: only its owner "
                "may rotate it, as only a principal may create keys for itself"
            )
        if old.status(now) in (KeyStatus.REVOKED, KeyStatus.EXPIRED):
            raise FailedPrecondition(f"access key {old.access_key_id} is {old.status(now).value.lower()}")
        if old.revoke_at is not None:
            raise FailedPrecondition(f"access key {old.access_key_id} has already been rotated")
        if old.source in (KeySource.SAML, KeySource.OIDC) or old.has_session_token:
            raise FailedPrecondition(
                f"access key {old.access_key_id} came from a federation exchange or with a session "
                "token: get a new one the way this one was obtained"
            )
        duration = 0
        if old.expires_at is not None:
            duration = max(1, int((old.expires_at - old.created_at).total_seconds()))
        # On a whole second (rounded up), so the revokeAt the API shows is the instant itself;
        # no overlap means now.
        revoke_at = now
        if overlap_seconds:
            revoke_at = (now + timedelta(seconds=overlap_seconds, microseconds=999_999)).replace(
                microsecond=0
            )

        def schedule(conn: Connection) -> None:
            done = conn.execute(
                access_keys.update()
                .where(
                    access_keys.c.access_key_id == old.access_key_id,
                    access_keys.c.revoked_at.is_(None),
                    access_keys.c.revoke_at.is_(None),
                )
                .values(revoke_at=revoke_at)
            ).rowcount
            if done != 1:  # a concurrent rotation or revocation won
                raise FailedPrecondition(f"access key {old.access_key_id} was rotated or revoked meanwhile")
            self.db.bump_changes(conn)

        minted = self.mint(
            org_id=org_id,
            principal_name=old.principal_name,
            duration_seconds=duration,
            source=old.source,
            user_id=old.user_id,
            role=old.role,
            attributes=old.attributes,
            multi_attributes=old.multi_attributes,
            max_duration=max(duration, self.max_duration),
            precondition=schedule,
            actor=actor,
            rotated_from=old.access_key_id,
            scope=old.scope,
        )
        self.changes.changed()
        if actor is not None:
            self.audit(
                "access_key_rotated",
                action=actor.action,
                access_key_id=old.access_key_id,
                successor_access_key_id=minted.key.access_key_id,
                principal=old.principal_name,
                revoke_at=rfc3339(revoke_at),
                overlap_seconds=overlap_seconds,
                actor=actor.name,
                org_id=org_id,
            )
        return minted, self.get(org_id, old.access_key_id)

    def successors(self, org_id: str, access_key_ids: Sequence[str]) -> dict[str, str]:
        """The key that replaced each of these in a rotation, where one did."""
        if not access_key_ids:
            return {}
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(access_keys.c.rotated_from, access_keys.c.access_key_id).where(
                    access_keys.c.org_id == org_id, access_keys.c.rotated_from.in_(access_key_ids)
                )
            ).all()
        return {r.rotated_from: r.access_key_id for r in rows}

    # expiry in sight ---------------------------------------------------------------------
    def in_sight(self, key: AccessKey, now: datetime) -> str | None:
        """Why a live key wants attention soon: EXPIRES_SOON (temporary) or AGED (permanent)."""
        if key.status(now) not in (KeyStatus.ACTIVE, KeyStatus.FULL_SUSPENDED):
            return None
        if key.expires_at is not None:
            return "EXPIRES_SOON" if key.expires_at - now <= self.expiry_warning else None
        if self.max_age is not None and now - key.created_at > self.max_age:
            return "AGED"
        return None

    def count_in_sight(self) -> None:
        """Set the two key gauges: two COUNT queries, once per flush interval per worker."""
        now = utcnow()
        not_revoked = sa.and_(
            access_keys.c.revoked_at.is_(None),
            sa.or_(access_keys.c.revoke_at.is_(None), access_keys.c.revoke_at > now),
        )
        count = sa.select(sa.func.count()).select_from(access_keys)
        with self.db.read() as conn:
            expiring = conn.execute(
                count.where(
                    not_revoked,
                    access_keys.c.expires_at > now,
                    access_keys.c.expires_at <= now + self.expiry_warning,
                )
            ).scalar_one()
            aged = 0
            if self.max_age is not None:
                aged = conn.execute(
                    count.where(
                        not_revoked,
                        access_keys.c.expires_at.is_(None),
                        access_keys.c.created_at < now - self.max_age,
                    )
                ).scalar_one()
        metrics.ACCESS_KEYS_EXPIRING.set(expiring)
        metrics.ACCESS_KEYS_AGED.set(aged)

    # the hot path ----------------------------------------------------------------------
    def credentials(self, access_key_id: str) -> KeyCredentials | None:
        """The key and its plain secret, or None if no such key was ever minted.

        The caller checks status (expiry, suspension, revocation) on every request.
        """
        return self._cache.get(access_key_id, lambda: self._read_credentials(access_key_id))

    def _read_credentials(self, access_key_id: str) -> KeyCredentials | None:
        if not plausible_key_id(access_key_id):
            return None
        with self.db.read() as conn:
            r = conn.execute(self._select().where(access_keys.c.access_key_id == access_key_id)).first()
        if r is None:
            return None
        return KeyCredentials(
            key=self._key(r, bool(r.suspended)),
            secret_key=self.box.open(bytes(r.secret_ciphertext), r.access_key_id),
            session_token_hash=bytes(r.session_token_hash) if r.session_token_hash else None,
        )

    def verify_master_key(self) -> None:
        """Refuse to start with a master key other than the one that sealed the stored secrets.

        A node with the wrong key would otherwise fail every signature check one request
        at a time; this says so once, at start-up.
        """
        with self.db.read() as conn:
            r = conn.execute(
                sa.select(access_keys.c.access_key_id, access_keys.c.secret_ciphertext)
                .order_by(access_keys.c.created_at)
                .limit(1)
            ).first()
        if r is None:
            return
        try:
            self.box.open(bytes(r.secret_ciphertext), r.access_key_id)
        except Exception:
            raise ValueError(
                "the master key does not decrypt the stored access-key secrets; every node sharing "
                "this database must use the same master key (master_key setting or <data-dir>/master.key)"
            ) from None

    @staticmethod
    def session_token_matches(creds: KeyCredentials, presented: str | None) -> bool:
        """Keys minted with a session token need it; keys without one refuse any token."""
        if creds.session_token_hash is None:
            return presented is None
        if presented is None:
            return False
        return hmac.compare_digest(creds.session_token_hash, ids.hash_token(presented))
