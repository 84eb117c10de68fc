"""Workload identity federation: verify SAML assertions and OIDC tokens from an org's IdP.

Pure verifiers with injected time, replay cache and key provider; the HTTP routes and the
storage of configurations live elsewhere and call into this package.
"""

from coffer.federation.errors import (
    FederationError,
    FederationMalformed,
    FederationRejected,
    FederationUnavailable,
)
from coffer.federation.jwks import HttpJwksProvider, JwksProvider, StaticJwksProvider
from coffer.federation.lifetime import (
    CLOCK_SKEW,
    MAX_FEDERATED_SECONDS,
    KeyLifetime,
    federated_key_lifetime,
)
from coffer.federation.oidc import OidcConfig, OidcIdentity, verify_oidc_token
from coffer.federation.replay import InMemoryReplayCache, ReplayCache
from coffer.federation.saml import SamlConfig, SamlIdentity, verify_saml_response

__all__ = [
    "CLOCK_SKEW",
    "MAX_FEDERATED_SECONDS",
    "FederationError",
    "FederationMalformed",
    "FederationRejected",
    "FederationUnavailable",
    "HttpJwksProvider",
    "InMemoryReplayCache",
    "JwksProvider",
    "KeyLifetime",
    "OidcConfig",
    "OidcIdentity",
    "ReplayCache",
    "SamlConfig",
    "SamlIdentity",
    "StaticJwksProvider",
    "federated_key_lifetime",
    "verify_oidc_token",
    "verify_saml_response",
]
