"""TLS on both listeners: the server context, and its certificate reloaded in place on SIGHUP.

uvicorn builds one SSLContext per worker and hands that very object to every listening
socket, so loading a new chain into it changes what the next handshake presents while
open connections keep the session they have. No worker restarts, no connection drops.

A reload reads both files once, checks the pair with `cryptography` and loads it into a
scratch context before touching the live one: OpenSSL swaps the certificate before it
looks at the key, so a mismatched pair loaded straight into the live context would leave
it unable to finish any handshake. Whatever fails is logged and the old chain stays.

SIGHUP is per process. The supervisor of several workers keeps it blocked and forwards
it to each worker (uvicorn's own supervisor would restart them all); workers inherit the
blocked mask, so one still starting cannot die of a hangup before `handle_hangups` has
installed its handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import ssl
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from uvicorn.supervisors import Multiprocess

from coffer.config import Settings

log = logging.getLogger("coffer.tls")

# Forward secrecy and AEAD only for TLS 1.2 (TLS 1.3's suites are all of that kind).
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"
_MIN_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class TLSError(ValueError):
    """The certificate or key cannot be served; the message is one line, fit for a user."""


@dataclass(frozen=True)
class Pair:
    """A certificate chain and its key as read from disk, checked to belong together."""

    cert_pem: bytes
    key_pem: bytes
    leaf: x509.Certificate

    @property
    def summary(self) -> str:
        expires = self.leaf.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC")
        return f"serial {self.leaf.serial_number:x}, expires {expires}"


def _path(raw: str) -> str:
    """Absolute, with symlinks kept: a renewal that re-points a link must be seen on reload."""
    return os.path.abspath(os.path.expanduser(raw))


def read_pair(cert: str, key: str) -> Pair:
    try:
        with open(cert, "rb") as fh:
            cert_pem = fh.read()
        with open(key, "rb") as fh:
            key_pem = fh.read()
    except OSError as exc:
        raise TLSError(f"tls: cannot read {exc.filename}: {exc.strerror or exc}") from None
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise TLSError(f"tls_cert: {cert} holds no PEM certificate") from None
    try:
        private = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise TLSError(f"tls_key: {key} is encrypted; give an unencrypted key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise TLSError(f"tls_key: {key} holds no PEM private key") from None
    if private.public_key() != chain[0].public_key():
        raise TLSError(f"tls_key: {key} is not the key of the first certificate in {cert}") from None
    return Pair(cert_pem, key_pem, chain[0])


@contextlib.contextmanager
def _as_files(pair: Pair) -> Iterator[tuple[str, str]]:
    """The pair as paths OpenSSL can open, holding exactly the bytes that were checked.

    Files that change between the check and the load cannot slip through. In memory
    where Linux allows (memfd), else in a private temporary directory."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fds = [os.memfd_create("coffer-tls"), os.memfd_create("coffer-tls")]
        try:
            for fd, data in zip(fds, (pair.cert_pem, pair.key_pem), strict=True):
                os.write(fd, data)
            yield f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}"
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="coffer-tls-") as tmp:
        paths = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        for path, data in zip(paths, (pair.cert_pem, pair.key_pem), strict=True):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
                fh.write(data)
        yield paths


def _load(context: ssl.SSLContext, cert: str, key: str) -> None:
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise TLSError(f"tls: OpenSSL refused the pair: {exc.reason or exc}") from None


def _empty_context(min_version: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _MIN_VERSIONS[min_version]
    context.set_ciphers(CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols(["http/1.1"])  # httptools speaks nothing else
    context.verify_mode = ssl.CERT_NONE  # no client certificates
    return context


def server_context(cert: str, key: str, min_version: str) -> tuple[ssl.SSLContext, Pair]:
    """A server context holding the pair; TLSError when it cannot be served."""
    pair = read_pair(cert, key)
    context = _empty_context(min_version)
    with _as_files(pair) as (cert_file, key_file):
        _load(context, cert_file, key_file)
    return context, pair


@dataclass
class Reloader:
    """One live server context, the files it is reloaded from, and the chain it serves now."""

    context: ssl.SSLContext
    cert: str
    key: str
    min_version: str
    served_pem: bytes

    def reload(self) -> bool:
        try:
            pair = read_pair(self.cert, self.key)
            with _as_files(pair) as (cert_file, key_file):
                _load(_empty_context(self.min_version), cert_file, key_file)
                _load(self.context, cert_file, key_file)
        except TLSError as exc:
            log.error(
                "cannot reload the TLS certificate, still serving the previous one: %s",
                exc,
                extra={"tls_cert": self.cert, "tls_key": self.key, "pid": os.getpid()},
            )
            return False
        self.served_pem = pair.cert_pem
        for client in _trusting:
            client.load_verify_locations(cadata=pair.cert_pem.decode("ascii", "replace"))
        log.info(
            "reloaded the TLS certificate from %s (%s)",
            self.cert,
            pair.summary,
            extra={"tls_cert": self.cert, "serial": f"{pair.leaf.serial_number:x}", "pid": os.getpid()},
        )
        return True


_reloaders: list[Reloader] = []
_trusting: list[ssl.SSLContext] = []


def context_factory(cert: str, key: str, min_version: str, _config: Any, _default: Any) -> ssl.SSLContext:
    """uvicorn's `ssl_context_factory`, run in every worker: the context, registered for reload."""
    context, pair = server_context(cert, key, min_version)
    _reloaders.append(Reloader(context, cert, key, min_version, pair.cert_pem))
    return context


def uvicorn_kwargs(settings: Settings) -> dict[str, Any]:
    """What uvicorn.Config needs for TLS; checks the pair now, so a bad one fails the start."""
    if not settings.tls:
        return {}
    cert, key = _path(settings.tls_cert), _path(settings.tls_key)
    server_context(cert, key, settings.tls_min_version)
    return {"ssl_context_factory": functools.partial(context_factory, cert, key, settings.tls_min_version)}


def client_context(settings: Settings) -> ssl.SSLContext:
    """For the node's calls to its own TLS port: trusts exactly the served chain.

    It connects to its bind address, which the certificate need not name, so the host
    name is not checked; the chain is, and it follows every reload. What this process
    serves is trusted, not what is on disk: files replaced but not yet reloaded are not."""
    if _reloaders:
        context = ssl.create_default_context(cadata=_reloaders[-1].served_pem.decode("ascii", "replace"))
    else:
        context = ssl.create_default_context(cafile=_path(settings.tls_cert))
    context.check_hostname = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the leaf itself is a trust anchor
    _trusting.append(context)
    return context


def _reload_all() -> None:
    if not _reloaders:
        log.info("SIGHUP: no TLS certificate is loaded in this process, nothing to reload")
    for reloader in _reloaders:
        try:
            reloader.reload()
        except Exception:  # e.g. out of descriptors for the memfd: a hangup must never end a worker
            log.exception("cannot reload the TLS certificate, still serving the previous one")


def _on_hangup(_signum: int, _frame: Any) -> None:
    """Reload from the event loop, as a callback, rather than inside whatever the signal interrupted."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        _reload_all()
    else:
        loop.call_soon_threadsafe(_reload_all)


def handle_hangups() -> None:
    """Make SIGHUP reload this process's certificates (and never end the process)."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGHUP, _on_hangup)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})


class HangupForwarding(Multiprocess):
    """uvicorn's supervisor, except that SIGHUP reloads each worker's certificate in place
    instead of replacing every worker."""

    def run(self) -> None:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
        try:
            super().run()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def handle_signals(self) -> None:
        if signal.sigtimedwait({signal.SIGHUP}, 0) is not None:
            self.signal_queue.append(signal.SIGHUP)
        super().handle_signals()

    def handle_hup(self) -> None:
        log.info("SIGHUP: every worker reloads its TLS certificate")
        for process in self.processes:
            if process.pid is not None and process.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGHUP)
