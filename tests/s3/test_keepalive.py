"""The keep-alive body of a slow CompleteMultipartUpload (pure asyncio, no server)."""

from __future__ import annotations

import asyncio
from xml.etree import ElementTree

from coffer.errors import S3Error
from coffer.s3 import xml
from coffer.s3.responses import error_document, keepalive_document


def _render(value: str) -> bytes:
    return xml.render("CompleteMultipartUploadResult", [("ETag", value)])


def _render_error(err: S3Error) -> bytes:
    return error_document(err, resource="/b/k", request_id="RID", host_id="HID")


async def _collect(outcome: str | S3Error) -> list[bytes]:
    release = asyncio.Event()

    async def work() -> str:
        await release.wait()
        if isinstance(outcome, S3Error):
            raise outcome
        return outcome

    task = asyncio.ensure_future(work())
    stream = keepalive_document(task, _render, _render_error, every=0.001)
    chunks = [await anext(stream), await anext(stream), await anext(stream)]
    release.set()  # the work can only finish now, after two keep-alive spaces
    chunks += [c async for c in stream]
    return chunks


def test_whitespace_then_result() -> None:
    chunks = asyncio.run(_collect('"abc-2"'))
    assert chunks[0] == xml.DECLARATION and chunks[1] == b" " and chunks[2] == b" "
    document = b"".join(chunks)
    root = ElementTree.fromstring(document)
    assert root.tag.endswith("CompleteMultipartUploadResult")
    assert root[0].text == '"abc-2"'


def test_whitespace_then_error_document() -> None:
    chunks = asyncio.run(_collect(S3Error("InvalidPart")))
    root = ElementTree.fromstring(b"".join(chunks))
    assert root.tag == "Error" and root.find("Code").text == "InvalidPart"
    assert root.find("RequestId").text == "RID"
