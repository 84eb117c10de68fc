"""Canonical URI / query / header rules, and property tests against botocore's signer:
any object key, query and header value botocore signs must verify, however it is sent."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coffer.errors import S3Error
from coffer.s3.sigv4 import authenticate
from coffer.s3.sigv4.canonical import (
    canonical_query,
    canonical_uri,
    literal_query,
    signing_key,
    trim_header_value,
)
from tests.support.sigv4 import Keyring, botocreds, make_creds, to_signed

ALICE = make_creds("CWCANONAAAAAAAAA", "cwo" + "k" * 40)
KEYRING = Keyring({ALICE.key.access_key_id: ALICE})
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# bytes a client may leave raw in a path (RFC 3986 pchar minus '%'), besides unreserved ones
RAW_OK = frozenset(b"!$&'()*+,;=:@")

keys = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("", "/"),
        ("/", "/"),
        ("/bkt/plain-key_1.txt~", "/bkt/plain-key_1.txt~"),
        ("/a%7e%7E", "/a~~"),
        ("/a%2fb", "/a%2Fb"),
        ("/a/b//c/", "/a/b//c/"),
        ("/./../x", "/./../x"),
        ("/sp ace", "/sp%20ace"),
        ("/plus+", "/plus%2B"),
        ("/eq=amp&", "/eq%3Damp%26"),
        ("/caf\xc3\xa9", "/caf%C3%A9"),  # raw UTF-8 bytes, as latin-1 characters
        ("/caf%c3%a9", "/caf%C3%A9"),
        ("/bad%zz", "/bad%25zz"),
        ("/100%", "/100%25"),
    ],
)
def test_canonical_uri(raw: str, canonical: str) -> None:
    assert canonical_uri(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("", ""),
        ("b=2&a=1", "a=1&b=2"),
        ("a=2&a=1&a=10", "a=1&a=10&a=2"),
        ("acl", "acl="),
        ("uploads&prefix=", "prefix=&uploads="),
        ("a+b=c+d", "a%20b=c%20d"),
        ("k=%2b%2B", "k=%2B%2B"),
        ("%7E=%7e", "~=~"),
        ("x=caf\xc3\xa9", "x=caf%C3%A9"),
        ("&&a=1&", "a=1"),
        ("prefix=a/b", "prefix=a%2Fb"),
        ("B=1&a=1&_=1&~=1", "B=1&_=1&a=1&~=1"),
    ],
)
def test_canonical_query(raw: str, canonical: str) -> None:
    assert canonical_query(raw) == canonical


def test_canonical_query_excludes_signature() -> None:
    assert canonical_query("X-Amz-Signature=abc&X-Amz-Date=1", "X-Amz-Signature") == "X-Amz-Date=1"
    assert literal_query("X-Amz-Signature=abc&b=%7e&a", "X-Amz-Signature") == "a=&b=%7e"


@pytest.mark.parametrize(
    ("raw", "trimmed"),
    [
        ("plain", "plain"),
        ("  lead and trail  ", "lead and trail"),
        ("inner    run", "inner run"),
        ("tab\tand\t\tmore", "tab and more"),
        ("", ""),
        ("\xa0nbsp\x85", "\xa0nbsp\x85"),  # bytes of UTF-8 text, not whitespace
    ],
)
def test_trim_header_value(raw: str, trimmed: str) -> None:
    assert trim_header_value(raw) == trimmed


def test_signing_key_is_cached() -> None:
    before = signing_key.cache_info()
    first = signing_key("cwo-secret-for-cache-test", "20250101", "r", "s3")
    second = signing_key("cwo-secret-for-cache-test", "20250101", "r", "s3")
    assert first is second
    assert signing_key.cache_info().hits >= before.hits + 1
    assert signing_key("cwo-secret-for-cache-test", "20250102", "r", "s3") != first


# -- properties against botocore ------------------------------------------------------------------
def _sign(path: str, **kwargs: Any) -> AWSRequest:
    request = AWSRequest("GET", "http://bkt.s3.test.local" + path, **kwargs)
    S3SigV4Auth(botocreds(ALICE), "s3", "us-east-04a").add_auth(request)
    return request


@PROPERTY
@given(key=keys)
def test_any_key_signs_and_verifies(key: str) -> None:
    request = _sign("/" + quote(key, safe="/~"))
    result = authenticate(to_signed(request), KEYRING)
    assert result is not None and result.access_key_id == ALICE.key.access_key_id


@PROPERTY
@given(key=keys, data=st.data())
def test_any_wire_encoding_of_a_key_verifies(key: str, data: st.DataObject) -> None:
    """A client that signs the canonical form may still send bytes raw or over-encoded."""
    request = _sign("/" + quote(key, safe="/~"))
    wire = bytearray(b"/")
    for byte in key.encode("utf-8"):
        if byte == ord("/"):
            wire += b"/"
        elif (byte in UNRESERVED or byte in RAW_OK or byte >= 0x80) and data.draw(st.booleans()):
            wire.append(byte)
        else:
            hex_digits = f"{byte:02X}"
            wire += ("%" + (hex_digits.lower() if data.draw(st.booleans()) else hex_digits)).encode()
    result = authenticate(to_signed(request, raw_path=wire.decode("latin-1")), KEYRING)
    assert result is not None


@PROPERTY
@given(first=keys, second=keys)
def test_a_signature_binds_its_key(first: str, second: str) -> None:
    path_one, path_two = "/" + quote(first, safe="/~"), "/" + quote(second, safe="/~")
    if path_one == path_two:
        return
    request = _sign(path_one)
    with pytest.raises(S3Error) as info:
        authenticate(to_signed(request, raw_path=path_two), KEYRING)
    assert info.value.code == "SignatureDoesNotMatch"


_param_names = keys.filter(lambda n: not n.startswith("X-Amz-") and n not in ("Signature", "AWSAccessKeyId"))


@PROPERTY
@given(params=st.dictionaries(_param_names, st.text(st.characters(exclude_categories=["Cs"]), max_size=30)))
def test_any_query_signs_and_verifies(params: dict[str, str]) -> None:
    """botocore signs params with %20 and sends them form-encoded ('+' for space)."""
    request = _sign("/k", params=params)
    assert authenticate(to_signed(request), KEYRING) is not None


@PROPERTY
@given(
    value=st.text(st.sampled_from("abcXYZ019 \t-_=+/;:,.!?\"'()[]{}<>@#$%^&*|\\~`"), max_size=40),
    name=st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-"), min_size=1, max_size=12),
)
def test_any_header_value_signs_and_verifies(value: str, name: str) -> None:
    request = _sign("/k", headers={f"x-amz-meta-{name}": value})
    assert authenticate(to_signed(request), KEYRING) is not None
