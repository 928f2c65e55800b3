"""HTTP actions over a real server: convex/http.py routes (exact, prefix, per method) served on
the site port and under /http/ on the API port; handlers get an action ctx and a Starlette
Request; errors are 500s with ConvexError data; unknown routes are 404s naming the routes;
a push swaps the routes; CONVEX_SITE_URL names the site."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from support.deployment import DeploymentFactory, ok

from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.functions.loader import load_functions
from pyconvex.runtime.net.app import serve

FUNCTIONS = {
    "tasks.py": """
        from pyconvex import internal_mutation, query


        @internal_mutation
        async def create(ctx, text: str) -> str:
            return await ctx.db.insert("tasks", {"text": text})


        @query
        async def texts(ctx) -> list[str]:
            return [t["text"] for t in await ctx.db.query("tasks").collect()]
    """,
    "http.py": """
        from starlette.responses import JSONResponse, PlainTextResponse, Response

        from pyconvex import ConvexError, HttpRouter, cors_headers, env, http_action

        http = HttpRouter()


        @http.route("/echo", method="GET")
        async def echo(ctx, request):
            print("echo", request.query_params.get("q"))
            return JSONResponse({
                "q": request.query_params.get("q"),
                "agent": request.headers.get("x-agent"),
                "site": env["CONVEX_SITE_URL"],
            })


        @http.route("/tasks", method="POST")
        async def create(ctx, request):
            body = await request.json()
            task_id = await ctx.run_mutation("tasks:create", {"text": body["text"]})
            return JSONResponse(
                {"id": task_id}, status_code=201, headers=cors_headers(request.headers.get("origin"))
            )


        @http_action
        async def file_route(ctx, request):
            return PlainTextResponse(f"file {request.url.path}")


        @http_action
        async def deep_route(ctx, request):
            return PlainTextResponse("deep")


        http.route(path_prefix="/files/", method="GET", handler=file_route)
        http.route(path_prefix="/files/deep/", method="GET", handler=deep_route)
        http.route(path="/files/exact", method="GET", handler=deep_route)
        http.cors("/tasks")


        @http.route("/refuse", method="GET")
        async def refuse(ctx, request):
            raise ConvexError({"code": "NOPE"})


        @http.route("/wrong", method="GET")
        async def wrong(ctx, request):
            return {"not": "a response"}


        @http.route("/huge", method="GET")
        async def huge(ctx, request):
            return Response(b"x" * (20 * 1024 * 1024 + 1))
    """,
}


@pytest.fixture
async def served(deployment: DeploymentFactory) -> AsyncIterator[tuple[Deployment, str, str]]:
    dep = await deployment(FUNCTIONS)
    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    server = asyncio.create_task(
        serve(dep, host="127.0.0.1", port=0, on_listening=listening.set_result, stop=stop)
    )
    api = await listening
    try:
        yield dep, api, dep.site_url
    finally:
        stop.set()
        await server


async def test_a_get_route_reads_query_string_and_headers(
    served: tuple[Deployment, str, str],
) -> None:
    dep, api, site = served
    assert site != api and site.startswith("http://127.0.0.1:")
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.get(f"{site}/echo", params={"q": "a b"}, headers={"x-agent": "test"})
        assert r.status_code == 200
        assert r.json() == {"q": "a b", "agent": "test", "site": site}
        # The same routes under /http/ on the API port.
        r = await http.get(f"{api}/http/echo", params={"q": "x"})
        assert r.json()["q"] == "x"
    [entry, *_] = [e for e in dep.log_history.recent() if e.kind == "http_action"]
    assert entry.path == "GET /echo" and entry.log_lines == ["[LOG] echo a b"]


async def test_a_post_route_reads_the_body_and_runs_a_mutation(
    served: tuple[Deployment, str, str],
) -> None:
    dep, _, site = served
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(
            f"{site}/tasks", json={"text": "from a webhook"}, headers={"origin": "https://a.b"}
        )
        assert r.status_code == 201 and isinstance(r.json()["id"], str)
        assert r.headers["access-control-allow-origin"] == "*"
        preflight = await http.options(
            f"{site}/tasks",
            headers={"origin": "https://a.b", "access-control-request-method": "POST"},
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-methods"] == "POST"
        assert "Content-Type" in preflight.headers["access-control-allow-headers"]
    assert ok(dep.run_query("tasks:texts")) == ["from a webhook"]


async def test_prefix_routes_exact_first_then_longest_prefix(
    served: tuple[Deployment, str, str],
) -> None:
    _, _, site = served
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(f"{site}/files/a/b.txt")).text == "file /files/a/b.txt"
        assert (await http.get(f"{site}/files/deep/x")).text == "deep"
        assert (await http.get(f"{site}/files/exact")).text == "deep"
        head = await http.head(f"{site}/files/a")
        assert head.status_code == 200 and head.content == b""


async def test_unknown_routes_are_404s_naming_the_routes(
    served: tuple[Deployment, str, str],
) -> None:
    _, _, site = served
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.get(f"{site}/nope")
        assert r.status_code == 404
        assert "No HTTP action for GET /nope" in r.text
        assert "  GET /echo\n" in r.text and "  GET /files/*" in r.text
        assert (await http.delete(f"{site}/echo")).status_code == 404


async def test_errors_are_500s_with_convex_error_data(
    served: tuple[Deployment, str, str],
) -> None:
    _, _, site = served
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.get(f"{site}/refuse")
        assert r.status_code == 500 and r.json()["data"] == {"code": "NOPE"}
        assert r.json()["code"].startswith("Server Error: ")
        r = await http.get(f"{site}/wrong")
        assert r.status_code == 500 and "returned dict, not a response" in r.json()["code"]
        r = await http.get(f"{site}/huge")  # Convex's 20 MiB limit on responses
        assert r.status_code == 500 and "returned a body of 20,971,521 bytes" in r.json()["code"]
        assert "limited to 20 MiB" in r.json()["code"]


async def test_a_push_swaps_the_routes(served: tuple[Deployment, str, str], tmp_path: Path) -> None:
    dep, _, site = served
    http_py = tmp_path / "convex" / "http.py"
    http_py.write_text(http_py.read_text().replace('"/echo"', '"/echo2"'))
    dep.swap(load_functions(tmp_path / "convex", previous=dep.loaded), dep.schema)
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(f"{site}/echo")).status_code == 404
        assert (await http.get(f"{site}/echo2")).status_code == 200


async def test_a_deployment_without_http_py_says_how_to_add_one(
    deployment: DeploymentFactory,
) -> None:
    dep = await deployment({"tasks.py": FUNCTIONS["tasks.py"]})
    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    server = asyncio.create_task(
        serve(dep, host="127.0.0.1", port=0, on_listening=listening.set_result, stop=stop)
    )
    await listening
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.get(f"{dep.site_url}/x")
        assert r.status_code == 404 and "convex/http.py" in r.text
    finally:
        stop.set()
        await server
