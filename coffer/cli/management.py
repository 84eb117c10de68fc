"""`coffer bucket` and `coffer org`: bucket settings, bucket info and organization settings
over HTTP, like `coffer keys`; and `coffer admin org limits`, the operator's organization
limits, straight on the store.

The HTTP commands are the calls `curl` would make against CoreWeave's API:
GetBucketInfo / ListBucketInfo, SetBucketSettings, SetOrganizationSettings, and Coffer's
`GET /v1/cwobject/organization/settings` extension.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import click

from coffer.cli.admin import _actor, opened, org
from coffer.cli.keys import api_options, current_api
from coffer.cli.options import STORE_FIELDS, settings_options
from coffer.cli.output import console, json_option, print_details, print_json, print_table

BUCKET_INFO_PATH = "/v1/cwobject/bucket-info"
ORG_SETTINGS_PATH = "/v1/cwobject/organization/settings"
NO_CAP = str(2**64 - 1)  # a cap no bucket can reach: the server stores "no cap"
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*")
_MULTIPLIERS = {
    "": 1,
    "b": 1,
    **{f"{p}ib": 1024 ** (i + 1) for i, p in enumerate("kmgtpe")},
    **{p: 1024 ** (i + 1) for i, p in enumerate("kmgtpe")},
    **{f"{p}b": 1000 ** (i + 1) for i, p in enumerate("kmgtpe")},
}


def parse_size(text: str) -> int:
    """`10GiB`, `1.5 TiB`, `500MB`, `1024`: bytes (KiB.. and K.. are binary, KB.. decimal)."""
    m = _SIZE.fullmatch(text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _MULTIPLIERS:
        raise ValueError(f"not a size: {text!r} (try 10GiB, 500MB or a number of bytes)")
    number, multiplier = m.group(1), _MULTIPLIERS[unit]
    if "." in number:
        whole, frac = number.split(".")
        value = int(whole) * multiplier + int(frac) * multiplier // 10 ** len(frac)
    else:
        value = int(number) * multiplier
    return value


def size_of(*keywords: str) -> Callable[[click.Context, click.Parameter, str | None], int | str | None]:
    """A click callback: a byte count with an optional unit (`parse_size`), or one of `keywords`."""

    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> int | str | None:
        if value is None or value.lower() in keywords:
            return value.lower() if value is not None else None
        try:
            return parse_size(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None

    return convert


def _usage_text(info: dict[str, Any], kind: str) -> str:
    for entry in info.get("usage") or []:
        if entry.get("measurementType") == kind:
            return str(entry.get("valueHumanReadable", entry.get("value", "")))
    return ""


def _settings_pairs(settings: dict[str, Any]) -> list[tuple[str, Any]]:
    cap = settings.get("configuredCapacityCapBytes")
    archive = "off"
    if settings.get("archiveEnabled"):
        archive = f"after {settings.get('archiveAfterLastAccessDays')} days without access"
    return [
        ("Audit logging", "on" if settings.get("auditLoggingEnabled") else "off"),
        ("Archive", archive),
        ("Capacity cap", "none" if cap is None else f"{cap} bytes"),
    ]


# --- coffer bucket ---------------------------------------------------------------------------
@click.group()
@api_options
def bucket() -> None:
    """Bucket settings and usage (GetBucketInfo, ListBucketInfo, SetBucketSettings)."""


@bucket.command("info")
@click.argument("name", required=False)
@json_option
def info(name: str | None, as_json: bool) -> None:
    """Show a bucket's settings, location and usage; without NAME, every bucket's."""
    api = current_api()
    if name is not None:
        one = api.request("GET", f"{BUCKET_INFO_PATH}/{quote(name, safe='')}").get("info") or {}
        if as_json:
            print_json(one)
            return
        print_details(
            [
                ("Bucket", one.get("name")),
                ("Organization", one.get("orgId")),
                ("Location", one.get("location")),
                ("Created", one.get("creationTime")),
                *_settings_pairs(one.get("settings") or {}),
            ]
        )
        console().print()
        print_table(
            ["Measurement", "Value", ""],
            [[u.get("measurementType"), u.get("value"), u.get("valueHumanReadable")] for u in one["usage"]],
        )
        return
    infos: list[dict[str, Any]] = []
    while True:  # pages of 1000, until a short one (CoreWeave has no next-page token)
        batch = api.request("GET", BUCKET_INFO_PATH, params={"offset": len(infos), "limit": 1000}).get("info")
        infos.extend(batch or [])
        if len(batch or []) < 1000:
            break
    if as_json:
        print_json(infos)
        return
    print_table(
        ["Bucket", "Location", "Objects", "Stored", "Cap", "Audit", "Archive days"],
        [
            [
                i.get("name"),
                i.get("location"),
                _usage_text(i, "STANDARD_OBJECTS"),
                _usage_text(i, "TOTAL_BYTES"),
                (i.get("settings") or {}).get("configuredCapacityCapBytes", "none"),
                "on" if (i.get("settings") or {}).get("auditLoggingEnabled") else "off",
                (i.get("settings") or {}).get("archiveAfterLastAccessDays", ""),
            ]
            for i in infos
        ],
    )


@bucket.command("settings")
@click.argument("name")
@click.option("--audit-logging/--no-audit-logging", default=None, help="Log this bucket's data-plane events.")
@click.option(
    "--capacity-cap",
    callback=size_of("none"),
    default=None,
    metavar="SIZE",
    help="Refuse writes beyond this many bytes (10GiB, 500MB, 0 blocks new writes; none removes the cap).",
)
@click.option("--archive/--no-archive", default=None, help="Archive objects not read for a while.")
@click.option(
    "--archive-after-days",
    type=click.IntRange(min=0),
    default=None,
    metavar="DAYS",
    help="Days without access before an object is archived (at least 60; needs --archive).",
)
@json_option
def settings(
    name: str,
    audit_logging: bool | None,
    capacity_cap: int | str | None,
    archive: bool | None,
    archive_after_days: int | None,
    as_json: bool,
) -> None:
    """Change a bucket's settings (SetBucketSettings); only the options given change."""
    wanted: dict[str, Any] = {
        "auditLoggingEnabled": audit_logging,
        "archiveEnabled": archive,
        "archiveAfterLastAccessDays": archive_after_days,
        "capacityCapBytes": None
        if capacity_cap is None
        else NO_CAP
        if capacity_cap == "none"
        else str(capacity_cap),
    }
    body = {k: v for k, v in wanted.items() if v is not None}
    if not body:
        raise click.UsageError(
            "nothing to change: pass --audit-logging, --capacity-cap, --archive or --archive-after-days"
        )
    data = current_api().request(
        "PUT", "/v1/cwobject/bucket/settings", json={"bucketName": name, "settings": body}
    )
    result = data.get("settings") or {}
    if as_json:
        print_json(result)
    else:
        print_details([("Bucket", name), *_settings_pairs(result)])


# --- coffer org ------------------------------------------------------------------------------
@click.group("org")
@api_options
def org_group() -> None:
    """Your organization's settings and limits (SetOrganizationSettings)."""


@org_group.command("settings")
@click.option(
    "--control-plane-audit-logging/--no-control-plane-audit-logging",
    default=None,
    help="Log control-plane events (keys, policies, settings) to the audit bucket.",
)
@click.option(
    "--bucket-audit-logging/--no-bucket-audit-logging",
    default=None,
    help="Log data-plane events of the buckets that have audit logging on.",
)
@json_option
def org_settings(
    control_plane_audit_logging: bool | None, bucket_audit_logging: bool | None, as_json: bool
) -> None:
    """Show the organization's settings and limits; with options, change the settings first."""
    api = current_api()
    wanted = {
        "controlPlaneAuditLoggingEnabled": control_plane_audit_logging,
        "bucketAuditLoggingEnabled": bucket_audit_logging,
    }
    body = {k: v for k, v in wanted.items() if v is not None}
    if body:
        api.request("PUT", ORG_SETTINGS_PATH, json={"settings": body})
    data = api.request("GET", ORG_SETTINGS_PATH)
    if as_json:
        print_json(data)
        return
    current = data.get("settings") or {}
    org_limits = data.get("limits") or {}
    used = data.get("usage") or {}
    cap = org_limits.get("configuredCapacityCapBytes")
    print_details(
        [
            (
                "Control-plane audit logging",
                "on" if current.get("controlPlaneAuditLoggingEnabled") else "off",
            ),
            ("Bucket audit logging", "on" if current.get("bucketAuditLoggingEnabled") else "off"),
            ("Buckets", f"{used.get('buckets')} of at most {org_limits.get('maxBuckets')}"),
            ("Stored", f"{used.get('bytes')} bytes" + ("" if cap is None else f" of at most {cap}")),
        ]
    )


# --- coffer admin org limits ---------------------------------------------------------------
@org.command("limits")
@click.option("--org", "org_id", default=None, help="Organization id (default: the first one).")
@click.option(
    "--max-buckets",
    default=None,
    metavar="N|default",
    help="Buckets the organization may have; 'default' follows max_buckets_per_org.",
)
@click.option(
    "--capacity-cap",
    callback=size_of("none", "default"),
    default=None,
    metavar="SIZE|none|default",
    help="Bytes over all its buckets (10TiB...); 'none' for no cap, 'default' follows max_bytes_per_org.",
)
@json_option
@settings_options((*STORE_FIELDS, "max_buckets_per_org", "max_bytes_per_org"))
def org_limits(
    org_id: str | None, max_buckets: str | None, capacity_cap: int | str | None, as_json: bool, **kw: Any
) -> None:
    """Show an organization's limits; with options, set them first (limits are the operator's:
    SetOrganizationSettings cannot change them). The server-wide defaults shown are those of
    this command's settings (config file, COFFER_* variables, flags), as for `coffer serve`."""
    changes: dict[str, Any] = {}
    if max_buckets is not None:
        if max_buckets.lower() == "default":
            changes["max_buckets"] = None
        elif max_buckets.isdigit():
            changes["max_buckets"] = int(max_buckets)
        else:
            raise click.BadParameter("a number of buckets or 'default'", param_hint="--max-buckets")
    if capacity_cap is not None:
        changes["capacity_cap_bytes"] = {"default": None, "none": 2**64 - 1}.get(
            str(capacity_cap), capacity_cap
        )
    with opened(kw) as node:
        org_id = node.directory.get_org(org_id).id if org_id else node.directory.default_org().id
        store = node.storage.settings
        effective = store.update_org(org_id, actor=_actor(), **changes) if changes else store.org(org_id)
        own = store.org_overrides(org_id)
        out = {
            "orgId": org_id,
            "maxBuckets": effective.max_buckets,
            "maxBucketsSource": "organization" if own["max_buckets"] is not None else "server default",
            "capacityCapBytes": None
            if effective.capacity_cap_bytes is None
            else str(effective.capacity_cap_bytes),
            "capacityCapSource": "organization"
            if own["capacity_cap_bytes"] is not None
            else "server default",
        }
    if as_json:
        print_json(out)
        return
    print_details(
        [
            ("Organization", org_id),
            ("Max buckets", f"{out['maxBuckets']} ({out['maxBucketsSource']})"),
            ("Capacity cap", f"{out['capacityCapBytes'] or 'none'} ({out['capacityCapSource']})"),
        ]
    )
