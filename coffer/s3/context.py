"""What a handler is given: the parsed request, the named operation, who is calling, the bucket."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from anyio import to_thread

from coffer.authz import Origin
from coffer.identity.models import AccessKey
from coffer.node import Node
from coffer.s3.request import S3Request
from coffer.s3.router import Operation
from coffer.s3.sigv4 import AuthResult, SignedRequest
from coffer.storage.models import Bucket

T = TypeVar("T")


def origin_of(request: S3Request) -> Origin:
    """aws:SourceIp and aws:SecureTransport of a request, as the policy engine sees them."""
    return Origin(source_ip=request.source_ip or None, secure=request.scheme == "https")


async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking core call (SQL, file metadata) on the thread pool, off the event loop."""
    if kwargs:
        return await to_thread.run_sync(functools.partial(fn, *args, **kwargs))
    return await to_thread.run_sync(fn, *args)


@dataclass
class Context:
    node: Node
    request: S3Request
    signed: SignedRequest
    op: Operation
    auth: AuthResult | None
    bucket: Bucket | None
    source_bucket: Bucket | None = None  # CopyObject / UploadPartCopy

    @property
    def key(self) -> AccessKey | None:
        return self.auth.credentials.key if self.auth else None

    @property
    def principal(self) -> str:
        return self.auth.credentials.key.principal_name if self.auth else "anonymous"

    @property
    def anonymous(self) -> bool:
        return self.auth is None

    @property
    def versioned(self) -> bool:
        return bool(self.bucket and self.bucket.versioning)

    def require_bucket(self) -> Bucket:
        assert self.bucket is not None, f"{self.op.name} is routed with a bucket"
        return self.bucket

    def require_key(self) -> str:
        assert self.op.key is not None, f"{self.op.name} is routed with a key"
        return self.op.key

    def authorize(self, op: Operation, bucket: Bucket | None) -> None:
        """A related operation (a copy's source, one key of a multi-delete) goes through the
        same single door as the request itself."""
        self.node.authz.authorize_s3(self.key, op, bucket, origin_of(self.request))
