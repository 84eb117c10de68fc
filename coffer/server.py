"""Runs a node: both faces behind one uvicorn, on two listening sockets, N workers.

Each worker process builds its own Node from the settings the parent resolved (passed
through the environment, since uvicorn spawns workers afresh), and routes each
connection to the API or the S3 app by the local port it arrived on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from coffer import logs
from coffer.config import Settings
from coffer.identity.bootstrap import bootstrap
from coffer.node import Node

log = logging.getLogger("coffer.server")
_SETTINGS_ENV = "COFFER_RESOLVED_SETTINGS"


class PortDispatch:
    """One ASGI app per listening port."""

    def __init__(self, api: ASGIApp, s3: ASGIApp, api_port: int, node: Node) -> None:
        self.api, self.s3, self.api_port, self.node = api, s3, api_port, node

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
        else:
            await self.s3(scope, receive, send)


def create_app() -> PortDispatch:
    """uvicorn factory, called once in every worker process."""
    settings = Settings(**json.loads(os.environ[_SETTINGS_ENV]))
    logs.configure(settings.log_level, audit_path=settings.audit_path)
    node = Node.open(settings, migrate=False)
    from coffer.api.app import build_app as build_api
    from coffer.s3.app import build_app as build_s3

    api: ASGIApp = build_api(node)
    s3: ASGIApp = build_s3(node)
    if settings.access_log:
        api, s3 = logs.AccessLog(api, "api"), logs.AccessLog(s3, "s3")
    return PortDispatch(api, s3, settings.api_port, node)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


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
    info = prepare(settings)
    if info["token_path"]:
        log.info(
            "bootstrapped organization %s; the admin API token is in %s",
            info["org_id"],
            info["token_path"],
            extra={"org_id": info["org_id"], "token_path": str(info["token_path"])},
        )
    os.environ[_SETTINGS_ENV] = json.dumps(dataclasses.asdict(settings))
    sockets = [_listen(settings.host, settings.api_port), _listen(settings.host, settings.s3_port)]
    config = uvicorn.Config(
        "coffer.server:create_app",
        factory=True,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        date_header=True,
        timeout_keep_alive=30,
        proxy_headers=False,
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
    if settings.workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=sockets).run()
    else:
        uvicorn.Server(config).run(sockets=sockets)
