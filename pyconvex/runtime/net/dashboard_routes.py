"""The dashboard: a page served by the deployment itself, behind a one-time login token.

``pyconvex dev`` prints ``/dashboard?token=<one-time token>`` at start. Opening it trades the
token for a session cookie (an HMAC of the admin key, so it outlives restarts and dies with the
key) and redirects to ``/dashboard``; without that cookie the page, its scripts and the admin
key behind them are refused. The page is plain ES modules (``dashboard_assets/``, no build
step, nothing loaded from elsewhere) and a client of the deployment's own API: it reads the
admin key from ``/dashboard/session`` and then subscribes over the sync protocol to the
``_system/dashboard:*`` queries, so it updates live::

    GET  /dashboard?token=T                 one-time: sets the cookie, 303 to /dashboard
    GET  /dashboard                         the page (cookie), else a page saying how to sign in
    GET  /dashboard/session                 {"adminKey", "url", ...} (cookie, same origin)
    GET  /dashboard/assets/<file>           the page's modules and styles (cookie)
    POST /api/_pyconvex/dashboard/login     (admin key) a new one-time token: pyconvex dashboard
    GET  /api/_pyconvex/functions           (admin key) the functions, their kinds and arguments
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pyconvex.runtime.net.admin_routes import PREFIX, admin_only

ASSETS = Path(__file__).with_name("dashboard_assets")
DASHBOARD = "/dashboard"
LOGIN_PATH = f"{PREFIX}/dashboard/login"
FUNCTIONS_PATH = f"{PREFIX}/functions"
#: Login tokens not yet used, at most (the oldest is forgotten first).
MAX_PENDING_TOKENS = 64
_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
}
#: Only the deployment's own origin: no script, style, image or socket from anywhere else.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

Handler = Callable[[Request], Awaitable[Response]]


class DashboardAccess:
    """One-time login tokens, and the session cookies they are traded for::

    access = DashboardAccess(lambda: deployment.admin_key)
    token = access.new_login_token()       # printed by pyconvex dev
    cookie = access.redeem(token)          # once; None the second time
    access.valid(cookie)                   # True while the admin key stays the same
    """

    def __init__(self, admin_key: Callable[[], str | None]) -> None:
        self._admin_key = admin_key
        self._pending: OrderedDict[str, None] = OrderedDict()

    def new_login_token(self) -> str:
        """A token that signs one browser in, once (None-safe: raises without an admin key)."""
        if self._admin_key() is None:
            raise RuntimeError("A deployment without an admin key has no dashboard.")
        token = secrets.token_urlsafe(24)
        self._pending[token] = None
        while len(self._pending) > MAX_PENDING_TOKENS:
            self._pending.popitem(last=False)
        return token

    def redeem(self, token: str) -> str | None:
        """The session cookie ``token`` buys (the token is spent), or None."""
        key = self._admin_key()
        if key is None or token not in self._pending:
            return None
        del self._pending[token]
        nonce = secrets.token_urlsafe(18)
        return f"{nonce}.{self._sign(key, nonce)}"

    def valid(self, cookie: str | None) -> bool:
        key = self._admin_key()
        if key is None or not cookie:
            return False
        nonce, _, mac = cookie.partition(".")
        return bool(nonce) and hmac.compare_digest(mac, self._sign(key, nonce))

    @staticmethod
    def _sign(key: str, nonce: str) -> str:
        digest = hmac.new(key.encode(), f"pyconvex-dashboard:{nonce}".encode(), hashlib.sha256)
        return digest.hexdigest()


def login_path(token: str) -> str:
    """Where a browser signs in with ``token``: append it to the deployment's URL."""
    return f"{DASHBOARD}?token={token}"


def _cookie_name(request: Request) -> str:
    # Cookies are per host, not per port: two servers on 127.0.0.1 keep their own.
    server = request.scope.get("server")
    return f"pyconvex_dashboard_{server[1] if server else 0}"


def _page(title: str, body: str, status: int) -> Response:
    html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<link rel='icon' href='data:,'><title>{title}</title>"
        f"<link rel='stylesheet' href='{DASHBOARD}/login.css'></head>"
        f"<body><main class='signin'><h1>{title}</h1>{body}</main></body></html>"
    )
    return Response(html, status_code=status, media_type="text/html", headers=_HEADERS)


SIGN_IN_HELP = (
    "<p>The dashboard needs the one-time link <code>pyconvex dev</code> printed when it started "
    "(<code>http://…/dashboard?token=…</code>). A link signs in one browser once; "
    "<code>pyconvex dashboard</code> prints a new one.</p>"
)


class DashboardRoutes:
    """The dashboard's routes over one deployment (module docstring)."""

    def __init__(self, deployment: object, access: DashboardAccess) -> None:
        self._deployment = deployment
        self.access = access

    def routes(self) -> list[BaseRoute]:
        admin_key = self._admin_key
        return [
            Route(DASHBOARD, self.index, methods=["GET"]),
            Route(f"{DASHBOARD}/", self.index, methods=["GET"]),
            Route(f"{DASHBOARD}/login.css", self.login_css, methods=["GET"]),
            Route(f"{DASHBOARD}/session", self.session, methods=["GET"]),
            Route(f"{DASHBOARD}/assets/{{name}}", self.asset, methods=["GET"]),
            Route(LOGIN_PATH, admin_only(self.login_token, admin_key), methods=["POST"]),
            Route(FUNCTIONS_PATH, admin_only(self.functions, admin_key), methods=["GET"]),
        ]

    def _admin_key(self) -> str | None:
        key: str | None = getattr(self._deployment, "admin_key", None)
        return key

    def _signed_in(self, request: Request) -> bool:
        return self.access.valid(request.cookies.get(_cookie_name(request)))

    async def index(self, request: Request) -> Response:
        token = request.query_params.get("token")
        if token is not None:
            cookie = self.access.redeem(token)
            if cookie is None:
                return _page(
                    "This sign-in link does not work",
                    "<p>It was used already, or it is not this server's.</p>" + SIGN_IN_HELP,
                    401,
                )
            response = RedirectResponse(DASHBOARD, status_code=303, headers=_HEADERS)
            response.set_cookie(
                _cookie_name(request), cookie, path=DASHBOARD, httponly=True, samesite="strict"
            )
            return response
        if self._admin_key() is None:
            return _page(
                "No dashboard here",
                "<p>This deployment runs without a data directory, so it has no admin key.</p>",
                404,
            )
        if not self._signed_in(request):
            return _page("Sign in to the pyconvex dashboard", SIGN_IN_HELP, 401)
        return _file(ASSETS / "index.html")

    async def login_css(self, request: Request) -> Response:
        return _file(ASSETS / "login.css")

    async def session(self, request: Request) -> Response:
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        if not self._signed_in(request) or (origin is not None and origin != own):
            return _json(
                {"code": "NotSignedIn", "message": "Open the dashboard's sign-in link."}, 401
            )
        dep = self._deployment
        return _json(
            {
                "adminKey": self._admin_key(),
                "siteUrl": getattr(dep, "site_url", None),
                "version": _version(),
            }
        )

    async def asset(self, request: Request) -> Response:
        if not self._signed_in(request):
            return _json(
                {"code": "NotSignedIn", "message": "Open the dashboard's sign-in link."}, 401
            )
        name = request.path_params["name"]
        path = ASSETS / name
        if "/" in name or name.startswith(".") or path.suffix not in _TYPES or not path.is_file():
            return _json({"code": "NotFound", "message": f"No dashboard file {name!r}."}, 404)
        return _file(path)

    async def login_token(self, request: Request) -> Response:
        token = self.access.new_login_token()
        return _json({"token": token, "path": login_path(token)})

    async def functions(self, request: Request) -> Response:
        return _json({"functions": describe_functions(self._deployment)})


def describe_functions(deployment: object) -> list[dict[str, Any]]:
    """The deployment's functions as the dashboard lists them (HTTP actions aside)."""
    functions: dict[str, Any] = getattr(deployment, "functions", {})
    out = []
    for path, fn in sorted(functions.items()):
        if fn.kind == "http_action":
            continue
        out.append(
            {
                "path": path,
                "kind": fn.kind,
                "visibility": fn.visibility,
                "args": None if fn.args is None else fn.args.to_json(),
                "returns": None if fn.returns is None else fn.returns.to_json(),
            }
        )
    return out


def _file(path: Path) -> Response:
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=_HEADERS)


def _json(content: Any, status: int = 200) -> Response:
    text = json.dumps(content, separators=(",", ":"), ensure_ascii=False)
    return Response(text, status_code=status, media_type="application/json", headers=_HEADERS)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyconvex")
    except PackageNotFoundError:
        return "development"
