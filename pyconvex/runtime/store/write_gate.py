"""Holding new writes while a bulk write puts its documents into memory over many loop turns.

An import commits all of its documents at one timestamp, but putting a million of them into
the in-memory store takes seconds: done in one step it would stall every client for that long.
So the import puts them in a chunk per loop turn (:mod:`pyconvex.runtime.data.import_commit`):
first their versions and index keys, stamped with a commit timestamp not made yet
(:class:`PendingTs`, later than every snapshot, so no reader sees them) while queries and
mutations go on; then, in a last step, the timestamp is made and
the documents become the tables' newest versions. Queries go on through that step too (they
read at the durable timestamp, which does not see the import until its commit is durable).
Mutations, which read the newest version of everything, wait through it (:meth:`hold`), so
none sees half an import; they then run as usual, pipelined behind it.

One bulk write at a time, and never during a schema push (whose index backfill also runs over
many turns): both take :meth:`WriteGate.exclusive`; only the bulk write holds mutations.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager


class WriteGate:
    """See the module docstring."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        #: Resolved when the bulk write in progress is handed over; None: writes flow.
        self._open: asyncio.Future[None] | None = None

    @property
    def held(self) -> bool:
        """Whether new mutations must wait (:meth:`wait_open`, :meth:`when_open`)."""
        return self._open is not None

    async def wait_open(self) -> None:
        while self._open is not None:
            await asyncio.shield(self._open)

    def when_open(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the loop) once writes flow again; at once if they do."""
        if self._open is None:
            asyncio.get_running_loop().call_soon(callback)
        else:
            self._open.add_done_callback(lambda _: callback())

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """No other bulk write or schema push runs inside (mutations do: see :meth:`hold`)."""
        async with self._lock:
            yield

    @asynccontextmanager
    async def hold(self, settled: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
        """New mutations wait until the block is left (only inside :meth:`exclusive`);
        ``settled`` waits for the commits already handed over to be durable (so that none can
        fail, and be taken out of memory, while the bulk write's last step runs)."""
        assert self._lock.locked(), "hold() is for the holder of exclusive()"
        self._open = asyncio.get_running_loop().create_future()
        try:
            await settled()
            yield
        finally:
            opened, self._open = self._open, None
            opened.set_result(None)


class PendingTs(int):
    """The commit timestamp of a bulk write whose commit is not made yet: later than every
    timestamp until :meth:`settle` gives it its value, then equal to that value.

    An import puts its documents' versions into the store ahead of its commit, stamped with
    one of these (see the module docstring): every reader, at any snapshot, finds them in the
    future; once the commit timestamp is made, one assignment puts them all at it. It compares
    (and only compares) as the number it stands for.
    """

    def __new__(cls) -> PendingTs:
        return super().__new__(cls, 0)

    def __init__(self) -> None:
        self.value: int | None = None

    def settle(self, ts: int) -> None:
        self.value = ts

    def _v(self) -> int:
        return _FUTURE if self.value is None else self.value

    def __eq__(self, other: object) -> bool:
        return self._v() == other

    def __ne__(self, other: object) -> bool:
        return self._v() != other

    def __lt__(self, other: int) -> bool:
        return self._v() < other

    def __le__(self, other: int) -> bool:
        return self._v() <= other

    def __gt__(self, other: int) -> bool:
        return self._v() > other

    def __ge__(self, other: int) -> bool:
        return self._v() >= other

    __hash__ = int.__hash__

    def __repr__(self) -> str:
        return f"PendingTs({self.value})"


_FUTURE = 1 << 64  # later than any nanosecond timestamp
