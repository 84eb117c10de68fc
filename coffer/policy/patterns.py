"""IAM-style wildcards (`*` any run of characters, `?` one character), compiled once.

Policies are parsed rarely and evaluated on every request, so each pattern is compiled
once (and cached process-wide), and a list of patterns becomes a `GlobSet` that answers
with a set lookup or one `startswith`/`endswith` call in the common cases.

No regex: a backtracking engine (Python's `re`) takes time exponential in the number of
`*` on a near-miss (`b/*a*a*a*b` against `b/aaaa…`: 25 s for 1,000 characters), and
anyone who may set a policy on their own bucket could stall a whole process with one.
A glob needs no backtracking: split on `*`, the first segment must start the value and
the last must end it, and each middle segment is taken at its leftmost occurrence after
the previous one. Every segment has a fixed length (`?` is one character), so the
leftmost occurrence always leaves the most room for the rest; the match is exact, and
costs at most one scan of the value per segment, O(len(value) · len(pattern)) at worst,
mostly inside `str.find`/`str.startswith`. `coffer.limits` also bounds the patterns a
policy may hold (`check_pattern`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from operator import itemgetter

from coffer.limits import MAX_PATTERN_LENGTH, MAX_PATTERN_WILDCARDS


class PatternError(ValueError):
    """A pattern over the bounds of `coffer.limits`; the message names the bound."""


def has_wildcard(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def wildcard_count(pattern: str) -> int:
    return pattern.count("*") + pattern.count("?")


def check_pattern(pattern: str, what: str = "pattern", *, wildcards: bool = True) -> str:
    """Refuse a policy value over the bounds (PatternError); returns it unchanged.

    `wildcards=False` for values that are compared literally, which only the length bounds.
    """
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(
            f"{what} is {len(pattern)} characters long; at most {MAX_PATTERN_LENGTH} are allowed"
        )
    if wildcards:
        count = wildcard_count(pattern)
        if count > MAX_PATTERN_WILDCARDS:
            raise PatternError(
                f"{what} has {count} wildcards ('*' and '?'); at most {MAX_PATTERN_WILDCARDS} are allowed"
            )
    return pattern


def literal_prefix(pattern: str) -> str:
    """The part of a pattern before its first wildcard: every match starts with it."""
    cut = len(pattern)
    for wildcard in "*?":
        found = pattern.find(wildcard)
        if found != -1:
            cut = min(cut, found)
    return pattern[:cut]


class _Segment:
    """A run between two `*`: literal characters at fixed offsets, `?` anywhere else."""

    __slots__ = ("anchor", "length", "literal", "pick", "wanted")

    def __init__(self, text: str) -> None:
        self.length = len(text)
        self.literal: str | None = None if "?" in text else text
        chunks: list[tuple[int, str]] = []
        offset = 0
        for piece in text.split("?"):
            if piece:
                chunks.append((offset, piece))
            offset += len(piece) + 1
        # The longest literal chunk finds candidate positions; `pick` confirms one in a
        # single C-level call, however many `?` the segment has.
        self.anchor = max(chunks, key=lambda c: len(c[1])) if chunks else None
        fixed = [i for i, ch in enumerate(text) if ch != "?"] if self.literal is None else []
        self.pick: Callable[[str], object] | None = itemgetter(*fixed) if fixed else None
        self.wanted = self.pick(text) if self.pick is not None else None

    def at(self, value: str, pos: int) -> bool:
        """Does the segment match `value` at `pos`? (The caller checked there is room.)"""
        if self.literal is not None:
            return value.startswith(self.literal, pos)
        return self.pick is None or self.pick(value[pos : pos + self.length]) == self.wanted

    def find(self, value: str, start: int, end: int) -> int:
        """The leftmost `pos >= start` where the segment matches inside `value[:end]`, or -1."""
        if self.literal is not None:
            return value.find(self.literal, start, end)
        last = end - self.length  # the last position with room for the segment
        if self.anchor is None:  # only `?`: any position with room
            return start if start <= last else -1
        offset, chunk = self.anchor
        search = start + offset
        while True:
            found = value.find(chunk, search, last + offset + len(chunk))
            if found < 0:
                return -1
            pos = found - offset
            if self.at(value, pos):
                return pos
            search = found + 1


class Glob:
    """One compiled pattern; `matches(value)` is a full match, as `re.fullmatch` was."""

    __slots__ = ("_head", "_middle", "_min_length", "_star", "_tail", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        parts = pattern.split("*")
        self._star = len(parts) > 1
        self._head = _Segment(parts[0])
        self._tail = _Segment(parts[-1]) if self._star else None
        self._middle = tuple(_Segment(p) for p in parts[1:-1] if p)  # `**` is `*`
        self._min_length = len(pattern) - pattern.count("*")

    def matches(self, value: str) -> bool:
        size = len(value)
        head, tail = self._head, self._tail
        if tail is None:  # no `*`: lengths must agree
            return size == head.length and head.at(value, 0)
        if size < self._min_length:
            return False
        end = size - tail.length
        if (head.length and not head.at(value, 0)) or (tail.length and not tail.at(value, end)):
            return False
        pos = head.length
        for segment in self._middle:
            found = segment.find(value, pos, end)
            if found < 0:
                return False
            pos = found + segment.length
        return True

    def __repr__(self) -> str:
        return f"Glob({self.pattern!r})"


def _prefix_only(pattern: str) -> bool:
    """`literal*`: matched by `str.startswith` alone."""
    return pattern.endswith("*") and not has_wildcard(pattern.rstrip("*"))


def _suffix_only(pattern: str) -> bool:
    """`*literal`: matched by `str.endswith` alone."""
    return pattern.startswith("*") and not has_wildcard(pattern.lstrip("*"))


@lru_cache(maxsize=8192)
def compile_glob(pattern: str) -> Callable[[str], bool]:
    """The full-match test for one pattern, with the cheapest shape that is exact."""
    if not has_wildcard(pattern):
        return pattern.__eq__
    if pattern.strip("*") == "":
        return lambda _value: True
    if _prefix_only(pattern):
        prefix = pattern.rstrip("*")
        return lambda value: value.startswith(prefix)
    if _suffix_only(pattern):
        suffix = pattern.lstrip("*")
        return lambda value: value.endswith(suffix)
    if "?" not in pattern:
        return _stars_only(pattern)
    return Glob(pattern).matches


def _stars_only(pattern: str) -> Callable[[str], bool]:
    """`Glob.matches` for a pattern without `?`, all of it in `str` methods."""
    head, *middle, tail = pattern.split("*")
    middle = [m for m in middle if m]
    least = len(head) + len(tail)
    if not middle:
        return lambda value: len(value) >= least and value.startswith(head) and value.endswith(tail)
    least += sum(map(len, middle))
    start = len(head)

    def matches(value: str) -> bool:
        if len(value) < least or not value.startswith(head) or not value.endswith(tail):
            return False
        pos, end = start, len(value) - len(tail)
        for segment in middle:
            pos = value.find(segment, pos, end)
            if pos < 0:
                return False
            pos += len(segment)
        return True

    return matches


def glob_match(pattern: str, value: str) -> bool:
    return compile_glob(pattern)(value)


class GlobSet:
    """Matches a value against any of several patterns.

    Literals are one set lookup, `prefix*` patterns one `startswith` over all of them,
    `*suffix` ones one `endswith`; only the other patterns are tried one by one.
    """

    __slots__ = ("_literals", "_match_all", "_others", "_prefixes", "_suffixes", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: tuple[str, ...] = tuple(dict.fromkeys(patterns))
        wild = sorted(p for p in self.patterns if has_wildcard(p))
        self._match_all = any(p.strip("*") == "" for p in wild)
        self._literals = frozenset(p for p in self.patterns if not has_wildcard(p))
        self._prefixes = tuple(p.rstrip("*") for p in wild if _prefix_only(p))
        self._suffixes = tuple(p.lstrip("*") for p in wild if _suffix_only(p) and not _prefix_only(p))
        self._others = tuple(compile_glob(p) for p in wild if not _prefix_only(p) and not _suffix_only(p))

    def matches(self, value: str) -> bool:
        if self._match_all or value in self._literals:
            return True
        if self._prefixes and value.startswith(self._prefixes):
            return True
        if self._suffixes and value.endswith(self._suffixes):
            return True
        for test in self._others:  # noqa: SIM110 - any() over a generator costs more than the tests
            if test(value):
                return True
        return False

    def __repr__(self) -> str:
        return f"GlobSet({list(self.patterns)!r})"
