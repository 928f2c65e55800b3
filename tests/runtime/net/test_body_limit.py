"""HTTP request bodies over Convex's 16 MiB argument limit are refused with 413 as they stream
in, on every route but file uploads (issue 10, item 4); HTTP actions take up to 20 MiB."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from support.deployment import DeploymentFactory
from support.live_sync import LiveServer, Watcher, http_call, live_server

from pyconvex.runtime.net.body_limit import MAX_FUNCTION_BODY, MAX_HTTP_ACTION_BODY

MESSAGES = """
from pyconvex import mutation, query, v

@query(args={})
async def list(ctx):
    return [d["body"] for d in await ctx.db.query("messages").collect()]

@mutation(args={"body": v.string()})
async def send(ctx, body):
    return await ctx.db.insert("messages", {"body": body})

@query(args={"body": v.string()})
async def length(ctx, body):
    return len(body)

@mutation(args={})
async def upload_url(ctx):
    return await ctx.storage.generate_upload_url()
"""

HTTP = """
from starlette.responses import PlainTextResponse
from pyconvex import HttpRouter

http = HttpRouter()

@http.route("/echo_size", method="POST")
async def echo_size(ctx, request):
    return PlainTextResponse(str(len(await request.body())))
"""

MIB = 1024 * 1024


@pytest.fixture
async def server(deployment: DeploymentFactory) -> AsyncIterator[LiveServer]:
    dep = await deployment({"messages.py": MESSAGES, "http.py": HTTP})
    async with live_server(dep) as srv:
        yield srv


async def chunks(
    total: int, size: int = MIB, path: str = "messages:send"
) -> AsyncIterator[bytes]:
    """A JSON body of ``total`` bytes sent without Content-Length (chunked)."""
    head = b'{"path": "%s", "args": {"body": "' % path.encode()
    yield head
    left = total - len(head) - 3
    while left > 0:
        n = min(size, left)
        yield b"x" * n
        left -= n
    yield b'"}}'


async def test_bodies_over_16_mib_are_refused_with_413(server: LiveServer) -> None:
    watcher = await Watcher.start(server.ws_url, "messages:list")
    async with httpx.AsyncClient(timeout=60) as http:
        # Announced by Content-Length: refused before the body is read.
        body = b'{"path": "messages:send", "args": {"body": "' + b"x" * (50 * MIB) + b'"}}'
        r = await http.post(f"{server.url}/api/mutation", content=body)
        assert r.status_code == 413 and r.json()["code"] == "RequestTooLarge"
        assert "16 MiB" in r.json()["message"] and str(len(body)) in r.json()["message"]
        # Streamed without a length: refused once 16 MiB have arrived.
        for path in ("/api/mutation", "/api/query", "/api/action", "/api/function"):
            r = await http.post(f"{server.url}{path}", content=chunks(MAX_FUNCTION_BODY + MIB))
            assert r.status_code == 413, (path, r.text[:200])
            assert "16 MiB" in r.json()["message"]
        # Under the limit: a body this size is read whole.
        body_size = MAX_FUNCTION_BODY - MIB
        r = await http.post(
            f"{server.url}/api/query", content=chunks(body_size, path="messages:length")
        )
        assert r.status_code == 200 and r.json()["value"] > body_size - 100, r.text[:300]
    r = await http_call(server.url, "mutation", "messages:send", {"body": "after"})
    assert r.json()["status"] == "success"
    await watcher.expect(lambda v: v == ["after"])  # nothing else was stored


async def test_http_actions_take_20_mib_and_uploads_have_no_body_limit(
    server: LiveServer,
) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        r = await http.post(f"{server.url}/http/echo_size", content=b"y" * (17 * MIB))
        assert r.status_code == 200 and r.text == str(17 * MIB)
        r = await http.post(f"{server.url}/http/echo_size", content=b"y" * (21 * MIB))
        assert r.status_code == 413 and "20 MiB" in r.json()["message"]
        assert MAX_HTTP_ACTION_BODY == 20 * MIB
        url = (await http_call(server.url, "mutation", "messages:upload_url", {})).json()["value"]
        r = await http.post(url, content=b"z" * (17 * MIB))
        assert r.status_code == 200 and "storageId" in r.json(), r.text[:300]
