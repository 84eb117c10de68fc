"""SAML verification against real signed Responses: the good paths, then every attack refused."""

from __future__ import annotations

import base64
import copy
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from lxml import etree
from signxml import XMLVerifier
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

from coffer.errors import InvalidArgument, Kind, Unauthenticated
from coffer.federation import (
    FederationError,
    FederationMalformed,
    FederationRejected,
    InMemoryReplayCache,
    SamlConfig,
    SamlIdentity,
    verify_saml_response,
)
from coffer.federation.saml import ATTR_PRINCIPAL_NAME, _simple_text
from tests.support.idp import (
    DS,
    IDP_ENTITY_ID,
    NOW,
    RECIPIENT,
    SP,
    SP_AUDIENCE,
    AssertionSpec,
    S,
    build_assertion,
    build_response,
    ec_key,
    rsa_key,
    saml_config,
    sign,
    signed_response,
    to_b64,
)


def verify(
    doc: etree._Element | bytes | str,
    config: SamlConfig | None = None,
    *,
    now: datetime = NOW,
    cache: InMemoryReplayCache | None = None,
) -> SamlIdentity:
    b64 = doc if isinstance(doc, str) else to_b64(doc)
    return verify_saml_response(
        b64,
        config or saml_config(),
        now=now,
        replay_cache=cache if cache is not None else InMemoryReplayCache(),
    )


def refused(check: str, doc: etree._Element | bytes | str, **kwargs: object) -> FederationError:
    with pytest.raises(FederationError) as info:
        verify(doc, **kwargs)  # type: ignore[arg-type]
    assert info.value.check == check, f"expected check {check!r}, got {info.value}"
    return info.value


def assertion_of(response: etree._Element) -> etree._Element:
    found = response.find(f"{S}Assertion")
    assert found is not None
    return found


# --- good paths ---------------------------------------------------------------------------


def test_assertion_signed_response_verifies() -> None:
    identity = verify(signed_response())
    assert identity.principal == "alice"
    assert identity.principal_name == "saml/alice"
    assert identity.roles == ("Admin",)
    assert identity.role_principals == ("role/Admin",)
    assert identity.name_id == "alice@example.com"
    assert identity.issuer == IDP_ENTITY_ID
    assert identity.org_id == "org-federation-test"
    assert identity.not_on_or_after == NOW + timedelta(hours=1)
    assert identity.session_not_on_or_after == NOW + timedelta(hours=8)


def test_response_signed_only_verifies() -> None:
    identity = verify(signed_response(sign_assertion=False, sign_response=True))
    assert identity.principal_name == "saml/alice"


def test_both_signed_verifies() -> None:
    assert verify(signed_response(sign_response=True)).roles == ("Admin",)


def test_bare_signed_assertion_verifies() -> None:
    assertion = sign(build_assertion(AssertionSpec()), rsa_key("idp"))
    assert verify(assertion).principal == "alice"


@pytest.mark.parametrize(
    "method",
    [SignatureMethod.ECDSA_SHA256, SignatureMethod.ECDSA_SHA384],
)
def test_ec_signature_verifies(method: SignatureMethod) -> None:
    key = ec_key("ec-idp")
    response = signed_response(key=key, signature_algorithm=method, digest_algorithm=DigestAlgorithm.SHA384)
    assert verify(response, saml_config(key)).principal == "alice"


@pytest.mark.parametrize(
    "method", [SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512, SignatureMethod.SHA256_RSA_MGF1]
)
def test_stronger_rsa_signatures_verify(method: SignatureMethod) -> None:
    response = signed_response(signature_algorithm=method, digest_algorithm=DigestAlgorithm.SHA512)
    assert verify(response).principal == "alice"


def test_inclusive_c14n_signature_verifies() -> None:
    """Inclusive c14n signs the in-scope namespaces too, so the IdP signs the document root."""
    inclusive = CanonicalizationMethod.CANONICAL_XML_1_1
    response = signed_response(sign_assertion=False, sign_response=True, c14n_algorithm=inclusive)
    assert verify(response).principal == "alice"
    assertion = sign(build_assertion(AssertionSpec()), rsa_key("idp"), c14n_algorithm=inclusive)
    assert verify(assertion).principal == "alice"


def test_certificate_rotation_accepts_either_configured_cert() -> None:
    old, new = rsa_key("idp"), rsa_key("idp-next")
    config = saml_config(old, new)
    assert verify(signed_response(key=old), config).principal == "alice"
    assert verify(signed_response(key=new), config).principal == "alice"


def test_rotation_tries_the_certificate_keyinfo_names_first(monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = rsa_key("idp"), rsa_key("idp-next")
    config = saml_config(old, new)
    tried: list[object] = []
    real = XMLVerifier.verify

    def counting(self: XMLVerifier, *args: Any, **kwargs: Any) -> Any:
        tried.append(kwargs["x509_cert"])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(XMLVerifier, "verify", counting)
    assert verify(signed_response(key=new), config).principal == "alice"
    assert tried == [config.signing_certificates[1]], "the named certificate alone was tried"
    # KeyInfo is unsigned: naming another certificate (configured or not) only orders the tries
    for named in (old, rsa_key("stranger")):
        response = signed_response(key=new)
        cert = response.find(f".//{DS}X509Certificate")
        assert cert is not None
        cert.text = "".join(line for line in named.cert_pem.splitlines() if "-----" not in line)
        tried.clear()
        assert verify(response, config).principal == "alice"
        assert tried == list(config.signing_certificates)
    # and a signature by a certificate that is not configured fails whatever KeyInfo names
    stranger = rsa_key("stranger")
    tried.clear()
    refused("signature", signed_response(key=stranger), config=config)
    assert len(tried) == 2


def test_several_roles_and_line_wrapped_base64() -> None:
    response = signed_response(AssertionSpec(roles=("Admin", "Reader", "Admin")))
    raw = etree.tostring(response)
    wrapped = base64.encodebytes(raw).decode()  # 76-column lines, as many IdPs post them
    assert "\n" in wrapped.strip()
    identity = verify(wrapped)
    assert identity.roles == ("Admin", "Reader")
    assert identity.role_principals == ("role/Admin", "role/Reader")


def test_skew_tolerated_within_sixty_seconds() -> None:
    spec = AssertionSpec(not_before=timedelta(seconds=45), issue_instant=timedelta(seconds=30))
    assert verify(signed_response(spec)).principal == "alice"
    later = AssertionSpec(not_on_or_after=timedelta(seconds=-30), scd_not_on_or_after=timedelta(seconds=-30))
    assert verify(signed_response(later)).principal == "alice"


# --- key lifetime --------------------------------------------------------------------------


def test_lifetime_clipped_to_assertion_not_on_or_after() -> None:
    identity = verify(signed_response())
    lifetime = identity.key_lifetime(43200, now=NOW)
    assert lifetime.duration_seconds == 3600
    assert lifetime.expires_at == NOW + timedelta(hours=1)
    assert lifetime.clipped is True
    short = identity.key_lifetime(600, now=NOW)
    assert (short.duration_seconds, short.clipped) == (600, False)


def test_lifetime_clipped_to_session_not_on_or_after() -> None:
    spec = AssertionSpec(not_on_or_after=timedelta(hours=10), session_not_on_or_after=timedelta(minutes=20))
    identity = verify(signed_response(spec))
    assert identity.key_not_after == NOW + timedelta(minutes=20)
    assert identity.key_lifetime(0, now=NOW).expires_at == NOW + timedelta(minutes=20)


def test_lifetime_capped_at_twelve_hours_without_assertion_limits() -> None:
    spec = AssertionSpec(not_on_or_after=None, session_not_on_or_after=None)
    identity = verify(signed_response(spec))
    assert identity.key_not_after is None
    assert identity.key_lifetime(0, now=NOW).duration_seconds == 43200
    assert identity.key_lifetime(99999, now=NOW).duration_seconds == 43200


# --- signatures -----------------------------------------------------------------------------


def test_unsigned_response_and_assertion_refused() -> None:
    refused("signature", signed_response(sign_assertion=False))


def test_unsigned_bare_assertion_refused() -> None:
    refused("signature", build_assertion(AssertionSpec()))


def test_signature_by_unknown_certificate_refused() -> None:
    refused("signature", signed_response(key=rsa_key("stranger")))


def test_signature_by_unknown_cert_with_configured_cert_embedded_refused() -> None:
    """KeyInfo is attacker-controlled: embedding the trusted cert must not help a foreign key."""
    response = signed_response(key=rsa_key("stranger"))
    cert = response.find(f".//{DS}X509Certificate")
    assert cert is not None
    cert.text = "".join(rsa_key("idp").cert_pem.strip().splitlines()[1:-1])
    refused("signature", response)


def test_tampered_signed_value_refused() -> None:
    response = signed_response()
    name_id = assertion_of(response).find(f"{S}Subject/{S}NameID")
    assert name_id is not None
    name_id.text = "root@example.com"
    refused("signature", response)


def test_tampered_response_signed_status_refused() -> None:
    response = signed_response(sign_assertion=False, sign_response=True)
    response.set("Destination", RECIPIENT + "?x")
    refused("signature", response)


def test_both_signed_with_a_bad_assertion_signature_refused() -> None:
    """A present signature must verify even when the enclosing Response's signature does."""
    spec = AssertionSpec()
    assertion = sign(build_assertion(spec), rsa_key("stranger"))
    response = sign(build_response(spec, assertion), rsa_key("idp"))
    refused("signature", response)


def test_sha1_signature_refused() -> None:
    response = signed_response(
        signature_algorithm=SignatureMethod.RSA_SHA1, digest_algorithm=DigestAlgorithm.SHA1
    )
    refused("algorithm", response)


def test_sha1_digest_under_sha256_signature_refused() -> None:
    refused("algorithm", signed_response(digest_algorithm=DigestAlgorithm.SHA1))


def test_signature_must_cover_its_parent_element() -> None:
    """An IdP signature over a sub-element does not vouch for the whole assertion."""
    assertion = build_assertion(AssertionSpec())
    subject = assertion.find(f"{S}Subject")
    assert subject is not None
    subject.set("ID", "_subject")
    issuer = assertion.find(f"{S}Issuer")
    placeholder = etree.Element(f"{DS}Signature", Id="placeholder")
    assertion.insert(assertion.index(issuer) + 1, placeholder)
    from signxml import XMLSigner

    signed = XMLSigner(c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0).sign(
        assertion,
        key=rsa_key("idp").private_pem,
        cert=rsa_key("idp").cert_pem,
        reference_uri="#_subject",
        id_attribute="ID",
    )
    refused("signature", build_response(AssertionSpec(), signed))


def test_response_signature_moved_into_assertion_refused() -> None:
    response = signed_response(sign_assertion=False, sign_response=True)
    signature = response.find(f"{DS}Signature")
    assert signature is not None
    response.remove(signature)
    assertion = assertion_of(response)
    assertion.insert(1, signature)
    refused("signature", response)


# --- signature wrapping (XSW) -----------------------------------------------------------------


def evil_assertion(**overrides: object) -> etree._Element:
    spec = AssertionSpec(principal=("root",), roles=("Admin",), name_id="root@example.com")
    return build_assertion(replace(spec, **overrides))  # type: ignore[arg-type]


def move_assertion_into_extensions(response: etree._Element) -> None:
    """Move the signed assertion from directly under the Response into a samlp:Extensions
    wrapper appended to it."""
    original = assertion_of(response)
    response.remove(original)
    extensions = etree.SubElement(response, f"{SP}Extensions")
    extensions.append(original)


def test_xsw_second_unsigned_assertion_after_refused() -> None:
    response = signed_response()
    response.append(evil_assertion())
    refused("structure", response)


def test_xsw_second_unsigned_assertion_before_refused() -> None:
    response = signed_response()
    response.insert(response.index(assertion_of(response)), evil_assertion())
    refused("structure", response)


def test_xsw_signed_assertion_moved_under_unsigned_wrapper_refused() -> None:
    response = signed_response()
    move_assertion_into_extensions(response)
    response.append(evil_assertion())
    refused("structure", response)


def test_xsw_signed_assertion_alone_under_wrapper_refused() -> None:
    """Even with one assertion in total, it must sit directly under the Response."""
    response = signed_response()
    move_assertion_into_extensions(response)
    refused("structure", response)


def test_xsw_original_hidden_in_signature_object_refused() -> None:
    response = signed_response()
    original = assertion_of(response)
    signature = copy.deepcopy(original.find(f"{DS}Signature"))
    evil = evil_assertion(assertion_id=original.get("ID"))
    evil.insert(1, signature)
    obj = etree.SubElement(signature, f"{DS}Object")
    obj.append(copy.deepcopy(original))
    response.replace(original, evil)
    refused("structure", response)


def test_xsw_evil_assertion_with_copied_signature_refused() -> None:
    response = signed_response()
    original = assertion_of(response)
    evil = evil_assertion(assertion_id=original.get("ID"))
    evil.insert(1, copy.deepcopy(original.find(f"{DS}Signature")))
    response.replace(original, evil)
    refused("signature", response)


def test_xsw_signed_response_wrapped_in_unsigned_response_refused() -> None:
    signed = signed_response(sign_assertion=False, sign_response=True)
    outer = build_response(AssertionSpec(), evil_assertion())
    extensions = etree.Element(f"{SP}Extensions")
    extensions.append(signed)
    outer.insert(1, extensions)
    refused("structure", outer)


def test_signature_in_unexpected_place_refused() -> None:
    response = signed_response()
    assertion = assertion_of(response)
    signature = assertion.find(f"{DS}Signature")
    assertion.remove(signature)
    assertion.find(f"{S}Subject").append(signature)
    refused("structure", response)


def test_two_signatures_on_one_element_refused() -> None:
    response = signed_response()
    assertion = assertion_of(response)
    assertion.insert(1, copy.deepcopy(assertion.find(f"{DS}Signature")))
    refused("structure", response)


def test_encrypted_assertion_refused() -> None:
    response = signed_response(sign_assertion=False)
    response.remove(assertion_of(response))
    etree.SubElement(response, f"{S}EncryptedAssertion")
    refused("structure", response)


# --- comments and DTDs -------------------------------------------------------------------------


def _comment_split(value_path: str, signed_value: str, cut: int) -> etree._Element:
    """Sign `signed_value`, then split it with a comment, as in the 2018 SAML comment attacks."""
    response = signed_response(AssertionSpec(name_id=signed_value, principal=(signed_value,)))
    element = assertion_of(response).find(value_path)
    assert element is not None
    element.text = signed_value[:cut]
    comment = etree.Comment(" ")
    comment.tail = signed_value[cut:]
    element.append(comment)
    return response


@pytest.mark.parametrize(
    "path",
    [f"{S}Subject/{S}NameID", f"{S}AttributeStatement/{S}Attribute/{S}AttributeValue"],
)
def test_comment_split_value_refused(path: str) -> None:
    response = _comment_split(path, "admin@evil.example", 5)
    # The signature really is still valid (exclusive c14n drops comments): the attack is live ...
    result = XMLVerifier().verify(assertion_of(response), x509_cert=rsa_key("idp").cert_pem)
    assert not isinstance(result, list) and result.signed_xml is not None
    signed_name = result.signed_xml.find(path)
    assert signed_name is not None and signed_name.text == "admin@evil.example"
    # ... and a naive reader of the original tree would see a truncated name.
    assert assertion_of(response).find(path).text == "admin"
    error = refused("xml", response)
    assert isinstance(error, FederationRejected)


def test_signed_tree_value_with_child_node_refused() -> None:
    element = etree.fromstring(b"<v>admin<!-- x -->@evil</v>")
    with pytest.raises(FederationRejected) as info:
        _simple_text(element, "attributes", "value")
    assert info.value.check == "attributes"
    assert _simple_text(etree.fromstring(b"<v> admin@evil </v>"), "attributes", "value") == "admin@evil"


def test_processing_instruction_refused() -> None:
    response = signed_response()
    assertion_of(response).append(etree.ProcessingInstruction("evil", "x"))
    refused("xml", response)


@pytest.mark.parametrize(
    "prolog",
    [
        b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
        b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
        b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">',
        b"<!DOCTYPE r>",
    ],
)
def test_dtd_refused_before_parsing(prolog: bytes) -> None:
    raw = prolog + etree.tostring(signed_response())
    error = refused("xml", raw)
    assert isinstance(error, FederationMalformed)
    assert isinstance(error, InvalidArgument)


def test_dtd_in_utf16_refused() -> None:
    raw = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r>' + "<r/>").encode("utf-16")
    refused("xml", raw)


def test_deeply_nested_document_refused() -> None:
    """lxml without huge_tree caps nesting depth; a nesting bomb is malformed, not a crash."""
    ns = b"urn:oasis:names:tc:SAML:2.0:protocol"
    raw = (
        b"<samlp:Response xmlns:samlp='" + ns + b"'>" + b"<x>" * 5000 + b"</x>" * 5000 + b"</samlp:Response>"
    )
    refused("xml", raw)


def test_not_base64_refused() -> None:
    error = refused("encoding", "this is *not* base64!")
    assert error.kind is Kind.INVALID_ARGUMENT


def test_oversized_response_refused() -> None:
    refused("encoding", "A" * (256 * 1024 + 4))


def test_not_xml_refused() -> None:
    refused("xml", base64.b64encode(b"{not xml").decode())


def test_wrong_root_element_refused() -> None:
    refused("structure", etree.Element("{urn:other}Thing"))


# --- issuer, audience, destination, status -----------------------------------------------------


def test_wrong_assertion_issuer_refused() -> None:
    refused("issuer", signed_response(AssertionSpec(issuer="https://evil.example/idp")))


def test_wrong_response_issuer_refused() -> None:
    refused("issuer", signed_response(AssertionSpec(response_issuer="https://evil.example/idp")))


def test_wrong_audience_refused() -> None:
    refused(
        "audience", signed_response(AssertionSpec(audiences=("https://coffer.example.test/saml/other-org",)))
    )


def test_missing_audience_restriction_refused() -> None:
    refused("audience", signed_response(AssertionSpec(audiences=None)))


def test_every_audience_restriction_must_match() -> None:
    other = etree.Element(f"{S}AudienceRestriction")
    etree.SubElement(other, f"{S}Audience").text = "https://somebody-else.example"
    refused("audience", signed_response(AssertionSpec(extra_conditions=(other,))))


def test_audience_among_several_accepted() -> None:
    spec = AssertionSpec(audiences=("https://somebody-else.example", SP_AUDIENCE))
    assert verify(signed_response(spec)).principal == "alice"


def test_unknown_condition_refused() -> None:
    odd = etree.Element(f"{S}Condition")
    refused("conditions", signed_response(AssertionSpec(extra_conditions=(odd,))))


def test_status_other_than_success_refused() -> None:
    spec = AssertionSpec(status="urn:oasis:names:tc:SAML:2.0:status:Requester")
    refused("status", signed_response(spec))
    refused("status", signed_response(spec, sign_assertion=False, sign_response=True))


def test_destination_mismatch_refused() -> None:
    refused("destination", signed_response(AssertionSpec(destination="https://evil.example/acs")))


# --- time ------------------------------------------------------------------------------------


def test_expired_assertion_refused() -> None:
    spec = AssertionSpec(not_on_or_after=timedelta(seconds=-61), scd_not_on_or_after=timedelta(minutes=5))
    refused("expired", signed_response(spec))


def test_future_not_before_refused() -> None:
    refused("not_yet_valid", signed_response(AssertionSpec(not_before=timedelta(seconds=90))))


def test_future_issue_instant_refused() -> None:
    refused("issue_instant", signed_response(AssertionSpec(issue_instant=timedelta(minutes=5))))


def test_expired_subject_confirmation_refused() -> None:
    spec = AssertionSpec(scd_not_on_or_after=timedelta(seconds=-61))
    refused("confirmation_expired", signed_response(spec))


def test_subject_confirmation_without_not_on_or_after_refused() -> None:
    refused("confirmation_expired", signed_response(AssertionSpec(scd_not_on_or_after=None)))


def test_subject_confirmation_not_yet_valid_refused() -> None:
    refused("confirmation_not_yet_valid", signed_response(AssertionSpec(scd_not_before=timedelta(minutes=3))))


def test_recipient_mismatch_refused() -> None:
    refused("recipient", signed_response(AssertionSpec(recipient="https://evil.example/acs")))
    refused("recipient", signed_response(AssertionSpec(recipient=None)))


def test_non_bearer_confirmation_refused() -> None:
    spec = AssertionSpec(method="urn:oasis:names:tc:SAML:2.0:cm:holder-of-key")
    refused("subject_confirmation", signed_response(spec))


def test_ended_session_refused() -> None:
    refused("session", signed_response(AssertionSpec(session_not_on_or_after=timedelta(minutes=-2))))


def test_verification_later_in_time_refused() -> None:
    response = to_b64(signed_response())
    refused("confirmation_expired", response, now=NOW + timedelta(minutes=7))


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        verify(signed_response(), now=NOW.replace(tzinfo=None))


# --- replay ----------------------------------------------------------------------------------


def test_replayed_assertion_refused() -> None:
    cache = InMemoryReplayCache()
    b64 = to_b64(signed_response())
    assert verify(b64, cache=cache).principal == "alice"
    error = refused("replay", b64, cache=cache)
    assert isinstance(error, Unauthenticated)


def test_replay_detected_across_response_wrappers() -> None:
    """The same signed assertion in a fresh unsigned Response is still the same assertion."""
    cache = InMemoryReplayCache()
    first = signed_response()
    verify(first, cache=cache)
    rewrapped = build_response(AssertionSpec(), copy.deepcopy(assertion_of(first)))
    refused("replay", rewrapped, cache=cache)


def test_refused_assertion_does_not_burn_its_id() -> None:
    cache = InMemoryReplayCache()
    spec = AssertionSpec(not_before=timedelta(minutes=10), scd_not_on_or_after=timedelta(minutes=30))
    early = signed_response(spec)
    refused("not_yet_valid", early, cache=cache)
    assert len(cache) == 0
    later = NOW + timedelta(minutes=10)
    assert verify(early, cache=cache, now=later).assertion_id == spec.assertion_id
    assert len(cache) == 1


def test_replay_cache_remembers_until_the_assertion_expires() -> None:
    cache = InMemoryReplayCache()
    verify(signed_response(), cache=cache)
    key = next(iter(cache._seen))
    # SubjectConfirmationData ends 5 minutes after NOW; plus the 60 s skew.
    assert cache._seen[key] == NOW + timedelta(minutes=6)


def test_replay_window_covers_every_bearer_confirmation() -> None:
    """A second confirmation with a longer window would accept the assertion again once the
    cache forgot it, so the ID is remembered until the last confirmation ends."""
    cache = InMemoryReplayCache()
    response = signed_response(sign_assertion=False)
    subject = assertion_of(response).find(f"{S}Subject")
    assert subject is not None
    longer = copy.deepcopy(subject.find(f"{S}SubjectConfirmation"))
    data = longer.find(f"{S}SubjectConfirmationData")
    data.set("NotOnOrAfter", AssertionSpec().at(timedelta(minutes=20)))
    subject.append(longer)
    b64 = to_b64(sign(response, rsa_key("idp")))
    assert verify(b64, cache=cache).principal == "alice"
    # the Conditions end (1 h) is later still; the last confirmation (20 min) bounds the window
    assert cache._seen[next(iter(cache._seen))] == NOW + timedelta(minutes=21)
    for later in (timedelta(minutes=1), timedelta(minutes=10), timedelta(minutes=20)):
        refused("replay", b64, cache=cache, now=NOW + later)
    refused("confirmation_expired", b64, cache=cache, now=NOW + timedelta(minutes=22))


@pytest.mark.parametrize(
    ("attr", "value"),
    [
        ("NotOnOrAfter", "9999-12-31T23:59:59Z"),
        ("NotBefore", "0001-01-01T00:00:00+01:00"),
        ("NotOnOrAfter", "9500-01-01T00:00:00Z"),
        ("NotBefore", "1969-12-31T23:59:59Z"),
    ],
)
def test_times_out_of_range_refused(attr: str, value: str) -> None:
    response = signed_response(sign_assertion=False)
    conditions = assertion_of(response).find(f"{S}Conditions")
    assert conditions is not None
    conditions.set(attr, value)
    refused("conditions", sign(response, rsa_key("idp")))


# --- attributes ---------------------------------------------------------------------------------


def test_missing_principal_attribute_refused() -> None:
    refused("attributes", signed_response(AssertionSpec(principal=())))


def test_two_principal_values_refused() -> None:
    refused("attributes", signed_response(AssertionSpec(principal=("alice", "mallory"))))


def test_missing_role_attribute_refused() -> None:
    refused("attributes", signed_response(AssertionSpec(roles=())))


@pytest.mark.parametrize(
    "value", ["*", "Admin*", "", "a" * 300, "line\nbreak", "https://issuer.example:workload"]
)
def test_role_values_that_cannot_be_principals_refused(value: str) -> None:
    refused("attributes", signed_response(AssertionSpec(roles=(value,))))


def test_missing_name_id_refused() -> None:
    response = signed_response(sign_assertion=False)
    subject = assertion_of(response).find(f"{S}Subject")
    subject.remove(subject.find(f"{S}NameID"))
    refused("subject", sign(response, rsa_key("idp")))


# --- configuration and errors ---------------------------------------------------------------------


def test_inactive_config_refused() -> None:
    refused("config", signed_response(), config=replace(saml_config(), active=False))


def test_error_messages_do_not_echo_assertion_content() -> None:
    secret = "very-secret-principal"
    response = signed_response(AssertionSpec(principal=(secret,), name_id=secret, audiences=("nope",)))
    b64 = to_b64(response)
    error = refused("audience", b64)
    assert secret not in str(error)
    assert b64[:40] not in str(error)
    assert error.kind is Kind.UNAUTHENTICATED


def test_config_round_trips_through_json() -> None:
    config = saml_config(rsa_key("idp"), rsa_key("idp-next"))
    again = SamlConfig.from_json(config.to_json())
    assert again == config
    assert again.to_json()["spAudience"] == SP_AUDIENCE
    assert again.to_json()["recipient"] == RECIPIENT
    assert len(again.signing_certificates) == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "has space"),
        ("name", ""),
        ("idp_entity_id", ""),
        ("certificates", ()),
        ("certificates", ("not a pem",)),
        ("sp_audience", ""),
        ("recipient", "x" * 1025),
        ("description", "d" * 1025),
    ],
)
def test_invalid_config_refused(field: str, value: Any) -> None:
    with pytest.raises(InvalidArgument):
        replace(saml_config(), **{field: value})


def test_weak_rsa_certificate_refused() -> None:
    with pytest.raises(InvalidArgument):
        saml_config(rsa_key("weak", 1024))


def test_config_from_json_requires_fields() -> None:
    data = saml_config().to_json()
    del data["idpEntityId"]
    with pytest.raises(InvalidArgument):
        SamlConfig.from_json(data)


def test_principal_attribute_constant() -> None:
    assert ATTR_PRINCIPAL_NAME == "https://coreweave.com/SAML/Attributes/PrincipalName"


# --- concurrency ------------------------------------------------------------------------------

_FIRST_VERIFICATIONS_AT_ONCE = """
import sys, threading
from concurrent.futures import ThreadPoolExecutor
from signxml import XMLVerifier
import coffer.federation.saml as saml
built = len(XMLVerifier._schemas)
from coffer.federation import InMemoryReplayCache
from tests.support.idp import NOW, saml_config, signed_response, to_b64
config, cache = saml_config(), InMemoryReplayCache()
docs = [to_b64(signed_response()) for _ in range(8)]
gate = threading.Barrier(len(docs))
def first(doc):
    gate.wait()
    return saml.verify_saml_response(doc, config, now=NOW, replay_cache=cache).principal
with ThreadPoolExecutor(len(docs)) as pool:
    names = list(pool.map(first, docs))
print(built, len(set(docs)), names.count("alice"))
"""


def test_first_verifications_in_threads_at_once_all_verify() -> None:
    """A fresh process's first verifications race signxml's lazy schema set-up unless the
    module built it on import: that race broke whole workers (docs/performance.md)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", _FIRST_VERIFICATIONS_AT_ONCE],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        built, distinct, verified = map(int, out.stdout.split())
        assert built > 0, "importing coffer.federation.saml builds signxml's schema"
        assert (distinct, verified) == (8, 8), out.stdout + out.stderr
