"""The client keeps its socket: a server killed mid-stream and started again (subscriptions come
back, every mutation applies exactly once), a server that is down at first use, and a URL that
is no Convex deployment."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyconvex.client import AsyncConvexClient, ConvexClient, NotConvexDeploymentError
from pyconvex.dev.launcher import DevServer


async def test_server_killed_and_restarted_mid_stream(fresh_server: DevServer) -> None:
    author = "kill-test"
    total = 60
    async with AsyncConvexClient(fresh_server.url) as client:
        sub = client.subscribe("messages:count", {"author": author})
        counts = aiter(sub)
        assert await anext(counts) == 0.0
        acknowledged: list[str] = []

        async def send(i: int) -> None:
            body = f"m{i}"
            await client.mutation("messages:send", {"author": author, "body": body})
            acknowledged.append(body)

        first = [asyncio.ensure_future(send(i)) for i in range(total // 2)]
        # Wait until part of the stream is acknowledged, then kill the server without warning.
        while len(acknowledged) < 5:
            await asyncio.wait_for(anext(counts), 30)
        fresh_server.stop(signal.SIGKILL)
        rest = [asyncio.ensure_future(send(i)) for i in range(total // 2, total)]
        await asyncio.to_thread(fresh_server.start)
        await asyncio.wait_for(asyncio.gather(*first, *rest), 60)

        assert sorted(acknowledged) == sorted(f"m{i}" for i in range(total))
        # Every acknowledged mutation is in the table exactly once; the subscription is back.
        docs = await client.query("messages:list", {"author": author})
        assert sorted(d["body"] for d in docs) == sorted(acknowledged)
        assert sub.value == float(total)
        state = client.connection_state()
        assert state.connection_count >= 2 and state.is_connected
        assert not state.has_in_flight_requests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_server_down_at_first_use_is_retried(project_copy: Path) -> None:
    port = _free_port()
    with ConvexClient(f"http://127.0.0.1:{port}") as client:
        result: list[float] = []
        waiter = threading.Thread(
            target=lambda: result.append(client.query("messages:count", {"author": "a"}))
        )
        waiter.start()
        try:
            # The site port freely too: the client's own sockets may hold port + 1.
            with DevServer(project_copy, "--site-port", "0", port=port):
                waiter.join(60)
                assert result == [0.0]
                assert client.connection_state().connection_retries == 0  # healthy again
        finally:
            waiter.join(60)


@pytest.fixture(params=["HTTP/1.0", "HTTP/1.1"])
def plain_http(request: pytest.FixtureRequest) -> Iterator[str]:
    """A web server that is not a Convex deployment (answering 200 in HTTP/1.0, or 404 in
    HTTP/1.1)."""
    handler = type("Page", (_Page,), {"protocol_version": request.param})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<h1>Hello</h1>"
        self.send_response(200 if self.protocol_version == "HTTP/1.0" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


async def test_a_url_that_is_no_deployment_says_so(plain_http: str) -> None:
    client = AsyncConvexClient(plain_http)
    try:
        with pytest.raises(NotConvexDeploymentError) as caught:
            await asyncio.wait_for(client.query("messages:list"), 30)
        assert caught.value.url == plain_http
        assert "is not a Convex deployment" in str(caught.value)
        assert "GET /api/sync" in str(caught.value)
        if "HTTP/1.0" not in str(caught.value):
            assert "answered HTTP 404" in str(caught.value)
    finally:
        with contextlib.suppress(Exception):
            await client.close()


def test_a_bad_url_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="not a deployment URL"):
        AsyncConvexClient("127.0.0.1:3210")
