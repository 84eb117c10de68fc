"""S3 XML: rendering responses with proper escaping, parsing request bodies safely.

Responses are small, flat documents, so they are rendered from nested tuples straight
to bytes (no DOM, no per-node objects): the hot paths (listings, errors) stay cheap.
Request bodies are untrusted and go through `defusedxml` only; anything it refuses or
cannot parse is MalformedXML, never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TypeAlias
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from coffer.errors import S3Error

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

# A node is (tag, value): the value is text (str/int/bool/datetime), None (node omitted),
# or a sequence of child nodes.
Value: TypeAlias = str | int | bool | datetime | Sequence["Node"] | None
Node = tuple[str, Value]

# XML 1.0 cannot carry most control characters even as references; AWS still emits them
# as numeric references (clients that care ask for encoding-type=url), and so do we,
# so that a key is never silently altered.
_ESCAPES = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", ord('"'): "&quot;", ord("'"): "&apos;"}
_ESCAPES.update({c: f"&#x{c:X};" for c in range(32) if c not in (9, 10)})
_ESCAPES[13] = "&#xD;"


_SPECIAL = re.compile("[&<>\"'\x00-\x08\x0b-\x1f]")
_SPECIAL_BUT_QUOTE = re.compile("[&<>'\x00-\x08\x0b-\x1f]")


class Raw(str):
    """Markup rendered ahead of time, already escaped, inserted as is: as the value of a
    node (its content), or in place of a node among a document's children.

    Listings render their thousand `<Contents>` entries with one format string each
    instead of walking a tree of tuples per entry."""


def escape(text: str) -> str:
    # Most keys need no escaping and ETags only their quotes: finding that out with a
    # regex is several times cheaper than translating (a listing escapes thousands).
    if not _SPECIAL.search(text):
        return text
    if not _SPECIAL_BUT_QUOTE.search(text):
        return text.replace('"', "&quot;")
    return text.translate(_ESCAPES)


def timestamp(value: datetime) -> str:
    """ISO 8601 with milliseconds and Z, as S3 renders LastModified and CreationDate."""
    if value.tzinfo is UTC:
        return value.isoformat(timespec="milliseconds")[:-6] + "Z"  # drop "+00:00"
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"


def _text(value: str | int | bool | datetime) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, int):
        return str(value)
    return escape(value)


def _render(out: list[str], tag: str, value: Value) -> None:
    if value is None:
        return
    if isinstance(value, Raw):
        out.append(f"<{tag}>{value}</{tag}>")
        return
    if isinstance(value, str | int | bool | datetime):
        out.append(f"<{tag}>{_text(value)}</{tag}>")
        return
    out.append(f"<{tag}>")
    for child_tag, child in value:
        _render(out, child_tag, child)
    out.append(f"</{tag}>")


def render(root: str, children: Iterable[Node | Raw] | str, *, namespace: bool = True) -> bytes:
    """A complete document: declaration, root element (with the S3 namespace), children."""
    out: list[str] = []
    ns = f' xmlns="{NAMESPACE}"' if namespace else ""
    if isinstance(children, str):
        out.append(f"<{root}{ns}>{escape(children)}</{root}>")
    else:
        out.append(f"<{root}{ns}>")
        for child in children:
            if isinstance(child, Raw):
                out.append(child)
            else:
                _render(out, *child)
        out.append(f"</{root}>")
    return DECLARATION + "".join(out).encode("utf-8")


# --- parsing ---------------------------------------------------------------------------


def local(tag: str) -> str:
    """Element name without its namespace: clients send the S3 namespace, or none."""
    return tag.rsplit("}", 1)[-1]


def parse(body: bytes, root: str) -> Element:
    """Parse an untrusted request body whose root element must be `root`."""
    if not body.strip():
        raise S3Error("MalformedXML")
    try:
        element = fromstring(body)
    except (ParseError, DefusedXmlException, ValueError, UnicodeError):
        raise S3Error("MalformedXML") from None
    if local(element.tag) != root:
        raise S3Error("MalformedXML")
    return element


def children(element: Element, name: str) -> list[Element]:
    return [c for c in element if local(c.tag) == name]


def child(element: Element, name: str) -> Element | None:
    for c in element:
        if local(c.tag) == name:
            return c
    return None


def child_text(element: Element, name: str) -> str | None:
    """Text of the first child called `name` ("" when empty), None when absent."""
    c = child(element, name)
    if c is None:
        return None
    return c.text or ""
