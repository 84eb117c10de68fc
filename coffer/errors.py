"""Domain errors. The core raises these; each face renders them in its own dialect.

The kinds follow gRPC status codes because the control plane is wire-compatible with a
gRPC-gateway service; the S3 face maps them onto S3 error codes where it needs to.
"""

from __future__ import annotations

import enum
from typing import Any


class Kind(enum.Enum):
    """gRPC code name, number and the HTTP status gRPC-gateway gives it."""

    INVALID_ARGUMENT = (3, 400)
    FAILED_PRECONDITION = (9, 400)
    OUT_OF_RANGE = (11, 400)
    UNAUTHENTICATED = (16, 401)
    PERMISSION_DENIED = (7, 403)
    NOT_FOUND = (5, 404)
    ALREADY_EXISTS = (6, 409)
    RESOURCE_EXHAUSTED = (8, 429)
    UNIMPLEMENTED = (12, 501)
    INTERNAL = (13, 500)
    UNAVAILABLE = (14, 503)

    @property
    def grpc_code(self) -> int:
        return self.value[0]

    @property
    def http_status(self) -> int:
        return self.value[1]


class CofferError(Exception):
    """An expected failure with a kind, a message safe to show the caller, and optional details."""

    kind: Kind = Kind.INTERNAL

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class InvalidArgument(CofferError):
    kind = Kind.INVALID_ARGUMENT

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        """A BadRequest naming the offending field, as google.rpc.BadRequest does."""
        return cls(
            f"invalid {field}: {description}",
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{"field": field, "description": description}],
                }
            ],
        )


class FailedPrecondition(CofferError):
    kind = Kind.FAILED_PRECONDITION


class Unauthenticated(CofferError):
    kind = Kind.UNAUTHENTICATED


class PermissionDenied(CofferError):
    kind = Kind.PERMISSION_DENIED


class NotFound(CofferError):
    kind = Kind.NOT_FOUND

    @classmethod
    def resource(cls, resource_type: str, name: str) -> NotFound:
        return cls(
            f"{resource_type} {name!r} not found",
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.ResourceInfo",
                    "resourceType": resource_type,
                    "resourceName": name,
                    "description": "not found",
                }
            ],
        )


class AlreadyExists(CofferError):
    kind = Kind.ALREADY_EXISTS


class ResourceExhausted(CofferError):
    kind = Kind.RESOURCE_EXHAUSTED


class Unimplemented(CofferError):
    kind = Kind.UNIMPLEMENTED


class Unavailable(CofferError):
    kind = Kind.UNAVAILABLE
