"""The site: HTTP actions of ``convex/http.py``, served on the site port (API port + 1) and under
``/http/`` on the API port.

Every request is routed by the router of the code serving at that moment (a push swaps it), and
runs as an action (``ActionRunner.run_http``: a slot, the time limit, its log lines, a
``pyconvex logs`` entry named like ``GET /hello``). A handler that raises answers 500 with
``{"code": "Server Error: ...", "data": <ConvexError data>}`` as Convex's (in production,
``pyconvex serve``, the code is ``[Request ID: <id>] Server Error`` only); an unknown route is
a 404 that lists the routes there are.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from pyconvex.runtime.auth.tokens import TokenRefused, TokenVerifier, verify_fetching
from pyconvex.runtime.functions.action_runner import ActionRunner
from pyconvex.runtime.functions.loader import LoadedFunctions
from pyconvex.runtime.functions.results import redacts_for_clients
from pyconvex.runtime.net.body_limit import MAX_HTTP_ACTION_BODY
from pyconvex.server.http_router import HttpRoute
from pyconvex.values import encode_clean

_log = logging.getLogger("pyconvex.http")


class SiteDeployment(Protocol):
    """What the site needs of the deployment."""

    loaded: LoadedFunctions
    actions: ActionRunner


class SiteApp:
    """The ASGI app of the site port (see the module docstring)."""

    def __init__(self, deployment: SiteDeployment) -> None:
        self.deployment = deployment

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return  # the API app runs the server's lifespan
        if scope["type"] != "http":
            # The sync WebSocket lives on the API port only.
            await send({"type": "websocket.close", "code": 1008})
            return
        response = await self.respond(Request(scope, receive))
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        router = self.deployment.loaded.http
        path, method = request.url.path, request.method
        route = router.lookup(path, method) if router is not None else None
        if route is None:
            return _not_found(method, path, router.routes if router is not None else None)
        identity = None
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            verifier = getattr(self.deployment, "token_verifier", None) or TokenVerifier([])
            try:
                identity = (await verify_fetching(verifier, token.strip())).identity
            except TokenRefused as e:
                # A webhook's own Bearer secret is no sign-in token: the handler still runs
                # (and checks its header itself), with no user. A refused JWT (three dotted
                # parts) was meant to sign in: the console says why, as for the API.
                jwt = token.strip().count(".") == 2
                _log.log(
                    logging.WARNING if jwt else logging.INFO,
                    "HTTP action %s runs with no user: its Bearer token was refused: %s",
                    route.label,
                    e.reason,
                )
        response, failure = await self.deployment.actions.run_http(
            route.label, route.handler, request, _check(route), identity
        )
        if failure is None:
            assert isinstance(response, Response)
            return response
        body: dict[str, Any] = {"code": f"Server Error: {failure.message}"}
        if failure.request_id is not None and redacts_for_clients(self.deployment):
            # Production: Convex's text without the error (the server's log has it).
            body = {"code": f"[Request ID: {failure.request_id}] Server Error"}
        if failure.is_convex_error:
            try:
                body["data"] = encode_clean(failure.data)
            except ValueError:
                body["data"] = None
        return Response(json.dumps(body), status_code=500, media_type="application/json")


def site_app(deployment: object) -> SiteApp | None:
    """The site app of ``deployment`` (None for stand-ins that cannot run HTTP actions)."""
    if not (
        hasattr(deployment, "loaded")
        and isinstance(getattr(deployment, "actions", None), ActionRunner)
    ):
        return None
    return SiteApp(deployment)  # type: ignore[arg-type]


def _check(route: HttpRoute) -> Any:
    def check(value: Any) -> Response:
        if not isinstance(value, Response):
            raise TypeError(
                f"HTTP action {route.label} returned {type(value).__name__}, not a response: "
                "return a Starlette Response, e.g. JSONResponse({...}) or "
                "PlainTextResponse('...') (from starlette.responses)."
            )
        body = getattr(value, "body", None)  # (a StreamingResponse has none)
        if isinstance(body, bytes | memoryview) and len(body) > MAX_HTTP_ACTION_BODY:
            raise ValueError(
                f"HTTP action {route.label} returned a body of {len(body):,} bytes: HTTP action "
                f"responses are limited to {MAX_HTTP_ACTION_BODY // (1024 * 1024)} MiB, as in "
                "Convex. Keep a large file in file storage (ctx.storage.store) and return its "
                "URL (ctx.storage.get_url) or a redirect to it."
            )
        return value

    return check


def _not_found(method: str, path: str, routes: list[HttpRoute] | None) -> Response:
    if routes is None:
        text = (
            f"No HTTP action for {method} {path}: this deployment has no HTTP actions. Define "
            "them in convex/http.py: http = HttpRouter(), then @http.route('/path', "
            "method='GET')."
        )
    elif not routes:
        text = f"No HTTP action for {method} {path}: convex/http.py routes nothing yet."
    else:
        listed = "\n".join(f"  {r.label}" for r in routes)
        text = f"No HTTP action for {method} {path}. Routes in convex/http.py:\n{listed}"
    return PlainTextResponse(text, status_code=404)
