"""Organizations, users, groups, API access tokens and console sessions.

Every change made on behalf of an `Actor` is written to the audit trail here, after commit.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from coffer import metrics
from coffer.audit import Actor, AuditSink
from coffer.errors import AlreadyExists, InvalidArgument, NotFound, Unauthenticated
from coffer.identity import ids
from coffer.identity.models import ApiToken, Caller, Organization, User, as_utc, rfc3339, utcnow
from coffer.store.changes import ChangeCache, ChangeWatcher
from coffer.store.db import Database
from coffer.store.schema import api_tokens, group_members, organizations, users

_CACHE = metrics.cache("api_tokens")


def _check_name(field: str, value: str) -> None:
    """Names are shown in tables and stored as text: 1-255 printable characters."""
    if not value or len(value) > 255 or not value.isprintable():
        raise InvalidArgument.field(field, "must be 1-255 printable characters")


def _user_fields(user: User) -> dict[str, str]:
    """How an audit line names the user a change is about."""
    return {"user": user.name, "principal": user.principal_name, "org_id": user.org_id}


class Directory:
    def __init__(self, db: Database, changes: ChangeWatcher, *, audit: AuditSink) -> None:
        self.db = db
        self.changes = changes
        self.audit = audit
        self._tokens: ChangeCache[bytes, tuple[ApiToken, User]] = ChangeCache(changes, _CACHE, 10_000)

    # organizations -------------------------------------------------------------------
    def create_org(self, name: str, org_id: str | None = None, *, actor: Actor | None = None) -> Organization:
        _check_name("name", name)
        org = Organization(id=org_id or ids.new_org_id(), name=name, created_at=utcnow())
        with self.db.write() as conn:
            conn.execute(organizations.insert().values(id=org.id, name=org.name, created_at=org.created_at))
        if actor is not None:
            self.audit("org_created", org_id=org.id, org_name=org.name, actor=actor.name)
        return org

    def list_orgs(self) -> list[Organization]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(organizations).order_by(organizations.c.created_at)).all()
        return [Organization(r.id, r.name, as_utc(r.created_at) or utcnow()) for r in rows]

    def get_org(self, org_id: str) -> Organization:
        with self.db.read() as conn:
            r = conn.execute(sa.select(organizations).where(organizations.c.id == org_id)).first()
        if r is None:
            raise NotFound.resource("organization", org_id)
        return Organization(r.id, r.name, as_utc(r.created_at) or utcnow())

    def default_org(self) -> Organization:
        orgs = self.list_orgs()
        if not orgs:
            raise NotFound("no organization exists yet; start the server once to bootstrap one")
        return orgs[0]

    # users ---------------------------------------------------------------------------
    def create_user(
        self,
        org_id: str,
        name: str,
        *,
        storage_admin: bool = False,
        groups: tuple[str, ...] = (),
        actor: Actor | None = None,
    ) -> User:
        _check_name("name", name)
        for group in groups:
            _check_name("group", group)
        user_id = ids.new_user_id()
        now = utcnow()
        with self.db.write() as conn:
            exists = conn.execute(
                sa.select(users.c.id).where(users.c.org_id == org_id, users.c.name == name)
            ).first()
            if exists:
                raise AlreadyExists(f"user {name!r} already exists")
            conn.execute(
                users.insert().values(
                    id=user_id, org_id=org_id, name=name, is_storage_admin=storage_admin, created_at=now
                )
            )
            for group in sorted(set(groups)):
                conn.execute(group_members.insert().values(user_id=user_id, group_name=group))
            self.db.bump_changes(conn)
        self.changes.changed()
        user = User(user_id, org_id, name, storage_admin, tuple(sorted(set(groups))), now)
        if actor is not None:
            self.audit(
                "user_created",
                **_user_fields(user),
                storage_admin=user.is_storage_admin,
                groups=list(user.groups),
                actor=actor.name,
            )
        return user

    def _user_from_row(self, conn: Connection, r: Row) -> User:
        groups = conn.execute(
            sa.select(group_members.c.group_name)
            .where(group_members.c.user_id == r.id)
            .order_by(group_members.c.group_name)
        ).scalars()
        return User(
            r.id, r.org_id, r.name, bool(r.is_storage_admin), tuple(groups), as_utc(r.created_at) or utcnow()
        )

    def get_user(self, user_id: str) -> User:
        with self.db.read() as conn:
            r = conn.execute(sa.select(users).where(users.c.id == user_id)).first()
            if r is None:
                raise NotFound.resource("user", user_id)
            return self._user_from_row(conn, r)

    def find_user(self, name_or_id: str, org_id: str | None = None) -> User:
        with self.db.read() as conn:
            q = sa.select(users).where(sa.or_(users.c.name == name_or_id, users.c.id == name_or_id))
            if org_id:
                q = q.where(users.c.org_id == org_id)
            rows = conn.execute(q).all()
            if not rows:
                raise NotFound.resource("user", name_or_id)
            if len(rows) > 1:
                raise InvalidArgument(f"{name_or_id!r} names users in several organizations; pass --org")
            return self._user_from_row(conn, rows[0])

    def list_users(self, org_id: str | None = None) -> list[User]:
        with self.db.read() as conn:
            q = sa.select(users).order_by(users.c.created_at, users.c.name)
            if org_id:
                q = q.where(users.c.org_id == org_id)
            return [self._user_from_row(conn, r) for r in conn.execute(q).all()]

    # API access tokens -----------------------------------------------------------------
    def create_token(
        self, user_id: str, *, name: str = "", ttl: timedelta | None = None, actor: Actor | None = None
    ) -> tuple[str, ApiToken]:
        """Mint a token. The plain value is returned once and only its hash is stored."""
        plain, token, user = self._insert_token(user_id, name, ttl)
        if actor is not None:
            self.audit(
                "api_token_created",
                token_id=token.id,
                **_user_fields(user),
                expires_at=token.expires_at.isoformat() if token.expires_at else None,
                actor=actor.name,
            )
        return plain, token

    def _insert_token(self, user_id: str, name: str, ttl: timedelta | None) -> tuple[str, ApiToken, User]:
        if name:
            _check_name("name", name)
        if ttl is not None and ttl.total_seconds() <= 0:
            raise InvalidArgument.field("expires_in", "must be a positive number of seconds")
        user = self.get_user(user_id)
        plain = ids.new_api_token()
        now = utcnow()
        token = ApiToken(ids.new_id(), user_id, name, now, now + ttl if ttl else None, None)
        with self.db.write() as conn:
            conn.execute(
                api_tokens.insert().values(
                    id=token.id,
                    user_id=user_id,
                    token_hash=ids.hash_token(plain),
                    name=name,
                    created_at=now,
                    expires_at=token.expires_at,
                )
            )
        return plain, token, user

    def list_tokens(self, user_id: str | None = None) -> list[ApiToken]:
        with self.db.read() as conn:
            q = sa.select(api_tokens).order_by(api_tokens.c.created_at)
            if user_id:
                q = q.where(api_tokens.c.user_id == user_id)
            return [self._token(r) for r in conn.execute(q).all()]

    def revoke_token(self, token_id: str, *, actor: Actor | None = None) -> ApiToken:
        with self.db.write() as conn:
            r = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)).first()
            if r is None:
                raise NotFound.resource("api token", token_id)
            if r.revoked_at is None:
                conn.execute(
                    api_tokens.update().where(api_tokens.c.id == token_id).values(revoked_at=utcnow())
                )
                self.db.bump_changes(conn)
        self.changes.changed()
        token = self.get_token(token_id)
        if actor is not None:
            self.audit("api_token_revoked", token_id=token.id, user_id=token.user_id, actor=actor.name)
        return token

    # console sessions ------------------------------------------------------------------
    def start_session(
        self, user: User, signed_in_with: ApiToken, *, name: str, ttl: timedelta, client: str | None
    ) -> tuple[str, ApiToken]:
        """A console sign-in: a new API token of the same user, the session."""
        plain, session, _ = self._insert_token(user.id, name, ttl)
        self.audit(
            "console_signed_in",
            principal=user.principal_name,
            org_id=user.org_id,
            token_id=session.id,
            signed_in_with=signed_in_with.id,
            expires_at=rfc3339(session.expires_at) if session.expires_at else None,
            client=client,
        )
        return plain, session

    def end_session(self, caller: Caller, revoke_keys: Callable[[str], int]) -> int:
        """A console sign-out: revoke the session token and, through `revoke_keys(token_id)`,
        the keys minted for it; returns how many keys that revoked."""
        revoked_keys = 0
        if caller.token_id:
            self.revoke_token(caller.token_id)
            revoked_keys = revoke_keys(caller.token_id)
        self.audit(
            "console_signed_out",
            principal=caller.principal_name,
            org_id=caller.org_id,
            token_id=caller.token_id,
            console_keys_revoked=revoked_keys,
        )
        return revoked_keys

    def get_token(self, token_id: str) -> ApiToken:
        with self.db.read() as conn:
            r = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)).first()
        if r is None:
            raise NotFound.resource("api token", token_id)
        return self._token(r)

    @staticmethod
    def _token(r: Row) -> ApiToken:
        return ApiToken(
            r.id,
            r.user_id,
            r.name,
            as_utc(r.created_at) or utcnow(),
            as_utc(r.expires_at),
            as_utc(r.revoked_at),
        )

    def authenticate_token(self, plain: str, now: datetime | None = None) -> tuple[ApiToken, User]:
        """Resolve a bearer token to its user; cached until any auth state changes."""
        now = now or utcnow()
        digest = ids.hash_token(plain)
        token, user = self._tokens.get(digest, lambda: self._read_token(digest))
        if token.revoked_at is not None:
            raise Unauthenticated("the API access token has been revoked")
        if token.expires_at is not None and token.expires_at <= now:
            raise Unauthenticated("the API access token has expired")
        return token, user

    def _read_token(self, digest: bytes) -> tuple[ApiToken, User]:
        with self.db.read() as conn:
            r = conn.execute(sa.select(api_tokens).where(api_tokens.c.token_hash == digest)).first()
            if r is None or not hmac.compare_digest(bytes(r.token_hash), digest):
                raise Unauthenticated("the API access token is not valid")
            token = self._token(r)
            ur = conn.execute(sa.select(users).where(users.c.id == token.user_id)).first()
            if ur is None:
                raise Unauthenticated("the API access token is not valid")
            return token, self._user_from_row(conn, ur)
