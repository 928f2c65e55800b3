"""Actions: any I/O, pyconvex.env, nested calls each in their own transaction, a time limit,
a cap on how many run at once (the rest queue), ConvexError data kept, no retries, blocking work
off the event loop; and queries/mutations refusing I/O with an error that says so."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from support.deployment import DeploymentFactory, failure_message, ok

from pyconvex.runtime.functions.action_runner import ActionLimits
from pyconvex.runtime.functions.env_vars import SET_PATH

FUNCTIONS = {
    "schema.py": """
        from pyconvex import define_schema, define_table, v

        schema = define_schema({"pages": define_table({"url": v.string(), "body": v.string()})})
    """,
    "fetch.py": """
        import httpx

        from pyconvex import ConvexError, action, env, internal_mutation, query


        @internal_mutation
        async def save(ctx, url: str, body: str) -> str:
            return await ctx.db.insert("pages", {"url": url, "body": body})


        @query
        async def bodies(ctx) -> list[str]:
            return [p["body"] for p in await ctx.db.query("pages").collect()]


        @action
        async def fetch_and_save(ctx, url: str) -> str:
            async with httpx.AsyncClient() as client:
                response = await client.get(url, headers={"x-token": env.get("TOKEN", "")})
            response.raise_for_status()
            print("fetched", len(response.text), "characters")
            return await ctx.run_mutation("fetch:save", {"url": url, "body": response.text})


        @action
        async def refuse(ctx) -> None:
            raise ConvexError({"code": "NOPE", "retry": False})
    """,
    "gate.py": """
        import asyncio
        import threading
        import time

        from pyconvex import action, mutation, query

        started = 0
        calls = 0
        release: asyncio.Event | None = None
        entered = threading.Event()
        proceed = threading.Event()


        @action
        async def wait(ctx) -> int:
            global started
            started += 1
            assert release is not None
            await release.wait()
            return started


        @action
        async def forever(ctx) -> None:
            await asyncio.Event().wait()


        @action
        async def fails_once(ctx) -> None:
            global calls
            calls += 1
            raise RuntimeError("boom")


        def blocking_work(label: str) -> bool:
            print("in the worker thread:", label)
            entered.set()
            return proceed.wait(10)


        @action
        async def off_loop(ctx) -> bool:
            return await ctx.run_blocking(blocking_work, "job 1")


        @action
        async def sleeps_on_loop(ctx) -> str:
            time.sleep(0.001)
            return "done"


        @query
        async def ping(ctx) -> str:
            return "pong"


        @query
        async def looks_up(ctx) -> list[str]:
            import socket

            return socket.getaddrinfo("localhost", 80)


        @mutation
        async def naps(ctx) -> None:
            await ctx.db.insert("pages", {"url": "x", "body": "y"})
            time.sleep(0.001)
    """,
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello {self.path} token={self.headers.get('x-token')}".encode()
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def web_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


async def test_action_fetches_from_the_network_and_writes_through_a_mutation(
    deployment: DeploymentFactory, web_server: str
) -> None:
    dep = await deployment(FUNCTIONS)
    ok(await dep.run_mutation(SET_PATH, {"name": "TOKEN", "value": "s3"}, allow_internal=True))
    result = await dep.run_action("fetch:fetch_and_save", {"url": f"{web_server}/page"})
    doc_id = ok(result)
    assert isinstance(doc_id, str)
    assert ok(dep.run_query("fetch:bodies")) == ["hello /page token=s3"]
    assert any("fetched" in line for line in result.log_lines)


async def test_convex_error_data_reaches_the_caller(deployment: DeploymentFactory) -> None:
    dep = await deployment(FUNCTIONS)
    result = await dep.run_action("fetch:refuse")
    assert result.failure is not None and result.failure.is_convex_error
    assert result.failure.data == {"code": "NOPE", "retry": False}


async def test_a_failed_action_is_not_retried(deployment: DeploymentFactory) -> None:
    dep = await deployment(FUNCTIONS)
    assert "boom" in failure_message(await dep.run_action("gate:fails_once"))
    assert dep.loaded.modules["gate"].calls == 1


async def test_an_action_past_its_time_limit_fails(deployment: DeploymentFactory) -> None:
    dep = await deployment(FUNCTIONS)
    dep.actions.limits = ActionLimits(timeout_s=0.05)
    message = failure_message(await dep.run_action("gate:forever"))
    assert "timed out after 0.05 s" in message
    assert dep.actions.running == 0


async def test_actions_beyond_the_limit_wait_for_a_slot(deployment: DeploymentFactory) -> None:
    dep = await deployment(FUNCTIONS)
    dep.actions.limits = ActionLimits(max_concurrent=2)
    gate = dep.loaded.modules["gate"]
    gate.release = asyncio.Event()
    tasks = [asyncio.create_task(dep.run_action("gate:wait")) for _ in range(5)]
    for _ in range(200):
        if dep.actions.running == 2 and dep.actions.waiting == 3:
            break
        await asyncio.sleep(0.005)
    assert (dep.actions.running, dep.actions.waiting, gate.started) == (2, 3, 2)
    gate.release.set()
    results = [ok(r) for r in await asyncio.gather(*tasks)]
    assert sorted(results)[-1] == 5 and gate.started == 5
    assert (dep.actions.running, dep.actions.waiting) == (0, 0)


async def test_run_blocking_keeps_the_server_serving(deployment: DeploymentFactory) -> None:
    dep = await deployment(FUNCTIONS)
    gate = dep.loaded.modules["gate"]
    task = asyncio.create_task(dep.run_action("gate:off_loop"))
    assert await asyncio.to_thread(gate.entered.wait, 10)
    # The worker thread is blocked; the event loop still answers queries.
    assert ok(dep.run_query("gate:ping")) == "pong"
    gate.proceed.set()
    result = await task
    assert ok(result) is True
    assert "[LOG] in the worker thread: job 1" in result.log_lines


async def test_a_blocking_call_on_the_loop_is_reported(deployment: DeploymentFactory) -> None:
    dep = await deployment(FUNCTIONS)
    result = await dep.run_action("gate:sleeps_on_loop")
    assert ok(result) == "done"
    warnings = [line for line in result.log_lines if line.startswith("[WARN]")]
    assert len(warnings) == 1 and "time.sleep" in warnings[0] and "run_blocking" in warnings[0]


async def test_queries_and_mutations_refuse_io_saying_so(deployment: DeploymentFactory) -> None:
    dep = await deployment(FUNCTIONS)
    message = failure_message(dep.run_query("gate:looks_up"))
    assert "query gate:looks_up tried a DNS lookup of 'localhost'" in message
    assert "may not do I/O" in message and "action" in message
    message = failure_message(await dep.run_mutation("gate:naps"))
    assert "mutation gate:naps tried time.sleep(0.001)" in message
    assert ok(dep.run_query("fetch:bodies")) == []  # the mutation's insert was rolled back
