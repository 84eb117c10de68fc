"""CORS: Put/Get/DeleteBucketCors, the preflight (`OPTIONS`), and the headers of actual requests.

The rules and their matching are the core's (`coffer.storage.cors`); this module reads
and writes `<CORSConfiguration>` and speaks the HTTP side:

- A preflight is answered without authentication, as S3 does: no `Origin` is 400
  BadRequest; a missing or unknown `Access-Control-Request-Method` is 400 BadRequest; a
  bucket that does not exist, has no configuration, or whose rules admit no part of the
  request is 403 AccessForbidden, with S3's "CORSResponse: ..." messages.
- An actual request with an `Origin` to a bucket with a configuration gets
  `Vary: Origin, Access-Control-Request-Headers, Access-Control-Request-Method`; when a
  rule admits its origin and method, also `Access-Control-Allow-Origin`, `-Allow-Methods`,
  `-Expose-Headers`, `-Max-Age` and `-Allow-Credentials`. Errors are decorated too, so a
  browser can read them.
"""

from __future__ import annotations

from functools import lru_cache

from coffer.errors import S3Error
from coffer.s3 import xml
from coffer.s3.context import Context, run
from coffer.s3.payload import read_small_body
from coffer.s3.request import S3Request
from coffer.s3.responses import S3Response
from coffer.storage import cors
from coffer.storage.cors import CorsRule
from coffer.storage.errors import NoSuchBucket
from coffer.storage.models import Bucket
from coffer.storage.service import Storage

MAX_BODY = 64 * 1024
VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"


@lru_cache(maxsize=1024)
def rules_of(text: str | None) -> tuple[CorsRule, ...]:
    """A bucket's stored configuration, parsed once per distinct text."""
    return tuple(cors.loads(text))


def _texts(element: object, name: str) -> tuple[str, ...]:
    return tuple((c.text or "").strip() for c in xml.children(element, name))  # type: ignore[arg-type]


def parse_configuration(raw: bytes) -> list[CorsRule]:
    root = xml.parse(raw, "CORSConfiguration")
    rules: list[CorsRule] = []
    for element in xml.children(root, "CORSRule"):
        max_age_text = xml.child_text(element, "MaxAgeSeconds")
        max_age: int | None = None
        if max_age_text is not None:
            try:
                max_age = int(max_age_text.strip())
            except ValueError:
                raise S3Error("MalformedXML") from None
        rule_id = xml.child_text(element, "ID")
        rules.append(
            CorsRule(
                allowed_methods=_texts(element, "AllowedMethod"),
                allowed_origins=_texts(element, "AllowedOrigin"),
                allowed_headers=_texts(element, "AllowedHeader"),
                expose_headers=_texts(element, "ExposeHeader"),
                max_age_seconds=max_age,
                id=rule_id.strip() if rule_id is not None else None,
            )
        )
    cors.validate_rules(rules)
    return rules


async def put_bucket_cors(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    rules = parse_configuration(await read_small_body(ctx, MAX_BODY))
    await run(ctx.node.storage.buckets.update, bucket.name, cors=cors.dumps(rules))
    return S3Response(200)


async def get_bucket_cors(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    rules = rules_of(bucket.cors)
    if not rules:
        raise S3Error("NoSuchCORSConfiguration", fields={"BucketName": bucket.name})
    body: list[xml.Node] = []
    for rule in rules:
        nodes: list[xml.Node] = []
        if rule.id is not None:
            nodes.append(("ID", rule.id))
        nodes += [("AllowedHeader", h) for h in rule.allowed_headers]
        nodes += [("AllowedMethod", m) for m in rule.allowed_methods]
        nodes += [("AllowedOrigin", o) for o in rule.allowed_origins]
        nodes += [("ExposeHeader", h) for h in rule.expose_headers]
        if rule.max_age_seconds is not None:
            nodes.append(("MaxAgeSeconds", rule.max_age_seconds))
        body.append(("CORSRule", nodes))
    return S3Response.xml("CORSConfiguration", body)


async def delete_bucket_cors(ctx: Context) -> S3Response:
    bucket = ctx.require_bucket()
    await run(ctx.node.storage.buckets.update, bucket.name, cors=None)
    return S3Response(204)


def _allow_headers(rule: CorsRule, origin: str, pattern: str) -> list[tuple[str, str]]:
    headers = [
        ("access-control-allow-origin", "*" if pattern == "*" else origin),
        ("access-control-allow-methods", ", ".join(rule.allowed_methods)),
    ]
    if rule.expose_headers:
        headers.append(("access-control-expose-headers", ", ".join(rule.expose_headers)))
    if rule.max_age_seconds is not None:
        headers.append(("access-control-max-age", str(rule.max_age_seconds)))
    if pattern != "*":
        headers.append(("access-control-allow-credentials", "true"))
    return headers


def preflight(req: S3Request, storage: Storage) -> S3Response:
    """Answer `OPTIONS` on a bucket or object URL; no authentication is involved."""
    details = {"Method": req.header("access-control-request-method") or "OPTIONS",
               "ResourceType": "OBJECT" if req.key else "BUCKET"}  # fmt: skip
    origin = req.header("origin")
    if not origin:
        raise S3Error("BadRequest", "Insufficient information. Origin request header needed.")
    method = (req.header("access-control-request-method") or "").strip()
    if method not in cors.METHODS:
        raise S3Error("BadRequest", f"Invalid Access-Control-Request-Method: {method or 'null'}")
    if req.bucket is None:
        raise S3Error("AccessForbidden", "CORSResponse: Bucket not found", fields=details)
    try:
        bucket = storage.buckets.get(req.bucket)
    except NoSuchBucket:
        raise S3Error("AccessForbidden", "CORSResponse: Bucket not found", fields=details) from None
    rules = rules_of(bucket.cors)
    if not rules:
        raise S3Error("AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.", fields=details)
    raw_headers = req.header("access-control-request-headers") or ""
    requested = [h.strip() for h in raw_headers.split(",") if h.strip()]
    found = cors.find_rule(rules, origin, method, requested)
    if found is None:
        raise S3Error("AccessForbidden", fields=details)
    rule, pattern = found
    headers = _allow_headers(rule, origin, pattern)
    if requested:
        headers.append(("access-control-allow-headers", ", ".join(h.lower() for h in requested)))
    headers.append(("vary", VARY))
    return S3Response(200, headers)


def decorate(response: S3Response, req: S3Request, bucket: Bucket) -> None:
    """CORS headers on an actual (non-preflight) response to a request with an Origin."""
    origin = req.header("origin")
    if not origin:
        return
    rules = rules_of(bucket.cors)
    if not rules:
        return
    present = {name for name, _ in response.headers}
    if "access-control-allow-origin" in present:
        return
    found = cors.find_rule(rules, origin, req.method)
    if found is not None:
        response.headers.extend(_allow_headers(found[0], origin, found[1]))
    if "vary" not in present:
        response.headers.append(("vary", VARY))


async def preflight_handler(ctx: Context) -> S3Response:
    """The registry's entry for PreflightRequest (the app answers preflights before
    authentication, through `preflight`; this serves any other caller the same way)."""
    return preflight(ctx.request, ctx.node.storage)
