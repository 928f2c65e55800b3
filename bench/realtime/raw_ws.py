"""A bare WebSocket client on asyncio.Protocol for the fan-out receivers.

The `websockets` client costs ~60 µs of CPU per received message here; with 1,000 subscribers per
write and the clients on the same cores as the server, that would measure the client. This one
parses frames itself (server frames are unmasked; client frames are masked, RFC 6455 §5.3) and
hands each text payload, undecoded, to a callback.

Like a browser or Node's `ws`, it offers permessage-deflate (RFC 7692) unless told not to, and
inflates compressed messages (RSV1) before handing them on. It accepts only a server that keeps
no context between messages (``server_no_context_takeover``), which is what pyconvex answers;
it never compresses what it sends.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import zlib
from collections.abc import Callable


class RawWebSocket(asyncio.Protocol):
    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        on_text: Callable[[bytes], None],
        deflate: bool = True,
    ) -> None:
        self.host, self.port, self.path, self.on_text = host, port, path, on_text
        self.offer_deflate = deflate
        self.deflate = False  # negotiated
        self.compressed = False  # the message being received is compressed
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.open = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.fragments: list[bytes] = []

    @classmethod
    async def connect(
        cls, url: str, path: str, on_text: Callable[[bytes], None], deflate: bool = True
    ) -> RawWebSocket:
        host, port = url.split("://", 1)[1].rsplit(":", 1)
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(
            lambda: cls(host, int(port), path, on_text, deflate), host, int(port)
        )
        await asyncio.wait_for(proto.open, 60)
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        extensions = (
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            if self.offer_deflate
            else ""
        )
        transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"{extensions}\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.open.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            status = head.split(b"\r\n", 1)[0]
            del self.buffer[: end + 4]
            if b" 101 " not in status:
                self.open.set_exception(ConnectionError(f"upgrade refused: {status!r}"))
                return
            if b"permessage-deflate" in head:
                if b"server_no_context_takeover" not in head:
                    self.open.set_exception(ConnectionError("deflate with context takeover"))
                    return
                self.deflate = True
            self.open.set_result(None)
        buf = self.buffer
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            length, offset = b1 & 0x7F, 2
            if length == 126:
                if len(buf) < 4:
                    break
                length, offset = struct.unpack_from(">H", buf, 2)[0], 4
            elif length == 127:
                if len(buf) < 10:
                    break
                length, offset = struct.unpack_from(">Q", buf, 2)[0], 10
            if len(buf) < offset + length:
                break
            payload = bytes(buf[offset : offset + length])
            del buf[: offset + length]
            opcode, fin = b0 & 0x0F, b0 & 0x80
            if opcode in (0x1, 0x0):
                if opcode == 0x1:
                    self.compressed = bool(b0 & 0x40)
                self.fragments.append(payload)
                if fin:
                    text, self.fragments = b"".join(self.fragments), []
                    if self.compressed:
                        text = zlib.decompressobj(-15).decompress(text + b"\x00\x00\xff\xff")
                    self.on_text(text)
            elif opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8:
                self._send(0x8, payload[:2])
                if self.transport is not None:
                    self.transport.close()

    def _send(self, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        n = len(payload)
        if n < 126:
            head = struct.pack(">BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack(">BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack(">BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        masked = (
            int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        ).to_bytes(n, "big")
        self.transport.write(head + mask + masked)

    def send_text(self, text: str) -> None:
        self._send(0x1, text.encode())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(exc)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._send(0x8, struct.pack(">H", 1000))
            self.transport.close()
