"""`coffer serve`."""

from __future__ import annotations

from typing import Any

import click

from coffer.cli.options import pop_settings, settings_options


@click.command()
@settings_options()
def serve(**kwargs: Any) -> None:
    """Start the control-plane API (and console) and the S3 endpoint."""
    from coffer import server

    settings = pop_settings(kwargs)
    try:
        server.serve(settings)
    except OSError as exc:
        raise click.ClickException(f"cannot start: {exc}") from None
