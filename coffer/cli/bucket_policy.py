"""`coffer bucket policy`: a bucket's policy (S3 Get/Put/DeleteBucketPolicy), with the warning
that a policy would lock you out of your own bucket.

CoreWeave's rule (docs/policies.md): once a bucket has a policy, only what it allows is
allowed, even for the principals of the bucket's organization. `set` first asks the control
plane (CheckBucketPolicyLockout, Coffer's extension) whether, under the new policy, you
could still list the bucket, read its objects and replace its policy, decided by the same
evaluator as the S3 request; if not, it names what you would lose and refuses without
`--force` (on a terminal it asks instead).

The S3 calls are ordinary SigV4 requests to the S3 endpoint, signed with a temporary key the
API token is exchanged for (CreateAccessKeyFromApiToken: the token's user and groups, valid
for minutes): the same principal the check asked about, and the S3 call as CoreWeave defines it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import click
import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from coffer.cli.inputs import read_text
from coffer.cli.keys import Api, _default_s3_endpoint, current_api
from coffer.cli.output import console
from coffer.web.signer import Credentials, body_hash, encode_query, object_path, sign_request

LOCKOUT_PATH = "/v1/cwobject/auth/bucket-policy-lockout"
CREDENTIALS_PATH = "/v1/cwobject/temporary-credentials/api-token"
REGION = "us-east-04a"  # any region signs for Coffer, as for CoreWeave
_POLICY = [("policy", "")]
# What each checked action means to the person who would lose it.
LOST = {
    "s3:ListBucket": "list the bucket's objects (s3:ListBucket)",
    "s3:GetObject": "read the bucket's objects (s3:GetObject)",
    "s3:PutBucketPolicy": "replace the bucket's policy (s3:PutBucketPolicy)",
}
# A refused Get/DeleteBucketPolicy is often the lock-out itself: say the way out.
DENIED_HINT = (
    "A bucket's policy decides s3:GetBucketPolicy and s3:DeleteBucketPolicy too; s3:PutBucketPolicy "
    "is decided by organization policies alone, so `coffer bucket policy set` can still replace it."
)
WHY = {
    "bucket-implicit-deny": "no statement of the policy allows it",
    "bucket-deny": "a Deny statement of the policy matches",
    "restricted-public-bucket": "the policy is public and RestrictPublicBuckets is on",
}


class S3:
    """SigV4 requests on one bucket's policy, with a temporary key of the API token's user."""

    def __init__(self, api: Api, endpoint: str | None) -> None:
        self.api = api
        self.endpoint = (endpoint or _default_s3_endpoint(api.endpoint)).rstrip("/")
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise click.UsageError(f"--s3-endpoint must be an http(s) URL, got {self.endpoint!r}")
        self.host = parts.netloc

    def request(self, method: str, bucket: str, body: bytes = b"") -> httpx.Response:
        creds = self.api.request("GET", CREDENTIALS_PATH)
        headers = {"x-amz-security-token": creds["Token"]} if creds.get("Token") else {}
        raw_path, raw_query = object_path(bucket, None), encode_query(_POLICY)
        signed = sign_request(
            method=method,
            host=self.host,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=headers,
            credentials=Credentials(creds["AccessKeyId"], creds["SecretAccessKey"]),
            region=REGION,
            payload_hash=body_hash(body),
        )
        url = f"{self.endpoint}{raw_path}?{raw_query}"
        try:
            resp = httpx.request(method, url, headers=signed, content=body, timeout=self.api.client.timeout)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach {self.endpoint}: {exc}") from None
        if resp.status_code >= 300:
            message = s3_error(resp)
            if resp.status_code == 403 and method != "PUT":
                message += f"\n{DENIED_HINT}"
            raise click.ClickException(message)
        return resp


def s3_error(resp: httpx.Response) -> str:
    """One line: the HTTP status, S3's error code and message."""
    try:
        root = fromstring(resp.content)
        code, message = root.findtext("Code") or "", root.findtext("Message") or ""
    except (ParseError, DefusedXmlException, ValueError):
        code, message = "", " ".join(resp.text.split())[:200]
    if code:
        return f"{resp.status_code} {code}: {message}"
    return f"{resp.status_code}: {message or 'no details'}"


def s3_endpoint_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--s3-endpoint",
        envvar="COFFER_S3_ENDPOINT",
        default=None,
        help="S3 URL [env COFFER_S3_ENDPOINT; default: the --endpoint host, port 8490].",
    )(fn)


@click.group("policy")
def bucket_policy() -> None:
    """Show, set and delete a bucket's policy; `set` warns before a policy that locks you out."""


def lockout_warning(report: dict[str, Any]) -> str:
    """What the policy would take away from its author, in words."""
    lines = [f"under this policy {report.get('principalName')} could no longer:"]
    for check in report.get("checks") or []:
        if check.get("lockedOut"):
            action = str(check.get("action"))
            why = WHY.get(str(check.get("rule")), str(check.get("rule")))
            if check.get("statement"):
                why += f" ({check['statement']})"
            lines.append(f"  - {LOST.get(action, action)}: {why}")
    lines.append(
        "Once a bucket has a policy, only what it allows is allowed, even for the bucket's own organization."
    )
    return "\n".join(lines)


@bucket_policy.command("set")
@click.argument("name")
@click.argument("path", metavar="FILE")
@click.option("--force", is_flag=True, help="Save it even if it would lock you out of the bucket.")
@s3_endpoint_option
def set_policy(name: str, path: str, force: bool, s3_endpoint: str | None) -> None:
    """Set bucket NAME's policy to the JSON document in FILE ('-' reads stdin) (PutBucketPolicy).

    Refuses a policy under which you could no longer list the bucket, read its objects or
    replace its policy, unless you pass --force or, on a terminal, confirm."""
    text = read_text(path, "policy file")
    api = current_api()
    report = api.request("POST", LOCKOUT_PATH, json={"bucketName": name, "policy": text})
    if report.get("lockedOut") and not force:
        click.echo(f"Warning: {lockout_warning(report)}", err=True)
        interactive = path != "-" and sys.stdin.isatty()
        if not interactive:
            raise click.ClickException(
                f"not saved: this policy would lock you out of {name}; pass --force to save it anyway"
            )
        if not click.confirm("Save this policy anyway?", default=False, err=True):
            raise click.ClickException("not saved")
    S3(api, s3_endpoint).request("PUT", name, text.encode())
    console().print(f"saved the policy of bucket {name}")


@bucket_policy.command("get")
@click.argument("name")
@s3_endpoint_option
def get_policy(name: str, s3_endpoint: str | None) -> None:
    """Print bucket NAME's policy (GetBucketPolicy)."""
    text = S3(current_api(), s3_endpoint).request("GET", name).text
    try:
        click.echo(json.dumps(json.loads(text), indent=2))
    except ValueError:
        click.echo(text)


@bucket_policy.command("delete")
@click.argument("name")
@s3_endpoint_option
def delete_policy(name: str, s3_endpoint: str | None) -> None:
    """Delete bucket NAME's policy (DeleteBucketPolicy): organization policies alone decide again."""
    S3(current_api(), s3_endpoint).request("DELETE", name)
    console().print(f"deleted the policy of bucket {name}")
