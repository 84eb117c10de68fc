"""The docs are tested against the code, so they stay true (as Datasette does).

- docs/configuration.md lists every setting with its flag, variable and default, and nothing else;
- docs/api.md's compatibility table covers every CoreWeave operation and marks exactly the routed
  ones done, with their methods and paths; its error table agrees with coffer.errors;
- every audit event the code emits is documented;
- every `coffer ...` command line in the docs names real commands and options;
- the limits tables (docs/operations.md for coffer/limits.py, docs/s3-compatibility.md for S3's) and the
  limits stated in prose give the values the code has.
"""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest

from coffer import limits
from coffer.api.app import OPERATIONS
from coffer.cli import cli
from coffer.config import env_name, flag_name, setting_fields
from coffer.errors import S3_ERRORS, Kind

DOCS = Path(__file__).resolve().parent.parent / "docs"

# Reference §2.2: every documented method of CoreWeave's control plane.
COREWEAVE_OPERATIONS = {
    "AuthCanI",
    "CreateAccessKeyFromJWT",
    "ListAccessKeyInfo",
    "GetAccessKeyInfo",
    "UpdateAccessKeyStatus",
    "RevokeAccessKeyByAccessKey",
    "RevokeAccessKeysByPrincipal",
    "ListAccessPolicies",
    "EnsureAccessPolicy",
    "DeleteAccessPolicy",
    "SetBucketSettings",
    "ListBucketInfo",
    "GetBucketInfo",
    "SetOrganizationSettings",
    "CreateAccessKeyFromSAML",
    "CreateAccessKeyFromOIDC",
    "CreateAccessKeyFromContainerCreds",
    "CreateAccessKeyFromApiToken",
}


def table_rows(text: str, first_header: str) -> list[list[str]]:
    """The body rows of the markdown table whose header starts with `first_header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def toml_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


# --- configuration.md ---------------------------------------------------------------------------


def test_every_setting_is_documented_with_flag_env_and_default() -> None:
    rows = {
        row[0].strip("`"): row for row in table_rows((DOCS / "configuration.md").read_text(), "Config key")
    }
    fields = {f.name: f for f in setting_fields()}
    missing = sorted(set(fields) - set(rows))
    assert not missing, f"settings missing from docs/configuration.md: {missing}"
    extra = sorted(set(rows) - set(fields))
    assert not extra, f"docs/configuration.md documents settings the code does not have: {extra}"
    for name, f in fields.items():
        _, flag, env, default, meaning = rows[name]
        expected_flag = flag_name(name)
        if isinstance(f.default, bool):
            expected_flag += f" / --no-{expected_flag[2:]}"
        assert flag == f"`{expected_flag}`", name
        assert env == f"`{env_name(name)}`", name
        assert default == f"`{toml_literal(f.default)}`", name
        assert len(meaning) > 20, name


def test_documented_flags_exist_on_serve() -> None:
    serve = cli.commands["serve"]
    opts = {o for p in serve.params for o in [*p.opts, *p.secondary_opts]}
    for f in setting_fields():
        assert flag_name(f.name) in opts, f.name


# --- api.md -------------------------------------------------------------------------------------


def compatibility() -> dict[str, list[str]]:
    rows = table_rows((DOCS / "api.md").read_text(), "gRPC method")
    return {row[0]: row for row in rows}


def test_every_coreweave_operation_has_a_row() -> None:
    rows = compatibility()
    assert not COREWEAVE_OPERATIONS - set(rows), COREWEAVE_OPERATIONS - set(rows)
    for kind in ("SAML", "OIDC"):
        verbs = ("Create", "Get", "Update", "Delete")
        rpcs = {f"List{kind}Configs", *(f"{verb}{kind}Config" for verb in verbs)}
        assert rpcs <= set(rows), f"the WIF {kind} config API is listed"


def test_done_means_routed() -> None:
    rows = compatibility()
    routed = {op.name: op for op in OPERATIONS}
    done = {name for name, row in rows.items() if row[4].startswith("**done**")}
    assert done == set(routed), (done, set(routed))
    for name, op in routed.items():
        _, method, path, auth, _ = rows[name]
        assert method == op.method and path == f"`{op.path}`", name
        anonymous = "raw JWT" if name == "CreateAccessKeyFromContainerCreds" else "anonymous"
        assert auth == (anonymous if op.anonymous else "Bearer"), name


def test_error_table_agrees_with_the_code() -> None:
    for http, code, _ in table_rows((DOCS / "api.md").read_text(), "HTTP"):
        m = re.fullmatch(r"`([A-Z_]+)` \((\d+)\)", code)
        assert m, code
        kind = Kind[m.group(1)]
        assert kind.grpc_code == int(m.group(2)), code
        # 405 is the one status chosen over gRPC-gateway's (501 for UNIMPLEMENTED); api.md says why.
        assert int(http) == (405 if kind is Kind.UNIMPLEMENTED else kind.http_status), code


def emitted_audit_events() -> set[str]:
    root = Path(__file__).resolve().parent.parent / "coffer"
    pattern = re.compile(r'\baudit\(\s*"([a-z_]+)"(?:\s+if\b[^"\n]*else\s+"([a-z_]+)")?')
    events: set[str] = set()
    for path in root.rglob("*.py"):
        for m in pattern.finditer(path.read_text()):
            events.update(e for e in m.groups() if e)
    return events


def test_every_audit_event_is_documented() -> None:
    events = emitted_audit_events()
    assert {"access_key_minted", "access_key_revoked", "access_keys_suspended", "denied"} <= events
    documented = (DOCS / "api.md").read_text() + (DOCS / "operations.md").read_text()
    missing = sorted(e for e in events if f"`{e}`" not in documented)
    assert not missing, f"audit events missing from docs/api.md and docs/operations.md: {missing}"


# --- command lines in the docs ------------------------------------------------------------------


def doc_command_lines() -> list[tuple[str, str]]:
    found = []
    for doc in sorted(DOCS.glob("*.md")):
        in_block = False
        for line in doc.read_text().splitlines():
            if line.startswith("```"):
                in_block = not in_block
                continue
            stripped = line.strip()
            if in_block and stripped.startswith("coffer "):
                found.append((doc.name, stripped.split("  #")[0].split(" # ")[0].strip()))
    return found


COMMAND_LINES = doc_command_lines()


def test_the_docs_show_commands() -> None:
    names = {doc for doc, _ in COMMAND_LINES}
    assert {"quickstart.md", "operations.md"} <= names


@pytest.mark.parametrize(("doc", "line"), COMMAND_LINES, ids=[f"{d}:{line}" for d, line in COMMAND_LINES])
def test_documented_command_lines_parse(doc: str, line: str) -> None:
    """The command exists and every option on the line is one of its (or its groups') options."""
    words = shlex.split(line.replace("<", "").replace(">", ""))[1:]
    command: click.Command = cli
    options: set[str] = set()
    while isinstance(command, click.Group) and words:
        options |= {o for p in command.params for o in [*p.opts, *p.secondary_opts]}
        word = words.pop(0)
        if word.startswith("-"):
            continue
        assert word in command.commands, f"{doc}: no command {word!r} in {line!r}"
        command = command.commands[word]
    options |= {o for p in command.params for o in [*p.opts, *p.secondary_opts]}
    for word in words:
        if word.startswith("--"):
            assert word.split("=")[0] in options, f"{doc}: {line!r} uses unknown option {word}"


# --- limits -------------------------------------------------------------------------------------

_UNITS = {"bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "s": 1, "characters": 1}


def doc_value(text: str) -> float:
    """A table's value as a number: `16 KiB` is 16384, `8,192` is 8192, `10 s` is 10."""
    m = re.fullmatch(r"([\d,]+(?:\.\d+)?)(?: (bytes|KiB|MiB|GiB|s|characters))?", text)
    assert m, f"not a value the docs test can read: {text!r}"
    return float(m.group(1).replace(",", "")) * _UNITS.get(m.group(2) or "", 1)


def test_operations_lists_every_limit_with_its_value_and_setting() -> None:
    rows = {row[0].strip("`"): row for row in table_rows((DOCS / "operations.md").read_text(), "Constant")}
    constants = {k: v for k, v in vars(limits).items() if k.isupper() and not k.startswith("_")}
    missing = sorted(set(constants) - set(rows))
    assert not missing, f"coffer/limits.py constants missing from docs/operations.md (Limits): {missing}"
    extra = sorted(set(rows) - set(constants))
    assert not extra, f"docs/operations.md lists limits coffer/limits.py does not have: {extra}"
    defaults = {f.name: f.default for f in setting_fields()}
    for name, value in constants.items():
        _, shown, setting, meaning = rows[name]
        assert doc_value(shown) == value, f"{name}: docs/operations.md says {shown}, coffer/limits.py {value}"
        if setting == "—":
            assert name.lower() not in defaults, f"{name} is the setting {name.lower()}: name it"
        else:
            assert setting == f"`{name.lower()}`", name
            assert defaults[name.lower()] == value, f"{name}: the setting's default is not the constant"
        assert len(meaning) > 20, name


def test_s3_limits_table_agrees_with_the_code() -> None:
    rows = table_rows((DOCS / "s3-compatibility.md").read_text(), "Limit")
    assert len(rows) >= 10
    for what, shown, beyond, constant in rows:
        module, _, name = constant.strip("`").rpartition(".")
        value = getattr(importlib.import_module(module), name)
        assert doc_value(shown) == value, (
            f"{what}: docs/s3-compatibility.md says {shown}, {constant} is {value}"
        )
        error = re.fullmatch(r"`(\w+)` \((\d+)\)", beyond)
        if error:
            code, status = error.groups()
            assert code in S3_ERRORS and S3_ERRORS[code][0] == int(status), f"{what}: {beyond}"
        else:
            assert beyond == "larger values are clamped", f"{what}: {beyond}"


def prose_limits() -> list[tuple[str, str]]:
    """(doc, phrase) for limits the docs state in running text, built from the code's constants."""
    from coffer.identity.accesskeys import MAX_ATTRIBUTES
    from coffer.s3.formdata import MAX_PRE_DATA
    from coffer.s3.handlers import delete
    from coffer.s3.handlers.common import MAX_PAGE
    from coffer.storage import cors, rules, tags
    from coffer.storage.rules import MAX_PART_SIZE

    gib, to = MAX_PART_SIZE >> 30, "\N{EN DASH}"
    return [
        ("s3-compatibility.md", f"more than {gib} GiB is `EntityTooLarge`"),
        ("s3-compatibility.md", f"the {gib} GiB PUT limit applies to the file"),
        ("s3-compatibility.md", f"Up to {delete.MAX_KEYS} keys"),
        ("s3-compatibility.md", f"`max-keys` 0{to}{MAX_PAGE}"),
        ("s3-compatibility.md", f"`max-keys` (0{to}{MAX_PAGE})"),
        ("s3-compatibility.md", f"`partNumber` 1{to}{rules.MAX_PART_NUMBER}"),
        ("s3-compatibility.md", f"at most {tags.MAX_OBJECT_TAGS} tags on an object"),
        ("s3-compatibility.md", f"and {tags.MAX_BUCKET_TAGS} on a bucket"),
        ("s3-compatibility.md", f"keys 1{to}{tags.MAX_KEY} and values 0{to}{tags.MAX_VALUE} characters"),
        ("s3-compatibility.md", f"version-aware; at most {tags.MAX_OBJECT_TAGS} tags"),
        ("s3-compatibility.md", f"| supported | at most {tags.MAX_BUCKET_TAGS} tags"),
        ("s3-compatibility.md", f"1{to}{cors.MAX_RULES} rules"),
        ("s3-compatibility.md", f"| supported | at most {cors.MAX_RULES} rules"),
        ("s3-compatibility.md", f"`ID` (≤ {cors.MAX_ID})"),
        ("s3-compatibility.md", f"at most {MAX_PRE_DATA // 1024} KiB: `MaxPostPreDataLengthExceeded`"),
        ("api.md", f"a body over {limits.MAX_JSON_BODY >> 20} MiB"),
        ("api.md", f"Bodies over {limits.MAX_JSON_BODY >> 20} MiB are refused"),
        ("api.md", f"at most {MAX_ATTRIBUTES} entries"),
    ]


@pytest.mark.parametrize(("doc", "phrase"), prose_limits(), ids=[p for _, p in prose_limits()])
def test_limits_stated_in_prose_match_the_code(doc: str, phrase: str) -> None:
    text = " ".join((DOCS / doc).read_text().split())
    assert phrase in text, f"docs/{doc} no longer says {phrase!r}: update the text or the constant"
