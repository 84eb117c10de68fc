"""Workload identity federation: what a SAML or OIDC exchange costs, beside the machine's limits.

Three parts, in one run, on the same machine minutes apart:

1. **The verifiers, in process, on one core.** Verifications per second of
   `verify_saml_response` (RSA-2048 SHA-256, signed assertion, exclusive c14n; the replay
   check stubbed out, so one assertion can be verified again and again) and of
   `verify_oidc_token` (RS256 and ES256, a config with an inline JWKS), each beside the raw
   `cryptography` verify of the same primitive: RSA-2048 PKCS#1 v1.5 SHA-256 and ECDSA P-256
   SHA-256. All cases are timed interleaved, best of 3. The SAML figure is broken down into
   its stages (DTD pre-parse, lxml parse, signxml's verify, exclusive c14n alone).
2. **The exchanges in process, stage by stage** (`FederatedKeys` on a node of its own, one
   thread, no HTTP): CPU and wall time per exchange, split into the config read, the replay
   write (SAML), the mint write, and the rest (verify + checks), beside a plain mint.
3. **The exchanges, over HTTP, against a real `coffer serve`** (2 workers, SQLite, and
   PostgreSQL with `--backends sqlite,postgres`): N anonymous SAML exchanges (every assertion
   signed before the clock starts and sent exactly once: an assertion is one-time), N OIDC
   exchanges (RS256, ES256) and N plain mints (`POST /v1/cwobject/access-key`, Bearer token),
   all with the same client at the same concurrency, so "x mint" compares like with like.
   Each request is checked: a non-200 is an error (the self-test fails on any). Each worker
   is warmed one request at a time first: concurrent first SAML verifications can break a
   worker (an unlocked schema build in signxml; docs/performance.md).

The client is a Python asyncio (uvloop) closed loop that hands each pre-built request out
once; its own CPU per request is in the notes, as is the server's (psutil, all processes).

    python -m bench.federation_bench                # full: ~1 min per backend
    python -m bench.federation_bench --quick        # seconds
    python -m bench.federation_bench --selftest     # tiny; fails unless every exchange is 200
    python -m bench.federation_bench --backends sqlite,postgres

Inside the suite it is the `federation` section of `python -m bench` (on the run's own
Coffer, SQLite); its rows land in the `machine`, `cpu` and `keys` sections of the table.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import limits
from bench.common import log, machine_facts, percentile, publish, tree_cpu
from bench.loadgen import Load, parse_head, raw_request
from bench.report import Report, Row
from tests.support import idp
from tests.support.harness import (
    CofferServer,
    create_pg_database,
    drop_pg_database,
    postgres_available,
    start_server,
    stop_server,
    worker_processes,
)

SAML_PATH = "/v1/cwobject/temporary-credentials/saml"
OIDC_PATH = "/v1/cwobject/temporary-credentials/oidc"
MINT_PATH = "/v1/cwobject/access-key"
SAML_CONFIGS = "/v1beta1/workload-federation/saml-configs"
OIDC_CONFIGS = "/v1beta1/workload-federation/oidc-configs"
DURATION = 3600  # every mint and exchange asks for the same lifetime
OIDC_ISSUER = "https://idp.bench.example.test/oidc"  # inline JWKS: never fetched
OIDC_AUDIENCE = "coffer-bench"


@dataclass(frozen=True)
class Sizes:
    verify_seconds: float  # each in-process case is timed this long, 3 rounds, interleaved
    exchanges: int  # requests per HTTP load at `concurrency`
    exchanges_c1: int  # requests per HTTP load at c1 (0: not run)
    concurrency: int
    rounds: int  # HTTP loads: best of this many, kinds interleaved
    service: int  # exchanges of each kind timed at the service layer


SIZES = {
    "full": Sizes(1.0, 2000, 300, 16, 2, 300),
    "quick": Sizes(0.25, 300, 0, 16, 1, 60),
    "selftest": Sizes(0.03, 24, 6, 16, 1, 6),
}


# --- 1. the verifiers, in process ---------------------------------------------------------------


class _NoReplay:
    """The pure verifier's cost: the replay check always passes (its SQL write is measured
    over HTTP), so the same assertion can be verified as often as the timer needs."""

    def check_and_store(self, key: str, *, expires_at: datetime, now: datetime) -> bool:
        return True


def _interleaved(cases: dict[str, Callable[[], object]], seconds: float, rounds: int = 3) -> dict[str, float]:
    """Calls per second of each case: each timed `seconds`, cases interleaved, best of `rounds`."""
    for fn in cases.values():
        fn()  # warm: imports, caches, first-call costs
    best = dict.fromkeys(cases, 0.0)
    for _ in range(rounds):
        for name, fn in cases.items():
            n, t0 = 0, time.perf_counter()
            deadline = t0 + seconds
            while True:
                fn()
                n += 1
                t = time.perf_counter()
                if t >= deadline:
                    break
            best[name] = max(best[name], n / (t - t0))
    return best


def measure_verifiers(seconds: float) -> dict[str, Any]:
    """Raw verify ops/s, verifier verifications/s and the SAML stages (µs), on one core."""
    import defusedxml.ElementTree as DefusedET
    import jwt
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from lxml import etree
    from signxml import SignatureConfiguration, XMLVerifier
    from signxml.algorithms import DigestAlgorithm, SignatureMethod

    from coffer.federation import OidcConfig, SamlConfig, StaticJwksProvider
    from coffer.federation import verify_oidc_token as verify_oidc
    from coffer.federation import verify_saml_response as verify_saml

    rsa, p256 = idp.rsa_key("bench-idp"), idp.ec_key("bench-idp-ec")
    now = datetime.now(UTC)

    # raw primitives: a SignedInfo-sized message
    message = os.urandom(600)
    rsa_pub, ec_pub = rsa.private_key.public_key(), p256.private_key.public_key()
    rsa_sig = rsa.private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    ec_sig = p256.private_key.sign(message, ec.ECDSA(hashes.SHA256()))

    # SAML: an assertion-signed Response, as an IdP sends it
    saml_cfg = SamlConfig.create(
        config_id="cfg-bench",
        org_id="org-bench",
        name="bench-idp",
        idp_entity_id="https://idp.bench.example.test/saml/metadata",
        certificates=[rsa.cert_pem],
        public_url="https://coffer.bench.example.test",
    )
    spec = idp.AssertionSpec(
        now=now,
        issuer=saml_cfg.idp_entity_id,
        response_issuer=saml_cfg.idp_entity_id,
        audiences=(saml_cfg.sp_audience,),
        recipient=saml_cfg.recipient,
        destination=saml_cfg.recipient,
    )
    saml_b64 = idp.to_b64(idp.signed_response(spec, rsa))
    raw = base64.b64decode(saml_b64)
    no_replay = _NoReplay()

    def parser() -> Any:  # what coffer.federation.saml parses with
        return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)

    sig_config = SignatureConfiguration(
        location="./",
        expect_references=1,
        signature_methods=frozenset({SignatureMethod.RSA_SHA256}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
    )
    cert = saml_cfg.signing_certificates[0]
    assertion = etree.fromstring(raw, parser()).find("{urn:oasis:names:tc:SAML:2.0:assertion}Assertion")
    assert assertion is not None

    # OIDC: one config, both keys inline
    oidc_cfg = OidcConfig(
        config_id="cfg-bench-oidc",
        org_id="org-bench",
        name="bench-oidc",
        issuer_url=OIDC_ISSUER,
        audience=OIDC_AUDIENCE,
        jwks={"keys": [rsa.jwk("rsa"), p256.jwk("ec")]},
    )
    provider = StaticJwksProvider({})
    rsa_jwk = rsa.jwk("rsa")
    rs256 = idp.mint_jwt(rsa, issuer=OIDC_ISSUER, kid="rsa", alg="RS256", now=now, aud=OIDC_AUDIENCE)
    es256 = idp.mint_jwt(p256, issuer=OIDC_ISSUER, kid="ec", alg="ES256", now=now, aud=OIDC_AUDIENCE)
    for token in (rs256, es256):  # both verify before anything is timed
        assert verify_oidc(token, [oidc_cfg], now=now, jwks_provider=provider).subject
    assert verify_saml(saml_b64, saml_cfg, now=now, replay_cache=no_replay).principal

    rates = _interleaved(
        {
            "rsa_raw": lambda: rsa_pub.verify(rsa_sig, message, padding.PKCS1v15(), hashes.SHA256()),
            "ec_raw": lambda: ec_pub.verify(ec_sig, message, ec.ECDSA(hashes.SHA256())),
            "saml": lambda: verify_saml(saml_b64, saml_cfg, now=now, replay_cache=no_replay),
            "oidc_rs256": lambda: verify_oidc(rs256, [oidc_cfg], now=now, jwks_provider=provider),
            "oidc_es256": lambda: verify_oidc(es256, [oidc_cfg], now=now, jwks_provider=provider),
        },
        seconds,
    )
    # Where a SAML verification's time goes (each stage alone, µs).
    stage_rates = _interleaved(
        {
            "defusedxml DTD pre-parse (expat + ElementTree)": lambda: DefusedET.fromstring(
                raw, forbid_dtd=True, forbid_entities=True, forbid_external=True
            ),
            "lxml parse": lambda: etree.fromstring(raw, parser()),
            "signxml XMLVerifier.verify (c14n, digest, RSA)": lambda: XMLVerifier().verify(
                assertion, x509_cert=cert, parser=parser(), id_attribute="ID", expect_config=sig_config
            ),
            "exclusive c14n of the assertion alone (lxml)": lambda: etree.tostring(
                assertion, method="c14n", exclusive=True
            ),
            "PyJWK from the JWK (RSA), per OIDC verify": lambda: jwt.PyJWK(rsa_jwk, algorithm="RS256").key,
        },
        seconds / 2,
    )
    stages = {name: 1e6 / rate for name, rate in stage_rates.items()}
    return {"rates": rates, "stages_us": stages, "saml_bytes": len(raw), "now": now.isoformat()}


def verifier_rows(v: dict[str, Any]) -> list[Row]:
    r, st = v["rates"], v["stages_us"]
    saml_us = 1e6 / r["saml"]
    parts = [
        "defusedxml DTD pre-parse (expat + ElementTree)",
        "lxml parse",
        "signxml XMLVerifier.verify (c14n, digest, RSA)",
    ]
    rest = saml_us - sum(st[p] for p in parts)
    saml_note = (
        f"{saml_us:.0f} µs: DTD pre-parse {st[parts[0]]:.0f}, lxml parse {st[parts[1]]:.0f}, "
        f"signxml verify {st[parts[2]]:.0f} (of which RSA {1e6 / r['rsa_raw']:.0f}, "
        f"exclusive c14n {st['exclusive c14n of the assertion alone (lxml)']:.0f}), "
        f"Coffer's checks {rest:.0f}; {v['saml_bytes']:,}-byte Response; replay stubbed"
    )
    pyjwk = st["PyJWK from the JWK (RSA), per OIDC verify"]
    raw_names = {"rsa_raw": "raw RSA-2048 verify", "ec_raw": "raw ECDSA P-256 verify"}

    def raw(name: str, case: str, note: str) -> Row:
        return Row("machine", name, "ops/s", r[case], note=note)

    def verifier(name: str, case: str, raw_case: str, note: str, detail: dict[str, Any] | None = None) -> Row:
        """A verifier's rate beside the raw verify of the primitive it uses."""
        bound, bound_name = r[raw_case], raw_names[raw_case]
        return Row(
            "cpu", name, "ops/s", r[case], bound=bound, bound_name=bound_name, note=note, detail=detail or {}
        )

    return [
        raw(
            "RSA-2048 PKCS#1 v1.5 SHA-256 verify (cryptography), one core",
            "rsa_raw",
            f"{1e6 / r['rsa_raw']:.1f} µs; 600-byte message",
        ),
        raw("ECDSA P-256 SHA-256 verify (cryptography), one core", "ec_raw", f"{1e6 / r['ec_raw']:.1f} µs"),
        verifier(
            "SAML verify_saml_response: RSA-2048 SHA-256, signed assertion",
            "saml",
            "rsa_raw",
            saml_note,
            {"stages_us": st},
        ),
        verifier(
            "OIDC verify_oidc_token: RS256, inline JWKS",
            "oidc_rs256",
            "rsa_raw",
            f"{1e6 / r['oidc_rs256']:.0f} µs, of which building the key from its JWK {pyjwk:.0f}",
        ),
        verifier(
            "OIDC verify_oidc_token: ES256, inline JWKS",
            "oidc_es256",
            "ec_raw",
            f"{1e6 / r['oidc_es256']:.0f} µs",
        ),
    ]


# --- 2. the exchanges in process: where each one's time goes -----------------------------------


class _Stages:
    """Wall and CPU (thread) time spent in wrapped methods of service objects (instances
    only: the product's classes and modules are left alone)."""

    def __init__(self) -> None:
        self.acc: dict[str, list[float]] = {}
        self._wrapped: list[tuple[object, str]] = []

    def wrap(self, obj: object, name: str, label: str) -> None:
        inner = getattr(obj, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            w0, c0 = time.perf_counter(), time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                entry = self.acc.setdefault(label, [0.0, 0.0])
                entry[0] += time.perf_counter() - w0
                entry[1] += time.thread_time() - c0

        setattr(obj, name, timed)
        self._wrapped.append((obj, name))

    def unwrap(self) -> None:
        for obj, name in self._wrapped:
            delattr(obj, name)
        self._wrapped = []


SERVICE_STAGES = {
    "saml": ("config read", "mint write"),  # the replay claim runs inside the mint's transaction
    "oidc_rs256": ("config read", "mint write"),
    "oidc_es256": ("config read", "mint write"),
}


def measure_service(work: Path, backend: str, n: int) -> dict[str, dict[str, float]]:
    """µs per exchange at the service layer (`FederatedKeys` on a node of its own, one
    thread, no HTTP): the whole call and its stages, CPU (thread time) and wall (which adds
    the commits' fsyncs and round trips), best of 2 interleaved rounds of `n`. "verify +
    checks" is the call minus its stages."""
    from coffer.config import Settings
    from coffer.federation import SamlConfig
    from coffer.identity.models import KeySource
    from coffer.node import Node

    url = ""
    if backend == "postgres":
        url = create_pg_database()
    node = Node.open(
        Settings(
            data_dir=str(work / f"service-{backend}"),
            database_url=url,
            log_level="warning",
            # One principal mints thousands of keys here: the live-key cap would stop it.
            max_live_keys_per_principal=0,
        )
    )
    try:
        org = node.directory.create_org("bench-federation").id
        rsa, p256 = idp.rsa_key("bench-idp"), idp.ec_key("bench-idp-ec")
        public_url = "https://coffer.bench.example.test"
        saml = node.federation.create(
            org,
            "saml",
            {
                "name": "bench",
                "idpEntityId": "https://idp.bench.example.test/saml",
                "certificates": [rsa.cert_pem],
            },
            public_url=public_url,
        ).config
        node.federation.create(
            org,
            "oidc",
            {
                "name": "bench",
                "issuerUrl": OIDC_ISSUER,
                "audience": OIDC_AUDIENCE,
                "jwks": {"keys": [rsa.jwk("rsa"), p256.jwk("ec")]},
            },
            public_url=public_url,
        )
        assert isinstance(saml, SamlConfig)
        fed = node.federated_keys

        def assertion() -> str:
            spec = idp.AssertionSpec(
                now=datetime.now(UTC),
                issuer=saml.idp_entity_id,
                response_issuer=saml.idp_entity_id,
                audiences=(saml.sp_audience,),
                recipient=saml.recipient,
                destination=saml.recipient,
                principal=("bench-workload",),
                roles=("BenchRole",),
            )
            return str(idp.to_b64(idp.signed_response(spec, rsa)))

        warm, rounds = 5, 2
        assertions = [assertion() for _ in range(n * rounds + warm)]
        tokens = {
            alg: idp.mint_jwt(
                key, issuer=OIDC_ISSUER, kid=kid, alg=alg, now=datetime.now(UTC), aud=OIDC_AUDIENCE
            )
            for alg, key, kid in (("RS256", rsa, "rsa"), ("ES256", p256, "ec"))
        }
        calls: dict[str, Callable[[int], object]] = {
            "mint": lambda i: node.keys.mint(
                org_id=org, principal_name="coreweave/bench", duration_seconds=DURATION, source=KeySource.JWT
            ),
            "saml": lambda i: fed.from_saml(org, saml.config_id, assertions[i], DURATION),
            "oidc_rs256": lambda i: fed.from_oidc(org, tokens["RS256"], DURATION),
            "oidc_es256": lambda i: fed.from_oidc(org, tokens["ES256"], DURATION),
        }
        for call in calls.values():  # the warm-up uses assertions the timed loops do not
            for i in range(n * rounds, n * rounds + warm):
                call(i)
        out: dict[str, dict[str, float]] = {}
        for r in range(rounds):  # kinds interleaved; per kind, the round that cost least CPU
            for kind, call in calls.items():
                stages = _Stages()
                stages.wrap(fed.configs, "saml", "config read")
                stages.wrap(fed.configs, "active_oidc", "config read")
                stages.wrap(fed.replay_cache, "claim", "replay claim")  # inside "mint write"
                if kind != "mint":
                    stages.wrap(fed.keys, "mint", "mint write")
                w0, c0 = time.perf_counter(), time.thread_time()
                try:
                    for i in range(r * n, (r + 1) * n):
                        call(i)
                finally:
                    wall, cpu = time.perf_counter() - w0, time.thread_time() - c0
                    stages.unwrap()
                got = {"cpu_us": cpu / n * 1e6, "wall_us": wall / n * 1e6}
                for label, (w, c) in stages.acc.items():
                    got[f"{label} cpu_us"], got[f"{label} wall_us"] = c / n * 1e6, w / n * 1e6
                if kind != "mint":
                    rest = [got[f"{stage} cpu_us"] for stage in SERVICE_STAGES[kind]]
                    got["verify + checks cpu_us"] = got["cpu_us"] - sum(rest)
                if kind not in out or got["cpu_us"] < out[kind]["cpu_us"]:
                    out[kind] = got
        return out
    finally:
        node.close()
        if url:
            drop_pg_database(url)


SERVICE_LABELS = {
    "mint": "mint in process: AccessKeyService.mint",
    "saml": "SAML exchange in process: FederatedKeys.from_saml",
    "oidc_rs256": "OIDC exchange RS256 in process: FederatedKeys.from_oidc",
    "oidc_es256": "OIDC exchange ES256 in process: FederatedKeys.from_oidc",
}


def service_rows(s: dict[str, dict[str, float]], backend: str) -> list[Row]:
    name = BACKEND_NAMES.get(backend, backend)
    mint = s["mint"]
    rows = [
        Row(
            "cpu",
            f"{SERVICE_LABELS['mint']} ({name})",
            "µs",
            mint["cpu_us"],
            note=f"CPU per key, one thread; wall {mint['wall_us']:,.0f} µs (with the commit)",
            detail={"backend": backend, **mint},
        )
    ]
    for kind in ("saml", "oidc_rs256", "oidc_es256"):
        got = s[kind]
        parts = [f"verify + checks {got['verify + checks cpu_us']:,.0f}"]
        for stage in SERVICE_STAGES[kind]:
            cpu, wall = got[f"{stage} cpu_us"], got[f"{stage} wall_us"]
            parts.append(f"{stage} {cpu:,.0f}" + (f" (wall {wall:,.0f})" if wall > cpu * 1.1 else ""))
            if stage == "mint write" and "replay claim cpu_us" in got:
                parts.append(f"of which replay claim {got['replay claim cpu_us']:,.0f}")
        rows.append(
            Row(
                "cpu",
                f"{SERVICE_LABELS[kind]} ({name})",
                "µs",
                got["cpu_us"],
                bound=mint["cpu_us"],
                bound_name="mint in process",
                note=f"CPU µs: {', '.join(parts)}; wall {got['wall_us']:,.0f}",
                detail={"backend": backend, **got},
            )
        )
    return rows


# --- 3. the exchanges, over HTTP ----------------------------------------------------------------


@dataclass
class Outcome:
    """One closed-loop load: every request sent exactly once."""

    load: Load
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    client_cpu_us: float = 0.0

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def ok_rate(self) -> float:
        """Keys delivered per second (200s only)."""
        return self.ok / self.load.seconds if self.load.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.load.as_dict(),
            "ok": self.ok,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "failures": self.failures,
            "client_cpu_us": self.client_cpu_us,
        }


async def _lane(
    host: str,
    port: int,
    requests: list[bytes],
    counter: Iterator[int],
    lat: list[float],
    statuses: Counter[int],
    failures: list[str],
    check: Callable[[bytes], bool] | None,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for i in counter:
            if i >= len(requests):
                return
            t0 = time.perf_counter()
            writer.write(requests[i])
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                # the server closed the connection without answering: an error, not a crash
                statuses[0] += 1
                if len(failures) < 5:
                    failures.append(f"0 connection closed without a response ({type(exc).__name__})")
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            status, length, close = parse_head(head)
            if length is None:
                raise RuntimeError(f"a response without Content-Length: {head[:200]!r}")
            body = await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            if status == 200 and check is not None and not check(body):
                status = 299  # 200 without the credentials: counted as an error
            statuses[status] += 1
            if status != 200 and len(failures) < 5:
                failures.append(f"{status} {body[:300].decode(errors='replace')}")
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


def run_once(
    host: str,
    port: int,
    requests: list[bytes],
    concurrency: int,
    pid: int = 0,
    check: Callable[[bytes], bool] | None = None,
) -> Outcome:
    """Send every request once over `concurrency` keep-alive connections (closed loop)."""
    lat: list[float] = []
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    counter = itertools.count()

    async def main() -> float:
        t0 = time.perf_counter()
        await asyncio.gather(
            *(
                _lane(host, port, requests, counter, lat, statuses, failures, check)
                for _ in range(min(concurrency, len(requests)))
            )
        )
        return time.perf_counter() - t0

    runner: Callable[[Any], float] = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    s0, c0 = (tree_cpu(pid) if pid else 0.0), time.process_time()
    elapsed = runner(main())
    client = time.process_time() - c0
    server = (tree_cpu(pid) - s0) if pid else 0.0
    ms = sorted(t * 1000 for t in lat)

    n = sum(statuses.values())  # answered or not
    errors = n - statuses.get(200, 0)
    load = Load(
        "python asyncio, each request once",
        concurrency,
        n,
        elapsed,
        errors,
        percentile(ms, 0.5),
        percentile(ms, 0.9),
        percentile(ms, 0.99),
        server / n * 1e6 if pid and n else None,
    )
    return Outcome(load, statuses, failures, client / n * 1e6 if n else 0.0)


def _credentials_in(body: bytes) -> bool:
    with contextlib.suppress(ValueError):
        doc = json.loads(body)
        return bool(doc.get("accessKeyId")) and bool(doc.get("secretKey"))
    return False


class Exchanges:
    """The federation configs on a running Coffer and the request pools that use them."""

    def __init__(self, server: CofferServer) -> None:
        import httpx

        self.server = server
        self.host = f"127.0.0.1:{server.api_port}"
        self.rsa, self.p256 = idp.rsa_key("bench-idp"), idp.ec_key("bench-idp-ec")
        tag = os.urandom(3).hex()
        with httpx.Client(
            base_url=server.api_url, headers={"Authorization": f"Bearer {server.admin_token}"}, timeout=30
        ) as c:
            r = c.post(
                SAML_CONFIGS,
                json={
                    "name": f"bench-saml-{tag}",
                    "idpEntityId": f"https://idp-{tag}.bench.example.test/saml/metadata",
                    "certificates": [self.rsa.cert_pem],
                },
            )
            assert r.status_code == 200, r.text
            self.saml = r.json()["config"]
            r = c.post(
                OIDC_CONFIGS,
                json={
                    "name": f"bench-oidc-{tag}",
                    "issuerUrl": f"https://idp-{tag}.bench.example.test/oidc",
                    "audience": f"{OIDC_AUDIENCE}-{tag}",
                    "jwks": {"keys": [self.rsa.jwk("rsa"), self.p256.jwk("ec")]},
                },
            )
            assert r.status_code == 200, r.text
            self.oidc = r.json()["config"]
        self.org = self.saml["orgUid"]
        self._json = [("Host", self.host), ("Content-Type", "application/json")]

    def mint_pool(self, n: int) -> list[bytes]:
        headers = [*self._json, ("Authorization", f"Bearer {self.server.admin_token}")]
        body = json.dumps({"durationSeconds": DURATION}).encode()
        return [raw_request("POST", MINT_PATH, headers, body)] * n

    def saml_pool(self, n: int) -> list[bytes]:
        """n distinct assertions, each signed now (client cost, before any clock starts)."""
        cfg = self.saml
        out = []
        for _ in range(n):
            spec = idp.AssertionSpec(
                now=datetime.now(UTC),
                issuer=cfg["idpEntityId"],
                response_issuer=cfg["idpEntityId"],
                audiences=(cfg["spAudience"],),
                recipient=cfg["recipient"],
                destination=cfg["recipient"],
                principal=("bench-workload",),
                roles=("BenchRole",),
            )
            body = {
                "durationSeconds": DURATION,
                "orgId": self.org,
                "configId": cfg["uid"],
                "samlResponse": idp.to_b64(idp.signed_response(spec, self.rsa)),
            }
            out.append(raw_request("POST", SAML_PATH, self._json, json.dumps(body).encode()))
        return out

    def oidc_pool(self, n: int, alg: str) -> list[bytes]:
        """A JWT may be presented again (no replay rule for OIDC): a few tokens, reused."""
        key, kid = (self.rsa, "rsa") if alg == "RS256" else (self.p256, "ec")
        tokens = [
            idp.mint_jwt(
                key,
                issuer=self.oidc["issuerUrl"],
                kid=kid,
                alg=alg,
                now=datetime.now(UTC),
                aud=self.oidc["audience"],
                sub=f"system:serviceaccount:bench:w{i}",
            )
            for i in range(min(n, 16))
        ]
        bodies = [
            json.dumps({"durationSeconds": DURATION, "orgId": self.org, "oidcToken": t}).encode()
            for t in tokens
        ]
        return [raw_request("POST", OIDC_PATH, self._json, bodies[i % len(bodies)]) for i in range(n)]


KINDS = ("mint", "saml", "oidc_rs256", "oidc_es256")
LABELS = {
    "mint": "mint POST /v1/cwobject/access-key (Bearer), same client",
    "saml": "SAML exchange POST /v1/cwobject/temporary-credentials/saml",
    "oidc_rs256": "OIDC exchange RS256 POST /v1/cwobject/temporary-credentials/oidc",
    "oidc_es256": "OIDC exchange ES256 POST /v1/cwobject/temporary-credentials/oidc",
}
BACKEND_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def _wait_for_workers(server: CofferServer, timeout: float = 30) -> None:
    """Until every worker listens on the API port (the ready check needs only one)."""
    deadline = time.monotonic() + timeout
    while len(worker_processes(server, server.api_port)) < server.workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {server.workers} workers listen after {timeout}s")
        time.sleep(0.1)


def measure_exchanges(server: CofferServer, sizes: Sizes, *, strict: bool) -> dict[str, Any]:
    """Best-of-`rounds` loads of every kind at c`concurrency` (and c1), kinds interleaved."""
    ex = Exchanges(server)
    assert server.proc is not None, "a started server"
    pid = server.proc.pid
    port = server.api_port
    levels = [(sizes.concurrency, sizes.exchanges)]
    if sizes.exchanges_c1:
        levels.append((1, sizes.exchanges_c1))

    def pool(kind: str, n: int) -> list[bytes]:
        if kind == "mint":
            return ex.mint_pool(n)
        if kind == "saml":
            return ex.saml_pool(n)
        return ex.oidc_pool(n, "RS256" if kind == "oidc_rs256" else "ES256")

    _wait_for_workers(server)
    # Warm every worker on every path (first requests import, compile, fill caches), one
    # request at a time on fresh connections first (so both workers get some): a worker's
    # first SAML verifications racing each other can break it for good (signxml builds its
    # XML Schema unlocked, and libxml2's schema set-up is not thread-safe: see
    # docs/performance.md). The bench measures the steady state; the race is reported there.
    for kind in KINDS:
        for _ in range(4 * server.workers):
            first = run_once("127.0.0.1", port, pool(kind, 1), 1, check=_credentials_in)
            if first.ok != 1:
                raise RuntimeError(f"{kind} warm-up failed: {first.failures}")
    for kind in KINDS:
        warm = run_once("127.0.0.1", port, pool(kind, 8), 4, check=_credentials_in)
        if warm.statuses.get(0):
            log(f"  WARNING: {kind} warm-up: {warm.statuses[0]} connections closed unanswered")
        if warm.load.errors - warm.statuses.get(0, 0):
            raise RuntimeError(f"{kind} warm-up failed: {warm.failures}")
    out: dict[str, Any] = {"org": ex.org, "saml_config": ex.saml["uid"], "oidc_config": ex.oidc["uid"]}
    for conc, n in levels:
        samples: dict[str, list[Outcome]] = {k: [] for k in KINDS}
        for _ in range(sizes.rounds):
            for kind in KINDS:
                requests = pool(kind, n)
                got = run_once("127.0.0.1", port, requests, conc, pid, check=_credentials_in)
                samples[kind].append(got)
                if got.load.errors:
                    log(f"  WARNING: {kind} c{conc}: {got.load.errors} of {n} not 200: {got.failures[:2]}")
                    log("  server log tail: " + " | ".join(server.log().splitlines()[-5:]))
                    if strict:
                        raise RuntimeError(f"{kind} c{conc}: {got.load.errors} errors: {got.failures}")
        for kind in KINDS:
            best = max(samples[kind], key=lambda o: o.ok_rate)
            out[f"{kind}_c{conc}"] = {"best": best, "samples": samples[kind]}
        log(f"  c{conc}: " + ", ".join(f"{k} {out[f'{k}_c{conc}']['best'].ok_rate:,.0f}/s" for k in KINDS))
    if strict:  # a used assertion is refused: the replay row was written
        used = ex.saml_pool(1)
        first = run_once("127.0.0.1", port, used, 1)
        again = run_once("127.0.0.1", port, used, 1)
        if first.ok != 1 or again.statuses.get(401) != 1:
            raise RuntimeError(f"replay not refused: {first.statuses} then {again.statuses}")
        out["replay_refused"] = True
    return out


def exchange_rows(
    results: dict[str, Any],
    backend: str,
    sizes: Sizes,
    verify: dict[str, float] | None,
    sqlite_commits: float | None,
) -> list[Row]:
    name = BACKEND_NAMES.get(backend, backend)
    cores = os.cpu_count() or 1
    rows = []
    levels = [sizes.concurrency] + ([1] if sizes.exchanges_c1 else [])
    for conc in levels:
        mint: Outcome = results[f"mint_c{conc}"]["best"]
        for kind in KINDS:
            got: Outcome = results[f"{kind}_c{conc}"]["best"]
            load = got.load
            ok_rate = got.ok_rate
            note = f"p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms"
            note += f"; server CPU {load.cpu_us or 0:,.0f} µs/key"
            if kind != "mint":
                note += f" (mint {mint.load.cpu_us or 0:,.0f})"
            note += f"; client CPU {got.client_cpu_us:.0f} µs/request; {load.requests:,} requests"
            if verify and kind in verify and conc > 1:
                ceiling = cores * verify[kind]
                note += f"; {ok_rate / ceiling:.2f}x the CPU ceiling {cores} cores x in-process verify"
            if load.errors:
                note += f"; {load.errors} ERRORS"
            bound: float | None
            if kind == "mint":
                bound = sqlite_commits if backend == "sqlite" else None
                bound_name = "SQLite one-row commits" if bound else "—"
            else:
                bound, bound_name = mint.ok_rate, f"mint c{conc}, same client"
            detail = {
                "backend": backend,
                "best": got.as_dict(),
                "samples": [o.as_dict() for o in results[f"{kind}_c{conc}"]["samples"]],
            }
            rows.append(
                Row(
                    "keys",
                    f"{LABELS[kind]}, c{conc} ({name})",
                    "keys/s",
                    ok_rate,
                    None,
                    bound,
                    bound_name,
                    note,
                    detail,
                )
            )
    return rows


# --- standalone: `python -m bench.federation_bench` ---------------------------------------------


def _meta(mode: str, workers: int, backends: list[str]) -> dict[str, Any]:
    return {
        "mode": mode,
        "bench": "federation",
        **machine_facts("python -m bench.federation_bench"),
        "workers": workers,
        "backends": backends,
        "loadgen": "python asyncio (uvloop), each request sent once",
        "baseline": "n/a",
    }


def run(args: argparse.Namespace) -> Report:
    mode = "selftest" if args.selftest else "quick" if args.quick else "full"
    sizes = SIZES[mode]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    started = time.monotonic()
    report = Report(meta=_meta(mode, args.workers, backends))
    work = Path(tempfile.mkdtemp(prefix="coffer-fedbench-", dir=args.tmp))
    try:
        log("verifiers in process, one core, interleaved, best of 3")
        v = measure_verifiers(sizes.verify_seconds)
        report.limits["federation_verify"] = v
        for row in verifier_rows(v):
            report.add(row)
        commits = limits.sqlite_commits(work, 200 if mode == "selftest" else 1000)
        report.limits["sqlite_commits"] = commits
        report.add(
            Row("machine", "SQLite one-row commits (WAL, FULL)", "commits/s", commits, note="single writer")
        )
        for backend in backends:
            if backend == "postgres":
                why = postgres_available()
                if why:
                    log(f"skipping PostgreSQL: {why}")
                    report.meta.setdefault("skipped", []).append(f"postgres: {why}")
                    continue
            log(
                f"service layer on {BACKEND_NAMES.get(backend, backend)}: {sizes.service} of each, one thread"
            )
            for row in service_rows(measure_service(work, backend, sizes.service), backend):
                report.add(row)
            log(f"coffer serve on {BACKEND_NAMES.get(backend, backend)}, {args.workers} workers")
            server = start_server(
                work / backend, backend, workers=args.workers, extra_args=["--log-level", "warning"]
            )
            try:
                results = measure_exchanges(server, sizes, strict=mode == "selftest" or args.strict)
            finally:
                stop_server(server)
            for row in exchange_rows(results, backend, sizes, v["rates"], commits):
                report.add(row)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report.meta["seconds"] = time.monotonic() - started
    return report


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.federation_bench", description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small sizes: seconds")
    mode.add_argument("--selftest", action="store_true", help="tiny sizes; every exchange must be 200")
    ap.add_argument("--backends", default="sqlite", help="comma list of sqlite, postgres (default sqlite)")
    ap.add_argument("--workers", type=int, default=2, help="Coffer worker processes (default 2)")
    ap.add_argument("--strict", action="store_true", help="fail on any non-200 (always on in --selftest)")
    ap.add_argument("--json", type=Path, help="default bench/results/<time>-federation-<mode>.json")
    ap.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    ap.add_argument("--tmp", help="directory for the run's data (default: the system temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the run's data directory")
    args = ap.parse_args(argv)
    unknown = {b.strip() for b in args.backends.split(",") if b.strip()} - set(BACKEND_NAMES)
    if unknown:
        ap.error(f"unknown backends: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    report = run(args)
    table = report.render().split("\n\n| target |")[0]  # no targets: the table alone
    publish(report, table, args.json, args.markdown, f"federation-{report.meta['mode']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
