"""`coffer keys`: the access-key API over HTTP, for users (no store access needed).

Every command is one or more calls on the control plane with the caller's API token,
the same calls `curl` would make against CoreWeave's API, so what works here works there.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import click
import httpx

from coffer.api import extensions
from coffer.cli.inputs import read_text
from coffer.cli.output import console, json_option, print_details, print_json, print_listing
from coffer.errors import Kind

DEFAULT_ENDPOINT = "http://127.0.0.1:8480"
PERMANENT_EXPIRY = "1970-01-01T00:00:00Z"
_CODE_NAMES = {k.grpc_code: k.name for k in Kind}


class ApiError(click.ClickException):
    """A control-plane error, shown as one line: HTTP status, gRPC code name, message."""

    def __init__(self, status: int, data: Any, fallback: str) -> None:
        code = data.get("code") if isinstance(data, dict) else None
        message = data.get("message") if isinstance(data, dict) else None
        name = _CODE_NAMES.get(code, "") if isinstance(code, int) else ""
        # A non-Coffer answer (HTML, XML) is squeezed onto the one line an error gets.
        text = str(message) if message else " ".join(fallback.split())[:200] or "no details"
        super().__init__(f"{status} {name}: {text}" if name else f"{status}: {text}")


class Api:
    """A thin client: base URL, bearer token, and errors turned into one-line messages."""

    def __init__(self, endpoint: str, token: str | None, timeout: float) -> None:
        if not token:
            raise click.UsageError("an API token is required: pass --token or set COFFER_API_TOKEN")
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise click.UsageError(f"--endpoint must be an http(s) URL, got {endpoint!r}")
        self.endpoint = endpoint.rstrip("/")
        self.client = httpx.Client(
            base_url=self.endpoint,
            # Coffer's own client asks for every extension field (CoreWeave's clients do not).
            headers={"Authorization": f"Bearer {token}", extensions.HEADER: extensions.ALL},
            timeout=timeout,
        )

    def request(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        try:
            resp = self.client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach {self.endpoint}: {exc}") from None
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status_code >= 400:
            raise ApiError(resp.status_code, data, resp.text)
        if not isinstance(data, dict):
            raise click.ClickException(
                f"{self.endpoint} did not answer with a JSON object; is it a Coffer API?"
            )
        return data


class _Lazy:
    """Holds the options; the client is built on first use, so `--help` needs no token."""

    def __init__(self, endpoint: str, token: str | None, timeout: float) -> None:
        self.args = (endpoint, token, timeout)
        self._api: Api | None = None

    @property
    def api(self) -> Api:
        if self._api is None:
            self._api = Api(*self.args)
        return self._api


def api_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--endpoint, --token and --timeout for a command group; its commands reach them by `current_api`."""

    @functools.wraps(fn)
    def group(endpoint: str, token: str | None, timeout: float, **kw: Any) -> Any:
        click.get_current_context().obj = _Lazy(endpoint, token, timeout)
        return fn(**kw)

    for option in (
        click.option(
            "--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True, help="Seconds."
        ),
        click.option(
            "--token",
            envvar="COFFER_API_TOKEN",
            default=None,
            help="API access token [env COFFER_API_TOKEN].",
        ),
        click.option(
            "--endpoint",
            envvar="COFFER_ENDPOINT",
            default=DEFAULT_ENDPOINT,
            show_default=True,
            help="Control-plane URL [env COFFER_ENDPOINT].",
        ),
    ):
        group = option(group)
    return group


def current_api() -> Api:
    """The client of the command group's `api_options`."""
    options = click.get_current_context().find_object(_Lazy)
    assert options is not None
    return options.api


@click.group()
@api_options
def keys() -> None:
    """Mint, list, inspect, suspend and revoke access keys."""


def _expiry(value: str) -> str:
    return "never" if value in (PERMANENT_EXPIRY, "0001-01-01T00:00:00Z", "") else value


def _last_used(info: dict[str, Any]) -> str:
    used = info.get("lastUsed")
    if not isinstance(used, dict):
        return "never" if "lastUsed" in info else ""
    return f"{used.get('time', '')} {used.get('operation', '')} from {used.get('sourceIp', '')}"


def _rows(infos: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            (i.get("attributes") or {}).get("name", ""),
            i.get("accessKeyId", ""),
            i.get("principalName", ""),
            i.get("status", ""),
            _expiry(i.get("expiry", "")),
            _last_used(i),
        ]
        for i in infos
    ]


_SPAN = re.compile(r"([0-9]{1,9})([smhdw])")
_SPAN_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_span(text: str) -> int:
    """`90d`, `1h`, `30m`, `45s`, `2w` (or plain seconds) as seconds."""
    value = text.strip().lower()
    if value.isdigit() and len(value) <= 10:
        return int(value)
    found = _SPAN.fullmatch(value)
    if found is None:
        raise click.BadParameter(f"{text!r} is not a duration such as 90d, 12h, 30m or 45s")
    return int(found.group(1)) * _SPAN_SECONDS[found.group(2)]


def _unused_for(info: dict[str, Any], cutoff: datetime) -> bool:
    """Not used since `cutoff`: its last use is older, or it was never used and is older itself."""
    used = info.get("lastUsed")
    when = used.get("time") if isinstance(used, dict) else info.get("createdAt")
    if not isinstance(when, str):
        return True
    return datetime.fromisoformat(when.replace("Z", "+00:00")) < cutoff


def read_scope(value: str) -> Any:
    """--scope: inline JSON (it starts with `{`), or a file holding it (`-` is stdin); the server
    validates what it says."""
    text = value if value.lstrip().startswith("{") else read_text(value, "scope file")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--scope") from None


def _scope_text(scope: Any) -> str:
    """A key's scope on one line: its statements' effect, actions and resources; `none` if unscoped."""
    if not isinstance(scope, dict):
        return "none (all its owner may do)"
    parts = []
    for stmt in scope.get("statements") or []:
        actions, resources = ",".join(stmt.get("actions", [])), ",".join(stmt.get("resources", []))
        text = f"{stmt.get('effect')} {actions} on {resources}"
        if stmt.get("conditions"):
            text += " if " + json.dumps(stmt["conditions"], separators=(",", ":"))
        parts.append(text)
    return "; ".join(parts)


def _default_s3_endpoint(api_endpoint: str) -> str:
    """The S3 port beside the API's: Coffer's defaults are 8480 and 8490 on one host."""
    parts = urlsplit(api_endpoint)
    host = parts.hostname or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return urlunsplit((parts.scheme or "http", f"{host}:8490", "", "", ""))


def aws_profile_snippet(profile: str, key_id: str, secret: str, s3_endpoint: str) -> str:
    """What to paste into ~/.aws/credentials and ~/.aws/config to use the key with aws-cli."""
    return (
        f"# ~/.aws/credentials\n[{profile}]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
        f"\n# ~/.aws/config\n[profile {profile}]\nendpoint_url = {s3_endpoint}\nregion = us-east-04a\n"
        "s3 =\n    addressing_style = path\n"
    )


@keys.command("create")
@click.option("--duration", type=click.IntRange(min=1), default=None, help="Lifetime in seconds.")
@click.option("--permanent", is_flag=True, help="A key that never expires.")
@click.option("--name", default=None, help="Stored as the key's `name` attribute.")
@click.option(
    "--attribute",
    "attributes",
    multiple=True,
    metavar="KEY=VALUE",
    help="Another attribute (repeatable).",
)
@click.option(
    "--scope",
    "scope_arg",
    default=None,
    metavar="FILE_OR_JSON",
    help='Narrow the key below you: a scope {"statements": [...]}, as JSON or a file holding it.',
)
@click.option("--profile", default=None, help="aws-cli profile name in the snippet (default: the name).")
@click.option(
    "--s3-endpoint",
    envvar="COFFER_S3_ENDPOINT",
    default=None,
    help="S3 URL for the aws-cli snippet [env COFFER_S3_ENDPOINT; default: the API host, port 8490].",
)
@json_option
def create(
    duration: int | None,
    permanent: bool,
    name: str | None,
    attributes: tuple[str, ...],
    scope_arg: str | None,
    profile: str | None,
    s3_endpoint: str | None,
    as_json: bool,
) -> None:
    """Mint a key for yourself. The secret is printed once, here, and never again."""
    if permanent == (duration is not None):
        raise click.UsageError("pass exactly one of --duration SECONDS or --permanent")
    scope = read_scope(scope_arg) if scope_arg is not None else None
    attrs: dict[str, str] = {}
    for item in attributes:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--attribute takes KEY=VALUE, got {item!r}")
        attrs[key] = value
    if name is not None:
        attrs["name"] = name
    body: dict[str, Any] = {"durationSeconds": 0 if permanent else duration}
    if attrs:
        body["attributes"] = attrs
    if scope is not None:
        body["scope"] = scope
    api = current_api()
    data = api.request("POST", "/v1/cwobject/access-key", json=body)
    if as_json:
        print_json(data)
        return
    _print_minted(data, [("Scope", _scope_text(data.get("scope")))] if scope is not None else [])
    console().print("\nThe secret is shown only now; store it safely.\n")
    click.echo(
        aws_profile_snippet(
            profile or name or "coffer",
            str(data.get("accessKeyId")),
            str(data.get("secretKey")),
            s3_endpoint or _default_s3_endpoint(api.endpoint),
        )
    )


def _print_minted(data: dict[str, Any], more: list[tuple[str, Any]]) -> None:
    """A new key, its secret included: what create and rotate answer (the secret is shown only then)."""
    print_details(
        [
            ("Access key ID", data.get("accessKeyId")),
            ("Secret key", data.get("secretKey")),
            ("Principal", data.get("principalName")),
            ("Expires", _expiry(str(data.get("expiry", "")))),
            *more,
        ]
    )


@keys.command("list")
@click.option(
    "--status",
    default=None,
    help="Only keys in this state: ACTIVE, SUSPENDED, EXPIRED or REVOKED (ACCESS_KEY_STATUS_* also work).",
)
@click.option("--page-size", type=click.IntRange(1, 1000), default=1000, show_default=True)
@click.option(
    "--unused-for",
    default=None,
    metavar="SPAN",
    help="Only keys not used for this long (90d, 12h, ...): last used before then, or never and older.",
)
@json_option
def list_keys(status: str | None, page_size: int, unused_for: str | None, as_json: bool) -> None:
    """List every access key of your organization (pages through all of them)."""
    cutoff = None
    if unused_for is not None:
        cutoff = datetime.now(UTC) - timedelta(seconds=parse_span(unused_for))
    api = current_api()
    infos: list[dict[str, Any]] = []
    offset = 0
    while True:
        params: dict[str, Any] = {"offset": offset, "limit": page_size}
        if status:
            params["status"] = status
        batch = api.request("GET", "/v1/cwobject/access-key", params=params).get("info") or []
        infos.extend(batch)
        if len(batch) < page_size:
            break
        offset += page_size
    if cutoff is not None:
        infos = [i for i in infos if _unused_for(i, cutoff)]
    print_listing(
        infos, as_json, ["Name", "Access Key ID", "Principal", "Status", "Expires", "Last used"], _rows
    )


@keys.command("show")
@click.argument("access_key_id")
@json_option
def show(access_key_id: str, as_json: bool) -> None:
    """Show one key (never its secret)."""
    info = (
        current_api().request("GET", f"/v1/cwobject/access-key/{quote(access_key_id, safe='')}").get("info")
        or {}
    )
    if as_json:
        print_json(info)
        return
    multi = info.get("multiAttributes") or {}
    print_details(
        [
            ("Access key ID", info.get("accessKeyId")),
            ("Status", info.get("status")),
            ("Principal", info.get("principalName")),
            ("Organization", info.get("orgId")),
            ("Expires", _expiry(str(info.get("expiry", "")))),
            ("Attributes", ", ".join(f"{k}={v}" for k, v in (info.get("attributes") or {}).items())),
            ("Multi-attributes", ", ".join(f"{k}={','.join(v.get('values', []))}" for k, v in multi.items())),
            ("Scope", _scope_text(info.get("scope"))),
        ]
    )


@keys.command("rotate")
@click.argument("access_key_id")
@click.option("--overlap", default="1h", show_default=True, metavar="SPAN", help="How long both keys work.")
@json_option
def rotate(access_key_id: str, overlap: str, as_json: bool) -> None:
    """Mint a successor of your key (same name, attributes and scope) and revoke the key after --overlap.

    The new secret is printed once, here. Switch your jobs to it before the overlap ends."""
    body = {"accessKey": access_key_id, "overlapSeconds": parse_span(overlap)}
    data = current_api().request("POST", "/v1/cwobject/coffer/access-key/rotate", json=body)
    if as_json:
        print_json(data)
        return
    rotation = data.get("rotation") or {}
    _print_minted(data, [("Replaces", access_key_id), ("Old key revoked at", rotation.get("revokeAt"))])
    console().print("\nThe secret is shown only now; store it safely.")


@keys.command("revoke")
@click.argument("access_key_id", required=False)
@click.option("--principal", default=None, help="Revoke every key of this principal instead.")
def revoke(access_key_id: str | None, principal: str | None) -> None:
    """Revoke a key (or all keys of a principal); S3 refuses it from the next request on."""
    if (access_key_id is None) == (principal is None):
        raise click.UsageError("pass an ACCESS_KEY_ID or --principal PRINCIPAL")
    api = current_api()
    if principal is not None:
        api.request("POST", "/v1/cwobject/revoke-access-key/principal", json={"principalName": principal})
        console().print(f"revoked every key of {principal}")
    else:
        api.request("POST", "/v1/cwobject/revoke-access-key/access-key", json={"accessKey": access_key_id})
        console().print(f"revoked {access_key_id}")


def _set_status(principal: str, status: str) -> None:
    current_api().request(
        "PUT", "/v1/cwobject/access-key-status", json={"principalName": principal, "status": status}
    )


@keys.command("suspend")
@click.argument("principal")
def suspend(principal: str) -> None:
    """Suspend every key of a principal, including keys minted later, until reactivated."""
    _set_status(principal, "ACCESS_KEY_STATUS_SUSPENDED")
    console().print(f"suspended the keys of {principal}")


@keys.command("reactivate")
@click.argument("principal")
def reactivate(principal: str) -> None:
    """Reactivate every key of a principal."""
    _set_status(principal, "ACCESS_KEY_STATUS_ACTIVE")
    console().print(f"reactivated the keys of {principal}")
