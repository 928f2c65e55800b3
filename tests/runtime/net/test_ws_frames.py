"""permessage-deflate on the sync endpoint: negotiated with clients that offer it, a fan-out's
shared frame compressed once for all of them, compressed client messages inflated; clients
that do not offer it get plain frames."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import zlib
from typing import Any

from support.fake_deployment import FakeDeployment, FakeReader
from support.sync_server import Sync, start_server
from websockets.asyncio.client import connect

from pyconvex.runtime.net.ws_frames import (
    DEFLATE_MIN_BYTES,
    FrameSplitter,
    SharedFrame,
    deflate,
    text_frame_header,
)


def inflate(payload: bytes) -> bytes:
    return zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")


def test_deflated_frame_sets_rsv1_and_inflates_back() -> None:
    assert text_frame_header(5) == b"\x81\x05"
    assert text_frame_header(5, deflated=True) == b"\xc1\x05"
    assert text_frame_header(70_000, deflated=True)[:2] == b"\xc1\x7f"
    body = json.dumps([{"body": "the same words again"} for _ in range(200)]).encode()
    for bits in (9, 12, 15):
        packed = deflate(body, bits)
        assert len(packed) < len(body) // 5
        assert not packed.endswith(b"\x00\x00\xff\xff")  # RFC 7692 §7.2.1
        assert inflate(packed) == body


def test_shared_frame_is_compressed_once_per_window() -> None:
    shared = SharedFrame()
    parts = [b'{"type":"Transition","value":', b"[" + b'"x",' * 500 + b'"y"]', b"}"]
    shared.frame(parts)
    assert shared.parts is parts
    assert b"".join(shared.framed) == text_frame_header(sum(map(len, parts))) + b"".join(parts)
    first, size = shared.deflated(12)
    assert shared.deflated(12)[0] is first  # made once
    assert shared.joined() == [b"".join(shared.framed)] and shared.joined() is shared.joined()
    assert size == sum(map(len, first)) < shared.wire_bytes
    assert len(first) == 1 and first[0][0] == 0xC1
    offset = 4 if first[0][1] == 126 else 2  # the header: 2 bytes, 2 more for 126+
    assert inflate(first[0][offset:]) == b"".join(parts)
    shared.frame([b"{}"])
    assert shared.deflated(12)[0] is not first


class RawClient:
    """A bare client that offers permessage-deflate and records each text frame's RSV1 bit."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.extensions = ""

    @classmethod
    async def open(cls, ws_url: str) -> RawClient:
        host, port = ws_url.split("://", 1)[1].rsplit(":", 1)
        client = cls(*await asyncio.open_connection(host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        client.writer.write(
            (
                f"GET /api/sync HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
            ).encode()
        )
        head = (await client.reader.readuntil(b"\r\n\r\n")).decode().lower()
        assert " 101 " in head.split("\r\n", 1)[0]
        for line in head.split("\r\n"):
            if line.startswith("sec-websocket-extensions:"):
                client.extensions = line.split(":", 1)[1].strip()
        return client

    async def send(self, message: dict[str, Any]) -> None:
        payload = json.dumps(message).encode()
        mask = os.urandom(4)
        assert len(payload) < 65536
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if len(payload) < 126:
            head = bytes((0x81, 0x80 | len(payload)))
        else:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, len(payload))
        self.writer.write(head + mask + masked)
        await self.writer.drain()

    async def recv(self) -> tuple[bool, dict[str, Any]]:
        """The next text message, and whether it came compressed."""
        b0, b1 = await self.reader.readexactly(2)
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        payload = await self.reader.readexactly(length)
        assert b0 & 0x0F == 0x1 and b0 & 0x80, "one final text frame per message"
        compressed = bool(b0 & 0x40)
        return compressed, json.loads(inflate(payload) if compressed else payload)

    async def recv_type(self, kind: str) -> tuple[bool, dict[str, Any]]:
        while True:
            compressed, message = await asyncio.wait_for(self.recv(), 10)
            if message["type"] == kind:
                return compressed, message


def subscribe(query_set: int) -> dict[str, Any]:
    return {
        "type": "ModifyQuerySet",
        "baseVersion": query_set - 1,
        "newVersion": query_set,
        "modifications": [{"type": "Add", "queryId": 1, "udfPath": "big:list", "args": [{}]}],
    }


CONNECT = {
    "type": "Connect",
    "sessionId": "raw",
    "connectionCount": 0,
    "lastCloseReason": None,
    "clientTs": 0,
}


async def test_fanout_frame_goes_compressed_to_clients_that_offer_deflate() -> None:
    deployment = FakeDeployment()

    @deployment.query("big:list")
    def big(db: FakeReader, args: dict[str, Any]) -> Any:
        return [d["text"] for d in db.all("notes")]

    srv, stop, task = await start_server(deployment)
    raws: list[RawClient] = []
    try:
        for _ in range(3):
            raws.append(await RawClient.open(srv.ws_url))
        for i, raw in enumerate(raws):
            assert "permessage-deflate" in raw.extensions
            assert "server_no_context_takeover" in raw.extensions
            await raw.send({**CONNECT, "sessionId": f"raw-{i}"})
            await raw.send(subscribe(1))
            await raw.recv_type("Transition")
        # A client without compression, and `websockets`' own (context takeover both ways).
        plain = Sync(await connect(srv.ws_url + "/api/sync", compression=None))
        await plain.send({**CONNECT, "sessionId": "plain"})
        library = await Sync.open(srv.ws_url + "/api/sync", "library")
        assert library.ws.protocol.extensions, "websockets negotiated no compression"
        for client in (plain, library):
            await client.add(1, "big:list", {})
            await client.recv_type("Transition")

        text = "a note that repeats itself " * 100
        deployment.write(lambda db: db.insert("notes", {"text": text}))
        got = [await raw.recv_type("Transition") for raw in raws]
        plain_t = await plain.recv_type("Transition")
        library_t = await library.recv_type("Transition")
        values = [t["modifications"][0]["value"] for _, t in got]
        values += [t["modifications"][0]["value"] for t in (plain_t, library_t)]
        assert all(value == [text] for value in values)
        # Every socket after the first in the hand-out shares the one compressed frame.
        assert sum(compressed for compressed, _ in got) >= 2
        assert len(json.dumps(got[0][1])) > DEFLATE_MIN_BYTES

        # A compressed client message (websockets compresses what it sends) is inflated.
        await library.send(
            {
                "type": "Mutation",
                "requestId": 0,
                "udfPath": "notes:add",
                "args": [{"text": "x" * 5000}],
            }
        )
        response = await library.recv_type("MutationResponse")
        assert "notes:add" in json.dumps(response)  # answered (no such function), not dropped
        await plain.ws.close()
        await library.ws.close()
    finally:
        for raw in raws:
            raw.writer.close()
        stop.set()
        await task


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """A masked client frame (RFC 6455 §5.2)."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes((first, 0x80 | n))
    elif n < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_splitter_unmasks_plain_frames_and_hands_others_over_whole() -> None:
    splitter = FrameSplitter(max_size=1 << 20)
    big = json.dumps({"type": "Mutation", "args": ["x" * 70_000]}).encode()
    frames = [
        client_frame(1, b'{"type":"Connect"}'),
        client_frame(9, b"ping"),  # control: websockets answers it
        client_frame(1, b"part one ", fin=False),  # a fragmented message: whole frames
        client_frame(0, b"part two"),
        client_frame(1, b"\x01\x02", rsv1=True),  # compressed: websockets inflates it
        client_frame(2, b"\x00\xff"),
        client_frame(1, big),
        client_frame(1, "héllo".encode()),
    ]
    stream = b"".join(frames)
    got = []
    for i in range(0, len(stream), 7):  # arriving in small pieces
        splitter.feed(stream[i : i + 7])
        while (frame := splitter.next()) is not None:
            got.append(frame)
    assert got == [
        (1, b'{"type":"Connect"}'),
        (0, frames[1]),
        (0, frames[2]),
        (0, frames[3]),
        (0, frames[4]),
        (2, b"\x00\xff"),
        (1, big),
        (1, "héllo".encode()),
    ]
    assert splitter.rest() == b""
    # While a fragmented message is being received, even a plain frame is handed over whole.
    splitter.feed(frames[0])
    assert splitter.next(plain=False) == (0, frames[0])


def test_splitter_hands_an_oversized_frame_over_at_once() -> None:
    splitter = FrameSplitter(max_size=1000)
    frame = client_frame(1, b"y" * 5000)
    splitter.feed(frame[:100])  # only its start has arrived: websockets refuses it from that
    assert splitter.next() == (0, frame[:100])
    splitter.feed(frame[100:])
    assert splitter.next() == (0, frame[100:])
    assert splitter.next() is None
