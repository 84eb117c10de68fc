"""POST policies: who signed a browser-form upload, and whether the form keeps the policy.

A POST form carries a base64 JSON policy (`expiration`, `conditions`) and a signature of
that base64 text: SigV4 (`x-amz-algorithm`, `x-amz-credential`, `x-amz-date`,
`x-amz-signature`: hex HMAC-SHA256 under the SigV4 signing key) or SigV2
(`AWSAccessKeyId`, `signature`: base64 HMAC-SHA1 under the secret). Errors are the ones
S3 answers (see docs/s3-compatibility.md, "PostObject"):

- a missing signing field: 400 InvalidArgument "Bucket POST must contain a field named ...";
- a signature that does not match: 403 SignatureDoesNotMatch, checked over the policy
  text as received, before it is decoded;
- a policy that is not base64 JSON of the right shape: 400 InvalidPolicyDocument
  "Invalid Policy: ...";
- an expired policy: 403 AccessDenied "Invalid according to Policy: Policy expired.";
- a condition the form fails: 403 AccessDenied "Invalid according to Policy: Policy
  Condition failed: [...]"; a field no condition covers: "... Extra input fields: <name>".

Field names are case-insensitive (so are condition names and operators); values are
compared case-sensitively.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from coffer.errors import S3Error
from coffer.identity.models import KeyCredentials
from coffer.s3.sigv4 import sigv2
from coffer.s3.sigv4.canonical import ALGORITHM, sign, signatures_match, signing_key
from coffer.s3.sigv4.header import parse_amz_date, parse_credential
from coffer.s3.sigv4.types import CredentialRefused
from coffer.s3.sigv4.verifier import _check_key_standing, _lookup

CredentialLookup = Callable[[str], KeyCredentials | None]

# Fields no condition needs to name (x-ignore-* too, and x-amz-checksum-*: a checksum can only
# refuse an upload, never widen what the policy allows; ceph's s3-tests post one uncovered).
EXEMPT = frozenset({"policy", "x-amz-signature", "signature", "awsaccesskeyid", "file"})
EXEMPT_PREFIXES = ("x-ignore-", "x-amz-checksum-")
V4_FIELDS = ("x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature")
V2_FIELDS = ("awsaccesskeyid", "signature")
# The names S3 gives missing fields in its messages.
_CANONICAL = {
    "x-amz-algorithm": "X-Amz-Algorithm",
    "x-amz-credential": "X-Amz-Credential",
    "x-amz-date": "X-Amz-Date",
    "x-amz-signature": "X-Amz-Signature",
    "awsaccesskeyid": "AWSAccessKeyId",
    "signature": "Signature",
    "policy": "Policy",
    "key": "key",
}
_EXPIRATION = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")


def missing_field(name: str) -> S3Error:
    shown = _CANONICAL.get(name, name)
    return S3Error(
        "InvalidArgument",
        f"Bucket POST must contain a field named '{shown}'.  If it is specified, please check the order "
        "of the fields.",
        fields={"ArgumentName": shown, "ArgumentValue": ""},
    )


def invalid(detail: str) -> S3Error:
    return S3Error("InvalidPolicyDocument", f"Invalid Policy: {detail}")


def denied(detail: str) -> S3Error:
    return S3Error("AccessDenied", f"Invalid according to Policy: {detail}")


# --- who signed ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Signer:
    credentials: KeyCredentials
    signature_version: int


def signature_version(fields: Mapping[str, str]) -> int | None:
    """4 or 2 by the signing fields present, None for an anonymous form; a partial set is
    InvalidArgument naming the first missing field."""
    if any(name in fields for name in V4_FIELDS):
        for name in (*V4_FIELDS, "policy"):
            if name not in fields:
                raise missing_field(name)
        return 4
    if any(name in fields for name in V2_FIELDS):
        for name in ("awsaccesskeyid", "signature", "policy"):
            if name not in fields:
                raise missing_field(name)
        return 2
    return None


def verify(
    fields: Mapping[str, str], lookup: CredentialLookup, *, allow_sigv2: bool, now: datetime | None = None
) -> Signer | None:
    """The key that signed the policy, or None for an anonymous form (no signing fields)."""
    now = now or datetime.now(UTC)
    version = signature_version(fields)
    if version is None:
        return None
    policy = fields["policy"]
    token = fields.get("x-amz-security-token") or None
    if version == 2:
        if not allow_sigv2:
            raise S3Error("InvalidRequest", sigv2.NOT_SUPPORTED)
        access_key_id = fields["awsaccesskeyid"].strip()
        creds = _lookup(lookup, access_key_id)
        expected = sigv2.sign(creds.secret_key, policy)
        provided = fields["signature"].strip()
        if not hmac.compare_digest(expected.encode("ascii"), provided.encode("utf-8", "replace")):
            raise _mismatch(access_key_id, policy, provided)
        _check_key_standing(creds, now, token)
        return Signer(creds, 2)
    algorithm = fields["x-amz-algorithm"].strip()
    if algorithm != ALGORITHM:
        raise S3Error(
            "InvalidArgument",
            f'X-Amz-Algorithm only supports "{ALGORITHM}"',
            fields={"ArgumentName": "X-Amz-Algorithm", "ArgumentValue": algorithm[:64]},
        )
    raw_credential = fields["x-amz-credential"].strip()
    credential = parse_credential(raw_credential, code="InvalidArgument", prefix="")
    amz_date = fields["x-amz-date"].strip()
    if parse_amz_date(amz_date) is None:
        raise S3Error(
            "InvalidArgument",
            "X-Amz-Date must be formated via ISO8601 Long format",
            fields={"ArgumentName": "X-Amz-Date", "ArgumentValue": amz_date[:64]},
        )
    creds = _lookup(lookup, credential.access_key_id)
    key = signing_key(creds.secret_key, credential.date, credential.region, credential.service)
    provided = fields["x-amz-signature"].strip()
    if not signatures_match(sign(key, policy), provided):
        raise _mismatch(credential.access_key_id, policy, provided)
    _check_key_standing(creds, now, token)
    return Signer(creds, 4)


def _mismatch(access_key_id: str, policy: str, provided: str) -> S3Error:
    return CredentialRefused(
        "SignatureDoesNotMatch",
        access_key_id=access_key_id,
        guess=True,
        fields={
            "AWSAccessKeyId": access_key_id[:128],
            "StringToSign": policy[:4096],
            "SignatureProvided": provided[:256],
        },
    )


# --- the policy document ----------------------------------------------------------------------
@dataclass(frozen=True)
class Condition:
    op: str  # "eq" | "starts-with" | "content-length-range"
    field: str  # lower-case, without "$"; "" when the policy forgot the "$"
    value: str = ""
    low: int = 0
    high: int = 0
    shown: str = ""  # the condition as S3 prints it in errors


@dataclass(frozen=True)
class Policy:
    expiration: datetime
    conditions: list[Condition]

    @property
    def covered(self) -> frozenset[str]:
        return frozenset(c.field for c in self.conditions if c.field)

    @property
    def length_range(self) -> tuple[int, int] | None:
        ranges = [(c.low, c.high) for c in self.conditions if c.op == "content-length-range"]
        if not ranges:
            return None
        return max(lo for lo, _ in ranges), min(hi for _, hi in ranges)


def _shown(items: list[object]) -> str:
    return json.dumps(items, ensure_ascii=False)


def _target(name: str) -> str:
    return name[1:].lower() if name.startswith("$") else ""


def _range_bound(value: object, op: str, items: list[object]) -> int | None:
    """An integer bound (a JSON integer or a digit string); None when S3 would fail the
    condition rather than the document (a non-numeric string)."""
    if isinstance(value, bool | float):
        raise invalid("Invalid JSON.")
    if isinstance(value, int):
        if value < 0:
            raise invalid(f"Invalid {op}: value must be a non-negative integer.")
        return value
    if isinstance(value, str):
        return int(value) if value.isascii() and value.isdigit() else None
    raise invalid("Invalid JSON.")


def _condition(raw: object) -> Condition:
    if isinstance(raw, dict):
        if len(raw) != 1:
            raise invalid(
                "Invalid Simple-Condition: Simple-Conditions must have exactly one property specified."
            )
        ((name, value),) = raw.items()
        if not isinstance(value, str):
            raise invalid("Invalid Simple-Condition: value must be a string.")
        return Condition("eq", name.lower(), value, shown=_shown(["eq", f"${name}", value]))
    if not isinstance(raw, list):
        raise invalid("Invalid condition test: must be a List or Object.")
    if not raw or not isinstance(raw[0], str):
        raise invalid("Invalid Condition: missing operation identifier.")
    op = raw[0].lower()
    if op in ("eq", "starts-with"):
        if len(raw) != 3:
            raise invalid(f"Invalid {raw[0]}: wrong number of arguments.")
        name, value = raw[1], raw[2]
        if not isinstance(name, str) or not isinstance(value, str):
            raise invalid("Invalid JSON.")
        return Condition(op, _target(name), value, shown=_shown(raw))
    if op == "content-length-range":
        if len(raw) != 3:
            raise invalid(f"Invalid {raw[0]}: wrong number of arguments.")
        low, high = _range_bound(raw[1], raw[0], raw), _range_bound(raw[2], raw[0], raw)
        if low is None or high is None:
            return Condition("fail", "", shown=_shown(raw))
        return Condition(op, "", low=low, high=high, shown=_shown(raw))
    raise invalid(f"Invalid Condition: unknown operation '{raw[0]}'.")


def parse_policy(text: str) -> Policy:
    try:
        decoded = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise invalid("invalid Base64 encoding.") from None
    try:
        document = json.loads(decoded.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise invalid("Invalid JSON.") from None
    if not isinstance(document, dict):
        raise invalid("Invalid JSON.")
    for name in document:
        if name not in ("expiration", "conditions"):
            raise invalid(f"Unexpected: '{str(name).lower()[:64]}'")
    if "expiration" not in document:
        raise invalid("Policy missing expiration.")
    if "conditions" not in document:
        raise invalid("Policy missing conditions.")
    expiration = document["expiration"]
    if not isinstance(expiration, str) or not _EXPIRATION.fullmatch(expiration):
        raise invalid(f"Invalid 'expiration' value: '{str(expiration)[:64]}'")
    try:
        when = datetime.fromisoformat(expiration.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"Invalid 'expiration' value: '{expiration[:64]}'") from None
    conditions = document["conditions"]
    if not isinstance(conditions, list):
        raise invalid("Invalid 'conditions' value: must be a List.")
    return Policy(expiration=when, conditions=[_condition(c) for c in conditions])


def check(policy: Policy, fields: Mapping[str, str], names: Mapping[str, str], bucket: str,
          now: datetime | None = None) -> None:  # fmt: skip
    """Expiration, every condition (but content-length-range, which the upload checks), then
    coverage. `fields` maps lower-case names to values (after ${filename}); `names` maps
    them to the names as sent, for the Extra-input-fields message."""
    now = now or datetime.now(UTC)
    if policy.expiration <= now:
        raise denied("Policy expired.")
    for cond in policy.conditions:
        if cond.op == "content-length-range":
            continue
        value = bucket if cond.field == "bucket" else fields.get(cond.field)
        if cond.op == "eq":
            ok = bool(cond.field) and value is not None and value == cond.value
        elif cond.op == "starts-with":
            if cond.field == "content-type" and value is not None:
                ok = all(v.strip().startswith(cond.value) for v in value.split(","))
            else:
                ok = bool(cond.field) and value is not None and value.startswith(cond.value)
        else:
            ok = False
        if not ok:
            raise denied(f"Policy Condition failed: {cond.shown}")
    covered = policy.covered
    for name in fields:
        if name in EXEMPT or name.startswith(EXEMPT_PREFIXES) or name in covered:
            continue
        raise denied(f"Extra input fields: {names.get(name, name)}")
