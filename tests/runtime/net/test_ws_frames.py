"""permessage-deflate on the sync endpoint: negotiated with clients that offer it, a fan-out's
shared frame compressed once for all of them, compressed client messages inflated; clients
that do not offer it get plain frames."""

from __future__ import annotations

import json
import zlib
from typing import Any

from support.fake_deployment import FakeDeployment, FakeReader
from support.live_sync import RawSync, live_server
from support.raw_websocket import Raw, masked
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


async def open_deflating(url: str) -> tuple[Raw, str]:
    """A bare client offering permessage-deflate, as browsers do, and what the server took."""
    raw, head = await Raw.open(url, "/api/sync", "permessage-deflate; client_max_window_bits")
    assert b" 101 " in head.split(b"\r\n", 1)[0]
    for line in head.decode().lower().split("\r\n"):
        if line.startswith("sec-websocket-extensions:"):
            return raw, line.split(":", 1)[1].strip()
    return raw, ""


async def recv_type(raw: Raw, kind: str) -> tuple[bool, dict[str, Any]]:
    """The next message of type ``kind``, and whether it came compressed."""
    while True:
        b0, payload = await raw.frame_bits()
        assert b0 & 0x0F == 0x1 and b0 & 0x80, "one final text frame per message"
        compressed = bool(b0 & 0x40)
        message = json.loads(inflate(payload) if compressed else payload)
        if message["type"] == kind:
            return compressed, message


def send(raw: Raw, message: dict[str, Any]) -> None:
    raw.send(masked(0x1, json.dumps(message).encode()))


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

    raws: list[Raw] = []
    async with live_server(deployment) as srv:
        try:
            for i in range(3):
                raw, extensions = await open_deflating(srv.url)
                raws.append(raw)
                assert "permessage-deflate" in extensions
                assert "server_no_context_takeover" in extensions
                send(raw, {**CONNECT, "sessionId": f"raw-{i}"})
                send(raw, subscribe(1))
                await recv_type(raw, "Transition")
            # A client without compression, and `websockets`' own (context takeover both ways).
            plain = RawSync(await connect(srv.python_ws_url, compression=None))
            await plain.send({**CONNECT, "sessionId": "plain"})
            library = await RawSync.open(srv.python_ws_url, "library")
            assert library.ws.protocol.extensions, "websockets negotiated no compression"
            for client in (plain, library):
                await client.add(1, "big:list", {})
                await client.recv_type("Transition")

            text = "a note that repeats itself " * 100
            deployment.write(lambda db: db.insert("notes", {"text": text}))
            got = [await recv_type(raw, "Transition") for raw in raws]
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
                raw.close()


def test_splitter_unmasks_plain_frames_and_hands_others_over_whole() -> None:
    splitter = FrameSplitter(max_size=1 << 20)
    big = json.dumps({"type": "Mutation", "args": ["x" * 70_000]}).encode()
    frames = [
        masked(1, b'{"type":"Connect"}'),
        masked(9, b"ping"),  # control: websockets answers it
        masked(1, b"part one ", fin=False),  # a fragmented message: whole frames
        masked(0, b"part two"),
        masked(1, b"\x01\x02", rsv1=True),  # compressed: websockets inflates it
        masked(2, b"\x00\xff"),
        masked(1, big),
        masked(1, "héllo".encode()),
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
    frame = masked(1, b"y" * 5000)
    splitter.feed(frame[:100])  # only its start has arrived: websockets refuses it from that
    assert splitter.next() == (0, frame[:100])
    splitter.feed(frame[100:])
    assert splitter.next() == (0, frame[100:])
    assert splitter.next() is None
