"""Identifier and secret formats, matching CoreWeave's where it publishes them."""

from __future__ import annotations

import hashlib
import secrets
import string

_UPPER = string.ascii_uppercase
_LOWER_ALNUM = string.ascii_lowercase + string.digits
_ALNUM = string.ascii_letters + string.digits

API_TOKEN_PREFIX = "cwt_"  # noqa: S105 - a format marker, not a credential


def _random(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def new_access_key_id() -> str:
    """`CW` + 14 upper-case letters, as CoreWeave's key ids look."""
    return "CW" + _random(_UPPER, 14)


def new_secret_key() -> str:
    """`cwo` + 40 lower-case alphanumerics (about 206 bits)."""
    return "cwo" + _random(_LOWER_ALNUM, 40)


def new_user_id() -> str:
    return _random(_ALNUM, 20)


def new_org_id() -> str:
    return _random(_LOWER_ALNUM, 10)


def new_id() -> str:
    return secrets.token_hex(16)


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_session_token() -> str:
    return secrets.token_urlsafe(48)


def hash_token(token: str) -> bytes:
    """Tokens carry 256 random bits, so a plain SHA-256 is a sound one-way store."""
    return hashlib.sha256(token.encode()).digest()
