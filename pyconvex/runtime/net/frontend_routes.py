"""The project's own web frontend, built (``npm run build`` -> ``dist/``), served at ``/``.

The chat and task-board templates are a React app built with Vite beside ``convex/``; once
built, the deployment serves it itself, so one URL is the app, its API and its dashboard::

    GET /                 dist/index.html (no build yet: a redirect to /dashboard)
    GET /assets/...       dist/'s files (any path the routes before this one do not take)

Files are looked up when asked for, so a build made while the server runs is served at once.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from pyconvex.runtime.net.dashboard_routes import DASHBOARD


def frontend_routes(dist: Path | None) -> tuple[list[BaseRoute], list[BaseRoute]]:
    """``/`` (first) and the catch-all for ``dist``'s files (to go after every other route)."""

    async def home(request: Request) -> Response:
        index = None if dist is None else dist / "index.html"
        if index is not None and index.is_file():
            return FileResponse(index, headers={"Cache-Control": "no-cache"})
        return RedirectResponse(DASHBOARD, status_code=307)

    first: list[BaseRoute] = [Route("/", home, methods=["GET", "HEAD"])]
    if dist is None:
        return first, []
    return first, [Mount("/", app=_BuiltFiles(dist), name="frontend")]


class _BuiltFiles:
    """``dist``'s files for GET and HEAD; 404 for the API's paths and while nothing is built."""

    def __init__(self, dist: Path) -> None:
        self.dist = dist
        self.files = StaticFiles(directory=dist, check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/api/") or not self.dist.is_dir():
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
            return
        await self.files(scope, receive, send)


def built(dist: Path | None) -> bool:
    """Whether ``dist`` holds a built frontend."""
    return dist is not None and (dist / "index.html").is_file()
