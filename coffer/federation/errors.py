"""Federation failures: each names the check that failed, never the token or assertion content.

A verifier that explains *which* rule refused a credential makes IdP misconfiguration debuggable
(peers log a bare "auth error"), while echoing attacker-supplied bytes back would reflect input
into logs and responses and could leak assertion contents; so messages carry only the check
name and a fixed description, plus values taken from Coffer's own configuration where useful.
"""

from __future__ import annotations

from coffer.errors import CofferError, InvalidArgument, Unauthenticated, Unavailable


class FederationError(CofferError):
    """A refused federated credential. `check` is a stable short name (e.g. ``audience``)."""

    def __init__(self, check: str, message: str, *, detail: str | None = None) -> None:
        super().__init__(f"{check}: {message}")
        self.check = check
        self.reason = message
        self.detail = detail
        """For the operator's audit line only, never the answer: what Coffer saw when it fetched
        an issuer's keys would tell an anonymous caller about hosts and ports behind Coffer."""


class FederationRejected(FederationError, Unauthenticated):
    """The credential is well-formed but not trustworthy (signature, issuer, time, replay, ...)."""


class FederationMalformed(FederationError, InvalidArgument):
    """The credential cannot even be parsed as what it claims to be (bad base64, XML, JWT syntax)."""


class FederationUnavailable(FederationError, Unavailable):
    """The IdP's keys could not be fetched; the caller may retry, nothing was decided."""


def config_text(value: object, field: str, *, max_len: int = 1024, required: bool = True) -> str:
    """A configuration's text field: a string, present when required, bounded, no control characters."""
    if not isinstance(value, str):
        raise InvalidArgument.field(field, "must be a string")
    if required and not value:
        raise InvalidArgument.field(field, "is required")
    if len(value) > max_len:
        raise InvalidArgument.field(field, f"must be at most {max_len} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidArgument.field(field, "must not contain control characters")
    return value
