"""The sync endpoint's WebSocket, spoken directly on the asyncio transport.

Every frame of the sync protocol is small and there are many of them (a MutationResponse and a
Transition per mutation, one Transition per subscriber per commit), so the per-frame cost of the
generic ASGI path — a message dict, an ``await`` per send, a writer task per socket — dominated
the server's time. :func:`sync_websocket_protocol` builds the uvicorn ``ws`` protocol class that
serves ``/api/sync`` and ``/api/<version>/sync`` itself: frames are parsed in ``data_received``
and handed to the :class:`SyncSession` synchronously, and outgoing frames are written to the
transport at once. Any other WebSocket path is handed to uvicorn's standard protocol (and so to
the ASGI app), unchanged.

Backpressure: the transport's write buffer is the socket's outbound queue; when it passes
``SyncConfig.max_outbound_bytes`` the socket is closed as overloaded, exactly as :class:`Outbox`
does on the ASGI path.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import struct
from typing import Any, ClassVar, cast

from pyconvex.protocol import PING
from pyconvex.runtime.net.outbox import (
    CLOSE_TRY_AGAIN_LATER,
    OVERLOADED_REASON,
    SyncConfig,
    truncate_reason,
)
from pyconvex.runtime.net.subscriptions import SubscriptionManager
from pyconvex.runtime.net.sync_session import SyncDeployment, SyncSession

try:
    from websockets.speedups import apply_mask as _apply_mask
except ImportError:  # pragma: no cover - the pure-Python twin, when the C speedups are missing
    from websockets.utils import apply_mask as _apply_mask


_log = logging.getLogger("pyconvex.sync")

SYNC_PATH = re.compile(r"^/api/(?:[^/]+/)?sync$")
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_SLASHES = re.compile(rb"//+")

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL = 1002
CLOSE_UNSUPPORTED = 1003
CLOSE_INVALID_DATA = 1007
CLOSE_TOO_BIG = 1009
CLOSE_RESTARTING = 1012


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final server frame."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, n) + payload


def close_payload(code: int, reason: str) -> bytes:
    return struct.pack("!H", code) + truncate_reason(reason).encode("utf-8")


def accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


class _Handshake:
    """The upgrade request as uvicorn's HTTP protocol re-serialises it."""

    def __init__(self, raw: bytes) -> None:
        head, _, self.rest = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        target = parts[1] if len(parts) >= 3 else b""
        self.path = _SLASHES.sub(b"/", target.split(b"?", 1)[0]).decode("latin-1")
        self.headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                self.headers[name.strip().lower()] = value.strip()
        self.complete = bool(_)

    def error(self) -> str | None:
        h = self.headers
        if b"websocket" not in h.get(b"upgrade", b"").lower():
            return "Upgrade: websocket header missing"
        if h.get(b"sec-websocket-version") != b"13":
            return "only WebSocket version 13 is supported"
        if not h.get(b"sec-websocket-key"):
            return "Sec-WebSocket-Key header missing"
        return None


def sync_websocket_protocol(
    deployment: SyncDeployment,
    manager: SubscriptionManager,
    config: SyncConfig,
    server_header: bytes = b"",
) -> type[asyncio.Protocol]:
    """The uvicorn ``ws`` protocol class serving the sync endpoint for ``deployment``."""

    class SyncWebSocketProtocol(_SyncWebSocketProtocol):
        _dirty: ClassVar[list[_SyncWebSocketProtocol]] = []
        _deployment = deployment
        _manager = manager
        _config = config
        _server_header = server_header

    return SyncWebSocketProtocol


class _SyncWebSocketProtocol(asyncio.Protocol):
    # Sockets with frames queued in this turn of the loop (one list per server: per class).
    _dirty: ClassVar[list[_SyncWebSocketProtocol]]
    _deployment: SyncDeployment
    _manager: SubscriptionManager
    _config: SyncConfig
    _server_header: bytes

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._uvicorn = (config, server_state, app_state)
        self._connections: set[Any] = server_state.connections
        self._max_size: int = getattr(config, "ws_max_size", 16 * 1024 * 1024)
        self._loop = _loop or asyncio.get_event_loop()
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._open = False  # handshake done
        self._fragments: list[bytes] = []
        self._fragment_op = 0
        self._fragment_size = 0
        self.closed = False  # no more frames accepted (our close sent, or the peer is gone)
        self._close_sent = False
        self._lost = False
        self._stop_parsing = False
        self._session: SyncSession | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._last_sent = 0.0
        self._out: list[bytes] = []  # frames queued in this turn of the loop
        self.sent_frames = 0
        self.input_pauses = 0

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they implement it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._open:
            self._buffer += data
            self._parse()
            return
        self._buffer += data
        handshake = _Handshake(bytes(self._buffer))
        if not handshake.complete:
            return
        if not SYNC_PATH.match(handshake.path):
            self._delegate(bytes(self._buffer))
            return
        self._buffer = bytearray(handshake.rest)
        self._accept(handshake)
        if self._buffer:
            self._parse()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self.closed = True
        self._connections.discard(self)
        for timer in (self._ping_timer, self._abort_timer):
            if timer is not None:
                timer.cancel()
        if self._session is not None:
            self._session.stop()

    def pause_writing(self) -> None:
        # The transport buffers beyond its high-water mark; send() bounds the total.
        pass

    def resume_writing(self) -> None:
        pass

    # The session pauses our input while too many of its mutations wait.
    def pause_input(self) -> None:
        if self.transport is not None and not self._lost:
            self.input_pauses += 1
            self.transport.pause_reading()

    def resume_input(self) -> None:
        if self.transport is not None and not self._lost and not self.transport.is_closing():
            self.transport.resume_reading()

    # uvicorn calls this on every connection at graceful shutdown.
    def shutdown(self) -> None:
        if self._open and not self._close_sent:
            self.close(CLOSE_RESTARTING, "server shutting down", flush=True)
        elif self.transport is not None:
            self.transport.close()

    # -- handshake -------------------------------------------------------------------------

    def _delegate(self, raw: bytes) -> None:
        """Not the sync endpoint: hand the connection to uvicorn's standard protocol."""
        from uvicorn.protocols.websockets.websockets_sansio_impl import (
            WebSocketsSansIOProtocol,
        )

        config, server_state, app_state = self._uvicorn
        protocol = WebSocketsSansIOProtocol(
            config=config, server_state=server_state, app_state=app_state
        )
        assert self.transport is not None
        protocol.connection_made(self.transport)
        self.transport.set_protocol(protocol)
        protocol.data_received(raw)

    def _accept(self, handshake: _Handshake) -> None:
        assert self.transport is not None
        problem = handshake.error()
        if problem is not None:
            body = f"Bad WebSocket upgrade request: {problem}.\n".encode()
            self.transport.write(
                b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
            )
            self.transport.close()
            return
        key = handshake.headers[b"sec-websocket-key"]
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
            b"sec-websocket-accept: " + accept_key(key) + b"\r\n" + self._server_header + b"\r\n"
        )
        self._open = True
        self._connections.add(self)
        self._last_sent = self._loop.time()
        self._ping_timer = self._loop.call_later(self._config.ping_interval, self._ping_check)
        self._session = SyncSession(
            self._deployment, self._manager, self, self._config.max_queued_mutations
        )

    # -- incoming frames -------------------------------------------------------------------

    def _parse(self) -> None:
        buf = self._buffer
        pos = 0
        end = len(buf)
        while end - pos >= 2 and not self._stop_parsing:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if end - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif n == 127:
                if end - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            if not b1 & 0x80:
                self._protocol_error(CLOSE_PROTOCOL, "client frames must be masked")
                return
            if b0 & 0x70:
                self._protocol_error(CLOSE_PROTOCOL, "no WebSocket extension was negotiated")
                return
            if n > self._max_size or self._fragment_size + n > self._max_size:
                self._protocol_error(CLOSE_TOO_BIG, f"message over the {self._max_size}-byte limit")
                return
            total = head + 4 + n
            if end - pos < total:
                break
            mask = bytes(buf[pos + head : pos + head + 4])
            payload = _apply_mask(bytes(buf[pos + head + 4 : pos + total]), mask)
            pos += total
            self._frame(b0 & 0x80 != 0, b0 & 0x0F, payload)
        del buf[:pos]

    def _frame(self, fin: bool, opcode: int, payload: bytes) -> None:
        if opcode >= OP_CLOSE:
            if not fin or len(payload) > 125:
                self._protocol_error(CLOSE_PROTOCOL, "control frames cannot be fragmented")
                return
            if opcode == OP_CLOSE:
                self._peer_closed(payload)
            elif opcode == OP_PING:
                self._write(OP_PONG, payload)
            elif opcode != OP_PONG:
                self._protocol_error(CLOSE_PROTOCOL, f"unknown opcode {opcode}")
            return
        if opcode == OP_CONT:
            if not self._fragments:
                self._protocol_error(CLOSE_PROTOCOL, "continuation frame without a message")
                return
            self._fragments.append(payload)
            self._fragment_size += len(payload)
            if not fin:
                return
            opcode, payload = self._fragment_op, b"".join(self._fragments)
            self._fragments = []
            self._fragment_size = 0
        elif self._fragments:
            self._protocol_error(CLOSE_PROTOCOL, "new message before the last one ended")
            return
        elif not fin:
            if opcode not in (OP_TEXT, OP_BINARY):
                self._protocol_error(CLOSE_PROTOCOL, f"unknown opcode {opcode}")
                return
            self._fragment_op = opcode
            self._fragments = [payload]
            self._fragment_size = len(payload)
            return
        if self.closed:
            return  # closing: drain until the peer's close arrives
        session = self._session
        assert session is not None
        if opcode == OP_TEXT:
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError:
                self._protocol_error(CLOSE_INVALID_DATA, "text frame is not valid UTF-8")
                return
            session.handle(text)
        elif opcode == OP_BINARY:
            session.fail("Binary frames are not part of the sync protocol; send JSON text.")
        else:
            self._protocol_error(CLOSE_PROTOCOL, f"unknown opcode {opcode}")

    def _peer_closed(self, payload: bytes) -> None:
        assert self.transport is not None
        if not self._close_sent:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1000
            reply = struct.pack("!H", code) if code not in (1005, 1006, 1015) else b""
            self._write(OP_CLOSE, reply)
            self._close_sent = True
        self.closed = True
        if self._session is not None:
            self._session.stop()
        self.transport.close()

    def _protocol_error(self, code: int, message: str) -> None:
        _log.warning("closing a sync socket: %s", message)
        self.close(code, message, flush=True)
        self._stop_parsing = True

    # -- outgoing (the session's Outbox interface) -----------------------------------------

    def _write(self, opcode: int, payload: bytes) -> None:
        """Write a control frame now, after the data frames queued before it."""
        self._flush()
        transport = self.transport
        if transport is None or self._lost or transport.is_closing():
            return
        transport.write(encode_frame(opcode, payload))

    def send(self, text: str) -> None:
        """Queue one text frame; every frame a socket gets during one turn of the event loop
        goes out in one write at the end of it (a MutationResponse and its Transition: one
        syscall, one packet)."""
        if self.closed:
            return
        self._out.append(encode_frame(OP_TEXT, text.encode("utf-8")))
        self.sent_frames += 1
        if len(self._out) == 1:
            cls = type(self)
            cls._dirty.append(self)
            if len(cls._dirty) == 1:
                self._loop.call_soon(cls._flush_all)

    @classmethod
    def _flush_all(cls) -> None:
        dirty = cls._dirty
        cls._dirty = []
        for protocol in dirty:
            protocol._flush()

    def _flush(self) -> None:
        out = self._out
        if not out:
            return
        self._out = []
        transport = self.transport
        if transport is None or self._lost or transport.is_closing():
            return
        transport.write(out[0] if len(out) == 1 else b"".join(out))
        self._last_sent = self._loop.time()
        if transport.get_write_buffer_size() > self._config.max_outbound_bytes:
            _log.warning(
                "closing a sync socket that is not reading: %d bytes waiting",
                transport.get_write_buffer_size(),
            )
            self.close(
                CLOSE_TRY_AGAIN_LATER,
                f"{OVERLOADED_REASON}: this client is not reading its messages fast enough",
                flush=False,
            )

    def close(self, code: int, reason: str, *, flush: bool = True) -> None:
        """Send a close frame and stop sending; abort if the peer does not answer in time.

        ``flush=False`` (a client that does not read): the close frame cannot get past the
        buffered frames, so the connection is aborted after ``close_timeout`` regardless.
        """
        if self.closed or self.transport is None:
            return
        self.closed = True
        if not self._close_sent:
            self._close_sent = True
            self._write(OP_CLOSE, close_payload(code, reason))
        timeout = self._config.close_timeout if flush else min(self._config.close_timeout, 1.0)
        self._abort_timer = self._loop.call_later(timeout, self._abort)

    def _abort(self) -> None:
        if self.transport is not None and not self._lost:
            self.transport.abort()

    def _ping_check(self) -> None:
        if self.closed:
            return
        interval = self._config.ping_interval
        idle = self._loop.time() - self._last_sent
        if idle >= interval:
            self.send(PING)
            idle = 0.0
        self._ping_timer = self._loop.call_later(max(interval - idle, 0.001), self._ping_check)
