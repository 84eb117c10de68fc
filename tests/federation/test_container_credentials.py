"""boto3's own container-credentials provider against Coffer's two container endpoints.

Nothing is faked on the client side: a fresh `boto3.session.Session()` finds
`AWS_CONTAINER_CREDENTIALS_FULL_URI` (and the token, or the token file) in the environment,
exactly as in a pod, and botocore fetches and refreshes the keys itself. The tests only
watch: a `before-send` hook reads which key signed each S3 request, and a thin wrapper
around the provider's own fetch function records what every fetch returned (the secret and
session token are needed to show that an expired key is refused when used directly).

botocore treats credentials with less than 15 minutes left as due for an advisory refresh
and less than 10 minutes as due for a mandatory one (botocore/credentials.py), so with
60-second keys every request is preceded by a fetch: a new key per request. That is what
the tests assert; a run across the first key's expiry shows the provider keeps working
with no help, and that the key it dropped is dead.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import ClientError, CredentialRetrievalError
from botocore.utils import ContainerMetadataFetcher

from tests.support.api import key_info, wait_for
from tests.support.harness import CofferServer
from tests.support.idp import OIDC_AUDIENCE, mint_jwt, rsa_key
from tests.support.s3 import REGION, client_error

KEY_SECONDS = 60
API_TOKEN_PATH = "/v1/cwobject/temporary-credentials/api-token"
IDP_KEY = rsa_key("container-idp")
STRANGER_KEY = rsa_key("container-stranger")
SUBJECTS = ("system:serviceaccount:ml:trainer", "system:serviceaccount:ml:evaluator", "clip")


@pytest.fixture(scope="module")
def server_options() -> dict[str, Any]:
    return {
        "extra_args": [
            "--api-token-key-duration",
            str(KEY_SECONDS),
            "--oidc-container-key-duration",
            str(KEY_SECONDS),
        ]
    }


@dataclass(frozen=True)
class Oidc:
    org_id: str
    issuer: str

    @property
    def url_path(self) -> str:
        return f"/v1/cwobject/temporary-credentials/oidc/{self.org_id}"

    def principal(self, sub: str) -> str:
        return f"role/{self.issuer}:{sub}"

    def jwt(self, sub: str, *, lifetime: timedelta = timedelta(hours=1), key: Any = IDP_KEY) -> str:
        return mint_jwt(key, issuer=self.issuer, now=datetime.now(UTC), lifetime=lifetime, sub=sub)


@pytest.fixture(scope="module")
def oidc(server: CofferServer) -> Oidc:
    """An OIDC configuration with an inline JWK Set, and an org policy for its workloads."""
    issuer = f"https://oidc-{secrets.token_hex(4)}.idp.example.test"
    with server.api() as api:
        r = api.post(
            "/v1beta1/workload-federation/oidc-configs",
            json={
                "name": "container-test",
                "issuerUrl": issuer,
                "audience": OIDC_AUDIENCE,
                "jwks": {"keys": [IDP_KEY.jwk("k1")]},
            },
        )
        assert r.status_code == 200, r.text
        found = Oidc(r.json()["config"]["orgUid"], issuer)
        statement = {
            "name": "workloads-s3",
            "effect": "Allow",
            "actions": ["s3:*"],
            "resources": ["*"],
            "principals": [found.principal(sub) for sub in SUBJECTS],
        }
        doc = {"version": "v1alpha1", "name": "container-workloads", "statements": [statement]}
        r = api.post("/v1/cwobject/access-policy", json={"policy": doc})
        assert r.status_code == 200, r.text
    return found


# --- the client side ---------------------------------------------------------------------------


@dataclass
class Workload:
    """One boto3 session using the container provider, and what it was seen to do."""

    session: boto3.session.Session
    creds: RefreshableCredentials
    s3: Any
    fetched: list[dict[str, Any]] = field(default_factory=list)  # every key the provider fetched
    signed_with: list[str] = field(default_factory=list)  # the access key id of every S3 request

    def key(self, access_key_id: str) -> dict[str, Any]:
        (found,) = [f for f in self.fetched if f["access_key"] == access_key_id]
        return found


@contextlib.contextmanager
def container_env(
    tmp_path: Path, full_uri: str, *, token: str | None = None, token_file: Path | None = None
) -> Iterator[None]:
    """The environment a pod would have: the container provider and nothing else.

    botocore's provider reads `os.environ` live at every refresh, so each workload's calls
    run inside its own environment; no other credential source can answer.
    """
    with pytest.MonkeyPatch.context() as mp:
        for name in (
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        ):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        mp.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uri)
        if token is not None:
            mp.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", token)
        if token_file is not None:
            mp.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token_file))
        yield


def start_workload(server: CofferServer) -> Workload:
    """Call inside `container_env`: the session's provider loads its first key now."""
    session = boto3.session.Session(region_name=REGION)
    creds = session.get_credentials()
    assert isinstance(creds, RefreshableCredentials), type(creds)
    assert creds.method == "container-role"
    s3 = session.client(
        "s3",
        endpoint_url=server.s3_url,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"}),
    )
    assert s3._request_signer._credentials is creds  # the client signs with the provider's object
    workload = Workload(session, creds, s3)
    provider_fetch = creds._refresh_using  # the provider's fetch; it re-reads the token (file) every time
    workload.fetched.append(
        {
            "access_key": creds._access_key,
            "secret_key": creds._secret_key,
            "token": creds._token,
            "expiry_time": creds._expiry_time,
        }
    )

    def recording_fetch() -> dict[str, Any]:
        data: dict[str, Any] = provider_fetch()
        workload.fetched.append({**data, "expiry_time": _parse_time(data["expiry_time"])})
        return data

    creds._refresh_using = recording_fetch

    def note_signer(request: Any, **_: Any) -> None:
        auth = request.headers.get("Authorization", b"")
        auth = auth.decode() if isinstance(auth, bytes) else auth
        workload.signed_with.append(auth.split("Credential=", 1)[1].split("/", 1)[0])

    s3.meta.events.register("before-send.s3", note_signer)
    return workload


def _parse_time(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def s3_round_trip(w: Workload, bucket: str, name: str) -> str:
    """PUT then GET an object; returns the key id that signed the GET."""
    body = secrets.token_bytes(64)
    w.s3.put_object(Bucket=bucket, Key=name, Body=body)
    assert w.s3.get_object(Bucket=bucket, Key=name)["Body"].read() == body
    return w.signed_with[-1]


def direct_client(server: CofferServer, key: dict[str, Any]) -> Any:
    """A client holding one fixed key (no provider): used to try a key the provider dropped."""
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=server.s3_url,
        region_name=REGION,
        aws_access_key_id=key["access_key"],
        aws_secret_access_key=key["secret_key"],
        aws_session_token=key["token"],
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"}),
    )


def admin_principal(server: CofferServer) -> str:
    with server.api() as api:
        r = api.post("/v1/cwobject/access-key", json={"durationSeconds": 60})
        assert r.status_code == 200, r.text
        return str(r.json()["principalName"])


def write_token(path: Path, token: str) -> None:
    """Replace the file atomically, as the kubelet does when it rotates a projected token."""
    staged = path.with_suffix(".new")
    staged.write_text(token)  # no trailing newline: botocore refuses one in a header value
    staged.replace(path)


def in_env(env: Callable[[], contextlib.AbstractContextManager[None]], action: Callable[[], Any]) -> Any:
    with env():
        return action()


# --- the tests -------------------------------------------------------------------------------------


def test_provider_keeps_working_across_key_expiry_for_both_endpoints(
    server: CofferServer, oidc: Oidc, tmp_path: Path
) -> None:
    """api-token (AWS_CONTAINER_AUTHORIZATION_TOKEN) and OIDC (..._TOKEN_FILE, rotated) side by
    side, so one wait past the first keys' expiry serves both."""
    bucket = f"container-{secrets.token_hex(4)}"
    admin = admin_principal(server)

    def api_env() -> contextlib.AbstractContextManager[None]:
        return container_env(tmp_path, server.api_url + API_TOKEN_PATH, token=f"Bearer {server.admin_token}")

    token_file = tmp_path / "projected-token"
    write_token(token_file, oidc.jwt(SUBJECTS[0]))

    def oidc_env() -> contextlib.AbstractContextManager[None]:
        return container_env(tmp_path, server.api_url + oidc.url_path, token_file=token_file)

    # Before: both workloads get keys from the provider and use them.
    api_w = in_env(api_env, lambda: start_workload(server))
    oidc_w = in_env(oidc_env, lambda: start_workload(server))
    in_env(api_env, lambda: api_w.s3.create_bucket(Bucket=bucket))
    first_api = in_env(api_env, lambda: s3_round_trip(api_w, bucket, "api-before"))
    first_oidc = in_env(oidc_env, lambda: s3_round_trip(oidc_w, bucket, "oidc-before"))

    for w, principal in ((api_w, admin), (oidc_w, oidc.principal(SUBJECTS[0]))):
        loaded = w.fetched[0]
        now = datetime.now(UTC)
        assert now < loaded["expiry_time"] <= now + timedelta(seconds=KEY_SECONDS + 1)
        assert loaded["token"], "container keys carry a session token"
        # 60 s is inside botocore's refresh window, so the provider fetched before every
        # request: each request was signed with the key fetched just before it.
        assert len(w.fetched) >= len(w.signed_with) + 1
        assert len(set(w.signed_with)) == len(w.signed_with)
        assert loaded["access_key"] not in w.signed_with
        for key_id in w.signed_with:
            info = key_info(server, key_id)
            assert info["principalName"] == principal
            assert info["status"] == "ACTIVE"
    assert key_info(server, first_oidc)["orgId"] == oidc.org_id
    # Used directly (key, secret and session token), the first keys work while they live.
    for key_id, w in ((first_api, api_w), (first_oidc, oidc_w)):
        direct_client(server, w.key(key_id)).head_bucket(Bucket=bucket)

    # The pod's token is rotated: the kubelet writes a new one for another service account.
    write_token(token_file, oidc.jwt(SUBJECTS[1]))

    # Wait until every key fetched so far has expired (about a minute).
    dropped = [*api_w.fetched, *oidc_w.fetched]
    deadline = max(k["expiry_time"] for k in dropped) + timedelta(seconds=1)
    time.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()))

    # After: the same clients still work; the provider fetched fresh keys by itself.
    later_api = in_env(api_env, lambda: s3_round_trip(api_w, bucket, "api-after"))
    later_oidc = in_env(oidc_env, lambda: s3_round_trip(oidc_w, bucket, "oidc-after"))
    dropped_ids = {k["access_key"] for k in dropped}
    assert later_api not in dropped_ids and later_oidc not in dropped_ids
    assert key_info(server, later_api)["principalName"] == admin
    # The refresh re-read the token file: the key belongs to the rotated token's subject.
    assert key_info(server, later_oidc)["principalName"] == oidc.principal(SUBJECTS[1])
    assert key_info(server, first_oidc)["principalName"] == oidc.principal(SUBJECTS[0])
    got = in_env(oidc_env, lambda: oidc_w.s3.get_object(Bucket=bucket, Key="api-after")["Body"].read())
    assert len(got) == 64

    # The keys the provider dropped are dead: used directly, with their session token, S3
    # refuses them with ExpiredToken (400, as AWS answers an expired session credential).
    for key_id, w in ((first_api, api_w), (first_oidc, oidc_w)):
        assert key_info(server, key_id)["status"] == "EXPIRED"
        with pytest.raises(ClientError) as refused:
            direct_client(server, w.key(key_id)).head_bucket(Bucket=bucket)
        assert client_error(refused.value) == (400, "400")  # HEAD: status only, no body
        with pytest.raises(ClientError) as refused:
            direct_client(server, w.key(key_id)).get_object(Bucket=bucket, Key="api-before")
        assert client_error(refused.value) == (400, "ExpiredToken")


def test_oidc_container_key_never_outlives_the_token(
    server: CofferServer, oidc: Oidc, tmp_path: Path
) -> None:
    token = oidc.jwt(SUBJECTS[2], lifetime=timedelta(seconds=30))
    exp = datetime.fromtimestamp(json.loads(_jwt_payload(token))["exp"], UTC)
    token_file = tmp_path / "short-token"
    write_token(token_file, token)
    with container_env(tmp_path, server.api_url + oidc.url_path, token_file=token_file):
        w = start_workload(server)
        bucket = f"clip-{secrets.token_hex(4)}"
        w.s3.create_bucket(Bucket=bucket)
    now = datetime.now(UTC)
    assert w.fetched, "the provider fetched at least once"
    for key in w.fetched:
        assert now < key["expiry_time"] <= exp, (key["expiry_time"], exp)
        # 60 s was asked for by the server setting; the token's 30 s won.
        assert key["expiry_time"] <= now + timedelta(seconds=31)
        info = key_info(server, key["access_key"])
        assert _parse_time(info["expiry"]) <= exp
        assert info["principalName"] == oidc.principal(SUBJECTS[2])

    # The same answer on the wire, without botocore in between.
    r = httpx.get(server.api_url + oidc.url_path, headers={"Authorization": token}, timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} <= set(body)
    assert _parse_time(body["Expiration"]) <= exp


def _jwt_payload(token: str) -> str:
    import base64

    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


def assert_provider_gives_up(call: Callable[[], Any], status: int, detail: str) -> None:
    """`call` fails within 20 s with the container provider's error, which carries the
    endpoint's `status` and `detail`."""
    started = time.monotonic()
    with pytest.raises(CredentialRetrievalError) as info:
        call()
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert "container-role" in message
    assert f"non 200 response {status}" in message, message
    assert detail in message, message
    assert elapsed < 20, f"the provider took {elapsed:.1f}s to give up"


def test_a_wrong_token_in_the_file_fails_the_provider_clearly(
    server: CofferServer, oidc: Oidc, tmp_path: Path
) -> None:
    token_file = tmp_path / "wrong-token"
    before = len(server.audit("federation_denied"))

    # Signed by a key the configuration does not trust: the first load fails.
    write_token(token_file, oidc.jwt(SUBJECTS[0], key=STRANGER_KEY))
    with container_env(tmp_path, server.api_url + oidc.url_path, token_file=token_file):
        assert_provider_gives_up(
            boto3.session.Session(region_name=REGION).get_credentials,
            401,
            "signature: the token's signature does not verify",
        )

    # Not a JWT at all, after a good start: the next refresh (mandatory for a 60 s key)
    # fails the S3 call itself instead of sending it with stale credentials.
    write_token(token_file, oidc.jwt(SUBJECTS[0]))
    with container_env(tmp_path, server.api_url + oidc.url_path, token_file=token_file):
        w = start_workload(server)
        write_token(token_file, "not-a-jwt")
        assert_provider_gives_up(w.s3.list_buckets, 400, "token: the token is not a compact JWS")
    assert not w.signed_with, "no request was sent with the old key"

    def denied() -> list[dict[str, Any]]:
        return [
            e
            for e in server.audit("federation_denied")[before:]
            if e.get("action") == "cwobject:CreateAccessKeyFromContainerCreds"
        ]

    # One line per refused presentation: botocore tried each bad token RETRY_ATTEMPTS times.
    tries = ContainerMetadataFetcher.RETRY_ATTEMPTS
    assert wait_for(lambda: len(denied()) >= 2 * tries, timeout=10), denied()
    assert (
        sorted((e["check"], e["status"]) for e in denied())
        == [("signature", 401)] * tries + [("token", 400)] * tries
    )
    for entry in denied():
        assert entry["org_id"] == oidc.org_id
        assert entry["client"] == "127.0.0.1"
        assert "not-a-jwt" not in json.dumps(entry)  # the credential itself is never logged


def test_api_token_credentials_shape(server: CofferServer) -> None:
    """What botocore parses: the AWS container-credentials JSON, a key bound to its token."""
    r = httpx.get(
        server.api_url + API_TOKEN_PATH, headers={"Authorization": f"Bearer {server.admin_token}"}, timeout=30
    )
    assert r.status_code == 200, r.text
    body = r.json()
    expiry = _parse_time(body["Expiration"])
    assert timedelta(seconds=KEY_SECONDS - 5) <= expiry - datetime.now(UTC) <= timedelta(seconds=KEY_SECONDS)
    assert body["Token"]
    key = {"access_key": body["AccessKeyId"], "secret_key": body["SecretAccessKey"], "token": body["Token"]}
    direct_client(server, key).list_buckets()
    without_token = {**key, "token": None}
    with pytest.raises(ClientError) as info:
        direct_client(server, without_token).list_buckets()
    assert client_error(info.value) == (400, "InvalidToken")
