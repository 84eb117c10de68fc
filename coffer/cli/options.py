"""Click options generated from the Settings dataclass, so flags and config never drift."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from coffer.config import CONFIG_ENV, Settings, env_name, flag_name, load_settings, setting_fields

# What `coffer admin` needs to open the store and write the audit trail, and nothing else.
STORE_FIELDS = ("data_dir", "database_url", "master_key", "log_level", "audit_file")


def settings_options(
    only: tuple[str, ...] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for f in reversed(setting_fields()):
            if only is not None and f.name not in only:
                continue
            flag = flag_name(f.name)
            help_text = f"{f.metadata['help']} [env {env_name(f.name)}; default {f.default!r}]"
            if isinstance(f.default, bool):
                fn = click.option(f"{flag}/--no-{flag[2:]}", f.name, default=None, help=help_text)(fn)
            else:
                fn = click.option(flag, f.name, type=type(f.default), default=None, help=help_text)(fn)
        fn = click.option(
            "--config",
            "config_file",
            type=click.Path(exists=True, dir_okay=False),
            default=None,
            help=f"TOML config file (keys as the flags, with _ or -) [env {CONFIG_ENV}]",
        )(fn)
        return fn

    return decorate


def resolve(config_file: str | None, values: dict[str, Any]) -> Settings:
    try:
        return load_settings(overrides=values, config_file=config_file)
    except (ValueError, OSError) as exc:
        raise click.UsageError(str(exc)) from None


def pop_settings(kwargs: dict[str, Any]) -> Settings:
    names = {f.name for f in setting_fields()}
    config_file = kwargs.pop("config_file", None)
    values = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
    return resolve(config_file, values)
