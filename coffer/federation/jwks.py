"""Where OIDC verification gets an issuer's public keys: inline in the config, or fetched.

Fetching follows OIDC Discovery: `<issuer>/.well-known/openid-configuration` names `jwks_uri`,
which serves the JWK Set. Everything fetched is bounded (timeout, size, key count), must come
over HTTPS (or loopback HTTP), and is cached with a TTL. An unknown `kid` triggers at most one
refetch per `min_refresh_interval` per issuer, so a flood of tokens with made-up key IDs costs
the IdP one request a minute, not one per token (no refresh storms), while a genuine key
rotation is picked up on the first token signed with the new key. A fetch has an overall
deadline and other requests wait for it only briefly, so a slow IdP costs one thread, not all.
What went wrong reaches the audit line, never the anonymous caller (it would map the network
behind Coffer).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from coffer.federation.errors import FederationRejected, FederationUnavailable
from coffer.federation.urls import check_url

MAX_DOCUMENT_BYTES = 256 * 1024
MAX_KEYS = 100
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
"""JWK members that only private or symmetric keys have; a JWKS for verification has none."""


class JwksProvider(Protocol):
    """Supplies an issuer's JWK Set; `refresh` may decline (returns None) to bound refetching."""

    def get_jwks(self, issuer: str, *, now: datetime) -> dict[str, Any]: ...

    def refresh_jwks(self, issuer: str, *, now: datetime) -> dict[str, Any] | None: ...


def validate_jwks(data: object, *, what: str = "JWKS") -> dict[str, Any]:
    """A JSON object with a `keys` list of public, non-symmetric keys. Returns it unchanged.

    Symmetric (`oct`) keys are refused outright: a JWKS that offers one invites the
    HMAC-with-a-public-key confusion, and no OIDC provider publishes them.
    """
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError(f"{what} must be a JSON object with a 'keys' list")
    keys = data["keys"]
    if len(keys) > MAX_KEYS:
        raise ValueError(f"{what} has more than {MAX_KEYS} keys")
    for key in keys:
        if not isinstance(key, dict) or not isinstance(key.get("kty"), str):
            raise ValueError(f"every key in the {what} must be an object with 'kty'")
        if key["kty"] == "oct":
            raise ValueError(f"the {what} must not contain symmetric (oct) keys")
        if PRIVATE_MEMBERS & key.keys():
            raise ValueError(f"the {what} must contain public keys only")
        for member in ("kid", "crv", "use", "alg"):
            if member in key and not isinstance(key[member], str):
                raise ValueError(f"'{member}' values in the {what} must be strings")
        ops = key.get("key_ops")
        if ops is not None and not (isinstance(ops, list) and all(isinstance(op, str) for op in ops)):
            raise ValueError(f"'key_ops' in the {what} must be a list of strings")
    return data


class StaticJwksProvider:
    """A fixed JWKS per issuer (the config's inline JWKS, or tests). Never refreshes."""

    def __init__(self, jwks_by_issuer: dict[str, dict[str, Any]]) -> None:
        self._jwks = {iss: validate_jwks(j) for iss, j in jwks_by_issuer.items()}

    def get_jwks(self, issuer: str, *, now: datetime) -> dict[str, Any]:
        try:
            return self._jwks[issuer]
        except KeyError:
            raise FederationUnavailable("jwks", "no keys are known for this issuer") from None

    def refresh_jwks(self, issuer: str, *, now: datetime) -> dict[str, Any] | None:
        return None


@dataclass
class _Entry:
    jwks: dict[str, Any] | None = None
    fetched_at: datetime | None = None
    last_attempt: datetime | None = None


class HttpJwksProvider:
    """Discovery + JWKS over HTTPS with a TTL cache and rate-limited refresh.

    `now` is passed in rather than read from the clock so tests can drive time; the wiring layer
    passes the real time. `client` may be injected (a TLS trust store for tests, proxies); when
    omitted, one is created with redirects off (a redirect could lead off HTTPS) and a timeout.
    """

    def __init__(
        self,
        *,
        client: httpx.Client | None = None,
        ttl: timedelta = timedelta(minutes=10),
        min_refresh_interval: timedelta = timedelta(seconds=60),
        max_stale: timedelta = timedelta(hours=1),
        timeout: float = 5.0,
        lock_wait: float = 2.0,
        max_bytes: int = MAX_DOCUMENT_BYTES,
    ) -> None:
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self._timeout = timeout
        self.lock_wait = lock_wait
        self.ttl = ttl
        self.min_refresh_interval = min_refresh_interval
        self.max_stale = max_stale
        self.max_bytes = max_bytes
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.fetch_count = 0
        """How many discovery+JWKS fetches were made; lets tests (and metrics) see storms."""

    def close(self) -> None:
        self._client.close()

    @contextlib.contextmanager
    def _locked(self, issuer: str) -> Iterator[bool]:
        """Hold the issuer's lock, so one request fetches while the others wait for its result;
        yields False if that takes longer than `lock_wait` (a slow IdP must not pile up threads)."""
        with self._guard:
            lock = self._locks.setdefault(issuer, threading.Lock())
        acquired = lock.acquire(timeout=self.lock_wait)
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()

    def get_jwks(self, issuer: str, *, now: datetime) -> dict[str, Any]:
        with self._locked(issuer) as locked:
            entry = self._entries.setdefault(issuer, _Entry())
            if not locked:
                busy = _unavailable("another request is still fetching them")
                return self._stale_or_raise(entry, now, busy)
            if entry.jwks is not None and entry.fetched_at is not None and now - entry.fetched_at < self.ttl:
                return entry.jwks
            if entry.last_attempt is not None and now - entry.last_attempt < self.min_refresh_interval:
                # The last fetch failed moments ago; do not hammer a failing IdP.
                return self._stale_or_raise(entry, now, None)
            try:
                return self._fetch(issuer, entry, now)
            except FederationUnavailable as exc:
                return self._stale_or_raise(entry, now, exc)

    def _stale_or_raise(
        self, entry: _Entry, now: datetime, exc: FederationUnavailable | None
    ) -> dict[str, Any]:
        """Ride out a short IdP outage on the last good keys, but never for longer than max_stale."""
        if (
            entry.jwks is not None
            and entry.fetched_at is not None
            and now - entry.fetched_at < self.max_stale
        ):
            return entry.jwks
        raise exc or _unavailable("an earlier fetch failed less than min_refresh_interval ago")

    def refresh_jwks(self, issuer: str, *, now: datetime) -> dict[str, Any] | None:
        with self._locked(issuer) as locked:
            entry = self._entries.setdefault(issuer, _Entry())
            if not locked:
                return None  # a fetch is under way; this token's kid is refused, not waited for
            if entry.last_attempt is not None and now - entry.last_attempt < self.min_refresh_interval:
                return None
            return self._fetch(issuer, entry, now)

    def _fetch(self, issuer: str, entry: _Entry, now: datetime) -> dict[str, Any]:
        entry.last_attempt = now
        self.fetch_count += 1
        discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        discovery = self._get_json(discovery_url, "discovery document")
        if not isinstance(discovery, dict):
            raise _unavailable("the discovery document is not a JSON object")
        if discovery.get("issuer") != issuer:
            # OIDC Discovery §4.3: the document must name the issuer it was fetched for.
            raise FederationRejected("issuer", "the discovery document names a different issuer")
        jwks_uri = discovery.get("jwks_uri")
        problem = check_url(jwks_uri, what="jwks_uri") if isinstance(jwks_uri, str) else "jwks_uri is missing"
        if problem:
            raise _unavailable(problem)
        assert isinstance(jwks_uri, str)
        try:
            jwks = validate_jwks(self._get_json(jwks_uri, "JWKS"))
        except ValueError as exc:
            raise _unavailable(str(exc)) from exc
        entry.jwks = jwks
        entry.fetched_at = now
        return jwks

    def _get_json(self, url: str, what: str) -> Any:
        problem = check_url(url, what=what)
        if problem:
            raise _unavailable(problem)
        # httpx's timeout bounds each read, not the whole body: an IdP dripping a byte every few
        # seconds would hold this thread (and the issuer's lock) for as long as it liked.
        deadline = time.monotonic() + self._timeout
        try:
            with self._client.stream(
                "GET", url, headers={"Accept": "application/json"}, timeout=self._timeout
            ) as response:
                if response.status_code != 200:
                    raise _unavailable(f"fetching the {what} returned HTTP {response.status_code}")
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
                    raise _unavailable(f"the {what} is larger than {self.max_bytes} bytes")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > self.max_bytes:
                        raise _unavailable(f"the {what} is larger than {self.max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise _unavailable(f"fetching the {what} took longer than {self._timeout} s")
        except httpx.HTTPError as exc:
            raise _unavailable(f"fetching the {what} failed ({type(exc).__name__})") from exc
        try:
            return json.loads(bytes(body))
        except ValueError as exc:
            raise _unavailable(f"the {what} is not valid JSON") from exc


def _unavailable(detail: str) -> FederationUnavailable:
    """The same answer whatever went wrong; what went wrong goes to the audit line."""
    return FederationUnavailable("jwks", "the issuer's signing keys could not be fetched", detail=detail)
