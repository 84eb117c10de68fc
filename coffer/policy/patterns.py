"""IAM-style wildcards (`*` any run of characters, `?` one character), compiled once.

Policies are parsed rarely and evaluated on every request, so each pattern is
translated to a regex once (and cached process-wide), and a list of patterns becomes a
`GlobSet` that answers with a set lookup when no wildcard is involved.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache


def has_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def literal_prefix(pattern: str) -> str:
    """The part of a pattern before its first wildcard: every match starts with it."""
    cut = len(pattern)
    for wildcard in "*?":
        found = pattern.find(wildcard)
        if found != -1:
            cut = min(cut, found)
    return pattern[:cut]


def glob_source(pattern: str) -> str:
    """The regex source for one pattern; everything but `*` and `?` is literal.

    `*` crosses `/` (an S3 key is flat, as in AWS: `bucket/*` matches `bucket/a/b`).
    """
    out: list[str] = []
    for ch in pattern:
        if ch == "*":
            if not out or out[-1] != ".*":  # `**` is `*`; avoids needless backtracking
                out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return "".join(out)


@lru_cache(maxsize=8192)
def glob_regex(pattern: str, ignore_case: bool = False) -> re.Pattern[str]:
    """A compiled full-match regex for one pattern."""
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile(glob_source(pattern), flags)


def glob_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return glob_regex(pattern, ignore_case).fullmatch(value) is not None


class GlobSet:
    """Matches a value against any of several patterns with at most one regex call."""

    __slots__ = ("_literals", "_match_all", "_regex", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: tuple[str, ...] = tuple(dict.fromkeys(patterns))
        self._match_all = "*" in self.patterns
        self._literals = frozenset(p for p in self.patterns if not has_wildcard(p))
        wild = [p for p in self.patterns if has_wildcard(p)]
        self._regex: re.Pattern[str] | None = None
        if wild and not self._match_all:
            source = "|".join(f"(?:{glob_source(p)})" for p in sorted(wild))
            self._regex = re.compile(source, re.DOTALL)

    def matches(self, value: str) -> bool:
        if self._match_all or value in self._literals:
            return True
        return self._regex is not None and self._regex.fullmatch(value) is not None

    def __repr__(self) -> str:
        return f"GlobSet({list(self.patterns)!r})"
