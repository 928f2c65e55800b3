"""One client WebSocket on asyncio: the handshake and frames by websockets' Sans-I/O
``ClientProtocol``, the bytes by an ``asyncio.Protocol``.

Frames are handed to ``on_text`` as they are parsed, on the event loop, with no task or queue
in between; :meth:`ClientSocket.send` is synchronous and the frames sent in one loop turn leave
in one write. ``await open_socket(...)`` raises :class:`HandshakeError` when the server answers
but does not accept the upgrade, and ``OSError`` / ``TimeoutError`` when it cannot be reached.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Mapping
from typing import cast

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidMessage, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from pyconvex.errors import PyconvexError

_ws_log = logging.getLogger("pyconvex.client.websocket")
_ws_log.setLevel(logging.WARNING)  # websockets logs every frame at DEBUG

CLOSE_NORMAL = 1000
CLOSE_TIMEOUT = 5.0


class HandshakeError(PyconvexError):
    """The server answered the upgrade request without switching protocols.

    ``status`` is its HTTP status (0 when it did not answer in HTTP at all); ``retry`` says
    whether that can pass (a 5xx, 408, 429, or the connection closed mid-answer).
    """

    def __init__(self, status: int, detail: str, retry: bool) -> None:
        self.status = status
        self.detail = detail
        self.retry = retry
        super().__init__(detail)


class ClientSocket(asyncio.Protocol):
    """An open (or opening) client WebSocket. ``closed`` resolves with the close reason once
    the connection is gone, whoever closed it."""

    def __init__(
        self, url: str, headers: Mapping[str, str], on_text: Callable[[str], None]
    ) -> None:
        self._ws = ClientProtocol(parse_uri(url), max_size=None, logger=_ws_log)
        self._headers = headers
        self._on_text = on_text
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = self._loop.create_future()
        self.closed: asyncio.Future[str] = self._loop.create_future()
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._fragments: list[bytes] = []
        self._abort_timer: asyncio.TimerHandle | None = None
        self._close_reason: str | None = None
        #: loop time of the last frame received (the inactivity check reads it).
        self.last_received = self._loop.time()

    @property
    def is_open(self) -> bool:
        return self._ws.state is State.OPEN and self._close_reason is None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        request = self._ws.connect()
        for name, value in self._headers.items():
            request.headers[name] = value
        self._ws.send_request(request)
        self._write_now()

    def data_received(self, data: bytes) -> None:
        ws = self._ws
        ws.receive_data(data)
        self.last_received = self._loop.time()
        self._take_output()
        if not self.opened.done() and ws.handshake_exc is not None:
            self._handshake_failed(ws.handshake_exc)
        for event in ws.events_received():
            if isinstance(event, Frame):
                self._frame(event)
            elif (
                isinstance(event, Response) and not self.opened.done() and ws.handshake_exc is None
            ):
                self.opened.set_result(None)
        if ws.state is State.CLOSED or ws.state is State.CLOSING:
            self._note_close()

    def eof_received(self) -> bool | None:
        self._ws.receive_eof()
        if not self.opened.done():
            self._handshake_failed(self._ws.handshake_exc)
        self._take_output()
        self._note_close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._abort_timer is not None:
            self._abort_timer.cancel()
        if not self.opened.done():
            self.opened.set_exception(
                ConnectionResetError(f"the connection closed during the handshake ({exc})")
            )
        self._note_close(exc)
        if not self.closed.done():
            self.closed.set_result(self._close_reason or "ConnectionLost")

    # -- sending ---------------------------------------------------------------------------

    def send(self, text: str) -> bool:
        """Queue one text frame (written at the end of this loop turn); False if closed."""
        if not self.is_open:
            return False
        self._ws.send_text(text.encode("utf-8"))
        self._take_output()
        return True

    def close(self, reason: str, code: int = CLOSE_NORMAL) -> None:
        """Start the closing handshake; the connection is aborted if it does not end soon."""
        if self._close_reason is None:
            self._close_reason = reason
        if self._ws.state is State.OPEN:
            self._ws.send_close(code, reason[:120])
            self._take_output()
        elif self.transport is not None:
            self.transport.close()
        if self._abort_timer is None and self.transport is not None:
            self._abort_timer = self._loop.call_later(CLOSE_TIMEOUT, self.abort)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- internals -------------------------------------------------------------------------

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT:
            if not frame.fin:
                self._fragments = [bytes(frame.data)]
                return
            data = frame.data
        elif opcode is Opcode.CONT:
            self._fragments.append(bytes(frame.data))
            if not frame.fin:
                return
            data = b"".join(self._fragments)
            self._fragments = []
        else:
            return  # websockets answers pings and closes; no binary frames in this protocol
        if self._close_reason is None:
            self._on_text(str(data, "utf-8"))

    def _note_close(self, exc: Exception | None = None) -> None:
        if self._close_reason is not None:
            return
        ws = self._ws
        rcvd = getattr(ws, "close_rcvd", None)
        if rcvd is not None:
            self._close_reason = rcvd.reason or f"closed with code {rcvd.code}"
        elif exc is not None:
            self._close_reason = f"ConnectionLost: {exc}"
        elif ws.state is State.CLOSED or ws.state is State.CLOSING:
            self._close_reason = "ConnectionLost"

    def _handshake_failed(self, exc: Exception | None) -> None:
        if self.opened.done():
            return
        if isinstance(exc, InvalidStatus):
            status = exc.response.status_code
            body = bytes(exc.response.body or b"")[:200].decode("utf-8", "replace").strip()
            detail = f"GET /api/sync answered HTTP {status} {exc.response.reason_phrase}"
            if body:
                detail += f" ({body})"
            retry = status >= 500 or status in (408, 429)
            self.opened.set_exception(HandshakeError(status, detail, retry))
        elif isinstance(exc, InvalidMessage) and isinstance(exc.__cause__, EOFError):
            self.opened.set_exception(
                HandshakeError(0, "the connection closed before the server answered", True)
            )
        elif isinstance(exc, InvalidMessage):
            cause = f" ({exc.__cause__})" if exc.__cause__ else ""
            self.opened.set_exception(
                HandshakeError(
                    0, f"its answer to GET /api/sync is not a WebSocket upgrade{cause}", False
                )
            )
        else:
            # (websockets before 14 raise a bare error for an answer it cannot parse)
            cause = f" ({exc})" if exc else ""
            detail = f"its answer to GET /api/sync is not a WebSocket upgrade{cause}"
            self.opened.set_exception(HandshakeError(0, detail, False))
        self.close("handshake failed")

    def _take_output(self) -> None:
        for chunk in self._ws.data_to_send():
            if chunk:
                self._out.append(chunk)
            elif self.transport is not None:  # websockets' signal: end the TCP stream
                self._write_now()
                self.transport.close()
                return
        if self._out and not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._write_now()

    def _write_now(self) -> None:
        out = self._out
        if not out:
            for chunk in self._ws.data_to_send():
                if chunk:
                    out.append(chunk)
        transport = self.transport
        if out and transport is not None and not transport.is_closing():
            transport.writelines(out)
        out.clear()


async def open_socket(
    url: str,
    headers: Mapping[str, str],
    on_text: Callable[[str], None],
    *,
    timeout: float,
    ssl_context: ssl.SSLContext | None = None,
) -> ClientSocket:
    """Connect to ``url`` (``ws://`` or ``wss://``) and complete the WebSocket handshake."""
    uri = parse_uri(url)
    loop = asyncio.get_running_loop()
    tls: ssl.SSLContext | None = None
    if uri.secure:
        tls = ssl_context or ssl.create_default_context()
    async with asyncio.timeout(timeout):
        _, sock = await loop.create_connection(
            lambda: ClientSocket(url, headers, on_text),
            uri.host,
            uri.port,
            ssl=tls,
            server_hostname=uri.host if tls is not None else None,
        )
        try:
            await sock.opened
        except BaseException:
            sock.abort()
            raise
    return sock
