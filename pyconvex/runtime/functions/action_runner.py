"""Running actions: any I/O, a time limit, and a cap on how many run at once.

An action is a plain coroutine on the server's event loop. The runner gives each one a slot
(at most :attr:`ActionLimits.max_concurrent` run at once; later ones wait their turn), a
deadline (:attr:`ActionLimits.timeout_s`, Convex's 10 minutes), its ``ctx`` and its log lines::

    runner = ActionRunner(deployment)
    result = await runner.run(fn, {"url": "https://example.com"}, identity=None)

Actions are never retried: a failure (its ConvexError data kept) is the caller's answer. Nested
calls (``ctx.run_action``) run inside their caller's slot, so a full house cannot deadlock.

Blocking code (``time.sleep``, ``requests.get``) would stall the loop and with it every client:
``await ctx.run_blocking(fn, *args)`` runs it on a worker thread, and a blocking call made on the
loop itself is reported in the action's log (see ``sandbox``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pyconvex.errors import ConvexError, PyconvexError
from pyconvex.runtime.functions import sandbox
from pyconvex.runtime.functions.ctx_impl import ActionCtx, Auth
from pyconvex.runtime.functions.env_vars import ENV_SOURCE
from pyconvex.runtime.functions.function_path import function_ref_path
from pyconvex.runtime.functions.log_history import LogHistory, triggered_by
from pyconvex.runtime.functions.results import FunctionFailure, FunctionKind, FunctionResult
from pyconvex.runtime.functions.scheduler import ActionScheduler
from pyconvex.runtime.query.transaction import Transaction
from pyconvex.runtime.store.memory import Store
from pyconvex.server.functions import FunctionDefinition

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ActionLimits:
    """How long one action may run and how many run at once (Convex's defaults)."""

    timeout_s: float = 600.0
    max_concurrent: int = 64
    #: Worker threads for ``ctx.run_blocking``.
    blocking_threads: int = 32


class ActionHost(Protocol):
    """What the runner needs of the deployment."""

    log_history: LogHistory
    store: Store

    def run_query(
        self, path: str, args: dict[str, Any] | None = None, *, identity: Any = None,
        allow_internal: bool = False,
    ) -> FunctionResult: ...  # fmt: skip

    async def run_mutation(
        self, path: str, args: dict[str, Any] | None = None, *, identity: Any = None,
        allow_internal: bool = False,
    ) -> FunctionResult: ...  # fmt: skip

    def _resolve(
        self, path: str, kind: str, allow_internal: bool
    ) -> FunctionDefinition | FunctionFailure: ...

    def function_kind(self, path: str) -> FunctionKind | None: ...

    def _args(
        self, fn: FunctionDefinition, args: Any, tx: Transaction | None
    ) -> dict[str, Any]: ...

    def _result_value(self, fn: FunctionDefinition, value: Any) -> Any: ...

    def _failure(self, e: BaseException, where: str) -> FunctionFailure: ...


#: Builds the ``ctx.storage`` of an action (set by the deployment).
ServiceFactory = Callable[[], Any]


class ActionRunner:
    """Runs actions for one deployment (see the module docstring)."""

    def __init__(self, host: ActionHost, limits: ActionLimits | None = None) -> None:
        self.host = host
        self.limits = limits or ActionLimits()
        self.running = 0
        self.waiting = 0
        self.storage: ServiceFactory | None = None
        self._slots: asyncio.Semaphore | None = None
        self._slots_size = 0
        self._executor: ThreadPoolExecutor | None = None

    # -- slots ---------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def slot(self, nested: bool = False) -> AsyncIterator[None]:
        """Hold one of the ``max_concurrent`` slots (nested calls use their caller's)."""
        if nested:
            yield
            return
        slots = self._slots
        if slots is None or self._slots_size != self.limits.max_concurrent:
            self._slots_size = max(1, self.limits.max_concurrent)
            slots = self._slots = asyncio.Semaphore(self._slots_size)
        self.waiting += 1
        try:
            await slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            slots.release()

    # -- running ---------------------------------------------------------------------------
    def make_ctx(self, identity: Any, scope: sandbox.ExecutionScope) -> ActionCtx:
        """The ``ctx`` of an action (or HTTP action) running as ``identity``."""
        return ActionCtx(
            Auth(identity),
            lambda f, a: self._call("query", f, a, identity, scope),
            lambda f, a: self._call("mutation", f, a, identity, scope),
            lambda f, a: self._call("action", f, a, identity, scope),
            storage=self.storage() if self.storage is not None else None,
            scheduler=ActionScheduler(
                lambda f, a: self._call("mutation", f, a, None, scope), self.host.function_kind
            ),
            run_blocking=self.run_blocking,
        )

    async def run(
        self,
        fn: FunctionDefinition,
        args: Any,
        identity: Any = None,
        *,
        nested: bool = False,
    ) -> FunctionResult:
        """Run action ``fn`` with ``args`` (validated here) as ``identity``."""
        host = self.host
        where = f"action {fn.path}"
        async with self.slot(nested):
            scope = sandbox.ExecutionScope(
                sandbox.real_time_ns(), 0, deterministic=False, where=where
            )
            scope.loop_thread = threading.get_ident()
            ctx = self.make_ctx(identity, scope)
            env_token = ENV_SOURCE.set(host.store)
            failure: FunctionFailure | None = None
            value: Any = None
            with sandbox.scope(scope):
                try:
                    handler_args = host._args(fn, args, None)
                    value = host._result_value(
                        fn, await self.with_deadline(fn.handler(ctx, **handler_args), where)
                    )
                except Exception as e:
                    failure = host._failure(e, where)
                finally:
                    ENV_SOURCE.reset(env_token)
        host.log_history.record("action", fn.path, scope.now_ns, failure, scope.log_lines)
        if failure is not None:
            return FunctionResult(failure=failure, log_lines=scope.log_lines)
        return FunctionResult(value, None, scope.log_lines)

    async def run_http(
        self,
        label: str,
        handler: Callable[[Any, Any], Any],
        request: Any,
        check: Callable[[Any], Any],
        identity: Any = None,
    ) -> tuple[Any, FunctionFailure | None]:
        """Run an HTTP action's ``handler(ctx, request)``; ``check`` validates what it returned
        (raises if it is not a response). Recorded in the log history as ``label``
        ("GET /hello")."""
        host = self.host
        where = f"HTTP action {label}"
        failure: FunctionFailure | None = None
        response: Any = None
        async with self.slot():
            scope = sandbox.ExecutionScope(
                sandbox.real_time_ns(), 0, deterministic=False, where=where
            )
            scope.loop_thread = threading.get_ident()
            ctx = self.make_ctx(identity, scope)
            env_token = ENV_SOURCE.set(host.store)
            with sandbox.scope(scope):
                try:
                    response = check(await self.with_deadline(handler(ctx, request), where))
                except Exception as e:
                    failure = host._failure(e, where)
                finally:
                    ENV_SOURCE.reset(env_token)
        host.log_history.record("http_action", label, scope.now_ns, failure, scope.log_lines)
        return response, failure

    async def with_deadline(self, awaitable: Any, where: str) -> Any:
        """Await ``awaitable`` within the time limit; past it, raise :class:`ActionTimeout`."""
        limit = self.limits.timeout_s
        try:
            async with asyncio.timeout(limit) as deadline:
                return await awaitable
        except TimeoutError:
            if not deadline.expired():
                raise  # the handler's own TimeoutError
            raise ActionTimeout(
                f"{where} timed out after {_duration(limit)}, the time limit of an action. "
                "Split long work into steps, e.g. each step scheduling the next with "
                "ctx.scheduler.run_after(0, ...)."
            ) from None

    async def run_blocking(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on a worker thread; its prints stay this action's logs."""
        executor = self._executor
        if executor is None:
            executor = self._executor = ThreadPoolExecutor(
                self.limits.blocking_threads, thread_name_prefix="pyconvex-blocking"
            )
        context = contextvars.copy_context()
        call = functools.partial(context.run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(executor, call)

    async def _call(
        self, kind: str, fn: Any, args: Any, identity: Any, scope: sandbox.ExecutionScope
    ) -> Any:
        host = self.host
        path = function_ref_path(fn)
        # The action's own calls are its doing, not the scheduler's (if it was scheduled).
        with triggered_by(None):
            if kind == "query":
                result = host.run_query(path, args, identity=identity, allow_internal=True)
            elif kind == "mutation":
                result = await host.run_mutation(path, args, identity=identity, allow_internal=True)
            else:
                resolved = host._resolve(path, "action", True)
                if isinstance(resolved, FunctionFailure):
                    result = FunctionResult(failure=resolved)
                else:
                    result = await self.run(resolved, args, identity, nested=True)
        scope.log_lines.extend(result.log_lines)
        if result.failure is not None:
            if result.failure.is_convex_error:
                raise ConvexError(result.failure.data)
            # As in Convex, the caller sees the error without the callee's request line.
            raise PyconvexError((result.failure.error or result.failure.message).rstrip("\n"))
        return result.value

    def close(self) -> None:
        """Let go of the worker threads (a call still running finishes on its own)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


class ActionTimeout(PyconvexError):
    """An action ran past its time limit."""


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} s"
