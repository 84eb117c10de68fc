"""The S3 endpoint: parse, authenticate, route, authorize, handle, respond — in that order.

A plain ASGI callable rather than a Starlette router: S3 routing is by method, bucket/key
presence and sub-resource, which `coffer.s3.router` does in one table, and the hot path
stays a handful of awaits. Every outcome — success, S3 error, unexpected exception —
leaves through `responses.send`, which stamps x-amz-request-id and x-amz-id-2.

Health: `/_coffer/healthz` always answers (no bucket can be called `_coffer`); the
legacy `/healthz` answers only to an unsigned GET while no bucket named `healthz`
exists, so it never shadows a real bucket.
"""

from __future__ import annotations

import logging
import time

from starlette.types import Receive, Scope, Send

from coffer import metrics
from coffer.auditlog import DataRequest
from coffer.auditlog.events import LOGGED_OPERATIONS
from coffer.errors import CofferError, S3Error
from coffer.node import Node
from coffer.s3 import throttle
from coffer.s3.context import Context, origin_of
from coffer.s3.handlers import HANDLERS, cors
from coffer.s3.request import ClientDisconnected, S3Request
from coffer.s3.responses import S3Response, as_s3_error, error_response, new_request_id, send
from coffer.s3.router import Operation, route
from coffer.s3.sigv4 import AuthResult, authenticate
from coffer.storage.errors import NoSuchBucket
from coffer.storage.models import Bucket
from coffer.web.http import RequestMeter, ResponseMeter

log = logging.getLogger("coffer.s3")

HEALTH_PATH = "/_coffer/healthz"
LEGACY_HEALTH_PATH = "/healthz"


def _health() -> S3Response:
    return S3Response(200, [("content-type", "application/json")], b'{"status":"ok"}')


# SDKs always send GetBucketLocation path-style (the bucket's region is what they are
# asking for), so strict mode lets that one through.
PATH_STYLE_OK = frozenset({"GetBucketLocation"})
# Operations whose handler authorizes through the same door once it knows what to ask:
# PostObject is signed inside the body (a POST policy), so who signed and which key the form
# names come from the form; DeleteObjects is decided key by key as s3:DeleteObject on
# bucket/key (as in AWS), so a principal allowed to delete under a prefix can use it, and a
# refused key is an <Error> entry rather than a refusal of the whole request.
SELF_AUTHORIZED = frozenset({"PostObject", "DeleteObjects"})
PATH_STYLE_REFUSED = (
    "Path-style requests are not supported: address the bucket as <bucket>.{domain} (virtual-hosted style)."
)


class _Seen:
    """What a request revealed on its way in, kept when it is refused later (for its
    audit-log record): the operation, who signed it, the bucket it addressed."""

    __slots__ = ("auth", "bucket", "op")

    def __init__(self) -> None:
        self.op: Operation | None = None
        self.auth: AuthResult | None = None
        self.bucket: Bucket | None = None


class S3App:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.settings = node.settings
        self.lookup = node.keys.credentials
        self.used = node.keys.last_used.record if node.settings.last_used_tracking else None
        self.budget = node.auth_budget
        self.audit_logs = node.audit_logs

    async def __call__(self, scope: Scope, receive: Receive, send_: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        receive = meter = RequestMeter(receive)
        request_id, host_id = new_request_id()
        head = scope["method"] == "HEAD"
        req: S3Request | None = None
        op: Operation | None = None
        auth: AuthResult | None = None
        tracking_send = ResponseMeter(send_)
        seen = _Seen()
        try:
            if scope["path"] == HEALTH_PATH:
                response = _health()
            else:
                req = S3Request(scope, receive, self.settings, request_id, host_id)
                if self._legacy_health(req):
                    response = _health()
                else:
                    op, auth, response = await self._handle(req, seen)
        except ClientDisconnected:
            log.info("client disconnected", extra={"request_id": request_id})
            metrics.observe(metrics.S3, _operation_name(scope, req, op), 499, started, meter.received, 0)
            return
        except CofferError as exc:
            response = self._error(exc, req, scope, request_id, host_id, head)
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id, "method": scope["method"]})
            response = self._error(S3Error("InternalError"), req, scope, request_id, host_id, head)
        if req is not None and req.bucket and req.method != "OPTIONS" and req.header("origin"):
            self._cors(response, req)
        if req is not None and req.body_pending:
            response.headers.append(("connection", "close"))
        if req is not None and seen.op is not None and seen.op.name in LOGGED_OPERATIONS:
            # Before the response leaves: a client that saw it can count on its record.
            self._audit_log(req, seen, response.status, request_id)
        sent = 0
        try:
            sent = await send(response, tracking_send, request_id, host_id, head=head)
        except Exception as exc:
            # Headers are out (a body read failed mid-stream): all we can do is cut the
            # connection so the client sees a short body rather than a wrong one.
            log.error(
                "response failed after it started: %s",
                type(exc).__name__,
                exc_info=not isinstance(exc, OSError),
                extra={"request_id": request_id},
            )
            if not tracking_send.started:
                fallback = self._error(S3Error("InternalError"), req, scope, request_id, host_id, head)
                await send(fallback, send_, request_id, host_id, head=head)
                response = fallback
        name = _operation_name(scope, req, op)
        metrics.observe(metrics.S3, name, response.status, started, meter.received, sent)
        if self.settings.access_log:
            _access_details(scope, req, op, auth, response, request_id)

    # ---------------------------------------------------------------------------------
    async def _handle(
        self, req: S3Request, seen: _Seen
    ) -> tuple[Operation | None, AuthResult | None, S3Response]:
        settings = self.settings
        if req.method == "OPTIONS":
            # A CORS preflight carries no credentials and is answered from the bucket's
            # CORS configuration alone, as S3 does.
            op = route(req.method, req.bucket, req.key, req.query, flags=req.flags)
            return op, None, cors.preflight(req, self.node.storage)
        signed = req.signed()
        client = req.source_ip
        try:
            lookup = throttle.lookup_for(self.budget, client, self.lookup)
            auth = authenticate(signed, lookup, allow_sigv2=settings.sigv2)
        except S3Error as exc:
            throttle.count(self.budget, client, exc)
            metrics.s3_auth_failed(exc.code)
            raise
        seen.auth = auth
        copy_source = None
        has_copy_source = (
            req.method == "PUT" and req.key is not None and req.header("x-amz-copy-source") is not None
        )
        if has_copy_source:
            copy_source = req.copy_source()
        op = route(
            req.method,
            req.bucket,
            req.key,
            req.query,
            flags=req.flags,
            copy_source=copy_source,
            has_copy_source=has_copy_source,
        )
        seen.op = op
        if auth is not None and self.used is not None:  # a genuine signature: the key was used (lastused.py)
            self.used(auth.credentials.key.access_key_id, op.name, client, metrics.S3)
        if (
            settings.strict_coreweave
            and req.path_style
            and op.bucket is not None
            and op.name not in PATH_STYLE_OK
        ):
            domain = settings.s3_domain or "<s3-domain>"
            raise S3Error("InvalidRequest", PATH_STYLE_REFUSED.format(domain=domain))
        if not op.implemented:
            raise S3Error("NotImplemented", op.spec.reason or f"{op.name} is not implemented by Coffer yet.")
        storage = self.node.storage
        key = auth.credentials.key if auth else None
        # Bucket lookups are served from the storage layer's in-memory cache.
        bucket = (
            storage.buckets.get(op.bucket) if op.bucket is not None and op.name != "CreateBucket" else None
        )
        seen.bucket = bucket
        authz, origin = self.node.authz, origin_of(req)
        if op.name not in SELF_AUTHORIZED:
            authz.authorize_s3(key, op, bucket, origin)
        source_bucket = None
        if op.source is not None:
            source_bucket = storage.buckets.get(op.source.bucket)
            read = op.derive(
                "GetObject", bucket=op.source.bucket, key=op.source.key, version_id=op.source.version_id
            )
            authz.authorize_s3(key, read, source_bucket, origin)
        ctx = Context(self.node, req, signed, op, auth, bucket, source_bucket)
        return op, auth, await HANDLERS[op.name](ctx)

    def _audit_log(self, req: S3Request, seen: _Seen, status: int, request_id: str) -> None:
        """The request's data-plane record, for the organization's audit bucket if its
        bucket (or organization) logs them (coffer.auditlog decides)."""
        audit_logs, op = self.audit_logs, seen.op
        if audit_logs is None or op is None:
            return
        request = DataRequest(
            operation=op.name,
            action=op.action,
            bucket=op.bucket,
            key=op.key,
            caller=seen.auth.credentials.key if seen.auth else None,
            source_ip=req.source_ip or None,
            host=req.header("host"),
            request_id=request_id,
            status=status,
        )
        audit_logs.data_plane(request, seen.bucket)

    def _cors(self, response: S3Response, req: S3Request) -> None:
        """CORS headers on an actual response (errors included) when the bucket has rules."""
        assert req.bucket is not None
        try:
            bucket = self.node.storage.buckets.get(req.bucket)
            cors.decorate(response, req, bucket)
        except Exception:  # no such bucket, store unreachable: the response stands as it is
            return

    def _legacy_health(self, req: S3Request) -> bool:
        if req.method != "GET" or req.path != LEGACY_HEALTH_PATH or req.raw_query or req.has_credentials:
            return False
        try:
            self.node.storage.buckets.get("healthz")
        except NoSuchBucket:
            return True
        except CofferError:
            return False
        except Exception:
            return True  # the store is not answering; the process still is
        return False

    def _error(
        self,
        exc: CofferError,
        req: S3Request | None,
        scope: Scope,
        request_id: str,
        host_id: str,
        head: bool,
    ) -> S3Response:
        err = as_s3_error(exc)
        if req is not None:
            if (
                err.code in ("NoSuchBucket", "NoSuchBucketPolicy")
                and req.bucket
                and "BucketName" not in err.fields
            ):
                err.fields["BucketName"] = req.bucket
            if err.code == "NoSuchKey" and req.key and "Key" not in err.fields:
                err.fields["Key"] = req.key
            resource = req.resource
        else:
            resource = scope.get("path", "/")
        if err.status >= 500:
            log.warning("S3 %s: %s", err.code, err.message, extra={"request_id": request_id})
        return error_response(err, resource=resource, request_id=request_id, host_id=host_id, head=head)


def _access_details(
    scope: Scope,
    req: S3Request | None,
    op: Operation | None,
    auth: AuthResult | None,
    response: S3Response,
    request_id: str,
) -> None:
    """What only the S3 face knows, for the port's one access-log line (coffer.web.http.AccessLog).

    Never the query string: presigned URLs carry signatures."""
    scope.setdefault("state", {})["access"] = {
        "request_id": request_id,
        "operation": op.name if op else None,
        "bucket": req.bucket if req else None,
        "key": req.key if req else None,
        "error_code": response.code or None,
        "access_key_id": auth.access_key_id if auth else None,
    }


def _operation_name(scope: Scope, req: S3Request | None, op: Operation | None) -> str:
    """The operation label of a request's metrics; a refused request is routed again for it
    (routing is a table lookup) so that a denied GetObject counts as GetObject."""
    if op is not None:
        return op.name
    if req is None:
        return "Health" if scope["path"] == HEALTH_PATH else metrics.UNROUTED
    if req.method == "GET" and req.path == LEGACY_HEALTH_PATH and not (req.raw_query or req.has_credentials):
        return "Health"
    try:
        copy = req.method == "PUT" and req.key is not None and req.header("x-amz-copy-source") is not None
        return route(req.method, req.bucket, req.key, req.query, flags=req.flags, has_copy_source=copy).name
    except Exception:
        return metrics.UNROUTED


def build_app(node: Node) -> S3App:
    return S3App(node)
