"""The workload-federation configurations an organization trusts, in the store.

A configuration is validated by its `coffer.federation` dataclass (`SamlConfig`,
`OidcConfig`) and stored as that dataclass's JSON, so the rules live in one place and a
stored config always loads. Withdrawing trust (deactivating or removing a config) revokes
every key minted through it: a key must not outlive the IdP's standing (peers' keys
famously outlive disabled identities, minio #19493).
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar, cast

import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.engine import Connection, Row

from coffer import metrics
from coffer.audit import Actor, AuditSink
from coffer.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted
from coffer.federation import FederationRejected, OidcConfig, SamlConfig
from coffer.identity.models import as_utc, utcnow
from coffer.store.changes import ChangeWatcher
from coffer.store.db import Database
from coffer.store.schema import access_keys, federation_configs, organizations

_T = TypeVar("_T")
_CACHE = metrics.cache("federation_configs")
Kind = Literal["saml", "oidc"]
MAX_CONFIGS_PER_KIND = 100
_LABEL = {"saml": "SAML configuration", "oidc": "OIDC configuration"}
# The fields a caller may change, as the JSON names of the dataclasses.
UPDATABLE: dict[Kind, tuple[str, ...]] = {
    "saml": ("name", "idpEntityId", "certificates", "spAudience", "recipient", "description", "active"),
    "oidc": ("name", "issuerUrl", "audience", "description", "active", "jwks"),
}


@dataclass(frozen=True)
class StoredConfig:
    """A configuration with its bookkeeping: when it was made, changed and deactivated."""

    kind: Kind
    config: SamlConfig | OidcConfig
    created_at: datetime
    updated_at: datetime
    deactivated_at: datetime | None

    @property
    def config_id(self) -> str:
        return self.config.config_id


def _from_document(kind: Kind, document: str) -> SamlConfig | OidcConfig:
    data = json.loads(document)
    return SamlConfig.from_json(data) if kind == "saml" else OidcConfig.from_json(data)


def _lookup(config: SamlConfig | OidcConfig) -> str:
    """What must be unique per (org, kind). Hashed: an issuer and audience may together reach
    several KiB of UTF-8, past what a PostgreSQL B-tree index entry may hold."""
    if isinstance(config, OidcConfig):
        return hashlib.sha256(f"{config.issuer_url}\n{config.audience}".encode()).hexdigest()
    return config.config_id


def _not_found(kind: Kind, config_id: str) -> NotFound:
    shown = config_id[:64].encode("unicode_escape").decode("ascii")
    return NotFound.resource(_LABEL[kind], shown)


class _ConfigCache:
    """Parsed configurations for the exchanges, per process, dropped whenever anything changes.

    Reading and parsing a config (JSON, PEM certificates, JWKS) cost an exchange as much as
    verifying its signature. Every config write bumps the change counter, which this host's
    workers see at once and other nodes within the notification delay (bounded by the poll),
    as with cached keys. A stale entry can only verify with the config as it was moments ago:
    the mint re-checks in SQL that the config is still active. Misses are not cached, so
    made-up config ids cannot fill the cache.
    """

    MAX_ENTRIES = 4096

    def __init__(self, changes: ChangeWatcher) -> None:
        self._changes = changes
        self._lock = threading.Lock()
        self._token: tuple[int, int] | None = None
        self._entries: dict[tuple[str, ...], Any] = {}

    def get(self, key: tuple[str, ...], load: Callable[[], _T]) -> _T:
        token = self._changes.token()
        with self._lock:
            if token != self._token:
                self._entries.clear()
                self._token = token
            if key in self._entries:
                _CACHE.hit.inc()
                return cast("_T", self._entries[key])
        _CACHE.miss.inc()
        value = load()  # outside the lock: a slow query must not stall the other threads
        with self._lock:
            if value and self._token == token:  # not a miss, and nothing changed meanwhile
                if len(self._entries) >= self.MAX_ENTRIES:
                    self._entries.clear()
                self._entries[key] = value
        return value


def _plausible(config_id: str) -> bool:
    """Could this name a config (a UUID)? Anything else is unknown without a query; PostgreSQL
    refuses NUL in text outright."""
    return 0 < len(config_id) <= 64 and config_id.isprintable()


class FederationConfigs:
    """Create, read, change and remove SAML and OIDC configurations of an organization."""

    def __init__(self, db: Database, changes: ChangeWatcher, *, audit: AuditSink) -> None:
        self.db = db
        self.changes = changes
        self.audit = audit
        self._cache = _ConfigCache(changes)

    # --- writing ---------------------------------------------------------------------------
    def create(
        self, org_id: str, kind: Kind, fields: dict[str, Any], *, public_url: str, actor: Actor | None = None
    ) -> StoredConfig:
        """A new configuration from the JSON-named `fields`; its id is generated here.

        SAML's audience and recipient default to Coffer's URLs under `public_url`."""
        data = {**fields, "configId": str(uuid.uuid4()), "orgId": org_id}
        config: SamlConfig | OidcConfig
        if kind == "saml":
            config = SamlConfig.create(
                config_id=data["configId"],
                org_id=org_id,
                name=data.get("name", ""),
                idp_entity_id=data.get("idpEntityId", ""),
                certificates=_certificates(data.get("certificates")),
                public_url=public_url,
                sp_audience=data.get("spAudience") or None,
                recipient=data.get("recipient") or None,
                description=data.get("description") or "",
                active=data.get("active", True),
            )
        else:
            config = OidcConfig.from_json(data)
        now = utcnow()
        try:
            with self.db.write() as conn:
                if not self._lock_org(conn, org_id):
                    raise NotFound.resource("organization", org_id[:64])
                self._check_principals_unambiguous(conn, org_id, config)
                count = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(federation_configs)
                    .where(federation_configs.c.org_id == org_id, federation_configs.c.kind == kind)
                ).scalar_one()
                if count >= MAX_CONFIGS_PER_KIND:
                    raise ResourceExhausted(
                        f"an organization may have at most {MAX_CONFIGS_PER_KIND} {_LABEL[kind]}s"
                    )
                conn.execute(
                    federation_configs.insert().values(
                        config_id=config.config_id,
                        org_id=org_id,
                        kind=kind,
                        name=config.name,
                        lookup=_lookup(config),
                        document=json.dumps(config.to_json(), sort_keys=True),
                        created_at=now,
                        updated_at=now,
                        deactivated_at=None if config.active else now,
                    )
                )
                self.db.bump_changes(conn, "federation")
        except sqlalchemy.exc.IntegrityError:
            raise _taken(config) from None
        self.changes.changed()
        self._changed(actor, "Create", kind, org_id, config.config_id, config_name=config.name)
        return StoredConfig(kind, config, now, now, None if config.active else now)

    def update(
        self, org_id: str, kind: Kind, config_id: str, changes: dict[str, Any], *, actor: Actor | None = None
    ) -> StoredConfig:
        """Change the named fields (JSON names); deactivating revokes the config's keys.

        Read, merged and written in one transaction with the row locked (SQLite writers are
        serial anyway), so two edits of different fields at once both land."""
        unknown = sorted(set(changes) - set(UPDATABLE[kind]))
        if unknown:
            raise InvalidArgument.field(
                unknown[0], f"cannot be changed; updatable fields: {', '.join(UPDATABLE[kind])}"
            )
        if not _plausible(config_id):
            raise _not_found(kind, config_id)
        config: SamlConfig | OidcConfig | None = None
        try:
            with self.db.write() as conn:
                self._lock_org(conn, org_id)  # orders this edit with the org's other config writes
                query = sa.select(federation_configs).where(*self._where(org_id, kind, config_id))
                if conn.dialect.name == "postgresql":
                    query = query.with_for_update()
                row = conn.execute(query).first()
                if row is None:
                    raise _not_found(kind, config_id)
                current = self._stored(row)
                merged = {**current.config.to_json(), **changes}
                if kind == "saml":
                    merged["certificates"] = list(_certificates(merged.get("certificates")))
                if kind == "oidc" and merged.get("jwks") is None:
                    merged.pop("jwks", None)
                config = _from_document(kind, json.dumps(merged))
                self._check_principals_unambiguous(conn, org_id, config)
                now = utcnow()
                deactivated = current.deactivated_at
                if config.active:
                    deactivated = None
                elif deactivated is None:
                    deactivated = now
                conn.execute(
                    federation_configs.update()
                    .where(*self._where(org_id, kind, config_id))
                    .values(
                        name=config.name,
                        lookup=_lookup(config),
                        document=json.dumps(config.to_json(), sort_keys=True),
                        updated_at=now,
                        deactivated_at=deactivated,
                    )
                )
                if not config.active:
                    self._revoke_keys(conn, config_id, now)
                self.db.bump_changes(conn, "federation")
        except sqlalchemy.exc.IntegrityError:
            assert config is not None  # only the UPDATE can violate a constraint
            raise _taken(config) from None
        self.changes.changed()
        self._changed(actor, "Update", kind, org_id, config_id, changed=sorted(changes), active=config.active)
        return StoredConfig(kind, config, current.created_at, now, deactivated)

    def delete(self, org_id: str, kind: Kind, config_id: str, *, actor: Actor | None = None) -> int:
        """Remove a configuration and revoke the keys minted through it; how many were revoked."""
        if not _plausible(config_id):
            raise _not_found(kind, config_id)
        now = utcnow()
        with self.db.write() as conn:
            deleted = conn.execute(
                federation_configs.delete().where(*self._where(org_id, kind, config_id))
            ).rowcount
            if not deleted:
                raise _not_found(kind, config_id)
            revoked = self._revoke_keys(conn, config_id, now)
            self.db.bump_changes(conn, "federation")
        self.changes.changed()
        self._changed(actor, "Delete", kind, org_id, config_id, revoked_keys=revoked)
        return revoked

    def _changed(
        self, actor: Actor | None, verb: str, kind: Kind, org_id: str, config_id: str, **fields: Any
    ) -> None:
        """The audit line of a committed config write: the RPC it is (`cwobject:UpdateSAMLConfig`)."""
        if actor is None:
            return
        self.audit(
            "federation_config_changed",
            action=f"cwobject:{verb}{kind.upper()}Config",
            config_id=config_id,
            actor=actor.name,
            org_id=org_id,
            **fields,
        )

    # --- reading ---------------------------------------------------------------------------
    def get(self, org_id: str, kind: Kind, config_id: str) -> StoredConfig:
        """A configuration of this organization; another org's is as unknown as a made-up id."""
        if not _plausible(config_id):
            raise _not_found(kind, config_id)
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(federation_configs).where(*self._where(org_id, kind, config_id))
            ).first()
        if row is None:
            raise _not_found(kind, config_id)
        return self._stored(row)

    def list_configs(self, org_id: str, kind: Kind) -> list[StoredConfig]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(federation_configs)
                .where(federation_configs.c.org_id == org_id, federation_configs.c.kind == kind)
                .order_by(federation_configs.c.name)
            ).all()
        return [self._stored(r) for r in rows]

    def active_oidc(self, org_id: str) -> list[OidcConfig]:
        """The org's active OIDC configs, lowest config id first (the verifier's tie-break)."""
        return self._cache.get(("oidc", org_id), lambda: self._load_active_oidc(org_id))

    def _load_active_oidc(self, org_id: str) -> list[OidcConfig]:
        with self.db.query() as conn:
            rows = conn.execute(
                sa.select(federation_configs.c.document)
                .where(
                    federation_configs.c.org_id == org_id,
                    federation_configs.c.kind == "oidc",
                    federation_configs.c.deactivated_at.is_(None),
                )
                .order_by(federation_configs.c.config_id)
            ).scalars()
            configs = [_from_document("oidc", doc) for doc in rows]
        return [c for c in configs if isinstance(c, OidcConfig)]

    def saml(self, org_id: str, config_id: str) -> SamlConfig | None:
        """The SAML config an exchange names, or None if this org has none by that id."""
        if not _plausible(config_id):
            return None
        return self._cache.get(("saml", org_id, config_id), lambda: self._load_saml(org_id, config_id))

    def _load_saml(self, org_id: str, config_id: str) -> SamlConfig | None:
        with self.db.query() as conn:
            doc = conn.execute(
                sa.select(federation_configs.c.document).where(*self._where(org_id, "saml", config_id))
            ).scalar()
        if doc is None:
            return None
        config = _from_document("saml", doc)
        return config if isinstance(config, SamlConfig) else None

    def require_active(self, conn: Connection, config_id: str) -> None:
        """Inside a mint's transaction: the config still exists and is active.

        The share lock (PostgreSQL) orders the mint against a concurrent deactivate or delete:
        either the mint commits first and the withdrawal revokes its key, or the withdrawal
        commits first and the mint sees it here. SQLite writers are serial anyway."""
        query = sa.select(federation_configs.c.deactivated_at).where(
            federation_configs.c.config_id == config_id
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(read=True)
        row = conn.execute(query).first()
        if row is None or row.deactivated_at is not None:
            raise FederationRejected(
                "config", "the configuration was deactivated or removed during the exchange"
            )

    # --- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _lock_org(conn: Connection, org_id: str) -> bool:
        """Lock the organization's row (PostgreSQL; SQLite writers are serial): the checks
        across an org's configs below must not race another write. False if there is none.

        FOR NO KEY UPDATE, not FOR UPDATE: a mint's insert into access_keys takes FOR KEY SHARE
        on this row (the foreign key) while holding its config row FOR SHARE; FOR UPDATE here,
        followed by this edit's wait for that config row, deadlocked the two."""
        query = sa.select(organizations.c.id).where(organizations.c.id == org_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(key_share=True)
        return conn.execute(query).first() is not None

    @staticmethod
    def _check_principals_unambiguous(conn: Connection, org_id: str, config: SamlConfig | OidcConfig) -> None:
        """OIDC keys are named `role/<issuer>:<sub>`; with issuers `https://a.example` and
        `https://a.example:8443` both trusted, subject `8443:x` of the first would be named as
        subject `x` of the second. Refuse the second issuer instead."""
        if not isinstance(config, OidcConfig):
            return
        others = conn.execute(
            sa.select(federation_configs.c.document).where(
                federation_configs.c.org_id == org_id,
                federation_configs.c.kind == "oidc",
                federation_configs.c.config_id != config.config_id,
            )
        ).scalars()
        mine = config.issuer_url
        for document in others:
            theirs = str(json.loads(document).get("issuerUrl", ""))
            if mine.startswith(theirs + ":") or theirs.startswith(mine + ":"):
                raise InvalidArgument.field(
                    "issuerUrl",
                    f"keys from this issuer and from {theirs} would be named alike "
                    "(role/<issuer>:<sub>); an organization cannot trust both",
                )

    @staticmethod
    def _where(org_id: str, kind: Kind, config_id: str) -> tuple[sa.ColumnElement[bool], ...]:
        return (
            federation_configs.c.config_id == config_id,
            federation_configs.c.org_id == org_id,
            federation_configs.c.kind == kind,
        )

    @staticmethod
    def _stored(row: Row[Any]) -> StoredConfig:
        kind: Kind = "saml" if row.kind == "saml" else "oidc"
        return StoredConfig(
            kind,
            _from_document(kind, row.document),
            as_utc(row.created_at) or utcnow(),
            as_utc(row.updated_at) or utcnow(),
            as_utc(row.deactivated_at),
        )

    def _revoke_keys(self, conn: Connection, config_id: str, now: datetime) -> int:
        """Revoke in the caller's transaction; the caller's one change-counter bump (every config
        write makes one, and any bump empties every cache) makes the revocation seen."""
        count = conn.execute(
            access_keys.update()
            .where(access_keys.c.federation_config_id == config_id, access_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        ).rowcount
        return int(count or 0)


def _taken(config: SamlConfig | OidcConfig) -> AlreadyExists:
    """A unique-constraint failure, named by what is already taken."""
    if isinstance(config, OidcConfig):
        return AlreadyExists(
            f"an OIDC configuration named {config.name!r}, or one for this issuerUrl and "
            "audience, already exists in the organization"
        )
    return AlreadyExists(f"a SAML configuration named {config.name!r} already exists in the organization")


def _certificates(value: object) -> tuple[str, ...]:
    """PEM certificates as a list, or several PEM blocks in one string (a pasted chain)."""
    if isinstance(value, str):
        blocks = [b for b in value.split("-----END CERTIFICATE-----") if b.strip()]
        return tuple(b.strip() + "\n-----END CERTIFICATE-----\n" for b in blocks)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise InvalidArgument.field("certificates", "must be a list of PEM X.509 certificates")
