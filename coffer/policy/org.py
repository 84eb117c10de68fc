"""Organization access policies (CoreWeave `CWObjectPolicy`): parse, validate, compile.

    {"version": "v1alpha1", "name": "...",
     "statements": [{"name": "...", "effect": "Allow" | "Deny",
                     "actions": [...], "resources": [...], "principals": [...]}]}

`parse_org_policy` is pure: it turns the JSON object the control plane received into an
`OrgPolicy` or raises `InvalidOrgPolicy` naming the offending field (and statement), so
EnsureAccessPolicy can answer 400 with a google.rpc.BadRequest. `compile_org_policies`
turns the policies of one organization into the index the engine evaluates against;
callers cache that object and rebuild it when a policy changes.
"""

from __future__ import annotations

import enum
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from coffer.policy.actions import ActionError, expand
from coffer.policy.errors import InvalidOrgPolicy
from coffer.policy.patterns import GlobSet, PatternError, check_pattern, literal_prefix
from coffer.policy.principals import PrincipalError, check_short_form
from coffer.policy.resources import ResourceError, bucket_literal, check_short_resource

ORG_POLICY_VERSION = "v1alpha1"
# Policy names appear in URL paths (DELETE /v1/cwobject/access-policy/{name}), so they
# are restricted to URL- and log-safe characters.
POLICY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_STATEMENT_NAME = 128
MAX_STATEMENTS = 100
MAX_ENTRIES = 500
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_POLICY_FIELDS = frozenset({"version", "name", "statements"})
_STATEMENT_FIELDS = frozenset({"name", "effect", "actions", "resources", "principals"})
_T = TypeVar("_T")


class Effect(enum.Enum):
    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True, slots=True)
class OrgStatement:
    name: str
    effect: Effect
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    principals: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "effect": self.effect.value,
            "actions": list(self.actions),
            "resources": list(self.resources),
            "principals": list(self.principals),
        }


@dataclass(frozen=True, slots=True)
class OrgPolicy:
    """A validated organization policy, as stored and as returned by ListAccessPolicies."""

    name: str
    statements: tuple[OrgStatement, ...]
    version: str = ORG_POLICY_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "name": self.name,
            "statements": [s.to_dict() for s in self.statements],
        }


def _fail(path: str, description: str) -> InvalidOrgPolicy:
    return InvalidOrgPolicy(path, description)


def _string_list(raw: Any, path: str, what: str, where: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise _fail(path, f"{where}: {what} must be a list of strings")
    if not raw:
        raise _fail(path, f"{where}: {what} must not be empty")
    if len(raw) > MAX_ENTRIES:
        raise _fail(path, f"{where}: at most {MAX_ENTRIES} {what} are allowed")
    return list(raw)


def _check_bounds(values: list[str], path: str, what: str, where: str) -> None:
    """Every value within coffer.limits' pattern bounds, so evaluating one costs a known amount."""
    for i, value in enumerate(values):
        try:
            check_pattern(value, what)
        except PatternError as exc:
            raise _fail(f"{path}[{i}]", f"{where}: {exc}") from None


def _parse_statement(raw: Any, path: str, index: int) -> OrgStatement:
    name, effect, where = statement_head(raw, path, index, _STATEMENT_FIELDS)
    actions = checked_list(raw, "actions", "action", expand, ActionError, path, where)
    resources = checked_list(raw, "resources", "resource", check_short_resource, ResourceError, path, where)
    principals = checked_list(raw, "principals", "principal", check_short_form, PrincipalError, path, where)
    return OrgStatement(name, effect, tuple(actions), tuple(resources), tuple(principals))


def statement_head(raw: Any, path: str, index: int, fields: frozenset[str]) -> tuple[str, Effect, str]:
    """A statement's name and effect, checked, and how errors name it; shared with key scopes."""
    if not isinstance(raw, dict):
        raise _fail(path, f"statement #{index + 1} must be an object")
    name = raw.get("name")
    where = f"statement {name!r}" if isinstance(name, str) and name else f"statement #{index + 1}"
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise _fail(f"{path}.{unknown[0]}", f"{where}: unknown field {unknown[0]!r}")
    if not isinstance(name, str) or not name.strip():
        raise _fail(f"{path}.name", f"{where}: name is required")
    if len(name) > MAX_STATEMENT_NAME or _CONTROL_CHARS.search(name):
        raise _fail(f"{path}.name", f"{where}: name must be 1-{MAX_STATEMENT_NAME} printable characters")
    effect_raw = raw.get("effect")
    if effect_raw is None:
        raise _fail(f"{path}.effect", f"{where}: effect is required")
    try:
        effect = Effect(effect_raw)
    except ValueError:
        raise _fail(
            f"{path}.effect",
            f"{where}: effect must be 'Allow' or 'Deny' (case-sensitive), got {effect_raw!r}",
        ) from None
    return name, effect, where


def checked_list(
    raw: Mapping[str, Any],
    field: str,
    singular: str,
    check: Callable[[str], object],
    error: type[Exception],
    path: str,
    where: str,
) -> list[str]:
    """A statement's list field: strings, within bounds, each one passing `check`."""
    items = _string_list(raw.get(field), f"{path}.{field}", field, where)
    _check_bounds(items, f"{path}.{field}", singular, where)
    for i, item in enumerate(items):
        try:
            check(item)
        except error as exc:
            raise _fail(f"{path}.{field}[{i}]", f"{where}: {exc}") from None
    return items


def check_document(obj: Any, path: str, fields: frozenset[str], not_object: str) -> None:
    """A document is an object of known fields only; shared with key scopes."""
    if not isinstance(obj, dict):
        raise _fail(path, not_object)
    unknown = sorted(set(obj) - fields)
    if unknown:
        raise _fail(f"{path}.{unknown[0]}", f"unknown field {unknown[0]!r}")


def parse_statements(
    obj: Mapping[str, Any], path: str, parse: Callable[[Any, str, int], _T], name_of: Callable[[_T], str]
) -> list[_T]:
    """A document's 1-MAX_STATEMENTS statements, each parsed, their names unique; shared with key scopes."""
    raw_statements = obj.get("statements")
    if not isinstance(raw_statements, list) or not raw_statements:
        raise _fail(f"{path}.statements", "at least one statement is required")
    if len(raw_statements) > MAX_STATEMENTS:
        raise _fail(f"{path}.statements", f"at most {MAX_STATEMENTS} statements are allowed")
    parsed: list[_T] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_statements):
        item = parse(raw, f"{path}.statements[{i}]", i)
        name = name_of(item)
        if name in seen:
            raise _fail(f"{path}.statements[{i}].name", f"statement name {name!r} is used twice")
        seen.add(name)
        parsed.append(item)
    return parsed


def parse_org_policy(obj: Any, *, field_prefix: str = "policy") -> OrgPolicy:
    """Validate a CWObjectPolicy JSON object; raises InvalidOrgPolicy naming the field.

    Rules (docs/policies.md): version `v1alpha1`; name 1-128 of `[A-Za-z0-9._-]`,
    starting alphanumeric; 1-100 statements, each with a unique name, an `Allow`/`Deny`
    effect and non-empty actions, resources and principals in short form; unknown
    fields are refused so a misspelt key never silently drops a restriction.
    """
    p = field_prefix
    check_document(obj, p, _POLICY_FIELDS, "policy must be an object")
    version = obj.get("version")
    if version != ORG_POLICY_VERSION:
        raise _fail(f"{p}.version", f"version must be {ORG_POLICY_VERSION!r}, got {version!r}")
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(f"{p}.name", "name is required")
    if not POLICY_NAME.fullmatch(name):
        raise _fail(
            f"{p}.name",
            f"name {name!r} must be 1-128 characters of letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    statements = parse_statements(obj, p, _parse_statement, lambda stmt: stmt.name)
    return OrgPolicy(name=name, statements=tuple(statements))


# --- compiled form -----------------------------------------------------------------------

EVERYONE = "*"


@dataclass(frozen=True, slots=True)
class CompiledOrgStatement:
    """One statement with its actions expanded and its resources compiled."""

    policy: str
    name: str
    effect: Effect
    actions: frozenset[str]  # canonical action keys (lower case)
    resources: GlobSet
    principals: frozenset[str]  # short forms; "*" for everyone

    @property
    def order(self) -> tuple[str, str]:
        """The tie-break among matching statements: stable whatever the storage order."""
        return (self.policy, self.name)


def compile_org_statement(policy: str, stmt: OrgStatement) -> CompiledOrgStatement:
    actions: set[str] = set()
    for action in stmt.actions:
        actions |= expand(action)
    return CompiledOrgStatement(
        policy=policy,
        name=stmt.name,
        effect=stmt.effect,
        actions=frozenset(actions),
        resources=GlobSet(stmt.resources),
        principals=frozenset(stmt.principals),
    )


_IndexKey = tuple[bool, str, str]  # is-Deny, action key, principal short form or "*"
_SMALL_LIST = 8


class StatementList:
    """The statements filed under one index key, as positions in the policy set's order.

    `candidates()` narrows a long list by resource: a pattern whose bucket part is
    literal (`data/*`, `data/pre*`, `data`) can only match resources in that bucket, so
    it is filed under the bucket name; a pattern with a wildcard in its bucket part
    (`*`, `b?/x`, `team-*`) is filed under its literal prefix. Short lists are returned
    whole; checking them is cheaper than narrowing them.
    """

    __slots__ = ("_by_bucket", "_wild", "_wild_lengths", "positions")

    def __init__(self, positions: tuple[int, ...], statements: tuple[CompiledOrgStatement, ...]) -> None:
        self.positions = positions
        by_bucket: dict[str, set[int]] = defaultdict(set)
        wild: dict[str, set[int]] = defaultdict(set)
        if len(positions) > _SMALL_LIST:
            for position in positions:
                for pattern in statements[position].resources.patterns:
                    bucket = bucket_literal(pattern)
                    if bucket is not None:
                        by_bucket[bucket].add(position)
                    else:
                        wild[literal_prefix(pattern)].add(position)
        self._by_bucket: dict[str, tuple[int, ...]] = {k: tuple(sorted(v)) for k, v in by_bucket.items()}
        self._wild: dict[str, tuple[int, ...]] = {k: tuple(sorted(v)) for k, v in wild.items()}
        self._wild_lengths = tuple(sorted({len(k) for k in wild}))

    def candidates(self, resource: str) -> tuple[int, ...] | set[int]:
        """Positions whose resource patterns might match `resource` (sorted if a tuple)."""
        if len(self.positions) <= _SMALL_LIST:
            return self.positions
        found = self._by_bucket.get(resource.partition("/")[0], ())
        if not self._wild_lengths:
            return found
        out = set(found)
        for length in self._wild_lengths:
            if length > len(resource):
                break
            out.update(self._wild.get(resource[:length], ()))
        return out


class OrgPolicySet:
    """The compiled organization policies of one organization: what step 1 evaluates.

    Statements are indexed by (effect, action, principal), then by resource (see
    `StatementList`), and each entry of the index
    is sorted by (policy name, statement name), so a decision touches only statements
    that could apply and always names the same deciding statement, whatever order the
    policies were stored or written in.
    """

    __slots__ = ("_index", "names", "statements")

    def __init__(self, policies: Iterable[OrgPolicy]) -> None:
        policies = list(policies)
        seen: set[str] = set()
        for policy in policies:
            if policy.name in seen:  # names are unique per organization; a duplicate is a bug upstream
                raise ValueError(f"organization policy {policy.name!r} appears twice")
            seen.add(policy.name)
        statements = [compile_org_statement(p.name, s) for p in policies for s in p.statements]
        statements.sort(key=lambda s: s.order)
        self.names: tuple[str, ...] = tuple(sorted({s.policy for s in statements}))
        self.statements: tuple[CompiledOrgStatement, ...] = tuple(statements)
        index: dict[_IndexKey, list[int]] = defaultdict(list)
        for position, stmt in enumerate(statements):
            is_deny = stmt.effect is Effect.DENY
            # "*" already names everyone, so listing a named principal too adds nothing.
            principals = (EVERYONE,) if EVERYONE in stmt.principals else stmt.principals
            for action in stmt.actions:
                for principal in principals:
                    index[(is_deny, action, principal)].append(position)
        # `s3:*` files the same statements under ~170 action keys: build one list for them.
        shared: dict[tuple[int, ...], StatementList] = {}
        built: dict[_IndexKey, StatementList] = {}
        for key, positions in index.items():
            ident = tuple(positions)
            found = shared.get(ident)
            if found is None:
                found = shared[ident] = StatementList(ident, self.statements)
            built[key] = found
        self._index: Mapping[_IndexKey, StatementList] = built

    def __bool__(self) -> bool:
        return bool(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def first_match(
        self, effect: Effect, action: str, resource: str, principals: Iterable[str]
    ) -> CompiledOrgStatement | None:
        """The lowest-ordered statement of `effect` that matches, or None.

        `principals` are the keys to look up: "*" always, plus the caller's names when
        the caller is authenticated.
        """
        is_deny = effect is Effect.DENY
        lists = [found for p in principals if (found := self._index.get((is_deny, action, p))) is not None]
        if not lists:
            return None
        if len(lists) == 1:
            candidates = lists[0].candidates(resource)
            ordered = candidates if isinstance(candidates, tuple) else sorted(candidates)
        else:  # the caller's name and aliases may file the same statement twice: check it once
            merged: set[int] = set()
            for found in lists:
                merged.update(found.candidates(resource))
            ordered = sorted(merged)
        for position in ordered:
            stmt = self.statements[position]
            if stmt.resources.matches(resource):
                return stmt
        return None


def compile_org_policies(policies: Iterable[OrgPolicy]) -> OrgPolicySet:
    """Compile one organization's policies for `engine.evaluate`; cache the result."""
    return OrgPolicySet(policies)
