"""Temporary keys for workloads that prove who they are with their IdP's SAML or OIDC word.

The verifiers (coffer.federation) decide whether the credential is trustworthy; this module
finds the organization's configuration, mints the key with the identity the credential
vouches for, and records which configuration it came through (so withdrawing the config
revokes the key). Nothing here trusts a field of the request beyond choosing a config.

A mint made for a call (`action`, the face's `cwobject:` action) is audited twice, after it
committed: `access_key_minted` (by the key service) and `federated_sign_in`. The actor is the
principal the credential vouches for; refusals are audited by the face (`federation_denied`),
which alone knows how far the request got.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from coffer.audit import Actor, AuditSink
from coffer.errors import InvalidArgument
from coffer.federation import (
    MAX_FEDERATED_SECONDS,
    FederationRejected,
    JwksProvider,
    KeyLifetime,
    OidcIdentity,
    SamlIdentity,
    verify_oidc_token,
    verify_saml_response,
)
from coffer.identity.accesskeys import MAX_PRINCIPAL, AccessKeyService
from coffer.identity.federation_configs import FederationConfigs
from coffer.identity.models import KeySource, MintedKey, utcnow
from coffer.identity.replay import SqlReplayCache
from coffer.policy.scope import KeyScope


@dataclass(frozen=True)
class FederatedKey:
    """A minted key with the identity it was minted for and how its lifetime was decided."""

    minted: MintedKey
    identity: SamlIdentity | OidcIdentity
    lifetime: KeyLifetime


@dataclass(eq=False)
class FederatedKeys:
    """CreateAccessKeyFromSAML, CreateAccessKeyFromOIDC and the OIDC container exchange."""

    configs: FederationConfigs
    keys: AccessKeyService
    _: KW_ONLY
    replay_cache: SqlReplayCache
    jwks_provider: JwksProvider
    audit: AuditSink
    max_duration: int = MAX_FEDERATED_SECONDS

    def __post_init__(self) -> None:
        self.max_duration = min(self.max_duration, MAX_FEDERATED_SECONDS)  # settings may only lower it

    def from_saml(
        self,
        org_id: str,
        config_id: str,
        saml_response: str,
        duration_seconds: int,
        attributes: dict[str, str] | None = None,
        *,
        scope: KeyScope | None = None,
        action: str | None = None,
        client: str | None = None,
    ) -> FederatedKey:
        """A key for a SAML assertion; `scope` (a session policy, as STS's `Policy`) narrows it
        below its roles, never above: the decision intersects the two."""
        self._check_duration(duration_seconds)
        config = self.configs.saml(org_id, config_id)
        if config is None:
            # The same answer as an inactive config: an anonymous caller learns nothing
            # about which organizations or configurations exist.
            raise FederationRejected(
                "config", "the organization has no active SAML configuration with this configId"
            )
        now = utcnow()
        claim = _DeferredClaim()
        identity = verify_saml_response(saml_response, config, now=now, replay_cache=claim)
        lifetime = identity.key_lifetime(duration_seconds or self.max_duration, now=now)
        roles = identity.role_principals

        def trusted_and_first_use(conn: Connection) -> None:
            self.configs.require_active(conn, identity.config_id)
            if not claim.commit(conn, self.replay_cache, now):
                raise FederationRejected("replay", "this assertion has already been used")

        return self._mint(
            identity,
            lifetime,
            _bounded(identity.principal_name, "attributes"),
            _actor(identity.principal_name, action, client),
            source=KeySource.SAML,
            role=roles[0],
            attributes=attributes,
            multi_attributes={"roles": list(roles)},
            precondition=trusted_and_first_use,
            scope=scope,
        )

    def from_oidc(
        self,
        org_id: str,
        token: str,
        duration_seconds: int,
        attributes: dict[str, str] | None = None,
        *,
        with_session_token: bool = False,
        scope: KeyScope | None = None,
        action: str | None = None,
        client: str | None = None,
    ) -> FederatedKey:
        self._check_duration(duration_seconds)
        now = utcnow()
        configs = self.configs.active_oidc(org_id)
        identity = verify_oidc_token(token, configs, now=now, jwks_provider=self.jwks_provider)
        lifetime = identity.key_lifetime(duration_seconds or self.max_duration, now=now)
        principal = _bounded(identity.principal_name, "subject")
        return self._mint(
            identity,
            lifetime,
            principal,
            _actor(principal, action, client),
            source=KeySource.OIDC,
            role=principal,
            attributes=attributes,
            with_session_token=with_session_token,
            precondition=self._still_trusted(identity.config_id),
            scope=scope,
        )

    def _mint(
        self,
        identity: SamlIdentity | OidcIdentity,
        lifetime: KeyLifetime,
        principal: str,
        actor: Actor | None,
        *,
        source: KeySource,
        role: str,
        attributes: dict[str, str] | None,
        precondition: Callable[[Connection], None],
        scope: KeyScope | None,
        multi_attributes: dict[str, list[str]] | None = None,
        with_session_token: bool = False,
    ) -> FederatedKey:
        """The key a verified identity earned, bound to its config, and its sign-in audited."""
        minted = self.keys.mint(
            # who: the principal the credential vouches for
            org_id=identity.org_id,
            principal_name=principal,
            role=role,
            source=source,
            # how long: the credential's own lifetime clips the one asked for
            duration_seconds=lifetime.duration_seconds,
            max_duration=self.max_duration,
            not_after=lifetime.expires_at,
            # what the key carries
            attributes=attributes,
            multi_attributes=multi_attributes,
            with_session_token=with_session_token,
            scope=scope,
            # bound to its config: withdrawing the config revokes the key
            federation_config_id=identity.config_id,
            precondition=precondition,
            actor=actor,
        )
        result = FederatedKey(minted, identity, lifetime)
        if actor is not None:
            key = minted.key
            self.audit(
                "federated_sign_in",
                action=actor.action,
                access_key_id=key.access_key_id,
                principal=key.principal_name,
                roles=list(key.multi_attributes.get("roles", [])),
                org_id=key.org_id,
                config_id=identity.config_id,
                issuer=identity.issuer,
                lifetime_clipped=lifetime.clipped,
                client=actor.client,
            )
        return result

    def _still_trusted(self, config_id: str) -> Callable[[Connection], None]:
        return lambda conn: self.configs.require_active(conn, config_id)

    def close(self) -> None:
        close = getattr(self.jwks_provider, "close", None)
        if close is not None:
            close()

    def _check_duration(self, duration_seconds: int) -> None:
        """Before the credential is looked at, so a bad request never uses up an assertion."""
        if duration_seconds > self.max_duration:
            raise InvalidArgument.field(
                "durationSeconds",
                f"must be at most {self.max_duration} seconds (0 asks for the longest allowed)",
            )


class _DeferredClaim:
    """The verifier's replay check, postponed into the mint's transaction.

    The verifier asks for the assertion ID last, once every check passed; recording it there
    would cost a commit of its own and burn the ID even if the mint then failed. Recorded in
    the mint's transaction instead, the ID is consumed exactly when the key exists.
    """

    def __init__(self) -> None:
        self.key: str | None = None
        self.expires_at: datetime | None = None

    def check_and_store(self, key: str, *, expires_at: datetime, now: datetime) -> bool:
        self.key, self.expires_at = key, expires_at
        return True

    def commit(self, conn: Connection, cache: SqlReplayCache, now: datetime) -> bool:
        if self.key is None or self.expires_at is None:
            raise RuntimeError("the verifier accepted an assertion without asking for its replay check")
        return cache.claim(conn, self.key, expires_at=self.expires_at, now=now)


def _actor(principal: str, action: str | None, client: str | None) -> Actor | None:
    """The mint's actor: the principal the credential vouches for, when the mint is audited."""
    return Actor(principal, action, client) if action is not None else None


def _bounded(principal: str, check: str) -> str:
    """A principal the rest of the API can name (RevokeAccessKeysByPrincipal, policies)."""
    if len(principal) > MAX_PRINCIPAL:
        raise FederationRejected(
            check, f"the resulting principal would be longer than {MAX_PRINCIPAL} characters"
        )
    return principal
