"""How long a key minted from a federated credential may live.

Federated keys are never permanent: the IdP vouched for an identity only until a point in time,
and a key that outlives that would keep working after the IdP has stopped vouching (and after a
user was disabled there). So the lifetime is clipped to 12 hours *and* to the credential's own
end, and the clipped expiry is what we return to the caller (minio #20473 clipped silently).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from coffer.federation.errors import FederationRejected

MAX_FEDERATED_SECONDS = 43200
"""12 hours: the documented ceiling for SAML and OIDC keys (durationSeconds 0..43200)."""

CLOCK_SKEW = timedelta(seconds=60)
"""Tolerance for clock differences between the IdP and Coffer, applied to every time check."""

EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(9000, 1, 1, tzinfo=UTC)
"""Times a credential may name: far from datetime's limits, so skew arithmetic never overflows."""


@dataclass(frozen=True)
class KeyLifetime:
    """The lifetime to mint with: pass `duration_seconds` and `expires_at` (as `not_after`)."""

    duration_seconds: int
    expires_at: datetime
    clipped: bool


def federated_key_lifetime(duration_seconds: int, *, now: datetime, not_after: datetime) -> KeyLifetime:
    """min(requested, 12 h, credential end). 0 asks for the longest allowed, never a permanent key.

    Raises when the credential has no life left (it ended within the last second), because a
    zero-length key is useless and hides the real cause from the caller.
    """
    if duration_seconds < 0:
        raise ValueError("duration_seconds must be >= 0")
    wanted = MAX_FEDERATED_SECONDS if duration_seconds == 0 else min(duration_seconds, MAX_FEDERATED_SECONDS)
    end = now + timedelta(seconds=wanted)
    clipped = wanted != duration_seconds
    if not_after < end:
        end = not_after
        clipped = True
    seconds = int((end - now).total_seconds())
    if seconds < 1:
        raise FederationRejected("lifetime", "the credential expires before a key could be used")
    # Whole seconds only, so the expiry we report is exactly the one the key gets.
    return KeyLifetime(seconds, now + timedelta(seconds=seconds), clipped)
