"""The console's session cookie and its CSRF token: the pieces the control plane's one door needs.

A console session is an ordinary API access token (see `coffer.console.session`), carried
in an HttpOnly, SameSite=Strict cookie instead of an `Authorization` header. Because a
browser attaches cookies on its own, every state-changing request that authenticates by
the cookie must also carry `X-CSRF-Token`: a value derived from the session token that
only a page of this origin can have read (from `GET /console/api/session`). It is
compared in constant time. Requests with an `Authorization` header never look at the
cookie at all, so API clients are unaffected.

This module imports nothing from the faces, so `coffer.api.http` can use it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from coffer.errors import PermissionDenied

# Over TLS the cookie takes the __Host- prefix: the browser then insists on Secure,
# Path=/ and no Domain, so no sibling host can plant or shadow it.
COOKIE = "coffer-session"
SECURE_COOKIE = "__Host-coffer-session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CSRF_CONTEXT = b"coffer-console-csrf-v1"


def csrf_token(session_token: str) -> str:
    """The CSRF token of a session: HMAC-SHA256 of a fixed context under the session token.

    Stateless, so every worker and node agrees without sharing anything; knowing it
    grants nothing that the (HttpOnly) session token does not already grant.
    """
    return hmac.new(session_token.encode("utf-8"), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def csrf_matches(session_token: str, presented: str | None) -> bool:
    if not presented:
        return False
    expected = csrf_token(session_token).encode("ascii")
    return hmac.compare_digest(expected, presented.encode("utf-8", "surrogateescape"))


def cookie_name(secure: bool) -> str:
    return SECURE_COOKIE if secure else COOKIE


def session_cookie(cookies: Mapping[str, str]) -> str | None:
    """The session token a request's cookies carry, if any."""
    return cookies.get(SECURE_COOKIE) or cookies.get(COOKIE) or None


def cookie_session_token(method: str, cookies: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
    """The session token from the cookie, with the CSRF check for state-changing methods.

    None when there is no session cookie. PermissionDenied (403) when the method changes
    state and `X-CSRF-Token` is missing or wrong.
    """
    token = session_cookie(cookies)
    if token is None:
        return None
    if method.upper() not in SAFE_METHODS and not csrf_matches(token, headers.get(CSRF_HEADER)):
        raise PermissionDenied(
            "this request authenticates with the console session cookie but lacks a valid "
            "X-CSRF-Token header; reload the console and try again"
        )
    return token
