"""Sign-in, the session cookie, CSRF, session end and sign-out, in a real browser."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.console import api_with_cookie, new_context, session_cookie, shot, sign_in
from tests.support.harness import CofferServer, start_server, stop_server
from tests.support.s3 import unique


def test_sign_in_page_is_served_with_a_strict_policy(server: CofferServer) -> None:
    r = httpx.get(server.api_url + "/console/access-keys")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    # Every asset the page names is shipped in the package and served from this origin.
    js = httpx.get(server.api_url + "/console/static/js/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert js.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(server.api_url + "/console/static/console.css").status_code == 200


def test_unknown_console_api_route_is_json_404(server: CofferServer) -> None:
    r = httpx.get(server.api_url + "/console/api/nope")
    assert r.status_code == 404
    assert r.json()["code"] == 5


def test_a_wrong_token_is_refused_inline(page: Page) -> None:
    page.goto("/console/")
    expect(page.get_by_role("heading", name="Sign in to Coffer")).to_be_visible()
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Paste an API access token.")).to_be_visible()
    page.get_by_label("API access token").fill("cwt_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("was not accepted")
    expect(page.get_by_label("API access token")).to_be_focused()
    shot(page, "sign-in-error")
    assert not [c for c in page.context.cookies() if "coffer" in c["name"]]


def test_sign_in_sets_a_strict_http_only_session(page: Page, server: CofferServer) -> None:
    page.goto("/console/buckets")  # a deep link: after sign-in the console goes there
    expect(page).to_have_url(server.api_url + "/console/sign-in?next=%2Fconsole%2Fbuckets")
    shot(page, "sign-in")
    page.get_by_label("API access token").fill(server.admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Buckets")).to_be_visible()
    expect(page).to_have_url(server.api_url + "/console/buckets")
    expect(page.locator("#account-name")).to_contain_text("admin")
    cookie = session_cookie(page.context)
    assert cookie["name"] == "coffer-session"  # plain HTTP: no Secure, so no __Host- prefix
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False
    assert cookie["path"] == "/"
    # The session is a NEW token (not the one pasted), living 8 hours by default.
    assert cookie["value"] != server.admin_token
    assert abs(cookie["expires"] - (time.time() + 8 * 3600)) < 600
    # The page cannot read it.
    assert page.evaluate("document.cookie") == ""
    # The session is listed like every token, stored hashed.
    tokens = json.loads(server.cli("admin", "token", "list", "--json").stdout)
    assert any(t["name"] == "console session" for t in tokens)


def test_the_cookie_authenticates_the_control_plane_and_changes_need_csrf(
    page: Page, server: CofferServer
) -> None:
    sign_in(page, server.admin_token)
    cookie = session_cookie(page.context)
    with api_with_cookie(server, cookie) as c:
        assert c.get("/v1/cwobject/access-key").status_code == 200
        # A state-changing call with the cookie but without X-CSRF-Token: refused, 403.
        r = c.post("/v1/cwobject/access-key", json={"durationSeconds": 60})
        assert r.status_code == 403
        assert "X-CSRF-Token" in r.json()["message"]
        r = c.post(
            "/v1/cwobject/access-key", json={"durationSeconds": 60}, headers={"X-CSRF-Token": "0" * 64}
        )
        assert r.status_code == 403
        r = c.delete("/console/api/session")
        assert r.status_code == 403
        r = c.post("/console/api/buckets", json={"name": "csrf-less"})
        assert r.status_code == 403
    # The same from inside the page: fetch with the cookie but no header is refused...
    status = page.evaluate(
        """async () => (await fetch('/v1/cwobject/access-key', {method: 'POST',
             headers: {'Content-Type': 'application/json'}, body: '{"durationSeconds": 60}'})).status"""
    )
    assert status == 403
    # ...and with the session's CSRF token (from GET /console/api/session) it is accepted.
    status = page.evaluate(
        """async () => {
             const s = await (await fetch('/console/api/session')).json();
             const r = await fetch('/v1/cwobject/access-key', {method: 'POST',
               headers: {'Content-Type': 'application/json', 'X-CSRF-Token': s.csrfToken},
               body: '{"durationSeconds": 60, "attributes": {"name": "csrf-ok"}}'});
             return r.status;
           }"""
    )
    assert status == 200


def test_a_bearer_request_ignores_the_cookie(page: Page, server: CofferServer) -> None:
    """With an Authorization header the cookie plays no part (no CSRF needed, none used)."""
    sign_in(page, server.admin_token)
    cookie = session_cookie(page.context)
    with httpx.Client(base_url=server.api_url, cookies={cookie["name"]: cookie["value"]}) as c:
        r = c.get("/v1/cwobject/access-key", headers={"Authorization": "Bearer cwt_wrong"})
        assert r.status_code == 401
        r = c.post(
            "/v1/cwobject/access-key",
            json={"durationSeconds": 60},
            headers={"Authorization": f"Bearer {server.admin_token}"},
        )
        assert r.status_code == 200


def test_sign_in_from_another_origin_is_refused(server: CofferServer) -> None:
    r = httpx.post(
        server.api_url + "/console/api/session",
        json={"token": server.admin_token},
        headers={"Origin": "http://evil.example"},
    )
    assert r.status_code == 403
    assert "set-cookie" not in r.headers
    r = httpx.post(
        server.api_url + "/console/api/session",
        content=f"token={server.admin_token}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400
    assert "set-cookie" not in r.headers


def console_keys(server: CofferServer) -> list[dict[str, Any]]:
    with server.api() as c:
        keys = c.get("/v1/cwobject/access-key", params={"limit": 1000}).json()["info"]
    return [k for k in keys if k["attributes"].get("name") == "console"]


def test_sign_out_removes_the_cookie_and_ends_the_session(page: Page, server: CofferServer) -> None:
    sign_in(page, server.admin_token)
    old = session_cookie(page.context)
    before = {k["accessKeyId"] for k in console_keys(server)}
    # Browsing buckets makes the console mint its temporary S3 key for this session.
    page.get_by_role("link", name="Buckets").click()
    expect(page.get_by_text("No buckets yet").or_(page.get_by_role("table", name="Buckets"))).to_be_visible()
    minted = [k for k in console_keys(server) if k["accessKeyId"] not in before]
    assert len(minted) == 1 and minted[0]["status"] == "ACTIVE"
    assert (
        minted[0]["principalName"]
        == page.evaluate("fetch('/console/api/session').then(r => r.json())")["user"]["principalName"]
    )
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    assert not [c for c in page.context.cookies() if "coffer" in c["name"]]
    # The old session token is revoked: the API refuses it.
    with api_with_cookie(server, old) as c:
        r = c.get("/v1/cwobject/access-key")
        assert r.status_code == 401
        assert "revoked" in r.json()["message"]
    # The session's console key is revoked with it.
    (after,) = [k for k in console_keys(server) if k["accessKeyId"] == minted[0]["accessKeyId"]]
    assert after["status"] == "REVOKED"
    # And the console no longer shows anything behind the sign-in.
    page.goto("/console/access-keys")
    expect(page.get_by_role("heading", name="Sign in to Coffer")).to_be_visible()


def test_a_session_ended_elsewhere_sends_the_page_to_sign_in(page: Page, server: CofferServer) -> None:
    user = unique("ended")
    _, token = server.create_user(user, admin=True)
    sign_in(page, token)
    expect(page.get_by_role("heading", name="Access Keys")).to_be_visible()
    tokens = json.loads(server.cli("admin", "token", "list", "--user", user, "--json").stdout)
    (session,) = [t for t in tokens if t["name"] == "console session"]
    server.cli("admin", "token", "revoke", session["id"])
    page.get_by_role("link", name="Buckets").click()
    expect(page.get_by_text("Your session has ended. Sign in again to continue.")).to_be_visible()
    expect(page.get_by_role("heading", name="Sign in to Coffer")).to_be_visible()


def test_the_session_lifetime_is_configurable(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    srv = start_server(
        tmp_path_factory.mktemp("short-session"),
        "sqlite",
        extra_args=["--console-session-seconds", "120"],
    )
    try:
        ctx: BrowserContext = new_context(browser, srv)
        page = ctx.new_page()
        sign_in(page, srv.admin_token)
        cookie = session_cookie(ctx)
        assert abs(cookie["expires"] - (time.time() + 120)) < 60
        tokens = json.loads(srv.cli("admin", "token", "list", "--json").stdout)
        session = next(t for t in tokens if t["name"] == "console session")
        assert session["expiresAt"] is not None
        ctx.close()
    finally:
        stop_server(srv)


def test_the_console_can_be_turned_off(tmp_path_factory: pytest.TempPathFactory) -> None:
    srv = start_server(tmp_path_factory.mktemp("no-console"), "sqlite", extra_args=["--no-console"])
    try:
        for path in ("/console", "/console/access-keys", "/console/static/js/app.js"):
            r = httpx.get(srv.api_url + path)
            assert r.status_code == 404, path
            assert r.json()["code"] == 5
        r = httpx.post(srv.api_url + "/console/api/session", json={"token": srv.admin_token})
        assert r.status_code == 404
        assert "set-cookie" not in r.headers
        # The API itself is unaffected.
        with srv.api() as c:
            assert c.get("/v1/cwobject/access-key").status_code == 200
    finally:
        stop_server(srv)


def test_behind_a_tls_proxy_the_cookie_is_secure(server: CofferServer) -> None:
    host = server.api_url.removeprefix("http://")
    r = httpx.post(
        server.api_url + "/console/api/session",
        json={"token": server.admin_token},
        headers={"X-Forwarded-Proto": "https", "Origin": f"https://{host}"},
    )
    assert r.status_code == 200, r.text
    set_cookie = r.headers["set-cookie"]
    assert set_cookie.startswith("__Host-coffer-session=")
    for attribute in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
        assert attribute.lower() in set_cookie.lower(), set_cookie
    assert "domain=" not in set_cookie.lower()
    assert r.json()["s3Endpoint"].startswith("https://")
    value = set_cookie.split(";", 1)[0].split("=", 1)[1]
    with httpx.Client(base_url=server.api_url, cookies={"__Host-coffer-session": value}) as c:
        info = c.get("/console/api/session").json()
        assert c.get("/v1/cwobject/access-key").status_code == 200
        assert c.post("/v1/cwobject/access-key", json={"durationSeconds": 60}).status_code == 403
        r = c.post(
            "/v1/cwobject/access-key",
            json={"durationSeconds": 60},
            headers={"X-CSRF-Token": info["csrfToken"]},
        )
        assert r.status_code == 200
        assert (
            c.delete("/console/api/session", headers={"X-CSRF-Token": info["csrfToken"]}).status_code == 200
        )
        assert c.get("/v1/cwobject/access-key").status_code == 401
