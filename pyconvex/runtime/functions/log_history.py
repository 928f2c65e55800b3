"""The deployment's recent function executions, for ``pyconvex logs``.

Recording sits on the hot path of every query, mutation and action, so it only appends a tuple
to a bounded deque; entries become :class:`~pyconvex.protocol.LogEntry` objects (and JSON) when
someone reads them::

    history = LogHistory(capacity=1000)
    history.record("query", "messages:list", start_ns, None, ["[LOG] hi"])
    history.recent(10)                       # the last 10, oldest first
    async for entry in history.follow(10):   # the last 10, then each new one as it happens
        print(entry.to_json())

What started an execution other than a client (the scheduler, a cron job) is named by whoever
starts it, for the calls it makes itself::

    with triggered_by("cron nightly"):
        await deployment.run_mutation(...)   # recorded with trigger "cron nightly"
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar

from pyconvex.protocol import LogEntry
from pyconvex.runtime.functions.results import FunctionFailure, new_request_id
from pyconvex.runtime.functions.sandbox import real_time_ns

DEFAULT_CAPACITY = 1000

#: (start ns, end ns, kind, path, failure or None, log lines, request id, trigger)
_Raw = tuple[int, int, str, str, FunctionFailure | None, list[str], str, str | None]

#: What started the calls made in this context, when no client did ("scheduled", "cron x").
#: A mutation is recorded once durable, from a callback that keeps the context it was applied
#: in, so the trigger reaches its entry too.
_TRIGGER: ContextVar[str | None] = ContextVar("pyconvex_log_trigger", default=None)


@contextlib.contextmanager
def triggered_by(trigger: str | None) -> Iterator[None]:
    """Record the executions started in this block with ``trigger`` (None: a client's)."""
    token = _TRIGGER.set(trigger)
    try:
        yield
    finally:
        _TRIGGER.reset(token)


class LogHistory:
    """A bounded history of executions that readers can follow live."""

    __slots__ = ("_entries", "_waiter", "capacity", "total")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._entries: deque[_Raw] = deque(maxlen=capacity)
        #: How many executions were ever recorded (the next entry's sequence number).
        self.total = 0
        self._waiter: asyncio.Future[None] | None = None

    def record(
        self,
        kind: str,
        path: str,
        start_ns: int,
        failure: FunctionFailure | None,
        log_lines: list[str],
    ) -> None:
        """Note one execution that started at ``start_ns`` (wall clock) and ends now; a
        failure's request id is the entry's (the one its client saw), a success gets one.
        What triggered it is the context's (:func:`triggered_by`)."""
        request_id = failure.request_id if failure is not None else None
        self._entries.append(
            (
                start_ns,
                real_time_ns(),
                kind,
                path,
                failure,
                log_lines,
                request_id or new_request_id(),
                _TRIGGER.get(),
            )
        )
        self.total += 1
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _entry(self, seq: int) -> LogEntry:
        start, end, kind, path, failure, lines, request_id, trigger = self._entries[
            seq - self.first_seq
        ]
        return LogEntry(
            seq,
            start / 1e6,
            kind,
            path,
            (end - start) / 1e6,
            None if failure is None else failure.message,
            lines,
            None if failure is None else failure.traceback,
            None if failure is None else failure.full_traceback,
            request_id,
            trigger,
        )

    @property
    def first_seq(self) -> int:
        """The sequence number of the oldest entry still held."""
        return self.total - len(self._entries)

    def recent(self, n: int | None = None) -> list[LogEntry]:
        """The last ``n`` entries (all held when None), oldest first."""
        count = len(self._entries) if n is None else max(0, min(n, len(self._entries)))
        return [self._entry(seq) for seq in range(self.total - count, self.total)]

    def follow(self, history: int = 0, *, since: int | None = None) -> AsyncIterator[LogEntry]:
        """Yield the last ``history`` entries (or those from sequence number ``since`` on), then
        every new one as it is recorded (forever; a reader that falls more than ``capacity``
        entries behind skips the ones it missed).

        The starting point is fixed by this call, not by the first iteration."""
        start = self.total - max(0, history) if since is None else since
        return self._follow(max(self.first_seq, start))

    async def _follow(self, seq: int) -> AsyncIterator[LogEntry]:
        while True:
            while seq < self.total:
                seq = max(seq, self.first_seq)
                yield self._entry(seq)
                seq += 1
            waiter = self._waiter
            if waiter is None:
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            # asyncio.wait, not await: a cancelled reader must not cancel the shared future.
            await asyncio.wait({waiter})
