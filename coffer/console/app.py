"""The console's routes, under /console on the API port (`coffer.server` mounts them beside
the control plane's).

- `/console`, `/console/...`: the one HTML page (the page's script picks the view from
  the path), with a strict Content-Security-Policy: scripts and styles only from this
  origin, no inline code, no framing.
- `/console/static/...`: the page's CSS and JavaScript, shipped in the package; no CDN,
  no build step.
- `/console/api/session`: sign in (POST), who am I and the CSRF token (GET), sign out
  (DELETE).
- `/console/api/buckets/...`: buckets and objects, through the S3 face (see buckets.py).

Access keys and organization policies need no console endpoints: the page calls the
control plane's own routes (`/v1/cwobject/...`) with the session cookie.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from coffer.config import Settings
from coffer.console import buckets, lifecycle
from coffer.console.session import session_info, sign_in, sign_out
from coffer.errors import NotFound

PREFIX = "/console"
API = PREFIX + "/api"
STATIC_DIR = Path(__file__).parent / "static"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@lru_cache(maxsize=1)
def _page() -> bytes:
    return (STATIC_DIR / "index.html").read_bytes()


async def page(request: Request) -> Response:
    return Response(_page(), media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


async def api_not_found(request: Request) -> Response:
    raise NotFound(f"no console API route for {request.method} {request.url.path}")


class Assets(StaticFiles):
    """The page's files, never sniffed into another type and revalidated by ETag."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def routes(settings: Settings) -> list[BaseRoute]:
    if not settings.console:
        return []
    return [
        Route(API + "/session", sign_in, methods=["POST"]),
        Route(API + "/session", session_info, methods=["GET"]),
        Route(API + "/session", sign_out, methods=["DELETE"]),
        *buckets.routes(API),
        *lifecycle.routes(API),
        Route(API + "/{rest:path}", api_not_found),
        Mount(PREFIX + "/static", app=Assets(directory=STATIC_DIR), name="console-static"),
        Route(PREFIX, page, methods=["GET"]),
        Route(PREFIX + "/{view:path}", page, methods=["GET"]),
    ]
