"""Client-side SigV4, computed ahead of time so that no signing happens while a load runs.

A SigV4 signature needs no nonce: the same signed request may be sent any number of
times while its `x-amz-date` is within the server's skew window (15 minutes), and a
presigned URL until it expires. The load generators replay pools of requests signed here.
Keys and buckets used by the benchmark are plain ASCII, so paths need no escaping games.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED = "UNSIGNED-PAYLOAD"
REGION = "us-east-1"


def _quote(value: str) -> str:
    return quote(value, safe="-_.~")


def canonical_query(query: list[tuple[str, str]]) -> str:
    return "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(query))


@dataclass(frozen=True)
class Signer:
    access_key_id: str
    secret_key: str
    region: str = REGION
    service: str = "s3"

    def _key(self, day: str) -> bytes:
        key = hmac.digest(("AWS4" + self.secret_key).encode(), day.encode(), "sha256")
        for part in (self.region, self.service, "aws4_request"):
            key = hmac.digest(key, part.encode(), "sha256")
        return key

    def _signature(self, stamp: str, canonical: str) -> str:
        scope = f"{stamp[:8]}/{self.region}/{self.service}/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        return hmac.new(self._key(stamp[:8]), to_sign.encode(), "sha256").hexdigest()

    def headers(
        self,
        method: str,
        host: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        *,
        payload_sha256: str = EMPTY_SHA256,
        extra: dict[str, str] | None = None,
        now: datetime | None = None,
    ) -> list[tuple[str, str]]:
        """Header auth: the headers to send (host included), in a stable order."""
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        signed = {"host": host, "x-amz-content-sha256": payload_sha256, "x-amz-date": stamp}
        signed.update({k.lower(): v for k, v in (extra or {}).items()})
        names = sorted(signed)
        canonical = "\n".join(
            [
                method,
                quote(path, safe="/-_.~"),
                canonical_query(query or []),
                "".join(f"{n}:{signed[n].strip()}\n" for n in names),
                ";".join(names),
                payload_sha256,
            ]
        )
        signature = self._signature(stamp, canonical)
        scope = f"{stamp[:8]}/{self.region}/{self.service}/aws4_request"
        auth = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key_id}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return [(n, signed[n]) for n in names] + [("authorization", auth)]

    def presign(
        self,
        method: str,
        host: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        *,
        expires: int = 3600,
        now: datetime | None = None,
    ) -> str:
        """Query auth: the request target (path?query) of a presigned URL, UNSIGNED-PAYLOAD."""
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        scope = f"{stamp[:8]}/{self.region}/{self.service}/aws4_request"
        params = [
            *(query or []),
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", f"{self.access_key_id}/{scope}"),
            ("X-Amz-Date", stamp),
            ("X-Amz-Expires", str(expires)),
            ("X-Amz-SignedHeaders", "host"),
        ]
        qs = canonical_query(params)
        canonical = "\n".join([method, quote(path, safe="/-_.~"), qs, f"host:{host}\n", "host", UNSIGNED])
        return f"{quote(path, safe='/-_.~')}?{qs}&X-Amz-Signature={self._signature(stamp, canonical)}"
