"""A bare WebSocket client on an asyncio stream, for tests that need exact bytes on the wire:
frames built by hand (:func:`masked`), the server's frames read bit for bit."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import struct


def accept_key(key: bytes) -> bytes:
    """RFC 6455 §4.2.2: what the server must answer to Sec-WebSocket-Key."""
    guid = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    return base64.b64encode(hashlib.sha1(key + guid).digest())


def masked(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, rsv1: bool = False
) -> bytes:
    """A client frame (RFC 6455 §5.2): masked unless ``mask=False``; ``rsv1`` marks a
    permessage-deflate message."""
    key = os.urandom(4)
    n = len(payload)
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    if n < 126:
        head = bytes((b0, (0x80 if mask else 0) | n))
    elif n < 65536:
        head = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        head = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if not mask:
        return head + payload
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + body


class Raw:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(
        cls, url: str, path: str = "/api/1.48.0/sync", extensions: str = ""
    ) -> tuple[Raw, bytes]:
        """Upgrade to a WebSocket on ``url`` (``http://host:port``); ``extensions``: what to
        offer in Sec-WebSocket-Extensions. Returns the client and the answer's head."""
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        key = base64.b64encode(os.urandom(16))
        offer = f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else ""
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n{offer}".encode()
            + b"Sec-WebSocket-Key: "
            + key
            + b"\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        if b" 101 " in head.split(b"\r\n")[0]:
            assert accept_key(key) in head
        return cls(reader, writer), head

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def frame(self) -> tuple[int, bytes]:
        b0, payload = await self.frame_bits()
        return b0 & 0x0F, payload

    async def frame_bits(self) -> tuple[int, bytes]:
        """The next frame: its first byte (FIN, RSV and opcode bits), and its payload."""
        b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), 10)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        assert not b1 & 0x80, "server frames are never masked"
        return b0, await self.reader.readexactly(n)

    async def text(self) -> dict[str, object]:
        opcode, payload = await self.frame()
        assert opcode == 0x1, (opcode, payload)
        result = json.loads(payload)
        assert isinstance(result, dict)
        return result

    async def close_frame(self) -> tuple[int, str]:
        while True:
            opcode, payload = await self.frame()
            if opcode == 0x8:
                return struct.unpack("!H", payload[:2])[0], payload[2:].decode()

    def close(self) -> None:
        self.writer.close()
