"""OIDC workload federation: turn an IdP-signed JWT into a verified identity.

Used by `POST /v1/cwobject/temporary-credentials/oidc` (token in the body) and
`GET /v1/cwobject/temporary-credentials/oidc/{orgId}` (token as the raw Authorization header).
Both are anonymous, so the JWT is the whole credential. The rules, and why:

- Asymmetric algorithms only. `none` would accept an unsigned token; HS* would let anyone who
  has the IdP's *public* key (everyone) forge tokens if a verifier ever fed that key to HMAC.
  The algorithm must also fit the selected key's type and curve.
- The configuration is chosen by the token's `iss`, the key by its `kid`; an unknown `kid`
  refetches the JWKS at most once per interval (rotation without refresh storms).
- `iss`, `aud` (string or list), `exp` (required), `nbf`, `iat` (required, not in the future)
  are all checked against an injected `now`, with a documented skew.
- The identity carries `iss` and `sub` only; no other claim travels into keys (minio #8933).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.exceptions import (
    DecodeError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuerError,
    InvalidKeyError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
    PyJWKError,
)

from coffer.errors import InvalidArgument
from coffer.federation.errors import FederationError, FederationMalformed, FederationRejected, config_text
from coffer.federation.jwks import JwksProvider, validate_jwks
from coffer.federation.lifetime import (
    CLOCK_SKEW,
    EARLIEST_TIME,
    LATEST_TIME,
    KeyLifetime,
    federated_key_lifetime,
)
from coffer.federation.urls import MAX_URL_LENGTH, check_url
from coffer.policy.principals import nameable

ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
MAX_TOKEN_CHARS = 16 * 1024
MAX_HEADER_CHARS = 2048
"""Base64url characters of the JOSE header; real ones (alg, kid, typ) are under 200."""
MAX_SUBJECT_LENGTH = 255
MIN_RSA_BITS = 2048
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_JWT_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat"]

# alg -> (kty, allowed curves or None)
_KEY_TYPES: dict[str, tuple[str, frozenset[str] | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}


# --- configuration -----------------------------------------------------------------------


def validate_issuer_url(value: object, field: str = "issuerUrl") -> str:
    """HTTPS (HTTP for loopback only), at most 1024 characters, no query or fragment (OIDC)."""
    if not isinstance(value, str):
        raise InvalidArgument.field(field, "must be a string")
    problem = check_url(value, what="the issuer URL")
    if problem:
        raise InvalidArgument.field(field, problem)
    if "?" in value:
        raise InvalidArgument.field(field, "the issuer URL must not contain a query")
    return value


@dataclass(frozen=True)
class OidcConfig:
    """An OIDC workload-federation configuration (reference §2.6, `OIDCConfig`).

    `(issuer_url, audience)` identifies a config within an org. `jwks`, when set, pins the keys
    (no network fetch at all): for IdPs unreachable from Coffer, or to freeze trust explicitly.
    """

    config_id: str
    org_id: str
    name: str
    issuer_url: str
    audience: str
    description: str = ""
    active: bool = True
    jwks: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        config_text(self.config_id, "configId", max_len=255, required=True)
        config_text(self.org_id, "orgId", max_len=255, required=True)
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise InvalidArgument.field("name", "must be 1-255 characters of A-Z, a-z, 0-9, '_' or '-'")
        validate_issuer_url(self.issuer_url)
        config_text(self.audience, "audience", max_len=MAX_URL_LENGTH, required=True)
        config_text(self.description, "description", max_len=1024, required=False)
        if not isinstance(self.active, bool):
            raise InvalidArgument.field("active", "must be a boolean")
        if self.jwks is not None:
            try:
                validate_jwks(self.jwks)
            except ValueError as exc:
                raise InvalidArgument.field("jwks", str(exc)) from exc

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "configId": self.config_id,
            "orgId": self.org_id,
            "name": self.name,
            "issuerUrl": self.issuer_url,
            "audience": self.audience,
            "description": self.description,
            "active": self.active,
        }
        if self.jwks is not None:
            out["jwks"] = self.jwks
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OidcConfig:
        if not isinstance(data, dict):
            raise InvalidArgument("an OIDC configuration must be a JSON object")
        for key in ("configId", "orgId", "name", "issuerUrl", "audience"):
            if key not in data:
                raise InvalidArgument.field(key, "is required")
        return cls(
            config_id=data["configId"],
            org_id=data["orgId"],
            name=data["name"],
            issuer_url=data["issuerUrl"],
            audience=data["audience"],
            description=data.get("description", ""),
            active=data.get("active", True),
            jwks=data.get("jwks"),
        )


# --- result ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OidcIdentity:
    """What a verified token vouches for. Deliberately not the claim set."""

    config_id: str
    org_id: str
    issuer: str
    subject: str
    audience: str
    issued_at: datetime
    expires_at: datetime

    @property
    def principal_name(self) -> str:
        """`role/<issuer>:<sub>` (reference §4, newer docs), usable as an org-policy principal."""
        return f"role/{self.issuer}:{self.subject}"

    def key_lifetime(self, duration_seconds: int, *, now: datetime) -> KeyLifetime:
        """min(durationSeconds (0 = longest), 12 h, token exp); the real expiry is returned."""
        return federated_key_lifetime(duration_seconds, now=now, not_after=self.expires_at)


# --- verification ------------------------------------------------------------------------


# What PyJWT's refusals mean, first match wins; anything else is refused as unverifiable.
_DECODE_REFUSALS: tuple[tuple[type[Exception], str, str], ...] = (
    (InvalidSignatureError, "signature", "the token's signature does not verify"),
    (InvalidAudienceError, "audience", "the token is not addressed to a configured audience"),
    (InvalidIssuerError, "issuer", "the token's issuer does not match the configuration"),
    (InvalidAlgorithmError, "algorithm", "the token's alg does not fit the issuer's key"),
)


def _decode_refusal(exc: Exception) -> FederationError:
    for kind, check, message in _DECODE_REFUSALS:
        if isinstance(exc, kind):
            return _rejected(check, message)
    if isinstance(exc, MissingRequiredClaimError):
        return _rejected("claims", f"the token lacks the required '{exc.claim}' claim")
    if isinstance(exc, DecodeError):
        return FederationMalformed("token", "the token cannot be decoded")
    if isinstance(exc, InvalidTokenError):
        return _rejected("claims", "the token's claims are invalid")
    return _rejected("signature", "the token could not be verified")


def _rejected(check: str, message: str) -> FederationRejected:
    return FederationRejected(check, message)


def _key_fits(key: dict[str, Any], alg: str) -> bool:
    kty, curves = _KEY_TYPES[alg]
    if key.get("kty") != kty:
        return False
    if curves is not None and key.get("crv") not in curves:
        return False
    if key.get("use") not in (None, "sig"):
        return False
    if key.get("alg") not in (None, alg):
        return False
    ops = key.get("key_ops")
    return ops is None or (isinstance(ops, list) and "verify" in ops)


def _select_key(jwks: dict[str, Any], kid: str | None, alg: str) -> dict[str, Any] | None:
    """The key for this token, or None when the set does not (yet) contain it."""
    keys = [k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("use") in (None, "sig")]
    if kid is not None:
        named = [k for k in keys if k.get("kid") == kid]
        if not named:
            return None
        if len(named) > 1:
            raise _rejected("kid", "the issuer publishes several keys with this kid")
        if not _key_fits(named[0], alg):
            raise _rejected("algorithm", "the token's alg does not fit the key it names")
        return named[0]
    if len(keys) > 1:
        raise _rejected("kid", "the token has no kid and the issuer publishes several keys")
    if not keys:
        return None
    if not _key_fits(keys[0], alg):
        raise _rejected("algorithm", "the token's alg does not fit the issuer's key")
    return keys[0]


def _header(token: str) -> dict[str, Any]:
    """The JOSE header, parsed here so the algorithm is judged before any library acts on it."""
    segment = token.split(".", 1)[0]
    if len(segment) > MAX_HEADER_CHARS:
        raise FederationMalformed("token", f"the token's header is longer than {MAX_HEADER_CHARS} characters")
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error, RecursionError) as exc:
        # RecursionError: a few thousand nested brackets still fit under the length cap.
        raise FederationMalformed("token", "the token's header is not valid base64url JSON") from exc
    if not isinstance(header, dict):
        raise FederationMalformed("token", "the token's header is not a JSON object")
    return header


def _number(claims: dict[str, Any], name: str, *, required: bool) -> datetime | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise _rejected("claims", f"the token lacks the required '{name}' claim")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _rejected("claims", f"the '{name}' claim must be a number of seconds")
    try:
        moment = datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise _rejected("claims", f"the '{name}' claim is out of range") from exc
    if not EARLIEST_TIME <= moment <= LATEST_TIME:
        # Far enough from datetime's limits that adding the clock skew cannot overflow.
        raise _rejected("claims", f"the '{name}' claim is out of range")
    return moment


def verify_oidc_token(
    token: str,
    configs_for_org: list[OidcConfig] | tuple[OidcConfig, ...],
    *,
    now: datetime,
    jwks_provider: JwksProvider,
) -> OidcIdentity:
    """Verify `token` against the org's OIDC configurations; raises a FederationError."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not isinstance(token, str) or not token:
        raise FederationMalformed("token", "an OIDC token is required")
    if len(token) > MAX_TOKEN_CHARS:
        raise FederationMalformed("token", f"the token is longer than {MAX_TOKEN_CHARS} characters")
    if not _JWT_RE.match(token):
        raise FederationMalformed("token", "the token is not a compact JWS (header.payload.signature)")
    header = _header(token)

    # --- algorithm: decided before any key is looked at ---------------------------------------
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise _rejected("algorithm", "unsigned tokens (alg none) are refused")
    if alg.upper().startswith("HS"):
        raise _rejected("algorithm", "HMAC-signed tokens are refused; the IdP must sign asymmetrically")
    if alg not in ALLOWED_ALGORITHMS:
        raise _rejected("algorithm", f"alg must be one of {', '.join(ALLOWED_ALGORITHMS)}")
    if "crit" in header:
        raise _rejected("header", "critical header extensions are not supported")
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except DecodeError as exc:
        raise FederationMalformed("token", "the token's payload is not a JSON object") from exc
    except InvalidTokenError as exc:
        raise _rejected("header", "the token's header is not acceptable") from exc
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise FederationMalformed("token", "the kid header must be a string")

    # --- configuration: by issuer, then audience ---------------------------------------------
    iss = unverified.get("iss")
    if not isinstance(iss, str) or not iss:
        raise _rejected("claims", "the token lacks the required 'iss' claim")
    by_issuer = [c for c in configs_for_org if c.active and c.issuer_url == iss]
    if not by_issuer:
        raise _rejected("issuer", "no active OIDC configuration trusts this token's issuer")
    aud = unverified.get("aud")
    if isinstance(aud, str):
        audiences = {aud}
    elif isinstance(aud, list):
        audiences = {a for a in aud if isinstance(a, str)}
    else:
        audiences = set()
    matching = sorted((c for c in by_issuer if c.audience in audiences), key=lambda c: c.config_id)
    if not matching:
        raise _rejected("audience", "the token is not addressed to a configured audience")
    config = matching[0]

    # --- key --------------------------------------------------------------------------------
    if config.jwks is not None:
        key = _select_key(config.jwks, kid, alg)
    else:
        key = _select_key(jwks_provider.get_jwks(iss, now=now), kid, alg)
        if key is None:
            refreshed = jwks_provider.refresh_jwks(iss, now=now)  # maybe a rotation
            key = _select_key(refreshed, kid, alg) if refreshed is not None else None
    if key is None:
        raise _rejected("kid", "the token is signed with a key the issuer does not publish")
    try:
        public_key = jwt.PyJWK(key, algorithm=alg).key
    except (PyJWKError, InvalidKeyError, ValueError, TypeError, KeyError) as exc:
        raise _rejected("key", "the issuer's key cannot be used") from exc
    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < MIN_RSA_BITS:
        raise _rejected("key", f"the issuer's RSA key is shorter than {MIN_RSA_BITS} bits")

    # --- signature, iss, aud: PyJWT; times: here, against the injected clock -----------------
    try:
        claims = jwt.decode(
            token,
            key=public_key,
            algorithms=[alg],
            audience=config.audience,
            issuer=config.issuer_url,
            options={
                "verify_signature": True,
                "verify_aud": True,
                "verify_iss": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "require": _REQUIRED_CLAIMS,
            },
        )
    except Exception as exc:  # fail closed on anything else hostile input provokes in a library
        raise _decode_refusal(exc) from exc

    expires_at = _number(claims, "exp", required=True)
    issued_at = _number(claims, "iat", required=True)
    not_before = _number(claims, "nbf", required=False)
    assert expires_at is not None and issued_at is not None
    if now >= expires_at + CLOCK_SKEW:
        raise _rejected("expired", "the token has expired")
    if not_before is not None and now + CLOCK_SKEW < not_before:
        raise _rejected("not_yet_valid", "the token is not valid yet (nbf)")
    if issued_at > now + CLOCK_SKEW:
        raise _rejected("issued_in_future", "the token was issued in the future (iat)")

    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise _rejected("subject", "the token's 'sub' must be a non-empty string")
    if len(subject) > MAX_SUBJECT_LENGTH:
        raise _rejected("subject", f"the token's 'sub' is longer than {MAX_SUBJECT_LENGTH} characters")
    if not nameable(subject):
        raise _rejected(
            "subject",
            "the token's 'sub' contains characters a policy principal cannot hold "
            "(whitespace, control characters, * or ?)",
        )

    return OidcIdentity(
        config_id=config.config_id,
        org_id=config.org_id,
        issuer=config.issuer_url,
        subject=subject,
        audience=config.audience,
        issued_at=issued_at,
        expires_at=expires_at,
    )
