"""`coffer policy`: organization access policies and AuthCanI over HTTP, like `coffer keys`.

Each command is one call on the control plane with the caller's API token:
EnsureAccessPolicy, ListAccessPolicies, DeleteAccessPolicy, AuthCanI.
"""

from __future__ import annotations

import json
import sys
from typing import Any
from urllib.parse import quote

import click

from coffer.cli.inputs import read_text
from coffer.cli.keys import api_options, current_api
from coffer.cli.output import console, json_option, print_json, print_listing

POLICY_PATH = "/v1/cwobject/access-policy"


@click.group()
@api_options
def policy() -> None:
    """Apply, list and delete organization access policies; ask what you may do."""


def _read_document(path: str) -> dict[str, Any]:
    """A policy from a JSON file ('-' for stdin): the policy itself, or {"policy": {...}}."""
    text = read_text(path, "policy file")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise click.UsageError(f"{'stdin' if path == '-' else path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise click.UsageError("the policy must be a JSON object")
    if set(data) == {"policy"} and isinstance(data["policy"], dict):
        data = data["policy"]
    return data


@policy.command("apply")
@click.option(
    "-f", "--file", "path", required=True, metavar="FILE", help="The policy as JSON; '-' reads stdin."
)
@json_option
def apply(path: str, as_json: bool) -> None:
    """Create or replace (by name) an organization access policy (EnsureAccessPolicy)."""
    document = _read_document(path)
    data = current_api().request("POST", POLICY_PATH, json={"policy": document})
    applied = data.get("policy") or document
    if as_json:
        print_json(applied)
        return
    count = len(applied.get("statements") or [])
    console().print(f"applied policy {applied.get('name')} ({count} statement{'s' if count != 1 else ''})")


def _rows(policies: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for p in policies:
        for s in p.get("statements") or []:
            rows.append(
                [
                    str(p.get("name", "")),
                    str(s.get("name", "")),
                    str(s.get("effect", "")),
                    ", ".join(s.get("actions") or []),
                    ", ".join(s.get("resources") or []),
                    ", ".join(s.get("principals") or []),
                ]
            )
    return rows


@policy.command("list")
@json_option
def list_policies(as_json: bool) -> None:
    """List your organization's access policies, one row per statement."""
    policies = current_api().request("GET", POLICY_PATH).get("policies") or []
    print_listing(
        policies, as_json, ["Policy", "Statement", "Effect", "Actions", "Resources", "Principals"], _rows
    )


@policy.command("delete")
@click.argument("name")
def delete(name: str) -> None:
    """Delete an organization access policy (in force from the next request)."""
    current_api().request("DELETE", f"{POLICY_PATH}/{quote(name, safe='')}")
    console().print(f"deleted policy {name}")


@policy.command("can-i")
@click.argument("action")
@click.argument("resources", nargs=-1, required=True, metavar="RESOURCE...")
@click.option(
    "--key",
    "key_id",
    default=None,
    metavar="ACCESS_KEY_ID",
    help="Ask about this access key (and its scope).",
)
@json_option
def can_i(action: str, resources: tuple[str, ...], key_id: str | None, as_json: bool) -> None:
    """May you (or the key --key) perform ACTION on every RESOURCE ('*', 'bucket' or 'bucket/key')?

    Prints yes or no; the exit status is 0 for yes and 1 for no, as `kubectl auth can-i`.
    """
    body: dict[str, Any] = {"actions": [action], "resources": list(resources)}
    if key_id is not None:
        body["accessKeyId"] = key_id  # Coffer's extension field (docs/api.md)
    data = current_api().request("POST", "/v1/cwobject/auth/can-i", json=body)
    verdict = data.get("verdict") is True
    if as_json:
        print_json({"verdict": verdict})
    else:
        click.echo("yes" if verdict else "no")
    if not verdict:
        sys.exit(1)
