"""``pyconvex dev``: open the project's deployment, serve it, and push every save until stopped.

::

    code = await run_dev(ProjectSettings.load(Path.cwd()), "127.0.0.1", 3210)

While it serves, ``<data_dir>/deployment.json`` tells the admin commands where it is
(:func:`pyconvex.project.running_deployment`). The loop itself is :mod:`pyconvex.dev.loop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import sys
from pathlib import Path

from pyconvex.dev.code_store import CodeStore
from pyconvex.dev.console import ExecutionFeed, ExecutionPrinter
from pyconvex.dev.deployer import Deployer
from pyconvex.dev.loop import DevLoop, busy_failure
from pyconvex.dev.typecheck import TypecheckMode
from pyconvex.failures import EXIT_FAILURE
from pyconvex.project import (
    ProjectSettings,
    dev_signing_key_path,
    ensure_private_dir,
    remove_deployment_file,
    running_deployment,
    write_deployment_file,
)
from pyconvex.runtime.auth.admin_key import ensure_admin_key
from pyconvex.runtime.auth.dev_issuer import DevIssuer
from pyconvex.runtime.net.dashboard_routes import DashboardAccess, login_path
from pyconvex.runtime.net.dev_auth_routes import DEV_AUTH, SIGN_IN, DevSignIn
from pyconvex.runtime.net.event_loop import freeze_loaded_state, thaw_frozen_state
from pyconvex.runtime.net.frontend_routes import built
from pyconvex.runtime.net.subscriptions import SubscriptionManager

#: The people the dev sign-in page remembers, in the data directory.
DEV_PEOPLE_FILE = "dev_sign_in_people.json"
_WILDCARD_HOSTS = {"0.0.0.0", "::", "[::]", ""}


def stopped_message(settings: ProjectSettings) -> str:
    """What ``pyconvex dev`` says when Ctrl-C stops it."""
    try:
        data = settings.data_dir.relative_to(settings.root).as_posix() + "/"
    except ValueError:
        data = str(settings.data_dir)
    return f"pyconvex dev: stopped. The data is kept in {data}; `pyconvex dev` serves it again."


def local_url(url: str) -> str:
    """The URL the admin commands should use: a wildcard listen address becomes 127.0.0.1."""
    scheme, _, rest = url.partition("://")
    host, _, port = rest.rpartition(":")
    return f"{scheme}://127.0.0.1:{port}" if host in _WILDCARD_HOSTS else url


async def run_dev(
    settings: ProjectSettings,
    host: str,
    port: int,
    *,
    once: bool = False,
    verbose: bool = False,
    typecheck: TypecheckMode | str = TypecheckMode.try_,
    site_port: int | None = None,
) -> int:
    """``pyconvex dev``: serve and push on every save until interrupted (``once``: push and
    return the exit code). ``verbose`` shows pyconvex's own frames in tracebacks; ``typecheck``
    runs mypy after each push (:mod:`pyconvex.dev.typecheck`); HTTP actions are served on
    ``site_port`` (default: ``port + 1``). Raises
    :class:`~pyconvex.failures.CliFailure` for what stops it from starting."""
    if running_deployment(settings.data_dir) is not None:
        raise busy_failure(settings.data_dir)
    ensure_private_dir(settings.data_dir)
    ensure_admin_key(settings.data_dir)
    loop = DevLoop(settings, typecheck=typecheck)
    stop = asyncio.Event()
    try:
        if not once:
            await loop.watch(stop)
        deployment = await loop.open(settings.data_dir)
        # `pyconvex deploy` may push code here too (until the next save, or a restart).
        deployment.deployer = Deployer(loop, CodeStore(settings.data_dir), persist=False)
        freeze_loaded_state()
        if once:
            loop.announce_startup()
            ok = loop.latest is not None and loop.serving is loop.latest
            checked = await loop.typecheck.wait()
            strict = loop.typecheck.mode is TypecheckMode.enable
            return 0 if ok and (checked or not strict) else EXIT_FAILURE
        await _serve(loop, settings, host, port, stop, verbose, site_port)
    finally:
        stop.set()
        await loop.close()
        thaw_frozen_state()
    return 0


def frontend_dir(settings: ProjectSettings) -> Path | None:
    """Where the project's web frontend is built (``npm run build``: Vite's ``dist/``), if the
    project has one (a ``package.json`` beside ``convex/``, as the chat and tasks templates)."""
    return settings.root / "dist" if (settings.root / "package.json").is_file() else None


def frontend_message(url: str, dist: Path | None) -> str | None:
    """What ``pyconvex dev`` says of the web frontend at start."""
    if dist is None:
        return None
    if built(dist):
        return f"pyconvex dev: web frontend at {url}/ (dist/; `npm run build` rebuilds it)"
    vite = "npm run dev" if url.endswith(":3210") else f"VITE_CONVEX_URL={url} npm run dev"
    return (
        "pyconvex dev: the web frontend is not built: `npm install && npm run build` and it is "
        f"served at {url}/, or `{vite}` runs Vite on http://127.0.0.1:5173"
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def network_warning(host: str, settings: ProjectSettings) -> str:
    """What ``pyconvex dev --host <not loopback>`` prints once it listens."""
    key = settings.data_dir / "admin_key"
    return (
        f"pyconvex dev: warning: listening on {host}, so this deployment is reachable from the "
        "network. Anyone who reaches it can call its public functions, and its admin key "
        f"({key}) is the only protection of everything else: its data, internal functions "
        "and environment variables. Serve on --host 127.0.0.1 unless other machines must "
        "connect."
    )


async def _serve(
    loop: DevLoop,
    settings: ProjectSettings,
    host: str,
    port: int,
    stop: asyncio.Event,
    verbose: bool,
    site_port: int | None = None,
) -> None:
    from pyconvex.runtime.net.app import serve

    deployment = loop.deployment
    assert deployment is not None
    manager = SubscriptionManager(deployment)
    loop.manager = manager
    pusher: asyncio.Task[None] | None = None
    feed = ExecutionFeed(
        deployment.log_history, ExecutionPrinter(loop.out, verbose=verbose, full_date=False)
    )
    executions = asyncio.create_task(feed.run(), name="pyconvex-dev-console")
    dashboard = DashboardAccess(lambda: deployment.admin_key)
    dist = frontend_dir(settings)
    # The dev sign-in page: its issuer is this server's URL, known once it listens.
    dev_sign_in = DevSignIn(settings.data_dir / DEV_PEOPLE_FILE)

    def listening(url: str) -> None:
        nonlocal pusher
        # Tests and tools parse this exact line.
        print(f"pyconvex dev: serving {url}", flush=True)
        print(f"pyconvex dev: HTTP actions at {deployment.site_url}", flush=True)
        sign_in = local_url(url) + login_path(dashboard.new_login_token())
        print(f"pyconvex dev: dashboard at {sign_in} (a one-time sign-in link)", flush=True)
        issuer = DevIssuer.load_or_create(
            dev_signing_key_path(settings.data_dir), local_url(url) + DEV_AUTH
        )
        deployment.trust(issuer.provider())
        dev_sign_in.issuer = issuer
        print(
            f"pyconvex dev: dev sign-in page at {local_url(url)}{SIGN_IN} (development only: "
            "anyone can sign in as anyone; its tokens are trusted by this server alone)",
            flush=True,
        )
        frontend = frontend_message(local_url(url), dist)
        if frontend is not None:
            print(frontend, flush=True)
        if not is_loopback(host):
            print(network_warning(host, settings), flush=True)
        write_deployment_file(settings.data_dir, local_url(url))
        loop.announce_startup()
        pusher = asyncio.create_task(loop.run(stop), name="pyconvex-dev-loop")

    try:
        await serve(
            deployment,
            host=host,
            port=port,
            site_port=site_port,
            on_listening=listening,
            subscriptions=manager,
            dashboard=dashboard,
            frontend=dist,
            dev_sign_in=dev_sign_in,
        )
    finally:
        stop.set()
        executions.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await executions
        feed.drain()
        if pusher is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(pusher, 15)
        remove_deployment_file(settings.data_dir)
    loop.out.print(stopped_message(settings))
    sys.stdout.flush()
