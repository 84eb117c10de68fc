"""Every bad input gets its exact status JSON: gRPC code, HTTP status, message and field.

Also: unknown routes and methods, body limits, content types, and the OpenAPI document.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.api import assert_status, field_violation
from tests.support.harness import CofferServer

AK = "/v1/cwobject/access-key"
STATUS = "/v1/cwobject/access-key-status"
REVOKE_KEY = "/v1/cwobject/revoke-access-key/access-key"
REVOKE_PRINCIPAL = "/v1/cwobject/revoke-access-key/principal"
INTEGER = "must be an integer number of seconds"
NEGATIVE = "must be >= 0 (0 makes a permanent key)"
REQUIRED = "is required (0 makes a permanent key)"
LABEL_KEY = "keys must be lower-case DNS labels (a-z, 0-9, '-'), 1-63 characters"
RESERVED = "keys must not start with 'cw-', 'role' or 'groups' (reserved)"
LABEL_VALUE = (
    "values must be strings of at most 63 characters: alphanumerics, '-', '_', '.',"
    " starting and ending alphanumeric"
)


@pytest.fixture(scope="module")
def c(server: CofferServer) -> Iterator[httpx.Client]:
    with server.api() as client:
        yield client


# --- CreateAccessKeyFromJWT bodies ------------------------------------------------------------

BAD_CREATE: list[tuple[Any, str, str]] = [
    ({}, "durationSeconds", REQUIRED),
    ({"attributes": {"name": "x"}}, "durationSeconds", REQUIRED),
    ({"durationSeconds": None}, "durationSeconds", REQUIRED),
    ({"durationSeconds": "abc"}, "durationSeconds", INTEGER),
    ({"durationSeconds": ""}, "durationSeconds", INTEGER),
    ({"durationSeconds": " 60"}, "durationSeconds", INTEGER),
    ({"durationSeconds": 1.5}, "durationSeconds", "must be a whole number of seconds"),
    ({"durationSeconds": True}, "durationSeconds", INTEGER),
    ({"durationSeconds": False}, "durationSeconds", INTEGER),
    ({"durationSeconds": {}}, "durationSeconds", INTEGER),
    ({"durationSeconds": [60]}, "durationSeconds", INTEGER),
    ({"durationSeconds": -1}, "durationSeconds", NEGATIVE),
    ({"durationSeconds": "-1"}, "durationSeconds", NEGATIVE),
    (
        {"durationSeconds": 43201},
        "durationSeconds",
        "must be at most 43200 seconds (0 makes a permanent key)",
    ),
    ({"durationSeconds": 2**32}, "durationSeconds", "must fit in an unsigned 32-bit integer"),
    ({"durationSeconds": 10**30}, "durationSeconds", "must fit in an unsigned 32-bit integer"),
    ({"durationSeconds": 0, "attributes": []}, "attributes", "must be an object mapping strings to strings"),
    (
        {"durationSeconds": 0, "attributes": "name=x"},
        "attributes",
        "must be an object mapping strings to strings",
    ),
    (
        {"durationSeconds": 0, "attributes": {f"k{i}": "v" for i in range(16)}},
        "attributes",
        "at most 15 entries are allowed",
    ),
    ({"durationSeconds": 0, "attributes": {"Name": "x"}}, "attributes.Name", LABEL_KEY),
    ({"durationSeconds": 0, "attributes": {"": "x"}}, "attributes.", LABEL_KEY),
    ({"durationSeconds": 0, "attributes": {"-name": "x"}}, "attributes.-name", LABEL_KEY),
    ({"durationSeconds": 0, "attributes": {"name\n": "x"}}, "attributes.name\\n", LABEL_KEY),
    ({"durationSeconds": 0, "attributes": {"a" * 64: "x"}}, "attributes." + "a" * 64, LABEL_KEY),
    ({"durationSeconds": 0, "attributes": {"cw-team": "x"}}, "attributes.cw-team", RESERVED),
    ({"durationSeconds": 0, "attributes": {"role": "x"}}, "attributes.role", RESERVED),
    ({"durationSeconds": 0, "attributes": {"groups-x": "x"}}, "attributes.groups-x", RESERVED),
    ({"durationSeconds": 0, "attributes": {"name": 5}}, "attributes.name", LABEL_VALUE),
    ({"durationSeconds": 0, "attributes": {"name": None}}, "attributes.name", LABEL_VALUE),
    ({"durationSeconds": 0, "attributes": {"name": "x" * 64}}, "attributes.name", LABEL_VALUE),
    ({"durationSeconds": 0, "attributes": {"name": "-x"}}, "attributes.name", LABEL_VALUE),
    ({"durationSeconds": 0, "attributes": {"name": "a b"}}, "attributes.name", LABEL_VALUE),
]


@pytest.mark.parametrize(("body", "field", "description"), BAD_CREATE)
def test_create_rejects(c: httpx.Client, body: Any, field: str, description: str) -> None:
    err = assert_status(c.post(AK, json=body), 400, 3)
    assert field_violation(err) == {"field": field, "description": description}
    assert err["message"] == f"invalid {field}: {description}"


def test_create_accepts_the_edges(c: httpx.Client) -> None:
    edges = [
        {"durationSeconds": 1},
        {"durationSeconds": 60.0},
        {"durationSeconds": 0, "attributes": None},
        {"durationSeconds": 0, "attributes": {}},
        {"durationSeconds": 0, "attributes": {"name": ""}},
        {"durationSeconds": 0, "attributes": {f"k{i}": "v" for i in range(15)}},
        {"durationSeconds": 0, "attributes": {"a" * 63: "b" * 63, "x-y": "A.b_c-D"}},
        {"durationSeconds": 0, "unknownField": "ignored, as gRPC-gateway does"},
    ]
    for body in edges:
        r = c.post(AK, json=body)
        assert r.status_code == 200, (body, r.text)


# --- malformed bodies, sizes and content types ------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "request body is not valid JSON: Expecting property name enclosed in double quotes"),
        (b'{"durationSeconds": 0', "request body is not valid JSON: Expecting ',' delimiter"),
        (b"\xff\xfe\xfa", "request body is not valid JSON"),
        (b"[" * 100_000, "request body is not valid JSON"),
        (b"[]", "request body must be a JSON object, not list"),
        (b"[1, 2]", "request body must be a JSON object, not list"),
        (b'"durationSeconds"', "request body must be a JSON object, not str"),
        (b"0", "request body must be a JSON object, not int"),
        (b"null", "request body must be a JSON object, not NoneType"),
    ],
)
def test_malformed_bodies(c: httpx.Client, raw: bytes, message: str) -> None:
    for method, path in (("POST", AK), ("PUT", STATUS), ("POST", REVOKE_KEY), ("POST", REVOKE_PRINCIPAL)):
        err = assert_status(
            c.request(method, path, content=raw, headers={"content-type": "application/json"}), 400, 3
        )
        assert err["message"].startswith(message), err


def test_body_size_limit(c: httpx.Client) -> None:
    big = b'{"durationSeconds": 0, "pad": "' + b"x" * (2 << 20) + b'"}'
    err = assert_status(c.post(AK, content=big), 400, 3)
    assert err["message"] == "request body is larger than 1048576 bytes"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    err = assert_status(c.post(AK, content=chunks()), 400, 3)
    assert err["message"] == "request body is larger than 1048576 bytes"
    # Just under the limit is fine.
    fits = b'{"durationSeconds": 0, "pad": "' + b"x" * ((1 << 20) - 64) + b'"}'
    assert c.post(AK, content=fits).status_code == 200


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "application/json; charset=utf-8", "text/plain"]
)
def test_any_content_type_is_read_as_json(c: httpx.Client, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    r = c.post(AK, content=b'{"durationSeconds": 0}', headers=headers)
    assert r.status_code == 200, r.text


def test_form_encoding_is_not_json(c: httpx.Client) -> None:
    err = assert_status(c.post(AK, data={"durationSeconds": "0"}), 400, 3)
    assert err["message"].startswith("request body is not valid JSON")


# --- ListAccessKeyInfo query parameters -------------------------------------------------------

BAD_QUERY: list[tuple[dict[str, str], str, str]] = [
    ({"limit": "0"}, "limit", "must be between 1 and 1000"),
    ({"limit": "1001"}, "limit", "must be between 1 and 1000"),
    ({"limit": "-5"}, "limit", "must be a non-negative integer, got '-5'"),
    ({"limit": "ten"}, "limit", "must be a non-negative integer, got 'ten'"),
    ({"limit": "1.5"}, "limit", "must be a non-negative integer, got '1.5'"),
    ({"offset": "-1"}, "offset", "must be a non-negative integer, got '-1'"),
    ({"offset": ""}, "offset", "must be a non-negative integer, got ''"),
    ({"limit": ""}, "limit", "must be a non-negative integer, got ''"),
    ({"offset": "abc"}, "offset", "must be a non-negative integer, got 'abc'"),
    ({"offset": " 1"}, "offset", "must be a non-negative integer, got ' 1'"),
    ({"offset": "4294967296"}, "offset", "must fit in an unsigned 32-bit integer"),
]


@pytest.mark.parametrize(("params", "field", "description"), BAD_QUERY)
def test_list_rejects(c: httpx.Client, params: dict[str, str], field: str, description: str) -> None:
    err = assert_status(c.get(AK, params=params), 400, 3)
    assert field_violation(err) == {"field": field, "description": description}


@pytest.mark.parametrize(
    "status", ["", "garbage", "active", "ACCESS_KEY_STATUS_INVALID", "ACCESS_KEY_STATUS_UNSPECIFIED", "1"]
)
def test_list_rejects_unknown_status_filters(c: httpx.Client, status: str) -> None:
    err = assert_status(c.get(AK, params={"status": status}), 400, 3)
    v = field_violation(err)
    assert v["field"] == "status"
    assert v["description"] == (
        "must be one of ACTIVE, SUSPENDED, EXPIRED, REVOKED (or their ACCESS_KEY_STATUS_ forms);"
        f" got {status!r}"
    )


def test_list_limits_are_inclusive(c: httpx.Client) -> None:
    assert c.get(AK, params={"limit": 1}).status_code == 200
    assert c.get(AK, params={"limit": 1000, "offset": 0}).status_code == 200
    assert c.get(AK, params={"offset": 4294967295}).json() == {"info": []}


# --- unknown things: 404 NOT_FOUND with ResourceInfo ------------------------------------------


def resource_info(err: dict[str, Any]) -> dict[str, Any]:
    (detail,) = err["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.ResourceInfo"
    return dict(detail)


@pytest.mark.parametrize("key_id", ["CWAAAAAAAAAAAAAA", "nope", "%00", "x" * 200])
def test_get_unknown_key(c: httpx.Client, key_id: str) -> None:
    err = assert_status(c.get(f"{AK}/{key_id}"), 404, 5)
    info = resource_info(err)
    assert info["resourceType"] == "access key"
    if key_id == "CWAAAAAAAAAAAAAA":
        assert info["resourceName"] == key_id
        assert err["message"] == "access key 'CWAAAAAAAAAAAAAA' not found"


def test_revoke_unknown_key(c: httpx.Client) -> None:
    err = assert_status(c.post(REVOKE_KEY, json={"accessKey": "CWZZZZZZZZZZZZZZ"}), 404, 5)
    assert resource_info(err)["resourceName"] == "CWZZZZZZZZZZZZZZ"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", STATUS, {"principalName": "coreweave/nobody", "status": "ACCESS_KEY_STATUS_SUSPENDED"}),
        ("POST", REVOKE_PRINCIPAL, {"principalName": "coreweave/nobody"}),
        ("POST", REVOKE_PRINCIPAL, {"principalName": "role/unknown"}),
    ],
)
def test_unknown_principal(c: httpx.Client, method: str, path: str, body: dict[str, Any]) -> None:
    err = assert_status(c.request(method, path, json=body), 404, 5)
    info = resource_info(err)
    assert info == {
        "@type": "type.googleapis.com/google.rpc.ResourceInfo",
        "resourceType": "principal",
        "resourceName": body["principalName"],
        "description": "not found",
    }


# --- UpdateAccessKeyStatus and revoke bodies -----------------------------------------------------

SETTABLE = "must be one of ACCESS_KEY_STATUS_ACTIVE, ACCESS_KEY_STATUS_SUSPENDED (or ACTIVE, SUSPENDED)"
PRINCIPAL = "must be at most 512 characters without control characters, such as coreweave/<UID>"


@pytest.mark.parametrize(
    ("path", "body", "field", "description"),
    [
        (STATUS, {}, "principalName", "is required"),
        (STATUS, {"status": "ACTIVE"}, "principalName", "is required"),
        (STATUS, {"principalName": "", "status": "ACTIVE"}, "principalName", "is required"),
        (STATUS, {"principalName": 7, "status": "ACTIVE"}, "principalName", "must be a string"),
        (STATUS, {"principalName": "coreweave/a\u0000", "status": "ACTIVE"}, "principalName", PRINCIPAL),
        (STATUS, {"principalName": "x" * 513, "status": "ACTIVE"}, "principalName", PRINCIPAL),
        (STATUS, {"principalName": "coreweave/\u009f", "status": "ACTIVE"}, "principalName", PRINCIPAL),
        (REVOKE_PRINCIPAL, {"principalName": "coreweave/\ud800"}, "principalName", PRINCIPAL),
        (
            STATUS,
            {"principalName": "coreweave/x"},
            "status",
            "is required: ACCESS_KEY_STATUS_ACTIVE or ACCESS_KEY_STATUS_SUSPENDED",
        ),
        (
            STATUS,
            {"principalName": "coreweave/x", "status": "EXPIRED"},
            "status",
            f"{SETTABLE}; got 'EXPIRED'",
        ),
        (
            STATUS,
            {"principalName": "coreweave/x", "status": "REVOKED"},
            "status",
            f"{SETTABLE}; got 'REVOKED'",
        ),
        (
            STATUS,
            {"principalName": "coreweave/x", "status": "ACCESS_KEY_STATUS_INVALID"},
            "status",
            f"{SETTABLE}; got 'ACCESS_KEY_STATUS_INVALID'",
        ),
        (STATUS, {"principalName": "coreweave/x", "status": 1}, "status", f"{SETTABLE}; got 1"),
        (REVOKE_KEY, {}, "accessKey", "is required"),
        (REVOKE_KEY, {"accessKeyId": "CWAAAAAAAAAAAAAA"}, "accessKey", "is required"),
        (REVOKE_KEY, {"accessKey": 12}, "accessKey", "must be a string"),
        (REVOKE_PRINCIPAL, {}, "principalName", "is required"),
        (REVOKE_PRINCIPAL, {"principalName": ["coreweave/x"]}, "principalName", "must be a string"),
    ],
)
def test_status_and_revoke_reject(
    c: httpx.Client, path: str, body: Any, field: str, description: str
) -> None:
    method = "PUT" if path == STATUS else "POST"
    raw = json.dumps(body).encode()  # ASCII-escaped, so lone surrogates travel as \\udXXX
    err = assert_status(c.request(method, path, content=raw), 400, 3)
    assert field_violation(err) == {"field": field, "description": description}


# --- routes and methods -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/v1",
        "/v1/cwobject",
        "/v1/cwobject/nope",
        "/v1/cwobject/access-key/",
        "/v1/cwobject/access-key/a/b",
        "/v1/cwobject/access-policy-typo",
        "/V1/CWOBJECT/ACCESS-KEY",
    ],
)
def test_unknown_route_is_404_status_json(c: httpx.Client, path: str) -> None:
    for method in ("GET", "POST", "DELETE"):
        err = assert_status(c.request(method, path), 404, 5)
        assert err["message"] == f"no route for {method} {path}"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", AK, "GET, POST"),
        ("PUT", AK, "GET, POST"),
        ("PATCH", AK, "GET, POST"),
        ("POST", f"{AK}/CWAAAAAAAAAAAAAA", "GET"),
        ("DELETE", f"{AK}/CWAAAAAAAAAAAAAA", "GET"),
        ("GET", STATUS, "PUT"),
        ("POST", STATUS, "PUT"),
        ("GET", REVOKE_KEY, "POST"),
        ("DELETE", REVOKE_PRINCIPAL, "POST"),
        ("POST", "/v1/cwobject/temporary-credentials/api-token", "GET"),
        ("OPTIONS", AK, "GET, POST"),
    ],
)
def test_wrong_method_is_405_unimplemented(c: httpx.Client, method: str, path: str, allow: str) -> None:
    r = c.request(method, path, json={"durationSeconds": 0})
    err = assert_status(r, 405, 12)
    assert r.headers["allow"] == allow
    template = path.replace("CWAAAAAAAAAAAAAA", "{accessKeyId}")  # the message names the route
    assert err["message"] == f"method {method} is not allowed on {template}; allowed: {allow}"


def test_head_never_runs_a_get_handler(c: httpx.Client) -> None:
    """HEAD on the exchange would mint a key; it is a 405 like any other unbound method."""
    r = c.head("/v1/cwobject/temporary-credentials/api-token")
    assert r.status_code == 405 and r.headers["allow"] == "GET"


def test_health_and_openapi_need_no_token(server: CofferServer) -> None:
    assert httpx.get(server.api_url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.api_url + "/openapi.json").status_code == 200


# --- the OpenAPI document -----------------------------------------------------------------------

EXPECTED_OPERATIONS = {
    ("post", "/v1/cwobject/access-key"): "CWObject_CreateAccessKeyFromJWT",
    ("get", "/v1/cwobject/access-key"): "CWObject_ListAccessKeyInfo",
    ("get", "/v1/cwobject/access-key/{accessKeyId}"): "CWObject_GetAccessKeyInfo",
    ("put", "/v1/cwobject/access-key-status"): "CWObject_UpdateAccessKeyStatus",
    ("post", "/v1/cwobject/revoke-access-key/access-key"): "CWObject_RevokeAccessKeyByAccessKey",
    ("post", "/v1/cwobject/revoke-access-key/principal"): "CWObject_RevokeAccessKeysByPrincipal",
    ("post", "/v1/cwobject/coffer/access-key/rotate"): "CWObject_RotateAccessKey",  # Coffer's extension
    ("get", "/v1/cwobject/temporary-credentials/api-token"): "CWObject_CreateAccessKeyFromApiToken",
    ("get", "/v1/cwobject/access-policy"): "CWObject_ListAccessPolicies",
    ("post", "/v1/cwobject/access-policy"): "CWObject_EnsureAccessPolicy",
    ("delete", "/v1/cwobject/access-policy/{name}"): "CWObject_DeleteAccessPolicy",
    ("post", "/v1/cwobject/auth/can-i"): "CWObject_AuthCanI",
    ("post", "/v1/cwobject/auth/bucket-policy-lockout"): "CWObject_CheckBucketPolicyLockout",
    ("put", "/v1/cwobject/bucket/settings"): "CWObject_SetBucketSettings",
    ("get", "/v1/cwobject/bucket-info"): "CWObject_ListBucketInfo",
    ("get", "/v1/cwobject/bucket-info/{bucketName}"): "CWObject_GetBucketInfo",
    ("put", "/v1/cwobject/organization/settings"): "CWObject_SetOrganizationSettings",
    ("get", "/v1/cwobject/organization/settings"): "CWObject_GetOrganizationSettings",
    ("post", "/v1/cwobject/temporary-credentials/saml"): "CWObject_CreateAccessKeyFromSAML",
    ("post", "/v1/cwobject/temporary-credentials/oidc"): "CWObject_CreateAccessKeyFromOIDC",
    ("get", "/v1/cwobject/temporary-credentials/oidc/{orgId}"): "CWObject_CreateAccessKeyFromContainerCreds",
    **{
        (method, f"/v1beta1/workload-federation/{kind.lower()}-configs{suffix}"): f"WorkloadFederation_{rpc}"
        for kind in ("SAML", "OIDC")
        for method, suffix, rpc in (
            ("get", "", f"List{kind}Configs"),
            ("post", "", f"Create{kind}Config"),
            ("get", "/{uid}", f"Get{kind}Config"),
            ("patch", "/{uid}", f"Update{kind}Config"),
            ("delete", "/{uid}", f"Delete{kind}Config"),
        )
    },
}
ANONYMOUS = {"CWObject_CreateAccessKeyFromSAML", "CWObject_CreateAccessKeyFromOIDC"}


def test_openapi_describes_the_control_plane(server: CofferServer) -> None:
    spec = httpx.get(server.api_url + "/openapi.json").json()
    assert spec["openapi"] == "3.0.3"
    assert spec["security"] == [{"TokenAuth": []}]
    assert spec["components"]["securitySchemes"]["TokenAuth"] == {"type": "http", "scheme": "bearer"}
    assert spec["servers"][0]["url"] == server.api_url
    found = {
        (method, path): op["operationId"] for path, ops in spec["paths"].items() for method, op in ops.items()
    }
    assert found == EXPECTED_OPERATIONS
    assert spec["components"]["securitySchemes"]["ContainerCredentialsAuth"]["in"] == "header"
    for path, ops in spec["paths"].items():
        for op in ops.values():
            assert {"200", "400", "401", "403", "404"} <= set(op["responses"]), path
            assert op["tags"] == [op["operationId"].split("_")[0]]
            if op["operationId"] in ANONYMOUS:
                assert op["security"] == [], "anonymous: the signed credential is the authority"
            elif op["operationId"] == "CWObject_CreateAccessKeyFromContainerCreds":
                assert op["security"] == [{"ContainerCredentialsAuth": []}]
            else:
                assert "security" not in op, "the document's TokenAuth applies"
    create = spec["paths"]["/v1/cwobject/access-key"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert create["required"] == ["durationSeconds"]
    assert create["properties"]["durationSeconds"]["maximum"] == 43200
    param, extensions = spec["paths"]["/v1/cwobject/access-key/{accessKeyId}"]["get"]["parameters"]
    assert param == {"name": "accessKeyId", "in": "path", "required": True, "schema": {"type": "string"}}
    assert (extensions["name"], extensions["in"], extensions["required"]) == (
        "X-Coffer-Extensions",
        "header",
        False,
    )
