"""`coffer federation`: the identity providers an organization trusts, straight on the store.

The same configurations as `/v1beta1/workload-federation/{saml,oidc}-configs` and the console's
Workload Federation page, managed like `coffer admin` (same store flags, same audit trail), so
an operator can trust an IdP before any API token exists. A running server sees a change on its
next exchange; removing or deactivating a configuration revokes the keys minted through it.

`add` prints the new config id alone on stdout (its last line) and a summary on stderr, so
`ID=$(coffer federation saml add ...)` works; with `--json` stdout is the config's JSON, whose
`uid` is the id. `--json` output is the API's JSON form of a configuration.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from cryptography import x509

from coffer.api.federation import config_json
from coffer.cli.admin import _actor, _org, opened
from coffer.cli.inputs import read_text
from coffer.cli.options import STORE_FIELDS, settings_options
from coffer.cli.output import json_option, print_details, print_json, print_table
from coffer.errors import InvalidArgument
from coffer.federation import OidcConfig, SamlConfig
from coffer.federation.jwks import validate_jwks
from coffer.federation.saml import certificate_fingerprint, load_signing_certificate
from coffer.identity.federation_configs import Kind, StoredConfig
from coffer.node import Node

store_options = settings_options(STORE_FIELDS)
org_option = click.option("--org", default=None, help="Organization id (default: the first one).")
# The options SAML and OIDC share: `add` names and describes a new configuration, `update`
# changes what it is given (None: unchanged).
new_name_option = click.option(
    "--name", required=True, help="A name unique in the org: A-Z, a-z, 0-9, '_' or '-'."
)
new_description_option = click.option("--description", default="", help="Free text, at most 1024 characters.")
changed_name_option = click.option("--name", default=None, help="New name.")
changed_description_option = click.option(
    "--description", default=None, help="New description ('' clears it)."
)
active_option = click.option(
    "--active/--inactive",
    "active",
    default=None,
    help="Reactivate, or deactivate (revokes the keys minted through it).",
)
# `saml add` also needs where clients reach the API: the default audience and recipient live there.
SAML_ADD_FIELDS = (*STORE_FIELDS, "public_url", "host", "api_port")
saml_add_options = settings_options(SAML_ADD_FIELDS)

_LABEL: dict[Kind, str] = {"saml": "SAML", "oidc": "OIDC"}
_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_SHORT_FINGERPRINT_BYTES = 8
_MIN_FINGERPRINT_DIGITS = 8
_SAML_FLAGS = {
    "name": "--name",
    "idpEntityId": "--entity-id",
    "certificates": "--cert",
    "spAudience": "--audience",
    "recipient": "--recipient",
    "description": "--description",
}
_OIDC_FLAGS = {
    "name": "--name",
    "issuerUrl": "--issuer",
    "audience": "--audience",
    "description": "--description",
    "jwks": "--jwks",
}


# --- helpers -------------------------------------------------------------------------------


@contextmanager
def _as_flags(flags: dict[str, str]) -> Iterator[None]:
    """The core names JSON fields (idpEntityId); a CLI user typed flags (--entity-id)."""
    try:
        yield
    except InvalidArgument as exc:
        violations = [v for d in exc.details for v in d.get("fieldViolations", [])]
        if len(violations) == 1 and violations[0].get("field") in flags:
            v = violations[0]
            raise InvalidArgument(f"invalid {flags[v['field']]}: {v['description']}") from None
        raise


def _read_certificates(path: str) -> list[str]:
    """Every certificate in a PEM file (a chain or a rotation bundle adds them all), checked here
    so the error names the file."""
    text = read_text(path, "certificate file")
    blocks = _PEM_BLOCK.findall(text)
    if not blocks:
        raise click.ClickException(f"{path}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)")
    out = []
    for i, block in enumerate(blocks, 1):
        pem = block.strip() + "\n"
        where = f"{path}: certificate {i}" if len(blocks) > 1 else path
        try:
            x509.load_pem_x509_certificate(pem.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise click.ClickException(f"{where}: not a valid PEM X.509 certificate") from None
        try:
            load_signing_certificate(pem)
        except InvalidArgument as exc:
            violations = [v for d in exc.details for v in d.get("fieldViolations", [])]
            reason = violations[0]["description"] if violations else exc.message
            raise click.ClickException(f"{where}: {reason}") from None
        out.append(pem)
    return out


def _certificates(paths: tuple[str, ...]) -> list[str]:
    """The certificates of all the files, each once, in order."""
    seen: dict[str, str] = {}
    for path in paths:
        for pem in _read_certificates(path):
            seen.setdefault(certificate_fingerprint(pem), pem)
    return list(seen.values())


def _read_jwks(path: str) -> dict[str, Any]:
    text = read_text(path, "JWKS file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.ClickException(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    try:
        return validate_jwks(data, what="JWK Set")
    except ValueError as exc:
        raise click.ClickException(f"{path}: {exc}") from None


def _short(fingerprint: str) -> str:
    return ":".join(fingerprint.split(":")[:_SHORT_FINGERPRINT_BYTES])


def _remove_fingerprints(pems: list[str], wanted: tuple[str, ...]) -> list[str]:
    """The certificates left once each FINGERPRINT (full, short, or any unique prefix of at
    least 8 hex digits, colons optional) has matched exactly one of them."""
    prints = [certificate_fingerprint(p).replace(":", "") for p in pems]
    drop: set[int] = set()
    for raw in wanted:
        digits = re.sub(r"[\s:]", "", raw).upper()
        if len(digits) < _MIN_FINGERPRINT_DIGITS or not re.fullmatch(r"[0-9A-F]+", digits):
            raise click.ClickException(
                f"--remove-cert {raw!r}: give a SHA-256 fingerprint (at least "
                f"{_MIN_FINGERPRINT_DIGITS} hex digits), as `saml show` lists them"
            )
        hits = [i for i, fp in enumerate(prints) if fp.startswith(digits)]
        if not hits:
            raise click.ClickException(f"--remove-cert {raw}: no configured certificate has it")
        if len(hits) > 1:
            raise click.ClickException(f"--remove-cert {raw}: matches several certificates; give more")
        drop.add(hits[0])
    return [p for i, p in enumerate(pems) if i not in drop]


def _when(stored: StoredConfig) -> list[tuple[str, Any]]:
    return [
        ("Created", stored.created_at.isoformat(timespec="seconds")),
        ("Updated", stored.updated_at.isoformat(timespec="seconds")),
        (
            "Deactivated",
            stored.deactivated_at.isoformat(timespec="seconds") if stored.deactivated_at else "",
        ),
    ]


def _certificate_lines(pems: tuple[str, ...]) -> str:
    lines = []
    for pem in pems:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
        lines.append(
            f"{certificate_fingerprint(pem)}  {cert.subject.rfc4514_string()}  "
            f"(valid until {cert.not_valid_after_utc.date().isoformat()}, not enforced)"
        )
    return "\n".join(lines)


def _say(text: str) -> None:
    """Human summaries go to stderr: stdout stays the one thing a script captures."""
    click.echo(text, err=True)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _show(stored: StoredConfig, as_json: bool) -> None:
    if as_json:
        print_json(config_json(stored))
        return
    cfg = stored.config
    rows: list[tuple[str, Any]] = [
        ("Config ID", cfg.config_id),
        ("Organization", cfg.org_id),
        ("Name", cfg.name),
    ]
    if isinstance(cfg, SamlConfig):
        rows += [
            ("IdP Entity ID", cfg.idp_entity_id),
            ("Audience", cfg.sp_audience),
            ("Recipient", cfg.recipient),
            ("Certificates", _certificate_lines(cfg.certificates)),
        ]
    elif isinstance(cfg, OidcConfig):
        rows += [("Issuer", cfg.issuer_url), ("Audience", cfg.audience), ("Keys", _keys_long(cfg))]
    rows += [("Description", cfg.description), ("Active", _yes(cfg.active)), *_when(stored)]
    print_details(rows)


def _keys_short(cfg: OidcConfig) -> str:
    return "inline" if cfg.jwks is not None else "discovery"


def _keys_long(cfg: OidcConfig) -> str:
    if cfg.jwks is None:
        return f"discovery ({cfg.issuer_url.rstrip('/')}/.well-known/openid-configuration)"
    kids = [str(k.get("kid", "?")) for k in cfg.jwks.get("keys", [])]
    return f"inline JWK Set, {len(kids)} key(s): {', '.join(kids)}"


# The list table's columns that differ: where the keys come from, and the keys themselves.
_LIST_COLUMNS: dict[Kind, tuple[str, str]] = {
    "saml": ("IdP Entity ID", "Certificates"),
    "oidc": ("Issuer", "Keys"),
}


def _list_row(stored: StoredConfig) -> list[str]:
    cfg = stored.config
    if isinstance(cfg, SamlConfig):
        source, audience = cfg.idp_entity_id, cfg.sp_audience
        keys = ", ".join(_short(certificate_fingerprint(p)) for p in cfg.certificates)
    else:
        source, audience, keys = cfg.issuer_url, cfg.audience, _keys_short(cfg)
    return [stored.config_id, cfg.name, source, audience, _yes(cfg.active), keys]


def _list(kind: Kind, org: str | None, as_json: bool, kw: dict[str, Any]) -> None:
    with opened(kw) as node:
        found = node.federation.list_configs(_org(node, org), kind)
        if as_json:
            print_json([config_json(s) for s in found])
            return
        config_type = SamlConfig if kind == "saml" else OidcConfig
        rows = [_list_row(s) for s in found if isinstance(s.config, config_type)]
        source, keys = _LIST_COLUMNS[kind]
        print_table(["Config ID", "Name", source, "Audience", "Active", keys], rows)


def _get(kind: Kind, config_id: str, org: str | None, as_json: bool, kw: dict[str, Any]) -> None:
    with opened(kw) as node:
        _show(node.federation.get(_org(node, org), kind, config_id), as_json)


def _remove(kind: Kind, config_id: str, org: str | None, kw: dict[str, Any]) -> None:
    with opened(kw) as node:
        org_id = _org(node, org)
        revoked = node.federation.delete(org_id, kind, config_id, actor=_actor())
        click.echo(
            f"removed {_LABEL[kind]} configuration {config_id}; "
            f"revoked {revoked} access key{'' if revoked == 1 else 's'} minted through it"
        )


def _update(
    node: Node, org_id: str, kind: Kind, config_id: str, changes: dict[str, Any], as_json: bool
) -> None:
    stored = node.federation.update(org_id, kind, config_id, changes, actor=_actor())
    if as_json:
        print_json(config_json(stored))
        return
    click.echo(f"updated {_LABEL[kind]} configuration {config_id}: {', '.join(sorted(changes))}")
    if changes.get("active") is False:
        click.echo("deactivated: the access keys minted through it are revoked")


def _created(stored: StoredConfig, as_json: bool) -> None:
    """The id alone on stdout's last line (or the JSON); the human summary goes to stderr."""
    if as_json:
        print_json(config_json(stored))
    else:
        click.echo(stored.config_id)


@click.group()
def federation() -> None:
    """Workload identity federation: the SAML and OIDC identity providers an org trusts."""


# --- SAML ----------------------------------------------------------------------------------


@federation.group()
def saml() -> None:
    """SAML IdPs whose signed assertions buy access keys (principal saml/<PrincipalName>)."""


@saml.command("add")
@new_name_option
@click.option(
    "--entity-id", "entity_id", required=True, help="The IdP's entity ID; must equal the assertion's Issuer."
)
@click.option(
    "--cert",
    "certs",
    multiple=True,
    required=True,
    metavar="PEM_FILE",
    help="IdP signing certificate(s), PEM (repeatable; every certificate in a file is added; - is stdin).",
)
@click.option(
    "--audience",
    default=None,
    help="SP entity ID the assertions must be addressed to (default: <public-url>/saml/<org-id>).",
)
@click.option(
    "--recipient",
    default=None,
    help="ACS URL the assertions are posted to "
    "(default: <public-url>/v1/cwobject/temporary-credentials/saml).",
)
@new_description_option
@click.option("--inactive", is_flag=True, help="Create it deactivated (refuses every assertion).")
@org_option
@json_option
@saml_add_options
def saml_add(
    name: str,
    entity_id: str,
    certs: tuple[str, ...],
    audience: str | None,
    recipient: str | None,
    description: str,
    inactive: bool,
    org: str | None,
    as_json: bool,
    **kw: Any,
) -> None:
    """Trust a SAML IdP. Prints the new config id alone on the last line of stdout (with --json,
    the config, whose `uid` is the id); clients pass it as configId."""
    pems = _certificates(certs)
    with opened(kw) as node:
        org_id = _org(node, org)
        public_url = node.settings.effective_public_url
        fields = {
            "name": name,
            "idpEntityId": entity_id,
            "certificates": pems,
            "spAudience": audience,
            "recipient": recipient,
            "description": description,
            "active": not inactive,
        }
        with _as_flags(_SAML_FLAGS):
            stored = node.federation.create(org_id, "saml", fields, public_url=public_url, actor=_actor())
        cfg = stored.config
        assert isinstance(cfg, SamlConfig)
        _say(
            f"created SAML configuration {name} in organization {org_id}{'' if cfg.active else ' (inactive)'}"
        )
        _say(f"  audience (SP entity ID): {cfg.sp_audience}")
        _say(f"  recipient (ACS URL):     {cfg.recipient}")
        _say(f"  certificates:            {', '.join(_short(certificate_fingerprint(p)) for p in pems)}")
        if not node.settings.public_url and not (audience and recipient):
            _say(
                f"  note: public_url is not set, so the defaults above are under {public_url}; "
                "pass --public-url (or set public_url) if clients and the IdP use another URL"
            )
        _created(stored, as_json)


@saml.command("update")
@click.argument("config_id")
@changed_name_option
@click.option("--entity-id", "entity_id", default=None, help="New IdP entity ID.")
@changed_description_option
@click.option(
    "--add-cert",
    "add_certs",
    multiple=True,
    metavar="PEM_FILE",
    help="Also trust the certificate(s) in this PEM file (rotation: add the next one first).",
)
@click.option(
    "--remove-cert",
    "remove_certs",
    multiple=True,
    metavar="FINGERPRINT",
    help="Stop trusting this certificate: its SHA-256 fingerprint, or a unique prefix (see `show`).",
)
@click.option("--audience", default=None, help="New SP entity ID (audience).")
@click.option("--recipient", default=None, help="New recipient (ACS URL).")
@active_option
@org_option
@json_option
@store_options
def saml_update(
    config_id: str,
    name: str | None,
    entity_id: str | None,
    description: str | None,
    add_certs: tuple[str, ...],
    remove_certs: tuple[str, ...],
    audience: str | None,
    recipient: str | None,
    active: bool | None,
    org: str | None,
    as_json: bool,
    **kw: Any,
) -> None:
    """Change a SAML configuration; certificates rotate with --add-cert and --remove-cert."""
    given: dict[str, Any] = {
        "name": name,
        "idpEntityId": entity_id,
        "description": description,
        "spAudience": audience,
        "recipient": recipient,
        "active": active,
    }
    changes: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    added = _certificates(add_certs)
    if not changes and not added and not remove_certs:
        raise click.ClickException("nothing to update: give at least one option (see --help)")
    with opened(kw) as node:
        org_id = _org(node, org)
        if added or remove_certs:
            current = node.federation.get(org_id, "saml", config_id).config
            assert isinstance(current, SamlConfig)
            pems = _remove_fingerprints(list(current.certificates), remove_certs)
            have = {certificate_fingerprint(p) for p in pems}
            pems += [p for p in added if certificate_fingerprint(p) not in have]
            if not pems:
                raise click.ClickException(
                    "cannot remove every certificate: add the IdP's new one (--add-cert) in the same command"
                )
            changes["certificates"] = pems
        with _as_flags({**_SAML_FLAGS, "certificates": "--add-cert/--remove-cert"}):
            _update(node, org_id, "saml", config_id, changes, as_json)


# --- OIDC ----------------------------------------------------------------------------------


@federation.group()
def oidc() -> None:
    """OIDC issuers whose tokens buy access keys (principal role/<issuer>:<sub>)."""


@oidc.command("add")
@new_name_option
@click.option(
    "--issuer", required=True, help="Issuer URL, https:// (http:// only for loopback); must equal iss."
)
@click.option("--audience", required=True, help="The audience tokens must carry in aud.")
@click.option(
    "--jwks",
    "jwks_file",
    default=None,
    metavar="JWKS_FILE",
    help="Pin the issuer's public keys (a JWK Set JSON file) instead of fetching them by discovery.",
)
@new_description_option
@click.option("--inactive", is_flag=True, help="Create it deactivated (ignored by the exchange).")
@org_option
@json_option
@store_options
def oidc_add(
    name: str,
    issuer: str,
    audience: str,
    jwks_file: str | None,
    description: str,
    inactive: bool,
    org: str | None,
    as_json: bool,
    **kw: Any,
) -> None:
    """Trust an OIDC issuer. Prints the new config id alone on the last line of stdout (with
    --json, the config, whose `uid` is the id)."""
    jwks = _read_jwks(jwks_file) if jwks_file else None
    with opened(kw) as node:
        org_id = _org(node, org)
        fields: dict[str, Any] = {
            "name": name,
            "issuerUrl": issuer,
            "audience": audience,
            "description": description,
            "active": not inactive,
        }
        if jwks is not None:
            fields["jwks"] = jwks
        with _as_flags(_OIDC_FLAGS):
            stored = node.federation.create(
                org_id, "oidc", fields, public_url=node.settings.effective_public_url, actor=_actor()
            )
        cfg = stored.config
        assert isinstance(cfg, OidcConfig)
        state = "" if cfg.active else " (inactive)"
        _say(f"created OIDC configuration {name} in organization {org_id}{state}")
        _say(f"  keys: {_keys_long(cfg)}")
        _created(stored, as_json)


@oidc.command("update")
@click.argument("config_id")
@changed_name_option
@click.option("--issuer", default=None, help="New issuer URL.")
@click.option("--audience", default=None, help="New audience.")
@changed_description_option
@click.option("--jwks", "jwks_file", default=None, metavar="JWKS_FILE", help="Pin these keys (JWK Set file).")
@click.option("--discovery", is_flag=True, help="Drop the pinned keys: fetch them from the issuer again.")
@active_option
@org_option
@json_option
@store_options
def oidc_update(
    config_id: str,
    name: str | None,
    issuer: str | None,
    audience: str | None,
    description: str | None,
    jwks_file: str | None,
    discovery: bool,
    active: bool | None,
    org: str | None,
    as_json: bool,
    **kw: Any,
) -> None:
    """Change an OIDC configuration; --jwks pins keys, --discovery goes back to fetching them."""
    if jwks_file and discovery:
        raise click.ClickException("--jwks and --discovery exclude each other: pin keys, or fetch them")
    given = {
        "name": name,
        "issuerUrl": issuer,
        "audience": audience,
        "description": description,
        "active": active,
    }
    changes: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if jwks_file:
        changes["jwks"] = _read_jwks(jwks_file)
    elif discovery:
        changes["jwks"] = None
    if not changes:
        raise click.ClickException("nothing to update: give at least one option (see --help)")
    with opened(kw) as node:
        org_id = _org(node, org)
        with _as_flags(_OIDC_FLAGS):
            _update(node, org_id, "oidc", config_id, changes, as_json)


def _kind_commands(
    group: click.Group, kind: Kind, *, list_help: str, show_help: str, remove_help: str
) -> None:
    """The commands SAML and OIDC configurations share: `list`, `show` and `remove`."""

    @group.command("list", help=list_help)
    @org_option
    @json_option
    @store_options
    def list_configs(org: str | None, as_json: bool, **kw: Any) -> None:
        _list(kind, org, as_json, kw)

    @group.command("show", help=show_help)
    @click.argument("config_id")
    @org_option
    @json_option
    @store_options
    def show_config(config_id: str, org: str | None, as_json: bool, **kw: Any) -> None:
        _get(kind, config_id, org, as_json, kw)

    @group.command("remove", help=remove_help)
    @click.argument("config_id")
    @org_option
    @store_options
    def remove_config(config_id: str, org: str | None, **kw: Any) -> None:
        _remove(kind, config_id, org, kw)


_kind_commands(
    saml,
    "saml",
    list_help="List the org's SAML configurations with their certificates' short fingerprints.",
    show_help="Describe one SAML configuration, with each certificate's full fingerprint and subject.",
    remove_help="Remove a SAML configuration and revoke every key minted through it.",
)
_kind_commands(
    oidc,
    "oidc",
    list_help="List the org's OIDC configurations and where each gets its keys (inline or discovery).",
    show_help="Describe one OIDC configuration.",
    remove_help="Remove an OIDC configuration and revoke every key minted through it.",
)
