"""The federation store without HTTP: the SQL replay cache and the config store on a real node.

What the end-to-end tests cannot reach from outside: an expired replay entry gives way, key
aliases come from the stored roles, and revocation by config touches only that config's keys.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from coffer.authz import key_aliases
from coffer.errors import AlreadyExists, InvalidArgument, NotFound
from coffer.federation import FederationRejected
from coffer.identity.models import KeySource, KeyStatus, utcnow
from coffer.identity.replay import SqlReplayCache
from coffer.node import Node
from coffer.store.schema import access_keys
from tests.support.idp import rsa_key, signed_response, spec_for_config, to_b64


def test_replay_cache_refuses_a_second_use_until_expiry(node: Node) -> None:
    cache = SqlReplayCache(node.db)
    now = utcnow()
    assert cache.check_and_store("idp\x00_id1", expires_at=now + timedelta(minutes=5), now=now)
    assert not cache.check_and_store("idp\x00_id1", expires_at=now + timedelta(minutes=5), now=now)
    # Once the entry no longer protects anything it gives way (time checks refuse by then).
    later = now + timedelta(minutes=6)
    assert cache.check_and_store("idp\x00_id1", expires_at=later + timedelta(minutes=5), now=later)
    assert not cache.check_and_store("idp\x00_id1", expires_at=later + timedelta(minutes=5), now=later)


def test_an_assertion_is_consumed_exactly_when_its_key_is_minted(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay row is written in the mint's transaction: a mint that fails leaves the
    assertion unused, and a replay is refused without a key."""
    org = node.directory.default_org().id
    stored = node.federation.create(org, "saml", _saml_fields("consume"), public_url="https://coffer.test")
    assertion = to_b64(signed_response(spec_for_config(stored.config.to_json()), rsa_key("store")))
    real = node.keys._is_suspended
    failures = iter([RuntimeError("the disk went away mid-mint")])

    def fail_once(*args: object) -> bool:
        for failure in failures:
            raise failure
        return real(*args)  # type: ignore[arg-type]

    def keys_through(config_id: str) -> int:
        with node.db.read() as conn:
            query = sa.select(sa.func.count()).where(access_keys.c.federation_config_id == config_id)
            return int(conn.execute(query).scalar_one())

    monkeypatch.setattr(node.keys, "_is_suspended", fail_once)
    with pytest.raises(RuntimeError):
        node.federated_keys.from_saml(org, stored.config_id, assertion, 600)
    assert keys_through(stored.config_id) == 0
    first = node.federated_keys.from_saml(org, stored.config_id, assertion, 600)
    assert first.minted.key.principal_name == "saml/alice"
    with pytest.raises(FederationRejected) as info:
        node.federated_keys.from_saml(org, stored.config_id, assertion, 600)
    assert info.value.check == "replay"
    assert keys_through(stored.config_id) == 1


def _saml_fields(name: str) -> dict[str, object]:
    cert = rsa_key("store").cert_pem
    return {"name": name, "idpEntityId": "https://idp.store.test", "certificates": [cert]}


def test_configs_are_unique_and_scoped_to_their_org(node: Node) -> None:
    org = node.directory.default_org().id
    other = node.directory.create_org("federation-other").id
    made = node.federation.create(org, "saml", _saml_fields("dup"), public_url="https://coffer.test")
    assert made.config.sp_audience == f"https://coffer.test/saml/{org}"
    with pytest.raises(AlreadyExists):
        node.federation.create(org, "saml", _saml_fields("dup"), public_url="https://coffer.test")
    # The same name in another organization is another config.
    node.federation.create(other, "saml", _saml_fields("dup"), public_url="https://coffer.test")
    with pytest.raises(NotFound):
        node.federation.get(other, "saml", made.config_id)
    assert node.federation.saml(other, made.config_id) is None
    oidc = {"name": "k8s", "issuerUrl": "https://issuer.store.test", "audience": "coffer"}
    node.federation.create(org, "oidc", oidc, public_url="")
    with pytest.raises(AlreadyExists):
        node.federation.create(org, "oidc", {**oidc, "name": "k8s-again"}, public_url="")
    with pytest.raises(InvalidArgument):
        node.federation.update(org, "saml", made.config_id, {"orgId": other})


def test_deactivating_a_config_revokes_only_its_keys(node: Node) -> None:
    org = node.directory.default_org().id
    a = node.federation.create(org, "saml", _saml_fields("revoke-a"), public_url="https://coffer.test")
    b = node.federation.create(org, "saml", _saml_fields("revoke-b"), public_url="https://coffer.test")

    def mint(config_id: str) -> str:
        return node.keys.mint(
            org_id=org,
            principal_name="saml/alice",
            duration_seconds=600,
            source=KeySource.SAML,
            role="role/Admin",
            multi_attributes={"roles": ["role/Admin", "role/Dev"]},
            federation_config_id=config_id,
        ).key.access_key_id

    key_a, key_b = mint(a.config_id), mint(b.config_id)
    stored = node.federation.update(org, "saml", a.config_id, {"active": False})
    assert stored.deactivated_at is not None and not stored.config.active
    assert node.keys.get(org, key_a).status() is KeyStatus.REVOKED
    assert node.keys.get(org, key_b).status() is KeyStatus.ACTIVE
    assert node.keys.credentials(key_a) is None or node.keys.credentials(key_a).key.revoked_at is not None
    reactivated = node.federation.update(org, "saml", a.config_id, {"active": True})
    assert reactivated.deactivated_at is None
    assert node.keys.get(org, key_a).status() is KeyStatus.REVOKED  # not resurrected
    assert node.federation.delete(org, "saml", b.config_id) == 1
    assert node.keys.get(org, key_b).status() is KeyStatus.REVOKED
    assert key_aliases(node.keys.get(org, key_b)) == ("role/Admin", "role/Dev")


def test_exchanges_read_configs_from_a_cache_that_every_write_empties(node: Node) -> None:
    org = node.directory.default_org().id
    configs = node.federation
    stored = configs.create(org, "saml", _saml_fields("cached"), public_url="https://coffer.test")
    first = configs.saml(org, stored.config_id)
    assert first is not None and configs.saml(org, stored.config_id) is first, "parsed once"
    configs.update(org, "saml", stored.config_id, {"description": "rotated"})
    after = configs.saml(org, stored.config_id)
    assert after is not None and after is not first and after.description == "rotated"
    # a miss is not remembered: made-up ids cannot fill the cache, and a new config is seen
    entries = len(configs._cache._entries)
    assert configs.saml(org, "00000000-0000-4000-8000-000000000000") is None
    assert len(configs._cache._entries) == entries
    issuer = {"issuerUrl": "https://cached.store.test", "audience": "coffer"}
    before = {c.config_id for c in configs.active_oidc(org)}
    made = configs.create(org, "oidc", {"name": "cached-oidc", **issuer}, public_url="")
    assert {c.config_id for c in configs.active_oidc(org)} == before | {made.config_id}
    configs.update(org, "oidc", made.config_id, {"active": False})
    assert {c.config_id for c in configs.active_oidc(org)} == before
    configs.delete(org, "saml", stored.config_id)
    assert configs.saml(org, stored.config_id) is None


def test_concurrent_edits_of_different_fields_both_land(node: Node) -> None:
    """Each edit reads, merges and writes under the row's lock: neither undoes the other."""
    org = node.directory.default_org().id
    configs = node.federation
    stored = configs.create(org, "saml", _saml_fields("edits"), public_url="https://coffer.test")
    for i in range(15):
        gate = threading.Barrier(2)

        def edit(field: str, value: str) -> None:
            gate.wait()
            configs.update(org, "saml", stored.config_id, {field: value})

        with ThreadPoolExecutor(2) as pool:
            done = [
                pool.submit(edit, "description", f"round {i}"),
                pool.submit(edit, "idpEntityId", f"https://idp-{i}.store.test"),
            ]
            for future in done:
                future.result()
        config = configs.get(org, "saml", stored.config_id).config
        assert (config.description, config.idp_entity_id) == (f"round {i}", f"https://idp-{i}.store.test")


def test_issuers_whose_principals_could_collide_are_refused(node: Node) -> None:
    """`role/https://a.example:8443:x` would name subject `8443:x` of one issuer and subject `x`
    of the other: an org may trust only one of them."""
    org = node.directory.default_org().id
    configs = node.federation
    base = configs.create(
        org, "oidc", {"name": "plain", "issuerUrl": "https://a.store.test", "audience": "c"}, public_url=""
    )
    for clash in ("https://a.store.test:8443", "https://a.store.test:8443/tenant"):
        with pytest.raises(InvalidArgument) as info:
            configs.create(org, "oidc", {"name": "clash", "issuerUrl": clash, "audience": "c"}, public_url="")
        assert info.value.message.startswith(
            "invalid issuerUrl: keys from this issuer and from https://a.store.test "
        )
    # the same issuer for another audience, and unrelated issuers, are fine
    configs.create(
        org, "oidc", {"name": "plain-2", "issuerUrl": "https://a.store.test", "audience": "d"}, public_url=""
    )
    other = configs.create(
        org,
        "oidc",
        {"name": "other", "issuerUrl": "https://a.store.test/tenant", "audience": "c"},
        public_url="",
    )
    # an edit cannot make them collide either
    with pytest.raises(InvalidArgument):
        configs.update(org, "oidc", other.config_id, {"issuerUrl": "https://a.store.test:9000"})
    assert configs.get(org, "oidc", other.config_id).config.issuer_url == "https://a.store.test/tenant"
    configs.delete(org, "oidc", base.config_id)
