"""One S3 endpoint as the benchmark sees it: a host, a signer, and the few calls it makes.

The same code drives Coffer and the peer, path-style, so every difference in the table
comes from the server.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bench.client import Body, Conn, FileBody, Response
from bench.loadgen import raw_request
from bench.signing import EMPTY_SHA256, UNSIGNED, Signer

_UPLOAD_ID = re.compile(rb"<UploadId>([^<]+)</UploadId>")
_NEXT_TOKEN = re.compile(rb"<NextContinuationToken>([^<]+)</NextContinuationToken>")
_KEY_COUNT = re.compile(rb"<KeyCount>(\d+)</KeyCount>")


@dataclass
class Endpoint:
    name: str
    host: str
    port: int
    signer: Signer
    checks_signatures: bool = True

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    def conn(self) -> Conn:
        return Conn(self.host, self.port)

    def headers(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        *,
        sha256: str = EMPTY_SHA256,
        extra: dict[str, str] | None = None,
    ) -> list[tuple[str, str]]:
        return self.signer.headers(method, self.hostport, path, query, payload_sha256=sha256, extra=extra)

    @staticmethod
    def target(path: str, query: list[tuple[str, str]] | None = None) -> str:
        from bench.signing import canonical_query

        return f"{path}?{canonical_query(query)}" if query else path

    # single calls ------------------------------------------------------------------------------
    def call(
        self,
        conn: Conn,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        body: Body = b"",
        *,
        sha256: str | None = None,
        discard: bool = False,
        extra: dict[str, str] | None = None,
    ) -> Response:
        if sha256 is None:
            import hashlib

            sha256 = hashlib.sha256(body).hexdigest() if isinstance(body, bytes) else UNSIGNED
        headers = self.headers(method, path, query, sha256=sha256, extra=extra)
        return conn.request(method, self.target(path, query), headers, body, discard=discard)

    def create_bucket(self, bucket: str) -> None:
        with self.conn() as c:
            self.call(c, "PUT", f"/{bucket}").check(200)

    def put(self, conn: Conn, path: str, body: Body, sha256: str | None = None) -> Response:
        return self.call(conn, "PUT", path, body=body, sha256=sha256).check(200)

    def get(self, conn: Conn, path: str) -> Response:
        return self.call(conn, "GET", path, discard=True).check(200)

    def multipart(
        self, path: str, body: FileBody, part_size: int, part_sha256: list[str], threads: int
    ) -> int:
        """CreateMultipartUpload, UploadPart from `threads` connections, Complete; returns bytes."""
        with self.conn() as c:
            created = self.call(c, "POST", path, [("uploads", "")]).check(200)
            match = _UPLOAD_ID.search(created.body)
            assert match, created.body[:300]
            upload_id = match.group(1).decode()
            count = len(part_sha256)
            etags: list[str] = [""] * count
            conns = [self.conn() for _ in range(threads)]

            def part(i: int) -> None:
                conn = conns[i % threads]
                offset = body.offset + i * part_size
                size = min(part_size, body.offset + body.count - offset)
                query = [("partNumber", str(i + 1)), ("uploadId", upload_id)]
                r = self.call(
                    conn, "PUT", path, query, FileBody(body.file, offset, size), sha256=part_sha256[i]
                ).check(200)
                etags[i] = r.headers["etag"]

            # Each connection takes parts i, i+threads, ... in order, as SDK transfer managers do.
            def lane(t: int) -> None:
                for i in range(t, count, threads):
                    part(i)

            try:
                with ThreadPoolExecutor(threads) as pool:
                    list(pool.map(lane, range(threads)))
            finally:
                for conn in conns:
                    conn.close()
            xml = "<CompleteMultipartUpload>" + "".join(
                f"<Part><PartNumber>{i + 1}</PartNumber><ETag>{e}</ETag></Part>" for i, e in enumerate(etags)
            )
            xml += "</CompleteMultipartUpload>"
            self.call(c, "POST", path, [("uploadId", upload_id)], xml.encode()).check(200)
        return body.count

    def list_page(
        self,
        conn: Conn,
        bucket: str,
        *,
        token: str = "",
        start_after: str = "",
        delimiter: str = "",
        max_keys: int = 1000,
    ) -> tuple[int, str]:
        """One ListObjectsV2 page: (keys and CommonPrefixes in it, next continuation token or "")."""
        query = [("list-type", "2"), ("max-keys", str(max_keys))]
        if delimiter:
            query.insert(0, ("delimiter", delimiter))
        if token:
            query.append(("continuation-token", token))
        if start_after:
            query.append(("start-after", start_after))
        r = self.call(conn, "GET", f"/{bucket}", query).check(200)
        count = _KEY_COUNT.search(r.body)
        nxt = _NEXT_TOKEN.search(r.body)
        return (int(count.group(1)) if count else 0), (nxt.group(1).decode() if nxt else "")

    # request pools for the load generator -------------------------------------------------------
    def signed_pool(
        self, method: str, paths: list[str], body: bytes = b"", query: list[tuple[str, str]] | None = None
    ) -> list[bytes]:
        import hashlib

        sha = hashlib.sha256(body).hexdigest() if method in ("PUT", "POST") else EMPTY_SHA256
        return [
            raw_request(method, self.target(p, query), self.headers(method, p, query, sha256=sha), body)
            for p in paths
        ]

    def presigned_pool(self, method: str, paths: list[str], body: bytes = b"") -> list[bytes]:
        return [
            raw_request(
                method, self.signer.presign(method, self.hostport, p), [("Host", self.hostport)], body
            )
            for p in paths
        ]
