"""Runs a node: both faces behind one uvicorn, N workers, on two listening sockets (three
when `metrics_port` gives /metrics a port of its own).

Each worker process builds its own Node from the settings the parent resolved (passed
through the environment, since uvicorn spawns workers afresh), assembles the apps (the
console's routes mounted beside the control plane's on the API port), and routes each
connection to the API or the S3 app by the local port it arrived on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import sys
from collections.abc import Callable
from typing import Any, cast

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from coffer import logs, metrics
from coffer.config import Settings
from coffer.identity.bootstrap import bootstrap
from coffer.node import Node
from coffer.web import protocol, tls

log = logging.getLogger("coffer.server")
_SETTINGS_ENV = "COFFER_RESOLVED_SETTINGS"


class PortDispatch:
    """One ASGI app per listening port."""

    def __init__(self, api: ASGIApp, s3: ASGIApp, api_port: int, node: Node, metrics_port: int = 0) -> None:
        self.api, self.s3, self.api_port, self.node = api, s3, api_port, node
        self.metrics_port = metrics_port
        self.metrics = metrics.MetricsApp(node.blobs.root)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.node.start_background()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.node.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        server = scope.get("server")
        if server and server[1] == self.api_port:
            await self.api(scope, receive, send)
        elif server and self.metrics_port and server[1] == self.metrics_port:
            await self.metrics(scope, receive, send)
        else:
            await self.s3(scope, receive, send)


def create_app() -> PortDispatch:
    """uvicorn factory, called once in every worker process."""
    settings = Settings(**json.loads(os.environ[_SETTINGS_ENV]))
    logs.configure(settings.log_level, audit_path=settings.audit_path)
    tls.handle_hangups()
    node = Node.open(settings, migrate=False)
    from coffer.s3.app import build_app as build_s3
    from coffer.web.http import AccessLog

    _install_guard(settings)
    api: ASGIApp = build_api_port(node)
    s3: ASGIApp = build_s3(node)
    if settings.access_log:
        api, s3 = AccessLog(api, "api"), AccessLog(s3, "s3")
    metrics.worker_started()
    metrics_port = settings.metrics_port if settings.metrics else 0
    return PortDispatch(api, s3, settings.api_port, node, metrics_port)


def build_api_port(node: Node) -> ASGIApp:
    """The API port's app: the control plane, with the console's routes mounted beside its own."""
    from coffer.api.app import build_app
    from coffer.console.app import routes as console_routes

    return build_app(node, console_routes(node.settings))


def _install_guard(settings: Settings) -> None:
    """Bounds for every connection of this worker, and what each face answers when they bite."""
    from coffer.api.http import connection_refusal as api_refusal
    from coffer.s3.responses import connection_refusal as s3_refusal

    faces = {settings.api_port: api_refusal, settings.s3_port: s3_refusal}

    def refusal(port: int, reason: str, detail: str) -> protocol.Response | None:
        face = faces.get(port)
        return face(reason, detail) if face else protocol.default_refusal(port, reason, detail)

    bounds = protocol.Bounds(
        max_connections=protocol.raise_descriptor_limit(settings.max_connections),
        head_timeout=settings.head_timeout,
        body_idle_timeout=settings.body_idle_timeout,
        write_timeout=settings.write_timeout,
    )
    names = {settings.api_port: "api", settings.s3_port: "s3"}
    if settings.metrics_port:
        names[settings.metrics_port] = "metrics"
    open_by_port = {name: metrics.CONNECTIONS_OPEN.labels(name) for name in names.values()}
    protocol.install(
        protocol.Guard(
            bounds=bounds,
            refusal=refusal,
            port_names=names,
            on_open=lambda port, delta: open_by_port[port].inc(delta) if port in open_by_port else None,
            on_close=lambda reason: metrics.CONNECTIONS_CLOSED.labels(reason).inc(),
        )
    )


def _listen(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _then_release(start: Callable[[Any], None]) -> Callable[[Any], None]:
    """A supervisor method that starts workers, after which the parent closes the sockets it
    handed them (`_release`): each worker holds its own copies."""

    def method(self: Any) -> None:
        start(self)
        self._release()

    return method


def _supervisor() -> type:
    class OwnSocketWorkers(tls.HangupForwarding):
        """uvicorn's supervisor, except that every worker listens on sockets of its own
        (SO_REUSEPORT), so the kernel spreads new connections evenly over the workers.

        With one shared listening socket, the worker that wakes first accepts a whole burst
        of connections and keeps them (keep-alive): under 16 benchmark connections one
        worker served every request while the other idled (about 4,000 instead of 7,000
        small GETs/s on 2 cores; docs/performance.md). uvicorn reads `self.sockets` once
        per worker it starts; here that read binds a fresh pair, and the parent lets go of
        its copies as soon as the worker has started, so a dead worker's sockets close with
        it instead of queueing connections nobody accepts."""

        def __init__(self, config: uvicorn.Config, listen: list[tuple[str, int]]) -> None:
            self._addresses = listen
            self._handed: list[socket.socket] = []
            super().__init__(config, sockets=[])

        @property
        def sockets(self) -> list[socket.socket]:
            fresh = [_listen(host, port, reuse_port=True) for host, port in self._addresses]
            self._handed += fresh
            return fresh

        @sockets.setter
        def sockets(self, _value: list[socket.socket]) -> None:
            pass

        def _release(self) -> None:
            for sock in self._handed:
                sock.close()
            self._handed = []

        # The methods in which uvicorn starts workers (each reading `sockets` per worker).
        init_processes = _then_release(tls.HangupForwarding.init_processes)
        keep_subprocess_alive = _then_release(tls.HangupForwarding.keep_subprocess_alive)
        restart_all = _then_release(tls.HangupForwarding.restart_all)
        handle_ttin = _then_release(tls.HangupForwarding.handle_ttin)

    return OwnSocketWorkers


def prepare(settings: Settings) -> dict[str, Any]:
    """Migrate and bootstrap once, in the parent, before any worker starts."""
    node = Node.open(settings, migrate=True)
    try:
        node.keys.verify_master_key()
        boot = bootstrap(node.directory, settings.data_path, node.policies)
        with_policies = node.policies.names_by_org()
        for org in node.directory.list_orgs():
            if org.id not in with_policies:
                log.warning(
                    "organization %s (%s) has no access policy, so S3 refuses all of its requests; "
                    "apply one with `coffer policy apply`",
                    org.id,
                    org.name,
                    extra={"org_id": org.id},
                )
    finally:
        node.close()
    return {"org_id": boot.org.id, "admin": boot.admin.principal_name, "token_path": boot.token_path}


def serve(settings: Settings) -> None:
    logs.configure(settings.log_level, audit_path=settings.audit_path)
    tls.handle_hangups()
    tls_options = tls.uvicorn_kwargs(settings)  # a bad certificate fails here, before any migration
    info = prepare(settings)
    if info["token_path"]:
        log.info(
            "bootstrapped organization %s; the admin API token is in %s",
            info["org_id"],
            info["token_path"],
            extra={"org_id": info["org_id"], "token_path": str(info["token_path"])},
        )
    os.environ[_SETTINGS_ENV] = json.dumps(dataclasses.asdict(settings))
    protocol.raise_descriptor_limit(settings.max_connections)  # workers inherit it
    if settings.metrics and settings.workers > 1:
        metrics.use_multiprocess_dir(settings.data_path / "run")  # before any worker starts
    # Bound without SO_REUSEPORT first: a port another server holds fails here, loudly.
    sockets = [_listen(settings.host, settings.api_port), _listen(settings.host, settings.s3_port)]
    if settings.metrics and settings.metrics_port:
        sockets.append(_listen(settings.host, settings.metrics_port))
    own_sockets = settings.workers > 1 and hasattr(socket, "SO_REUSEPORT") and sys.platform == "linux"
    if own_sockets:
        addresses = [(settings.host, sock.getsockname()[1]) for sock in sockets]
        for sock in sockets:
            sock.close()
    config = uvicorn.Config(
        "coffer.server:create_app",
        factory=True,
        workers=settings.workers,
        loop="uvloop",
        http="coffer.web.protocol:GuardedHttpToolsProtocol",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        date_header=True,
        timeout_keep_alive=cast(int, settings.keepalive_timeout),  # a float works: it goes to call_later
        proxy_headers=False,
        **tls_options,
    )
    log.info(
        "serving the API on %s:%d and S3 on %s:%d with %d worker(s)",
        settings.host,
        settings.api_port,
        settings.host,
        settings.s3_port,
        settings.workers,
        extra={"api_port": settings.api_port, "s3_port": settings.s3_port, "workers": settings.workers},
    )
    if settings.metrics and settings.metrics_port:
        log.info("serving /metrics on %s:%d", settings.host, settings.metrics_port)
    if own_sockets:
        _supervisor()(config, addresses).run()
    elif settings.workers > 1:
        tls.HangupForwarding(config, sockets=sockets).run()
    else:
        uvicorn.Server(config).run(sockets=sockets)
