"""XML rendering escapes and namespaces; parsing refuses what is unsafe or malformed."""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree import ElementTree

import pytest

from coffer.errors import S3Error
from coffer.s3 import xml


def test_render_escapes_and_namespace() -> None:
    doc = xml.render(
        "ListBucketResult",
        [("Name", "b"), ("Key", "a<b>&'\"\r"), ("Skip", None), ("Size", 3), ("IsTruncated", False)],
    )
    assert doc.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    assert b'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"' in doc
    assert b"<Key>a&lt;b&gt;&amp;&apos;&quot;&#xD;</Key>" in doc
    assert b"Skip" not in doc
    root = ElementTree.fromstring(doc)
    ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
    assert root.find(ns + "Key").text == "a<b>&'\"\r"
    assert root.find(ns + "IsTruncated").text == "false"


def test_render_nested_and_timestamps() -> None:
    when = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    doc = xml.render("R", [("Contents", [("LastModified", when), ("Owner", [("ID", "p")])])])
    expected = b"<Contents><LastModified>2025-01-02T03:04:05.678Z</LastModified><Owner><ID>p</ID></Owner>"
    assert expected + b"</Contents>" in doc


def test_render_text_root() -> None:
    assert xml.render("LocationConstraint", "US-EAST-04A").endswith(
        b'<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">US-EAST-04A</LocationConstraint>'
    )


def test_parse_accepts_namespace_or_none() -> None:
    for body in (
        b"<Delete><Object><Key>a</Key></Object></Delete>",
        b'<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a</Key></Object></Delete>',
    ):
        root = xml.parse(body, "Delete")
        assert [xml.child_text(o, "Key") for o in xml.children(root, "Object")] == ["a"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"<Delete>",
        b"<Other/>",
        b"not xml",
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><Delete>&b;</Delete>',
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><Delete>&x;</Delete>',
    ],
)
def test_parse_refuses(body: bytes) -> None:
    with pytest.raises(S3Error) as err:
        xml.parse(body, "Delete")
    assert err.value.code == "MalformedXML" and err.value.status == 400
