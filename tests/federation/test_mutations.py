"""Property tests: random mutations of signed credentials never verify, unless they change nothing.

"Changes nothing" is defined strictly and checked, not assumed: for SAML, the document with its
ds:Signature elements set aside must canonicalise to exactly the original bytes (whitespace
inside tags, quote style and similar are not content; a signature value that decodes to the
same bytes is not content either). For JWTs, the three decoded segments must be identical.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from coffer.federation import (
    FederationError,
    InMemoryReplayCache,
    OidcConfig,
    StaticJwksProvider,
    verify_oidc_token,
    verify_saml_response,
)
from coffer.federation.saml import DS_NS, SAML_NS
from tests.support.idp import (
    NOW,
    OIDC_AUDIENCE,
    AssertionSpec,
    build_assertion,
    mint_jwt,
    rsa_key,
    saml_config,
    sign,
    signed_response,
)

CONFIG = saml_config()
SAML_NS_ASSERTION = f"{{{SAML_NS}}}Assertion"


def _spec(name: str) -> AssertionSpec:
    return AssertionSpec(assertion_id=f"_fixed-{name}-a", response_id=f"_fixed-{name}-r")


# Three shapes, and what each one's signatures protect. When both elements are signed, the
# Response signature may be broken (e.g. its namespace mangled) and the document still
# verifies on the assertion's signature alone, exactly as if the IdP had signed only that:
# then the assertion is what must be untouched.
TARGETS: dict[str, tuple[bytes, str]] = {
    "response-signed": (
        etree.tostring(signed_response(_spec("r"), sign_assertion=False, sign_response=True)),
        "doc",
    ),
    "assertion-only": (etree.tostring(sign(build_assertion(_spec("b")), rsa_key("idp"))), "doc"),
    "both-signed": (etree.tostring(signed_response(_spec("rb"), sign_response=True)), "assertion"),
}


def _protected_c14n(raw: bytes, scope: str) -> bytes | None:
    """Canonical bytes of the protected content without signatures; None if it does not parse."""
    try:
        root = etree.fromstring(raw, parser=etree.XMLParser(resolve_entities=False, no_network=True))
        if scope == "assertion":
            root = root.find(SAML_NS_ASSERTION) if root.tag != SAML_NS_ASSERTION else root
            if root is None:
                return None
            root = etree.fromstring(etree.tostring(root))
        for signature in list(root.iter(f"{{{DS_NS}}}Signature")):
            signature.getparent().remove(signature)
        return etree.tostring(root, method="c14n", exclusive=True)
    except (etree.XMLSyntaxError, etree.C14NError):
        return None


def _verify_saml(raw: bytes) -> object:
    return verify_saml_response(
        base64.b64encode(raw).decode(), CONFIG, now=NOW, replay_cache=InMemoryReplayCache()
    )


BASELINES = {name: _verify_saml(raw) for name, (raw, _) in TARGETS.items()}


def mutations(original: bytes) -> st.SearchStrategy[bytes]:
    n = len(original)
    index = st.integers(min_value=0, max_value=n - 1)
    flip = st.tuples(index, st.integers(0, 255)).map(
        lambda t: original[: t[0]] + bytes([t[1]]) + original[t[0] + 1 :]
    )
    bitflip = st.tuples(index, st.integers(0, 7)).map(
        lambda t: original[: t[0]] + bytes([original[t[0]] ^ (1 << t[1])]) + original[t[0] + 1 :]
    )
    delete = st.tuples(index, st.integers(1, 24)).map(lambda t: original[: t[0]] + original[t[0] + t[1] :])
    insert = st.tuples(index, st.binary(min_size=1, max_size=12)).map(
        lambda t: original[: t[0]] + t[1] + original[t[0] :]
    )
    duplicate = st.tuples(index, index, index).map(
        lambda t: original[: t[2]] + original[min(t[0], t[1]) : max(t[0], t[1])] + original[t[2] :]
    )
    return st.one_of(flip, bitflip, delete, insert, duplicate)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_unmutated_responses_verify(target: str) -> None:
    """The property below is only meaningful if each original itself is accepted."""
    raw, scope = TARGETS[target]
    assert BASELINES[target].principal == "alice"  # type: ignore[attr-defined]
    assert _protected_c14n(raw, scope) is not None


@pytest.mark.parametrize("target", sorted(TARGETS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_saml_response_never_verifies(target: str, data: st.DataObject) -> None:
    raw, scope = TARGETS[target]
    mutated = data.draw(mutations(raw))
    try:
        identity = _verify_saml(mutated)
    except FederationError:
        return
    assert _protected_c14n(mutated, scope) == _protected_c14n(raw, scope), "signed content changed"
    assert identity == BASELINES[target]


# --- JWT -----------------------------------------------------------------------------------

ISSUER = "https://idp.example.test"
KEY = rsa_key("jwt-fuzz")
OIDC = OidcConfig(
    config_id="cfg-oidc-fuzz", org_id="org-1", name="fuzz", issuer_url=ISSUER, audience=OIDC_AUDIENCE
)
PROVIDER = StaticJwksProvider({ISSUER: {"keys": [KEY.jwk("k1")]}})
TOKEN = mint_jwt(KEY, issuer=ISSUER, lifetime=timedelta(hours=2))


def _segments(token: str) -> tuple[bytes, ...] | None:
    try:
        return tuple(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)) for s in token.split("."))
    except ValueError:
        return None


def test_the_unmutated_token_verifies() -> None:
    identity = verify_oidc_token(TOKEN, [OIDC], now=NOW, jwks_provider=PROVIDER)
    assert identity.subject == json.loads(_segments(TOKEN)[1])["sub"]  # type: ignore[index]


@settings(max_examples=400, deadline=None)
@given(mutations(TOKEN.encode()))
def test_mutated_jwt_never_verifies(mutated: bytes) -> None:
    try:
        text = mutated.decode("ascii")
        verify_oidc_token(text, [OIDC], now=NOW, jwks_provider=PROVIDER)
    except (FederationError, UnicodeDecodeError):
        return
    assert _segments(text) == _segments(TOKEN), "a mutation of signed content verified"
