"""Admin auth on the HTTP API (internal functions, acting as a user) and the admin routes
behind ``pyconvex data``, ``logs`` and ``env``."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from support.deployment import DeploymentFactory, ok

from pyconvex.runtime.auth.callers import admin_caller
from pyconvex.runtime.auth.identity import UserIdentity
from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.net.app import create_app, serve

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "messages": define_table({"body": v.string()}),
    "empty": define_table({"x": v.float64()}),
})
"""

MESSAGES = """
from pyconvex import internal_mutation, internal_query, mutation, query, v


@mutation(args={"body": v.string()})
async def send(ctx, body):
    print("sending", body)
    return await ctx.db.insert("messages", {"body": body})


@internal_query
async def secret(ctx) -> str:
    return "internal ok"


@internal_mutation
async def wipe(ctx) -> float:
    docs = await ctx.db.query("messages").collect()
    for d in docs:
        await ctx.db.delete(d["_id"])
    return float(len(docs))


@query
async def whoami(ctx):
    identity = await ctx.auth.get_user_identity()
    if identity is None:
        return None
    return {"subject": identity.subject, "name": identity.name, "email": identity.email,
            "token": identity.token_identifier, "org": identity.claims.get("org")}
"""


@pytest.fixture
async def dep(deployment: DeploymentFactory) -> Deployment:
    d = await deployment({"schema.py": SCHEMA, "messages.py": MESSAGES}, persistent=True)
    assert d.admin_key is not None  # created with the data directory
    return d


@pytest.fixture
async def client(dep: Deployment) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(dep))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def admin(dep: Deployment, identity: dict[str, Any] | None = None) -> dict[str, str]:
    credential = str(dep.admin_key)
    if identity is not None:
        credential += ":" + base64.b64encode(json.dumps(identity).encode()).decode()
    return {"Authorization": f"Convex {credential}"}


async def call(
    client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None, **args: Any
) -> httpx.Response:
    body = {"path": path, "args": args, "format": "json"}
    return await client.post("/api/function", json=body, headers=headers or {})


def _without_request_id(message: str) -> str:
    return re.sub(r"\[Request ID: [0-9a-f]+\] ", "", message)


async def test_admin_key_file_is_private(dep: Deployment, tmp_path: Any) -> None:
    assert (tmp_path / "data" / "admin_key").stat().st_mode & 0o777 == 0o600


async def test_internal_functions_need_the_admin_key(
    dep: Deployment, client: httpx.AsyncClient
) -> None:
    public = (await call(client, "messages:secret")).json()
    unknown = (await call(client, "messages:secreu")).json()
    # Answered exactly as a function that does not exist (but for the request id and name).
    assert public["status"] == "error" and "internal" not in public["errorMessage"]
    assert _without_request_id(public["errorMessage"]).replace("secret", "secreu") == (
        _without_request_id(unknown["errorMessage"])
    )
    entry = dep.log_history.recent(2)[0]
    assert entry.path == "messages:secret" and "is an internal" in (entry.traceback or "")
    r = await call(client, "messages:secret", admin(dep))
    assert r.json()["value"] == "internal ok"
    await call(client, "messages:send", body="hi")
    r = await call(client, "messages:wipe", admin(dep))
    assert r.json()["value"] == 1


async def test_wrong_or_missing_credentials_are_refused(
    dep: Deployment, client: httpx.AsyncClient
) -> None:
    r = await call(client, "messages:secret", {"Authorization": "Convex not-the-key"})
    assert r.status_code == 401 and r.json()["code"] == "BadAdminKey"
    r = await call(client, "messages:secret", {"Authorization": f"Convex {dep.admin_key}:%%%"})
    assert r.status_code == 401 and r.json()["code"] == "BadActingAsIdentity"
    r = await call(client, "messages:whoami", {"Authorization": "Bearer eyJ..."})
    assert r.status_code == 401 and r.json()["code"] == "Unauthenticated"
    for path in ("/api/_pyconvex/tables", "/api/_pyconvex/env"):
        r = await client.get(path)
        assert r.status_code == 401 and r.json()["code"] == "MissingAdminKey"
        r = await client.get(path, headers={"Authorization": "Convex wrong"})
        assert r.status_code == 401 and r.json()["code"] == "BadAdminKey"


async def test_acting_as_a_user(dep: Deployment, client: httpx.AsyncClient) -> None:
    assert (await call(client, "messages:whoami")).json()["value"] is None
    identity = {"subject": "u1", "name": "Ann", "org": "acme"}
    r = await call(client, "messages:whoami", admin(dep, identity))
    assert r.json()["value"] == {
        "subject": "u1",
        "name": "Ann",
        "email": None,
        "token": "https://pyconvex.test|u1",
        "org": "acme",
    }


def test_user_identity_claims() -> None:
    ann = UserIdentity({"subject": "u1", "picture_url": "p.png", "emailVerified": True})
    assert (ann.picture_url, ann.email_verified) == ("p.png", True)
    assert ann.claims["pictureUrl"] == "p.png"
    assert ann == UserIdentity({"subject": "u1", "pictureUrl": "p.png", "emailVerified": True})
    assert hash(ann) == hash(UserIdentity(dict(ann.claims)))
    with pytest.raises(AttributeError, match="no claim 'favourite'"):
        _ = ann.favourite
    # No subject: a stable one from the claims, so equal identities stay equal.
    assert UserIdentity({"name": "Bo"}).subject == UserIdentity({"name": "Bo"}).subject
    caller = admin_caller("k", "k")
    assert caller.admin and caller.identity is None


async def test_tables_and_documents(dep: Deployment, client: httpx.AsyncClient) -> None:
    for body in ("a", "b", "c"):
        ok(await dep.run_mutation("messages:send", {"body": body}))
    r = await client.get("/api/_pyconvex/tables", headers=admin(dep))
    assert r.json()["tables"] == [
        {"name": "empty", "documents": 0},
        {"name": "messages", "documents": 3},
    ]
    r = await client.get("/api/_pyconvex/tables/messages?limit=2", headers=admin(dep))
    assert [d["body"] for d in r.json()["documents"]] == ["c", "b"]  # newest first
    r = await client.get("/api/_pyconvex/tables/messages?order=asc", headers=admin(dep))
    assert [d["body"] for d in r.json()["documents"]] == ["a", "b", "c"]
    r = await client.get("/api/_pyconvex/tables/empty", headers=admin(dep))
    assert r.json()["documents"] == []
    r = await client.get("/api/_pyconvex/tables/mesages", headers=admin(dep))
    assert r.status_code == 404
    assert r.json()["message"] == "No table 'mesages' in this deployment. Tables: empty, messages (system tables: _scheduled_functions, _storage)."
    r = await client.get("/api/_pyconvex/tables/messages?limit=0", headers=admin(dep))
    assert r.status_code == 400 and "limit must be an integer" in r.json()["message"]


async def test_environment_variables(dep: Deployment, client: httpx.AsyncClient) -> None:
    env = "/api/_pyconvex/env"
    r = await client.post(env, json={"name": "KEY", "value": "v1"}, headers=admin(dep))
    assert r.json() == {"name": "KEY", "outcome": "created"}
    r = await client.post(env, json={"name": "KEY", "value": "v2"}, headers=admin(dep))
    assert r.json()["outcome"] == "updated"
    assert (await client.get(env, headers=admin(dep))).json() == {"variables": {"KEY": "v2"}}
    r = await client.post(env, json={"name": "KEY", "value": None}, headers=admin(dep))
    assert r.json()["outcome"] == "removed"
    assert (await client.get(env, headers=admin(dep))).json() == {"variables": {}}
    r = await client.post(env, json={"name": "9LIVES", "value": "x"}, headers=admin(dep))
    assert r.status_code == 400 and "starting with a letter" in r.json()["message"]
    # System tables never show up as data.
    tables = (await client.get("/api/_pyconvex/tables", headers=admin(dep))).json()["tables"]
    assert all(not t["name"].startswith("_") for t in tables)


async def test_log_history_without_following(dep: Deployment, client: httpx.AsyncClient) -> None:
    await call(client, "messages:send", body="x")
    await call(client, "messages:secret", admin(dep))
    r = await client.get("/api/_pyconvex/logs?history=10&follow=0", headers=admin(dep))
    entries = [json.loads(line) for line in r.text.splitlines()]
    assert [(e["kind"], e["path"], e["status"]) for e in entries] == [
        ("mutation", "messages:send", "success"),
        ("query", "messages:secret", "success"),
    ]
    assert entries[0]["logLines"] == ["[LOG] sending x"]


async def test_logs_stream_live_over_a_real_server(dep: Deployment) -> None:
    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    server = asyncio.create_task(
        serve(dep, host="127.0.0.1", port=0, on_listening=listening.set_result, stop=stop)
    )
    url = await listening
    try:
        ok(await dep.run_mutation("messages:send", {"body": "before"}))
        async with (
            httpx.AsyncClient(timeout=10) as http,
            http.stream(
                "GET", f"{url}/api/_pyconvex/logs?history=1", headers=admin(dep)
            ) as response,
        ):
            lines = response.aiter_lines()
            assert json.loads(await anext(lines))["type"] == "open"
            assert json.loads(await anext(lines))["logLines"] == ["[LOG] sending before"]
            ok(await dep.run_mutation("messages:send", {"body": "live"}))
            live = json.loads(await asyncio.wait_for(anext(lines), 10))
            assert (live["path"], live["logLines"]) == ("messages:send", ["[LOG] sending live"])
    finally:
        stop.set()
        await server


async def test_sync_protocol_admin_auth_acts_as_a_user(dep: Deployment) -> None:
    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    server = asyncio.create_task(
        serve(dep, host="127.0.0.1", port=0, on_listening=listening.set_result, stop=stop)
    )
    ws_url = (await listening).replace("http://", "ws://") + "/api/sync"
    connect = {"type": "Connect", "sessionId": "s", "connectionCount": 0, "clientTs": 0}
    add = {
        "type": "ModifyQuerySet",
        "baseVersion": 0,
        "newVersion": 1,
        "modifications": [
            {"type": "Add", "queryId": 0, "udfPath": "messages:whoami", "args": [{}]}
        ],
    }
    try:
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps(connect))
            await ws.send(
                json.dumps(
                    {
                        "type": "Authenticate",
                        "baseVersion": 0,
                        "tokenType": "Admin",
                        "value": dep.admin_key,
                        "impersonating": {"subject": "u7", "name": "Sam"},
                    }
                )
            )
            await ws.send(json.dumps(add))
            values = []
            while not values:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                values = [m["value"] for m in message.get("modifications", [])]
            assert values == [
                {"subject": "u7", "name": "Sam", "email": None,
                 "token": "https://pyconvex.test|u7", "org": None}
            ]  # fmt: skip
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps(connect))
            bad = {"type": "Authenticate", "baseVersion": 0, "tokenType": "Admin", "value": "x"}
            await ws.send(json.dumps(bad))
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert message["type"] == "AuthError"
            assert "not this deployment's" in message["error"]
    finally:
        stop.set()
        await server
