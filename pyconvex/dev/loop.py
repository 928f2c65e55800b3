"""The ``pyconvex dev`` loop: on every save, load, generate, check, migrate and swap.

:class:`DevLoop` keeps one running :class:`Deployment` in step with the functions directory:

1. load the changed modules (``runtime.functions.loader``: only what changed and what imports
   it), with ``_generated/server.py`` written (codegen) after ``schema.py`` and before the other
   modules;
2. regenerate ``_generated/api.py`` & co. from the loaded functions;
3. push (``runtime.functions.schema_push``): check the stored documents against the new schema,
   build new indexes, drop removed ones, swap code and schema in one step and re-run every
   subscription;
4. print "ready in N ms" — or one error block, in which case the last good code keeps serving.
   A refused push is tried again when a file changes or a commit touches the refused table.

::

    loop = DevLoop(ProjectSettings.load(Path.cwd()))
    await loop.open(Path(".pyconvex"))            # first load, codegen and push
    loop.notice({Path("convex/messages.py")})     # what the watcher does on a save
    await loop.step()                             # True: pushed, False: refused, None: no-op

It lives above ``pyconvex.runtime`` because it drives watchfiles and codegen, which the runtime
must not import. Serving it (the ``pyconvex dev`` command) is :mod:`pyconvex.dev.serve`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from pyconvex.dev.codegen_step import Codegen, DevCodegen
from pyconvex.dev.typecheck import TypeCheck, TypecheckMode
from pyconvex.errors import StorageError
from pyconvex.failures import EXIT_FAILURE, CliFailure, render_failure
from pyconvex.project import ProjectSettings, running_deployment
from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.functions.loader import (
    LoadedFunctions,
    ModuleLoadError,
    load_functions,
    unload,
)
from pyconvex.runtime.functions.schema_push import (
    PushResult,
    SchemaViolation,
    push,
    read_accepted_schema,
    schema_json,
    write_accepted_schema,
)
from pyconvex.runtime.net.subscriptions import SubscriptionManager
from pyconvex.runtime.store.read_set import Commit

#: watchfiles: wait this long (ms) after the last change before yielding a batch of changes.
WATCH_STEP_MS = 30

log = logging.getLogger("pyconvex.dev")


def busy_failure(data_dir: Path, detail: str | None = None) -> CliFailure:
    """The error for a data directory another pyconvex process holds."""
    running = running_deployment(data_dir)
    who = (
        f"pyconvex dev (pid {running.pid}) is serving it at {running.url}."
        if running
        else "Another process holds its database (DuckDB allows one writer process)."
    )
    return CliFailure(
        "This project's data directory is in use",
        where=str(data_dir),
        detail=who + (f"\n{detail}" if detail else ""),
        hint="Use that server (`pyconvex run`, `data`, `logs` talk to it), or stop it first.",
        code=EXIT_FAILURE,
    )


def violation_failure(v: SchemaViolation, schema_file: str, then: str) -> CliFailure:
    """A stored document the new schema refuses, as ``dev`` and ``deploy`` report it (``then``
    ends the hint: what happens now)."""
    field = v.field.lstrip(".") or "(the whole document)"
    return CliFailure(
        "Schema push refused",
        where=f"{schema_file}, table {v.table}, document {v.doc_id}, field {field}",
        detail=(
            f"A document in table {v.table!r} does not match the new schema.\n"
            f"expected: {v.expected}\nfound:    {v.found}"
        ),
        hint=f"{_VIOLATION_HINTS[v.kind]} {then}",
    )


#: What to do about a stored document the new schema refuses, by what is wrong with the field.
_VIOLATION_HINTS = {
    "missing": (
        "Make the field optional (v.optional(...)), or give the stored documents a value (e.g. "
        "a mutation run with `pyconvex run`)."
    ),
    "extra": (
        "Add the field to the table's validator (in v.optional(...) if not every document has "
        "it), or remove it from the stored documents (e.g. a mutation run with `pyconvex run`)."
    ),
    "mismatch": (
        "Let the validator accept the stored values while you migrate (e.g. v.union(old, new)), "
        "or change the stored documents to match (e.g. a mutation run with `pyconvex run`)."
    ),
}


# -- the loop -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Attempt:
    loaded: LoadedFunctions
    started: float
    #: Print "ready" at once (the start-up push waits until the server listens).
    announce: bool = True
    #: Files of the functions directory deleted since the last push (named in "ready").
    deleted: tuple[Path, ...] = ()


class DevLoop:
    """Keeps a deployment serving the functions directory as it is on disk (module docstring)."""

    def __init__(
        self,
        settings: ProjectSettings,
        *,
        out: Console | None = None,
        err: Console | None = None,
        codegen: Codegen | None = None,
        typecheck: TypecheckMode | str = TypecheckMode.disable,
        name: str = "pyconvex dev",
    ) -> None:
        self.settings = settings
        #: The command whose lines it prints ("pyconvex dev: ready in ...").
        self.name = name
        #: What a refused push's error says happens next (default: dev's retry on a save).
        self.refused_then: str | None = None
        self.functions_dir = settings.functions_dir.resolve()
        self.out = out or Console(highlight=False, soft_wrap=True)
        self.err = err or Console(stderr=True, highlight=False)
        self.generator = DevCodegen(self.functions_dir, settings.data_dir, codegen or Codegen())
        self.typecheck = TypeCheck(settings.root, self.functions_dir, mode=typecheck, out=self.out)
        self.deployment: Deployment | None = None
        self.manager: SubscriptionManager | None = None
        #: The code serving, and the newest code that imported (refused pushes keep it here).
        self.serving: LoadedFunctions | None = None
        self.latest: LoadedFunctions | None = None
        #: The schema in force (its JSON), as remembered in the data.
        self.accepted: dict[str, Any] | None = None
        self.pushes = 0
        self._refused_tables: set[str] = set()
        self._changed: set[Path] = set()
        #: The last load failed (its error is on screen): the next good load says "ready".
        self._load_failed = False
        self._retry = False
        self._wake = asyncio.Event()
        self._remove_listener: Callable[[], None] | None = None
        self._startup: tuple[PushResult, _Attempt] | None = None
        self._watcher: asyncio.Task[None] | None = None
        #: One push at a time: the loop's own, and those of ``pyconvex deploy`` (deployer.py).
        self.push_lock = asyncio.Lock()

    # -- loading ------------------------------------------------------------------------------

    def load(self, changed: set[Path] | None = None) -> LoadedFunctions | None:
        """Import the functions directory (incrementally after the first time) and run codegen;
        on failure print the error and return None (nothing changes)."""
        previous = self.latest
        try:
            try:
                loaded = self._load(previous, changed or set())
            except ModuleLoadError:
                if not self.generator.bootstrap():
                    raise
                loaded = self._load(previous, changed or set())
        except ModuleLoadError as e:
            self._load_failed = True
            self._report(self._load_failure(e))
            return None
        except Exception as e:
            codegen = type(e).__module__.startswith("pyconvex.codegen")
            self._report(
                CliFailure(
                    "Code generation failed" if codegen else "Reloading your functions failed",
                    where=f"{self.functions_dir.name}/_generated/" if codegen else None,
                    detail="".join(traceback.format_exception(e)),
                    hint="Fix what the error names and save again; the last good code keeps "
                    "serving meanwhile.",
                )
            )
            self._load_failed = True
            return None
        self._load_failed = False
        serving_package = self.serving.package if self.serving is not None else None
        if previous is not None and previous.package not in (loaded.package, serving_package):
            unload(previous)
        self.latest = loaded
        return loaded

    def _load(self, previous: LoadedFunctions | None, changed: set[Path]) -> LoadedFunctions:
        loaded = load_functions(
            self.functions_dir,
            previous=previous,
            changed=changed,
            on_schema=self.generator.schema_modules,
        )
        if self.generator.api_modules(loaded):
            # Modules importing _generated.api see the regenerated one.
            first = loaded
            loaded = load_functions(self.functions_dir, previous=first)
            loaded.executed |= first.executed
            loaded.removed |= first.removed
        return loaded

    @property
    def _latest_package(self) -> str | None:
        return self.latest.package if self.latest is not None else None

    def _load_failure(self, e: ModuleLoadError) -> CliFailure:
        where = None
        if e.path is not None:
            where = self._shown(e.path) + (f":{e.line}" if e.line else "")
        return CliFailure(
            "Could not load your functions",
            where=where,
            detail=e.details or str(e),
            hint=(
                "Fix the error and save: the last good code keeps serving meanwhile."
                if self.serving is not None and self.serving.functions
                else "Fix the error and save: your functions load as soon as it imports."
            ),
        )

    def _shown(self, path: Path) -> str:
        try:
            return path.relative_to(self.settings.root).as_posix()
        except ValueError:
            return str(path)

    # -- pushing ------------------------------------------------------------------------------

    async def open(
        self, data_dir: Path | None, loaded: LoadedFunctions | None = None
    ) -> Deployment:
        """First load (or ``loaded``), open the deployment over ``data_dir`` and push."""
        started = time.perf_counter()
        if loaded is not None:
            self.latest = loaded if loaded.files else None
        else:
            loaded = self.load() or LoadedFunctions(functions_dir=self.functions_dir)
        try:
            deployment = await Deployment.open(None, data_dir, loaded=_schema_only(loaded))
        except StorageError as e:
            if data_dir is not None and "lock" in str(e).lower():
                raise busy_failure(data_dir, str(e)) from None
            raise CliFailure(
                "Cannot open the deployment's data", where=str(data_dir), detail=str(e)
            ) from None
        self.deployment = deployment
        self.serving = deployment.loaded
        self.accepted = await read_accepted_schema(deployment)
        self._remove_listener = deployment.add_commit_listener(self._on_commit)
        if loaded.functions or loaded.schema is not None or self.latest is not None:
            await self.push(_Attempt(loaded, started, announce=False))
        return deployment

    def announce_startup(self) -> None:
        """Print the start-up push's "ready" line (once the server listens)."""
        if self._startup is not None:
            self._ready(*self._startup)
            self._startup = None

    async def push(self, attempt: _Attempt) -> bool:
        """Push ``attempt.loaded``; print "ready in N ms" or why it was refused."""
        result = await self.swap_in(attempt.loaded)
        if not result.ok:
            self._refused_tables = {v.table for v in result.violations}
            for violation in result.violations:
                self._report(self._violation_failure(violation))
            return False
        self._refused_tables = set()
        if attempt.announce:
            self._ready(result, attempt)
        else:
            self._startup = (result, attempt)
        self.typecheck.start()
        return True

    async def swap_in(
        self,
        loaded: LoadedFunctions,
        on_swap: Callable[[], None] | None = None,
        precondition: Callable[[], None] | None = None,
    ) -> PushResult:
        """Push ``loaded`` (schema checked against the data, indexes built, one atomic swap that
        re-runs every subscription; ``on_swap`` runs in that step too) and remember it as the
        code serving. A refused push changes nothing. ``precondition`` runs first, once no
        other push runs (it raises to stop this one)."""
        async with self.push_lock:
            if precondition is not None:
                precondition()
            deployment = self.deployment
            assert deployment is not None
            manager = self.manager

            def after_swap() -> None:
                if manager is not None:
                    manager.rerun_all()
                if on_swap is not None:
                    on_swap()

            result = await push(
                deployment,
                loaded,
                accepted=self.accepted,
                progress=_Progress(self.out),
                after_swap=after_swap,
            )
            self.pushes += 1
            if not result.ok:
                return result
            previous = self.serving
            self.serving = loaded
            if previous is not None and previous.package not in (
                loaded.package,
                self._latest_package,
            ):
                unload(previous)
            accepted = schema_json(loaded.schema)
            if accepted != self.accepted:
                await write_accepted_schema(deployment, accepted)
                self.accepted = accepted
            return result

    def _ready(self, result: PushResult, attempt: _Attempt) -> None:
        for line in result.diff.summary():
            self.out.print(f"  {escape(line)}")
        self._ready_unchanged(attempt)

    def _ready_unchanged(self, attempt: _Attempt) -> None:
        """The "ready in N ms (...)" line: how many functions, and which of the user's files
        were reloaded or removed."""
        ms = (time.perf_counter() - attempt.started) * 1000
        n = len(attempt.loaded.functions)
        what = f"{n} function{'s' if n != 1 else ''}"
        changed = sorted(
            c
            for c in attempt.loaded.executed
            if c != "_generated" and not c.startswith("_generated.")
        )
        if self.pushes > 1 and changed and len(changed) <= 3:
            what += ", reloaded " + ", ".join(_module_file(c) for c in changed)
        if attempt.deleted:
            what += ", removed " + ", ".join(
                _relative(p, self.functions_dir) for p in attempt.deleted
            )
        self.out.print(f"{self.name}: ready in {ms:.0f} ms ({escape(what)})")

    def _violation_failure(self, v: SchemaViolation) -> CliFailure:
        return violation_failure(
            v,
            self._shown(self.functions_dir / "schema.py"),
            self.refused_then
            or "The last good code keeps serving; "
            f"the push is retried when table {v.table!r} changes or a file is saved.",
        )

    def _report(self, failure: CliFailure) -> None:
        render_failure(failure, self.err)

    # -- watching -----------------------------------------------------------------------------

    def _on_commit(self, latest_ts: int, commits: list[Commit]) -> None:
        refused = self._refused_tables
        if not refused:
            return
        for commit in commits:
            if commit.writes.tables() & refused:
                self._retry = True
                self._wake.set()
                return

    @property
    def wants_push(self) -> bool:
        """Whether a file change or a commit on a refused table is waiting to be pushed."""
        return bool(self._changed or self._retry)

    def notice(self, paths: set[Path]) -> None:
        """Files changed: push again (coalescing with changes not yet handled)."""
        self._changed |= paths
        self._wake.set()

    async def watch(self, stop: asyncio.Event) -> None:
        """Start watching the functions directory (until ``stop``); changes wait for :meth:`run`.

        Call it before the first load, so no save made meanwhile is missed.
        """
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(stop), name="pyconvex-dev-watch")
            # One step of the task sets up the OS watches (watchfiles does that synchronously
            # when iteration starts).
            await asyncio.sleep(0)

    async def run(self, stop: asyncio.Event) -> None:
        """Push on every change until ``stop`` is set (watching, if not started yet)."""
        await self.watch(stop)
        watcher = self._watcher
        assert watcher is not None
        waiter = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                wake = asyncio.create_task(self._wake.wait())
                await asyncio.wait({wake, waiter}, return_when=asyncio.FIRST_COMPLETED)
                wake.cancel()
                if stop.is_set():
                    break
                self._wake.clear()
                await self.step()
        finally:
            waiter.cancel()
            stop.set()
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                await asyncio.wait_for(watcher, 10)

    async def step(self) -> bool | None:
        """Handle what changed since the last step: None when nothing needed a push."""
        started = time.perf_counter()
        changed, self._changed = self._changed, set()
        retry, self._retry = self._retry, False
        loaded: LoadedFunctions | None
        deleted = tuple(sorted(p for p in changed if not p.exists()))
        if changed:
            before = self.latest
            recovering = self._load_failed
            loaded = self.load(changed)
            if loaded is None:
                return False
            unchanged = not loaded.executed and not loaded.removed
            if unchanged and before is self.serving and not self._refused_tables:
                self.serving = self.latest = loaded
                if not recovering:
                    return None  # saved without changes
                # The file that failed was fixed back or deleted: say the code is good again.
                self._ready_unchanged(_Attempt(loaded, started, deleted=deleted))
                return True
        elif retry and self.latest is not None and self.latest is not self.serving:
            loaded = self.latest
        else:
            return None
        return await self.push(_Attempt(loaded, started, deleted=deleted))

    async def _watch(self, stop: asyncio.Event) -> None:
        from watchfiles import PythonFilter, awatch

        ignore = [self.functions_dir / "_generated"]
        try:
            async for changes in awatch(
                self.functions_dir,
                watch_filter=PythonFilter(ignore_paths=ignore),
                step=WATCH_STEP_MS,
                stop_event=stop,
            ):
                self.notice({Path(p) for _, p in changes})
        except Exception:
            if not stop.is_set():
                log.exception("watching %s stopped", self.functions_dir)

    async def close(self) -> None:
        """Stop watching (once ``stop`` is set) and close the deployment."""
        if self._watcher is not None and not self._watcher.done():
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                await asyncio.wait_for(self._watcher, 10)
        await self.typecheck.close()
        remove, self._remove_listener = self._remove_listener, None
        if remove is not None:
            remove()
        deployment, self.deployment = self.deployment, None
        if deployment is not None:
            await deployment.close()


class _Progress:
    """Backfill and check progress on the console, for the big tables only."""

    def __init__(self, out: Console) -> None:
        self.out = out
        self.last = 0.0

    def __call__(self, what: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if total < 20_000 or (done < total and now - self.last < 0.5):
            return
        self.last = now
        self.out.print(f"  {escape(what)}: {done:,}/{total:,} documents")


def _relative(path: Path, directory: Path) -> str:
    try:
        return path.relative_to(directory).as_posix()
    except ValueError:
        return str(path)


def _module_file(name: str) -> str:
    return (name.replace(".", "/") or "__init__") + ".py"


def _schema_only(loaded: LoadedFunctions) -> LoadedFunctions:
    """``loaded`` with its schema (indexes are built at open) but nothing callable yet: the
    start-up push swaps the functions in once the stored documents passed the schema check."""
    return LoadedFunctions(
        schema=loaded.schema,
        package=loaded.package,
        functions_dir=loaded.functions_dir,
        files=loaded.files,
    )
