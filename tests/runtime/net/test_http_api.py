"""The HTTP function API (PROTOCOL §2), in process through httpx's ASGI transport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from support.fake_deployment import FakeConvexError, FakeDeployment, FakeReader, FakeWriter

from pyconvex.protocol import decode_ts, encode_ts
from pyconvex.runtime.net.app import create_app

INT64_5 = {"$integer": "BQAAAAAAAAA="}


@pytest.fixture
def deployment() -> FakeDeployment:
    d = FakeDeployment()

    @d.query("messages:list")
    def list_messages(db: FakeReader, args: dict[str, Any]) -> Any:
        db.log("hi")
        return [m["body"] for m in db.all("messages")]

    @d.query("messages:echo")
    def echo(db: FakeReader, args: dict[str, Any]) -> Any:
        return args.get("value")

    @d.query("messages")  # the default export
    def default(db: FakeReader, args: dict[str, Any]) -> Any:
        return "default"

    @d.query("admin/users:boom")
    def boom(db: FakeReader, args: dict[str, Any]) -> Any:
        raise FakeConvexError({"n": INT64_5 and 5.0})

    @d.query("messages:crash")
    def crash(db: FakeReader, args: dict[str, Any]) -> Any:
        raise RuntimeError("oops")

    @d.mutation("messages:send")
    def send(db: FakeWriter, args: dict[str, Any]) -> Any:
        return db.insert("messages", {"body": args["body"]})

    @d.action("messages:act")
    async def act(args: dict[str, Any]) -> Any:
        return args["x"] * 2

    return d


@pytest.fixture
async def client(deployment: FakeDeployment) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(deployment)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        yield c


async def post(client: httpx.AsyncClient, url: str, body: Any, **kw: Any) -> httpx.Response:
    return await client.post(url, content=json.dumps(body), **kw)


async def test_query_success_shape_with_both_args_forms(client: httpx.AsyncClient) -> None:
    for args in ([{"value": 1}], {"value": 1}):
        r = await post(
            client,
            "/api/query",
            {"path": "messages:echo", "args": args, "format": "convex_encoded_json"},
        )
        assert r.status_code == 200
        assert r.json() == {"status": "success", "value": 1.0, "logLines": []}
        assert "1.0" in r.text  # the Python HTTP client rejects bare JSON integers


async def test_formats(client: httpx.AsyncClient) -> None:
    body = {"path": "messages:echo", "args": {"value": {"n": INT64_5, "b": {"$bytes": "aGk="}}}}
    encoded = await post(client, "/api/query", {**body, "format": "convex_encoded_json"})
    assert encoded.json()["value"] == {"n": INT64_5, "b": {"$bytes": "aGk="}}
    clean = await post(client, "/api/query", {**body, "format": "json"})
    assert clean.json()["value"] == {"n": "5", "b": "aGk="}
    absent = await post(client, "/api/query", body)
    assert absent.json()["value"] == {"n": "5", "b": "aGk="}  # no format: clean JSON
    bad = await post(client, "/api/query", {**body, "format": "xml"})
    assert bad.status_code == 400 and bad.json()["code"] == "BadFormat"


async def test_function_errors_are_http_200(client: httpx.AsyncClient) -> None:
    r = await post(
        client,
        "/api/query",
        {"path": "admin/users:boom", "args": {}, "format": "convex_encoded_json"},
    )
    assert r.status_code == 200
    assert r.json() == {
        "status": "error",
        "errorMessage": "ConvexError",
        "errorData": {"n": 5.0},
        "logLines": [],
    }
    r = await post(client, "/api/query", {"path": "messages:crash", "args": {}})
    assert r.status_code == 200 and r.json()["status"] == "error"
    assert "errorData" not in r.json() and "oops" in r.json()["errorMessage"]
    r = await post(client, "/api/query", {"path": "messages:missing", "args": {}})
    assert r.status_code == 200 and "Could not find" in r.json()["errorMessage"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "BadJsonBody"),
        ("[1]", "BadJsonBody"),
        (json.dumps({"args": {}}), "MissingFunctionPath"),
        (json.dumps({"path": "a/:b", "args": {}}), "BadConvexFunctionPath"),
        (json.dumps({"path": "messages:echo", "args": "nope"}), "BadArgs"),
        (json.dumps({"path": "messages:echo", "args": [{}, {}]}), "BadArgs"),
        (json.dumps({"path": "messages:echo", "args": {"$bad": 1}}), "BadArgs"),
        ('{"path": "messages:echo", "args": {"x": NaN}}', "BadJsonBody"),
    ],
)
async def test_request_errors_have_code_and_message(
    client: httpx.AsyncClient, body: str, code: str
) -> None:
    r = await client.post("/api/query", content=body)
    assert r.status_code == 400
    assert r.json()["code"] == code and r.json()["message"]


async def test_bearer_token_is_refused_clearly(client: httpx.AsyncClient) -> None:
    r = await post(
        client,
        "/api/query",
        {"path": "messages:list", "args": {}},
        headers={"Authorization": "Bearer eyJ..."},
    )
    assert r.status_code == 401
    assert r.json()["code"] == "Unauthenticated"
    assert "auth_config.py" in r.json()["message"]  # no providers: say where they go


async def test_mutation_and_action_and_log_lines(
    client: httpx.AsyncClient, deployment: FakeDeployment
) -> None:
    r = await post(client, "/api/mutation", {"path": "messages:send", "args": [{"body": "b"}]})
    assert r.json()["status"] == "success" and r.json()["value"].startswith("messages_")
    r = await post(client, "/api/action", {"path": "messages:act", "args": {"x": 2}})
    assert r.json() == {"status": "success", "value": 4.0, "logLines": []}
    r = await post(client, "/api/query", {"path": "messages.js:list", "args": {}})
    assert r.json() == {"status": "success", "value": ["b"], "logLines": ["[LOG] 'hi'"]}


async def test_default_export_and_get_form(client: httpx.AsyncClient) -> None:
    r = await post(client, "/api/query", {"path": "messages", "args": {}})
    assert r.json()["value"] == "default"
    r = await client.get(
        "/api/query", params={"path": "messages:echo", "args": json.dumps({"value": "q"})}
    )
    assert r.json() == {"status": "success", "value": "q", "logLines": []}


async def test_consistent_query_ts_and_query_at_ts(
    client: httpx.AsyncClient, deployment: FakeDeployment
) -> None:
    deployment.write(lambda db: db.insert("messages", {"body": "old"}))
    ts = (await client.post("/api/query_ts")).json()["ts"]
    assert decode_ts(ts) == deployment.latest_ts
    deployment.write(lambda db: db.insert("messages", {"body": "new"}))
    r = await post(client, "/api/query_at_ts", {"path": "messages:list", "args": {}, "ts": ts})
    assert r.json()["value"] == ["old"]
    r = await post(
        client,
        "/api/query_at_ts",
        {"path": "messages:list", "args": {}, "ts": encode_ts(deployment.latest_ts + 5)},
    )
    assert r.status_code == 400 and r.json()["code"] == "BadTimestamp"


async def test_query_batch(client: httpx.AsyncClient) -> None:
    r = await post(
        client,
        "/api/query_batch",
        {
            "queries": [
                {"path": "messages:echo", "args": {"value": 1}, "format": "json"},
                {"path": "messages:crash", "args": {}},
            ]
        },
    )
    results = r.json()["results"]
    assert results[0] == {"status": "success", "value": 1.0, "logLines": []}
    assert results[1]["status"] == "error"


async def test_function_and_run_dispatch_on_kind(client: httpx.AsyncClient) -> None:
    r = await post(client, "/api/function", {"path": "messages:send", "args": {"body": "x"}})
    assert r.json()["status"] == "success"
    r = await post(client, "/api/function", {"path": "messages:act", "args": [{"x": 1}]})
    assert r.status_code == 400  # /api/function takes a bare object
    r = await post(client, "/api/run/messages/act", {"args": {"x": 3}})
    assert r.json()["value"] == 6.0
    r = await post(client, "/api/run/admin/users/boom", {"args": {}})
    assert r.json()["status"] == "error" and r.json()["errorData"] == {"n": 5.0}
    r = await post(client, "/api/run/messages/nope", {})
    assert r.json()["status"] == "error" and "Could not find" in r.json()["errorMessage"]


async def test_version_and_cors(client: httpx.AsyncClient) -> None:
    r = await client.get("/version")
    assert r.status_code == 200 and r.text.startswith("pyconvex")
    r = await client.options(
        "/api/query",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,convex-client,authorization",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] in ("*", "http://localhost:5173")
    allowed = r.headers["access-control-allow-headers"].lower()
    assert all(h in allowed for h in ("content-type", "convex-client", "authorization"))
    r = await post(
        client,
        "/api/query",
        {"path": "messages", "args": {}},
        headers={"Origin": "http://localhost:5173"},
    )
    assert r.headers["access-control-allow-origin"] == "*"


async def test_doubled_slashes_are_collapsed(client: httpx.AsyncClient) -> None:
    r = await post(client, "http://test//api//query", {"path": "messages", "args": {}})
    assert r.json()["value"] == "default"


def test_server_modules_do_not_import_cli_dependencies() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pyconvex.runtime.net.app, pyconvex.runtime.net.sync_session, pyconvex.runtime.net.http_api\n"
        "print([m for m in ('typer', 'rich', 'jinja2', 'libcst', 'watchfiles') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_stats_endpoint_reports_query_executions(deployment: FakeDeployment) -> None:
    deployment.admin_key = "the-admin-key"  # type: ignore[attr-defined]
    app = create_app(deployment)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        refused = await client.get("/api/_pyconvex/stats")
        assert refused.status_code == 401 and refused.json()["code"] == "MissingAdminKey"
        wrong = await client.get("/api/_pyconvex/stats", headers={"Authorization": "Convex x"})
        assert wrong.status_code == 401
        headers = {"Authorization": "Convex the-admin-key"}
        stats = (await client.get("/api/_pyconvex/stats", headers=headers)).json()
        assert stats["executions"] == 0 and stats["subscriptions"] == 0
        assert int(stats["latestTs"]) >= 0
