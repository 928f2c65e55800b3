"""The client's one WebSocket, kept open: opened at first use, opened again after every close
with backoff and jitter, until the client closes (PROTOCOL.md §1.7).

The delay before the next attempt starts at 0.1 s after a close the client asked for, 3 s
after an overload close reason, 0.5 s otherwise; it doubles with each consecutive failure up
to 16 s, and varies ±50 % so clients do not come back in step. It starts over once a socket
has proved healthy (its first Transition arrived). A server that answers but is not a Convex
deployment is not retried: the handler's ``on_fatal`` gets :class:`NotConvexDeploymentError`.
A socket that has received nothing for 60 s (the server Pings after 15 s idle) is replaced.

    >>> sync_url("https://happy-otter-123.convex.cloud/")
    'wss://happy-otter-123.convex.cloud/api/sync'
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Protocol
from urllib.parse import urlsplit

from pyconvex.client.errors import NotConvexDeploymentError
from pyconvex.client.websocket import ClientSocket, HandshakeError, open_socket

_log = logging.getLogger("pyconvex.client")

OVERLOAD_REASONS = (
    "SubscriptionsWorkerFullError",
    "TooManyConcurrentRequests",
    "CommitterFullError",
    "AwsTooManyRequestsException",
    "ExecuteFullError",
    "SystemTimeoutError",
    "ExpiredInQueue",
    "VectorIndexTooLarge",
    "SearchIndexTooLarge",
    "TooManyWritesInTimePeriod",
    "Overloaded",
)
MAX_BACKOFF_S = 16.0
INACTIVE_AFTER_S = 60.0


def sync_url(url: str) -> str:
    """The sync WebSocket's URL for a deployment URL (``http(s)`` or ``ws(s)``)."""
    parts = urlsplit(url.strip())
    scheme = {"http": "ws", "ws": "ws", "https": "wss", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise ValueError(
            f"{url!r} is not a deployment URL: write http(s)://host[:port], e.g. "
            "http://127.0.0.1:3210 (what `pyconvex dev` prints) or "
            "https://<name>.convex.cloud."
        )
    if parts.query or parts.fragment:
        raise ValueError(f"A deployment URL has no query or fragment: {url!r}.")
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/api/sync"


class ConnectionHandler(Protocol):
    async def before_open(self) -> None:
        """Runs before each attempt (e.g. fetching a fresh auth token)."""

    def on_open(self, sock: ClientSocket) -> None:
        """The socket is open: send what a new socket needs first."""

    def on_text(self, text: str) -> None: ...

    def on_close(self, reason: str) -> None: ...

    def on_fatal(self, error: Exception) -> None:
        """Connecting cannot succeed: stop and report ``error``."""


class Connection:
    def __init__(
        self,
        url: str,
        handler: ConnectionHandler,
        headers: dict[str, str],
        *,
        open_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.ws_url = sync_url(url)
        self._handler = handler
        self._headers = headers
        self._open_timeout = open_timeout
        self.socket: ClientSocket | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._client_close = False
        self._woken: asyncio.Event | None = None
        #: Successful opens, consecutive failed attempts, and why the last socket closed.
        self.connection_count = 0
        self.retries = 0
        self.last_close_reason: str | None = None
        self.healthy = False

    @property
    def connected(self) -> bool:
        sock = self.socket
        return sock is not None and sock.is_open

    def start(self) -> None:
        if self._task is None and not self._stopping:
            self._woken = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"pyconvex client {self.url}"
            )

    def send(self, text: str) -> bool:
        sock = self.socket
        return sock is not None and sock.send(text)

    def reconnect(self, reason: str) -> None:
        """Close the current socket (the client asks): another opens shortly."""
        sock = self.socket
        if sock is not None:
            self._client_close = True
            sock.close(reason)

    def retry_now(self) -> None:
        """Skip the wait before the next attempt (e.g. credentials changed)."""
        if self._woken is not None:
            self._woken.set()

    def mark_healthy(self) -> None:
        if not self.healthy:
            self.healthy = True
            self.retries = 0

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        sock = self.socket
        if sock is not None:
            sock.close("ClientClosed")
            try:
                await asyncio.wait_for(asyncio.shield(sock.closed), 2.0)
            except TimeoutError:
                sock.abort()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the loop ---------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            await self._handler.before_open()
            try:
                sock = await open_socket(
                    self.ws_url, self._headers, self._handler.on_text, timeout=self._open_timeout
                )
            except HandshakeError as e:
                if not e.retry:
                    self._handler.on_fatal(NotConvexDeploymentError(self.url, e.detail))
                    return
                await self._wait_to_retry(e.detail)
                continue
            except (OSError, TimeoutError) as e:
                await self._wait_to_retry(_describe(e))
                continue
            self.socket = sock
            self.connection_count += 1
            self.healthy = False
            self._client_close = False
            watchdog = asyncio.get_running_loop().create_task(self._watch(sock))
            try:
                self._handler.on_open(sock)
                reason = await sock.closed
            finally:
                watchdog.cancel()
                self.socket = None
            self.last_close_reason = reason
            self._handler.on_close(reason)
            if self._stopping:
                return
            if not self.healthy:
                self.retries += 1
            await self._sleep(self._backoff(reason))

    async def _wait_to_retry(self, why: str) -> None:
        self.retries += 1
        self.last_close_reason = why
        delay = self._backoff(why)
        level = (
            logging.WARNING if self.retries in (1, 4) or self.retries % 10 == 0 else logging.DEBUG
        )
        _log.log(level, "cannot reach %s (%s); retrying in %.1f s", self.url, why, delay)
        await self._sleep(delay)

    def _backoff(self, reason: str) -> float:
        if self._client_close:
            base = 0.1
        elif reason.startswith(OVERLOAD_REASONS):
            base = 3.0
        else:
            base = 0.5
        delay = min(base * 2 ** max(self.retries - 1, 0), MAX_BACKOFF_S)
        return float(delay * random.uniform(0.5, 1.5))

    async def _sleep(self, delay: float) -> None:
        woken = self._woken
        assert woken is not None
        woken.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), delay)

    async def _watch(self, sock: ClientSocket) -> None:
        """Replace a socket that has gone silent (a dead peer or network path)."""
        loop = asyncio.get_running_loop()
        while True:
            silent = loop.time() - sock.last_received
            if silent >= INACTIVE_AFTER_S:
                _log.warning("no message from %s for %.0f s; reconnecting", self.url, silent)
                sock.close("InactiveServer")
                sock.abort()
                return
            await asyncio.sleep(INACTIVE_AFTER_S - silent + 0.01)


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return f"{type(error).__name__}: {error}"
