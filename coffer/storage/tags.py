"""Tag sets of objects and buckets: S3's limits and character rules. Pure functions.

- Objects: at most 10 tags; more is `TooManyTags`, which the S3 face answers as S3 does:
  `BadRequest` "Object tags cannot be greater than 10" (its error table would suggest InvalidTag).
- Buckets: at most 50 tags (`TooManyTags`, answered `InvalidTag`).
- Keys 1 to 128 and values 0 to 256 characters, counted in UTF-16 code units as S3 does;
  letters, digits, white space and `_ . : / = + - @` only; keys unique; the `aws:` prefix
  is reserved. Each failure is `InvalidTag` with S3's message.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from coffer.storage.errors import InvalidTag, TooManyTags

MAX_OBJECT_TAGS = 10
MAX_BUCKET_TAGS = 50
MAX_KEY = 128
MAX_VALUE = 256
_SYMBOLS = frozenset("_.:/=+-@")


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _allowed(text: str) -> bool:
    return all(c in _SYMBOLS or unicodedata.category(c)[0] in "LNZ" for c in text)


def validate_tags(pairs: Iterable[tuple[str, str]], *, bucket: bool = False) -> dict[str, str]:
    """The tag set as a dict (in the order given); InvalidTag or TooManyTags otherwise."""
    tags: dict[str, str] = {}
    for key, value in pairs:
        if not key or _utf16_length(key) > MAX_KEY or not _allowed(key):
            raise InvalidTag("The TagKey you have provided is invalid")
        if _utf16_length(value) > MAX_VALUE or not _allowed(value):
            raise InvalidTag("The TagValue you have provided is invalid")
        if key.lower().startswith("aws:"):
            raise InvalidTag("Your TagKey cannot be prefixed with aws:")
        if key in tags:
            raise InvalidTag("Cannot provide multiple Tags with the same key")
        tags[key] = value
    if bucket and len(tags) > MAX_BUCKET_TAGS:
        raise TooManyTags(f"Bucket tag count cannot be greater than {MAX_BUCKET_TAGS}", bucket=True)
    if not bucket and len(tags) > MAX_OBJECT_TAGS:
        raise TooManyTags(f"Object tags cannot be greater than {MAX_OBJECT_TAGS}", bucket=False)
    return tags


def sorted_tags(tags: dict[str, str] | None) -> list[tuple[str, str]]:
    """A stored tag set in key order, as S3 returns it."""
    return sorted((tags or {}).items())
