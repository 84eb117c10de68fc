"""Key lifetime, replay cache, URL rule and error kinds: the small pieces both verifiers share."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from coffer.errors import InvalidArgument, Kind, ResourceExhausted, Unauthenticated, Unavailable
from coffer.federation import (
    MAX_FEDERATED_SECONDS,
    FederationMalformed,
    FederationRejected,
    FederationUnavailable,
    InMemoryReplayCache,
    federated_key_lifetime,
)
from coffer.federation.urls import check_url, is_loopback_host
from tests.support.idp import NOW

# --- lifetime ----------------------------------------------------------------------------------


def test_zero_means_the_longest_allowed_never_permanent() -> None:
    lifetime = federated_key_lifetime(0, now=NOW, not_after=NOW + timedelta(days=2))
    assert lifetime.duration_seconds == MAX_FEDERATED_SECONDS == 43200
    assert lifetime.expires_at == NOW + timedelta(hours=12)


def test_requested_duration_kept_when_within_limits() -> None:
    lifetime = federated_key_lifetime(900, now=NOW, not_after=NOW + timedelta(hours=1))
    assert (lifetime.duration_seconds, lifetime.expires_at, lifetime.clipped) == (
        900,
        NOW + timedelta(seconds=900),
        False,
    )


def test_clipped_to_the_credential_end_in_whole_seconds() -> None:
    end = NOW + timedelta(seconds=100, milliseconds=700)
    lifetime = federated_key_lifetime(3600, now=NOW, not_after=end)
    assert lifetime.duration_seconds == 100
    assert lifetime.expires_at == NOW + timedelta(seconds=100)
    assert lifetime.expires_at <= end
    assert lifetime.clipped


def test_over_twelve_hours_clipped() -> None:
    lifetime = federated_key_lifetime(10**6, now=NOW, not_after=NOW + timedelta(days=30))
    assert (lifetime.duration_seconds, lifetime.clipped) == (43200, True)


@pytest.mark.parametrize("end", [NOW, NOW - timedelta(seconds=5), NOW + timedelta(milliseconds=999)])
def test_no_life_left_refused(end: object) -> None:
    with pytest.raises(FederationRejected) as info:
        federated_key_lifetime(60, now=NOW, not_after=end)  # type: ignore[arg-type]
    assert info.value.check == "lifetime"


def test_negative_duration_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        federated_key_lifetime(-1, now=NOW, not_after=NOW + timedelta(hours=1))


# --- replay cache --------------------------------------------------------------------------------


def test_replay_cache_accepts_once_until_expiry() -> None:
    cache = InMemoryReplayCache()
    until = NOW + timedelta(minutes=5)
    assert cache.check_and_store("a", expires_at=until, now=NOW) is True
    assert cache.check_and_store("a", expires_at=until, now=NOW + timedelta(minutes=4)) is False
    assert cache.check_and_store("b", expires_at=until, now=NOW) is True
    # Past its expiry the ID may be forgotten: the assertion's own time checks refuse it then.
    assert cache.check_and_store("a", expires_at=until, now=until) is True


def test_full_replay_cache_refuses_rather_than_forgets() -> None:
    cache = InMemoryReplayCache(max_entries=3)
    for key in "abc":
        assert cache.check_and_store(key, expires_at=NOW + timedelta(minutes=5), now=NOW)
    with pytest.raises(ResourceExhausted):
        cache.check_and_store("d", expires_at=NOW + timedelta(minutes=5), now=NOW)
    assert cache.check_and_store("a", expires_at=NOW + timedelta(minutes=5), now=NOW) is False
    # Once entries expire they are purged and room is made.
    later = NOW + timedelta(minutes=6)
    assert cache.check_and_store("d", expires_at=later + timedelta(minutes=5), now=later) is True
    assert len(cache) == 1


def test_replay_cache_is_atomic_under_threads() -> None:
    cache = InMemoryReplayCache()
    barrier = threading.Barrier(16)
    wins: list[bool] = []

    def attempt() -> None:
        barrier.wait()
        wins.append(cache.check_and_store("same-id", expires_at=NOW + timedelta(minutes=5), now=NOW))

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 15 + [True]


# --- URL rule ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("localhost", True),
        ("LocalHost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("127.0.0.1.nip.io", False),
        ("localhost.example.test", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize(
    "url",
    ["https://idp.example.test/x", "http://127.0.0.1:8080/", "http://localhost/realms/a", "http://[::1]:1/"],
)
def test_acceptable_urls(url: str) -> None:
    assert check_url(url, what="url") is None


@pytest.mark.parametrize(
    "url",
    [
        "http://idp.example.test",
        "https://a:b@idp.example.test",
        "https://idp.example.test:99999",
        "https://idp.example.test/\x00",
        "file:///etc/passwd",
        "https:///nohost",
    ],
)
def test_unacceptable_urls(url: str) -> None:
    assert check_url(url, what="url") is not None


# --- errors ------------------------------------------------------------------------------------


def test_error_kinds_map_onto_the_control_plane() -> None:
    rejected = FederationRejected("audience", "not for us")
    malformed = FederationMalformed("xml", "not XML")
    unavailable = FederationUnavailable("jwks", "down")
    assert isinstance(rejected, Unauthenticated) and rejected.kind is Kind.UNAUTHENTICATED
    assert isinstance(malformed, InvalidArgument) and malformed.kind is Kind.INVALID_ARGUMENT
    assert isinstance(unavailable, Unavailable) and unavailable.kind is Kind.UNAVAILABLE
    assert rejected.message == "audience: not for us"
    assert (rejected.check, rejected.reason) == ("audience", "not for us")
    assert rejected.kind.http_status == 401
