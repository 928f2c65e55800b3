"""What a client can reach (issue 10, item 7): internal functions look exactly like missing
ones to a public caller, GET never runs a mutation or action, the stats need the admin key,
and an admin-authenticated socket may call internal mutations and actions."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from support.deployment import DeploymentFactory
from support.live_sync import LiveServer, RawSync, Watcher, http_call, live_server

from pyconvex.runtime.functions.deployment import Deployment

MESSAGES = """
from pyconvex import action, internal_action, internal_mutation, internal_query, mutation, query, v

@query(args={})
async def list(ctx):
    return [d["body"] for d in await ctx.db.query("messages").collect()]

@mutation(args={"body": v.string()})
async def send(ctx, body):
    return await ctx.db.insert("messages", {"body": body})

@action(args={})
async def ping(ctx):
    return "pong"

@internal_query(args={})
async def hidden(ctx):
    return "hidden"

@internal_mutation(args={"body": v.string()})
async def secret(ctx, body):
    return await ctx.db.insert("messages", {"body": "secret " + body})

@internal_action(args={})
async def covert(ctx):
    return "covert"
"""


@pytest.fixture
async def dep(deployment: DeploymentFactory, tmp_path: Any) -> Deployment:
    return await deployment({"messages.py": MESSAGES}, persistent=True)


@pytest.fixture
async def server(dep: Deployment) -> AsyncIterator[LiveServer]:
    async with live_server(dep) as srv:
        yield srv


def same_text(message: str, name: str, unknown: str) -> str:
    """``message`` without its request id, the internal function's name replaced."""
    return re.sub(r"\[Request ID: [0-9a-f]+\] ", "", message).replace(name, unknown)


async def test_internal_functions_are_answered_as_missing_ones(server: LiveServer) -> None:
    for kind, name in (("query", "hidden"), ("mutation", "secret"), ("action", "covert")):
        for endpoint in (kind, "function"):
            args = {"body": "x"} if kind == "mutation" else {}
            internal = await http_call(server.url, endpoint, f"messages:{name}", args)
            missing = await http_call(server.url, endpoint, f"messages:{name}x", args)
            assert internal.status_code == missing.status_code == 200
            assert same_text(internal.json()["errorMessage"], name, f"{name}x") == same_text(
                missing.json()["errorMessage"], "", ""
            ), (endpoint, name)
    client = await RawSync.open(server.ws_url)
    replies = []
    for rid, path in enumerate(("messages:secret", "messages:secretx")):
        await client.mutation(rid, path, {"body": "x"})
        replies.append((await client.answer_to(rid))["result"])
    assert same_text(replies[0], "secret", "secretx") == same_text(replies[1], "", "")
    replies = []
    for rid, path in enumerate(("messages:covert", "messages:covertx"), start=10):
        await client.action(rid, path, {})
        replies.append((await client.answer_to(rid, "ActionResponse"))["result"])
    assert same_text(replies[0], "covert", "covertx") == same_text(replies[1], "", "")
    await client.modify(
        {"type": "Add", "queryId": 1, "udfPath": "messages:hidden", "args": [{}]},
        {"type": "Add", "queryId": 2, "udfPath": "messages:hiddenx", "args": [{}]},
    )
    mods = (await client.query_set_answer())["modifications"]
    texts = [m["errorMessage"] for m in mods]
    assert same_text(texts[0], "hidden", "hiddenx") == same_text(texts[1], "", "")
    r = await http_call(server.url, "query", "messages:list", {})
    assert r.json()["value"] == [], "nothing was written"


async def test_get_never_runs_a_mutation_or_action(server: LiveServer, dep: Deployment) -> None:
    watcher = await Watcher.start(server.ws_url, "messages:list")
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{server.url}/api/run/messages/send", params={"args": '{"body": "x"}'})
        assert r.status_code == 405 and "POST" in r.json()["message"], r.text
        r = await http.get(f"{server.url}/api/run/messages/ping")
        assert r.status_code == 405
        # An internal mutation over GET looks like a missing function, as it does over POST.
        r = await http.get(f"{server.url}/api/run/messages/secret", params={"args": "{}"})
        missing = await http.get(f"{server.url}/api/run/messages/secretx", params={"args": "{}"})
        assert r.status_code == missing.status_code == 200
        assert same_text(r.json()["errorMessage"], "secret", "secretx") == same_text(
            missing.json()["errorMessage"], "", ""
        )
        r = await http.get(f"{server.url}/api/run/messages/list")
        assert r.status_code == 200 and r.json()["value"] == []
        r = await http.post(f"{server.url}/api/run/messages/send", json={"args": {"body": "x"}})
        assert r.json()["status"] == "success"
    await watcher.expect(lambda value: value == ["x"])


async def test_stats_need_the_admin_key(server: LiveServer, dep: Deployment) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{server.url}/api/_pyconvex/stats")
        assert r.status_code == 401 and r.json()["code"] == "MissingAdminKey"
        headers = {"Authorization": f"Convex {dep.admin_key}"}
        r = await http.get(f"{server.url}/api/_pyconvex/stats", headers=headers)
        assert r.status_code == 200 and "executions" in r.json()


async def test_an_admin_socket_may_call_internal_mutations_and_actions(
    server: LiveServer, dep: Deployment
) -> None:
    watcher = await Watcher.start(server.ws_url, "messages:list")
    admin = await RawSync.open(server.ws_url, "admin")
    await admin.send(
        {"type": "Authenticate", "baseVersion": 0, "tokenType": "Admin", "value": dep.admin_key}
    )
    t = await admin.recv_type("Transition")
    assert t["endVersion"]["identity"] == 1
    await admin.mutation(1, "messages:secret", {"body": "by admin"})
    assert (await admin.answer_to(1))["success"] is True
    await admin.action(2, "messages:covert", {})
    reply = await admin.answer_to(2, "ActionResponse")
    assert reply["success"] is True and reply["result"] == "covert"
    await admin.add(1, "messages:hidden")
    (mod,) = (await admin.query_set_answer())["modifications"]
    assert mod["type"] == "QueryUpdated" and mod["value"] == "hidden"
    await watcher.expect(lambda value: value == ["secret by admin"])
    # Without the admin key the same calls are refused.
    public = await RawSync.open(server.ws_url, "public")
    await public.mutation(1, "messages:secret", {"body": "by anyone"})
    assert (await public.answer_to(1))["success"] is False
    await public.action(2, "messages:covert", {})
    assert (await public.answer_to(2, "ActionResponse"))["success"] is False
    r = await http_call(server.url, "query", "messages:list", {})
    assert r.json()["value"] == ["secret by admin"]
