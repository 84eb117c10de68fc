"""Key scopes: an inline policy that narrows what one access key may do (Coffer extension).

    {"statements": [{"name": "...", "effect": "Allow" | "Deny",
                     "actions": ["s3:..."], "resources": ["bucket/prefix*"],
                     "conditions": {"StringEquals": {"s3:prefix": ["..."]}}}]}

The statement form is the organization policy's without `principals` (the key is the
principal), `s3:` actions only (`*` means every `s3:` action, as in a bucket policy), and
an optional `conditions` block in the bucket-policy syntax. The parser's bounds are the
organization policy's (statement count, entries per list, pattern complexity) plus a size
cap. A scope only ever takes away: `engine.evaluate` lets a request through only when the owner's
decision allowed it and the scope allows it too (docs/policies.md, decision 0185).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from coffer.policy.actions import S3_SERVICE, ActionError, expand
from coffer.policy.conditions import EMPTY, ConditionBlock, ConditionError, Lookup, parse_condition_block
from coffer.policy.errors import InvalidOrgPolicy
from coffer.policy.org import Effect, check_document, checked_list, parse_statements, statement_head
from coffer.policy.patterns import GlobSet
from coffer.policy.resources import ResourceError, check_short_resource

MAX_SCOPE_BYTES = 20 * 1024  # as a bucket policy: the compact JSON of the whole scope
_SCOPE_FIELDS = frozenset({"statements"})
_STATEMENT_FIELDS = frozenset({"name", "effect", "actions", "resources", "conditions"})


def _s3_actions(entry: str) -> frozenset[str]:
    return expand(entry, (S3_SERVICE,))


@dataclass(frozen=True, slots=True)
class ScopeVerdict:
    """What the scope says about one request: the deciding statement's name, if any."""

    allowed: bool
    statement: str | None


_NO_ALLOW = ScopeVerdict(False, None)


@dataclass(frozen=True, slots=True)
class ScopeStatement:
    name: str
    effect: Effect
    actions: frozenset[str]  # canonical keys
    resources: GlobSet
    condition: ConditionBlock
    verdict: ScopeVerdict  # what this statement decides when it is the first to match, built once

    def applies(self, action: str, resource: str, lookup: Lookup) -> bool:
        if action not in self.actions or not self.resources.matches(resource):
            return False
        return not self.condition or self.condition.evaluate(lookup)


@dataclass(frozen=True, slots=True)
class KeyScope:
    """A validated scope: the document as stored and shown, and its compiled statements."""

    document: dict[str, Any]
    statements: tuple[ScopeStatement, ...]
    # The Deny statements, then the Allow ones: the order `decide` asks them in.
    ordered: tuple[ScopeStatement, ...] = ()

    def decide(self, action: str, resource: str, lookup: Lookup) -> ScopeVerdict:
        """A matching Deny refuses; else a matching Allow admits; else nothing admits (refused)."""
        for stmt in self.ordered:
            if stmt.applies(action, resource, lookup):
                return stmt.verdict
        return _NO_ALLOW


# Admits nothing: what a stored scope that no longer validates becomes (fail closed).
DENY_ALL = KeyScope({"statements": []}, ())


def _statement(raw: Any, path: str, index: int) -> tuple[dict[str, Any], ScopeStatement]:
    name, effect, where = statement_head(raw, path, index, _STATEMENT_FIELDS)
    actions = checked_list(raw, "actions", "action", _s3_actions, ActionError, path, where)
    resources = checked_list(raw, "resources", "resource", check_short_resource, ResourceError, path, where)
    doc: dict[str, Any] = {"name": name, "effect": effect.value, "actions": actions, "resources": resources}
    condition = EMPTY
    if raw.get("conditions") is not None:
        try:
            condition = parse_condition_block(raw["conditions"])
        except ConditionError as exc:
            raise InvalidOrgPolicy(f"{path}.conditions", f"{where}: {exc}") from None
        doc["conditions"] = raw["conditions"]
    keys: set[str] = set()
    for action in actions:
        keys |= _s3_actions(action)
    verdict = ScopeVerdict(effect is Effect.ALLOW, name)
    return doc, ScopeStatement(name, effect, frozenset(keys), GlobSet(resources), condition, verdict)


def parse_scope(obj: Any, *, field_prefix: str = "scope") -> KeyScope:
    """Validate a scope document; raises InvalidOrgPolicy naming the offending field."""
    p = field_prefix
    check_document(obj, p, _SCOPE_FIELDS, 'must be an object: {"statements": [...]}')
    try:
        size = len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "replace"))
    except ValueError:  # pragma: no cover - JSON bodies parse into serializable values
        raise InvalidOrgPolicy(p, "must be JSON") from None
    if size > MAX_SCOPE_BYTES:
        raise InvalidOrgPolicy(p, f"is {size} bytes as JSON; at most {MAX_SCOPE_BYTES} are allowed")
    parsed = parse_statements(obj, p, _statement, lambda pair: pair[1].name)
    docs = [doc for doc, _ in parsed]
    statements = [stmt for _, stmt in parsed]
    ordered = sorted(statements, key=lambda s: s.effect is not Effect.DENY)  # stable: Denies first
    return KeyScope({"statements": docs}, tuple(statements), tuple(ordered))
