"""The failed-authentication budget (coffer.authbudget) on the S3 face.

Every path that checks a signature (header, presigned, SigV2, POST policy) authenticates
with `lookup_for(...)` and reports a `CredentialRefused` to `count`. A source with no
recent failure gets the plain key lookup, so a good request pays one dict lookup; a
suspect one gets a lookup that consults the budget first, before any HMAC is computed.
"""

from __future__ import annotations

from coffer.authbudget import AuthBudget, Throttled
from coffer.errors import S3Error
from coffer.identity.models import KeyCredentials
from coffer.s3.sigv4.types import CredentialLookup, CredentialRefused

FACE = "s3"


def slow_down(exc: Throttled) -> S3Error:
    """What SDKs back off from and retry: 503 SlowDown, with the wait in Retry-After."""
    return S3Error("SlowDown", headers={"Retry-After": str(exc.retry_after)})


def lookup_for(budget: AuthBudget, client: str | None, lookup: CredentialLookup) -> CredentialLookup:
    """`lookup` itself for a clean source; else one that refuses an over-budget source or key first."""
    if not budget.suspect(client):
        return lookup

    def guarded(access_key_id: str) -> KeyCredentials | None:
        try:
            budget.admit(client, access_key_id, face=FACE)
        except Throttled as exc:
            raise slow_down(exc) from None
        return lookup(access_key_id)

    return guarded


def count(budget: AuthBudget, client: str | None, exc: S3Error) -> None:
    """Count a refusal of the request's credentials; a malformed request is no guess and is not counted."""
    if isinstance(exc, CredentialRefused):
        budget.failed(client, exc.access_key_id if exc.guess else None, face=FACE)
