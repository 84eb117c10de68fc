"""Files the CLI commands are given (certificates, JWK Sets, policies), read one way."""

from __future__ import annotations

import sys

import click


def read_text(path: str, what: str) -> str:
    """A file's UTF-8 text (`-` is stdin); an unreadable file is one error line naming the
    file and `what` it was meant to be, not a traceback."""
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise click.ClickException(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise click.ClickException(f"{path}: not a text file ({what} must be UTF-8 text)") from None
