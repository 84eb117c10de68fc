"""Bucket-policy `Condition` blocks: parsing, compiling and evaluating, with AWS semantics.

A block is `{operator: {key: value | [values]}}`. Every operator in a block and every key
under an operator must hold (AND); the values listed for one key are alternatives (OR).
Negated operators (`StringNotEquals`, `NotIpAddress`, ...) hold when the request value
matches *none* of the values, and so hold when the key is missing. `...IfExists` holds
when the key is missing. `ForAnyValue:`/`ForAllValues:` compare a multi-valued key
(e.g. `iam:<ORG-ID>:groups`) value by value. Without a qualifier a multi-valued key
behaves like `ForAnyValue` for positive operators ("the groups include X") and, for
negated operators, holds when no value matches ("the groups do not include X").

Policy values are parsed when the policy is, so a malformed date, number or CIDR is a
`MalformedPolicy` at PutBucketPolicy time rather than a silent non-match later.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from coffer.policy.patterns import GlobSet, PatternError, check_pattern, compile_glob

# A request's value for a key: None when the key is missing, else one or more strings.
Lookup = Callable[[str], tuple[str, ...] | None]


class ConditionError(ValueError):
    """A condition block a bucket policy may not contain; the message says why."""


class _Base(enum.Enum):
    STRING = "string"
    STRING_IC = "string-ignore-case"
    STRING_LIKE = "string-like"
    ARN = "arn"
    NUM_EQ = "numeric-eq"
    NUM_LT = "numeric-lt"
    NUM_LE = "numeric-le"
    NUM_GT = "numeric-gt"
    NUM_GE = "numeric-ge"
    DATE_EQ = "date-eq"
    DATE_LT = "date-lt"
    DATE_LE = "date-le"
    DATE_GT = "date-gt"
    DATE_GE = "date-ge"
    BOOL = "bool"
    IP = "ip"
    NULL = "null"


# operator name -> (comparison, negated)
OPERATORS: Mapping[str, tuple[_Base, bool]] = {
    "StringEquals": (_Base.STRING, False),
    "StringNotEquals": (_Base.STRING, True),
    "StringEqualsIgnoreCase": (_Base.STRING_IC, False),
    "StringNotEqualsIgnoreCase": (_Base.STRING_IC, True),
    "StringLike": (_Base.STRING_LIKE, False),
    "StringNotLike": (_Base.STRING_LIKE, True),
    "ArnEquals": (_Base.ARN, False),
    "ArnLike": (_Base.ARN, False),
    "ArnNotEquals": (_Base.ARN, True),
    "ArnNotLike": (_Base.ARN, True),
    "NumericEquals": (_Base.NUM_EQ, False),
    "NumericNotEquals": (_Base.NUM_EQ, True),
    "NumericLessThan": (_Base.NUM_LT, False),
    "NumericLessThanEquals": (_Base.NUM_LE, False),
    "NumericGreaterThan": (_Base.NUM_GT, False),
    "NumericGreaterThanEquals": (_Base.NUM_GE, False),
    "DateEquals": (_Base.DATE_EQ, False),
    "DateNotEquals": (_Base.DATE_EQ, True),
    "DateLessThan": (_Base.DATE_LT, False),
    "DateLessThanEquals": (_Base.DATE_LE, False),
    "DateGreaterThan": (_Base.DATE_GT, False),
    "DateGreaterThanEquals": (_Base.DATE_GE, False),
    "Bool": (_Base.BOOL, False),
    "IpAddress": (_Base.IP, False),
    "NotIpAddress": (_Base.IP, True),
    "Null": (_Base.NULL, False),
}

ANY_VALUE = "ForAnyValue:"
ALL_VALUES = "ForAllValues:"
IF_EXISTS = "IfExists"

_KEY_SYNTAX = re.compile(r"[A-Za-z0-9_.-]+:\S+")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_EPOCH = re.compile(r"-?\d+(?:\.\d+)?")
MAX_KEY_LENGTH = 256


def normalize_key(key: str) -> str:
    """Condition keys are case-insensitive, except a tag key after `/` (`s3:ExistingObjectTag/Env`)."""
    head, sep, tail = key.partition("/")
    return head.lower() + sep + tail


def parse_number(text: str) -> Decimal | None:
    """A decimal number, or None (no NaN, infinities or digit separators)."""
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
        return None


def parse_date(text: str) -> datetime | None:
    """ISO 8601 (`2026-01-01`, `2026-01-01T12:00:00Z`, offsets) or epoch seconds; None if neither.

    Times without an offset are UTC, as AWS reads them.
    """
    try:
        if _EPOCH.fullmatch(text):
            return datetime.fromtimestamp(float(text), UTC)
        value = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


class _ArnPattern:
    """An ARN pattern compared component by component, as ArnLike/ArnEquals do."""

    __slots__ = ("parts",)

    def __init__(self, pattern: str) -> None:
        pieces = pattern.split(":", 5)
        if len(pieces) != 6 or pieces[0] != "arn":
            raise ConditionError(f"Invalid ARN in condition: {pattern!r}")
        self.parts = tuple(compile_glob(p) for p in pieces)

    def matches(self, value: str) -> bool:
        pieces = value.split(":", 5)
        if len(pieces) != 6:
            return False
        return all(test(piece) for test, piece in zip(self.parts, pieces, strict=True))


def _policy_values(raw: Any, operator: str, key: str) -> tuple[str, ...]:
    """JSON condition values as strings (AWS accepts numbers and booleans too)."""
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise ConditionError(f"Condition {operator} on {key} has no values")
    out: list[str] = []
    for item in items:
        if isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, int | float) and not isinstance(item, bool):
            out.append(str(item))
        elif isinstance(item, str):
            out.append(item)
        else:
            raise ConditionError(f"Condition {operator} on {key} has a value that is not a string")
    return tuple(out)


_Test = Callable[[str], bool]


def _compile_test(base: _Base, values: tuple[str, ...], operator: str, key: str) -> _Test:
    """A function telling whether one request value matches any of the policy values."""
    if base is _Base.STRING:
        wanted = frozenset(values)
        return wanted.__contains__
    if base is _Base.STRING_IC:
        folded = frozenset(v.casefold() for v in values)
        return lambda r: r.casefold() in folded
    if base is _Base.STRING_LIKE:
        return GlobSet(values).matches
    if base is _Base.ARN:
        arns = [_ArnPattern(v) for v in values]
        return lambda r: any(a.matches(r) for a in arns)
    if base is _Base.BOOL:
        bools = set()
        for v in values:
            if v.lower() not in ("true", "false"):
                raise ConditionError(f"Condition {operator} on {key} needs 'true' or 'false', got {v!r}")
            bools.add(v.lower())
        return lambda r: r.lower() in bools
    if base is _Base.IP:
        nets = []
        for v in values:
            try:
                nets.append(ipaddress.ip_network(v.strip(), strict=False))
            except ValueError:
                raise ConditionError(f"Invalid IP address or CIDR in condition: {v!r}") from None

        def ip_test(r: str) -> bool:
            addr = _parse_ip(r)
            if addr is None:
                return False
            candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [addr]
            if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
                candidates.append(addr.ipv4_mapped)
            return any(a.version == n.version and a in n for a in candidates for n in nets)

        return ip_test
    if base.value.startswith("numeric"):
        return _ordered_test(values, parse_number, base, f"Condition {operator} on {key} needs a number")
    if base.value.startswith("date"):
        return _ordered_test(
            values,
            parse_date,
            base,
            f"Condition {operator} on {key} needs an ISO 8601 date or epoch seconds",
        )
    raise AssertionError(f"unhandled operator kind {base}")  # pragma: no cover


def _ordered_test(values: Iterable[str], parse: Callable[[str], Any], base: _Base, need: str) -> _Test:
    """A numeric or date comparison: each policy value parsed now, each request value when asked."""
    bounds = []
    for v in values:
        bound = parse(v)
        if bound is None:
            raise ConditionError(f"{need}, got {v!r}")
        bounds.append(bound)
    compare = _ORDER[base.value.rsplit("-", 1)[1]]

    def ordered_test(r: str) -> bool:
        got = parse(r.strip())
        return got is not None and any(compare(got, b) for b in bounds)

    return ordered_test


_ORDER: Mapping[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


class _Qualifier(enum.Enum):
    NONE = ""
    ANY = "any"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class Condition:
    """One `operator / key / values` triple, compiled."""

    operator: str  # as written, e.g. "ForAnyValue:StringLikeIfExists"
    key: str  # as written
    values: tuple[str, ...]
    lookup_key: str  # normalize_key(key)
    base: _Base
    negated: bool
    if_exists: bool
    qualifier: _Qualifier
    test: _Test

    def evaluate(self, lookup: Lookup) -> bool:
        found = lookup(self.lookup_key)
        if self.base is _Base.NULL:
            present = bool(found)
            return ("false" if present else "true") in self.values
        if not found:
            if self.if_exists or self.qualifier is _Qualifier.ALL:
                return True
            if self.qualifier is _Qualifier.ANY:
                return False
            return self.negated
        if self.qualifier is _Qualifier.ALL:
            return all(self.test(r) != self.negated for r in found)
        if self.qualifier is _Qualifier.ANY:
            return any(self.test(r) != self.negated for r in found)
        hit = any(self.test(r) for r in found)
        return hit != self.negated

    def pins(self) -> bool:
        """Does this condition hold only for request values among fixed, literal ones? A
        positive comparison without IfExists or ForAllValues (either holds when the key is
        missing), with no wildcard, and IP ranges no wider than a /8 (IPv4) or a /32 (IPv6):
        what Block Public Access asks of a statement open to "*" before calling it non-public."""
        if self.negated or self.if_exists or self.qualifier is _Qualifier.ALL:
            return False
        if self.base in (_Base.STRING, _Base.STRING_IC):
            return True
        if self.base in (_Base.STRING_LIKE, _Base.ARN):
            return not any("*" in v or "?" in v for v in self.values)
        if self.base is _Base.IP:
            nets = [ipaddress.ip_network(v.strip(), strict=False) for v in self.values]
            return all(n.prefixlen >= (8 if n.version == 4 else 32) for n in nets)
        return False


def parse_operator(operator: str) -> tuple[_Base, bool, bool, _Qualifier]:
    """Split `ForAnyValue:StringLikeIfExists` into its parts; ConditionError if unknown."""
    qualifier = _Qualifier.NONE
    name = operator
    if name.startswith(ANY_VALUE):
        qualifier, name = _Qualifier.ANY, name[len(ANY_VALUE) :]
    elif name.startswith(ALL_VALUES):
        qualifier, name = _Qualifier.ALL, name[len(ALL_VALUES) :]
    if_exists = name.endswith(IF_EXISTS) and name != IF_EXISTS
    if if_exists:
        name = name[: -len(IF_EXISTS)]
    if name not in OPERATORS:
        raise ConditionError(f"Unknown condition operator {operator}")
    base, negated = OPERATORS[name]
    if base is _Base.NULL and (if_exists or qualifier is not _Qualifier.NONE):
        raise ConditionError(f"Unknown condition operator {operator} (Null takes no qualifier or IfExists)")
    return base, negated, if_exists, qualifier


def parse_condition(operator: str, key: str, raw: Any) -> Condition:
    base, negated, if_exists, qualifier = parse_operator(operator)
    if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH or not _KEY_SYNTAX.fullmatch(key):
        raise ConditionError(f"Policy has an invalid condition key: {key!r}")
    values = _policy_values(raw, operator, key)
    is_pattern = base in (_Base.STRING_LIKE, _Base.ARN)
    for value in values:
        try:
            check_pattern(value, "condition value", wildcards=is_pattern)
        except PatternError as exc:
            raise ConditionError(f"Condition {operator} on {key}: {exc}") from None
    if base is _Base.NULL:
        for v in values:
            if v.lower() not in ("true", "false"):
                raise ConditionError(f"Condition Null on {key} needs 'true' or 'false', got {v!r}")
        values = tuple(v.lower() for v in values)
        test: _Test = bool  # unused: Null looks only at presence
    else:
        test = _compile_test(base, values, operator, key)
    return Condition(
        operator=operator,
        key=key,
        values=values,
        lookup_key=normalize_key(key),
        base=base,
        negated=negated,
        if_exists=if_exists,
        qualifier=qualifier,
        test=test,
    )


@dataclass(frozen=True, slots=True)
class ConditionBlock:
    """A statement's whole Condition element: every condition must hold."""

    conditions: tuple[Condition, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.conditions)

    def evaluate(self, lookup: Lookup) -> bool:
        return all(c.evaluate(lookup) for c in self.conditions)


EMPTY = ConditionBlock()


def parse_condition_block(raw: Any) -> ConditionBlock:
    """Parse a statement's `Condition` object; raises ConditionError with an AWS-like reason."""
    if not isinstance(raw, dict):
        raise ConditionError("Condition must be an object of operators")
    conditions: list[Condition] = []
    for operator, keys in raw.items():
        if not isinstance(keys, dict) or not keys:
            parse_operator(operator)  # an unknown operator is the better message
            raise ConditionError(f"Condition {operator} must map condition keys to values")
        for key, values in keys.items():
            conditions.append(parse_condition(operator, key, values))
    return ConditionBlock(tuple(conditions))
