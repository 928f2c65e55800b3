"""A sync socket's outbound side: a bounded queue of frames and the task that writes them.

A slow or dead client only grows its own queue; past ``max_outbound_bytes`` the socket is closed
with a reason the npm client backs off on. One re-arming timer sends the JSON Ping after
``ping_interval`` seconds of outbound silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from pyconvex.protocol import PING

_log = logging.getLogger("pyconvex.sync")

# Close codes and reasons. npm backs off by the reason's prefix (PROTOCOL §1.7); 1000/1001/
# 1005/4040 count as normal closes there, anything else is logged and reconnected.
CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1008
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013
OVERLOADED_REASON = "SubscriptionsWorkerFullError"
MAX_CLOSE_REASON_BYTES = 123


@dataclass(frozen=True, slots=True)
class SyncConfig:
    """Knobs of the sync endpoint.

    ``ping_interval``: seconds of outbound silence before a JSON Ping (Convex: 15).
    ``max_outbound_bytes``: a socket whose unsent frames exceed this is closed as overloaded.
    ``close_timeout``: how long a close may wait on a stuck client before the TCP connection
    is aborted.
    ``max_queued_mutations``: see below.
    """

    ping_interval: float = 15.0
    max_outbound_bytes: int = 32 * 1024 * 1024
    close_timeout: float = 5.0
    #: Mutations a socket may have waiting before its input is paused (TCP backpressure on a
    #: client that sends faster than they commit); reading resumes at half of it.
    max_queued_mutations: int = 1024


class Transport(Protocol):
    """How an :class:`Outbox` reaches the socket (a Starlette WebSocket in production)."""

    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...

    def abort(self) -> None: ...


class FrameSink(Protocol):
    """Where a :class:`~pyconvex.runtime.net.sync_session.SyncSession` sends its frames: an :class:`Outbox`
    (ASGI WebSocket) or the sync endpoint's own WebSocket protocol."""

    closed: bool

    def send(self, text: str) -> None: ...

    def close(self, code: int, reason: str, *, flush: bool = True) -> None: ...


def truncate_reason(reason: str) -> str:
    raw = reason.encode("utf-8")
    if len(raw) <= MAX_CLOSE_REASON_BYTES:
        return reason
    return raw[: MAX_CLOSE_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."


class Outbox:
    """A socket's bounded outbound queue and the writer task draining it.

    :meth:`send` never blocks: a slow or dead client only grows its own queue, and when that
    queue passes ``max_outbound_bytes`` the socket is closed with a reason starting with
    ``SubscriptionsWorkerFullError`` (npm backs off 3 s on it).
    """

    def __init__(self, transport: Transport, config: SyncConfig) -> None:
        self._transport = transport
        self._config = config
        self._queue: deque[str] = deque()
        self._queued_bytes = 0
        self._wakeup = asyncio.Event()
        self._close_request: tuple[int, str] | None = None
        self.closed = False  # no more frames are accepted
        self.done = asyncio.Event()  # the writer has finished (socket closed or gone)
        self.sent_frames = 0
        self._writer = asyncio.create_task(self._run(), name="pyconvex-sync-writer")
        self._closer: asyncio.Task[None] | None = None
        # One re-arming timer for the idle Ping, rather than a timeout around every wait.
        self._loop = asyncio.get_running_loop()
        self._last_sent = self._loop.time()
        self._ping_timer = self._loop.call_later(config.ping_interval, self._ping_check)

    def _ping_check(self) -> None:
        if self.closed:
            return
        idle = self._loop.time() - self._last_sent
        interval = self._config.ping_interval
        if idle >= interval and not self._queue:
            self._queue.append(PING)
            self._queued_bytes += len(PING)
            self._wakeup.set()
            idle = 0.0
        self._ping_timer = self._loop.call_later(max(interval - idle, 0.001), self._ping_check)

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def send(self, text: str) -> None:
        if self.closed:
            return
        if self._queue and self._queued_bytes + len(text) > self._config.max_outbound_bytes:
            _log.warning(
                "closing a sync socket that is not reading: %d bytes waiting", self._queued_bytes
            )
            self.close(
                CLOSE_TRY_AGAIN_LATER,
                f"{OVERLOADED_REASON}: this client is not reading its messages fast enough",
                flush=False,
            )
            return
        self._queue.append(text)
        self._queued_bytes += len(text)
        self._wakeup.set()

    def close(self, code: int, reason: str, *, flush: bool = True) -> None:
        """Stop accepting frames and close the socket, after the queued frames if ``flush``."""
        if self.closed:
            return
        self.closed = True
        self._close_request = (code, truncate_reason(reason))
        if flush:
            self._wakeup.set()
            return
        # The writer may be stuck sending to a client that does not read: drop everything.
        self._queue.clear()
        self._queued_bytes = 0
        self._writer.cancel()
        self._closer = asyncio.create_task(self._close_transport(), name="pyconvex-sync-close")

    async def aclose(self) -> None:
        """Tear down when the client is gone: stop the writer and wait for it."""
        self.closed = True
        self._ping_timer.cancel()
        if self._close_request is None:
            self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._writer
        if self._closer is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._closer
        self.done.set()

    async def _run(self) -> None:
        try:
            while True:
                if not self._queue:
                    if self._close_request is not None:
                        break
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                text = self._queue.popleft()
                self._queued_bytes -= len(text)
                await self._transport.send_text(text)
                self._last_sent = self._loop.time()
                self.sent_frames += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the client went away mid-send
            _log.debug("sync socket send failed: %s", exc)
            self.closed = True
            self.done.set()
            return
        await self._close_transport()

    async def _close_transport(self) -> None:
        code, reason = self._close_request or (CLOSE_NORMAL, "")
        try:
            await asyncio.wait_for(self._transport.close(code, reason), self._config.close_timeout)
        except Exception:  # includes TimeoutError: the client does not read at all
            self._transport.abort()
        finally:
            self.done.set()
