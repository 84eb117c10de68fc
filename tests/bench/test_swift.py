"""The Swift peer (bench/swift.py): its rendered configs are the layout the bench reports, and,
where Debian's swift packages are installed, the cluster starts on loopback and answers
signed S3 calls (CI does not install swift: there the second test is skipped)."""

from __future__ import annotations

import configparser
from pathlib import Path

import psutil
import pytest

from bench import swift
from bench.client import Conn
from bench.endpoint import Endpoint
from bench.signing import Signer

PORTS = {"account": 6012, "container": 6011, "object": 6010, "proxy": 8080, "memcached": 11311}


def test_configs_are_one_replica_two_workers_s3api_tempauth(tmp_path: Path) -> None:
    files = swift.render_configs(tmp_path, PORTS)
    assert set(files) == {"swift.conf", *(f"{name}-server.conf" for name in swift.SERVERS)}
    parsed = {}
    for name, text in files.items():
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(text)
        parsed[name] = parser
    for name in swift.SERVERS:
        default = parsed[f"{name}-server.conf"]["DEFAULT"]
        assert default["bind_port"] == str(PORTS[name]) and default["bind_ip"] == "127.0.0.1"
        assert default["mount_check"] == "false" and default["swift_dir"] == str(tmp_path)
    workers = {name: parsed[f"{name}-server.conf"]["DEFAULT"]["workers"] for name in swift.SERVERS}
    assert workers == {"account": "1", "container": "1", "object": "2", "proxy": "2"}
    proxy = parsed["proxy-server.conf"]
    pipeline = proxy["pipeline:main"]["pipeline"].split()
    assert pipeline.index("s3api") < pipeline.index("tempauth") < pipeline.index("slo")
    assert pipeline[-1] == "proxy-server"
    assert proxy["filter:tempauth"][f"user_{swift.ACCOUNT}_{swift.USER}"] == f"{swift.SECRET} .admin"
    assert proxy["filter:cache"]["memcache_servers"] == "127.0.0.1:11311"
    assert proxy["app:proxy-server"]["account_autocreate"] == "true"


@pytest.mark.skipif(bool(swift.missing()), reason=swift.missing() or "installed")
def test_cluster_answers_signed_s3_calls(tmp_path: Path) -> None:
    with swift.Swift(tmp_path / "swift").start() as cluster:
        launcher = psutil.Process(cluster.pid)
        processes = [launcher, *launcher.children(recursive=True)]
        names = " ".join(" ".join(p.cmdline()) for p in processes)
        for server in ("memcached", *(f"swift-{name}-server" for name in swift.SERVERS)):
            assert server in names, server  # one pid carries the whole cluster's CPU and memory
        endpoint = Endpoint("swift", "127.0.0.1", cluster.port, swift.SIGNER)
        endpoint.create_bucket("bench")
        with endpoint.conn() as conn:
            for key in ("p0/a", "p0/b", "p1/c"):
                endpoint.put(conn, f"/bench/{key}", key.encode() * 100)
            assert endpoint.get(conn, "/bench/p1/c").length == 400
            assert endpoint.list_page(conn, "bench") == (3, "")
            assert endpoint.list_page(conn, "bench", delimiter="/") == (2, "")
        # the presigned pools the small-object rows replay are accepted too
        url = swift.SIGNER.presign("GET", endpoint.hostport, "/bench/p0/a")
        with Conn("127.0.0.1", cluster.port) as conn:
            got = conn.request("GET", url, [("Host", endpoint.hostport)], discard=True)
            assert (got.status, got.length) == (200, 400)
        # a wrong secret is refused: Swift checks SigV4
        wrong = Endpoint("swift", "127.0.0.1", cluster.port, Signer(swift.ACCESS_KEY, "wrong"))
        with wrong.conn() as conn:
            assert wrong.call(conn, "GET", "/bench/p0/a").status == 403
    # stopping the launcher stops every server it started
    psutil.wait_procs(processes, timeout=5)
    assert not [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
