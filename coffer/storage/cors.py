"""A bucket's CORS configuration: its rules, their validation and matching. Pure functions.

Stored as JSON text in `buckets.cors`. Matching follows S3:
- an origin matches an AllowedOrigin exactly or through its one `*` (case-sensitive);
- the method (Access-Control-Request-Method on a preflight, the request's own otherwise)
  must be one of AllowedMethod (GET, PUT, HEAD, POST, DELETE);
- every header named by Access-Control-Request-Headers must match an AllowedHeader
  (case-insensitive, one `*` each);
- the first rule that matches wins.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from coffer.storage.errors import InvalidArgument, InvalidRequest, MalformedDocument

METHODS = ("GET", "PUT", "HEAD", "POST", "DELETE")
MAX_RULES = 100
MAX_ID = 255


@dataclass(frozen=True)
class CorsRule:
    allowed_methods: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    allowed_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age_seconds: int | None = None
    id: str | None = None
    _lower_headers: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lower_headers", tuple(h.lower() for h in self.allowed_headers))

    def matches_origin(self, origin: str) -> str | None:
        """The AllowedOrigin that admits `origin`, or None."""
        for pattern in self.allowed_origins:
            if wildcard_match(pattern, origin):
                return pattern
        return None

    def allows_headers(self, headers: Sequence[str]) -> bool:
        return all(any(wildcard_match(p, h.lower()) for p in self._lower_headers) for h in headers)


def wildcard_match(pattern: str, value: str) -> bool:
    """`pattern` with at most one `*`, which matches any run of characters (even none)."""
    star = pattern.find("*")
    if star < 0:
        return pattern == value
    head, tail = pattern[:star], pattern[star + 1 :]
    return len(value) >= len(head) + len(tail) and value.startswith(head) and value.endswith(tail)


def validate_rules(rules: Sequence[CorsRule]) -> None:
    """S3's checks on PutBucketCors; MalformedDocument for the shape, InvalidRequest for values."""
    if not rules:
        raise MalformedDocument()
    if len(rules) > MAX_RULES:
        raise MalformedDocument(f"The CORS configuration must not have more than {MAX_RULES} rules.")
    for rule in rules:
        if not rule.allowed_methods or not rule.allowed_origins:
            raise MalformedDocument()
        if rule.id is not None and len(rule.id) > MAX_ID:
            raise InvalidArgument(f"The ID of a CORS rule is longer than {MAX_ID} characters.")
        for method in rule.allowed_methods:
            if method not in METHODS:
                raise InvalidRequest(
                    f"Found unsupported HTTP method in CORS config. Unsupported method is {method}",
                )
        for origin in rule.allowed_origins:
            if origin.count("*") > 1:
                raise InvalidRequest(f'AllowedOrigin "{origin}" can not have more than one wildcard.')
        for header in rule.allowed_headers:
            if header.count("*") > 1:
                raise InvalidRequest(f'AllowedHeader "{header}" can not have more than one wildcard.')
        for header in rule.expose_headers:
            if "*" in header:
                raise InvalidRequest(
                    f'ExposeHeader "{header}" contains wildcard. We currently do not support wildcard '
                    "for ExposeHeader.",
                )
        if rule.max_age_seconds is not None and rule.max_age_seconds < 0:
            raise MalformedDocument()


def find_rule(
    rules: Sequence[CorsRule], origin: str, method: str, request_headers: Sequence[str] = ()
) -> tuple[CorsRule, str] | None:
    """The first rule admitting the origin, method and headers, with the origin pattern."""
    for rule in rules:
        if method not in rule.allowed_methods:
            continue
        pattern = rule.matches_origin(origin)
        if pattern is None or not rule.allows_headers(request_headers):
            continue
        return rule, pattern
    return None


def dumps(rules: Sequence[CorsRule]) -> str:
    out = []
    for rule in rules:
        data = asdict(rule)
        data.pop("_lower_headers", None)
        out.append(data)
    return json.dumps(out, separators=(",", ":"))


def loads(text: str | None) -> list[CorsRule]:
    """The stored rules; an unreadable value counts as no configuration."""
    if not text:
        return []
    try:
        data = json.loads(text)
        return [
            CorsRule(
                allowed_methods=tuple(r["allowed_methods"]),
                allowed_origins=tuple(r["allowed_origins"]),
                allowed_headers=tuple(r.get("allowed_headers") or ()),
                expose_headers=tuple(r.get("expose_headers") or ()),
                max_age_seconds=r.get("max_age_seconds"),
                id=r.get("id"),
            )
            for r in data
        ]
    except (ValueError, TypeError, KeyError):
        return []
