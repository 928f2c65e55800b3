"""Test your functions in process, on a fresh in-memory store — no server, no files.

``ConvexTest`` loads a functions directory into a private deployment whose data lives in
memory and disappears when it closes, then calls functions the way a client would::

    from pyconvex.testing import ConvexTest

    async def test_send() -> None:
        async with ConvexTest("convex") as t:
            await t.mutation("messages:send", {"body": "hi"})
            assert [m["body"] for m in await t.query("messages:list")] == ["hi"]

Functions are named by ``"module:function"`` strings or by generated references
(``api.messages.send`` from ``convex/_generated/api.py``); internal functions can be called too.
A call returns the function's value, or raises what the function raised (``ConvexError`` with
its ``data``, or the original exception) — argument errors, unknown functions and invalid return
values raise :class:`FunctionCallError`. ``t.run(fn)`` runs ``fn(ctx)`` inside a mutation, for
setting up or inspecting data directly, ``t.with_identity(...)`` calls as a signed-in user, and
``ConvexTest(..., env={...})`` / ``t.set_env(name, value)`` set deployment environment variables,
``t.store_file(data, content_type)`` stores a file as an upload would,
``t.finish_scheduled_functions()`` waits for the scheduled functions that are due, and
``t.fetch(path, method=..., body=...)`` calls an HTTP action.

The deployment has a clock of its own that tests move forward, as the JS convex-test's fake
timers do: ``await t.advance_time(3600)`` runs the jobs due within the next hour, in order of
their scheduled time (those they schedule inside the window too), and
``await t.finish_all_scheduled_functions()`` runs every pending job however far ahead, until
none is left. Queries and mutations read the moved clock (``time.time()``, ``datetime.now()``),
and ``run_after`` counts from it; an action's own ``time.time()`` stays the wall clock.

It works with pytest-asyncio (``asyncio_mode = "auto"``, or ``@pytest.mark.asyncio``).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar, cast, overload

import httpx

from pyconvex.errors import ConvexError, PyconvexError, TransactionIOError
from pyconvex.runtime.auth.identity import UserIdentity
from pyconvex.runtime.functions import sandbox
from pyconvex.runtime.functions.call_errors import uncaught_text
from pyconvex.runtime.functions.ctx_impl import MutationCtx
from pyconvex.runtime.functions.deployment import Deployment, function_ref_path
from pyconvex.runtime.functions.env_vars import SET_PATH
from pyconvex.runtime.functions.loader import (
    LoadedFunctions,
    ModuleLoadError,
    load_functions,
    unload,
)
from pyconvex.runtime.functions.results import FunctionResult
from pyconvex.runtime.functions.scheduler import SCHEDULED_TABLE, ActionScheduler, delay_ms
from pyconvex.runtime.net.site import site_app
from pyconvex.server.ctx import ArgsOf, FunctionName
from pyconvex.server.functions import FunctionDefinition, internal_mutation
from pyconvex.server.references import FunctionReference, NoArgs
from pyconvex.values.annotations import Id

__all__ = ["ConvexTest", "FunctionCallError", "UserIdentity"]

T = TypeVar("T")
ArgsT = TypeVar("ArgsT")
ReturnsT = TypeVar("ReturnsT")
_RUN_PATH = "_pyconvex_testing:run"


class FunctionCallError(PyconvexError):
    """A call failed before or after its handler ran: the function does not exist (or is of
    another kind), its arguments or its return value did not validate, or an action's nested
    call failed. The message is the one a client would get."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


class ConvexTest:
    """A private, in-memory deployment of a functions directory, for tests.

    ``ConvexTest(functions_dir)`` (default ``"convex"``, relative to the current directory);
    use it as ``async with`` (or call :meth:`open` / :meth:`close`)::

        async with ConvexTest(Path(__file__).parent.parent / "convex") as t:
            user = await t.mutation(api.users.create, {"name": "Ada"})
            ada = t.with_identity(subject=user, name="Ada")
            await ada.mutation(api.messages.send, {"body": "hi"})
            count = await t.run(lambda ctx: ctx.db.query("messages").collect())
    """

    __test__ = False

    def __init__(
        self, functions_dir: str | Path = "convex", *, env: Mapping[str, str] | None = None
    ) -> None:
        self.functions_dir = Path(functions_dir)
        self._env = dict(env or {})
        self._deployment: Deployment | None = None
        self._loaded: LoadedFunctions | None = None
        self._identity: UserIdentity | None = None
        self._owner = True
        self._raised: list[Exception] = []
        self._clock = _Clock()
        self._run_fn: Callable[[Any], Any] | None = None
        self._run_value: Any = None

    # -- lifecycle -----------------------------------------------------------------------
    async def open(self) -> ConvexTest:
        """Load the functions and start the in-memory deployment (``async with`` does this)."""
        if self._deployment is not None:
            return self
        loaded = _load(self.functions_dir)
        for fn in loaded.functions.values():
            fn.handler = self._recording(fn.handler)
        run = internal_mutation(args={})(self._recording(self._run_handler))
        run.path = _RUN_PATH
        loaded.functions[_RUN_PATH] = run
        self._loaded = loaded
        self._deployment = await Deployment.open(None, None, loaded=loaded)
        self._deployment.jobs.clock = self._clock.now_ms
        try:
            for name, value in self._env.items():
                await self.set_env(name, value)
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        """Stop the deployment; its data is gone."""
        if not self._owner:
            return
        if self._deployment is not None:
            dep, self._deployment = self._deployment, None
            await dep.close()
        if self._loaded is not None:
            # Each open imports the functions afresh, under a new package name: drop this one.
            loaded, self._loaded = self._loaded, None
            unload(loaded)

    async def __aenter__(self) -> ConvexTest:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def deployment(self) -> Deployment:
        """The underlying :class:`~pyconvex.runtime.functions.deployment.Deployment` (for advanced use)."""
        if self._deployment is None:
            raise PyconvexError(
                "This ConvexTest is not open: use `async with ConvexTest(...) as t:` "
                "or `await t.open()` first."
            )
        return self._deployment

    # -- identity ------------------------------------------------------------------------
    def with_identity(self, identity: UserIdentity | None = None, /, **claims: Any) -> ConvexTest:
        """A view of the same deployment whose calls are made as a signed-in user::

            ada = t.with_identity(subject="user_1", name="Ada", email="ada@example.com")
            await ada.query(api.users.me)  # ctx.auth.get_user_identity() -> Ada

        Pass the claims as keywords (snake_case or Convex's camelCase; ``issuer``, ``subject``
        and ``token_identifier`` get defaults), or a :class:`UserIdentity`; with neither, the
        view is anonymous. It is the identity a client's token or ``pyconvex run --identity``
        gives a function.
        """
        view = copy.copy(self)
        view._owner = False
        view._raised = self._raised
        view._identity = identity if identity is not None or not claims else UserIdentity(claims)
        return view

    @property
    def identity(self) -> UserIdentity | None:
        """The identity this view calls with (None: anonymous)."""
        return self._identity

    # -- calls ---------------------------------------------------------------------------
    @overload
    async def query(
        self, fn: FunctionReference[Literal["query"], NoArgs, ReturnsT], args: NoArgs | None = None
    ) -> ReturnsT: ...
    @overload
    async def query(
        self, fn: FunctionReference[Literal["query"], ArgsT, ReturnsT], args: ArgsOf[ArgsT]
    ) -> ReturnsT: ...
    @overload
    async def query(self, fn: FunctionName, args: Mapping[str, Any] | None = None) -> Any: ...

    async def query(self, fn: Any, args: Any = None) -> Any:
        """Run a query (public or internal) at the latest commit and return its value.

        With a generated reference the arguments and the result are typed, as for
        ``ctx.run_query``; a ``"module:function"`` string returns ``Any``.
        """
        path = self._path(fn)
        self._raised.clear()
        result = self.deployment.run_query(
            path, _args(args), identity=self._identity, allow_internal=True
        )
        return self._outcome(path, result)

    @overload
    async def mutation(
        self,
        fn: FunctionReference[Literal["mutation"], NoArgs, ReturnsT],
        args: NoArgs | None = None,
    ) -> ReturnsT: ...
    @overload
    async def mutation(
        self, fn: FunctionReference[Literal["mutation"], ArgsT, ReturnsT], args: ArgsOf[ArgsT]
    ) -> ReturnsT: ...
    @overload
    async def mutation(self, fn: FunctionName, args: Mapping[str, Any] | None = None) -> Any: ...

    async def mutation(self, fn: Any, args: Any = None) -> Any:
        """Run a mutation; returns its value once its writes are committed."""
        path = self._path(fn)
        self._raised.clear()
        result = await self.deployment.run_mutation(
            path, _args(args), identity=self._identity, allow_internal=True
        )
        return self._outcome(path, result)

    @overload
    async def action(
        self,
        fn: FunctionReference[Literal["action"], NoArgs, ReturnsT],
        args: NoArgs | None = None,
    ) -> ReturnsT: ...
    @overload
    async def action(
        self, fn: FunctionReference[Literal["action"], ArgsT, ReturnsT], args: ArgsOf[ArgsT]
    ) -> ReturnsT: ...
    @overload
    async def action(self, fn: FunctionName, args: Mapping[str, Any] | None = None) -> Any: ...

    async def action(self, fn: Any, args: Any = None) -> Any:
        """Run an action (it may call queries, mutations and actions through ``ctx``)."""
        path = self._path(fn)
        self._raised.clear()
        result = await self.deployment.run_action(
            path, _args(args), identity=self._identity, allow_internal=True
        )
        return self._outcome(path, result)

    @overload
    async def run(self, fn: Callable[[Any], Awaitable[T]]) -> T: ...

    @overload
    async def run(self, fn: Callable[[Any], T]) -> T: ...

    async def run(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(ctx)`` inside one mutation and return what it returns (any Python object)::

            msg_id = await t.run(lambda ctx: ctx.db.insert("messages", {"body": "hi"}))
            docs = await t.run(lambda ctx: ctx.db.query("messages").collect())

        Writes commit atomically when ``fn`` returns; if it raises, nothing is written and the
        exception propagates.
        """
        self._raised.clear()
        self._run_fn, self._run_value = fn, None
        try:
            result = await self.deployment.run_mutation(
                _RUN_PATH, {}, identity=self._identity, allow_internal=True
            )
            self._outcome("t.run", result)
            return self._run_value
        finally:
            self._run_fn = self._run_value = None

    async def set_env(self, name: str, value: str | None) -> None:
        """Set (or, with None, remove) a deployment environment variable, as
        ``pyconvex env set`` does; functions read it through ``pyconvex.env``. Pass
        ``ConvexTest(..., env={...})`` to start with some."""
        self._raised.clear()
        result = await self.deployment.run_mutation(
            SET_PATH, {"name": name, "value": value}, allow_internal=True
        )
        self._outcome(f"set_env({name!r})", result)

    async def store_file(
        self, data: bytes, content_type: str | None = None
    ) -> Id[Literal["_storage"]]:
        """Store a file as a client's upload (or an action's ``ctx.storage.store``) would;
        returns its ``_storage`` id, for functions that take one::

            image = await t.store_file(b"\x89PNG...", "image/png")
            await t.mutation(api.messages.send_image, {..., "storage_id": image})
        """

        async def chunks() -> AsyncIterator[bytes]:
            yield bytes(data)

        return cast(
            "Id[Literal['_storage']]", await self.deployment.storage.store(chunks(), content_type)
        )

    async def fetch(
        self,
        path: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
    ) -> httpx.Response:
        """Call an HTTP action of ``convex/http.py`` as a client of the site port would::

        response = await t.fetch("/webhooks/tasks", method="POST", body=json.dumps({...}))
        assert response.status_code == 201
        """
        app = site_app(self.deployment)
        if app is None:
            raise PyconvexError("This deployment cannot serve HTTP actions.")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:3211") as c:
            return await c.request(method, path, headers=headers, content=body)

    async def finish_scheduled_functions(self, timeout: float = 10.0) -> None:
        """Wait until every scheduled function that is due has run, including those they
        schedule in turn (jobs scheduled for later stay pending: see :meth:`advance_time` and
        :meth:`finish_all_scheduled_functions`)::

            await t.mutation(api.messages.send, {...})  # schedules a notification
            await t.finish_scheduled_functions()
        """
        deadline = time.monotonic() + timeout
        while True:
            jobs = await self._jobs()
            now_ms = self._clock.now_ms()
            waiting = [
                job["name"]
                for job in jobs
                if job["state"]["kind"] == "inProgress"
                or (job["state"]["kind"] == "pending" and job["scheduledTime"] <= now_ms)
            ]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Scheduled functions still due after {timeout} s: {', '.join(waiting)}."
                )
            await asyncio.sleep(0.01)

    async def advance_time(self, seconds: float, *, timeout: float = 10.0) -> None:
        """Move the deployment's clock ``seconds`` forward and run the scheduled functions
        that fall due meanwhile, each once the clock reaches its time, including those they
        schedule within the window::

            await t.mutation(api.reminders.set, {"in_s": 3600})  # run_after(3600, ...)
            await t.advance_time(3600)  # the reminder has run; the clock reads an hour later
        """
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise TypeError(f"advance_time takes seconds (a number), got {seconds!r}.")
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"advance_time moves the clock forward: got {seconds!r} s.")
        target_ms = self._clock.now_ms() + seconds * 1000.0
        while True:
            await self.finish_scheduled_functions(timeout)
            due = await self._next_due_ms()
            if due is None or due > target_ms:
                break
            self._move_clock_to(due)
        self._move_clock_to(target_ms)

    async def finish_all_scheduled_functions(
        self, *, max_steps: int = 100, timeout: float = 10.0
    ) -> None:
        """Run every pending scheduled function, however far ahead, moving the clock to each
        one's time in turn, until none is left (jobs they schedule included)::

            await t.mutation(api.onboarding.start, {...})  # emails now, in a day, in a week
            await t.finish_all_scheduled_functions()

        The clock is moved at most ``max_steps`` times: a function that keeps scheduling
        itself raises :class:`~pyconvex.errors.PyconvexError` instead of running forever.
        """
        for step in range(max_steps + 1):
            await self.finish_scheduled_functions(timeout)
            due = await self._next_due_ms()
            if due is None:
                return
            if step < max_steps:
                self._move_clock_to(due)
        names = sorted({job["name"] for job in await self._jobs() if _is_pending(job)})
        raise PyconvexError(
            f"finish_all_scheduled_functions moved the clock {max_steps} times and scheduled "
            f"functions are still pending ({', '.join(names)}): a function probably schedules "
            "itself again every time it runs. Make it stop (a condition, or "
            "ctx.scheduler.cancel), use t.advance_time(seconds) to run only a window, or pass "
            "a larger max_steps."
        )

    # -- internals -----------------------------------------------------------------------
    async def _jobs(self) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = await self.run(
            lambda ctx: ctx.db.system.query(SCHEDULED_TABLE).collect()
        )
        return jobs

    async def _next_due_ms(self) -> float | None:
        """The scheduled time of the earliest pending job (None: none is pending)."""
        times = [float(job["scheduledTime"]) for job in await self._jobs() if _is_pending(job)]
        return min(times, default=None)

    def _move_clock_to(self, at_ms: float) -> None:
        self._clock.move_to(at_ms)
        self.deployment.jobs.wake()

    async def _run_handler(self, ctx: MutationCtx) -> None:
        fn = self._run_fn
        assert fn is not None
        value = fn(ctx)
        if inspect.isawaitable(value):
            value = await value
        # Kept aside rather than returned: t.run may hand back any Python object.
        self._run_value = value

    def _recording(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        raised = self._raised
        clock = self._clock

        @functools.wraps(handler)
        async def recording(ctx: Any, /, **args: Any) -> Any:
            clock.enter(ctx)
            try:
                value = handler(ctx, **args)
                if inspect.isawaitable(value):
                    value = await value
                return value
            except Exception as e:
                # Not BaseException: the GeneratorExit or CancelledError the sandbox throws
                # into a query or mutation it stops (it awaited I/O) is not what the call
                # failed with; the deployment then reports its own TransactionIOError.
                raised.append(e)
                raise

        return recording

    def _path(self, fn: Any) -> str:
        if isinstance(fn, FunctionDefinition) and not fn.path:
            return self._path_of_definition(fn)
        try:
            return function_ref_path(fn)
        except PyconvexError as e:
            raise FunctionCallError(repr(fn), str(e)) from None

    def _path_of_definition(self, fn: FunctionDefinition) -> str:
        # A function imported straight from the user's module (not through the loader): find
        # it by its source file and name.
        handler = inspect.unwrap(fn.handler)
        source = Path(inspect.getfile(handler)).resolve()
        root = self.functions_dir.resolve()
        try:
            module = source.relative_to(root).with_suffix("").as_posix()
        except ValueError:
            raise FunctionCallError(
                fn.name,
                f"{source} is not inside the functions directory {root}; pass "
                "'module:function' or a reference from _generated/api.py.",
            ) from None
        return f"{module}:{fn.name}"

    def _outcome(self, path: str, result: FunctionResult) -> Any:
        failure = result.failure
        if failure is None:
            return result.value
        last = self._raised[-1] if self._raised else None
        if failure.is_convex_error:
            raise last if isinstance(last, ConvexError) else ConvexError(failure.data)
        error = failure.error or failure.message
        if last is not None and error.startswith(uncaught_text(type(last).__name__, str(last))):
            # The exception that escaped the outermost handler, with its traceback.
            raise last
        # The deployment failed the call itself, as it would a client's: a query or mutation
        # that waited for I/O or time (even if it caught the error), bad arguments, ...
        io_error = uncaught_text(TransactionIOError.__name__, "") + ": "
        if error.startswith(io_error):
            raise TransactionIOError(error[len(io_error) :].split("\n    at ", 1)[0].rstrip())
        raise FunctionCallError(path, failure.message)


_moved_scope: ContextVar[sandbox.ExecutionScope | None] = ContextVar(
    "pyconvex_testing_moved_scope", default=None
)


class _Clock:
    """The test deployment's clock: the wall clock, moved forward by ``advance_time`` (shared
    by the views ``with_identity`` makes)."""

    __slots__ = ("offset_ns",)

    def __init__(self) -> None:
        self.offset_ns = 0

    def now_ms(self) -> float:
        return (sandbox.real_time_ns() + self.offset_ns) / 1e6

    def move_to(self, at_ms: float) -> None:
        """Move forward so that it reads ``at_ms`` or later (never back); whole microseconds,
        the resolution of a function's clock."""
        needed_us = math.ceil(at_ms * 1000.0 - sandbox.real_time_ns() / 1000)
        self.offset_ns = max(self.offset_ns, needed_us * 1000)

    def enter(self, ctx: Any) -> None:
        """Show a handler that starts the moved clock: a query's or mutation's frozen time is
        moved; an action's ``run_after`` counts from it."""
        if not self.offset_ns:
            return
        scope = sandbox.current_scope()
        if scope is not None and scope.deterministic and _moved_scope.get() is not scope:
            _moved_scope.set(scope)  # (once: a handler may call another's directly)
            scope.now_ns += self.offset_ns
        scheduler = getattr(ctx, "scheduler", None)
        if isinstance(scheduler, ActionScheduler):
            ctx.scheduler = _ActionSchedulerOnClock(scheduler, self)


class _ActionSchedulerOnClock:
    """An action's ``ctx.scheduler`` whose ``run_after`` counts from the test clock."""

    def __init__(self, scheduler: ActionScheduler, clock: _Clock) -> None:
        self._scheduler = scheduler
        self._clock = clock

    async def run_after(self, delay_s: float, fn: Any, args: dict[str, Any] | None = None) -> str:
        return await self._scheduler.run_at(self._clock.now_ms() + delay_ms(delay_s), fn, args)

    async def run_at(self, when: Any, fn: Any, args: dict[str, Any] | None = None) -> str:
        return await self._scheduler.run_at(when, fn, args)

    async def cancel(self, job_id: str) -> None:
        await self._scheduler.cancel(job_id)


def _is_pending(job: Mapping[str, Any]) -> bool:
    return bool(job["state"]["kind"] == "pending")


def _args(args: Any) -> Any:
    # Not validated here: the deployment checks the arguments as it would a client's.
    return {} if args is None else dict(args) if isinstance(args, Mapping) else args


def _load(functions_dir: Path) -> LoadedFunctions:
    try:
        return load_functions(functions_dir)
    except ModuleLoadError as e:
        generated = functions_dir / "_generated"
        if "_generated" in str(e) and not generated.is_dir():
            raise ModuleLoadError(
                f"{e}\nThe functions import {generated}, which does not exist yet: run "
                "`pyconvex codegen` (or `pyconvex dev`) in the project first."
            ) from e
        raise
