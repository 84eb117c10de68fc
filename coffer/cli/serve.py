"""`coffer serve`."""

from __future__ import annotations

from typing import Any

import click
import sqlalchemy.exc

from coffer.cli.options import pop_settings, settings_options


class BadSetting(click.ClickException):
    """One line, and exit status 2 as for the settings pop_settings refuses."""

    exit_code = 2


@click.command()
@settings_options()
def serve(**kwargs: Any) -> None:
    """Start the control-plane API (and console) and the S3 endpoint.

    The first start on an empty store creates an organization, an admin user holding
    Object Storage Admin and an API token for it, written to <data-dir>/admin-token (0600).
    """
    from coffer import server
    from coffer.cli.admin import _db_problem
    from coffer.datadir import private_umask
    from coffer.store.errors import StoreUnavailable
    from coffer.web.tls import TLSError

    settings = pop_settings(kwargs)
    try:
        with private_umask():  # workers inherit it; see coffer/datadir.py
            server.serve(settings)
    except OSError as exc:
        raise click.ClickException(f"cannot start: {exc}") from None
    except TLSError as exc:
        raise BadSetting(f"cannot start: {exc}") from None
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise click.ClickException(f"cannot start: metadata store: {_db_problem(exc)}") from None
    except StoreUnavailable as exc:
        raise click.ClickException(
            f"cannot start: metadata store: {_db_problem(exc.__cause__ or exc)}"
        ) from None
    except ValueError as exc:
        raise click.ClickException(f"cannot start: {exc}") from None
