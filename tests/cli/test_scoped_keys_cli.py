"""`coffer keys create --scope` and `coffer keys show` for scoped keys, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.cli import coffer_as, error_line
from tests.support.harness import CofferServer
from tests.support.policies import denied
from tests.support.s3 import s3_client, unique


def scope_for(bucket: str) -> dict[str, Any]:
    return {
        "statements": [
            {
                "name": "ci",
                "effect": "Allow",
                "actions": ["s3:PutObject"],
                "resources": [f"{bucket}/builds/*"],
            }
        ]
    }


def test_create_with_an_inline_scope_and_from_a_file(server: CofferServer, tmp_path: Path) -> None:
    bucket = unique("cli-scope")
    s3_client(server).create_bucket(Bucket=bucket)
    doc = scope_for(bucket)
    path = tmp_path / "scope.json"
    path.write_text(json.dumps(doc))
    for arg in (json.dumps(doc), str(path)):
        created = json.loads(
            coffer_as(server, "keys", "create", "--permanent", "--scope", arg, "--json").stdout
        )
        assert created["scope"] == doc  # the CLI asks for the extension fields
        shown = json.loads(coffer_as(server, "keys", "show", created["accessKeyId"], "--json").stdout)
        assert shown["scope"] == doc
        text = coffer_as(server, "keys", "show", created["accessKeyId"]).stdout
        assert f"Allow s3:PutObject on {bucket}/builds/*" in text
        scoped = s3_client(server, created)
        scoped.put_object(Bucket=bucket, Key="builds/a", Body=b"a")
        assert denied(lambda: scoped.put_object(Bucket=bucket, Key="other/a", Body=b"a"))
    # the human output of create says what the key is limited to
    out = coffer_as(server, "keys", "create", "--duration", "60", "--scope", str(path)).stdout
    assert f"Allow s3:PutObject on {bucket}/builds/*" in out
    # an unscoped key says so
    plain = json.loads(coffer_as(server, "keys", "create", "--permanent", "--json").stdout)
    assert plain["scope"] is None
    assert "none (all its owner may do)" in coffer_as(server, "keys", "show", plain["accessKeyId"]).stdout


def test_bad_scopes_are_one_line_errors(server: CofferServer, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.json")
    out = coffer_as(server, "keys", "create", "--permanent", "--scope", missing, check=False)
    assert f"cannot read scope file {missing}" in error_line(out, 1)
    out = coffer_as(server, "keys", "create", "--permanent", "--scope", "{not json", check=False)
    assert "not valid JSON" in error_line(out, 2)
    bad = {"statements": [{"name": "a", "effect": "Allow", "actions": ["cwobject:*"], "resources": ["*"]}]}
    out = coffer_as(server, "keys", "create", "--permanent", "--scope", json.dumps(bad), check=False)
    line = error_line(out, 1)
    assert line.startswith("Error: 400 INVALID_ARGUMENT: invalid scope.statements[0].actions[0]:"), line


def test_can_i_about_a_key(server: CofferServer) -> None:
    bucket = unique("cli-can-i")
    s3_client(server).create_bucket(Bucket=bucket)
    doc = json.dumps(scope_for(bucket))
    key = json.loads(coffer_as(server, "keys", "create", "--permanent", "--scope", doc, "--json").stdout)
    ask = ["policy", "can-i", "s3:PutObject", f"{bucket}/other/x"]
    assert coffer_as(server, *ask).stdout.strip() == "yes"  # the caller may
    out = coffer_as(server, *ask, "--key", key["accessKeyId"], check=False)
    assert (out.returncode, out.stdout.strip()) == (1, "no")  # its scoped key may not
    ask[-1] = f"{bucket}/builds/x"
    assert coffer_as(server, *ask, "--key", key["accessKeyId"]).stdout.strip() == "yes"
