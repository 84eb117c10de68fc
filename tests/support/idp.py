"""A real identity provider for tests: real keys, real certificates, real signatures, real HTTP.

Nothing here is mocked: SAML Responses are signed with signxml's XMLSigner, JWTs with PyJWT,
and discovery documents and JWK Sets are served by an `http.server` on 127.0.0.1, so the
verifiers are exercised exactly as they will be against an external IdP.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import json
import os
import ssl
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import XMLSigner
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

from coffer.federation.saml import (
    ATTR_PRINCIPAL_NAME,
    ATTR_ROLE,
    CM_BEARER,
    DS_NS,
    SAML_NS,
    SAMLP_NS,
    STATUS_SUCCESS,
    SamlConfig,
    default_recipient,
    default_sp_audience,
)
from tests.support.tlsca import ca_certificate, self_signed

PUBLIC_URL = "https://coffer.example.test"
ORG_ID = "org-federation-test"
IDP_ENTITY_ID = "https://idp.example.test/saml/metadata"
SP_AUDIENCE = default_sp_audience(PUBLIC_URL, ORG_ID)
RECIPIENT = default_recipient(PUBLIC_URL)
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0

NSMAP = {"saml": SAML_NS, "samlp": SAMLP_NS}
S = f"{{{SAML_NS}}}"
SP = f"{{{SAMLP_NS}}}"
DS = f"{{{DS_NS}}}"


# --- keys and certificates ---------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """A signing key with its self-signed certificate and public JWK."""

    name: str
    private_key: Any
    cert_pem: str

    @property
    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self, kid: str | None = None, **extra: Any) -> dict[str, Any]:
        out = json.loads(_public_jwk_json(self.private_key))
        if kid is not None:
            out["kid"] = kid
        out.update(extra)
        return out


def _public_jwk_json(private_key: Any) -> str:
    public = private_key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        return jwt.algorithms.RSAAlgorithm.to_jwk(public)
    if isinstance(public, ec.EllipticCurvePublicKey):
        return jwt.algorithms.ECAlgorithm.to_jwk(public)
    return jwt.algorithms.OKPAlgorithm.to_jwk(public)


def self_signed_cert(private_key: Any, common_name: str) -> str:
    algorithm = None if isinstance(private_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    start, end = datetime(2020, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC)
    cert = self_signed(private_key, common_name, start, end).sign(private_key, algorithm)
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@functools.cache
def rsa_key(name: str, bits: int = 2048) -> Key:
    """Cached per process: RSA generation is the slow part of these tests."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return Key(name, private, self_signed_cert(private, f"{name}.idp.example.test"))


@functools.cache
def ec_key(name: str, curve: str = "P-256") -> Key:
    curves = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}
    private = ec.generate_private_key(curves[curve])
    return Key(name, private, self_signed_cert(private, f"{name}.idp.example.test"))


@functools.cache
def ed_key(name: str) -> Key:
    private = ed25519.Ed25519PrivateKey.generate()
    return Key(name, private, self_signed_cert(private, f"{name}.idp.example.test"))


# --- SAML ----------------------------------------------------------------------------------


def saml_config(*keys: Key, **overrides: Any) -> SamlConfig:
    base = SamlConfig.create(
        config_id="cfg-saml-1",
        org_id=ORG_ID,
        name="test-idp",
        idp_entity_id=IDP_ENTITY_ID,
        certificates=[k.cert_pem for k in (keys or (rsa_key("idp"),))],
        public_url=PUBLIC_URL,
    )
    return replace(base, **overrides) if overrides else base


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class AssertionSpec:
    """Everything an IdP puts in a Response; tests override one field to make one fault."""

    now: datetime = NOW
    issuer: str = IDP_ENTITY_ID
    response_issuer: str | None = IDP_ENTITY_ID
    audiences: tuple[str, ...] | None = (SP_AUDIENCE,)
    recipient: str | None = RECIPIENT
    destination: str | None = RECIPIENT
    name_id: str = "alice@example.com"
    principal: tuple[str, ...] = ("alice",)
    roles: tuple[str, ...] = ("Admin",)
    assertion_id: str = field(default_factory=lambda: "_a" + uuid.uuid4().hex)
    response_id: str = field(default_factory=lambda: "_r" + uuid.uuid4().hex)
    issue_instant: timedelta = timedelta(seconds=-5)
    not_before: timedelta | None = timedelta(seconds=-60)
    not_on_or_after: timedelta | None = timedelta(hours=1)
    scd_not_on_or_after: timedelta | None = timedelta(minutes=5)
    scd_not_before: timedelta | None = None
    session_not_on_or_after: timedelta | None = timedelta(hours=8)
    status: str = STATUS_SUCCESS
    method: str = CM_BEARER
    extra_conditions: tuple[etree._Element, ...] = ()

    def at(self, delta: timedelta) -> str:
        return _iso(self.now + delta)


def _set_instants(spec: AssertionSpec, element: etree._Element, **instants: timedelta | None) -> None:
    """Set each attribute named in `instants` to spec.at() of its offset, in the order given;
    leave out those whose offset is None."""
    for attribute, delta in instants.items():
        if delta is not None:
            element.set(attribute, spec.at(delta))


def build_assertion(spec: AssertionSpec) -> etree._Element:
    a = etree.Element(
        f"{S}Assertion",
        nsmap={"saml": SAML_NS},
        ID=spec.assertion_id,
        Version="2.0",
        IssueInstant=spec.at(spec.issue_instant),
    )
    etree.SubElement(a, f"{S}Issuer").text = spec.issuer
    subject = etree.SubElement(a, f"{S}Subject")
    name_id = etree.SubElement(
        subject, f"{S}NameID", Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    )
    name_id.text = spec.name_id
    confirmation = etree.SubElement(subject, f"{S}SubjectConfirmation", Method=spec.method)
    data = etree.SubElement(confirmation, f"{S}SubjectConfirmationData")
    _set_instants(spec, data, NotOnOrAfter=spec.scd_not_on_or_after, NotBefore=spec.scd_not_before)
    if spec.recipient is not None:
        data.set("Recipient", spec.recipient)
    conditions = etree.SubElement(a, f"{S}Conditions")
    _set_instants(spec, conditions, NotBefore=spec.not_before, NotOnOrAfter=spec.not_on_or_after)
    if spec.audiences is not None:
        restriction = etree.SubElement(conditions, f"{S}AudienceRestriction")
        for audience in spec.audiences:
            etree.SubElement(restriction, f"{S}Audience").text = audience
    for extra in spec.extra_conditions:
        conditions.append(extra)
    authn = etree.SubElement(a, f"{S}AuthnStatement", AuthnInstant=spec.at(spec.issue_instant))
    if spec.session_not_on_or_after is not None:
        authn.set("SessionNotOnOrAfter", spec.at(spec.session_not_on_or_after))
    context = etree.SubElement(authn, f"{S}AuthnContext")
    etree.SubElement(
        context, f"{S}AuthnContextClassRef"
    ).text = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
    statement = etree.SubElement(a, f"{S}AttributeStatement")
    for attr_name, values in ((ATTR_PRINCIPAL_NAME, spec.principal), (ATTR_ROLE, spec.roles)):
        if not values:
            continue
        attribute = etree.SubElement(
            statement,
            f"{S}Attribute",
            Name=attr_name,
            NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
        )
        for value in values:
            etree.SubElement(attribute, f"{S}AttributeValue").text = value
    return a


def build_response(spec: AssertionSpec, assertion: etree._Element | None) -> etree._Element:
    r = etree.Element(
        f"{SP}Response",
        nsmap=NSMAP,
        ID=spec.response_id,
        Version="2.0",
        IssueInstant=spec.at(spec.issue_instant),
    )
    if spec.destination is not None:
        r.set("Destination", spec.destination)
    if spec.response_issuer is not None:
        etree.SubElement(r, f"{S}Issuer").text = spec.response_issuer
    status = etree.SubElement(r, f"{SP}Status")
    etree.SubElement(status, f"{SP}StatusCode", Value=spec.status)
    if assertion is not None:
        r.append(assertion)
    return r


class _LegacySigner(XMLSigner):
    """Lets a test IdP sign with SHA-1, which signxml rightly refuses by default."""

    def check_deprecated_methods(self) -> None:
        return None


def sign(
    element: etree._Element,
    key: Key,
    *,
    signature_algorithm: SignatureMethod | None = None,
    digest_algorithm: DigestAlgorithm = DigestAlgorithm.SHA256,
    c14n_algorithm: CanonicalizationMethod = EXC_C14N,
) -> etree._Element:
    """Enveloped signature placed right after the element's Issuer, as SAML requires."""
    if signature_algorithm is None:
        signature_algorithm = (
            SignatureMethod.ECDSA_SHA256
            if isinstance(key.private_key, ec.EllipticCurvePrivateKey)
            else SignatureMethod.RSA_SHA256
        )
    placeholder = etree.Element(f"{DS}Signature", nsmap={"ds": DS_NS}, Id="placeholder")
    issuer = element.find(f"{S}Issuer")
    element.insert(0 if issuer is None else element.index(issuer) + 1, placeholder)
    signer = _LegacySigner(
        signature_algorithm=signature_algorithm,
        digest_algorithm=digest_algorithm,
        c14n_algorithm=c14n_algorithm,
    )
    signed = signer.sign(
        element,
        key=key.private_key,
        cert=key.cert_pem,
        reference_uri="#" + element.get("ID"),
        id_attribute="ID",
    )
    element.remove(placeholder)
    return signed


def to_b64(element: etree._Element | bytes) -> str:
    raw = element if isinstance(element, bytes) else etree.tostring(element)
    return base64.b64encode(raw).decode()


def spec_for_config(config: dict[str, Any], **overrides: Any) -> AssertionSpec:
    """What the IdP behind a stored config (the API's JSON: idpEntityId, spAudience,
    recipient) would assert to Coffer right now."""
    spec = AssertionSpec(
        now=datetime.now(UTC),
        issuer=config["idpEntityId"],
        response_issuer=config["idpEntityId"],
        audiences=(config["spAudience"],),
        recipient=config["recipient"],
        destination=config["recipient"],
    )
    return replace(spec, **overrides)


def signed_response(
    spec: AssertionSpec | None = None,
    key: Key | None = None,
    *,
    sign_assertion: bool = True,
    sign_response: bool = False,
    **sign_kwargs: Any,
) -> etree._Element:
    """A Response element with the chosen signatures, ready to tamper with or encode."""
    spec = spec or AssertionSpec()
    key = key or rsa_key("idp")
    assertion = build_assertion(spec)
    if sign_assertion:
        assertion = sign(assertion, key, **sign_kwargs)
    response = build_response(spec, assertion)
    if sign_response:
        response = sign(response, key, **sign_kwargs)
    return response


# --- JWT -------------------------------------------------------------------------------------

OIDC_AUDIENCE = "coffer-test-audience"


def mint_jwt(
    key: Key,
    *,
    issuer: str,
    kid: str | None = "k1",
    alg: str = "RS256",
    now: datetime = NOW,
    lifetime: timedelta = timedelta(hours=1),
    drop: tuple[str, ...] = (),
    headers: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A real signed JWT; `claims` override the defaults, `drop` removes some."""
    body: dict[str, Any] = {
        "iss": issuer,
        "sub": "system:serviceaccount:ml:trainer",
        "aud": OIDC_AUDIENCE,
        "iat": int(now.timestamp()) - 5,
        "nbf": int(now.timestamp()) - 5,
        "exp": int((now + lifetime).timestamp()),
        "email": "secret-claim@example.com",
    }
    body.update(claims)
    for name in drop:
        body.pop(name, None)
    hdrs = dict(headers or {})
    if kid is not None:
        hdrs["kid"] = kid
    return jwt.encode(body, key.private_key, algorithm=alg, headers=hdrs)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_jwt(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """Hand-assembled compact JWS, for tokens no honest library would produce."""
    h = b64url(json.dumps(header).encode())
    p = b64url(json.dumps(claims).encode())
    return f"{h}.{p}.{b64url(signature)}"


def default_claims(issuer: str, now: datetime = NOW) -> dict[str, Any]:
    return {
        "iss": issuer,
        "sub": "attacker",
        "aud": OIDC_AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }


# --- HTTP: discovery and JWKS ---------------------------------------------------------------


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    send_length: bool = True
    drip: float = 0.0
    """Seconds between the body's bytes, each sent alone (a slow-loris IdP)."""


@dataclass(frozen=True)
class TlsMaterial:
    """A private CA and a server certificate for 127.0.0.1 signed by it."""

    ca_pem: str
    cert_file: str
    key_file: str


@functools.cache
def tls_material() -> TlsMaterial:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    start, end = datetime(2020, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC)
    ca = ca_certificate(
        ca_key, "Coffer test CA", start, end, path_length=None, digital_signature=True, key_identifier=True
    )
    ca_name = ca.subject
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder = tempfile.mkdtemp(prefix="coffer-idp-tls-")
    cert_file, key_file = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    with open(cert_file, "wb") as fh:
        fh.write(leaf.public_bytes(serialization.Encoding.PEM))
    with open(key_file, "wb") as fh:
        fh.write(
            leaf_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return TlsMaterial(ca.public_bytes(serialization.Encoding.PEM).decode(), cert_file, key_file)


def client_trusting(material: TlsMaterial) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=material.ca_pem)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # refused TLS handshakes are expected in tests


class IdpServer:
    """Serves `/.well-known/openid-configuration` and `/jwks` from 127.0.0.1 in a thread."""

    def __init__(self, *, tls: bool = False) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with server._lock:
                    server.hits[self.path] += 1
                    route = server.routes.get(self.path, Route(404, b"{}"))
                if route.delay:
                    time.sleep(route.delay)
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if route.send_length:
                    self.send_header("Content-Length", str(len(route.body)))
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                try:
                    if route.drip:
                        for i in range(len(route.body)):
                            self.wfile.write(route.body[i : i + 1])
                            self.wfile.flush()
                            time.sleep(route.drip)
                    else:
                        self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        scheme = "http"
        if tls:
            material = tls_material()
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(material.cert_file, material.key_file)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.issuer = f"{scheme}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def publish(
        self, keys: list[dict[str, Any]], *, issuer: str | None = None, jwks_path: str = "/jwks"
    ) -> None:
        """Serve a discovery document pointing at a JWKS with `keys`."""
        discovery = {"issuer": issuer or self.issuer, "jwks_uri": self.issuer + jwks_path}
        self.set_json("/.well-known/openid-configuration", discovery)
        self.set_json(jwks_path, {"keys": keys})

    def set_json(self, path: str, document: Any, **route: Any) -> None:
        with self._lock:
            self.routes[path] = Route(
                body=json.dumps(document).encode(), headers={"Content-Type": "application/json"}, **route
            )

    def set_route(self, path: str, route: Route) -> None:
        with self._lock:
            self.routes[path] = route


@contextmanager
def serve_idp(*, tls: bool = False) -> Iterator[IdpServer]:
    server = IdpServer(tls=tls)
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
