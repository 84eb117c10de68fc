"""Settings: one definition, read from flags, COFFER_* environment variables and a TOML file.

Precedence is flag > environment > config file > default, so a deployment can keep
a file under version control and override single values per node.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "COFFER_"


def _setting(default: Any, help: str, flag: str | None = None) -> Any:
    return field(default=default, metadata={"help": help, "flag": flag})


@dataclass(frozen=True)
class Settings:
    """Everything a Coffer node needs to start. Field names double as config-file keys."""

    data_dir: str = _setting("./coffer-data", "Directory for the embedded database, blobs and key files.")
    database_url: str = _setting(
        "", "SQLAlchemy URL of the metadata store (postgresql://...); empty means SQLite in the data dir."
    )
    host: str = _setting("127.0.0.1", "Address both listeners bind to.")
    api_port: int = _setting(8480, "Port of the control-plane API and console.")
    s3_port: int = _setting(8490, "Port of the S3 endpoint.")
    workers: int = _setting(1, "Worker processes serving both ports.")
    s3_domain: str = _setting(
        "", "Base domain for virtual-hosted-style addressing (bucket.<domain>); empty disables it."
    )
    strict_coreweave: bool = _setting(
        False, "Refuse path-style requests and require a LocationConstraint, as CoreWeave does."
    )
    default_zone: str = _setting("US-EAST-04A", "Availability zone used when CreateBucket names none.")
    zones: str = _setting(
        "",
        "Comma-separated availability zones accepted as LocationConstraint; empty accepts CoreWeave's list.",
    )
    max_key_duration: int = _setting(43200, "Upper bound in seconds for a temporary access key's lifetime.")
    api_token_key_duration: int = _setting(
        900, "Lifetime in seconds of keys minted by the api-token container-credentials exchange."
    )
    master_key: str = _setting(
        "", "Base64 32-byte key that encrypts access-key secrets; empty uses <data-dir>/master.key."
    )
    log_level: str = _setting("info", "Log level: debug, info, warning, error.")
    access_log: bool = _setting(False, "Log one structured line per HTTP request.")
    sigv2: bool = _setting(True, "Accept legacy AWS Signature Version 2 on the S3 endpoint.")
    cache_poll_seconds: float = _setting(
        1.0, "How often a node re-reads the change counter when notifications may be missed."
    )

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return normalize_database_url(self.database_url)
        return f"sqlite:///{self.data_path / 'coffer.db'}"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def normalize_database_url(url: str) -> str:
    """Accept the plain postgresql:// form users write and pick the psycopg 3 driver for it."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def setting_fields() -> list[dataclasses.Field[Any]]:
    return list(dataclasses.fields(Settings))


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _coerce(f: dataclasses.Field[Any], value: Any) -> Any:
    kind = type(f.default)
    if kind is bool and isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"{f.name}: expected a boolean, got {value!r}")
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{f.name}: expected {kind.__name__}, got {value!r}") from exc


def load_settings(
    overrides: dict[str, Any] | None = None,
    config_file: str | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Merge default < file < environment < explicit overrides (None values are ignored)."""
    environ = dict(os.environ) if environ is None else environ
    config_file = config_file or environ.get(env_name("config"))
    values: dict[str, Any] = {}
    known = {f.name: f for f in setting_fields()}
    if config_file:
        with open(config_file, "rb") as fh:
            data = tomllib.load(fh)
        section = data.get("coffer", data)
        for key, value in section.items():
            name = key.replace("-", "_")
            if name not in known:
                raise ValueError(f"unknown setting {key!r} in {config_file}")
            values[name] = _coerce(known[name], value)
    for name, f in known.items():
        raw = environ.get(env_name(name))
        if raw is not None:
            values[name] = _coerce(f, raw)
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _coerce(known[name], value)
    return Settings(**values)
