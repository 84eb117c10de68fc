"""Encryption at rest for access-key secrets (AES-256-GCM under the node's master key).

SigV4 needs the plain secret to recompute signatures, so secrets cannot be hashed like
API tokens; they are sealed with the access key id as associated data, so a ciphertext
copied onto another key's row does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from coffer.datadir import make_private_dir

_VERSION = b"\x01"
_NONCE_LEN = 12


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the master key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str) -> bytes:
        nonce = os.urandom(_NONCE_LEN)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())

    def open(self, sealed: bytes, context: str) -> str:
        if sealed[:1] != _VERSION:
            raise ValueError("unknown secret envelope version")
        nonce, body = sealed[1 : 1 + _NONCE_LEN], sealed[1 + _NONCE_LEN :]
        return self._aead.decrypt(nonce, body, context.encode()).decode()


def load_master_key(configured: str, data_dir: Path) -> bytes:
    """The configured key, else <data_dir>/master.key, created once with mode 0600."""
    if configured:
        try:
            key = base64.b64decode(configured, validate=True)
        except (ValueError, binascii.Error):
            key = b""
        if len(key) != 32:
            raise ValueError("master_key must be 32 bytes, base64-encoded")
        return key
    path = data_dir / "master.key"
    if not path.exists():
        make_private_dir(data_dir)
        encoded = base64.b64encode(secrets.token_bytes(32))
        # Write a private temp file, then link it into place: link() fails if another
        # process got there first, and nobody ever reads a half-written key.
        tmp = data_dir / f".master.key.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(encoded + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    try:
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except (ValueError, binascii.Error):
        key = b""
    if len(key) != 32:
        raise ValueError(f"{path} does not hold a 32-byte base64 key")
    return key
