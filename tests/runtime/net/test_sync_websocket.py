"""The sync endpoint's WebSocket on a real server: framing edge cases over a raw TCP socket.

The happy paths (and the official clients) are covered by test_sync_server.py and
tests/clients; here a bare asyncio stream sends exactly the bytes we want, and these tests
check what the socket (websockets' Sans-I/O protocol under it) does with them.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator

import pytest
from support.fake_deployment import FakeDeployment
from support.raw_websocket import Raw, masked
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from pyconvex.runtime.net.app import serve
from pyconvex.runtime.net.sync_socket import SyncConfig, SyncSocket

CONNECT = json.dumps(
    {
        "type": "Connect",
        "sessionId": "s-1",
        "connectionCount": 0,
        "lastCloseReason": "InitialConnect",
        "clientTs": 0,
    }
)
SUBSCRIBE = json.dumps(
    {
        "type": "ModifyQuerySet",
        "baseVersion": 0,
        "newVersion": 1,
        "modifications": [{"type": "Add", "queryId": 0, "udfPath": "m:hello", "args": [{}]}],
    }
)


@pytest.fixture
async def url() -> AsyncIterator[str]:
    deployment = FakeDeployment()
    deployment.query("m:hello")(lambda db, args: "hello")
    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(deployment, host="127.0.0.1", port=0, on_listening=listening.set_result, stop=stop)
    )
    yield await listening
    stop.set()
    await task


async def test_fragmented_and_batched_frames_are_reassembled(url: str) -> None:
    raw, _ = await Raw.open(url)
    data = SUBSCRIBE.encode()
    # Connect and a fragmented ModifyQuerySet in one TCP write, a ping in between.
    raw.send(
        masked(0x1, CONNECT.encode())
        + masked(0x1, data[:10], fin=False)
        + masked(0x9, b"are you there")
        + masked(0x0, data[10:30], fin=False)
        + masked(0x0, data[30:])
    )
    opcode, payload = await raw.frame()
    assert (opcode, payload) == (0xA, b"are you there")
    transition = await raw.text()
    assert transition["type"] == "Transition"
    mods = transition["modifications"]
    assert isinstance(mods, list) and mods[0]["value"] == "hello"
    raw.close()


async def test_large_frame_with_64_bit_length(url: str) -> None:
    raw, _ = await Raw.open(url)
    raw.send(masked(0x1, CONNECT.encode()))
    big = json.loads(SUBSCRIBE)
    big["modifications"][0]["args"] = [{"pad": "x" * 70_000}]
    raw.send(masked(0x1, json.dumps(big).encode()))
    assert (await raw.text())["type"] == "Transition"
    raw.close()


async def test_client_close_is_answered(url: str) -> None:
    raw, _ = await Raw.open(url)
    raw.send(masked(0x1, CONNECT.encode()) + masked(0x8, struct.pack("!H", 1000) + b"bye"))
    assert (await raw.close_frame())[0] == 1000
    assert await asyncio.wait_for(raw.reader.read(), 10) == b""  # server closed TCP
    raw.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (masked(0x1, b"{}", mask=False), 1002),  # client frames must be masked
        (masked(0x1, b"\xff\xfe"), 1007),  # text that is not UTF-8
        (masked(0x0, b"x"), 1002),  # a continuation without a message
        (masked(0x9, b"x", fin=False), 1002),  # a fragmented control frame
        (bytes((0xC1, 0x80)) + b"\0\0\0\0", 1002),  # an extension bit nobody negotiated
    ],
)
async def test_framing_errors_close_with_a_reason(url: str, frame: bytes, code: int) -> None:
    raw, _ = await Raw.open(url)
    raw.send(masked(0x1, CONNECT.encode()) + frame)
    got_code, got_reason = await raw.close_frame()
    assert got_code == code
    assert got_reason  # says what was wrong
    assert await asyncio.wait_for(raw.reader.read(), 10) == b""  # and the server hangs up
    raw.close()


async def test_message_over_the_size_limit_is_refused() -> None:
    deployment = FakeDeployment()
    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(
            deployment,
            host="127.0.0.1",
            port=0,
            on_listening=listening.set_result,
            stop=stop,
            sync_config=SyncConfig(max_message_bytes=1000),
        )
    )
    try:
        raw, _ = await Raw.open(await listening)
        raw.send(masked(0x1, CONNECT.encode()) + masked(0x1, b"x" * 1001))
        assert (await raw.close_frame())[0] == 1009
        raw.close()
    finally:
        stop.set()
        await task


async def test_binary_frame_is_a_fatal_protocol_error(url: str) -> None:
    raw, _ = await Raw.open(url)
    raw.send(masked(0x1, CONNECT.encode()) + masked(0x2, b"\x00\x01"))
    fatal = await raw.text()
    assert fatal["type"] == "FatalError"
    assert "Binary frames" in str(fatal["error"])
    assert (await raw.close_frame())[0] == 1008
    raw.close()


async def test_bad_upgrade_gets_400(url: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"GET /api/sync HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    response = await asyncio.wait_for(reader.read(), 10)
    assert response.startswith(b"HTTP/1.1 400")
    assert b"Sec-WebSocket-Version" in response  # the body names the bad header
    writer.close()


async def test_other_websocket_paths_are_not_found(url: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        await connect(url.replace("http://", "ws://") + "/api/nope")
    assert info.value.response.status_code == 404
    assert b"/api/sync" in info.value.response.body


async def test_doubled_slashes_reach_the_sync_endpoint(url: str) -> None:
    raw, head = await Raw.open(url, "//api/1.48.0/sync")
    assert b" 101 " in head
    raw.send(masked(0x1, CONNECT.encode()) + masked(0x1, SUBSCRIBE.encode()))
    assert (await raw.text())["type"] == "Transition"
    raw.close()


async def test_a_client_flooding_mutations_is_paused_and_every_mutation_still_runs_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pauses: list[int] = []
    real_pause = SyncSocket.pause_input

    def counting_pause(self: SyncSocket) -> None:
        pauses.append(1)
        real_pause(self)

    monkeypatch.setattr(SyncSocket, "pause_input", counting_pause)
    deployment = FakeDeployment()
    seen: list[float] = []
    deployment.mutation("m:put")(
        lambda db, args: (seen.append(args["i"]), db.insert("t", {"i": args["i"]}))
    )
    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(
            deployment,
            host="127.0.0.1",
            port=0,
            on_listening=listening.set_result,
            stop=stop,
            sync_config=SyncConfig(max_queued_mutations=4),
        )
    )
    raw, _ = await Raw.open(await listening)
    n = 50
    burst = masked(0x1, CONNECT.encode()) + b"".join(
        masked(
            0x1,
            json.dumps(
                {"type": "Mutation", "requestId": i, "udfPath": "m:put", "args": [{"i": i}]}
            ).encode(),
        )
        for i in range(n)
    )
    raw.send(burst)
    responses: list[int] = []
    while len(responses) < n:
        message = await raw.text()
        if message["type"] == "MutationResponse":
            assert message["success"] is True, message
            responses.append(int(str(message["requestId"])))
    assert responses == list(range(n))
    assert seen == [float(i) for i in range(n)]
    assert pauses, "the socket's input was never paused"
    raw.close()
    stop.set()
    await task
