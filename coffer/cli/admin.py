"""`coffer admin`: identity management straight on the store, server running or not.

It takes the same `--data-dir` / `--database-url` (and config file, and COFFER_*
variables) as `coffer serve`. Changes go through the same core and the same change
counter as the API's, so a running server sees a revoked token on its next request.
Every change is appended to the audit trail.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import sqlalchemy.exc

from coffer import logs
from coffer.audit import Actor
from coffer.cli.options import STORE_FIELDS, pop_settings, settings_options
from coffer.cli.output import json_option, print_json, print_table
from coffer.datadir import PRIVATE_UMASK
from coffer.errors import CofferError
from coffer.identity.bootstrap import BOOTSTRAP_ADMIN, bootstrap
from coffer.identity.models import ApiToken
from coffer.node import Node
from coffer.storage.errors import NoSuchBucket
from coffer.store.errors import StoreUnavailable

store_options = settings_options(STORE_FIELDS)


def _db_problem(exc: BaseException) -> str:
    """The driver's first line (host, port, reason), never the URL, which may hold a password."""
    orig = getattr(exc, "orig", None)
    if orig is None and not isinstance(exc, sqlalchemy.exc.SQLAlchemyError):
        orig = exc  # a driver's own error (the cause of StoreUnavailable)
    text = str(orig) if orig is not None else type(exc).__name__
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


@contextmanager
def opened(kwargs: dict[str, Any]) -> Iterator[Node]:
    """The store named by the options, bootstrapped; every failure becomes one clean line."""
    settings = pop_settings(kwargs)
    logs.configure(settings.log_level, audit_path=settings.audit_path, to_stderr=False)
    node: Node | None = None
    umask = os.umask(PRIVATE_UMASK)  # for whatever the store creates; see coffer/datadir.py
    try:
        node = Node.open(settings, migrate=True)
        boot = bootstrap(node.directory, settings.data_path, node.policies)
        if boot.token_path:
            click.echo(f"bootstrapped a new store; the admin API token is in {boot.token_path}", err=True)
        yield node
    except StoreUnavailable as exc:  # why, as for any other store error
        raise click.ClickException(f"metadata store: {_db_problem(exc.__cause__ or exc)}") from None
    except CofferError as exc:
        raise click.ClickException(exc.message) from None
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise click.ClickException(f"metadata store: {_db_problem(exc)}") from None
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if node is not None:
            node.close()
        os.umask(umask)


def _actor() -> Actor:
    """The person at the keyboard, as the audit trail names them: `cli:<os user>`."""
    try:
        name = f"cli:{getpass.getuser()}"
    except Exception:  # no user name (containers without passwd entries)
        name = "cli"
    return Actor(name)


def _org(node: Node, org: str | None) -> str:
    return node.directory.get_org(org).id if org else node.directory.default_org().id


def _token_json(t: ApiToken, names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": t.id,
        "userId": t.user_id,
        "user": names.get(t.user_id, ""),
        "name": t.name,
        "createdAt": t.created_at.isoformat(timespec="seconds"),
        "expiresAt": t.expires_at.isoformat(timespec="seconds") if t.expires_at else None,
        "revoked": t.revoked_at is not None,
    }


@click.group()
def admin() -> None:
    """Manage organizations, users and API tokens directly on the store."""


# --- users ---------------------------------------------------------------------------------


@admin.group()
def user() -> None:
    """Users (principal coreweave/<UID>)."""


@user.command("create")
@click.argument("name")
@click.option("--admin", "is_admin", is_flag=True, help="Grant the Object Storage Admin role.")
@click.option(
    "--group", "groups", multiple=True, help="Group membership (repeatable); `admin` is legacy admin."
)
@click.option("--org", default=None, help="Organization id (default: the first one).")
@click.option(
    "--with-token", is_flag=True, help="Also mint an API token for the user and print it (shown only once)."
)
@json_option
@store_options
def user_create(
    name: str,
    is_admin: bool,
    groups: tuple[str, ...],
    org: str | None,
    with_token: bool,
    as_json: bool,
    **kw: Any,
) -> None:
    """Create a user (and, with --with-token, an API token for it)."""
    with opened(kw) as node:
        u = node.directory.create_user(
            _org(node, org), name, storage_admin=is_admin, groups=groups, actor=_actor()
        )
        plain = None
        if with_token:
            plain, _ = node.directory.create_token(u.id, actor=_actor())
        if as_json:
            print_json({**u.as_json(detail=True), **({"apiToken": plain} if plain else {})})
        else:
            click.echo(f"created user {u.name} with principal {u.principal_name}")
            if plain:
                click.echo(plain)


@user.command("list")
@click.option("--org", default=None, help="Only this organization.")
@json_option
@store_options
def user_list(org: str | None, as_json: bool, **kw: Any) -> None:
    """List users."""
    with opened(kw) as node:
        users = node.directory.list_users(org)
        if as_json:
            print_json([u.as_json(detail=True) for u in users])
            return
        print_table(
            ["Name", "Principal", "Org", "Storage admin", "Groups"],
            [
                [u.name, u.principal_name, u.org_id, "yes" if u.has_storage_admin else "", ",".join(u.groups)]
                for u in users
            ],
        )


# --- API tokens ----------------------------------------------------------------------------


@admin.group()
def token() -> None:
    """API access tokens (bearer tokens for the control plane)."""


@token.command("create")
@click.option("--user", "user_name", default=None, help=f"User name or UID (default: {BOOTSTRAP_ADMIN}).")
@click.option("--name", default="", help="A label for the token.")
@click.option("--expires-in", type=click.IntRange(min=1), default=None, help="Lifetime in seconds.")
@click.option("--org", default=None, help="Organization of the user, if the name is ambiguous.")
@store_options
def token_create(
    user_name: str | None, name: str, expires_in: int | None, org: str | None, **kw: Any
) -> None:
    """Mint an API token and print it alone on one line on stdout; it is never shown again."""
    with opened(kw) as node:
        u = node.directory.find_user(user_name or BOOTSTRAP_ADMIN, org)
        ttl = timedelta(seconds=expires_in) if expires_in else None
        plain, _ = node.directory.create_token(u.id, name=name, ttl=ttl, actor=_actor())
        click.echo(plain)


@token.command("list")
@click.option("--user", "user_name", default=None, help="Only this user's tokens.")
@json_option
@store_options
def token_list(user_name: str | None, as_json: bool, **kw: Any) -> None:
    """List API tokens: ids and state (the tokens themselves are stored only as hashes)."""
    with opened(kw) as node:
        uid = node.directory.find_user(user_name).id if user_name else None
        names = {u.id: u.name for u in node.directory.list_users()}
        rows = [_token_json(t, names) for t in node.directory.list_tokens(uid)]
        if as_json:
            print_json(rows)
            return
        print_table(
            ["Id", "User", "Name", "Created", "Expires", "Revoked"],
            [
                [
                    r["id"],
                    r["user"],
                    r["name"],
                    r["createdAt"],
                    r["expiresAt"] or "never",
                    "yes" if r["revoked"] else "",
                ]
                for r in rows
            ],
        )


@token.command("revoke")
@click.argument("token_id")
@store_options
def token_revoke(token_id: str, **kw: Any) -> None:
    """Revoke an API token by its id (see `token list`); refused from the next request on."""
    with opened(kw) as node:
        node.directory.revoke_token(token_id, actor=_actor())
        click.echo(f"revoked token {token_id}")


# --- organizations -------------------------------------------------------------------------


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
            print_json(
                [
                    {"id": o.id, "name": o.name, "createdAt": o.created_at.isoformat(timespec="seconds")}
                    for o in orgs
                ]
            )
            return
        print_table(
            ["Id", "Name", "Created"],
            [[o.id, o.name, o.created_at.isoformat(timespec="seconds")] for o in orgs],
        )


@org.command("create")
@click.argument("name")
@store_options
def org_create(name: str, **kw: Any) -> None:
    """Create an organization and print its id."""
    with opened(kw) as node:
        o = node.directory.create_org(name, actor=_actor())
        click.echo(o.id)


# --- storage -------------------------------------------------------------------------------


@admin.command("gc")
@click.option(
    "--older-than",
    "older_than",
    type=click.IntRange(min=0),
    default=None,
    help="Collect what has been dead or idle this many seconds (default: the collector's own "
    "grace periods, safe while a server is running). 0 takes everything at once: use it only "
    "while no server is writing to this store.",
)
@click.option("--orphans", is_flag=True, help="Also scan for published blobs that no row references.")
@store_options
def gc(older_than: int | None, orphans: bool, **kw: Any) -> None:
    """Run one garbage-collection pass now and print how many files it removed."""
    with opened(kw) as node:
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than) if older_than is not None else None
        removed = node.storage.collector.collect(older_than=cutoff, orphans=orphans)
        # Storage writes no audit events (yet): this hand-run pass is recorded here.
        node.audit(
            "garbage_collected", removed=removed, older_than=older_than, orphans=orphans, actor=_actor().name
        )
        click.echo(removed)


# --- usage ---------------------------------------------------------------------------------


@admin.group()
def usage() -> None:
    """Bucket usage counters."""


@usage.command("verify")
@click.option(
    "--bucket", "bucket_name", default=None, help="Verify this bucket only (default: every bucket)."
)
@click.option("--fix", is_flag=True, help="Rewrite the counters that drifted to the recomputed values.")
@json_option
@store_options
def usage_verify(bucket_name: str | None, fix: bool, as_json: bool, **kw: Any) -> None:
    """Recompute each bucket's usage from its objects, uploads and parts, and report any
    counter that disagrees. Exits 1 on drift; with --fix the counters are rewritten (safe
    while a server runs: each bucket's writes wait for its rewrite) and it exits 0."""
    with opened(kw) as node:
        found = {}
        for name in [bucket_name] if bucket_name else node.storage.usage.bucket_names():
            try:
                found[name] = node.storage.usage.verify(name, fix=fix)
            except NoSuchBucket:
                if bucket_name:
                    raise
                continue  # deleted since it was listed
        drifted = {name: drift for name, drift in found.items() if drift}
        if fix and drifted:
            node.audit("usage_fixed", buckets=sorted(drifted), actor=_actor().name)
    if as_json:
        print_json(
            {
                "checked": len(found),
                "fixed": fix and bool(drifted),
                "drift": [
                    {
                        "bucket": name,
                        "storageClass": d.storage_class,
                        "counter": d.counter,
                        "stored": d.stored,
                        "actual": d.actual,
                    }
                    for name, drift in drifted.items()
                    for d in drift
                ],
            }
        )
    else:
        if drifted:
            print_table(
                ["Bucket", "Storage class", "Counter", "Stored", "Actual"],
                [
                    [name, d.storage_class, d.counter, d.stored, d.actual]
                    for name, drift in drifted.items()
                    for d in drift
                ],
            )
        state = "fixed" if fix else "drifted"
        click.echo(f"{len(found)} bucket(s) checked, {len(drifted)} {state}")
    if drifted and not fix:
        raise SystemExit(1)
