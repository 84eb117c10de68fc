"""curl as a real S3 client: its own SigV4 signer (`--aws-sigv4`) with a module's key, for
the wire forms SDKs hide (tests/clients/test_curl.py, tests/s3/); a module gets one from the
`curl` fixture (tests.support.fixtures_s3)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from tests.support.clients import client_env
from tests.support.harness import CofferServer
from tests.support.s3 import REGION


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def code(self) -> str | None:
        if not self.body.startswith(b"<?xml"):
            return None
        node = ElementTree.fromstring(self.body).find("Code")
        return node.text if node is not None else None


class Curl:
    def __init__(self, server: CofferServer, key: dict[str, Any], work: Path) -> None:
        self.base = server.s3_url
        self.user = f"{key['accessKeyId']}:{key['secretKey']}"
        self.work = work
        self.env = client_env(work / "home")
        self.version = subprocess.run(
            ["curl", "--version"], capture_output=True, text=True, check=True
        ).stdout.split()[1]

    def __call__(self, path: str, *args: str, user: str | None = None, output: Path | None = None) -> Reply:
        """Run curl; the body lands in `output` if given (then Reply.body is empty)."""
        head, body = self.work / "head.txt", output or self.work / "body.bin"
        argv = [
            "curl", "-sS", "--aws-sigv4", f"aws:amz:{REGION}:s3", "--user", user or self.user,
            "-D", str(head), "-o", str(body), "-w", "%{http_code}", *args, self.base + path,
        ]  # fmt: skip
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=120, check=True)
        headers: dict[str, str] = {}
        for line in head.read_text(errors="replace").splitlines():
            if line.startswith("HTTP/"):
                headers = {}  # a 100 Continue comes first
            elif ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        data = b""
        if output is None:
            data = body.read_bytes() if body.exists() else b""
            body.unlink(missing_ok=True)
        return Reply(int(done.stdout.strip()), headers, data)
