"""`coffer admin`: identity management straight on the store, server running or not."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from coffer.cli.options import STORE_FIELDS, pop_settings, settings_options
from coffer.errors import CofferError
from coffer.identity.bootstrap import BOOTSTRAP_ADMIN, bootstrap
from coffer.node import Node

out = Console()
store_options = settings_options(STORE_FIELDS)


@contextmanager
def opened(kwargs: dict[str, Any]) -> Iterator[Node]:
    settings = pop_settings(kwargs)
    node = Node.open(settings, migrate=True)
    try:
        bootstrap(node.directory, settings.data_path)
        yield node
    except CofferError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        node.close()


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(fn)


def _org(node: Node, org: str | None) -> str:
    return org or node.directory.default_org().id


@click.group()
def admin() -> None:
    """Manage organizations, users and API tokens directly on the store."""


@admin.group()
def user() -> None:
    """Users."""


@user.command("create")
@click.argument("name")
@click.option("--admin", "is_admin", is_flag=True, help="Grant the Object Storage Admin role.")
@click.option("--group", "groups", multiple=True, help="Group membership (repeatable).")
@click.option("--org", default=None, help="Organization id (default: the first one).")
@json_option
@store_options
def user_create(
    name: str, is_admin: bool, groups: tuple[str, ...], org: str | None, as_json: bool, **kw: Any
) -> None:
    """Create a user."""
    with opened(kw) as node:
        u = node.directory.create_user(_org(node, org), name, storage_admin=is_admin, groups=groups)
        if as_json:
            click.echo(json.dumps({"id": u.id, "name": u.name, "principalName": u.principal_name}))
        else:
            out.print(f"created user [bold]{u.name}[/] principal [bold]{u.principal_name}[/]")


@user.command("list")
@click.option("--org", default=None)
@json_option
@store_options
def user_list(org: str | None, as_json: bool, **kw: Any) -> None:
    """List users."""
    with opened(kw) as node:
        users = node.directory.list_users(org)
        if as_json:
            click.echo(
                json.dumps(
                    [
                        {
                            "id": u.id,
                            "orgId": u.org_id,
                            "name": u.name,
                            "principalName": u.principal_name,
                            "objectStorageAdmin": u.has_storage_admin,
                            "groups": list(u.groups),
                        }
                        for u in users
                    ]
                )
            )
            return
        table = Table("Name", "Principal", "Org", "Storage admin", "Groups")
        for u in users:
            table.add_row(
                u.name, u.principal_name, u.org_id, "yes" if u.has_storage_admin else "", ",".join(u.groups)
            )
        out.print(table)


@admin.group()
def token() -> None:
    """API access tokens."""


@token.command("create")
@click.option("--user", "user_name", default=None, help=f"User name or id (default: {BOOTSTRAP_ADMIN}).")
@click.option("--name", default="", help="A label for the token.")
@click.option("--expires-in", type=click.IntRange(min=1), default=None, help="Lifetime in seconds.")
@click.option("--org", default=None)
@store_options
def token_create(
    user_name: str | None, name: str, expires_in: int | None, org: str | None, **kw: Any
) -> None:
    """Mint an API token and print it, alone, on stdout."""
    with opened(kw) as node:
        u = node.directory.find_user(user_name or BOOTSTRAP_ADMIN, org)
        plain, _ = node.directory.create_token(
            u.id, name=name, ttl=timedelta(seconds=expires_in) if expires_in else None
        )
        click.echo(plain)


@token.command("list")
@click.option("--user", "user_name", default=None)
@json_option
@store_options
def token_list(user_name: str | None, as_json: bool, **kw: Any) -> None:
    """List API tokens (ids and state; the tokens themselves are never stored)."""
    with opened(kw) as node:
        uid = node.directory.find_user(user_name).id if user_name else None
        tokens = node.directory.list_tokens(uid)
        rows = [
            {
                "id": t.id,
                "userId": t.user_id,
                "name": t.name,
                "createdAt": t.created_at.isoformat(),
                "expiresAt": t.expires_at.isoformat() if t.expires_at else None,
                "revoked": t.revoked_at is not None,
            }
            for t in tokens
        ]
        if as_json:
            click.echo(json.dumps(rows))
            return
        table = Table("Id", "User", "Name", "Created", "Expires", "Revoked")
        for r in rows:
            table.add_row(
                r["id"],
                r["userId"],
                r["name"],
                r["createdAt"],
                r["expiresAt"] or "never",
                "yes" if r["revoked"] else "",
            )
        out.print(table)


@token.command("revoke")
@click.argument("token_id")
@store_options
def token_revoke(token_id: str, **kw: Any) -> None:
    """Revoke an API token by its id (see `token list`)."""
    with opened(kw) as node:
        node.directory.revoke_token(token_id)
        out.print(f"revoked token {token_id}")


@admin.group()
def org() -> None:
    """Organizations."""


@org.command("list")
@json_option
@store_options
def org_list(as_json: bool, **kw: Any) -> None:
    """List organizations."""
    with opened(kw) as node:
        orgs = node.directory.list_orgs()
        if as_json:
            click.echo(json.dumps([{"id": o.id, "name": o.name} for o in orgs]))
            return
        table = Table("Id", "Name", "Created")
        for o in orgs:
            table.add_row(o.id, o.name, o.created_at.isoformat())
        out.print(table)


@org.command("create")
@click.argument("name")
@store_options
def org_create(name: str, **kw: Any) -> None:
    """Create an organization and print its id."""
    with opened(kw) as node:
        click.echo(node.directory.create_org(name).id)
