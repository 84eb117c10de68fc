"""SAML 2.0 workload federation: turn a signed SAML Response into a verified identity.

The endpoint that uses this (`POST /v1/cwobject/temporary-credentials/saml`) is anonymous: the
assertion is the only credential. Every rule below exists because some SAML implementation was
once broken without it:

- Signature wrapping (the XSW family): we let signxml verify the signature and then read
  *only* the element signxml returns as signed (`signed_xml`), never the original tree; we also
  demand exactly one Assertion in the whole document and signatures only where SAML puts them.
- Comment truncation (`admin<!-- -->@evil` read as `admin`): documents with comments or
  processing instructions are refused, and values are read from the canonicalised signed tree,
  where an element with any child node (comment or element) is refused.
- XXE and entity expansion: any DTD is refused before lxml ever sees the bytes, and lxml is
  configured to resolve nothing and fetch nothing.
- SHA-1: refused; SHA-256 or stronger is required for both digest and signature.
- Replay: each assertion ID is accepted once, remembered until the assertion would expire anyway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import defusedxml
import defusedxml.ElementTree as DefusedET
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree
from signxml import InvalidInput, SignatureConfiguration, XMLVerifier
from signxml.algorithms import DigestAlgorithm, SignatureMethod

from coffer.errors import InvalidArgument
from coffer.federation.errors import FederationMalformed, FederationRejected, config_text
from coffer.federation.lifetime import (
    CLOCK_SKEW,
    EARLIEST_TIME,
    LATEST_TIME,
    KeyLifetime,
    federated_key_lifetime,
)
from coffer.federation.replay import ReplayCache
from coffer.policy.principals import nameable

SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
SAMLP_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"

ATTR_PRINCIPAL_NAME = "https://coreweave.com/SAML/Attributes/PrincipalName"
ATTR_ROLE = "https://coreweave.com/SAML/Attributes/Role"
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
CM_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
NAMEID_ENTITY = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
RECIPIENT_PATH = "/v1/cwobject/temporary-credentials/saml"

MAX_SAML_RESPONSE_CHARS = 256 * 1024
"""Base64 characters accepted; real responses are a few KiB, and signature checks cost CPU."""
MAX_CERTIFICATES = 5
MAX_ROLES = 64
MAX_VALUE_LENGTH = 256
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_DATETIME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$",
)

_SAML = f"{{{SAML_NS}}}"
_SAMLP = f"{{{SAMLP_NS}}}"
_DS = f"{{{DS_NS}}}"
_TAG_RESPONSE = f"{_SAMLP}Response"
_TAG_ASSERTION = f"{_SAML}Assertion"
_TAG_SIGNATURE = f"{_DS}Signature"

_SIGNATURE_METHODS = frozenset(
    {
        SignatureMethod.RSA_SHA256,
        SignatureMethod.RSA_SHA384,
        SignatureMethod.RSA_SHA512,
        SignatureMethod.SHA256_RSA_MGF1,
        SignatureMethod.SHA384_RSA_MGF1,
        SignatureMethod.SHA512_RSA_MGF1,
        SignatureMethod.ECDSA_SHA256,
        SignatureMethod.ECDSA_SHA384,
        SignatureMethod.ECDSA_SHA512,
    }
)
_DIGESTS = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512})
_SIGNATURE_CONFIG = SignatureConfiguration(
    location="./",  # the Signature must be a direct child of the element it signs
    expect_references=1,
    signature_methods=_SIGNATURE_METHODS,
    digest_algorithms=_DIGESTS,
)

# signxml builds its XML-DSig schema lazily behind a lock that locks nothing, and libxml2's
# schema set-up is not thread-safe: two first verifications at once can break a worker for
# good (docs/performance.md). Build it here, once, under the import lock.
XMLVerifier.schemas()


def _parser() -> etree.XMLParser:
    """A parser that resolves nothing, fetches nothing and refuses pathological trees."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_blank_text=False,
    )


# --- configuration -----------------------------------------------------------------------


def default_sp_audience(public_url: str, org_id: str) -> str:
    """`https://<coffer-host>/saml/<org-id>`: per organisation, so an assertion issued for one
    org is never accepted for another org that trusts the same IdP."""
    return f"{public_url.rstrip('/')}/saml/{org_id}"


def default_recipient(public_url: str) -> str:
    """The URL the assertion is presented to, as the IdP's ACS URL for Coffer."""
    return f"{public_url.rstrip('/')}{RECIPIENT_PATH}"


def load_signing_certificate(pem: str) -> x509.Certificate:
    """Parse one IdP certificate and insist on a key strong enough to sign credentials."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise InvalidArgument.field("certificates", "each must be a PEM X.509 certificate") from exc
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise InvalidArgument.field("certificates", "RSA keys must be at least 2048 bits")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
            raise InvalidArgument.field("certificates", "EC keys must use P-256, P-384 or P-521")
    else:
        raise InvalidArgument.field("certificates", "only RSA and EC signing keys are supported")
    return cert


def certificate_fingerprint(pem: str) -> str:
    """SHA-256 fingerprint, as IdP admin consoles show it, to tell configured certs apart."""
    cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


@dataclass(frozen=True)
class SamlConfig:
    """A SAML workload-federation configuration (the console's "Create SAML configuration").

    `certificates` holds one or more PEM certificates, any of which may sign: add the IdP's new
    certificate before it starts signing with it, remove the old one afterwards (rotation).
    Certificate validity dates are not enforced: the certificate is a pinned key container,
    as in every SAML deployment, and trust is withdrawn by removing it from this list.
    """

    config_id: str
    org_id: str
    name: str
    idp_entity_id: str
    certificates: tuple[str, ...]
    sp_audience: str
    recipient: str
    description: str = ""
    active: bool = True
    _parsed: tuple[x509.Certificate, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        config_text(self.config_id, "configId", max_len=255)
        config_text(self.org_id, "orgId", max_len=255)
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise InvalidArgument.field("name", "must be 1-255 characters of A-Z, a-z, 0-9, '_' or '-'")
        config_text(self.idp_entity_id, "idpEntityId")
        config_text(self.sp_audience, "spAudience")
        config_text(self.recipient, "recipient")
        config_text(self.description, "description", required=False)
        if not isinstance(self.active, bool):
            raise InvalidArgument.field("active", "must be a boolean")
        certs = tuple(self.certificates) if isinstance(self.certificates, (list, tuple)) else ()
        if not 1 <= len(certs) <= MAX_CERTIFICATES:
            raise InvalidArgument.field("certificates", f"between 1 and {MAX_CERTIFICATES} are required")
        normalized = tuple(c.strip() + "\n" if isinstance(c, str) else c for c in certs)
        parsed = tuple(load_signing_certificate(c) for c in normalized)
        object.__setattr__(self, "certificates", normalized)
        object.__setattr__(self, "_parsed", parsed)

    @classmethod
    def create(
        cls,
        *,
        config_id: str,
        org_id: str,
        name: str,
        idp_entity_id: str,
        certificates: list[str] | tuple[str, ...],
        public_url: str,
        sp_audience: str | None = None,
        recipient: str | None = None,
        description: str = "",
        active: bool = True,
    ) -> SamlConfig:
        """A config with Coffer's defaults for the audience and recipient under `public_url`."""
        return cls(
            config_id=config_id,
            org_id=org_id,
            name=name,
            idp_entity_id=idp_entity_id,
            certificates=tuple(certificates),
            sp_audience=sp_audience or default_sp_audience(public_url, org_id),
            recipient=recipient or default_recipient(public_url),
            description=description,
            active=active,
        )

    @property
    def signing_certificates(self) -> tuple[x509.Certificate, ...]:
        return self._parsed

    def to_json(self) -> dict[str, Any]:
        """camelCase, as the control plane speaks; certificates stay PEM (public data)."""
        return {
            "configId": self.config_id,
            "orgId": self.org_id,
            "name": self.name,
            "idpEntityId": self.idp_entity_id,
            "certificates": list(self.certificates),
            "spAudience": self.sp_audience,
            "recipient": self.recipient,
            "description": self.description,
            "active": self.active,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SamlConfig:
        if not isinstance(data, dict):
            raise InvalidArgument("a SAML configuration must be a JSON object")
        for key in ("configId", "orgId", "name", "idpEntityId", "certificates", "spAudience", "recipient"):
            if key not in data:
                raise InvalidArgument.field(key, "is required")
        certs = data["certificates"]
        if not isinstance(certs, list) or not all(isinstance(c, str) for c in certs):
            raise InvalidArgument.field("certificates", "must be a list of PEM strings")
        return cls(
            config_id=data["configId"],
            org_id=data["orgId"],
            name=data["name"],
            idp_entity_id=data["idpEntityId"],
            certificates=tuple(certs),
            sp_audience=data["spAudience"],
            recipient=data["recipient"],
            description=data.get("description", ""),
            active=data.get("active", True),
        )


# --- result ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SamlIdentity:
    """What a verified assertion vouches for; every field comes from signed content."""

    config_id: str
    org_id: str
    issuer: str
    name_id: str
    principal: str
    roles: tuple[str, ...]
    assertion_id: str
    issued_at: datetime
    not_on_or_after: datetime | None
    """Conditions/@NotOnOrAfter: the IdP vouches for the assertion until then."""
    session_not_on_or_after: datetime | None
    """AuthnStatement/@SessionNotOnOrAfter: the IdP's session for this subject ends then."""

    @property
    def principal_name(self) -> str:
        """`saml/<PrincipalName>`, the key's owner (reference §4)."""
        return f"saml/{self.principal}"

    @property
    def role_principals(self) -> tuple[str, ...]:
        """`role/<Role>` for each role, the form org policies name (e.g. `role/Admin`)."""
        return tuple(f"role/{r}" for r in self.roles)

    @property
    def key_not_after(self) -> datetime | None:
        """The latest a minted key may live: the earlier of the two ends above, if any."""
        ends = [t for t in (self.not_on_or_after, self.session_not_on_or_after) if t is not None]
        return min(ends) if ends else None

    def key_lifetime(self, duration_seconds: int, *, now: datetime) -> KeyLifetime:
        """min(durationSeconds (0 = longest), 12 h, key_not_after)."""
        limit = self.key_not_after or now + timedelta(days=1)
        return federated_key_lifetime(duration_seconds, now=now, not_after=limit)


# --- verification ------------------------------------------------------------------------


def _rejected(check: str, message: str) -> FederationRejected:
    return FederationRejected(check, message)


def _decode(b64: str) -> bytes:
    if not isinstance(b64, str) or not b64:
        raise FederationMalformed("encoding", "samlResponse must be a non-empty base64 string")
    if len(b64) > MAX_SAML_RESPONSE_CHARS:
        raise FederationMalformed(
            "encoding", f"samlResponse is larger than {MAX_SAML_RESPONSE_CHARS} characters"
        )
    compact = re.sub(r"[ \t\r\n]", "", b64)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FederationMalformed("encoding", "samlResponse is not valid base64") from exc


def _parse(raw: bytes) -> etree._Element:
    """Refuse DTDs and entities with an independent parser first, then parse with lxml."""
    try:
        DefusedET.fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise FederationMalformed("xml", "DTDs and entity declarations are not allowed") from exc
    except Exception as exc:  # expat's ParseError and encoding errors alike
        raise FederationMalformed("xml", "samlResponse is not well-formed XML") from exc
    try:
        root = etree.fromstring(raw, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise FederationMalformed("xml", "samlResponse is not well-formed XML") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise FederationMalformed("xml", "DTDs and entity declarations are not allowed")
    for _node in root.iter(etree.Comment, etree.ProcessingInstruction, etree.Entity):
        # A legitimate IdP never emits these; inside a value they are the comment-truncation attack.
        raise _rejected("xml", "comments and processing instructions are not allowed")
    return root


def _children(element: etree._Element, tag: str) -> list[etree._Element]:
    return [c for c in element if c.tag == tag]


def _one_child(element: etree._Element, tag: str, check: str, what: str) -> etree._Element:
    found = _children(element, tag)
    if len(found) != 1:
        raise _rejected(check, f"exactly one {what} is required")
    return found[0]


def _simple_text(element: etree._Element, check: str, what: str) -> str:
    """Text of an element that must hold text only: any child node means a split value."""
    if len(element) != 0:
        raise _rejected(check, f"{what} must be plain text")
    return (element.text or "").strip(" \t\r\n")


def _parse_time(value: str | None, check: str, what: str) -> datetime:
    match = _DATETIME_RE.match(value or "")
    if not match:
        raise _rejected(check, f"{what} is not a valid xs:dateTime")
    base, fraction, zone = match.groups()
    text = base + (f".{fraction[:6]}" if fraction else "") + ("+00:00" if zone in (None, "Z") else zone)
    try:
        moment = datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise _rejected(check, f"{what} is not a valid xs:dateTime") from exc
    if not EARLIEST_TIME <= moment <= LATEST_TIME:
        raise _rejected(check, f"{what} is out of range")
    return moment


def _optional_time(element: etree._Element, attr: str, check: str) -> datetime | None:
    value = element.get(attr)
    return None if value is None else _parse_time(value, check, attr)


def _check_algorithms(signature: etree._Element) -> None:
    """Name SHA-1 (or anything weak) explicitly instead of failing as a generic bad signature."""
    method = signature.find(f"{_DS}SignedInfo/{_DS}SignatureMethod")
    digests = signature.findall(f"{_DS}SignedInfo/{_DS}Reference/{_DS}DigestMethod")
    allowed_methods = {m.value for m in _SIGNATURE_METHODS}
    allowed_digests = {d.value for d in _DIGESTS}
    if method is None or method.get("Algorithm") not in allowed_methods:
        raise _rejected("algorithm", "the signature must use RSA, RSA-PSS or ECDSA with SHA-256 or stronger")
    if not digests or any(d.get("Algorithm") not in allowed_digests for d in digests):
        raise _rejected("algorithm", "references must be digested with SHA-256 or stronger")


def _hinted_first(signature: etree._Element, certs: tuple[x509.Certificate, ...]) -> list[x509.Certificate]:
    """The configured certificates, the one the signature's KeyInfo names first.

    KeyInfo is unsigned and never chooses *whether* a certificate is trusted; it only saves a
    failed verification per exchange while two certificates are configured for a rotation.
    """
    ordered = list(certs)
    node = signature.find(f"{_DS}KeyInfo/{_DS}X509Data/{_DS}X509Certificate")
    if len(ordered) < 2 or node is None or not node.text:
        return ordered
    try:
        der = base64.b64decode("".join(node.text.split()), validate=True)
    except (binascii.Error, ValueError):
        return ordered
    ordered.sort(key=lambda cert: cert.public_bytes(serialization.Encoding.DER) != der)
    return ordered


def _verify_enveloped(element: etree._Element, config: SamlConfig, expected_tag: str) -> etree._Element:
    """Verify the Signature directly inside `element` against the configured certificates.

    Returns the element *as signed* (re-parsed from the canonical bytes signxml digested), and
    checks that what was signed is this very element, not some other node the reference points at.
    """
    signature = _children(element, _TAG_SIGNATURE)[0]
    _check_algorithms(signature)
    element_id = element.get("ID")
    if not element_id:
        raise _rejected("structure", "a signed element must carry an ID")
    for cert in _hinted_first(signature, config.signing_certificates):
        try:
            result = XMLVerifier().verify(
                element,
                x509_cert=cert,
                parser=_parser(),
                id_attribute="ID",
                expect_config=_SIGNATURE_CONFIG,
            )
        except InvalidInput as exc:
            if "forbidden by configuration" in str(exc):
                raise _rejected("algorithm", "the signature uses a forbidden algorithm") from exc
            continue
        except etree.XMLSchemaParseError:
            # signxml's own schema failed to load: Coffer is broken, not the IdP's signature.
            raise
        except Exception:  # noqa: S112 - fail closed on anything hostile input provokes
            # Wrong certificate, tampered content, or a signature signxml cannot process: it
            # raises its own errors but also lxml's, ValueError, KeyError... None of it verifies.
            continue
        signed = result.signed_xml if not isinstance(result, list) else None
        if signed is None or signed.tag != expected_tag or signed.get("ID") != element_id:
            raise _rejected("signature", "the signature does not cover the element that carries it")
        return signed
    raise _rejected("signature", "no configured certificate verifies the signature")


def verify_saml_response(
    b64: str,
    config: SamlConfig,
    *,
    now: datetime,
    replay_cache: ReplayCache,
) -> SamlIdentity:
    """Verify a base64 SAML Response (or a bare signed Assertion) for `config`.

    Pure apart from `replay_cache`, which records the assertion ID only once every other check
    has passed, so a refused assertion never burns its ID.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not config.active:
        raise _rejected("config", "this SAML configuration is inactive")
    root = _parse(_decode(b64))

    # --- shape: one assertion, signatures only where SAML puts them ------------------------
    if root.tag not in (_TAG_RESPONSE, _TAG_ASSERTION):
        raise FederationMalformed("structure", "expected a samlp:Response or saml:Assertion document")
    if any(True for _ in root.iter(f"{_SAML}EncryptedAssertion")):
        raise _rejected("structure", "encrypted assertions are not supported")
    assertions = list(root.iter(_TAG_ASSERTION))
    if len(assertions) != 1:
        raise _rejected("structure", "exactly one Assertion is required")
    assertion = assertions[0]
    if assertion is not root and assertion.getparent() is not root:
        raise _rejected("structure", "the Assertion must be a direct child of the Response")
    for sig in root.iter(_TAG_SIGNATURE):
        if sig.getparent() not in (root, assertion):
            raise _rejected("structure", "a Signature is in an unexpected place")
    for holder in {root, assertion}:
        if len(_children(holder, _TAG_SIGNATURE)) > 1:
            raise _rejected("structure", "an element carries more than one Signature")

    response_signed = root is not assertion and bool(_children(root, _TAG_SIGNATURE))
    assertion_signed = bool(_children(assertion, _TAG_SIGNATURE))
    if not response_signed and not assertion_signed:
        raise _rejected("signature", "neither the Response nor the Assertion is signed")

    # --- signatures: from here on, only signed content is read ------------------------------
    response_view: etree._Element | None = None
    if response_signed:
        response_view = _verify_enveloped(root, config, _TAG_RESPONSE)
        signed_assertions = list(response_view.iter(_TAG_ASSERTION))
        if len(signed_assertions) != 1 or signed_assertions[0].getparent() is not response_view:
            raise _rejected("structure", "exactly one Assertion is required")
        signed_assertion = signed_assertions[0]
        if assertion_signed:
            _verify_enveloped(assertion, config, _TAG_ASSERTION)  # present, so it must hold too
    else:
        signed_assertion = _verify_enveloped(assertion, config, _TAG_ASSERTION)
        # The Response wrapper is unsigned: its fields are checked for consistency, never trusted.
        response_view = root if root is not assertion else None

    skew = CLOCK_SKEW
    if response_view is not None:
        _check_response(response_view, config)

    # --- the assertion ---------------------------------------------------------------------
    a = signed_assertion
    if a.get("Version") != "2.0":
        raise _rejected("version", "only SAML 2.0 assertions are accepted")
    assertion_id = a.get("ID") or ""
    if not assertion_id or len(assertion_id) > MAX_VALUE_LENGTH:
        raise _rejected("structure", "the Assertion needs an ID of at most 256 characters")
    issued_at = _parse_time(a.get("IssueInstant"), "issue_instant", "IssueInstant")
    if issued_at > now + skew:
        raise _rejected("issue_instant", "the assertion was issued in the future")

    issuer = _one_child(a, f"{_SAML}Issuer", "issuer", "Assertion Issuer")
    if issuer.get("Format") not in (None, NAMEID_ENTITY) or (
        _simple_text(issuer, "issuer", "Issuer") != config.idp_entity_id
    ):
        raise _rejected("issuer", "the assertion was not issued by the configured IdP entity ID")

    conditions = _one_child(a, f"{_SAML}Conditions", "conditions", "Conditions element")
    not_before = _optional_time(conditions, "NotBefore", "conditions")
    not_on_or_after = _optional_time(conditions, "NotOnOrAfter", "conditions")
    if not_before is not None and now + skew < not_before:
        raise _rejected("not_yet_valid", "the assertion is not valid yet (Conditions NotBefore)")
    if not_on_or_after is not None and now >= not_on_or_after + skew:
        raise _rejected("expired", "the assertion has expired (Conditions NotOnOrAfter)")
    restrictions = 0
    for cond in conditions:
        if cond.tag == f"{_SAML}AudienceRestriction":
            restrictions += 1
            audiences = [_simple_text(x, "audience", "Audience") for x in _children(cond, f"{_SAML}Audience")]
            if config.sp_audience not in audiences:
                raise _rejected("audience", f"the assertion is not addressed to {config.sp_audience}")
        elif cond.tag not in (f"{_SAML}OneTimeUse", f"{_SAML}ProxyRestriction"):
            raise _rejected("conditions", "the assertion carries a condition Coffer does not understand")
    if restrictions == 0:
        raise _rejected("audience", "the assertion has no AudienceRestriction")

    subject = _one_child(a, f"{_SAML}Subject", "subject", "Subject")
    name_id_el = _one_child(subject, f"{_SAML}NameID", "subject", "NameID")
    name_id = _validate_value(_simple_text(name_id_el, "subject", "NameID"), "subject", "NameID")
    confirmation_end = _check_confirmation(subject, config, now)

    session_end: datetime | None = None
    for statement in _children(a, f"{_SAML}AuthnStatement"):
        end = _optional_time(statement, "SessionNotOnOrAfter", "session")
        if end is not None and (session_end is None or end < session_end):
            session_end = end
    if session_end is not None and now >= session_end + skew:
        raise _rejected("session", "the IdP session has ended (SessionNotOnOrAfter)")

    principal, roles = _read_attributes(a)

    # --- replay: last, so only a fully valid assertion consumes its ID -----------------------
    remember_until = min(t for t in (confirmation_end, not_on_or_after) if t is not None) + skew
    replay_key = hashlib.sha256(f"saml\0{config.idp_entity_id}\0{assertion_id}".encode()).hexdigest()
    if not replay_cache.check_and_store(replay_key, expires_at=remember_until, now=now):
        raise _rejected("replay", "this assertion has already been used")

    return SamlIdentity(
        config_id=config.config_id,
        org_id=config.org_id,
        issuer=config.idp_entity_id,
        name_id=name_id,
        principal=principal,
        roles=roles,
        assertion_id=assertion_id,
        issued_at=issued_at,
        not_on_or_after=not_on_or_after,
        session_not_on_or_after=session_end,
    )


def _check_response(response: etree._Element, config: SamlConfig) -> None:
    """Status, Destination and Issuer of the Response element."""
    if response.get("Version") != "2.0":
        raise _rejected("version", "only SAML 2.0 responses are accepted")
    status = _one_child(response, f"{_SAMLP}Status", "status", "Status")
    code = _one_child(status, f"{_SAMLP}StatusCode", "status", "StatusCode")
    if code.get("Value") != STATUS_SUCCESS:
        raise _rejected("status", "the IdP did not report Success")
    destination = response.get("Destination")
    if destination is not None and destination != config.recipient:
        raise _rejected("destination", f"the response is not addressed to {config.recipient}")
    issuers = _children(response, f"{_SAML}Issuer")
    if len(issuers) > 1:
        raise _rejected("issuer", "the Response carries more than one Issuer")
    if issuers and (
        issuers[0].get("Format") not in (None, NAMEID_ENTITY)
        or _simple_text(issuers[0], "issuer", "Issuer") != config.idp_entity_id
    ):
        raise _rejected("issuer", "the response was not issued by the configured IdP entity ID")


def _check_confirmation(subject: etree._Element, config: SamlConfig, now: datetime) -> datetime:
    """At least one bearer SubjectConfirmation must hold; returns when the last one stops holding.

    Its NotOnOrAfter is required (SAML's bearer profile): an assertion that could be presented
    forever could be replayed forever once the replay cache forgot it. The latest end of *all*
    bearer confirmations is returned, not the one that holds now: another one with a longer
    window would accept the assertion again after the replay cache forgot it.
    """
    failure: FederationRejected | None = None
    holds = False
    latest: datetime | None = None
    for confirmation in _children(subject, f"{_SAML}SubjectConfirmation"):
        if confirmation.get("Method") != CM_BEARER:
            continue
        for data in _children(confirmation, f"{_SAML}SubjectConfirmationData"):
            end = _optional_time(data, "NotOnOrAfter", "confirmation_expired")
            start = _optional_time(data, "NotBefore", "confirmation_not_yet_valid")
            if end is not None and (latest is None or end > latest):
                latest = end
            if end is None:
                failure = failure or _rejected(
                    "confirmation_expired", "SubjectConfirmationData must carry NotOnOrAfter"
                )
            elif now >= end + CLOCK_SKEW:
                failure = failure or _rejected("confirmation_expired", "the bearer confirmation has expired")
            elif start is not None and now + CLOCK_SKEW < start:
                failure = failure or _rejected(
                    "confirmation_not_yet_valid", "the bearer confirmation is not valid yet"
                )
            elif data.get("Recipient") != config.recipient:
                failure = failure or _rejected(
                    "recipient", f"the bearer confirmation's Recipient is not {config.recipient}"
                )
            else:
                holds = True
    if holds and latest is not None:
        return latest
    raise failure or _rejected("subject_confirmation", "no bearer SubjectConfirmation is present")


def _validate_value(value: str, check: str, what: str) -> str:
    """Values become policy principals, so they must be nameable there: no whitespace (an Entra
    group display name like "Data Engineers" must be mapped to a role name), no wildcards, no
    control characters, bounded length."""
    if not value:
        raise _rejected(check, f"{what} is empty")
    if len(value) > MAX_VALUE_LENGTH:
        raise _rejected(check, f"{what} is longer than {MAX_VALUE_LENGTH} characters")
    if not nameable(value):
        raise _rejected(
            check,
            f"{what} contains characters a policy principal cannot hold"
            " (whitespace, control characters, * or ?)",
        )
    return value


def _read_attributes(assertion: etree._Element) -> tuple[str, tuple[str, ...]]:
    principals: list[str] = []
    roles: list[str] = []
    for statement in _children(assertion, f"{_SAML}AttributeStatement"):
        for attribute in _children(statement, f"{_SAML}Attribute"):
            name = attribute.get("Name")
            if name not in (ATTR_PRINCIPAL_NAME, ATTR_ROLE):
                continue
            values = [
                _validate_value(_simple_text(v, "attributes", name), "attributes", name)
                for v in _children(attribute, f"{_SAML}AttributeValue")
            ]
            (principals if name == ATTR_PRINCIPAL_NAME else roles).extend(values)
    if len(principals) != 1:
        raise _rejected("attributes", f"exactly one {ATTR_PRINCIPAL_NAME} value is required")
    unique_roles = tuple(dict.fromkeys(roles))
    if any("://" in role for role in unique_roles):
        # role/<issuer URL>:<sub> names OIDC workloads; a SAML role must not pose as one.
        raise _rejected("attributes", f"{ATTR_ROLE} values must not contain '://' (OIDC workloads' roles do)")
    if not unique_roles:
        raise _rejected("attributes", f"at least one {ATTR_ROLE} value is required")
    if len(unique_roles) > MAX_ROLES:
        raise _rejected("attributes", f"at most {MAX_ROLES} roles are accepted")
    return principals[0], unique_roles
