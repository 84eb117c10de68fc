"""JSON Schema building blocks for the operations' OpenAPI entries (`OPENAPI` in each api
module), so that every object schema is written one way."""

from __future__ import annotations

from typing import Any


def obj(required: list[str], **props: Any) -> dict[str, Any]:
    """An object schema with these properties, of which `required` must be present."""
    return {"type": "object", "required": required, "properties": props}


NONEMPTY_STRING: dict[str, Any] = {"type": "string", "minLength": 1}


def bucket_request(**props: Any) -> dict[str, Any]:
    """The body of a call on one bucket: its `bucketName` and these properties, all required."""
    return obj(["bucketName", *props], bucketName=NONEMPTY_STRING, **props)
