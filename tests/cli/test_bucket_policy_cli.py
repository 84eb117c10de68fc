"""`coffer bucket policy set/get/delete` as a user runs it, and the lock-out warning: a policy
under which the saving user could no longer list or read the bucket is refused without
--force (asked about on a terminal), and what the warning says is what S3 then does."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from coffer.cli.bucket_policy import DENIED_HINT
from tests.support.cli import cli_env, coffer_as
from tests.support.console import allow_s3
from tests.support.harness import CofferServer, coffer_cmd
from tests.support.policies import create_org, create_user, denied, ensure_ok, org_of, s3_of
from tests.support.policies import policy as org_policy
from tests.support.policies import statement as org_statement
from tests.support.s3 import new_bucket, unique


@pytest.fixture(scope="module", autouse=True)
def s3_allowed(server: CofferServer) -> None:
    allow_s3(server)


def bucket_policy(
    server: CofferServer, *args: str, token: str | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return coffer_as(server, "bucket", "policy", *args, token=token, check=False, s3=True, input=input)


def policy(bucket: str, *statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def statement(bucket: str, principal: str = "*", effect: str = "Allow", **extra: Any) -> dict[str, Any]:
    return {
        "Effect": effect,
        "Principal": {"CW": principal},
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        **extra,
    }


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.json"
    path.write_text(text)
    return str(path)


def no_policy(s3: Any, bucket: str) -> bool:
    try:
        s3.get_bucket_policy(Bucket=bucket)
    except ClientError as err:
        return bool(err.response["Error"]["Code"] == "NoSuchBucketPolicy")
    return False


def filled_bucket(s3: Any, prefix: str) -> str:
    name = new_bucket(s3, prefix)
    s3.put_object(Bucket=name, Key="hello.txt", Body=b"hello")
    return name


def test_a_policy_that_locks_you_out_is_refused_without_force(
    server: CofferServer, s3: Any, tmp_path: Path
) -> None:
    bucket = filled_bucket(s3, "lockout")
    team_only = write(tmp_path, policy(bucket, statement(bucket, "role/DataTeam", Sid="TeamOnly")))
    out = bucket_policy(server, "set", bucket, team_only)
    assert out.returncode == 1
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert lines[0].startswith("Warning: under this policy coreweave/") and "could no longer" in lines[0]
    assert any("s3:ListBucket" in line and "no statement of the policy allows it" in line for line in lines)
    assert any("s3:GetObject" in line for line in lines)
    assert not any("s3:PutBucketPolicy" in line for line in lines)  # global: a bucket policy cannot take it
    refusal = f"Error: not saved: this policy would lock you out of {bucket}; pass --force to save it anyway"
    assert lines[-1] == refusal
    assert no_policy(s3, bucket)

    # With --force it is saved, and S3 then does exactly what the warning said.
    out = bucket_policy(server, "set", bucket, team_only, "--force")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"saved the policy of bucket {bucket}"
    assert denied(lambda: s3.list_objects_v2(Bucket=bucket))
    assert denied(lambda: s3.get_object(Bucket=bucket, Key="hello.txt"))
    # s3:GetBucketPolicy and DeleteBucketPolicy are the bucket policy's to decide too...
    out = bucket_policy(server, "get", bucket)
    assert out.returncode == 1
    assert out.stderr.splitlines() == ["Error: 403 AccessDenied: Access Denied", DENIED_HINT]
    # ...but PutBucketPolicy is not (organization policies alone): the author can still repair it.
    safe = write(tmp_path, policy(bucket, statement(bucket)))
    out = bucket_policy(server, "set", bucket, safe)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert s3.get_object(Bucket=bucket, Key="hello.txt")["Body"].read() == b"hello"


def test_a_safe_policy_is_saved_without_a_word_and_read_back(
    server: CofferServer, s3: Any, tmp_path: Path
) -> None:
    bucket = filled_bucket(s3, "safe")
    text = policy(bucket, statement(bucket, Sid="Everyone"))
    out = bucket_policy(server, "set", bucket, write(tmp_path, text))
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == json.loads(text)
    out = bucket_policy(server, "get", bucket)
    assert out.returncode == 0
    assert json.loads(out.stdout) == json.loads(text)
    out = bucket_policy(server, "delete", bucket)
    assert out.returncode == 0 and out.stdout.strip() == f"deleted the policy of bucket {bucket}"
    assert no_policy(s3, bucket)
    out = bucket_policy(server, "get", bucket)
    assert out.returncode == 1
    assert out.stderr.startswith("Error: 404 NoSuchBucketPolicy:"), out.stderr


def test_a_deny_is_named_by_its_sid(server: CofferServer, s3: Any, tmp_path: Path) -> None:
    bucket = filled_bucket(s3, "deny")
    text = policy(
        bucket,
        statement(bucket, Sid="Everyone"),
        {
            "Sid": "NoReads",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        },
    )
    out = bucket_policy(server, "set", bucket, write(tmp_path, text))
    assert out.returncode == 1
    lost = [line for line in out.stderr.splitlines() if line.startswith("  - ")]
    assert lost == [
        "  - read the bucket's objects (s3:GetObject): a Deny statement of the policy matches (NoReads)"
    ]
    assert no_policy(s3, bucket)


def test_stdin_is_never_asked_and_a_malformed_policy_is_refused(
    server: CofferServer, s3: Any, tmp_path: Path
) -> None:
    bucket = filled_bucket(s3, "stdin")
    text = policy(bucket, statement(bucket, "role/DataTeam"))
    out = bucket_policy(server, "set", bucket, "-", input=text)
    assert out.returncode == 1 and "pass --force" in out.stderr
    assert no_policy(s3, bucket)
    out = bucket_policy(server, "set", bucket, "-", "--force", input=text)
    assert out.returncode == 0, out.stderr

    out = bucket_policy(server, "set", bucket, "-", input='["not a policy"]')
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "Error: 400 INVALID_ARGUMENT: invalid policy: MalformedPolicy: "
        "Policies must be valid JSON and the first byte must be '{'"
    )
    out = bucket_policy(server, "set", unique("absent"), "-", input=text)
    assert out.returncode == 1 and "404 NOT_FOUND: bucket" in out.stderr


def _run_on_a_terminal(server: CofferServer, args: list[str], answer: bytes) -> tuple[int, str]:
    """Run `coffer bucket policy ...` with a pseudo-terminal as stdin/stdout/stderr, answer its
    question with `answer`, and return the exit status and everything it printed."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [*coffer_cmd(), "bucket", "policy", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=cli_env(server, s3=True),
        close_fds=True,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60
    answered = False
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
        if not answered and b"Save this policy anyway? [y/N]" in seen:
            os.write(leader, answer + b"\n")
            answered = True
    os.close(leader)
    return proc.wait(30), seen.decode(errors="replace")


def test_on_a_terminal_it_asks(server: CofferServer, s3: Any, tmp_path: Path) -> None:
    bucket = filled_bucket(s3, "tty")
    path = write(tmp_path, policy(bucket, statement(bucket, "role/DataTeam")))
    status, text = _run_on_a_terminal(server, ["set", bucket, path], b"n")
    assert status == 1, text
    assert "s3:ListBucket" in text and "Error: not saved" in text
    assert no_policy(s3, bucket)
    status, text = _run_on_a_terminal(server, ["set", bucket, path], b"y")
    assert status == 0, text
    assert f"saved the policy of bucket {bucket}" in text
    assert denied(lambda: s3.list_objects_v2(Bucket=bucket))


def test_the_check_sees_the_saving_users_groups(server: CofferServer, tmp_path: Path) -> None:
    """Through the same evaluator as S3: a policy granting a group locks out a user outside
    it and not one inside it, exactly as the users' own S3 requests then find."""
    admin = s3_of(server)
    bucket = filled_bucket(admin, "groups")
    # The users may mint the keys the CLI signs with.
    keys = org_statement("keys", ["cwobject:CreateAccessKey"], ["*"], ["*"])
    ensure_ok(server, org_policy("cli-tests-keys", keys))
    _, inside = create_user(server, unique("in"), groups=("team-a",))
    _, outside = create_user(server, unique("out"), groups=("team-b",))
    org = org_of(server, server.mint_key())
    text = policy(bucket, statement(bucket, Condition={"StringEquals": {f"iam:{org}:groups": "team-a"}}))
    path = write(tmp_path, text)
    out = bucket_policy(server, "set", bucket, path, token=outside)
    assert out.returncode == 1 and "s3:ListBucket" in out.stderr
    assert no_policy(admin, bucket)
    out = bucket_policy(server, "set", bucket, path, token=inside)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert s3_of(server, inside).list_objects_v2(Bucket=bucket)["KeyCount"] == 1
    outsider = s3_of(server, outside)
    assert denied(lambda: outsider.list_objects_v2(Bucket=bucket))


def test_another_organizations_bucket_is_unknown(server: CofferServer, s3: Any) -> None:
    bucket = filled_bucket(s3, "foreign")
    _, stranger = create_user(server, unique("stranger"), org=create_org(server), admin=True)
    out = bucket_policy(server, "set", bucket, "-", token=stranger, input=policy(bucket, statement(bucket)))
    assert out.returncode == 1
    assert out.stderr.strip() == f"Error: 404 NOT_FOUND: bucket '{bucket}' not found"
