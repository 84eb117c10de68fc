"""A streaming `multipart/form-data` reader for browser POST uploads (RFC 7578, RFC 2046 §5.1).

S3's POST form puts every field before the file, so the reader hands back the fields
(bounded: 20 KiB of form data before the file, S3's limit) and then the file part's
content as an async stream of chunks that is never held whole: the caller pours it
into a blob. The file stream ends only at the part's closing delimiter; a body that
ends before it is `MalformedPOSTRequest`, so a cut-off upload can never be committed.
Parts after the file are read and ignored, as S3 ignores them.

Only a `form-data` part named `file` (case-insensitively) is the file; the presence
of a `filename` parameter does not make a part a file, as with S3.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from coffer.errors import S3Error

MAX_PRE_DATA = 20 * 1024  # S3: "The form data and boundaries (excluding the file) cannot exceed 20KB."
MAX_HEADER_BLOCK = 8 * 1024
MAX_EPILOGUE = 64 * 1024  # bytes after the file that are read (and ignored) before giving up
_CRLF = b"\r\n"

NOT_MULTIPART = "Bucket POST must be of the enclosure-type multipart/form-data"


def malformed() -> S3Error:
    return S3Error("MalformedPOSTRequest")


def split_unquoted(value: str, sep: str, *, escapes: bool = True) -> tuple[list[str], bool]:
    """`value` split at each `sep` outside double quotes (quotes kept), and whether a quote
    was left open; with `escapes`, a backslash inside quotes escapes the next character (a
    quoted-pair). Shared with the x-amz-grant-* headers' lists."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif escapes and quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts, quoted


def _params(value: str) -> tuple[str, dict[str, str]]:
    """`type; a=b; c="d"` → ("type", {"a": "b", "c": "d"}); names lower-cased, quoted-pairs undone."""
    items, _ = split_unquoted(value, ";")
    main = items[0].strip().lower()
    params: dict[str, str] = {}
    for item in items[1:]:
        name, eq, raw = item.partition("=")
        if not eq:
            continue
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            out, skip = [], False
            for ch in raw[1:-1]:
                if skip:
                    out.append(ch)
                    skip = False
                elif ch == "\\":
                    skip = True
                else:
                    out.append(ch)
            raw = "".join(out)
        params.setdefault(name.strip().lower(), raw)
    return main, params


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a multipart/form-data Content-Type; 412 if the body is not that type,
    MalformedPOSTRequest if it names no usable boundary."""
    kind, params = _params(content_type or "")
    if kind != "multipart/form-data":
        raise S3Error("PreconditionFailed", fields={"Condition": NOT_MULTIPART})
    boundary = params.get("boundary", "")
    if not boundary or len(boundary) > 200:
        raise malformed()
    try:
        return boundary.encode("ascii")
    except UnicodeEncodeError:
        raise malformed() from None


@dataclass
class FormPart:
    name: str  # as sent
    filename: str | None  # None when the part has no filename parameter
    content_type: str | None
    value: bytes = b""


@dataclass
class Form:
    """The fields before the file, in order (names as sent), and the file part's headers."""

    fields: list[FormPart] = field(default_factory=list)
    file: FormPart | None = None


class FormReader:
    """Reads one multipart/form-data body from an async byte stream."""

    def __init__(self, body: AsyncIterator[bytes], boundary: bytes, *, max_pre_data: int = MAX_PRE_DATA):
        self._body = body
        self._delimiter = b"--" + boundary
        self._marker = _CRLF + self._delimiter  # a delimiter line inside the body
        self._buf = bytearray()
        self._eof = False
        self._max_pre_data = max_pre_data
        self._pre_data = 0
        self._in_form = True  # reading the fields before the file

    # buffer ------------------------------------------------------------------------------
    async def _fill(self) -> bool:
        """Read one more chunk into the buffer; False at the end of the body."""
        if self._eof:
            return False
        chunk = await anext(self._body, None)
        if chunk is None:
            self._eof = True
            return False
        self._buf += chunk
        return True

    def _consume(self, n: int) -> None:
        """Drop `n` buffered bytes of form data (before the file), which S3 bounds."""
        del self._buf[:n]
        if self._in_form:
            self._pre_data += n
            self._check_pre_data(0)

    def _check_pre_data(self, pending: int) -> None:
        if self._pre_data + pending > self._max_pre_data:
            raise S3Error(
                "MaxPostPreDataLengthExceeded",
                fields={"MaxPostPreDataLengthBytes": str(self._max_pre_data)},
            )

    async def _after_delimiter(self) -> bool:
        """After a delimiter: True if a part follows (padding and CRLF consumed), False if it
        was the close delimiter."""
        while len(self._buf) < 2 and await self._fill():
            pass
        if self._buf[:2] == b"--":
            self._consume(2)
            return False
        while True:
            end = self._buf.find(_CRLF)
            if end >= 0:
                if self._buf[:end].strip(b" \t"):
                    raise malformed()
                self._consume(end + 2)
                return True
            if len(self._buf) > 1024 or not await self._fill():
                raise malformed()

    async def _start(self) -> bool:
        """Skip any preamble up to the first delimiter line."""
        while True:
            if self._buf.startswith(self._delimiter):
                self._consume(len(self._delimiter))
                return await self._after_delimiter()
            at = self._buf.find(self._marker)
            if at >= 0:
                self._consume(at + len(self._marker))
                return await self._after_delimiter()
            self._check_pre_data(len(self._buf))
            if not await self._fill():
                raise malformed()

    async def _headers(self) -> FormPart:
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if self._buf.startswith(_CRLF):  # a part with no headers at all
                end = -2
                break
            self._check_pre_data(len(self._buf))
            if len(self._buf) > MAX_HEADER_BLOCK or not await self._fill():
                raise malformed()
        block = bytes(self._buf[: max(end, 0)])
        self._consume(end + 4)
        disposition = content_type = None
        for line in block.split(_CRLF) if block else []:
            name, colon, value = line.partition(b":")
            if not colon:
                raise malformed()
            try:
                text = value.decode("utf-8").strip()
            except UnicodeDecodeError:
                text = value.decode("latin-1").strip()
            lower = name.strip().lower()
            if lower == b"content-disposition":
                disposition = text
            elif lower == b"content-type":
                content_type = text
        kind, params = _params(disposition or "")
        if kind != "form-data" or "name" not in params:
            raise malformed()
        return FormPart(params["name"], params.get("filename"), content_type)

    async def _value(self) -> bytes:
        """A non-file part's content, up to its closing delimiter (counted as pre-data)."""
        while True:
            at = self._buf.find(self._marker)
            if at >= 0:
                value = bytes(self._buf[:at])
                self._consume(at + len(self._marker))
                return value
            self._check_pre_data(len(self._buf))
            if not await self._fill():
                raise malformed()

    # public --------------------------------------------------------------------------------
    async def read_form(self) -> Form:
        """Every field up to and including the file part's headers."""
        form = Form()
        more = await self._start()
        while more:
            part = await self._headers()
            if part.name.lower() == "file":
                form.file = part
                self._in_form = False
                return form
            part.value = await self._value()
            form.fields.append(part)
            more = await self._after_delimiter()
        return form

    async def file_chunks(self) -> AsyncIterator[bytes]:
        """The file part's content, chunk by chunk, ending at its delimiter."""
        keep = len(self._marker) - 1
        while True:
            at = self._buf.find(self._marker)
            if at >= 0:
                if at:
                    yield bytes(self._buf[:at])
                del self._buf[: at + len(self._marker)]
                return
            if len(self._buf) > keep:
                cut = len(self._buf) - keep
                chunk = bytes(self._buf[:cut])
                del self._buf[:cut]
                yield chunk
            if not await self._fill():
                raise malformed()

    async def drain(self) -> None:
        """Read (and ignore) what follows the file, within reason."""
        seen = len(self._buf)
        self._buf.clear()
        while seen <= MAX_EPILOGUE and await self._fill():
            seen += len(self._buf)
            self._buf.clear()
