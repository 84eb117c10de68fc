"""A PutObject held between its head and its body, to race another write against it; and
the small helpers the conditional-write tests share.

The PUT goes over a raw socket with `Expect: 100-continue`: the server checks the write's
conditions when the request begins and only then asks for the body (`100 Continue`), so
whatever the test does before `finish()` happens while the conditional write is in
flight, deterministically. Used by the conditional-write tests of this folder.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.support.curl import Reply
from tests.support.s3 import REGION, client_error


def refused(call: Any, **kw: Any) -> tuple[int, str]:
    """(status, S3 code) of a boto3 call that must fail."""
    with pytest.raises(ClientError) as err:
        call(**kw)
    return client_error(err.value)


def completion(bucket: str, key: str, upload_id: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """complete_multipart_upload's arguments for `parts` (PartNumber, ETag, checksums)."""
    return {"Bucket": bucket, "Key": key, "UploadId": upload_id, "MultipartUpload": {"Parts": parts}}


def _read_reply(sock: socket.socket) -> Reply:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"the server closed the connection after {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if status == 100:
        return Reply(100, headers, rest)
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Reply(status, headers, rest[:length])


class HeldPut:
    """PUT `url` (its host is resolved to 127.0.0.1) with `body` and `headers`, signed by
    `key` with an unsigned payload; the body waits for `finish()`. `early` is the answer
    the server gave instead of `100 Continue` (a failed condition), if it did."""

    def __init__(
        self, port: int, key: dict[str, Any], url: str, body: bytes, headers: dict[str, str]
    ) -> None:
        self.body = body
        request = AWSRequest(method="PUT", url=url, data=b"", headers={**headers, "Expect": "100-continue"})
        signer = S3SigV4Auth(Credentials(key["accessKeyId"], key["secretKey"]), "s3", REGION)
        signer.payload = lambda _request: "UNSIGNED-PAYLOAD"
        signer.add_auth(request)
        prepared = request.prepare()
        path = url.split("://", 1)[1]
        host, _, rest = path.partition("/")
        lines = [f"PUT /{rest} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
        lines += [
            f"{k}: {v}" for k, v in prepared.headers.items() if k.lower() not in ("host", "content-length")
        ]
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        first = _read_reply(self.sock)
        self.early = None if first.status == 100 else first

    def finish(self) -> Reply:
        """Send the body and read the answer (or return the early one)."""
        try:
            if self.early is not None:
                return self.early
            self.sock.sendall(self.body)
            return _read_reply(self.sock)
        finally:
            self.sock.close()
