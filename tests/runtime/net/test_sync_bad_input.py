"""Bad input at every entry point gets a clear answer, and nothing else breaks (issue 10, items
1, 2 and 5): raw protocol frames and HTTP requests against a live server over the real engine,
each followed by proof that the same socket and another client are still served and that the
stored data did not change."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from support.deployment import DeploymentFactory
from support.live_sync import LiveServer, RawSync, Watcher, http_call, live_server

MESSAGES = """
from pyconvex import mutation, query, action, v

@query(args={})
async def list(ctx):
    return [d["body"] for d in await ctx.db.query("messages").collect()]

@query(args={"n": v.float64()})
async def page(ctx, n):
    return await ctx.db.query("messages").paginate({"numItems": n, "cursor": None})

@mutation(args={"body": v.string()})
async def send(ctx, body):
    return await ctx.db.insert("messages", {"body": body})

@mutation(args={"size": v.float64()})
async def big(ctx, size):
    return await ctx.db.insert("messages", {"body": "x" * int(size)})

@action(args={"x": v.float64()})
async def double(ctx, x):
    return x * 2
"""

INT64_1 = {"$integer": "AQAAAAAAAAA="}
#: Args that are JSON objects or arrays but not an object of arguments.
BAD_ARGS: list[Any] = [
    INT64_1,
    [INT64_1],
    {"$bytes": "aGk="},
    [{"$bytes": "aGk="}],
    {"$float": "AAAAAAAA+H8="},
    [{"$float": "AAAAAAAA+H8="}],
    {"$set": []},
    [[1]],
    [{}, {}],
    "text",
    7,
    None,
    [{"body": {"$integer": "bad"}}],
    [{"$weird": 1}],
]
DEEP = "[" * 10_000 + "]" * 10_000


@pytest.fixture
async def server(deployment: DeploymentFactory) -> AsyncIterator[LiveServer]:
    dep = await deployment({"messages.py": MESSAGES})
    async with live_server(dep) as srv:
        yield srv


async def still_served(
    server: LiveServer, client: RawSync | None, watcher: Watcher, expected: list[str], rid: int
) -> None:
    """The same socket answers a good mutation, the watcher sees it, nothing else was stored."""
    body = f"good-{rid}"
    if client is not None:
        await client.mutation(rid, "messages:send", {"body": body})
        answer = await client.answer_to(rid)
        assert answer["success"] is True, answer
    else:
        r = await http_call(server.url, "mutation", "messages:send", {"body": body})
        assert r.json()["status"] == "success", r.text
    expected.append(body)
    await watcher.expect(lambda value: value == expected)
    r = await http_call(server.url, "query", "messages:list", {})
    assert r.json()["value"] == expected


async def test_args_that_are_not_an_object_fail_the_call_not_the_socket(
    server: LiveServer,
) -> None:
    watcher = await Watcher.start(server.ws_url, "messages:list")
    client = await RawSync.open(server.ws_url, "bad-args")
    expected: list[str] = []
    for i, args in enumerate(BAD_ARGS):
        rid = 100 + 10 * i
        # A mutation with bad args gets a failed response naming the problem...
        await client.send({"type": "Mutation", "requestId": rid, "udfPath": "messages:send",
                           "args": args})  # fmt: skip
        failed = await client.answer_to(rid)
        assert failed["success"] is False and "messages:send" in failed["result"], failed
        assert "arguments" in failed["result"].lower() or "args" in failed["result"], failed
        # ...an action too...
        await client.send({"type": "Action", "requestId": rid + 1, "udfPath": "messages:double",
                           "args": args})  # fmt: skip
        failed = await client.answer_to(rid + 1, "ActionResponse")
        assert failed["success"] is False and "messages:double" in failed["result"], failed
        # ...a query subscription fails as a query, and the query set moves on.
        await client.modify({"type": "Add", "queryId": rid, "udfPath": "messages:list",
                             "args": args})  # fmt: skip
        t = await client.query_set_answer()
        (mod,) = t["modifications"]
        assert mod["type"] == "QueryFailed" and mod["queryId"] == rid, mod
        assert t["endVersion"]["querySet"] == client.query_set
        # ...and the same socket still runs the next mutation.
        await still_served(server, client, watcher, expected, rid + 2)
    for kind in ("mutation", "action", "query"):
        for args in BAD_ARGS:
            if args is None:
                continue  # over HTTP, null args are no args
            path = "messages:double" if kind == "action" else "messages:send"
            r = await http_call(server.url, kind, path, args)
            assert r.status_code == 400 and r.json()["code"] == "BadArgs", (kind, args, r.text)
    await still_served(server, None, watcher, expected, 1)


async def test_deep_nesting_is_refused_before_parsing(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = await Watcher.start(server.ws_url, "messages:list")
    expected: list[str] = []
    caplog.set_level(logging.WARNING)
    for nested in (DEEP, "{" + '"a":{' * 10_000 + "}" * 10_001):
        async with httpx.AsyncClient() as http:
            body = '{"path": "messages:send", "args": ' + nested + "}"
            r = await http.post(f"{server.url}/api/mutation", content=body)
        assert r.status_code == 400 and r.json()["code"] == "BadJsonBody"
        assert "too nested" in r.json()["message"] and "maximum nesting 128" in r.json()["message"]
        # Deep args on the socket: the message is refused (FatalError), the server lives on.
        client = await RawSync.open(server.ws_url, "deep")
        await client.send(
            '{"type": "Mutation", "requestId": 1, "udfPath": "messages:send", "args": '
            + nested
            + "}"
        )
        fatal = await client.recv_type("FatalError")
        assert "too nested" in fatal["error"] and len(fatal["error"]) < 2000
        code, _ = await client.closed()
        assert code == 1008
        await still_served(server, None, watcher, expected, len(expected))
    # Nesting within the message limit but beyond Convex's 64 levels: a failed call.
    client = await RawSync.open(server.ws_url, "deep-value")
    await client.send('{"type": "Mutation", "requestId": 5, "udfPath": "messages:send", '
                      '"args": [{"body": ' + "[" * 80 + "]" * 80 + "}]}")  # fmt: skip
    failed = await client.answer_to(5)
    assert failed["success"] is False and "nested more than 64" in failed["result"]
    await still_served(server, client, watcher, expected, 6)
    assert not [r for r in caplog.records if r.exc_info], "no traceback is logged"


async def test_huge_fields_are_not_echoed(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = await Watcher.start(server.ws_url, "messages:list")
    caplog.set_level(logging.INFO)
    huge = "x" * 5_000_000
    client = await RawSync.open(server.ws_url, "huge-type")
    await client.send({"type": huge})
    fatal = await client.recv_type("FatalError")
    assert "unknown type" in fatal["error"] and len(fatal["error"]) < 1000
    await client.closed()
    # A huge path in a mutation: a failed response of a sane size, the socket lives on.
    client = await RawSync.open(server.ws_url, "huge-path")
    await client.mutation(1, huge, {"body": "x"})
    failed = await client.answer_to(1)
    assert failed["success"] is False and len(failed["result"]) < 1000
    await client.modify({"type": "Add", "queryId": 1, "udfPath": huge, "args": [{}]})
    (mod,) = (await client.query_set_answer())["modifications"]
    assert mod["type"] == "QueryFailed" and len(mod["errorMessage"]) < 1000
    r = await http_call(server.url, "query", huge, {})
    assert r.status_code == 400 and len(r.text) < 1000
    await still_served(server, client, watcher, [], 2)
    longest = max(len(r.getMessage()) for r in caplog.records)
    assert longest < 10_000, "log lines are cut"


async def test_oversized_documents_and_bad_page_sizes_are_the_callers_errors(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = await Watcher.start(server.ws_url, "messages:list")
    caplog.set_level(logging.WARNING)
    client = await RawSync.open(server.ws_url, "sizes")
    await client.mutation(1, "messages:big", {"size": 2_000_000.0})
    failed = await client.answer_to(1)
    assert failed["success"] is False and "1 MiB" in failed["result"], failed
    await client.modify({"type": "Add", "queryId": 1, "udfPath": "messages:page",
                         "args": [{"n": -1.0}]})  # fmt: skip
    (mod,) = (await client.query_set_answer())["modifications"]
    assert mod["type"] == "QueryFailed" and "numItems" in mod["errorMessage"], mod
    await still_served(server, client, watcher, [], 2)
    # A function's own failure is not pyconvex failing: no server log record, no traceback.
    assert not [r for r in caplog.records if r.name.startswith("pyconvex.sync")]
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        json.dumps({"type": "Mutation"}),
        json.dumps({"type": "Mutation", "requestId": -1, "udfPath": "messages:send", "args": []}),
        json.dumps(
            {
                "type": "ModifyQuerySet",
                "baseVersion": 0,
                "newVersion": 1,
                "modifications": [{"type": "Add", "queryId": "x"}],
            }
        ),
        json.dumps({"type": "ModifyQuerySet", "baseVersion": 5, "newVersion": 6, "modifications": []}),
        json.dumps({"type": "Authenticate", "baseVersion": 0, "tokenType": "Bogus"}),
    ],
)
async def test_malformed_frames_close_only_their_socket(server: LiveServer, frame: str) -> None:
    watcher = await Watcher.start(server.ws_url, "messages:list")
    client = await RawSync.open(server.ws_url, "malformed")
    await client.send(frame)
    fatal = await client.recv_type("FatalError")
    assert fatal["error"] and len(fatal["error"]) < 1000
    code, _ = await client.closed()
    assert code == 1008
    await still_served(server, None, watcher, [], 1)
