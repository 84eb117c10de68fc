"""A database outage under load: clients hammering a node (or a cluster's balancer) with
PUTs, GETs of acknowledged keys and control-plane calls while a private PostgreSQL cluster
is restarted and then stopped for a while, and the checks every such run must pass."""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from botocore.exceptions import BotoCoreError, ClientError

from tests.support.harness import CofferServer
from tests.support.pgcluster import PrivatePostgres
from tests.support.s3 import new_bucket, s3_client

BOUND = 10.0  # seconds any request may take during an outage (the connect timeout is 5)
RESUME = 10.0  # seconds after the database is back by which every kind of call succeeds again
ALLOWED = {(200, ""), (503, "ServiceUnavailable"), (503, "14")}  # 14: gRPC UNAVAILABLE


@dataclass
class Load:
    """Clients of `target`; every answer is recorded as (start, op, status, code, seconds)."""

    target: CofferServer
    bucket: str
    key: dict[str, Any]
    stop: threading.Event = field(default_factory=threading.Event)
    acked: dict[str, bytes] = field(default_factory=dict)
    seen: list[tuple[float, str, int, str, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, op: str, started: float, status: int, code: str) -> None:
        with self.lock:
            self.seen.append((started, op, status, code, time.monotonic() - started))

    def _s3_failure(self, op: str, started: float, exc: ClientError) -> None:
        meta = exc.response["ResponseMetadata"]
        status, code = meta["HTTPStatusCode"], exc.response["Error"]["Code"]
        if status == 503 and meta["HTTPHeaders"].get("retry-after") != "1":
            code += " without Retry-After"
        self.record(op, started, status, code)

    def s3_worker(self, n: int) -> None:
        client = s3_client(self.target, self.key, connect_timeout=BOUND, read_timeout=BOUND * 2)
        rng = random.Random(n)
        i = 0
        while not self.stop.is_set():
            i += 1
            name, body = f"w{n}/{i}", secrets.token_bytes(64 + i % 512)
            started = time.monotonic()
            try:
                client.put_object(Bucket=self.bucket, Key=name, Body=body)
            except ClientError as exc:
                self._s3_failure("put", started, exc)
            except BotoCoreError as exc:  # a timeout, a reset: never acceptable
                self.record("put", started, 0, type(exc).__name__)
            else:
                self.record("put", started, 200, "")
                with self.lock:
                    self.acked[name] = body
            with self.lock:
                some = rng.choice(list(self.acked.items())) if self.acked and i % 2 else None
            if some is None:
                continue
            started = time.monotonic()
            try:
                got = client.get_object(Bucket=self.bucket, Key=some[0])["Body"].read()
                self.record("get", started, 200, "" if got == some[1] else "wrong body")
            except ClientError as exc:
                self._s3_failure("get", started, exc)
            except BotoCoreError as exc:
                self.record("get", started, 0, type(exc).__name__)

    def api_worker(self) -> None:
        headers = {"Authorization": f"Bearer {self.target.admin_token}"}
        with httpx.Client(base_url=self.target.api_url, headers=headers, timeout=BOUND * 2) as api:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    r = api.get("/v1/cwobject/access-key")
                except httpx.HTTPError as exc:
                    self.record("api", started, 0, type(exc).__name__)
                    continue
                code = "" if r.status_code == 200 else str(r.json().get("code"))
                if r.status_code == 503 and r.headers.get("retry-after") != "1":
                    code += " without Retry-After"
                self.record("api", started, r.status_code, code)
                time.sleep(0.02)


def run_outage(target: CofferServer, pg: PrivatePostgres) -> None:
    """Load `target` across a fast restart and a 4-second stop of `pg`, then check the run."""
    load = Load(target, new_bucket(s3_client(target), "outage"), target.mint_key())
    threads = [threading.Thread(target=load.s3_worker, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=load.api_worker))
    for t in threads:
        t.start()
    try:
        time.sleep(2)
        pg.restart()  # a fast restart: every session cut, back in a second or two
        time.sleep(3)
        pg.stop()  # a longer outage: nothing listens on the port
        stopped = time.monotonic()
        time.sleep(4)
        pg.start()
        back = time.monotonic()
        time.sleep(RESUME + 2)
    finally:
        load.stop.set()
        for t in threads:
            t.join(60)
    assert not any(t.is_alive() for t in threads), "a client hung"

    print("responses:", dict(Counter((op, status, code) for _, op, status, code, _ in load.seen)))
    # Never a 500, a reset or a wrong body: success, or "unavailable, retry after 1 s".
    for _, op, status, code, _ in load.seen:
        assert (status, code) in ALLOWED, (op, status, code)
    slowest = max(s for *_, s in load.seen)
    print(f"slowest response: {slowest:.2f} s")
    assert slowest < BOUND
    # The stopped database was noticed by both planes.
    during = Counter((op, status) for t, op, status, _, s in load.seen if stopped + 0.5 < t and t + s < back)
    assert during[("put", 503)] and during[("api", 503)], during
    # Service resumed by itself.
    after = Counter((op, status) for t, op, status, _, _ in load.seen if t > back + RESUME)
    assert after and set(after) <= {("put", 200), ("get", 200), ("api", 200)}, after
    first_ok = min(t for t, op, status, _, _ in load.seen if t > back and status == 200 and op == "put")
    print(f"first PUT acknowledged {first_ok - back:.2f} s after the database was back")
    # Every acknowledged write is there, whole, read through fresh connections.
    fresh = s3_client(target, load.key)
    for name, body in load.acked.items():
        assert fresh.get_object(Bucket=load.bucket, Key=name)["Body"].read() == body, name
    print(f"{len(load.acked)} acknowledged PUTs all readable")
