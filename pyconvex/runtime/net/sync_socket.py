"""The sync endpoint's WebSocket: `websockets`' Sans-I/O protocol driven on the asyncio transport.

``websockets.server.ServerProtocol`` does the handshake, the framing, control frames and the
closing handshake; this module moves bytes between it and the transport and hands each text
message to the socket's :class:`~pyconvex.runtime.net.sync_session.SyncSession` *synchronously*,
as it arrives (no task, queue or ``await`` per frame: a fan-out writes to a thousand sockets).

Outgoing frames queue up per socket; every socket with something queued is written once, at
the next turn of the event loop (:meth:`SyncEndpoint.flush`), so a MutationResponse and the
Transition after it leave in one ``writelines`` (one ``writev``; the frames' pieces are not
joined first); a fan-out's frame to a socket with nothing queued is written at once. Text
frames are framed by :mod:`~pyconvex.runtime.net.ws_frames`, not by
``ServerProtocol.send_text``, which serialises each frame through a ``Frame`` object: a
commit's fan-out sends one frame per subscriber, and that doubled the per-frame cost; the
protocol's own output (pongs, the closing handshake) is queued in the same order. The
transport's buffer is the socket's outbound queue: past ``SyncConfig.max_outbound_bytes`` the
socket is closed as overloaded.

:class:`SyncSocket` is the ``ws`` protocol class uvicorn runs for the API port (see
:func:`~pyconvex.runtime.net.app.serve`): ``/api/sync`` and ``/api/<client version>/sync`` are
the sync endpoint; any other WebSocket path is answered 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Callable
from typing import Any, cast

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from pyconvex.protocol import PING
from pyconvex.runtime.net.event_loop import release_free_memory
from pyconvex.runtime.net.query_turns import QueryTurns
from pyconvex.runtime.net.subscriptions import SubscriptionManager
from pyconvex.runtime.net.sync_config import SyncConfig as SyncConfig
from pyconvex.runtime.net.sync_session import (
    CLOSE_TRY_AGAIN_LATER,
    OVERLOADED_REASON,
    SyncDeployment,
    SyncSession,
)
from pyconvex.runtime.net.ws_frames import (
    DEFLATE_MIN_BYTES,
    FrameSplitter,
    SharedFrame,
    deflate_extension,
    deflate_window_bits,
    text_frame_header,
    truncate_reason,
)

_log = logging.getLogger("pyconvex.sync")
# websockets logs every open and close at INFO: a thousand lines for a thousand clients.
_ws_log = logging.getLogger("pyconvex.sync.websocket")

SYNC_PATH = re.compile(r"^/api/(?:[^/]+/)?sync$")
#: A socket with this many unsent bytes counts towards the server-wide cap.
HEAVY_BACKLOG = 1024 * 1024
_SLASHES = re.compile(r"//+")
CLOSE_SERVICE_RESTART = 1012
CLOSE_INVALID_DATA = 1007
NOT_SYNC_PATH = (
    "pyconvex serves WebSockets on /api/sync and /api/<client version>/sync only; "
    "{path} is neither.\n"
)


class SyncEndpoint:
    """What the sync sockets of one server share: the deployment, the subscription manager,
    the config, and the list of sockets with frames to write at the next loop turn.

    ``socket()`` makes the protocol for one accepted connection (uvicorn calls it through
    the adapter in app.py; tests call it with a fake transport).
    """

    def __init__(
        self,
        deployment: SyncDeployment,
        manager: SubscriptionManager,
        config: SyncConfig | None = None,
        *,
        server_header: str = "",
    ) -> None:
        self.deployment = deployment
        self.manager = manager
        self.config = config or SyncConfig()
        self.server_header = server_header
        #: Query work of every socket, a slice per loop turn (query_turns.py).
        self.turns = QueryTurns(self.config.query_turn_seconds)
        self._dirty: list[SyncSocket] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Sockets with at least HEAVY_BACKLOG unsent bytes at their last write.
        self._heavy: set[SyncSocket] = set()
        self._trim_scheduled = False
        #: Times freed memory was handed back to the OS (release_free_memory).
        self.memory_releases = 0
        #: The last parts list framed by SyncSocket.send_parts: a fan-out sends one list to
        #: every socket (transition_parts does not change a list it has returned).
        self.shared = SharedFrame()

    def socket(self, connections: set[Any] | None = None) -> SyncSocket:
        """A protocol for one connection; ``connections`` (uvicorn's) holds it while open."""
        return SyncSocket(self, connections)

    def mark_dirty(self, sock: SyncSocket) -> None:
        dirty = self._dirty
        dirty.append(sock)
        if len(dirty) == 1:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write every socket's queued frames (one write each)."""
        dirty, self._dirty = self._dirty, []
        now = self._loop.time() if self._loop is not None else 0.0
        for sock in dirty:
            sock.flush(now)

    def note_backlog(self, sock: SyncSocket, unsent: int) -> None:
        """``sock`` holds ``unsent`` bytes after a write: keep all sockets' unsent bytes under
        ``max_total_outbound_bytes`` by closing the ones holding the most (each socket alone
        is capped by ``max_outbound_bytes``; this caps many slow readers together)."""
        heavy = self._heavy
        if unsent < HEAVY_BACKLOG:
            heavy.discard(sock)
            return
        heavy.add(sock)
        sizes = {s: s.backlog for s in heavy}
        total = sum(sizes.values())
        limit = self.config.max_total_outbound_bytes
        while total > limit and sizes:
            worst = max(sizes, key=sizes.__getitem__)
            total -= sizes.pop(worst)
            heavy.discard(worst)
            worst.overloaded(
                f"{total + worst.backlog} bytes wait for slow clients in all, over the "
                f"{limit} this server keeps"
            )

    def forget(self, sock: SyncSocket, held: int) -> None:
        """``sock`` is gone; it held up to ``held`` unsent bytes. After sockets that held much
        are gone, freed memory goes back to the OS (at most once a second)."""
        self._heavy.discard(sock)
        if held >= HEAVY_BACKLOG and not self._trim_scheduled:
            self._trim_scheduled = True
            asyncio.get_running_loop().call_later(1.0, self._trim)

    def _trim(self) -> None:
        self._trim_scheduled = False
        if release_free_memory():
            self.memory_releases += 1


class SyncSocket(asyncio.Protocol):
    """One sync WebSocket: the session's frame sink, and the transport's protocol."""

    def __init__(self, endpoint: SyncEndpoint, connections: set[Any] | None = None) -> None:
        self._endpoint = endpoint
        self._config = endpoint.config
        self._connections = connections
        self._ws = ServerProtocol(
            max_size=self._config.max_message_bytes,
            logger=_ws_log,
            extensions=[deflate_extension()] if self._config.compression else None,
        )
        self._deflate_bits = 0  # permessage-deflate's window, if the client took it
        #: Splits frames once the socket is open (None: websockets parses everything).
        self._split: FrameSplitter | None = None
        self.transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._session: SyncSession | None = None
        self._fragments: list[bytes | bytearray | memoryview] = []
        self._fragment_op = Opcode.TEXT
        self._out: list[bytes] = []  # bytes to write at the next loop turn
        self._fd = -1  # the socket's file descriptor, when it may be written directly
        self._backlog = False  # the transport held unsent bytes at the last look
        self._out_bytes = 0
        self._most_unsent = 0  # the largest transport backlog seen
        self._drained: list[tuple[Callable[[], None], int]] = []  # when_drained callbacks
        self._eof = False  # ...and then close the connection
        self._dirty = False
        self._lost = False
        #: No frames accepted: not open yet, our close sent, or the peer closed or is gone.
        self.closed = True
        self._ping_timer: asyncio.TimerHandle | None = None
        self._abort_timer: asyncio.TimerHandle | None = None
        self._last_sent = 0.0
        self.sent_frames = 0
        self.input_pauses = 0

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they implement it.
        self.transport = cast(asyncio.Transport, transport)
        if self._connections is not None:
            self._connections.add(self)
        # pause_writing/resume_writing tell when a big backlog has drained (when_drained).
        high = self._config.max_transition_bytes
        with contextlib.suppress(NotImplementedError, AttributeError):
            self.transport.set_write_buffer_limits(high=high, low=high // 2)
        sock = transport.get_extra_info("socket")
        if sock is not None and transport.get_extra_info("sslcontext") is None:
            with contextlib.suppress(OSError, AttributeError, ValueError):
                self._fd = sock.fileno()

    def data_received(self, data: bytes) -> None:
        split = self._split
        if split is None:
            self._feed(data)
            return
        split.feed(data)
        while (frame := split.next(not self._fragments)) is not None:
            opcode, payload = frame
            if opcode:
                self._message(Opcode.TEXT if opcode == 1 else Opcode.BINARY, payload)
                continue
            self._feed(payload)
            if self._ws.state is not State.OPEN:  # closing: websockets takes the rest
                self._split = None
                if rest := split.rest():
                    self._feed(rest)
                return

    def _feed(self, data: bytes) -> None:
        """Let websockets parse ``data``: the handshake, control frames, anything unusual."""
        ws = self._ws
        ws.receive_data(data)
        self._take_output()  # pongs, or the answer to a close
        if self._session is not None and ws.state is not State.OPEN:
            # The peer closed, or broke the protocol (websockets has queued the close frame).
            self.closed = True
            self._session.stop()
        for event in ws.events_received():
            if isinstance(event, Frame):
                self._frame(event)
            elif isinstance(event, Request):
                self._handshake(event)

    def eof_received(self) -> bool | None:
        self._ws.receive_eof()
        self.closed = True
        self._stop_session()
        self._take_output()
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self.closed = True
        if self._connections is not None:
            self._connections.discard(self)
        self._endpoint.forget(self, self._most_unsent)
        self._drained.clear()
        self._out.clear()
        self._out_bytes = 0
        for timer in (self._ping_timer, self._abort_timer):
            if timer is not None:
                timer.cancel()
        self._stop_session()

    def pause_writing(self) -> None:
        # The transport buffers beyond its high-water mark; flush() bounds the total.
        pass

    def resume_writing(self) -> None:
        self._check_drained()

    # uvicorn calls this on every connection at graceful shutdown.
    def shutdown(self) -> None:
        if self._ws.state is State.OPEN:
            self.close(CLOSE_SERVICE_RESTART, "server shutting down")
            self.flush()
        elif self.transport is not None:
            self.transport.close()

    # -- the session's frame sink ----------------------------------------------------------

    def pause_input(self) -> None:
        """Stop reading the socket (too many of its mutations wait)."""
        if self.transport is not None and not self._lost:
            self.input_pauses += 1
            self.transport.pause_reading()

    def resume_input(self) -> None:
        if self.transport is not None and not self._lost and not self.transport.is_closing():
            self.transport.resume_reading()

    @property
    def backlog(self) -> int:
        """Bytes queued for the next write plus those the transport has not sent yet."""
        transport = self.transport
        if transport is None or self._lost:
            return self._out_bytes
        return self._out_bytes + transport.get_write_buffer_size()

    def when_drained(self, callback: Callable[[], None], below: int) -> None:
        """Call ``callback`` (soon, on the loop) once :attr:`backlog` is ``below`` or less."""
        self._drained.append((callback, below))
        self._check_drained()

    def _check_drained(self) -> None:
        if not self._drained or self._lost:
            return
        backlog = self.backlog
        ready = [cb for cb, below in self._drained if backlog <= below]
        if ready:
            self._drained = [(cb, below) for cb, below in self._drained if backlog > below]
            for callback in ready:
                self._loop.call_soon(callback)

    def overloaded(self, why: str) -> None:
        """Close a socket whose client does not read fast enough (``why``: in the log)."""
        if self.closed:
            return
        _log.warning("closing a sync socket that is not reading: %s", why)
        self.close(
            CLOSE_TRY_AGAIN_LATER,
            f"{OVERLOADED_REASON}: this client is not reading its messages fast enough",
            flush=False,
        )
        self.flush()

    def send(self, text: str) -> None:
        """Queue one text frame; it is written at the next turn of the event loop."""
        if self.closed:
            return
        payload = text.encode("utf-8")
        out = self._out
        out.append(text_frame_header(len(payload)))
        out.append(payload)
        self._out_bytes += len(payload)
        self.sent_frames += 1
        if not self._dirty:
            self._dirty = True
            self._endpoint.mark_dirty(self)

    def send_parts(self, parts: list[bytes]) -> None:
        """Send one text frame made of ``parts`` (UTF-8 bytes; ``parts`` itself is not changed).
        A fan-out hands the same list to every socket: it is framed once, joined into one
        buffer once (or compressed once, for sockets that took permessage-deflate), and the
        same bytes go to each socket (:class:`~pyconvex.runtime.net.ws_frames.SharedFrame`).

        With nothing queued and nothing unsent it is written at once, in one system call (a
        commit's fan-out: each socket is touched once, with no queue and no second pass);
        otherwise it is queued behind what is, for the next loop turn."""
        if self.closed:
            return
        endpoint = self._endpoint
        shared = endpoint.shared
        if parts is shared.parts:  # a fan-out's next socket: the same frame, made once
            bits = self._deflate_bits if shared.wire_bytes >= DEFLATE_MIN_BYTES else 0
            made = shared.ready.get(bits)
            if made is not None:
                framed, wire_bytes = made
            elif bits:
                framed, wire_bytes = shared.deflated(bits)
            else:
                framed, wire_bytes = shared.joined(), shared.wire_bytes
        else:
            shared.frame(parts)
            framed, wire_bytes = shared.framed, shared.wire_bytes
        self.sent_frames += 1
        out = self._out
        transport = self.transport
        if (
            not out
            and not self._backlog
            and transport is not None
            and not self._lost
            and not transport.is_closing()
        ):
            self._write_now(transport, framed, wire_bytes)
            return
        out += framed
        self._out_bytes += wire_bytes
        if not self._dirty:
            self._dirty = True
            endpoint.mark_dirty(self)

    def _write_now(self, transport: asyncio.Transport, framed: list[bytes], size: int) -> None:
        """Write ``framed`` (``size`` bytes) to a socket with nothing unsent: straight to its
        file descriptor when there is one (the transport's own write costs ~0.7 µs more per
        call), the rest, if the kernel took only part, through the transport."""
        self._last_sent = self._loop.time()
        fd = self._fd
        if fd < 0:
            transport.writelines(framed)
        else:
            try:
                written = os.write(fd, framed[0]) if len(framed) == 1 else os.writev(fd, framed)
            except BlockingIOError:
                written = 0
            except OSError:  # the transport meets the same error and closes the connection
                transport.writelines(framed)
                return
            if written == size:
                return
            transport.write(b"".join(framed)[written:])
        # Bytes left unsent: the limits on them are checked by the next turn's flush, and
        # later frames queue behind them until the transport has written them.
        if transport.get_write_buffer_size():
            self._backlog = True
            if not self._dirty:
                self._dirty = True
                self._endpoint.mark_dirty(self)

    def close(self, code: int, reason: str, *, flush: bool = True) -> None:
        """Send a close frame and accept no more frames; abort if the peer has not closed the
        connection after ``close_timeout``.

        ``flush=False`` (a client that does not read): the close frame waits behind the
        unread frames, so the connection is aborted after at most a second.
        """
        if self.closed or self.transport is None:
            return
        self.closed = True
        if self._ws.state is State.OPEN:
            self._ws.send_close(code, truncate_reason(reason))
            self._take_output()
        config = self._config
        timeout = config.close_timeout if flush else min(config.close_timeout, 1.0)
        self._abort_timer = self._loop.call_later(timeout, self._abort)

    def flush(self, now: float | None = None) -> None:
        """Write what is queued, in one ``writelines`` (called once per loop turn, with the
        loop's clock as ``now``)."""
        self._dirty = False
        out = self._out
        transport = self.transport
        self._out_bytes = 0
        if transport is None or self._lost or transport.is_closing():
            out.clear()
            return
        if out:
            transport.writelines(out)  # the transport keeps the pieces, not the list
            out.clear()
            self._last_sent = self._loop.time() if now is None else now
        if self._eof:
            # websockets ends the stream after a closing handshake or a failed connection.
            self.closed = True
            transport.close()
            return
        unsent = transport.get_write_buffer_size()
        self._backlog = unsent > 0
        if unsent > self._most_unsent:
            self._most_unsent = unsent
        if unsent > self._config.max_outbound_bytes:
            self.overloaded(f"{unsent} bytes waiting")
            return
        self._endpoint.note_backlog(self, unsent)
        self._check_drained()

    # -- internals -------------------------------------------------------------------------

    def _take_output(self) -> None:
        """Queue what websockets has to send (after each call into it), in order."""
        data = self._ws.data_to_send()
        if not data:
            return
        for chunk in data:
            if chunk:
                self._out.append(chunk)
            else:
                self._eof = True  # websockets' signal to close the TCP connection
        if not self._dirty:
            self._dirty = True
            self._endpoint.mark_dirty(self)

    def _handshake(self, request: Request) -> None:
        ws = self._ws
        path = _SLASHES.sub("/", request.path.split("?", 1)[0])
        if not SYNC_PATH.match(path):
            ws.send_response(ws.reject(404, NOT_SYNC_PATH.format(path=path)))
            self._take_output()
            self.flush()
            return
        response = ws.accept(request)
        if self._endpoint.server_header:
            response.headers["Server"] = self._endpoint.server_header
        ws.send_response(response)
        self._take_output()
        self.flush()  # the response goes out now, whatever else this loop turn queues
        if ws.state is not State.OPEN:
            return  # a bad upgrade request: answered 4xx, the connection closes
        self.closed = False
        self._deflate_bits = deflate_window_bits(ws.extensions)
        if not ws.reader.buffer:  # (a client may not send before the handshake's answer)
            self._split = FrameSplitter(self._config.max_message_bytes)
        endpoint = self._endpoint
        self._session = SyncSession(
            endpoint.deployment,
            endpoint.manager,
            self,
            self._config.session_limits(),
            endpoint.turns,
        )
        self._last_sent = self._loop.time()
        self._ping_timer = self._loop.call_later(self._config.ping_interval, self._ping_check)

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if not frame.fin:
                self._fragments = [frame.data]
                self._fragment_op = opcode
                return
            data = frame.data
        elif opcode is Opcode.CONT:
            self._fragments.append(frame.data)
            if not frame.fin:
                return
            opcode = self._fragment_op
            data = b"".join(self._fragments)
            self._fragments = []
        else:
            return  # websockets answers pings and closes; pongs need nothing
        self._message(opcode, data)

    def _message(self, opcode: Opcode, data: bytes | bytearray | memoryview) -> None:
        """One whole client message."""
        session = self._session
        if self.closed or session is None or session.stopped:
            return  # closing: drain until the peer's close arrives
        if opcode is Opcode.BINARY:
            session.fail("Binary frames are not part of the sync protocol; send JSON text.")
            return
        try:
            text = str(data, "utf-8")
        except UnicodeDecodeError as exc:
            self._fail(CLOSE_INVALID_DATA, f"invalid UTF-8 in a text frame at byte {exc.start}")
            return
        session.handle(text)

    def _fail(self, code: int, reason: str) -> None:
        _log.warning("closing a sync socket: %s", reason)
        if self._ws.state is State.OPEN:
            self._ws.fail(code, reason)
            self._take_output()
        self.closed = True
        self._stop_session()

    def _stop_session(self) -> None:
        if self._session is not None:
            self._session.stop()

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
