"""HTTP actions: ``convex/http.py`` defines ``http = HttpRouter()`` and routes requests to
handlers, served on the deployment's site port (the API port + 1, 3211 by default)::

    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    from pyconvex import HttpRouter
    from ._generated.api import api

    http = HttpRouter()

    @http.route("/tasks", method="POST")
    async def create_task(ctx, request: Request) -> Response:
        body = await request.json()
        task_id = await ctx.run_mutation(api.tasks.create, {"text": body["text"]})
        return JSONResponse({"id": task_id}, status_code=201)

    http.route(path_prefix="/files/", method="GET", handler=serve_file)
    http.cors(path="/tasks")      # answer browsers' preflight requests for /tasks

A handler is ``async def handler(ctx, request)``: ``ctx`` is an action ctx (``run_query``,
``run_mutation``, ``run_action``, ``storage``, ``scheduler``), ``request`` a Starlette
``Request``; it returns a Starlette ``Response``. An exact path wins over a prefix, and the
longest prefix wins; ``HEAD`` is routed as ``GET``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, overload

from pyconvex.errors import PyconvexError

ROUTABLE_METHODS = ("GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")

#: ``async def handler(ctx, request) -> Response``.
HttpHandler = Callable[[Any, Any], Awaitable[Any]]


class HttpRouteError(PyconvexError, ValueError):
    """A route definition is invalid (the message says what to change)."""


@dataclass(frozen=True, slots=True)
class HttpRoute:
    """One route: an exact ``path`` or a ``path_prefix`` (ending in ``/``), a method and its
    handler. ``label`` is how logs and errors name it: ``"GET /hello"``, ``"GET /files/*"``."""

    path: str
    method: str
    handler: HttpHandler
    prefix: bool = False

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}{'*' if self.prefix else ''}"


class HttpRouter:
    """The HTTP routes of a deployment; see the module docstring."""

    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], HttpRoute] = {}
        self._prefixes: dict[str, dict[str, HttpRoute]] = {}

    @overload
    def route(
        self,
        path: str | None = None,
        *,
        method: str,
        path_prefix: str | None = None,
        handler: None = None,
    ) -> Callable[[HttpHandler], HttpHandler]: ...
    @overload
    def route(
        self,
        path: str | None = None,
        *,
        method: str,
        path_prefix: str | None = None,
        handler: HttpHandler,
    ) -> HttpHandler: ...

    def route(
        self,
        path: str | None = None,
        *,
        method: str,
        path_prefix: str | None = None,
        handler: HttpHandler | None = None,
    ) -> Any:
        """Route ``method`` requests for ``path`` (exact) or ``path_prefix`` (every path
        starting with it) to ``handler``; without ``handler``, a decorator::

            @http.route("/hello", method="GET")
            async def hello(ctx, request):
                return PlainTextResponse("hi")
        """
        route_method = _method(method)
        where = path if path is not None else path_prefix
        if path is not None and path_prefix is not None:
            raise HttpRouteError(
                f"route({path!r}, path_prefix={path_prefix!r}): give either path or "
                "path_prefix, not both."
            )
        if path is None and path_prefix is None:
            raise HttpRouteError("route() needs path='/exact' or path_prefix='/prefix/'.")
        assert where is not None
        if not isinstance(where, str) or not where.startswith("/"):
            raise HttpRouteError(f"Route path {where!r} must be a string starting with '/'.")
        if path_prefix is not None and not path_prefix.endswith("/"):
            raise HttpRouteError(
                f"path_prefix {path_prefix!r} must end with '/', e.g. {path_prefix + '/'!r}."
            )

        def register(fn: HttpHandler) -> HttpHandler:
            if not callable(fn):
                raise HttpRouteError(
                    f"The handler of {route_method} {where} must be `async def handler(ctx, "
                    f"request)`, got {type(fn).__name__}."
                )
            _check_signature(fn, f"{route_method} {where}")
            if path is not None:
                key = (path, route_method)
                if key in self._exact:
                    raise HttpRouteError(f"{route_method} {path} is routed twice.")
                self._exact[key] = HttpRoute(path, route_method, fn)
            else:
                assert path_prefix is not None
                by_prefix = self._prefixes.setdefault(route_method, {})
                if path_prefix in by_prefix:
                    raise HttpRouteError(f"{route_method} {path_prefix}* is routed twice.")
                by_prefix[path_prefix] = HttpRoute(path_prefix, route_method, fn, prefix=True)
            return fn

        return register if handler is None else register(handler)

    def lookup(self, path: str, method: str) -> HttpRoute | None:
        """The route for a request (``HEAD`` is routed as ``GET``), or None."""
        method = "GET" if method.upper() == "HEAD" else method.upper()
        exact = self._exact.get((path, method))
        if exact is not None:
            return exact
        best: HttpRoute | None = None
        for prefix, route in self._prefixes.get(method, {}).items():
            if path.startswith(prefix) and (best is None or len(prefix) > len(best.path)):
                best = route
        return best

    @property
    def routes(self) -> list[HttpRoute]:
        """Every route, exact paths first, sorted."""
        exact = sorted(self._exact.values(), key=lambda r: (r.path, r.method))
        prefixed = sorted(
            (r for by in self._prefixes.values() for r in by.values()),
            key=lambda r: (r.path, r.method),
        )
        return exact + prefixed

    def methods_for(self, path: str) -> list[str]:
        """The methods some route answers for ``path``."""
        return [m for m in ROUTABLE_METHODS if self.lookup(path, m) is not None]

    def cors(
        self,
        path: str | None = None,
        *,
        path_prefix: str | None = None,
        allow_origins: str | Sequence[str] = "*",
        allow_headers: Iterable[str] = ("Content-Type", "Authorization"),
        max_age: int = 86400,
    ) -> None:
        """Answer browsers' CORS preflight (``OPTIONS``) for ``path`` or ``path_prefix``,
        allowing the methods routed there. Add :func:`cors_headers` to the real responses::

            http.cors("/tasks", allow_origins=["https://app.example.com"])
        """
        headers = ", ".join(allow_headers)

        async def preflight(ctx: Any, request: Any) -> Any:
            from starlette.responses import Response

            origin = request.headers.get("origin")
            allowed = cors_headers(origin, allow_origins)
            if not allowed:
                return Response(status_code=403)
            methods = [m for m in self.methods_for(request.url.path) if m != "OPTIONS"]
            return Response(
                status_code=204,
                headers={
                    **allowed,
                    "Access-Control-Allow-Methods": ", ".join(methods),
                    "Access-Control-Allow-Headers": headers,
                    "Access-Control-Max-Age": str(max_age),
                },
            )

        self.route(path, method="OPTIONS", path_prefix=path_prefix, handler=preflight)

    def __repr__(self) -> str:
        return f"<HttpRouter {', '.join(r.label for r in self.routes) or 'no routes'}>"


def http_action(handler: HttpHandler) -> HttpHandler:
    """Mark ``async def handler(ctx, request)`` as an HTTP action (optional, as Convex's
    ``httpAction``): route it with ``http.route(path=..., method=..., handler=...)``::

        @http_action
        async def webhook(ctx, request):
            ...
    """
    if not callable(handler):
        raise HttpRouteError(f"@http_action decorates a function, got {type(handler).__name__}.")
    _check_signature(handler, getattr(handler, "__name__", "the HTTP action"))
    return handler


def cors_headers(origin: str | None, allow_origins: str | Sequence[str] = "*") -> dict[str, str]:
    """CORS headers for a response to a request from ``origin`` (empty if not allowed)::

    return JSONResponse(data, headers=cors_headers(request.headers.get("origin")))
    """
    if allow_origins == "*":
        return {"Access-Control-Allow-Origin": "*"}
    allowed = [allow_origins] if isinstance(allow_origins, str) else list(allow_origins)
    if origin is None or origin not in allowed:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def _method(method: Any) -> str:
    if not isinstance(method, str) or method.upper() not in ROUTABLE_METHODS:
        raise HttpRouteError(
            f"{method!r} is not a method routes take; use one of {', '.join(ROUTABLE_METHODS)} "
            "(HEAD requests are answered by the GET route)."
        )
    return method.upper()


def _check_signature(fn: Callable[..., Any], label: str) -> None:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2 and not any(p.kind == p.VAR_POSITIONAL for p in params):
        raise HttpRouteError(
            f"The handler of {label}, {getattr(fn, '__name__', fn)!r}, must take (ctx, "
            "request): async def handler(ctx, request) -> Response."
        )
