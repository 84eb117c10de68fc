"""Parse `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.

Errors carry the messages AWS gives (AuthorizationHeaderMalformed) so that a client
author can see which part of the header is wrong. The credential scope parser is
shared with presigned URLs, which report the same faults under a different code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from coffer.errors import S3Error
from coffer.s3.sigv4.canonical import ALGORITHM, SERVICE, TERMINATOR

_CREDENTIAL_SHAPE = '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request"'
_HEADER_PREFIX = "The authorization header is malformed; "
_COMPONENTS = ("Credential", "SignedHeaders", "Signature")


@dataclass(frozen=True, slots=True)
class Credential:
    """The `Credential=` value: access key id and credential scope."""

    access_key_id: str
    date: str  # YYYYMMDD
    region: str
    service: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{TERMINATOR}"


@dataclass(frozen=True, slots=True)
class Authorization:
    """A parsed SigV4 Authorization header."""

    credential: Credential
    signed_headers: list[str]  # lower-case, in the order given
    signature: str


def parse_credential(value: str, *, code: str, prefix: str) -> Credential:
    """Split `AKID/date/region/service/aws4_request`, checking service and terminator.

    Any region is accepted, as CoreWeave does: clients sign with the zone, or with a
    placeholder, and nothing depends on it.
    """
    parts = value.split("/")
    if len(parts) != 5 or not all(parts):
        raise S3Error(code, f"{prefix}the Credential is mal-formed; expecting {_CREDENTIAL_SHAPE}.")
    access_key_id, date, region, service, terminator = parts
    if len(date) != 8 or not date.isascii() or not date.isdigit():
        raise S3Error(code, f'{prefix}Invalid credential date "{date}". Expecting YYYYMMDD.')
    if service != SERVICE:
        raise S3Error(code, f'{prefix}incorrect service "{service}". This endpoint belongs to "{SERVICE}".')
    if terminator != TERMINATOR:
        raise S3Error(code, f'{prefix}incorrect terminal "{terminator}". This endpoint uses "{TERMINATOR}".')
    return Credential(access_key_id, date, region, service)


def parse_signed_headers(value: str, *, code: str, prefix: str) -> list[str]:
    names = value.split(";")
    if not all(names):
        raise S3Error(code, f'{prefix}the SignedHeaders value "{value}" contains an empty header name.')
    return [n.lower() for n in names]


def parse_authorization(value: str) -> Authorization:
    """Parse a header that starts with AWS4-HMAC-SHA256 (the caller checked that)."""
    rest = value[len(ALGORITHM) :]
    if rest and not rest[0].isspace():
        raise S3Error(
            "InvalidArgument",
            "Unsupported Authorization Type",
            fields={"ArgumentName": "Authorization", "ArgumentValue": value.split(" ", 1)[0]},
        )
    found: dict[str, str] = {}
    for component in rest.split(","):
        component = component.strip()
        if not component:
            continue
        name, eq, val = component.partition("=")
        name = name.strip()
        if not eq or name not in _COMPONENTS or name in found:
            raise S3Error(
                "AuthorizationHeaderMalformed",
                f'{_HEADER_PREFIX}the authorization component "{component}" is malformed.',
            )
        found[name] = val.strip()
    missing = [c for c in _COMPONENTS if c not in found]
    if missing:
        raise S3Error(
            "AuthorizationHeaderMalformed",
            f"{_HEADER_PREFIX}the authorization header requires three components: "
            f"Credential, SignedHeaders, and Signature (missing {', '.join(missing)}).",
        )
    credential = parse_credential(
        found["Credential"], code="AuthorizationHeaderMalformed", prefix=_HEADER_PREFIX
    )
    signed_text = found["SignedHeaders"]
    signed = parse_signed_headers(signed_text, code="AuthorizationHeaderMalformed", prefix=_HEADER_PREFIX)
    if not found["Signature"]:
        raise S3Error("AuthorizationHeaderMalformed", f"{_HEADER_PREFIX}the Signature is empty.")
    return Authorization(credential, signed, found["Signature"])


def parse_amz_date(value: str) -> datetime | None:
    """`YYYYMMDDTHHMMSSZ` as a UTC datetime, or None if it is not exactly that."""
    if len(value) != 16 or value[8] != "T" or value[15] != "Z":
        return None
    digits = value[:8] + value[9:15]
    if not digits.isascii() or not digits.isdigit():
        return None
    try:
        return datetime(
            int(value[0:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[9:11]),
            int(value[11:13]),
            int(value[13:15]),
            tzinfo=UTC,
        )
    except ValueError:
        return None


def check_credential_date(credential: Credential, amz_date: str, *, code: str, prefix: str) -> None:
    """The scope's date must be the request's date (the signing key is derived from it)."""
    if credential.date != amz_date[:8]:
        raise S3Error(
            code,
            f'{prefix}Invalid credential date "{credential.date}". '
            f'This date is not the same as X-Amz-Date: "{amz_date[:8]}".',
        )
