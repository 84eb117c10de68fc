"""The HTTP JWKS provider against a real discovery + JWKS server on 127.0.0.1.

Time is driven through the `now` argument, never by sleeping, so TTLs and refresh intervals
are tested deterministically.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest

from coffer.errors import Kind
from coffer.federation import (
    FederationError,
    FederationUnavailable,
    HttpJwksProvider,
    OidcConfig,
    verify_oidc_token,
)
from tests.support.idp import (
    NOW,
    OIDC_AUDIENCE,
    IdpServer,
    Route,
    client_trusting,
    mint_jwt,
    rsa_key,
    serve_idp,
    tls_material,
)

KEY1 = rsa_key("jwks-k1")
KEY2 = rsa_key("jwks-k2")
DISCOVERY = "/.well-known/openid-configuration"


@pytest.fixture
def idp() -> Iterator[IdpServer]:
    with serve_idp() as server:
        server.publish([KEY1.jwk("k1")])
        yield server


@pytest.fixture
def jwks() -> Iterator[HttpJwksProvider]:
    provider = HttpJwksProvider(
        ttl=timedelta(minutes=10), min_refresh_interval=timedelta(seconds=60), timeout=5.0
    )
    yield provider
    provider.close()


def config_for(server: IdpServer) -> OidcConfig:
    return OidcConfig(
        config_id="cfg-live", org_id="org-1", name="live", issuer_url=server.issuer, audience=OIDC_AUDIENCE
    )


def check(server: IdpServer, provider: HttpJwksProvider, token: str, now: datetime = NOW) -> str:
    return verify_oidc_token(token, [config_for(server)], now=now, jwks_provider=provider).principal_name


def unavailable(call: object) -> FederationUnavailable:
    with pytest.raises(FederationUnavailable) as info:
        call()  # type: ignore[operator]
    assert info.value.kind is Kind.UNAVAILABLE
    # one answer for every failure: what went wrong is for the audit line (the detail) only
    assert info.value.message == "jwks: the issuer's signing keys could not be fetched"
    assert info.value.detail
    return info.value


# --- fetching and caching ------------------------------------------------------------------


def test_discovery_then_jwks_then_verified(idp: IdpServer, jwks: HttpJwksProvider) -> None:
    principal = check(idp, jwks, mint_jwt(KEY1, issuer=idp.issuer, kid="k1"))
    assert principal == f"role/{idp.issuer}:system:serviceaccount:ml:trainer"
    assert idp.hits[DISCOVERY] == 1
    assert idp.hits["/jwks"] == 1


def test_keys_cached_within_ttl(idp: IdpServer, jwks: HttpJwksProvider) -> None:
    token = mint_jwt(KEY1, issuer=idp.issuer, kid="k1")
    for minutes in (0, 3, 9):
        check(idp, jwks, token, now=NOW + timedelta(minutes=minutes))
    assert jwks.fetch_count == 1
    assert idp.hits["/jwks"] == 1


def test_keys_refetched_after_ttl(idp: IdpServer, jwks: HttpJwksProvider) -> None:
    check(idp, jwks, mint_jwt(KEY1, issuer=idp.issuer, kid="k1"))
    later = NOW + timedelta(minutes=11)
    check(idp, jwks, mint_jwt(KEY1, issuer=idp.issuer, kid="k1", now=later), now=later)
    assert jwks.fetch_count == 2
    assert idp.hits["/jwks"] == 2


def test_rotation_picked_up_on_first_token_with_new_kid(idp: IdpServer, jwks: HttpJwksProvider) -> None:
    check(idp, jwks, mint_jwt(KEY1, issuer=idp.issuer, kid="k1"))
    idp.publish([KEY2.jwk("k2")])  # the IdP rotates: k1 gone, k2 in
    later = NOW + timedelta(minutes=2)
    check(idp, jwks, mint_jwt(KEY2, issuer=idp.issuer, kid="k2", now=later), now=later)
    assert jwks.fetch_count == 2
    # The retired key is no longer trusted once the new set is loaded.
    with pytest.raises(FederationError) as info:
        check(idp, jwks, mint_jwt(KEY1, issuer=idp.issuer, kid="k1", now=later), now=later)
    assert info.value.check == "kid"


def test_unknown_kids_do_not_cause_a_refresh_storm(idp: IdpServer, jwks: HttpJwksProvider) -> None:
    check(idp, jwks, mint_jwt(KEY1, issuer=idp.issuer, kid="k1"))
    for i in range(40):
        forged = mint_jwt(rsa_key("attacker"), issuer=idp.issuer, kid=f"made-up-{i}")
        with pytest.raises(FederationError) as info:
            check(idp, jwks, forged, now=NOW + timedelta(seconds=i))
        assert info.value.check == "kid"
    # The keys were fetched moments ago, so no unknown kid may trigger another fetch yet.
    assert jwks.fetch_count == 1
    assert idp.hits["/jwks"] == 1
    after = NOW + timedelta(seconds=130)
    for kid in ("again", "and-again"):
        with pytest.raises(FederationError):
            check(idp, jwks, mint_jwt(rsa_key("attacker"), issuer=idp.issuer, kid=kid, now=after), now=after)
    # Once the interval has passed, one refresh (and only one) is allowed.
    assert jwks.fetch_count == 2
    assert idp.hits["/jwks"] == 2


def test_concurrent_first_requests_fetch_once(idp: IdpServer, jwks: HttpJwksProvider) -> None:
    token = mint_jwt(KEY1, issuer=idp.issuer, kid="k1")
    barrier = threading.Barrier(8)
    results: list[str] = []

    def worker() -> None:
        barrier.wait()
        results.append(check(idp, jwks, token))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    assert jwks.fetch_count == 1
    assert idp.hits["/jwks"] == 1


# --- what is fetched must be trustworthy ---------------------------------------------------


def test_discovery_naming_another_issuer_refused(idp: IdpServer, jwks: HttpJwksProvider) -> None:
    idp.publish([KEY1.jwk("k1")], issuer="https://evil.example.test")
    with pytest.raises(FederationError) as info:
        check(idp, jwks, mint_jwt(KEY1, issuer=idp.issuer, kid="k1"))
    assert info.value.check == "issuer"


def test_jwks_uri_over_plain_http_to_remote_host_refused(idp: IdpServer, jwks: HttpJwksProvider) -> None:
    idp.set_json(DISCOVERY, {"issuer": idp.issuer, "jwks_uri": "http://keys.example.test/jwks"})
    unavailable(lambda: jwks.get_jwks(idp.issuer, now=NOW))
    assert idp.hits["/jwks"] == 0


def test_remote_http_issuer_never_fetched(jwks: HttpJwksProvider) -> None:
    error = unavailable(lambda: jwks.get_jwks("http://idp.example.test", now=NOW))
    assert error.detail is not None and "https" in error.detail


def test_oversized_jwks_refused(idp: IdpServer, jwks: HttpJwksProvider) -> None:
    small = HttpJwksProvider(max_bytes=2048)
    try:
        huge = {"keys": [KEY1.jwk(f"k{i}") for i in range(20)]}
        idp.set_json("/jwks", huge)
        unavailable(lambda: small.get_jwks(idp.issuer, now=NOW))
    finally:
        small.close()


def test_oversized_jwks_without_content_length_refused(idp: IdpServer) -> None:
    small = HttpJwksProvider(max_bytes=2048)
    try:
        idp.set_json("/jwks", {"keys": [KEY1.jwk(f"k{i}") for i in range(20)]}, send_length=False)
        error = unavailable(lambda: small.get_jwks(idp.issuer, now=NOW))
        assert error.detail is not None and "larger" in error.detail
    finally:
        small.close()


@pytest.mark.parametrize(
    "route",
    [
        Route(500, b"{}"),
        Route(404, b"{}"),
        Route(200, b"not json"),
        Route(200, b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}'),
        Route(200, b'{"keys": [{"kty": "RSA", "n": "x", "e": "AQAB", "d": "private"}]}'),
        Route(200, b'{"keys": "nope"}'),
        Route(302, b"", headers={"Location": "https://elsewhere.example.test/jwks"}),
    ],
)
def test_bad_jwks_responses_unavailable(idp: IdpServer, jwks: HttpJwksProvider, route: Route) -> None:
    idp.set_route("/jwks", route)
    unavailable(lambda: jwks.get_jwks(idp.issuer, now=NOW))


def test_connection_refused_unavailable(jwks: HttpJwksProvider) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    unavailable(lambda: jwks.get_jwks(f"http://127.0.0.1:{port}", now=NOW))


def test_slow_idp_times_out(idp: IdpServer) -> None:
    impatient = HttpJwksProvider(timeout=0.2)
    try:
        idp.set_json("/jwks", {"keys": [KEY1.jwk("k1")]}, delay=1.5)
        error = unavailable(lambda: impatient.get_jwks(idp.issuer, now=NOW))
        assert error.detail is not None and "Timeout" in error.detail
    finally:
        impatient.close()


def test_dripping_idp_stopped_by_the_overall_deadline(idp: IdpServer) -> None:
    """Each byte arrives well within the read timeout, but the whole body never would."""
    impatient = HttpJwksProvider(timeout=0.5)
    try:
        idp.set_json("/jwks", {"keys": [KEY1.jwk("k1")]}, drip=0.1)
        started = time.monotonic()
        error = unavailable(lambda: impatient.get_jwks(idp.issuer, now=NOW))
        assert error.detail == "fetching the JWKS took longer than 0.5 s"
        assert time.monotonic() - started < 5, "stopped near the deadline, not after the whole body"
    finally:
        impatient.close()


def test_others_wait_for_a_slow_fetch_only_briefly(idp: IdpServer) -> None:
    """One thread fetches from a slow IdP; the others neither queue behind it nor fetch too."""
    provider = HttpJwksProvider(timeout=3.0, lock_wait=0.2)
    try:
        idp.set_json("/jwks", {"keys": [KEY1.jwk("k1")]}, delay=1.5)
        fetcher = threading.Thread(target=lambda: provider.get_jwks(idp.issuer, now=NOW))
        fetcher.start()
        while idp.hits["/jwks"] == 0:
            time.sleep(0.01)
        started = time.monotonic()
        error = unavailable(lambda: provider.get_jwks(idp.issuer, now=NOW))
        assert error.detail == "another request is still fetching them"
        assert provider.refresh_jwks(idp.issuer, now=NOW) is None, "a refresh is declined, not queued"
        assert time.monotonic() - started < 1.4, "refused after lock_wait, not after the fetch"
        fetcher.join()
        assert provider.fetch_count == 1
        assert provider.get_jwks(idp.issuer, now=NOW)["keys"][0]["kid"] == "k1"
    finally:
        provider.close()


# --- outages -------------------------------------------------------------------------------


def test_failed_fetch_not_retried_within_interval(idp: IdpServer, jwks: HttpJwksProvider) -> None:
    idp.set_route("/jwks", Route(503, b"{}"))
    unavailable(lambda: jwks.get_jwks(idp.issuer, now=NOW))
    idp.publish([KEY1.jwk("k1")])
    unavailable(lambda: jwks.get_jwks(idp.issuer, now=NOW + timedelta(seconds=30)))
    assert idp.hits["/jwks"] == 1
    assert jwks.get_jwks(idp.issuer, now=NOW + timedelta(seconds=61))["keys"][0]["kid"] == "k1"


def test_stale_keys_ride_out_a_short_outage(idp: IdpServer, jwks: HttpJwksProvider) -> None:
    check(idp, jwks, mint_jwt(KEY1, issuer=idp.issuer, kid="k1"))
    idp.set_route("/jwks", Route(503, b"{}"))
    during = NOW + timedelta(minutes=30)  # TTL passed, max_stale (1 h) not
    check(idp, jwks, mint_jwt(KEY1, issuer=idp.issuer, kid="k1", now=during), now=during)
    assert idp.hits["/jwks"] == 2
    much_later = NOW + timedelta(hours=2)
    unavailable(lambda: jwks.get_jwks(idp.issuer, now=much_later))


# --- TLS -------------------------------------------------------------------------------------


def test_https_issuer_with_trusted_certificate() -> None:
    with serve_idp(tls=True) as server:
        server.publish([KEY1.jwk("k1")])
        assert server.issuer.startswith("https://127.0.0.1:")
        trusting = HttpJwksProvider(client=httpx.Client(verify=client_trusting(tls_material()), timeout=5))
        try:
            assert check(server, trusting, mint_jwt(KEY1, issuer=server.issuer, kid="k1")).startswith(
                "role/https://"
            )
        finally:
            trusting.close()


def test_https_issuer_with_untrusted_certificate_refused() -> None:
    with serve_idp(tls=True) as server:
        server.publish([KEY1.jwk("k1")])
        default = HttpJwksProvider()
        try:
            error = unavailable(lambda: default.get_jwks(server.issuer, now=NOW))
            assert error.detail is not None and "ConnectError" in error.detail
        finally:
            default.close()
