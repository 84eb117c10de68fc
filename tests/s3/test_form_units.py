"""The pure pieces behind PostObject and CORS, without a server: the streaming form reader
(whatever the chunking), POST policy parsing and conditions, CORS matching, tag rules."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coffer.errors import S3Error
from coffer.s3 import postpolicy
from coffer.s3.errors import from_storage
from coffer.s3.formdata import FormReader, boundary_of
from coffer.storage import cors
from coffer.storage.errors import StorageError
from coffer.storage.tags import validate_tags

BOUNDARY = b"xYzZY-boundary"


def form_body(fields: list[tuple[str, bytes]], file: bytes, after: bytes = b"") -> bytes:
    out = b"preamble to ignore\r\n"
    for name, value in fields:
        out += b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n'
        out += value + b"\r\n"
    out += (
        b"--"
        + BOUNDARY
        + b'\r\nContent-Disposition: form-data; name="File"; filename="dir/a \\"q\\".bin"\r\n'
    )
    out += b"Content-Type: image/png\r\n\r\n" + file + b"\r\n"
    if after:
        out += b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="late"\r\n\r\n' + after + b"\r\n"
    return out + b"--" + BOUNDARY + b"--\r\nepilogue"


async def chunked(data: bytes, cuts: list[int]) -> AsyncIterator[bytes]:
    start = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        if cut > start:
            yield data[start:cut]
            start = cut


def read(body: bytes, cuts: list[int]) -> tuple[list[tuple[str, bytes]], str | None, bytes]:
    async def go() -> tuple[list[tuple[str, bytes]], str | None, bytes]:
        reader = FormReader(chunked(body, cuts), BOUNDARY)
        form = await reader.read_form()
        assert form.file is not None
        content = b"".join([c async for c in reader.file_chunks()])
        await reader.drain()
        return [(p.name, p.value) for p in form.fields], form.file.filename, content

    return asyncio.run(go())


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.binary(max_size=40), min_size=0, max_size=4),
    # near misses: a delimiter missing its last byte, mid-file and at the very end
    file=st.binary(max_size=300) | st.just(b"\r\n--" + BOUNDARY[:-1] + b"Q\r\n--" + BOUNDARY[:-1]),
    cuts=st.lists(st.integers(0, 700), max_size=12),
)
def test_any_chunking_reads_the_same_form(values: list[bytes], file: bytes, cuts: list[int]) -> None:
    values = [v.replace(b"\r\n--", b"\r\n-") for v in values]  # a value cannot hold the delimiter
    fields = [(f"f{i}", v) for i, v in enumerate(values)]
    got_fields, filename, content = read(form_body(fields, file, after=b"ignored"), cuts)
    assert got_fields == fields
    assert filename == 'dir/a "q".bin'
    assert content == file


def test_body_cut_before_the_file_ends_is_malformed() -> None:
    body = form_body([("key", b"k")], b"abcdef")
    cut = body[: body.index(b"abcdef") + 3]
    with pytest.raises(S3Error) as err:
        read(cut, [5, 50])
    assert err.value.code == "MalformedPOSTRequest"


def test_fields_before_the_file_are_bounded() -> None:
    body = form_body([("a", b"x" * 30000)], b"f")
    with pytest.raises(S3Error) as err:
        read(body, [])
    assert err.value.code == "MaxPostPreDataLengthExceeded"


@pytest.mark.parametrize(
    ("content_type", "code"),
    [
        ("application/x-www-form-urlencoded", "PreconditionFailed"),
        (None, "PreconditionFailed"),
        ("multipart/form-data", "MalformedPOSTRequest"),
        ('multipart/form-data; boundary=""', "MalformedPOSTRequest"),
    ],
)
def test_content_type_checks(content_type: str | None, code: str) -> None:
    with pytest.raises(S3Error) as err:
        boundary_of(content_type)
    assert err.value.code == code


def test_quoted_boundary() -> None:
    assert boundary_of('Multipart/Form-Data; charset=utf-8; boundary="a b;c"') == b"a b;c"


def _policy(conditions: list[object], expires: timedelta = timedelta(minutes=5)) -> postpolicy.Policy:
    when = (datetime.now(UTC) + expires).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = base64.b64encode(json.dumps({"expiration": when, "conditions": conditions}).encode()).decode()
    return postpolicy.parse_policy(text)


def test_conditions() -> None:
    policy = _policy(
        [
            {"bucket": "b"},
            ["starts-with", "$key", "user/"],
            ["starts-with", "$Content-Type", "image/"],
            ["eq", "$x-amz-meta-tag", "v"],
            ["content-length-range", "1", 10],
        ]
    )
    ok = {"key": "user/x", "content-type": "image/png,image/gif", "x-amz-meta-tag": "v"}
    postpolicy.check(policy, ok, {}, "b")
    assert policy.length_range == (1, 10)
    cases = [
        (dict(ok, key="admin/x"), "b", '["starts-with", "$key", "user/"]'),
        (dict(ok, **{"content-type": "image/png,text/plain"}), "b", "$Content-Type"),
        (dict(ok, **{"x-amz-meta-tag": "V"}), "b", "$x-amz-meta-tag"),
        (ok, "c", '["eq", "$bucket", "b"]'),
        (dict(ok, extra="1"), "b", "Extra input fields: extra"),
    ]
    for fields, bucket, fragment in cases:
        with pytest.raises(S3Error) as err:
            postpolicy.check(policy, fields, {}, bucket)
        assert err.value.code == "AccessDenied" and fragment in err.value.message


def test_expired_and_malformed_policies() -> None:
    with pytest.raises(S3Error) as err:
        postpolicy.check(_policy([], expires=timedelta(seconds=-1)), {}, {}, "b")
    assert err.value.message == "Invalid according to Policy: Policy expired."
    for bad in ([["content-length-range", 1.5, 2]], [[]], ["text"], [{"a": 1}], [["in", "$key", "x"]]):
        with pytest.raises(S3Error) as err:
            _policy(bad)
        assert err.value.code == "InvalidPolicyDocument"
    with pytest.raises(S3Error) as err:
        postpolicy.parse_policy("%%%")
    assert err.value.code == "InvalidPolicyDocument"


@pytest.mark.parametrize(
    ("pattern", "value", "match"),
    [
        ("*", "", True),
        ("*", "anything", True),
        ("https://*.example.com", "https://a.example.com", True),
        ("https://*.example.com", "https://example.com", False),
        ("start*end", "startend", True),
        ("start*end", "startXend", True),
        ("start*end", "startenX", False),
        ("ab*ba", "aba", False),  # head and tail may not overlap
        ("exact", "exact", True),
        ("exact", "Exact", False),
    ],
)
def test_wildcards(pattern: str, value: str, match: bool) -> None:
    assert cors.wildcard_match(pattern, value) is match


def test_rules_survive_storage_and_first_match_wins() -> None:
    rules = [
        cors.CorsRule(("GET",), ("https://a.test",), ("x-amz-*",), ("ETag",), 10, "one"),
        cors.CorsRule(("GET", "PUT"), ("*",), ("*",)),
    ]
    assert cors.loads(cors.dumps(rules)) == rules
    found = cors.find_rule(rules, "https://a.test", "GET", ["X-Amz-Date"])
    assert found is not None and found[0].id == "one"
    found = cors.find_rule(rules, "https://a.test", "GET", ["authorization"])
    assert found is not None and found[0].id is None and found[1] == "*"
    assert cors.find_rule(rules, "https://a.test", "DELETE") is None
    assert cors.loads("not json") == []


def test_tag_rules_count_utf16_units() -> None:
    letter = "\U0001d400"  # MATHEMATICAL BOLD CAPITAL A: a letter outside the BMP, 2 UTF-16 units
    assert validate_tags([("k", letter * 128)]) == {"k": letter * 128}
    with pytest.raises(StorageError) as err:
        validate_tags([("k", letter * 128 + "x")])
    assert from_storage(err.value).code == "InvalidTag"
    with pytest.raises(StorageError) as err:
        validate_tags([("k", "\U0001f600")])  # an emoji is a symbol, not a letter
    assert from_storage(err.value).code == "InvalidTag"
    assert validate_tags([(f"k{i}", "") for i in range(50)], bucket=True)
    with pytest.raises(StorageError) as err:
        validate_tags([(f"k{i}", "") for i in range(11)])
    assert from_storage(err.value).code == "BadRequest"
