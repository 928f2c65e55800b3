"""The deployment's API server: a Starlette app with the HTTP API and WebSocket sync.

``create_app(deployment)`` builds the ASGI app for the API port; :func:`serve` runs it with
uvicorn on a socket bound up front, so port 0 works and the real port is known before the
first client connects::

    deployment = await Deployment.open(Path("convex"), Path(".pyconvex"))
    await serve(deployment, host="127.0.0.1", port=3210, on_listening=print)

HTTP actions are served on a second "site" port (``site_app``, by default the deployment's
``convex/http.py`` router: :mod:`pyconvex.runtime.net.site`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
from collections.abc import AsyncIterator, Callable, Generator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pyconvex.runtime.net.admin_routes import IMPORT_PATH, admin_only, admin_routes
from pyconvex.runtime.net.body_limit import MAX_FUNCTION_BODY, MAX_HTTP_ACTION_BODY, limit_body
from pyconvex.runtime.net.dashboard_routes import DashboardAccess, DashboardRoutes
from pyconvex.runtime.net.dev_auth_routes import DevSignIn
from pyconvex.runtime.net.frontend_routes import frontend_routes
from pyconvex.runtime.net.http_api import HttpApi, HttpDeployment
from pyconvex.runtime.net.site import site_app as default_site_app
from pyconvex.runtime.net.storage_routes import UPLOAD_PATH, storage_routes
from pyconvex.runtime.net.subscriptions import SubscriptionManager
from pyconvex.runtime.net.sync_socket import SyncConfig, SyncEndpoint, SyncSocket

_SLASHES = re.compile(r"//+")


def server_version() -> str:
    try:
        return f"pyconvex {version('pyconvex')}"
    except PackageNotFoundError:
        return "pyconvex (development)"


class _ConnectionScope:
    """Outermost ASGI layer: collapses doubled slashes in HTTP paths, and hands the site's
    requests (those on the site port, and ``/http/...`` on the API port) to the site app.

    The npm client builds ``ws://host:3210//api/1.48.0/sync`` from a URL with a trailing
    slash, and HTTP clients do the same with ``//api/query``.
    """

    def __init__(self, app: ASGIApp, sync: SyncEndpoint) -> None:
        self.app = app
        #: The sync WebSocket endpoint: :func:`serve` has uvicorn run its sockets.
        self.sync = sync
        #: HTTP actions (``site.py``), and the port they are served on (set by :func:`serve`).
        self.site: ASGIApp | None = None
        self.site_port: int | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope.get("path", "")
            if "//" in path:
                scope = dict(scope)
                scope["path"] = path = _SLASHES.sub("/", path)
            site = self.site
            if site is not None:
                server = scope.get("server")
                if server is not None and server[1] == self.site_port:
                    await limit_body(site, scope, receive, send, MAX_HTTP_ACTION_BODY)
                    return
                if path.startswith("/http/"):
                    scope = dict(scope)
                    scope["path"] = path[len("/http") :]
                    await limit_body(site, scope, receive, send, MAX_HTTP_ACTION_BODY)
                    return
            if path not in (UPLOAD_PATH, IMPORT_PATH):  # these stream to disk, whatever the size
                await limit_body(self.app, scope, receive, send, MAX_FUNCTION_BODY)
                return
        await self.app(scope, receive, send)


def uvicorn_ws_protocol(endpoint: SyncEndpoint) -> type[asyncio.Protocol]:
    """The class uvicorn's ``ws`` setting takes: uvicorn hands it every WebSocket upgrade
    (built with uvicorn's keyword arguments); it registers each socket in the server's
    connections, so a graceful shutdown closes them (``shutdown()``, close code 1012)."""

    class UvicornSyncSocket(SyncSocket):
        def __init__(self, config: Any, server_state: Any, app_state: Any, **_: Any) -> None:
            super().__init__(endpoint, server_state.connections)

    return UvicornSyncSocket


def _committer_stats(deployment: object) -> dict[str, float]:
    committer = getattr(deployment, "committer", None)
    if committer is None:
        return {}
    return {
        "batches": committer.batches,
        "committedMutations": committer.committed,
        "batchWriteSeconds": committer.write_ns / 1e9,
        "writerProcessSeconds": committer.writer_ns / 1e9,
    }


def create_app(
    deployment: HttpDeployment,
    *,
    sync_config: SyncConfig | None = None,
    subscriptions: SubscriptionManager | None = None,
    dashboard: DashboardAccess | None = None,
    frontend: Path | None = None,
    dev_sign_in: DevSignIn | None = None,
) -> _ConnectionScope:
    """The API-port ASGI app: ``/api/...`` HTTP endpoints, WebSocket sync, ``/version``,
    ``/health``, and the dashboard at ``/dashboard`` (signed in through ``dashboard``'s one-time
    tokens); ``frontend`` is a built web frontend's directory, served at ``/``;
    ``dev_sign_in`` is ``pyconvex dev``'s sign-in page (``/dev-auth/``; never in production).

    The app's ``state`` holds ``deployment``, ``subscriptions`` (the manager is closed at
    shutdown) and ``dashboard``.
    """
    config = sync_config or SyncConfig()
    manager = subscriptions if subscriptions is not None else SubscriptionManager(deployment)
    api = HttpApi(deployment)
    access = dashboard or DashboardAccess(lambda: getattr(deployment, "admin_key", None))
    home, static_files = frontend_routes(frontend)

    async def version_endpoint(request: Request) -> Response:
        return PlainTextResponse(server_version())

    async def health_endpoint(request: Request) -> Response:
        # For load balancers and orchestrators: answers once the server listens (no key).
        return JSONResponse({"status": "ok", "version": server_version()})

    async def stats_endpoint(request: Request) -> Response:
        # Counters for benchmarks and the dev console (read-only, no data; admin key only).
        return JSONResponse(
            {
                "executions": manager.executions,
                "subscriptions": len(manager),
                "latestTs": str(deployment.latest_ts),
                **_committer_stats(deployment),
            }
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            manager.close()

    app = Starlette(
        routes=[
            *home,
            Route("/version", version_endpoint, methods=["GET"]),
            Route("/health", health_endpoint, methods=["GET", "HEAD"]),
            Route(
                "/api/_pyconvex/stats",
                admin_only(stats_endpoint, lambda: getattr(deployment, "admin_key", None)),
                methods=["GET"],
            ),
            *api.routes(),
            *admin_routes(deployment),
            *storage_routes(deployment),
            *DashboardRoutes(deployment, access).routes(),
            *(dev_sign_in.routes() if dev_sign_in is not None else []),
            *static_files,
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=["*"],
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["*"],
                max_age=86400,
            )
        ],
        lifespan=lifespan,
    )
    app.state.deployment = deployment
    app.state.subscriptions = manager
    app.state.dashboard = access
    return _ConnectionScope(
        app, SyncEndpoint(deployment, manager, config, server_header=server_version())
    )


def _local(url: str) -> str:
    """``url`` as this machine reaches it (a wildcard host becomes 127.0.0.1)."""
    scheme, _, rest = url.partition("://")
    host, _, port = rest.rpartition(":")
    return f"{scheme}://127.0.0.1:{port}" if host in ("0.0.0.0", "[::]", "") else url


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; ``port=0`` picks a free port (read it with ``getsockname``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose protocol says TCP, and
    # without it a Transition sent right after a MutationResponse waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve(
    deployment: HttpDeployment,
    *,
    host: str = "127.0.0.1",
    port: int = 3210,
    on_listening: Callable[[str], None] | None = None,
    sync_config: SyncConfig | None = None,
    site_app: ASGIApp | None = None,
    site_port: int | None = None,
    subscriptions: SubscriptionManager | None = None,
    stop: asyncio.Event | None = None,
    log_level: str = "warning",
    dashboard: DashboardAccess | None = None,
    frontend: Path | None = None,
    dev_sign_in: DevSignIn | None = None,
) -> None:
    """Serve ``deployment`` until SIGINT/SIGTERM (or cancellation).

    ``on_listening`` gets the base URL (with the real port) once the socket listens. HTTP
    actions (``site_app``, by default the deployment's) are served on ``site_port`` (default:
    ``port + 1``, Convex's site port; a free one when ``port`` is 0) and under ``/http/``.
    Setting ``stop`` shuts the server down gracefully, like a signal. ``dashboard`` hands out
    the dashboard's sign-in tokens (the caller prints one); ``frontend`` (a built web frontend's
    directory) is served at ``/``; ``dev_sign_in`` (dev only) at ``/dev-auth/``.
    """
    # uvicorn is imported here: importing it loads watchfiles (its reloader), which the
    # runtime must not pull in at import time (STYLE.md, layering).
    import uvicorn

    class _Server(uvicorn.Server):
        # The caller owns signals (so the deployment is closed before the process exits).
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            yield

    sock = bind_socket(host, port)
    actual_port = sock.getsockname()[1]
    app = create_app(
        deployment,
        sync_config=sync_config,
        subscriptions=subscriptions,
        dashboard=dashboard,
        frontend=frontend,
        dev_sign_in=dev_sign_in,
    )
    sockets = [sock]
    app.site = site_app if site_app is not None else default_site_app(deployment)
    if app.site is not None:
        if site_port is None:
            site_port = actual_port + 1 if port else 0
        try:
            site_sock = bind_socket(host, site_port)
        except OSError as e:
            sock.close()
            raise OSError(
                e.errno,
                f"Cannot listen on the site port {site_port} for HTTP actions ({e.strerror}); "
                "pick another with --site-port",
            ) from e
        sockets.append(site_sock)
        app.site_port = site_sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        # Every WebSocket upgrade goes to the sync endpoint's sockets (sync_socket.py), not
        # through ASGI: frames are handed to the session as they arrive.
        ws=uvicorn_ws_protocol(app.sync),
        log_level=log_level,
        ws_per_message_deflate=False,  # fan-out sends one frame to many sockets
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = _Server(config)
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def request_exit() -> None:
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, request_exit)
            installed.append(sig)

    async def wait_for_stop(event: asyncio.Event) -> None:
        await event.wait()
        request_exit()

    stopper = None if stop is None else asyncio.create_task(wait_for_stop(stop))
    display_host = f"[{host}]" if ":" in host else host
    url = f"http://{display_host}:{actual_port}"
    site_url = f"http://{display_host}:{app.site_port or actual_port + 1}"
    set_urls = getattr(deployment, "set_urls", None)
    if callable(set_urls):
        set_urls(_local(url), _local(site_url))
    try:
        if on_listening is not None:
            on_listening(url)
        await server.serve(sockets=sockets)
    finally:
        if stopper is not None:
            stopper.cancel()
        for sig in installed:
            loop.remove_signal_handler(sig)
        for each in sockets:
            each.close()
