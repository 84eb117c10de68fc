"""What the policy parsers raise: plain data, no HTTP status and no wire format.

Each face translates them into its own dialect: the S3 face turns `MalformedPolicy` into
S3's `400 MalformedPolicy` with the reason as the message (`coffer.s3.errors.from_policy`),
the control plane turns `InvalidOrgPolicy` into `INVALID_ARGUMENT` with a
google.rpc.BadRequest naming the field (`coffer.api.policies.invalid_policy`).
"""

from __future__ import annotations


class PolicyError(Exception):
    """A policy document that does not validate."""


class MalformedPolicy(PolicyError):
    """A bucket policy S3 would refuse; `reason` is S3's wording ("Policy has invalid resource")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidOrgPolicy(PolicyError):
    """An organization policy that does not validate: the offending `field` (a JSON path such
    as `policy.statements[0].actions[1]`) and a `description` of what is wrong with it."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"invalid {field}: {description}")
        self.field = field
        self.description = description
