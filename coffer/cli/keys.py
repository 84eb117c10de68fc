"""`coffer keys`: the access-key API over HTTP, for users (no store access needed)."""

from __future__ import annotations

import json
from typing import Any

import click
import httpx
from rich.console import Console
from rich.table import Table

out = Console()
DEFAULT_ENDPOINT = "http://127.0.0.1:8480"


class Api:
    def __init__(self, endpoint: str, token: str | None) -> None:
        if not token:
            raise click.UsageError("an API token is required: pass --token or set COFFER_API_TOKEN")
        self.client = httpx.Client(
            base_url=endpoint.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def request(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = self.client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach {self.client.base_url}: {exc}") from None
        try:
            data = resp.json()
        except ValueError:
            data = {"message": resp.text}
        if resp.status_code >= 400:
            raise click.ClickException(f"{resp.status_code}: {data.get('message', resp.text)}")
        return data


pass_api = click.make_pass_decorator(Api)


@click.group()
@click.option(
    "--endpoint",
    envvar="COFFER_ENDPOINT",
    default=DEFAULT_ENDPOINT,
    show_default=True,
    help="Control-plane URL [env COFFER_ENDPOINT].",
)
@click.option(
    "--token", envvar="COFFER_API_TOKEN", default=None, help="API access token [env COFFER_API_TOKEN]."
)
@click.pass_context
def keys(ctx: click.Context, endpoint: str, token: str | None) -> None:
    """Mint, list, inspect and revoke access keys."""
    ctx.obj = Api(endpoint, token)


def _emit_table(infos: list[dict[str, Any]]) -> None:
    table = Table("Name", "Access Key ID", "Principal", "Status", "Expires")
    for i in infos:
        expiry = i.get("expiry", "")
        table.add_row(
            i.get("attributes", {}).get("name", ""),
            i["accessKeyId"],
            i["principalName"],
            i["status"],
            "never" if expiry.startswith("1970-01-01") else expiry,
        )
    out.print(table)


@keys.command("create")
@click.option("--duration", type=click.IntRange(min=1), default=None, help="Lifetime in seconds.")
@click.option("--permanent", is_flag=True, help="A key that never expires.")
@click.option("--name", default=None, help="Stored as the key's `name` attribute.")
@click.option(
    "--s3-endpoint",
    envvar="COFFER_S3_ENDPOINT",
    default="http://127.0.0.1:8490",
    help="Used in the printed aws-cli profile.",
)
@click.option("--json", "as_json", is_flag=True)
@pass_api
def create(
    api: Api, duration: int | None, permanent: bool, name: str | None, s3_endpoint: str, as_json: bool
) -> None:
    """Mint a key. The secret is printed once, here, and never again."""
    if permanent == (duration is not None):
        raise click.UsageError("pass exactly one of --duration SECONDS or --permanent")
    body: dict[str, Any] = {"durationSeconds": 0 if permanent else duration}
    if name:
        body["attributes"] = {"name": name}
    data = api.request("POST", "/v1/cwobject/access-key", json=body)
    if as_json:
        click.echo(json.dumps(data))
        return
    profile = name or "coffer"
    expiry = "never" if data["expiry"].startswith("1970-01-01") else data["expiry"]
    out.print(f"Access Key ID: [bold]{data['accessKeyId']}[/]")
    out.print(f"Secret:        [bold]{data['secretKey']}[/]")
    out.print(f"Principal:     {data['principalName']}")
    out.print(f"Expires:       {expiry}")
    out.print("[yellow]The secret is shown only now; store it safely.[/]\n")
    out.print("Add to ~/.aws/credentials and ~/.aws/config:", highlight=False)
    click.echo(
        f"[{profile}]\naws_access_key_id = {data['accessKeyId']}\naws_secret_access_key = {data['secretKey']}\n\n"
        f"[profile {profile}]\nendpoint_url = {s3_endpoint}\nregion = us-east-04a\n"
        f"s3 =\n    addressing_style = path"
    )


@keys.command("list")
@click.option("--status", default=None, help="ACTIVE or SUSPENDED.")
@click.option("--limit", type=click.IntRange(1, 1000), default=1000)
@click.option("--json", "as_json", is_flag=True)
@pass_api
def list_keys(api: Api, status: str | None, limit: int, as_json: bool) -> None:
    """List every access key of the organization."""
    infos: list[dict[str, Any]] = []
    offset = 0
    while True:
        params: dict[str, Any] = {"offset": offset, "limit": limit}
        if status:
            params["status"] = status
        batch = api.request("GET", "/v1/cwobject/access-key", params=params)["info"]
        infos.extend(batch)
        if len(batch) < limit:
            break
        offset += limit
    if as_json:
        click.echo(json.dumps(infos))
    else:
        _emit_table(infos)


@keys.command("show")
@click.argument("access_key_id")
@click.option("--json", "as_json", is_flag=True)
@pass_api
def show(api: Api, access_key_id: str, as_json: bool) -> None:
    """Show one key."""
    info = api.request("GET", f"/v1/cwobject/access-key/{access_key_id}")["info"]
    if as_json:
        click.echo(json.dumps(info))
    else:
        _emit_table([info])


@keys.command("revoke")
@click.argument("access_key_id")
@pass_api
def revoke(api: Api, access_key_id: str) -> None:
    """Revoke a key; S3 refuses it from the next request on."""
    api.request("POST", "/v1/cwobject/revoke-access-key/access-key", json={"accessKey": access_key_id})
    out.print(f"revoked {access_key_id}")


@keys.command("suspend")
@click.argument("principal")
@pass_api
def suspend(api: Api, principal: str) -> None:
    """Suspend every key of a principal."""
    api.request(
        "PUT",
        "/v1/cwobject/access-key-status",
        json={"principalName": principal, "status": "ACCESS_KEY_STATUS_SUSPENDED"},
    )
    out.print(f"suspended the keys of {principal}")


@keys.command("reactivate")
@click.argument("principal")
@pass_api
def reactivate(api: Api, principal: str) -> None:
    """Reactivate every key of a principal."""
    api.request(
        "PUT",
        "/v1/cwobject/access-key-status",
        json={"principalName": principal, "status": "ACCESS_KEY_STATUS_ACTIVE"},
    )
    out.print(f"reactivated the keys of {principal}")
