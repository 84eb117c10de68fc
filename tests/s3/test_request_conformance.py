"""Request parsing the way AWS does it (issue 14): listing parameters echoed as sent, keys and
queries that are not UTF-8, non-ASCII user metadata, Content-Encoding, checksum mismatches,
plain HTTP chunked uploads and POST forms with a checksum field.

Each test talks to a real server with boto3, curl or raw requests signed by botocore and sent
with httpx (for what an SDK will not put on the wire). `tests/s3/test_request_conformance_strict.py`
runs the same tests again, virtual-hosted, on a server started with `--strict-coreweave`: the
CoreWeave reference documents nothing different for any of these, so both modes answer alike.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.header import decode_header
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from coffer import checksums as cks
from tests.s3.test_post import v2_fields, v4_fields
from tests.support.clients import client_env
from tests.support.harness import CofferServer
from tests.support.s3 import NS, REGION, client_error, s3_client, unique

UNSIGNED = "UNSIGNED-PAYLOAD"


@dataclass
class Target:
    """Where and how a module's requests go: path-style here, virtual-hosted in strict mode."""

    server: CofferServer
    key: dict[str, Any]
    virtual: bool = False

    def client(self) -> Any:
        if self.virtual:
            endpoint = f"http://localhost:{self.server.s3_port}"
            return s3_client(self.server, self.key, addressing_style="virtual", endpoint=endpoint)
        return s3_client(self.server, self.key)

    def url(self, bucket: str | None, path: str = "") -> str:
        """`path` is the key as it goes on the wire (already percent-encoded)."""
        if self.virtual and bucket:
            return f"http://{bucket}.localhost:{self.server.s3_port}/{path}"
        return f"{self.server.s3_url}/{bucket}/{path}" if bucket else f"{self.server.s3_url}/"

    def send(
        self,
        method: str,
        bucket: str | None,
        path: str = "",
        *,
        query: str = "",
        headers: dict[str, str] | None = None,
        content: bytes | Iterator[bytes] = b"",
        payload: str | None = None,
        sign: bool = True,
    ) -> httpx.Response:
        """A request signed by botocore's SigV4 signer over the URL as given, sent by httpx.
        A generator `content` goes out with Transfer-Encoding: chunked and no Content-Length."""
        url = self.url(bucket, path) + (f"?{query}" if query else "")
        sent = dict(headers or {})
        if sign:
            request = AWSRequest(method=method, url=url, data=b"", headers=sent)
            signer = S3SigV4Auth(Credentials(self.key["accessKeyId"], self.key["secretKey"]), "s3", REGION)
            if payload is None:
                payload = hashlib.sha256(content).hexdigest() if isinstance(content, bytes) else UNSIGNED
            signer.payload = lambda _request: payload
            signer.add_auth(request)
            sent = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        return httpx.request(method, url, content=content, headers=sent, timeout=60)


@pytest.fixture(scope="module")
def target(server: CofferServer, key: dict[str, Any]) -> Target:
    return Target(server, key)


@pytest.fixture(scope="module")
def client(target: Target) -> Any:
    return target.client()


def _new_bucket(client: Any, prefix: str) -> str:
    name = unique(prefix)
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "US-EAST-04A"})
    return name


@pytest.fixture(scope="module")
def bucket(client: Any) -> str:
    return _new_bucket(client, "conf")


@pytest.fixture(scope="module")
def listed(client: Any) -> str:
    """A bucket holding keys with newlines, and nothing else, for the listing tests."""
    name = _new_bucket(client, "list")
    for k in ("a\nb", "a\nc/d", "plain"):
        client.put_object(Bucket=name, Key=k, Body=b"x")
    return name


def error(r: httpx.Response) -> tuple[int, str, str]:
    root = ElementTree.fromstring(r.content)
    return r.status_code, root.findtext("Code") or "", root.findtext("Message") or ""


def doc(r: httpx.Response) -> ElementTree.Element:
    assert r.status_code == 200, r.text
    return ElementTree.fromstring(r.content)


def gone(client: Any, bucket: str, key: str) -> bool:
    with pytest.raises(ClientError) as err:
        client.head_object(Bucket=bucket, Key=key)
    return client_error(err.value)[0] == 404


def b64(alg: str, data: bytes) -> str:
    return cks.to_header_value(alg, cks.compute(alg, data))


# --- 1. listings -----------------------------------------------------------------------------
def test_empty_continuation_token_is_no_token_and_is_echoed(client: Any, target: Target, listed: str) -> None:
    got = client.list_objects_v2(Bucket=listed, ContinuationToken="")
    assert got["ContinuationToken"] == ""
    assert [o["Key"] for o in got["Contents"]] == ["a\nb", "a\nc/d", "plain"]
    raw = target.send("GET", listed, query="list-type=2&continuation-token=&start-after=a%0Ab")
    assert b"<ContinuationToken></ContinuationToken>" in raw.content
    root = doc(raw)
    # An empty token is no token, so start-after applies.
    assert [c.findtext(f"{NS}Key") for c in root.iter(f"{NS}Contents")] == ["a\nc/d", "plain"]
    # A token that is not one of ours is still refused.
    status, code, _ = error(target.send("GET", listed, query="list-type=2&continuation-token=%21%21"))
    assert (status, code) == (400, "InvalidArgument")


@pytest.mark.parametrize(
    ("query", "echoed"),
    [
        ("list-type=2&prefix=a%0A&delimiter=%0A&start-after=%0A", ["Prefix", "Delimiter", "StartAfter"]),
        ("prefix=a%0A&delimiter=%0A&marker=%0A", ["Prefix", "Delimiter", "Marker"]),
        ("versions&prefix=a%0A&delimiter=%0A&key-marker=%0A", ["Prefix", "Delimiter", "KeyMarker"]),
        ("uploads&prefix=a%0A&delimiter=%0A&key-marker=%0A", ["Prefix", "Delimiter", "KeyMarker"]),
    ],
    ids=["v2", "v1", "versions", "uploads"],
)
def test_control_characters_are_echoed_as_sent(
    target: Target, listed: str, query: str, echoed: list[str]
) -> None:
    """Without encoding-type a newline comes back a newline; with encoding-type=url, %0A."""
    raw = target.send("GET", listed, query=query)
    root = doc(raw)
    for name in echoed:
        assert root.findtext(f"{NS}{name}") == ("a\n" if name == "Prefix" else "\n"), name
    assert root.find(f"{NS}EncodingType") is None
    encoded = doc(target.send("GET", listed, query=query + "&encoding-type=url"))
    for name in echoed:
        assert encoded.findtext(f"{NS}{name}") == ("a%0A" if name == "Prefix" else "%0A"), name
    assert encoded.findtext(f"{NS}EncodingType") == "url"


def test_control_characters_through_boto3(client: Any, listed: str) -> None:
    """boto3 asks for encoding-type=url itself and decodes what AWS encodes, except ListObjects
    v1's <Prefix>, which botocore leaves encoded (against AWS too: boto/botocore#1901)."""
    v2 = client.list_objects_v2(Bucket=listed, Prefix="a\n", Delimiter="/", StartAfter="\n")
    assert (v2["Prefix"], v2["Delimiter"], v2["StartAfter"]) == ("a\n", "/", "\n")
    assert [o["Key"] for o in v2["Contents"]] == ["a\nb"] and v2["CommonPrefixes"] == [{"Prefix": "a\nc/"}]
    versions = client.list_object_versions(Bucket=listed, Prefix="a\n", KeyMarker="\n")
    assert (versions["Prefix"], versions["KeyMarker"]) == ("a\n", "\n")
    v1 = client.list_objects(Bucket=listed, Prefix="a\n", Delimiter="\n", Marker="\n")
    assert (v1["Delimiter"], v1["Marker"]) == ("\n", "\n")
    assert v1["Prefix"] == "a%0A"


def test_characters_xml_cannot_carry(target: Target, listed: str) -> None:
    """A \\x01 is sent as the character reference AWS sends (&#x1;), which XML 1.0 parsers
    refuse: clients that may meet such keys ask for encoding-type=url, as boto3 always does."""
    raw = target.send("GET", listed, query="list-type=2&prefix=%01&delimiter=%0D")
    assert raw.status_code == 200
    assert b"<Prefix>&#x1;</Prefix>" in raw.content and b"<Delimiter>&#xD;</Delimiter>" in raw.content
    encoded = doc(target.send("GET", listed, query="list-type=2&prefix=%01&encoding-type=url"))
    assert encoded.findtext(f"{NS}Prefix") == "%01"


# --- 2. URIs that are not UTF-8 ----------------------------------------------------------------
URI_MESSAGE = "Couldn't parse the specified URI."


@pytest.mark.parametrize("sign", [True, False], ids=["signed", "anonymous"])
def test_keys_that_are_not_utf8(target: Target, bucket: str, sign: bool) -> None:
    for method in ("GET", "PUT", "DELETE"):
        status, code, message = error(target.send(method, bucket, "%AE%8A-", sign=sign))
        assert (status, code, message) == (400, "InvalidURI", URI_MESSAGE), method
    head = target.send("HEAD", bucket, "%AE%8A-", sign=sign)
    assert head.status_code == 400 and head.content == b""


def test_bucket_names_and_query_values_that_are_not_utf8(target: Target, bucket: str) -> None:
    assert error(target.send("GET", bucket, query="list-type=2&prefix=%FF"))[:2] == (400, "InvalidURI")
    assert error(target.send("GET", bucket, query="%C3=1"))[:2] == (400, "InvalidURI")
    if not target.virtual:
        assert error(target.send("GET", "%FFbucket", "key"))[:2] == (400, "InvalidURI")


def raw_request(
    target: Target, method: str, bucket: str, path: bytes, *, sign: bool = False
) -> tuple[int, bytes]:
    """A request written to a socket byte for byte (no client sends these); with `sign`, the
    headers botocore signs for it, without Content-Length. Returns (status, body)."""
    url = target.url(bucket, path.decode("latin-1"))
    lines = {"Host": url.split("/")[2]}
    if sign:
        request = AWSRequest(method=method, url=url, data=b"", headers={})
        signer = S3SigV4Auth(Credentials(target.key["accessKeyId"], target.key["secretKey"]), "s3", REGION)
        signer.payload = lambda _request: UNSIGNED
        signer.add_auth(request)
        lines |= {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
    start = b"/" + path if target.virtual else f"/{bucket}/".encode() + path
    head = "".join(f"{k}: {v}\r\n" for k, v in lines.items()) + "Connection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", target.server.s3_port), timeout=10) as sock:
        sock.sendall(f"{method} ".encode() + start + b" HTTP/1.1\r\n" + head.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def test_raw_bytes_in_the_request_line(target: Target, bucket: str) -> None:
    """Bytes that are not UTF-8, sent unencoded (no client does, a socket can): the HTTP
    parser refuses the request line before any face sees it, with a plain 400."""
    status, _ = raw_request(target, "GET", bucket, b"\xae\x8a-")
    assert status == 400


def test_a_utf8_key_is_a_key(client: Any, bucket: str) -> None:
    """What is valid UTF-8 is a key, control characters included (AWS stores them too)."""
    client.put_object(Bucket=bucket, Key="\xae\x8a-", Body=b"u")
    assert client.get_object(Bucket=bucket, Key="\xae\x8a-")["Body"].read() == b"u"


# --- 3. user metadata --------------------------------------------------------------------------
def _metadata_hook(value: str) -> Callable[..., None]:
    def hook(**kwargs: Any) -> None:  # past boto3's ASCII check, as ceph's s3-tests do
        kwargs["params"]["headers"]["x-amz-meta-meta1"] = value

    return hook


@pytest.mark.parametrize("value", ["Hello World\xe9", "Grüße, ©2024 \u2013 naïve"])
def test_non_ascii_metadata_round_trips_through_boto3(target: Target, bucket: str, value: str) -> None:
    """botocore sends the value as UTF-8 bytes and reads response headers as latin-1: Coffer
    stores the text and answers it in latin-1, so boto3 gets back the string it sent."""
    put = target.client()
    put.meta.events.register("before-call.s3.PutObject", _metadata_hook(value))
    put.put_object(Bucket=bucket, Key="meta", Body=b"bar")
    got = target.client().get_object(Bucket=bucket, Key="meta")
    if all(ord(c) < 256 for c in value):
        assert got["Metadata"]["meta1"] == value
    else:  # beyond latin-1 no raw header can reach boto3 intact: the RFC 2047 word AWS sends
        assert _rfc2047(got["Metadata"]["meta1"]) == value
    assert target.client().head_object(Bucket=bucket, Key="meta")["Metadata"] == got["Metadata"]


def _rfc2047(value: str) -> str:
    parts = decode_header(value)
    return "".join(p.decode(charset or "ascii") if isinstance(p, bytes) else p for p, charset in parts)


def test_metadata_beyond_latin1_comes_back_rfc2047(target: Target, bucket: str) -> None:
    put = target.client()
    put.meta.events.register("before-call.s3.PutObject", _metadata_hook("中文 €"))
    put.put_object(Bucket=bucket, Key="meta-cjk", Body=b"bar")
    value = target.client().head_object(Bucket=bucket, Key="meta-cjk")["Metadata"]["meta1"]
    assert value.startswith("=?UTF-8?") and value.isascii()
    assert _rfc2047(value) == "中文 €"


def test_rfc2047_metadata_is_decoded_before_it_is_stored(target: Target, bucket: str) -> None:
    """AWS: encoded words are 'character decoded as per RFC 2047 before storing'. An ASCII-only
    client (aws CLI, boto3 without hooks) can store non-ASCII text this way."""
    client = target.client()
    word = "=?UTF-8?B?" + base64.b64encode("café".encode()).decode() + "?="
    client.put_object(Bucket=bucket, Key="meta-word", Body=b"w", Metadata={"m": word, "plain": "a=?b"})
    got = client.head_object(Bucket=bucket, Key="meta-word")["Metadata"]
    assert got == {"m": "café", "plain": "a=?b"}
    control = "=?UTF-8?Q?=04mymeta?="
    client.put_object(Bucket=bucket, Key="meta-ctl", Body=b"w", Metadata={"m": control})
    back = client.head_object(Bucket=bucket, Key="meta-ctl")["Metadata"]["m"]
    assert back.startswith("=?UTF-8?B?") and _rfc2047(back) == "\x04mymeta"


def test_latin1_metadata_from_curl(target: Target, bucket: str, tmp_path: Path, client: Any) -> None:
    """curl signs the bytes it sends: one latin-1 byte (as browsers and Node send 'é') is 'é'."""
    if target.virtual:
        pytest.skip("curl resolves <bucket>.localhost itself; covered path-style")
    body = tmp_path / "b.txt"
    body.write_bytes(b"c")
    user = f"{target.key['accessKeyId']}:{target.key['secretKey']}"
    argv = [
        b"curl",
        b"-sS",
        b"--aws-sigv4",
        f"aws:amz:{REGION}:s3".encode(),
        b"--user",
        user.encode(),
        b"-o",
        b"/dev/null",
        b"-w",
        b"%{http_code}",
        b"-T",
        str(body).encode(),
        b"-H",
        b"x-amz-meta-m: caf\xe9",
        target.url(bucket, "meta-curl").encode(),
    ]
    done = subprocess.run(
        argv, env=client_env(tmp_path / "home"), capture_output=True, timeout=60, check=True
    )
    assert done.stdout == b"200", done
    assert client.head_object(Bucket=bucket, Key="meta-curl")["Metadata"] == {"m": "café"}


def test_metadata_size_counts_utf8_bytes(target: Target, bucket: str) -> None:
    put = target.client()
    put.meta.events.register("before-call.s3.PutObject", _metadata_hook("é" * 1022))  # 5 + 2,044 bytes
    with pytest.raises(ClientError) as err:
        put.put_object(Bucket=bucket, Key="meta-big", Body=b"x")
    assert client_error(err.value) == (400, "MetadataTooLarge")


# --- 4. Content-Encoding -----------------------------------------------------------------------
def test_content_encoding_is_stored_as_sent(client: Any, target: Target, bucket: str) -> None:
    client.put_object(Bucket=bucket, Key="ce", Body=b"x", ContentEncoding="deflate, gzip")
    assert client.head_object(Bucket=bucket, Key="ce")["ContentEncoding"] == "deflate, gzip"
    data = b"chunked content"
    cases = {
        "aws-chunked": None,
        "aws-chunked, gzip": "gzip",
        "deflate, aws-chunked,  gzip": "deflate,  gzip",
        "gzip,aws-chunked": "gzip",
        "AWS-Chunked": None,
    }
    for sent, stored in cases.items():
        body = f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n"
        headers = {"Content-Encoding": sent, "x-amz-decoded-content-length": str(len(data))}
        r = target.send(
            "PUT",
            bucket,
            "ce-chunked",
            headers=headers,
            content=body,
            payload="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        )
        assert r.status_code == 200, r.text
        got = client.head_object(Bucket=bucket, Key="ce-chunked")
        assert got.get("ContentEncoding") == stored, sent
    # Multipart uploads keep it too.
    upload = client.create_multipart_upload(Bucket=bucket, Key="ce-mp", ContentEncoding="br, gzip")
    part = client.upload_part(
        Bucket=bucket, Key="ce-mp", UploadId=upload["UploadId"], PartNumber=1, Body=b"p"
    )
    client.complete_multipart_upload(
        Bucket=bucket,
        Key="ce-mp",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert client.head_object(Bucket=bucket, Key="ce-mp")["ContentEncoding"] == "br, gzip"


# --- 5. checksums that do not match ----------------------------------------------------------
@pytest.mark.parametrize("alg", cks.CHECKSUM_ALGORITHMS)
def test_checksum_mismatch_is_bad_digest(client: Any, target: Target, bucket: str, alg: str) -> None:
    data, other = b"the body", b"another body"
    name = cks.display_name(alg)
    with pytest.raises(ClientError) as err:
        client.put_object(Bucket=bucket, Key=f"bad-{alg}", Body=data, **{f"Checksum{name}": b64(alg, other)})
    assert client_error(err.value) == (400, "BadDigest")
    assert (
        err.value.response["Error"]["Message"]
        == f"The {name} you specified did not match the calculated checksum."
    )
    assert gone(client, bucket, f"bad-{alg}")
    r = target.send(
        "PUT", bucket, f"raw-{alg}", headers={f"x-amz-checksum-{alg}": b64(alg, other)}, content=data
    )
    assert error(r)[:2] == (400, "BadDigest")
    # A value that is not a digest at all is InvalidRequest, as AWS answers it.
    r = target.send("PUT", bucket, f"raw-{alg}", headers={f"x-amz-checksum-{alg}": "bad"}, content=data)
    assert error(r) == (400, "InvalidRequest", f"Value for x-amz-checksum-{alg} header is invalid.")
    assert gone(client, bucket, f"raw-{alg}")
    # UploadPart alike; the upload stays open.
    upload = client.create_multipart_upload(Bucket=bucket, Key=f"mp-{alg}")["UploadId"]
    with pytest.raises(ClientError) as err:
        client.upload_part(
            Bucket=bucket,
            Key=f"mp-{alg}",
            UploadId=upload,
            PartNumber=1,
            Body=data,
            **{f"Checksum{name}": b64(alg, other)},
        )
    assert client_error(err.value) == (400, "BadDigest")
    assert client.list_parts(Bucket=bucket, Key=f"mp-{alg}", UploadId=upload).get("Parts", []) == []
    client.abort_multipart_upload(Bucket=bucket, Key=f"mp-{alg}", UploadId=upload)


def test_trailing_checksum_mismatch_is_bad_digest(client: Any, target: Target, bucket: str) -> None:
    data = b"a trailer body"
    for alg in ("sha256", "crc64nvme"):
        body = (
            f"{len(data):x}\r\n".encode()
            + data
            + b"\r\n0\r\n"
            + f"x-amz-checksum-{alg}:{b64(alg, b'other')}\r\n\r\n".encode()
        )
        headers = {
            "Content-Encoding": "aws-chunked",
            "x-amz-decoded-content-length": str(len(data)),
            "x-amz-trailer": f"x-amz-checksum-{alg}",
        }
        r = target.send(
            "PUT",
            bucket,
            "trail",
            headers=headers,
            content=body,
            payload="STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        )
        assert error(r)[:2] == (400, "BadDigest"), alg
    assert gone(client, bucket, "trail")


def test_content_md5_keeps_its_own_codes(client: Any, target: Target, bucket: str) -> None:
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    assert error(target.send("PUT", bucket, "md5", headers={"Content-MD5": wrong}, content=b"x")) == (
        400,
        "BadDigest",
        "The Content-MD5 you specified did not match what was received.",
    )
    assert error(target.send("PUT", bucket, "md5", headers={"Content-MD5": "nope"}, content=b"x"))[:2] == (
        400,
        "InvalidDigest",
    )
    assert gone(client, bucket, "md5")


def test_sdk_algorithm_that_names_another_checksum(target: Target, bucket: str) -> None:
    headers = {"x-amz-sdk-checksum-algorithm": "SHA256", "x-amz-checksum-crc32": b64("crc32", b"x")}
    r = target.send("PUT", bucket, "sdk", headers=headers, content=b"x")
    assert error(r) == (400, "InvalidRequest", "Value for x-amz-sdk-checksum-algorithm header is invalid.")


# --- 6. plain HTTP chunked uploads -------------------------------------------------------------
def _pieces(data: bytes, size: int = 7) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.mark.parametrize("signed_payload", [False, True], ids=["unsigned-payload", "sha256"])
def test_chunked_put_object(client: Any, target: Target, bucket: str, signed_payload: bool) -> None:
    data = b"streamed without a length " * 301
    payload = hashlib.sha256(data).hexdigest() if signed_payload else UNSIGNED
    headers = {"x-amz-checksum-crc32": b64("crc32", data), "Content-Type": "text/plain"}
    r = target.send("PUT", bucket, "chunked", headers=headers, content=_pieces(data), payload=payload)
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = client.get_object(Bucket=bucket, Key="chunked", ChecksumMode="ENABLED")
    assert got["Body"].read() == data and got["ContentLength"] == len(data)
    assert got["ChecksumCRC32"] == b64("crc32", data) and got["ContentType"] == "text/plain"


def test_chunked_put_is_verified(client: Any, target: Target, bucket: str) -> None:
    data = b"the real body"
    wrong = hashlib.sha256(b"another body").hexdigest()
    r = target.send("PUT", bucket, "chunked-bad", content=_pieces(data), payload=wrong)
    assert error(r)[:2] == (400, "XAmzContentSHA256Mismatch")
    r = target.send(
        "PUT",
        bucket,
        "chunked-bad",
        content=_pieces(data),
        headers={"x-amz-checksum-sha1": b64("sha1", b"no")},
    )
    assert error(r)[:2] == (400, "BadDigest")
    assert gone(client, bucket, "chunked-bad")


def test_chunked_upload_part(client: Any, target: Target, bucket: str) -> None:
    first, last = b"a" * (5 << 20), b"the last part"
    upload = client.create_multipart_upload(Bucket=bucket, Key="chunked-mp")["UploadId"]
    etags = []
    for number, data in ((1, first), (2, last)):
        r = target.send(
            "PUT",
            bucket,
            "chunked-mp",
            query=f"partNumber={number}&uploadId={upload}",
            content=_pieces(data, 1 << 16),
        )
        assert r.status_code == 200, r.text
        etags.append(r.headers["etag"])
    parts = [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]
    client.complete_multipart_upload(
        Bucket=bucket, Key="chunked-mp", UploadId=upload, MultipartUpload={"Parts": parts}
    )
    assert client.get_object(Bucket=bucket, Key="chunked-mp")["Body"].read() == first + last


def test_chunked_put_from_curl(target: Target, bucket: str, client: Any, tmp_path: Path) -> None:
    """`curl -T -` streams stdin with Transfer-Encoding: chunked, as RGW and MinIO accept."""
    if target.virtual:
        pytest.skip("curl resolves <bucket>.localhost itself; covered path-style")
    data = b"from curl's stdin\n" * 1000
    user = f"{target.key['accessKeyId']}:{target.key['secretKey']}"
    argv = [
        "curl",
        "-sS",
        "--aws-sigv4",
        f"aws:amz:{REGION}:s3",
        "--user",
        user,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-T",
        "-",
        target.url(bucket, "curl-stdin"),
    ]
    done = subprocess.run(
        argv, input=data, env=client_env(tmp_path / "home"), capture_output=True, timeout=60, check=True
    )
    assert done.stdout == b"200", done
    assert client.get_object(Bucket=bucket, Key="curl-stdin")["Body"].read() == data


def test_no_length_and_not_chunked_is_still_missing_content_length(target: Target, bucket: str) -> None:
    """Neither Content-Length nor Transfer-Encoding: HTTP/1.1 says no body, S3 says 411."""
    status, body = raw_request(target, "PUT", bucket, b"nolen", sign=True)
    assert status == 411 and b"<Code>MissingContentLength</Code>" in body


# --- 7. POST forms with a checksum field -------------------------------------------------------
def _v4_form(target: Target, bucket: str, fields: dict[str, str], conditions: list[Any]) -> dict[str, str]:
    return v4_fields(target.key, bucket, conditions, fields=fields)


def _post(target: Target, bucket: str, fields: dict[str, str], data: bytes) -> httpx.Response:
    url = target.url(bucket)
    return httpx.post(url, data=fields, files={"file": ("f.txt", data, "text/plain")}, timeout=60)


def test_post_checksum_field_is_verified_and_stored(client: Any, target: Target, bucket: str) -> None:
    """As ceph's test_post_object_upload_checksum: the checksum field needs no condition (it can
    only refuse an upload, never widen what the policy allows); a condition on it still holds."""
    data = b"posted with a checksum" * 90
    conditions: list[Any] = [["starts-with", "$key", "post"], ["content-length-range", 0, 1 << 20]]
    for alg in cks.CHECKSUM_ALGORITHMS:
        fields = _v4_form(
            target, bucket, {"key": f"post-{alg}", f"x-amz-checksum-{alg}": b64(alg, data)}, conditions
        )
        r = _post(target, bucket, fields, data)
        assert r.status_code == 204, r.text
        assert r.headers[f"x-amz-checksum-{alg}"] == b64(alg, data)
        got = client.head_object(Bucket=bucket, Key=f"post-{alg}", ChecksumMode="ENABLED")
        assert got[f"Checksum{cks.display_name(alg)}"] == b64(alg, data)
    named = _v4_form(
        target,
        bucket,
        {"key": "post-named", "x-amz-checksum-algorithm": "SHA1", "x-amz-checksum-sha1": b64("sha1", data)},
        conditions,
    )
    assert _post(target, bucket, named, data).status_code == 204
    # The algorithm alone: computed and stored.
    alone = _v4_form(target, bucket, {"key": "post-alone", "x-amz-checksum-algorithm": "CRC32C"}, conditions)
    r = _post(target, bucket, alone, data)
    assert r.status_code == 204 and r.headers["x-amz-checksum-crc32c"] == b64("crc32c", data)
    got = client.head_object(Bucket=bucket, Key="post-alone", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32C"] == b64("crc32c", data)
    # A condition the policy does put on the field is enforced.
    held = _v4_form(
        target,
        bucket,
        {"key": "post-held", "x-amz-checksum-sha256": b64("sha256", data)},
        [*conditions, {"x-amz-checksum-sha256": b64("sha256", b"other")}],
    )
    assert error(_post(target, bucket, held, data))[:2] == (403, "AccessDenied")
    assert gone(client, bucket, "post-held")


def test_post_checksum_mismatch_stores_nothing(client: Any, target: Target, bucket: str) -> None:
    data = b"the posted file"
    conditions: list[Any] = [["starts-with", "$key", "post"]]
    wrong = _v4_form(
        target, bucket, {"key": "post-wrong", "x-amz-checksum-sha256": b64("sha256", b"x")}, conditions
    )
    assert error(_post(target, bucket, wrong, data)) == (
        400,
        "BadDigest",
        "The SHA256 you specified did not match the calculated checksum.",
    )
    malformed = _v4_form(
        target, bucket, {"key": "post-wrong", "x-amz-checksum-crc32": "sailorjerry"}, conditions
    )
    assert error(_post(target, bucket, malformed, data))[:2] == (400, "InvalidRequest")
    other = _v4_form(
        target,
        bucket,
        {"key": "post-wrong", "x-amz-checksum-algorithm": "CRC32", "x-amz-checksum-sha1": b64("sha1", data)},
        conditions,
    )
    assert error(_post(target, bucket, other, data))[:2] == (400, "InvalidRequest")
    assert gone(client, bucket, "post-wrong")


def test_post_checksum_with_sigv2_policy(client: Any, target: Target, bucket: str) -> None:
    """ceph's test, as written: a SigV2 policy that names no checksum condition."""
    data = b"bar" * 700
    conditions: list[Any] = [
        {"bucket": bucket},
        ["starts-with", "$key", "foo"],
        {"acl": "private"},
        ["starts-with", "$Content-Type", "text/plain"],
        ["content-length-range", 0, 1024 * 1024],
    ]
    fields = v2_fields(
        target.key,
        conditions,
        {
            "key": "foo.txt",
            "acl": "private",
            "Content-Type": "text/plain",
            "x-amz-checksum-sha256": b64("sha256", data),
        },
    )
    assert _post(target, bucket, fields, data).status_code == 204
    assert client.get_object(Bucket=bucket, Key="foo.txt")["Body"].read() == data
    bad = dict(fields, key="foo-bad.txt", **{"x-amz-checksum-sha256": b64("sha256", b"bar")})
    assert error(_post(target, bucket, bad, data))[:2] == (400, "BadDigest")
    assert gone(client, bucket, "foo-bad.txt")
