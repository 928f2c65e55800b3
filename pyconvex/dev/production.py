"""``pyconvex serve``: a production deployment of the project's data directory.

Unlike ``pyconvex dev`` it does not watch files or generate code: it serves the code last
deployed to it (``<data_dir>/modules``, :mod:`pyconvex.dev.code_store`) — at its first start,
a copy of the project's functions directory — and takes new code only from
``pyconvex deploy`` (:mod:`pyconvex.dev.deployer`). Clients get no log lines and a failed
call's error only as ``[Request ID: <id>] Server Error`` (a ConvexError keeps its data); the
server's log has every execution with its request id, log lines and traceback. Every admin
route needs the admin key, ``GET /health`` answers without it::

    code = await run_serve(ProjectSettings.load(Path.cwd()), "0.0.0.0", 3210)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys

from rich.console import Console

from pyconvex.dev.bundle import Bundle, BundleError
from pyconvex.dev.code_store import CodeStore
from pyconvex.dev.codegen_step import Codegen
from pyconvex.dev.console import ExecutionFeed, ExecutionPrinter
from pyconvex.dev.deployer import Deployer
from pyconvex.dev.loop import DevLoop, busy_failure
from pyconvex.dev.serve import is_loopback, local_url
from pyconvex.failures import EXIT_FAILURE, CliFailure
from pyconvex.project import (
    ProjectSettings,
    admin_key_path,
    ensure_private_dir,
    remove_deployment_file,
    running_deployment,
    write_deployment_file,
)
from pyconvex.runtime.auth.admin_key import ensure_admin_key
from pyconvex.runtime.functions.loader import LoadedFunctions, ModuleLoadError, load_functions
from pyconvex.runtime.net.dashboard_routes import DashboardAccess, login_path
from pyconvex.runtime.net.event_loop import freeze_loaded_state, thaw_frozen_state
from pyconvex.runtime.net.subscriptions import SubscriptionManager

NAME = "pyconvex serve"


def no_codegen() -> Codegen:
    """Codegen that generates nothing (production serves the code as deployed)."""
    codegen = Codegen()
    codegen.schema_step = None
    codegen.api_step = None
    return codegen


async def run_serve(
    settings: ProjectSettings,
    host: str,
    port: int,
    *,
    site_port: int | None = None,
    verbose: bool = False,
) -> int:
    """Serve the deployed code over ``settings.data_dir`` until interrupted. Raises
    :class:`~pyconvex.failures.CliFailure` for what stops it from starting."""
    data_dir = settings.data_dir
    if running_deployment(data_dir) is not None:
        raise busy_failure(data_dir)
    ensure_private_dir(data_dir)
    ensure_admin_key(data_dir)
    out = Console(highlight=False, soft_wrap=True)
    store = CodeStore(data_dir)
    loaded, first = _deployed_code(settings, store, out)
    served = dataclasses.replace(
        settings, functions_dir=loaded.functions_dir or settings.functions_dir
    )
    loop = DevLoop(served, out=out, codegen=no_codegen(), name=NAME)
    loop.refused_then = (
        "The deployment did not start, and nothing was changed: deploy code whose schema "
        "matches the data."
    )
    try:
        deployment = await loop.open(data_dir, loaded=loaded)
        if loaded.files and loop.serving is not loaded:
            return EXIT_FAILURE  # the stored documents refused the schema (printed above)
        if first is not None:
            store.commit(first)  # serving: the first code is the deployed one from now on
        deployment.redact_for_clients = True
        deployment.deployer = Deployer(loop, store, persist=True)
        freeze_loaded_state()
        await _serve(loop, settings, host, port, site_port, verbose)
    finally:
        await loop.close()
        thaw_frozen_state()
    return 0


def _deployed_code(
    settings: ProjectSettings, store: CodeStore, out: Console
) -> tuple[LoadedFunctions, str | None]:
    """The code to serve: the one deployed last; at the first start, a copy of the project's
    functions directory (it stays what is served until the next deploy), with its hash to
    commit once it serves; else none."""
    first: str | None = None
    try:
        current = store.current()
        if current is None and settings.functions_dir.is_dir():
            bundle = Bundle.from_dir(settings.functions_dir)
            if bundle.files:
                first = bundle.hash
                current = first, store.stage(bundle)
    except BundleError as e:
        raise CliFailure("Cannot read the deployed code", detail=str(e)) from None
    if current is None:
        out.print(f"{NAME}: no code deployed yet; `pyconvex deploy` sends it.")
        return LoadedFunctions(), None
    code_hash, functions_dir = current
    if first is None and settings.functions_dir.is_dir():
        local = Bundle.from_dir(settings.functions_dir).hash
        if local != code_hash:
            out.print(
                f"{NAME}: serving the code deployed last ({code_hash[:12]}); "
                f"{settings.functions_dir.name}/ here differs: `pyconvex deploy` sends it."
            )
    try:
        return load_functions(functions_dir), first
    except ModuleLoadError as e:
        detail = (str(e) + "\n" + e.details).replace(str(functions_dir.parent) + "/", "")
        raise CliFailure(
            "Could not load the deployed functions",
            where=str(functions_dir),
            detail=detail,
            hint="Install what they import on this machine (or deploy code that loads), then "
            "start pyconvex serve again.",
        ) from None


async def _serve(
    loop: DevLoop,
    settings: ProjectSettings,
    host: str,
    port: int,
    site_port: int | None,
    verbose: bool,
) -> None:
    from pyconvex.runtime.net.app import serve

    deployment = loop.deployment
    assert deployment is not None
    manager = SubscriptionManager(deployment)
    loop.manager = manager
    # Every execution worth showing, with its date and request id: the production log.
    feed = ExecutionFeed(
        deployment.log_history, ExecutionPrinter(loop.out, verbose=verbose, full_date=True)
    )
    executions = asyncio.create_task(feed.run(), name="pyconvex-serve-log")
    dashboard = DashboardAccess(lambda: deployment.admin_key)

    def listening(url: str) -> None:
        # Tests and tools parse this exact line.
        print(f"{NAME}: serving {url}", flush=True)
        print(f"{NAME}: HTTP actions at {deployment.site_url}", flush=True)
        print(f"{NAME}: admin key in {admin_key_path(settings.data_dir)}", flush=True)
        sign_in = local_url(url) + login_path(dashboard.new_login_token())
        print(f"{NAME}: dashboard at {sign_in} (a one-time sign-in link)", flush=True)
        if not is_loopback(host):
            print(
                f"{NAME}: listening on {host}; put TLS in front of it (a reverse proxy) before "
                "clients connect over a network.",
                flush=True,
            )
        write_deployment_file(settings.data_dir, local_url(url))
        loop.announce_startup()

    try:
        await serve(
            deployment,
            host=host,
            port=port,
            site_port=site_port,
            on_listening=listening,
            subscriptions=manager,
            dashboard=dashboard,
        )
    finally:
        executions.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await executions
        feed.drain()
        remove_deployment_file(settings.data_dir)
    loop.out.print(f"{NAME}: stopped.")
    sys.stdout.flush()
