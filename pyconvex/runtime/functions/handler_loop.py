"""Running a query's or mutation's handler: its coroutine driven to the end on the caller's
thread, with an event loop of its own (:class:`TransactionLoop`) so that ``asyncio.gather``,
``TaskGroup`` and ``create_task`` over ``ctx.db`` calls work (Convex's ``Promise.all``), and
waiting for time or I/O is refused with :class:`~pyconvex.errors.TransactionIOError`.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import events as asyncio_events
from asyncio.tasks import _enter_task, _leave_task
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from pyconvex.errors import TransactionIOError


def drive(coro: Any, where: str) -> Any:
    """Run a handler's coroutine to completion without yielding to the event loop.

    Its event loop is a :class:`TransactionLoop` of its own, so what asyncio offers for
    concurrency within a function works as ``Promise.all`` does in Convex: ``asyncio.gather``
    over ``ctx.db`` calls, ``TaskGroup``, ``create_task``, ``asyncio.sleep(0)``. The tasks run
    one after another in the order they were started, within the transaction; anything that
    waits for time or I/O is refused (:class:`TransactionIOError`). A handler that starts no
    task (most) runs in one step, with no task of its own."""
    if not isinstance(coro, Coroutine):
        return coro  # a plain (non-async) handler already returned its value
    loop, handler = TransactionLoop(where), _HandlerTask()
    outer = asyncio_events._get_running_loop()
    asyncio_events._set_running_loop(loop)  # type: ignore[arg-type]
    try:
        _enter_task(loop, handler)  # type: ignore[arg-type]
        try:
            yielded = coro.send(None)
        except StopIteration as stop:
            value, yielded = stop.value, _DONE
        finally:
            _leave_task(loop, handler)  # type: ignore[arg-type]
        if yielded is not _DONE:
            try:
                value = loop.finish(coro, yielded, handler)
            except BaseException:
                coro.close()
                raise
    except Exception as e:
        if loop.refused is not None and not isinstance(e, TransactionIOError):
            raise TransactionIOError(loop.refused) from e  # it raised something else instead
        raise
    else:
        if loop.refused is not None:  # (even if the function caught the error)
            raise TransactionIOError(loop.refused)
        return value
    finally:
        loop.close()
        asyncio_events._set_running_loop(outer)


#: ``coro.send`` finished the handler (it returned without awaiting anything that waits).
_DONE = object()


class _HandlerTask:
    """What ``asyncio.current_task()`` is while a handler runs (a ``TaskGroup`` needs one):
    ``cancel()`` is how a task group stops its parent when a child fails."""

    cancels = 0
    cancel_requested = False

    def cancel(self, msg: object = None) -> bool:
        self.cancels += 1
        self.cancel_requested = True
        return True

    def uncancel(self) -> int:
        self.cancels = max(0, self.cancels - 1)
        return self.cancels

    def cancelling(self) -> int:
        return self.cancels

    def done(self) -> bool:
        return False

    def get_name(self) -> str:
        return "handler"


class TransactionLoop:
    """The event loop a query's or mutation's code sees (see :func:`drive`): ready callbacks
    run in order, on the caller's thread; no timers, no I/O. Only what asyncio's tasks,
    futures, ``gather`` and ``TaskGroup`` use, and, refused with a clear error, the ways to
    wait for time or I/O."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._ready: deque[asyncio.Handle] = deque()
        self._tasks: list[asyncio.Task[Any]] | None = None  # (most handlers start none)
        #: Why the function was refused (it waited for time or I/O), if it was.
        self.refused: str | None = None

    def finish(self, coro: Any, yielded: Any, handler: _HandlerTask) -> Any:
        """Drive a handler that awaited something (see :func:`drive`) to its end: the tasks it
        started run until what it awaits is done, then it resumes."""
        ready = self._ready
        while True:
            if yielded is None:  # a bare yield (asyncio.sleep(0)): the others' turn
                for _ in range(len(ready)):
                    ready.popleft()._run()
            elif isinstance(yielded, asyncio.Future) and yielded.get_loop() is self:  # type: ignore[comparison-overlap]
                while not yielded.done() and not handler.cancel_requested:
                    if not ready:
                        raise self._refuse(f"awaited {_describe(yielded)}")
                    ready.popleft()._run()
            else:
                raise self._refuse(f"awaited {_describe(yielded)}")
            _enter_task(self, handler)  # type: ignore[arg-type]
            try:
                if handler.cancel_requested:
                    handler.cancel_requested = False
                    yielded = coro.throw(asyncio.CancelledError())
                else:
                    yielded = coro.send(None)
            except StopIteration as stop:
                return stop.value
            finally:
                _leave_task(self, handler)  # type: ignore[arg-type]

    def _refuse(self, what: str) -> TransactionIOError:
        if self.refused is None:
            self.refused = (
                f"{self.where} {what}, which would suspend the transaction. Queries and mutations "
                "must be deterministic and may not do I/O or sleep: await only ctx.db / "
                "ctx.storage / ctx.scheduler calls here (asyncio.gather over them is fine), and "
                "move network, file or timer work into an action (@action), which can call this "
                "function with ctx.run_query / ctx.run_mutation."
            )
        return TransactionIOError(self.refused)

    def close(self) -> None:
        """Stop what the function started and left unfinished (it returned without awaiting
        them): their code runs no further."""
        if self._tasks is None and not self._ready:
            return
        for task in self._tasks or ():
            if not task.done():
                task.cancel()
        for _ in range(100):  # (a task that swallows its cancellation is left as it is)
            if not self._ready:
                break
            self._ready.popleft()._run()
        self._ready.clear()

    # -- what asyncio.Task and asyncio.Future use ----------------------------------------
    def call_soon(self, callback: Callable[..., Any], *args: Any, context: Any = None) -> Any:
        handle = asyncio.Handle(callback, args, self, context)  # type: ignore[arg-type]
        self._ready.append(handle)
        return handle

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)  # type: ignore[arg-type]

    def create_task(self, coro: Any, *, name: str | None = None, context: Any = None) -> Any:
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=self, name=name, context=context)  # type: ignore[arg-type]
        if self._tasks is None:
            self._tasks = []
        self._tasks.append(task)
        return task

    def get_debug(self) -> bool:
        return False

    def is_running(self) -> bool:
        return True

    def is_closed(self) -> bool:
        return False

    def time(self) -> float:
        return 0.0

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        logging.getLogger("pyconvex.sandbox").debug("%s: %s", self.where, context.get("message"))

    # -- what it refuses: time and I/O ---------------------------------------------------
    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        raise self._refuse("waited for a timer (asyncio.sleep or a timeout)")

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        raise self._refuse("waited for a timer (asyncio.sleep or a timeout)")

    def run_in_executor(self, executor: Any, func: Callable[..., Any], *args: Any) -> Any:
        raise self._refuse("ran blocking work in an executor")

    async def getaddrinfo(self, *args: Any, **kwargs: Any) -> Any:
        raise self._refuse("looked up a network address")

    async def create_connection(self, *args: Any, **kwargs: Any) -> Any:
        raise self._refuse("opened a network connection")


def _describe(obj: object) -> str:
    if obj is None:
        return "something that never comes"
    return f"{type(obj).__module__}.{type(obj).__qualname__}"
