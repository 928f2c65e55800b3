"""``pyconvex dev``'s own sign-in page: a development identity provider, never in ``serve``.

A web frontend sends the browser to ``/dev-auth/sign-in?return_to=<its URL>``; the page lists
people who signed in before (and a few to start with) and takes any other name: no password,
so anyone who reaches the server can be anyone — development only, and the page says so. The
choice comes back to ``return_to`` as ``#pyconvex_dev_token=<JWT>``, a token signed by
:class:`~pyconvex.runtime.auth.dev_issuer.DevIssuer` that the deployment checks like any
provider's (``pyconvex dev`` trusts the issuer: ``Deployment.trust``), so the frontend's
sign-in (``setAuth``, ``ctx.auth.get_user_identity()``) is the real flow::

    GET  /dev-auth/sign-in?return_to=URL               the user picker
    POST /dev-auth/sign-in  (name, email, return_to)   303 to URL#pyconvex_dev_token=...
    GET  /dev-auth/.well-known/openid-configuration    and /dev-auth/.well-known/jwks.json

``return_to`` must be on this machine (127.0.0.1, localhost, ::1) or on the server's own host.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pyconvex.runtime.auth.dev_issuer import DevIssuer

DEV_AUTH = "/dev-auth"
SIGN_IN = f"{DEV_AUTH}/sign-in"
TOKEN_FRAGMENT = "pyconvex_dev_token"
#: How long a dev token lasts (seconds): a working day; then the frontend signs in again.
TOKEN_LIFETIME_S = 12 * 3600.0
#: People remembered by the picker, at most.
MAX_REMEMBERED = 12
STARTERS = [
    {"name": "Ada Lovelace", "email": "ada@example.com"},
    {"name": "Alan Turing", "email": "alan@example.com"},
    {"name": "Grace Hopper", "email": "grace@example.com"},
]
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "img-src data:; frame-ancestors 'none'",
}


class DevSignIn:
    """The sign-in page's routes; ``issuer`` is set once the server knows its URL."""

    def __init__(self, people_file: Path | None = None) -> None:
        self.issuer: DevIssuer | None = None
        self.people_file = people_file

    def routes(self) -> list[BaseRoute]:
        return [
            Route(SIGN_IN, self.page, methods=["GET"]),
            Route(SIGN_IN, self.sign_in, methods=["POST"]),
            Route(f"{DEV_AUTH}/.well-known/openid-configuration", self.openid, methods=["GET"]),
            Route(f"{DEV_AUTH}/.well-known/jwks.json", self.jwks, methods=["GET"]),
        ]

    # -- the people the picker offers ------------------------------------------------------
    def people(self) -> list[dict[str, str]]:
        try:
            stored = json.loads(self.people_file.read_text()) if self.people_file else []
        except (OSError, ValueError):
            stored = []
        known = [p for p in stored if isinstance(p, dict) and {"name", "email"} <= set(p)]
        emails = {p["email"] for p in known}
        return known + [p for p in STARTERS if p["email"] not in emails]

    def _remember(self, person: dict[str, str]) -> None:
        if self.people_file is None:
            return
        stored = [p for p in self.people() if p["email"] != person["email"] and p not in STARTERS]
        with contextlib.suppress(OSError):  # else the picker only forgets the name
            self.people_file.write_text(json.dumps([person, *stored][:MAX_REMEMBERED], indent=1))

    # -- routes ------------------------------------------------------------------------------
    async def page(self, request: Request) -> Response:
        return_to = request.query_params.get("return_to", "")
        problem = _check_return_to(return_to, request)
        if problem:
            return _page(f"<p class='error'>{html.escape(problem)}</p>", 400)
        if self.issuer is None:
            return _page("<p>The sign-in page is starting; reload in a moment.</p>", 503)
        target = html.escape(return_to)
        choices = "".join(
            "<li><form method='post'>"
            f"<input type='hidden' name='return_to' value='{target}'>"
            f"<input type='hidden' name='name' value='{html.escape(p['name'])}'>"
            f"<input type='hidden' name='email' value='{html.escape(p['email'])}'>"
            f"<button type='submit'>{html.escape(p['name'])} "
            f"<span>{html.escape(p['email'])}</span></button></form></li>"
            for p in self.people()
        )
        body = (
            "<ul class='people' aria-label='People who signed in before'>" + choices + "</ul>"
            "<h2>Someone else</h2>"
            "<form method='post' class='new'>"
            f"<input type='hidden' name='return_to' value='{target}'>"
            "<label>Name <input name='name' id='name' required autocomplete='off'></label>"
            "<label>Email <input name='email' id='email' type='email' autocomplete='off' "
            "placeholder='made from the name if empty'></label>"
            "<button type='submit'>Sign in</button></form>"
        )
        return _page(body, 200)

    async def sign_in(self, request: Request) -> Response:
        # An HTML form's urlencoded body (read here: Starlette's form() needs python-multipart).
        fields = parse_qs((await request.body())[:65536].decode(errors="replace"))
        form = {k: v[0] for k, v in fields.items()}
        return_to = form.get("return_to", "")
        problem = _check_return_to(return_to, request)
        if problem:
            return _page(f"<p class='error'>{html.escape(problem)}</p>", 400)
        if self.issuer is None:
            return _page("<p>The sign-in page is starting; go back and try again.</p>", 503)
        name = form.get("name", "").strip()[:100]
        if not name:
            return _page("<p class='error'>A name is needed: go back and type one.</p>", 400)
        email = form.get("email", "").strip().lower()[:200]
        if "@" not in email:
            email = re.sub(r"[^a-z0-9]+", ".", name.lower()).strip(".") + "@example.com"
        person = {"name": name, "email": email}
        self._remember(person)
        token = self.issuer.sign(
            email, lifetime_s=TOKEN_LIFETIME_S, name=name, email=email, email_verified=True
        )
        base = return_to.split("#", 1)[0]
        return RedirectResponse(f"{base}#{TOKEN_FRAGMENT}={token}", 303, headers=_HEADERS)

    async def openid(self, request: Request) -> Response:
        if self.issuer is None:
            return JSONResponse({"code": "Starting"}, 503)
        return JSONResponse(self.issuer.openid_configuration())

    async def jwks(self, request: Request) -> Response:
        if self.issuer is None:
            return JSONResponse({"code": "Starting"}, 503)
        return JSONResponse(self.issuer.jwks())


def _check_return_to(url: str, request: Request) -> str | None:
    """Why the token may not go to ``url`` (None: it may): only this machine or this host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return (
            "This sign-in page gives its token back to the page that sent you here: it needs "
            "return_to=<that page's http(s) URL>."
        )
    own = request.url.hostname
    if parts.hostname not in _LOCAL_HOSTS and parts.hostname != own:
        return f"The dev sign-in page only signs in pages on this machine, not {parts.hostname}."
    return None


def _page(body: str, status: int) -> Response:
    text = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<link rel='icon' href='data:,'><title>Sign in (development) · pyconvex</title>"
        f"<style>{_STYLE}</style></head><body><main>"
        "<p class='banner' role='note'><strong>Development sign-in.</strong> pyconvex dev "
        "signs you in as anyone you pick, without a password; <code>pyconvex serve</code> has "
        "no such page (list a real provider in convex/auth_config.py).</p>"
        f"<h1>Sign in as</h1>{body}</main></body></html>"
    )
    return Response(text, status_code=status, media_type="text/html", headers=_HEADERS)


_STYLE = """
:root { color-scheme: light dark; font-family: system-ui, sans-serif; }
body { margin: 0; display: grid; place-items: start center; }
main { width: min(30rem, 100% - 2rem); padding: 2rem 0; line-height: 1.4; }
.banner { background: #fff4d6; color: #5a4300; border: 1px solid #e0b84c; padding: 0.6rem 0.8rem;
  border-radius: 6px; }
.error { color: #c0392b; }
.people { list-style: none; padding: 0; display: grid; gap: 0.4rem; }
.people button { width: 100%; text-align: left; display: flex; justify-content: space-between; }
.people span { color: #6b7785; }
button, input { font: inherit; padding: 0.45rem 0.7rem; border-radius: 6px;
  border: 1px solid #c6ced8; background: transparent; color: inherit; }
button { cursor: pointer; }
.new { display: grid; gap: 0.6rem; }
.new label { display: grid; gap: 0.2rem; }
:focus-visible { outline: 3px solid #f0a500; outline-offset: 1px; }
"""
