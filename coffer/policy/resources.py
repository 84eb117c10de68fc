"""Resource names in policies and requests.

A request names its resource in CoreWeave's short form: `bucket` for bucket-level
operations, `bucket/key` for object operations and `*` for global ones. Organization
policies use the same short forms as patterns (`*`, `bucket`, `bucket/*`,
`bucket/prefix*`, with `*` and `?` wildcards anywhere). Bucket policies use S3 ARNs
(`arn:aws:s3:::bucket/key*`), which the engine strips to the same short form so one
matcher serves both languages.
"""

from __future__ import annotations

import re

from coffer.policy.patterns import has_wildcard

GLOBAL_RESOURCE = "*"
S3_ARN_PREFIX = "arn:aws:s3:::"
MAX_RESOURCE_LENGTH = 2048
_BUCKET_PATTERN = re.compile(r"[a-z0-9.*?-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ResourceError(ValueError):
    """A resource entry a policy may not use; the message says why."""


def request_resource(bucket: str | None, key: str | None = None) -> str:
    """The resource string a request is evaluated against."""
    if bucket is None:
        return GLOBAL_RESOURCE
    return bucket if key is None else f"{bucket}/{key}"


def check_short_resource(entry: str) -> str:
    """Validate an organization-policy resource pattern; returns it unchanged."""
    if entry == GLOBAL_RESOURCE:
        return entry
    if not entry:
        raise ResourceError("resource must not be empty")
    if entry.lower().startswith("arn:"):
        raise ResourceError(
            f"resource {entry!r} is an ARN; organization policies require short forms: "
            "'*', '<bucket>', '<bucket>/*' or '<bucket>/<prefix>*'"
        )
    if len(entry) > MAX_RESOURCE_LENGTH:
        raise ResourceError(f"resource is longer than {MAX_RESOURCE_LENGTH} characters")
    if _CONTROL.search(entry):
        raise ResourceError(f"resource {entry!r} contains control characters")
    bucket, sep, key = entry.partition("/")
    if not _BUCKET_PATTERN.fullmatch(bucket):
        raise ResourceError(
            f"resource {entry!r} does not start with a bucket name (lower-case letters, digits, "
            "'-', '.', or the wildcards '*' and '?')"
        )
    if sep and not key:
        raise ResourceError(f"resource {entry!r} has an empty key pattern; use '{bucket}/*' for every object")
    return entry


def bucket_literal(pattern: str) -> str | None:
    """The one bucket a pattern can match, or None if its bucket part has a wildcard.

    `bucket/pre*` can only match resources of `bucket`, so the engine indexes statements
    by it; `buck*` or `*` could match any bucket (and `*` also the global resource).
    """
    bucket, _, _ = pattern.partition("/")
    return None if has_wildcard(bucket) else bucket


def arn_to_short(arn: str, bucket: str) -> str:
    """Convert a bucket-policy Resource ARN to short form; it must name `bucket` exactly.

    Raises ResourceError("Policy has invalid resource") as S3 does for anything else:
    another bucket, a wildcard in the bucket name, `*`, or a non-S3 ARN.
    """
    if not arn.startswith(S3_ARN_PREFIX):
        raise ResourceError("Policy has invalid resource")
    short = arn[len(S3_ARN_PREFIX) :]
    name, sep, key = short.partition("/")
    if name != bucket or (sep and not key) or _CONTROL.search(short) or len(short) > MAX_RESOURCE_LENGTH:
        raise ResourceError("Policy has invalid resource")
    return short
