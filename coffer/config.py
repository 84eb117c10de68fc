"""Settings: one definition, read from flags, COFFER_* environment variables and a TOML file.

Precedence is flag > environment > config file > default, so a deployment can keep
a file under version control and override single values per node. Every field of
`Settings` is at once a flag (`--api-port`), an environment variable (`COFFER_API_PORT`)
and a config-file key (`api_port` or `api-port`, at top level or under `[coffer]`);
`docs/configuration.md` lists them all and `tests/test_docs.py` keeps it honest.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coffer import limits

ENV_PREFIX = "COFFER_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"
UINT32_MAX = 2**32 - 1
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
OBJECT_OWNERSHIPS = ("BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter")


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
    workers: int = _setting(
        "auto",
        "Worker processes serving both ports: a number (1-256) or auto, one per CPU this process may use.",
    )
    s3_domain: str = _setting(
        "", "Base domain for virtual-hosted-style addressing (bucket.<domain>); empty disables it."
    )
    strict_coreweave: bool = _setting(
        False, "Refuse path-style requests and require a LocationConstraint, as CoreWeave does."
    )
    default_object_ownership: str = _setting(
        "BucketOwnerEnforced",
        "Object Ownership of buckets created without x-amz-object-ownership: BucketOwnerEnforced "
        "(ACLs off), BucketOwnerPreferred or ObjectWriter (ACLs on). Strict mode always uses "
        "BucketOwnerEnforced.",
    )
    default_zone: str = _setting("US-EAST-04A", "Availability zone used when CreateBucket names none.")
    zones: str = _setting(
        "",
        "Comma-separated availability zones accepted as LocationConstraint; empty accepts CoreWeave's list.",
    )
    max_key_duration: int = _setting(43200, "Upper bound in seconds for a temporary access key's lifetime.")
    api_token_key_duration: int = _setting(
        3600, "Lifetime in seconds of keys minted by the api-token container-credentials exchange."
    )
    oidc_container_key_duration: int = _setting(
        3600,
        "Lifetime in seconds of keys from the OIDC container-credentials exchange (clipped to the token).",
    )
    public_url: str = _setting(
        "",
        "URL clients reach the control plane at (https://coffer.example.com); SAML audiences and recipients "
        "default under it. Empty means http://<host>:<api-port> (https:// with TLS on).",
    )
    master_key: str = _setting(
        "", "Base64 32-byte key that encrypts access-key secrets; empty uses <data-dir>/master.key."
    )
    log_level: str = _setting("info", "Log level: debug, info, warning, error, critical.")
    access_log: bool = _setting(False, "Log one structured line per HTTP request.")
    audit_file: str = _setting(
        "audit.log",
        "File the audit trail is appended to as JSON lines (relative paths are under the data dir); "
        "empty keeps it in the server log only.",
    )
    audit_flush_seconds: float = _setting(
        60.0,
        "Seconds between flushes of each worker's audit-log spool into the organizations' "
        "cw-<org-id>-audit-logs buckets (also flushed at shutdown).",
    )
    audit_spool_max_bytes: int = _setting(
        limits.AUDIT_SPOOL_MAX_BYTES,
        "Bytes of audit-log events one worker keeps in its spool (<data-dir>/audit-spool) before it "
        "drops new ones.",
    )
    sigv2: bool = _setting(True, "Accept legacy AWS Signature Version 2 on the S3 endpoint.")
    cache_poll_seconds: float = _setting(
        1.0, "How often a node re-reads the change counter when notifications may be missed."
    )
    console: bool = _setting(True, "Serve the web console under /console on the control-plane port.")
    console_session_seconds: int = _setting(
        28800, "Lifetime in seconds of a console sign-in session (its session API token)."
    )
    tls_cert: str = _setting(
        "", "PEM certificate chain served on both ports; with tls_key, turns TLS on (reloaded on SIGHUP)."
    )
    tls_key: str = _setting("", "PEM private key of tls_cert.")
    tls_min_version: str = _setting("1.2", "Oldest TLS version accepted: 1.2 or 1.3.")
    metrics: bool = _setting(True, "Serve Prometheus metrics at /metrics.")
    metrics_port: int = _setting(
        0, "Serve /metrics on this port of its own instead of the API port; 0 keeps it on the API port."
    )
    max_connections: int = _setting(
        limits.MAX_CONNECTIONS,
        "Open connections per worker; at the cap the longest-idle connection is closed, else the new one.",
    )
    head_timeout: float = _setting(
        limits.HEAD_TIMEOUT, "Seconds a client has to send a whole request head (line and headers)."
    )
    body_idle_timeout: float = _setting(
        limits.BODY_IDLE_TIMEOUT, "Seconds a request body may pause while the server waits for it."
    )
    write_timeout: float = _setting(
        limits.WRITE_TIMEOUT, "Seconds a response may stall on a client that does not read."
    )
    keepalive_timeout: float = _setting(
        limits.KEEPALIVE_TIMEOUT, "Seconds an idle keep-alive connection stays open."
    )
    auth_failure_limit: int = _setting(
        limits.AUTH_FAILURE_LIMIT,
        "Failed authentications per source address or key id in a window before requests are slowed; "
        "0 turns the budget off.",
    )
    auth_failure_window: float = _setting(
        limits.AUTH_FAILURE_WINDOW, "Seconds over which failed authentications are counted."
    )
    max_live_keys_per_principal: int = _setting(
        limits.MAX_LIVE_KEYS_PER_PRINCIPAL,
        "Live (unexpired, unrevoked) access keys one principal may hold; 0 means no cap.",
    )
    last_used_flush_seconds: float = _setting(
        60.0,
        "Seconds between writes of each worker's access-key last-used records (newest use per key, "
        "kept in memory meanwhile; also written at shutdown).",
    )
    last_used_tracking: bool = _setting(
        True,
        "Record each access key's last use (lastUsed); false records nothing (bench/last_used_bench.py "
        "compares the two).",
    )
    key_expiry_warning_seconds: int = _setting(
        3600,
        "A temporary access key this close to its expiry is flagged in the console and counted in "
        "coffer_access_keys_expiring.",
    )
    key_max_age_days: int = _setting(
        90,
        "A permanent access key older than this many days is flagged in the console and counted in "
        "coffer_access_keys_aged; 0 flags none.",
    )
    max_buckets_per_org: int = _setting(
        limits.MAX_BUCKETS_PER_ORG,
        "Buckets one organization may have (CoreWeave: 1,000); an organization's own limit "
        "(`coffer admin org limits`) overrides it.",
    )
    max_bytes_per_org: int = _setting(
        limits.MAX_BYTES_PER_ORG,
        "Bytes one organization may store over all its buckets; 0 means no cap. An organization's "
        "own limit (`coffer admin org limits`) overrides it.",
    )
    lifecycle_day_seconds: float = _setting(
        86400.0,
        "Seconds in one lifecycle rule-day (Expiration Days, NoncurrentDays, DaysAfterInitiation); "
        "below 86400 it shortens every rule for tests, as RGW's rgw_lc_debug_interval.",
    )
    lifecycle_interval_seconds: float = _setting(
        3600.0,
        "Seconds between the background passes that apply lifecycle rules (and write inventory "
        "reports): each bucket gets one pass per interval over all nodes. 0 disables the executor "
        "(`coffer lifecycle run` still works).",
    )
    lifecycle_step_keys: int = _setting(
        1000,
        "Keys (or multipart uploads) one executor step examines before it saves its cursor and "
        "renews its lease: the bound on one step's memory and time.",
    )
    lifecycle_lease_seconds: float = _setting(
        60.0,
        "How long a node's lease on a (bucket, task) lasts without renewal; a killed node's work "
        "is taken over by another after at most this long.",
    )
    gc_grace_seconds: float = _setting(
        600.0,
        "Seconds a deleted or replaced object body is kept before the collector removes it; a read "
        "still streaming after a quarter of it (at most a minute) pins its files on every node.",
    )

    def __post_init__(self) -> None:
        # "auto" (or a number given as text) becomes the count here, so everything after sees an int.
        workers = resolve_workers(self.workers)
        if workers is not None:
            object.__setattr__(self, "workers", workers)
        problems = validate(self)
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return normalize_database_url(self.database_url)
        return f"sqlite:///{self.data_path / 'coffer.db'}"

    @property
    def audit_path(self) -> Path | None:
        """Where audit lines are appended, or None when they only go to the server log."""
        if not self.audit_file:
            return None
        path = Path(self.audit_file).expanduser()
        return path if path.is_absolute() else self.data_path / path

    @property
    def effective_public_url(self) -> str:
        """Where clients reach the control plane, without a trailing slash."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.api_port}"

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)

    @property
    def scheme(self) -> str:
        """What both ports speak: https once a certificate is configured."""
        return "https" if self.tls else "http"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def validate(s: Settings) -> list[str]:
    """Range checks that turn a typo into a start-up error instead of odd behaviour later."""
    problems: list[str] = []
    if not s.data_dir:
        problems.append("data_dir: must not be empty")
    if not s.host:
        problems.append("host: must not be empty")
    for name in ("api_port", "s3_port"):
        port = getattr(s, name)
        if not 0 <= port <= 65535:
            problems.append(f"{name}: must be between 0 and 65535, got {port}")
    if s.api_port and s.api_port == s.s3_port:
        problems.append("api_port and s3_port must differ")
    if not (isinstance(s.workers, int) and not isinstance(s.workers, bool) and 1 <= s.workers <= 256):
        problems.append(f"workers: must be auto or a number between 1 and 256, got {s.workers!r}")
    if not 1 <= s.max_key_duration <= UINT32_MAX:
        problems.append(f"max_key_duration: must be between 1 and {UINT32_MAX} seconds")
    if not 60 <= s.api_token_key_duration <= UINT32_MAX:
        problems.append("api_token_key_duration: must be at least 60 seconds")
    if not 60 <= s.oidc_container_key_duration <= 43200:
        problems.append("oidc_container_key_duration: must be between 60 and 43200 seconds")
    if s.public_url and not s.public_url.startswith(("https://", "http://")):
        problems.append("public_url: must start with https:// (or http://)")
    if s.log_level.lower() not in LOG_LEVELS:
        problems.append(f"log_level: must be one of {', '.join(LOG_LEVELS)}, got {s.log_level!r}")
    if not 60 <= s.console_session_seconds <= 7 * 86400:
        problems.append("console_session_seconds: must be between 60 and 604800 (7 days)")
    if not (math.isfinite(s.audit_flush_seconds) and 0.1 <= s.audit_flush_seconds <= 86400):
        problems.append("audit_flush_seconds: must be between 0.1 and 86400")
    if not 1 << 16 <= s.audit_spool_max_bytes <= 1 << 40:
        problems.append("audit_spool_max_bytes: must be between 65536 and 1099511627776")
    if not (math.isfinite(s.last_used_flush_seconds) and 0.1 <= s.last_used_flush_seconds <= 3600):
        problems.append("last_used_flush_seconds: must be between 0.1 and 3600")
    if not 0 <= s.key_expiry_warning_seconds <= UINT32_MAX:
        problems.append(f"key_expiry_warning_seconds: must be between 0 and {UINT32_MAX}")
    if not 0 <= s.key_max_age_days <= 36500:
        problems.append("key_max_age_days: must be between 0 and 36500")
    if not (math.isfinite(s.cache_poll_seconds) and 0.05 <= s.cache_poll_seconds <= 60):
        problems.append("cache_poll_seconds: must be between 0.05 and 60")
    if bool(s.tls_cert) != bool(s.tls_key):
        problems.append("tls_cert and tls_key: give both or neither")
    if s.default_object_ownership not in OBJECT_OWNERSHIPS:
        problems.append(
            f"default_object_ownership: must be one of {', '.join(OBJECT_OWNERSHIPS)}, "
            f"got {s.default_object_ownership!r}"
        )
    if s.tls_min_version not in ("1.2", "1.3"):
        problems.append(f"tls_min_version: must be 1.2 or 1.3, got {s.tls_min_version!r}")
    if not 0 <= s.metrics_port <= 65535:
        problems.append(f"metrics_port: must be between 0 and 65535, got {s.metrics_port}")
    if s.metrics_port and s.metrics_port in (s.api_port, s.s3_port):
        problems.append("metrics_port must differ from api_port and s3_port")
    if not 16 <= s.max_connections <= 1_000_000:
        problems.append(f"max_connections: must be between 16 and 1000000, got {s.max_connections}")
    for name in ("head_timeout", "body_idle_timeout", "write_timeout", "keepalive_timeout"):
        value = getattr(s, name)
        if not (math.isfinite(value) and 0.1 <= value <= 3600):
            problems.append(f"{name}: must be between 0.1 and 3600 seconds")
    if not 0 <= s.auth_failure_limit <= 1_000_000:
        problems.append("auth_failure_limit: must be between 0 and 1000000")
    if not (math.isfinite(s.auth_failure_window) and 1 <= s.auth_failure_window <= 86400):
        problems.append("auth_failure_window: must be between 1 and 86400 seconds")
    if not 0 <= s.max_live_keys_per_principal <= 1_000_000:
        problems.append("max_live_keys_per_principal: must be between 0 and 1000000")
    if not 0 <= s.max_buckets_per_org <= 1_000_000:
        problems.append("max_buckets_per_org: must be between 0 and 1000000")
    if not 0 <= s.max_bytes_per_org < 2**63:
        problems.append("max_bytes_per_org: must be between 0 and 9223372036854775807")
    if not (math.isfinite(s.lifecycle_day_seconds) and 0 < s.lifecycle_day_seconds <= 86400 * 366):
        problems.append("lifecycle_day_seconds: must be above 0 and at most 31622400 (a year)")
    if not (math.isfinite(s.lifecycle_interval_seconds) and 0 <= s.lifecycle_interval_seconds <= 86400 * 7):
        problems.append("lifecycle_interval_seconds: must be between 0 and 604800 (0 disables)")
    if not 1 <= s.lifecycle_step_keys <= 100_000:
        problems.append("lifecycle_step_keys: must be between 1 and 100000")
    if not (math.isfinite(s.lifecycle_lease_seconds) and 1 <= s.lifecycle_lease_seconds <= 3600):
        problems.append("lifecycle_lease_seconds: must be between 1 and 3600")
    if not (math.isfinite(s.gc_grace_seconds) and 1 <= s.gc_grace_seconds <= 86400):
        problems.append("gc_grace_seconds: must be between 1 and 86400")
    if s.database_url and not s.database_url.startswith(("postgresql", "postgres://", "sqlite")):
        problems.append("database_url: must start with postgresql:// (or sqlite:///)")
    return problems


def usable_cpus() -> int:
    """CPUs this process may run on (a container's or taskset's share), not the host's total."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def resolve_workers(value: Any) -> int | None:
    """`auto` (any case) is one worker per usable CPU, at most 256; None when it is no count at all."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return min(usable_cpus(), 256)
        return int(text) if text.isascii() and text.isdigit() else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


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


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _kind(f: dataclasses.Field[Any]) -> type:
    return type(f.default)


def _coerce_text(f: dataclasses.Field[Any], value: str) -> Any:
    """Parse a flag or environment value (always text) into the field's type."""
    kind = _kind(f)
    if kind is bool:
        lowered = value.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"{f.name}: expected a boolean (true/false), got {value!r}")
    if kind is str:
        return value
    try:
        return kind(value.strip())
    except ValueError:
        raise ValueError(
            f"{f.name}: expected {'an integer' if kind is int else 'a number'}, got {value!r}"
        ) from None


def _coerce_toml(f: dataclasses.Field[Any], value: Any, origin: str) -> Any:
    """TOML values are typed already; refuse a mismatch rather than guess (1.5 is not a port)."""
    kind = _kind(f)
    if f.name == "workers":  # a TOML integer or "auto"; the range check names anything else
        if isinstance(value, int | str) and not isinstance(value, bool):
            return value
        raise ValueError(f'{origin}: workers must be "auto" or an integer, got {value!r}')
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ValueError(f"{origin}: {f.name} must be a {kind.__name__}, got {value!r}")
    return kind(value)


def _coerce_override(f: dataclasses.Field[Any], value: Any) -> Any:
    return _coerce_text(f, value) if isinstance(value, str) and _kind(f) is not str else value


def read_config_file(path: str) -> dict[str, Any]:
    """The settings a TOML file names, at top level or in a `[coffer]` table."""
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    section = data.get("coffer", data) if isinstance(data.get("coffer"), dict) else data
    known = {f.name: f for f in setting_fields()}
    values: dict[str, Any] = {}
    for key, value in section.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ValueError(f"{path}: unknown setting {key!r}")
        values[name] = _coerce_toml(known[name], value, path)
    return values


def load_settings(
    overrides: dict[str, Any] | None = None,
    config_file: str | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Merge default < file < environment < explicit overrides (None values are ignored).

    Raises ValueError (or OSError for an unreadable file) with a message fit for a user.
    """
    environ = dict(os.environ) if environ is None else environ
    config_file = config_file or environ.get(CONFIG_ENV) or None
    known = {f.name: f for f in setting_fields()}
    values: dict[str, Any] = {}
    if config_file:
        values.update(read_config_file(config_file))
    for name, f in known.items():
        raw = environ.get(env_name(name))
        if raw is not None:
            values[name] = _coerce_text(f, raw)
    for name, value in (overrides or {}).items():
        if name not in known:
            raise ValueError(f"unknown setting {name!r}")
        if value is not None:
            values[name] = _coerce_override(known[name], value)
    return Settings(**values)
