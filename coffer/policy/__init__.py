"""The policy engine: organization and bucket policies, and the decision they make.

Pure logic: no HTTP, no SQL. Parse once (`parse_org_policy`, `parse_bucket_policy`),
compile once (`compile_org_policies`, `compile_bucket_policy`), then `evaluate()` on
every request. docs/policies.md describes the language and the algorithm.
"""

from coffer.policy.actions import ACTIONS, RPC_ACTIONS, ActionSpec, Scope, canonical, is_global
from coffer.policy.bucket import (
    BucketPolicy,
    CompiledBucketPolicy,
    compile_bucket_policy,
    parse_bucket_policy,
)
from coffer.policy.engine import Decision, RequestContext, Rule, evaluate, org_policy_set
from coffer.policy.errors import InvalidOrgPolicy, MalformedPolicy, PolicyError
from coffer.policy.org import Effect, OrgPolicy, OrgPolicySet, compile_org_policies, parse_org_policy
from coffer.policy.resources import request_resource

__all__ = [
    "ACTIONS",
    "RPC_ACTIONS",
    "ActionSpec",
    "BucketPolicy",
    "CompiledBucketPolicy",
    "Decision",
    "Effect",
    "InvalidOrgPolicy",
    "MalformedPolicy",
    "OrgPolicy",
    "OrgPolicySet",
    "PolicyError",
    "RequestContext",
    "Rule",
    "Scope",
    "canonical",
    "compile_bucket_policy",
    "compile_org_policies",
    "evaluate",
    "is_global",
    "org_policy_set",
    "parse_bucket_policy",
    "parse_org_policy",
    "request_resource",
]
