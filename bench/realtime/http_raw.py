"""A minimal keep-alive HTTP/1.1 client and SSE reader on asyncio streams.

Lean on purpose: the benchmark's client must cost far less than the server it measures.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any


class HttpConnection:
    """One keep-alive connection; one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> HttpConnection:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        payload = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if body is not None:
            head.append("Content-Type: application/json")
        head.append(f"Content-Length: {len(payload)}")
        for k, v in (headers or {}).items():
            head.append(f"{k}: {v}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        status, resp_headers = await read_head(self.reader)
        if resp_headers.get("transfer-encoding") == "chunked":
            data = b""
            while True:
                chunk = await read_chunk(self.reader)
                if not chunk:
                    break
                data += chunk
        else:
            data = await self.reader.readexactly(int(resp_headers.get("content-length", "0")))
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers


async def read_chunk(reader: asyncio.StreamReader) -> bytes:
    size_line = await reader.readuntil(b"\r\n")
    size = int(size_line.split(b";")[0], 16)
    data = await reader.readexactly(size + 2)
    return data[:-2]


class SseStream:
    """GET an event-stream and yield (event, data) pairs as they arrive."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.host, self.port, self.path = host, port, path
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.chunked = False
        self.buffer = b""

    async def open(self) -> SseStream:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n".encode()
        )
        status, headers = await read_head(self.reader)
        if status != 200:
            raise RuntimeError(f"SSE GET {self.path} answered {status}")
        self.chunked = headers.get("transfer-encoding") == "chunked"
        return self

    async def next_event(self) -> tuple[str, bytes]:
        assert self.reader is not None
        while True:
            end = self.buffer.find(b"\n\n")
            if end >= 0:
                block, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
                event, data = "message", b""
                for line in block.split(b"\n"):
                    if line.startswith(b"event:"):
                        event = line[6:].strip().decode()
                    elif line.startswith(b"data:"):
                        data += line[5:].strip()
                return event, data
            if self.chunked:
                more = await read_chunk(self.reader)
                if not more:
                    raise ConnectionError("SSE stream ended")
            else:
                more = await self.reader.read(65536)
                if not more:
                    raise ConnectionError("SSE stream ended")
            self.buffer += more

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
