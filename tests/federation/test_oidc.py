"""OIDC token verification with real keys and real signatures (keys served inline here; the
HTTP JWKS provider has its own tests against a real server)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from coffer.errors import InvalidArgument, Kind
from coffer.federation import (
    FederationError,
    FederationMalformed,
    FederationRejected,
    OidcConfig,
    OidcIdentity,
    StaticJwksProvider,
    verify_oidc_token,
)
from tests.support.idp import (
    NOW,
    OIDC_AUDIENCE,
    Key,
    b64url,
    default_claims,
    ec_key,
    ed_key,
    mint_jwt,
    rsa_key,
    unsigned_jwt,
)

ISSUER = "https://idp.example.test/oidc"
RSA = rsa_key("oidc-rsa")


def config(**overrides: Any) -> OidcConfig:
    base = OidcConfig(
        config_id="cfg-oidc-1",
        org_id="org-1",
        name="k8s-cluster",
        issuer_url=ISSUER,
        audience=OIDC_AUDIENCE,
        description="the training cluster",
    )
    return replace(base, **overrides) if overrides else base


def provider(*jwks: dict[str, Any], issuer: str = ISSUER) -> StaticJwksProvider:
    return StaticJwksProvider({issuer: {"keys": list(jwks) or [RSA.jwk("k1")]}})


class CountingProvider:
    """A JwksProvider that records refreshes and serves a second key set after the first."""

    def __init__(self, first: list[dict[str, Any]], after_refresh: list[dict[str, Any]] | None) -> None:
        self.first = {"keys": first}
        self.after = None if after_refresh is None else {"keys": after_refresh}
        self.gets = 0
        self.refreshes = 0

    def get_jwks(self, issuer: str, *, now: datetime) -> dict[str, Any]:
        self.gets += 1
        return self.first

    def refresh_jwks(self, issuer: str, *, now: datetime) -> dict[str, Any] | None:
        self.refreshes += 1
        return self.after


class NoNetwork:
    def get_jwks(self, issuer: str, *, now: datetime) -> dict[str, Any]:
        raise AssertionError("the provider must not be consulted")

    def refresh_jwks(self, issuer: str, *, now: datetime) -> dict[str, Any] | None:
        raise AssertionError("the provider must not be consulted")


def verify(
    token: str, *, cfgs: list[OidcConfig] | None = None, jwks: Any = None, now: datetime = NOW
) -> OidcIdentity:
    return verify_oidc_token(token, cfgs or [config()], now=now, jwks_provider=jwks or provider())


def refused(check: str, token: str, **kwargs: Any) -> FederationError:
    with pytest.raises(FederationError) as info:
        verify(token, **kwargs)
    assert info.value.check == check, f"expected {check!r}, got {info.value}"
    return info.value


# --- good paths ---------------------------------------------------------------------------


def test_rs256_token_verifies_to_role_principal() -> None:
    identity = verify(mint_jwt(RSA, issuer=ISSUER))
    assert identity.principal_name == f"role/{ISSUER}:system:serviceaccount:ml:trainer"
    assert identity.subject == "system:serviceaccount:ml:trainer"
    assert identity.issuer == ISSUER
    assert identity.audience == OIDC_AUDIENCE
    assert identity.config_id == "cfg-oidc-1"
    assert identity.org_id == "org-1"
    assert identity.expires_at == NOW + timedelta(hours=1)
    assert identity.issued_at == NOW - timedelta(seconds=5)


def test_identity_carries_no_other_claims() -> None:
    """minio #8933: IdP claims must not leak into what we mint."""
    identity = verify(mint_jwt(RSA, issuer=ISSUER, groups=["admins"]))
    dumped = json.dumps(identity.__dict__, default=str)
    assert "secret-claim@example.com" not in dumped
    assert "admins" not in dumped


@pytest.mark.parametrize(
    ("key", "alg", "jwk_extra"),
    [
        (rsa_key("oidc-rsa"), "RS384", {}),
        (rsa_key("oidc-rsa"), "RS512", {}),
        (rsa_key("oidc-rsa"), "PS256", {}),
        (ec_key("oidc-ec"), "ES256", {}),
        (ec_key("oidc-ec384", "P-384"), "ES384", {}),
        (ed_key("oidc-ed"), "EdDSA", {}),
        (rsa_key("oidc-rsa"), "RS256", {"alg": "RS256", "use": "sig", "key_ops": ["verify"]}),
    ],
)
def test_asymmetric_algorithms_verify(key: Key, alg: str, jwk_extra: dict[str, Any]) -> None:
    token = mint_jwt(key, issuer=ISSUER, alg=alg)
    identity = verify(token, jwks=provider(key.jwk("k1", **jwk_extra)))
    assert identity.subject == "system:serviceaccount:ml:trainer"


def test_audience_list_containing_ours_verifies() -> None:
    token = mint_jwt(RSA, issuer=ISSUER, aud=["other", OIDC_AUDIENCE])
    assert verify(token).audience == OIDC_AUDIENCE


def test_config_chosen_by_issuer_and_audience() -> None:
    other_issuer = config(config_id="cfg-other", issuer_url="https://other.example.test")
    second_audience = config(config_id="cfg-second", audience="second-aud")
    token = mint_jwt(RSA, issuer=ISSUER, aud="second-aud")
    assert verify(token, cfgs=[other_issuer, config(), second_audience]).config_id == "cfg-second"


def test_missing_kid_with_a_single_key_verifies() -> None:
    assert verify(mint_jwt(RSA, issuer=ISSUER, kid=None)).subject


def test_inline_jwks_used_without_the_provider() -> None:
    cfg = config(jwks={"keys": [RSA.jwk("k1")]})
    assert verify(mint_jwt(RSA, issuer=ISSUER), cfgs=[cfg], jwks=NoNetwork()).config_id == "cfg-oidc-1"


def test_skew_tolerated() -> None:
    token = mint_jwt(RSA, issuer=ISSUER, nbf=int((NOW + timedelta(seconds=50)).timestamp()))
    assert verify(token).subject
    late = NOW + timedelta(hours=1, seconds=30)
    assert verify(mint_jwt(RSA, issuer=ISSUER), now=late).subject


# --- lifetime ---------------------------------------------------------------------------------


def test_key_lifetime_clipped_to_exp_and_reported_truthfully() -> None:
    """Unlike minio #20473, the clipped expiry is what we return, not the requested one."""
    identity = verify(mint_jwt(RSA, issuer=ISSUER, lifetime=timedelta(minutes=15)))
    lifetime = identity.key_lifetime(43200, now=NOW)
    assert lifetime.expires_at == NOW + timedelta(minutes=15)
    assert lifetime.duration_seconds == 900
    assert lifetime.clipped is True


def test_key_lifetime_never_beyond_twelve_hours() -> None:
    identity = verify(mint_jwt(RSA, issuer=ISSUER, lifetime=timedelta(days=3)))
    assert identity.key_lifetime(0, now=NOW).duration_seconds == 43200
    assert identity.key_lifetime(50000, now=NOW).duration_seconds == 43200
    assert identity.key_lifetime(300, now=NOW).duration_seconds == 300


def test_key_lifetime_refused_when_token_ends_now() -> None:
    identity = verify(mint_jwt(RSA, issuer=ISSUER, lifetime=timedelta(seconds=10)))
    with pytest.raises(FederationRejected) as info:
        identity.key_lifetime(600, now=NOW + timedelta(seconds=10))
    assert info.value.check == "lifetime"


# --- algorithm attacks -------------------------------------------------------------------------


def test_alg_none_refused() -> None:
    for alg in ("none", "None", "NONE"):
        refused("algorithm", unsigned_jwt({"alg": alg, "kid": "k1"}, default_claims(ISSUER)))


def test_hmac_with_the_public_key_as_secret_refused() -> None:
    """The classic confusion: HS256 keyed with the IdP's public key, which anyone can fetch."""
    header = {"alg": "HS256", "kid": "k1", "typ": "JWT"}
    h = b64url(json.dumps(header).encode())
    p = b64url(json.dumps(default_claims(ISSUER)).encode())
    for secret in (RSA.public_pem, json.dumps(RSA.jwk("k1")).encode()):
        mac = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
        error = refused("algorithm", f"{h}.{p}.{b64url(mac)}")
        assert isinstance(error, FederationRejected)


@pytest.mark.parametrize("alg", ["HS384", "HS512", "ES512", "RS1", "ES256K", "PS999"])
def test_other_algorithms_refused(alg: str) -> None:
    refused("algorithm", unsigned_jwt({"alg": alg, "kid": "k1"}, default_claims(ISSUER), b"sig"))


def test_alg_that_does_not_fit_the_key_refused() -> None:
    ec = ec_key("oidc-ec")
    token = mint_jwt(ec, issuer=ISSUER, alg="ES256", kid="rsa")
    refused("algorithm", token, jwks=provider(RSA.jwk("rsa"), ec.jwk("ec")))


def test_es256_token_against_p384_key_refused() -> None:
    p384 = ec_key("oidc-ec384", "P-384")
    token = unsigned_jwt({"alg": "ES256", "kid": "k1"}, default_claims(ISSUER), b"x" * 64)
    refused("algorithm", token, jwks=provider(p384.jwk("k1")))


def test_key_pinned_to_another_alg_refused() -> None:
    token = mint_jwt(RSA, issuer=ISSUER, alg="RS256")
    refused("algorithm", token, jwks=provider(RSA.jwk("k1", alg="PS256")))


def test_encryption_key_not_used_for_signatures() -> None:
    token = mint_jwt(RSA, issuer=ISSUER)
    refused("kid", token, jwks=provider(RSA.jwk("k1", use="enc")))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_short_rsa_key_refused() -> None:
    weak = rsa_key("oidc-weak", 1024)
    refused("key", mint_jwt(weak, issuer=ISSUER), jwks=provider(weak.jwk("k1")))


def test_unusable_jwk_refused() -> None:
    broken = {"kty": "RSA", "kid": "k1", "e": "AQAB"}  # no modulus
    refused("key", mint_jwt(RSA, issuer=ISSUER), jwks=provider(broken))


def test_crit_header_refused() -> None:
    header = {"alg": "RS256", "kid": "k1", "crit": ["urn:example:bind"], "urn:example:bind": 1}
    refused("header", unsigned_jwt(header, default_claims(ISSUER), b"sig"))


# --- keys and kid ---------------------------------------------------------------------------------


def test_token_signed_by_another_key_refused() -> None:
    refused("signature", mint_jwt(rsa_key("stranger"), issuer=ISSUER))


def test_tampered_payload_refused() -> None:
    token = mint_jwt(RSA, issuer=ISSUER)
    header, _payload, signature = token.split(".")
    claims = default_claims(ISSUER) | {"sub": "system:serviceaccount:kube-system:admin"}
    forged = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
    refused("signature", forged)


def test_unknown_kid_refused_after_exactly_one_refresh() -> None:
    jwks = CountingProvider([RSA.jwk("k1")], after_refresh=[RSA.jwk("k1")])
    refused("kid", mint_jwt(RSA, issuer=ISSUER, kid="k-unknown"), jwks=jwks)
    assert jwks.refreshes == 1


def test_unknown_kid_found_after_rotation() -> None:
    new = rsa_key("oidc-rotated")
    jwks = CountingProvider([RSA.jwk("k1")], after_refresh=[RSA.jwk("k1"), new.jwk("k2")])
    identity = verify(mint_jwt(new, issuer=ISSUER, kid="k2"), jwks=jwks)
    assert identity.subject
    assert jwks.refreshes == 1


def test_known_kid_needs_no_refresh() -> None:
    jwks = CountingProvider([RSA.jwk("k1")], after_refresh=None)
    verify(mint_jwt(RSA, issuer=ISSUER), jwks=jwks)
    assert (jwks.gets, jwks.refreshes) == (1, 0)


def test_declined_refresh_refuses_unknown_kid() -> None:
    jwks = CountingProvider([RSA.jwk("k1")], after_refresh=None)
    refused("kid", mint_jwt(RSA, issuer=ISSUER, kid="nope"), jwks=jwks)


def test_missing_kid_with_several_keys_refused() -> None:
    token = mint_jwt(RSA, issuer=ISSUER, kid=None)
    refused("kid", token, jwks=provider(RSA.jwk("k1"), rsa_key("other").jwk("k2")))


def test_duplicate_kid_refused() -> None:
    token = mint_jwt(RSA, issuer=ISSUER)
    refused("kid", token, jwks=provider(RSA.jwk("k1"), rsa_key("other").jwk("k1")))


def test_inline_jwks_never_refreshes() -> None:
    cfg = config(jwks={"keys": [RSA.jwk("k1")]})
    refused("kid", mint_jwt(RSA, issuer=ISSUER, kid="k9"), cfgs=[cfg], jwks=NoNetwork())


# --- claims --------------------------------------------------------------------------------------


def test_unknown_issuer_refused() -> None:
    refused("issuer", mint_jwt(RSA, issuer="https://evil.example.test"))


def test_issuer_must_match_exactly() -> None:
    refused("issuer", mint_jwt(RSA, issuer=ISSUER + "/"))


def test_inactive_config_refused() -> None:
    refused("issuer", mint_jwt(RSA, issuer=ISSUER), cfgs=[config(active=False)])


def test_wrong_audience_refused() -> None:
    refused("audience", mint_jwt(RSA, issuer=ISSUER, aud="someone-else"))
    refused("audience", mint_jwt(RSA, issuer=ISSUER, aud=["a", "b"]))
    refused("audience", mint_jwt(RSA, issuer=ISSUER, drop=("aud",)))


@pytest.mark.parametrize("claim", ["exp", "iat", "sub"])
def test_required_claims(claim: str) -> None:
    refused("claims", mint_jwt(RSA, issuer=ISSUER, drop=(claim,)))


def test_expired_token_refused() -> None:
    token = mint_jwt(RSA, issuer=ISSUER, lifetime=timedelta(minutes=10))
    refused("expired", token, now=NOW + timedelta(minutes=11, seconds=1))


def test_not_yet_valid_token_refused() -> None:
    refused("not_yet_valid", mint_jwt(RSA, issuer=ISSUER, nbf=int((NOW + timedelta(minutes=5)).timestamp())))


def test_issued_in_the_future_refused() -> None:
    refused(
        "issued_in_future", mint_jwt(RSA, issuer=ISSUER, iat=int((NOW + timedelta(minutes=5)).timestamp()))
    )


@pytest.mark.parametrize("value", ["1700000000", True, None, 10**20, 253402300799, -1, 2.5e11])
def test_exp_must_be_a_sane_number(value: object) -> None:
    token = mint_jwt(RSA, issuer=ISSUER, exp=value)
    refused("claims", token)


@pytest.mark.parametrize("sub", ["*", "team/*", "a\nb", "x" * 256, ""])
def test_subjects_that_cannot_be_principals_refused(sub: str) -> None:
    error = refused("subject", mint_jwt(RSA, issuer=ISSUER, sub=sub))
    assert "\n" not in str(error)


# --- malformed input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.b.c.d", "!!!.???.###", "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln", "x" * 20000],
)
def test_malformed_tokens_are_invalid_arguments(token: str) -> None:
    with pytest.raises(FederationMalformed) as info:
        verify(token)
    assert info.value.kind is Kind.INVALID_ARGUMENT


def test_deeply_nested_header_is_malformed_not_a_crash() -> None:
    for depth in (300, 1500, 5000):
        header = b64url(b"[" * depth)
        with pytest.raises(FederationMalformed) as info:
            verify(f"{header}.{b64url(b'{}')}.c2ln")
        assert info.value.check == "token"


@pytest.mark.parametrize(
    "member",
    [{"crv": ["P-256"]}, {"use": ["sig"]}, {"alg": {"x": 1}}, {"key_ops": "verify"}, {"key_ops": [1]}],
)
def test_jwks_members_of_the_wrong_type_refused(member: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        provider({**ec_key("odd").jwk("k1"), **member})
    with pytest.raises(InvalidArgument):
        config(jwks={"keys": [{**ec_key("odd").jwk("k1"), **member}]})


def test_errors_do_not_echo_the_token() -> None:
    token = mint_jwt(RSA, issuer=ISSUER, aud="nobody")
    error = refused("audience", token)
    assert token.split(".")[1][:20] not in str(error)
    assert error.kind is Kind.UNAUTHENTICATED


# --- configuration ------------------------------------------------------------------------------


def test_config_round_trips_through_json() -> None:
    cfg = config(jwks={"keys": [RSA.jwk("k1")]})
    assert OidcConfig.from_json(cfg.to_json()) == cfg
    assert OidcConfig.from_json(config().to_json()) == config()
    assert "jwks" not in config().to_json()


@pytest.mark.parametrize(
    "issuer",
    [
        "http://127.0.0.1:8080",
        "http://localhost:9000/realms/x",
        "http://[::1]:5556/dex",
        "https://idp.example.test",
        "https://idp.example.test/path/" + "p" * 900,
    ],
)
def test_valid_issuers(issuer: str) -> None:
    assert config(issuer_url=issuer).issuer_url == issuer


@pytest.mark.parametrize(
    "issuer",
    [
        "http://idp.example.test",
        "http://10.0.0.1",
        "http://127.0.0.1.nip.io",
        "ftp://idp.example.test",
        "idp.example.test",
        "https://",
        "https://user:pw@idp.example.test",
        "https://idp.example.test/?q=1",
        "https://idp.example.test/#frag",
        "https://idp.example.test/ space",
        "https://idp.example.test/" + "p" * 1024,
        "",
    ],
)
def test_invalid_issuers_refused(issuer: str) -> None:
    with pytest.raises(InvalidArgument):
        config(issuer_url=issuer)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", "has space"),
        ("name", "n" * 256),
        ("name", "dots.not.allowed"),
        ("audience", ""),
        ("audience", "a" * 1025),
        ("description", "d" * 1025),
        ("active", "yes"),
        ("jwks", {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
        ("jwks", {"keys": [{"kty": "RSA", "n": "x", "e": "AQAB", "d": "private"}]}),
        ("jwks", {"nokeys": []}),
    ],
)
def test_invalid_config_fields_refused(field: str, value: object) -> None:
    with pytest.raises(InvalidArgument):
        config(**{field: value})


def test_name_limits() -> None:
    assert config(name="n" * 255).name == "n" * 255
    assert config(name="A-z_0").name == "A-z_0"
