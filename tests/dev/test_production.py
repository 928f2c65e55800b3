"""``pyconvex serve``, a real process: production answers (errors reduced to a request id the
log has, no log lines for clients), the admin key on every admin route, ``/health``, and the
deployed code kept across restarts."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from pyconvex.client import ConvexClient
from pyconvex.client.errors import ConvexError, FunctionError
from pyconvex.dev.launcher import ProductionServer, child_env

GREET = """
from pyconvex import ConvexError, action, mutation, query, v


@query(args={})
async def hello(ctx):
    print("saying hello")
    return "hello"


@query(args={})
async def boom(ctx):
    raise ValueError("secret detail")


@mutation(args={})
async def refuse(ctx):
    print("refusing")
    raise ConvexError({"code": "NOPE"})


@action(args={})
async def fail(ctx):
    raise RuntimeError("action internals")
"""

HTTP = """
from pyconvex import HttpRouter

http = HttpRouter()


@http.route("/crash", method="GET")
async def crash(ctx, request):
    raise KeyError("http internals")
"""

SERVER_ERROR = re.compile(r"^\[Request ID: ([0-9a-f]{16})\] Server Error$")


def make_project(root: Path, source: str = GREET) -> Path:
    (root / "convex").mkdir(parents=True, exist_ok=True)
    (root / "convex" / "greet.py").write_text(textwrap.dedent(source).lstrip("\n"))
    (root / "convex" / "http.py").write_text(textwrap.dedent(HTTP).lstrip("\n"))
    return root


def call(
    server: ProductionServer, kind: str, path: str, key: str | None = None
) -> dict[str, object]:
    headers = {"Authorization": f"Convex {key}"} if key else {}
    response = httpx.post(
        f"{server.url}/api/{kind}", json={"path": path, "args": {}}, headers=headers, timeout=30
    )
    body: dict[str, object] = response.json()
    return body


def test_serve_answers_clients_as_production(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    with ProductionServer(project) as server:
        health = httpx.get(f"{server.url}/health", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok"

        # The dashboard: the printed one-time link signs one browser in, once.
        line = server.output.line(server.output.wait_for("pyconvex serve: dashboard at "))
        link = line.split(" dashboard at ")[1].split()[0]
        assert httpx.get(link, timeout=10).status_code == 303
        assert httpx.get(link, timeout=10).status_code == 401
        # No dev sign-in page: anyone could sign in as anyone there.
        page = httpx.get(f"{server.url}/dev-auth/sign-in?return_to={server.url}/", timeout=10)
        assert page.status_code == 404
        assert server.output.find("dev sign-in") is None

        ok = call(server, "query", "greet:hello")
        assert ok["value"] == "hello" and ok["logLines"] == []  # log lines stay on the server

        failed = call(server, "query", "greet:boom")
        m = SERVER_ERROR.match(str(failed["errorMessage"]))
        assert m is not None, failed
        # The server's log has the call under the same request id, with the error.
        server.output.wait_for(f"Request ID: {m.group(1)}")
        server.output.wait_for("ValueError: secret detail")
        assert "secret detail" not in str(failed)

        refused = call(server, "mutation", "greet:refuse")
        assert SERVER_ERROR.match(str(refused["errorMessage"]))
        assert refused["errorData"] == {"code": "NOPE"} and refused["logLines"] == []

        # The admin key sees the whole error (pyconvex run uses it).
        admin = call(server, "query", "greet:boom", key=server.admin_key)
        assert "Uncaught ValueError: secret detail" in str(admin["errorMessage"])

        # Over the sync WebSocket too.
        with ConvexClient(server.url) as client:
            with pytest.raises(FunctionError) as query_error:
                client.query("greet:boom", {}, timeout=30)
            assert SERVER_ERROR.match(query_error.value.message)
            with pytest.raises(ConvexError) as mutation_error:
                client.mutation("greet:refuse", {}, timeout=30)
            assert SERVER_ERROR.match(mutation_error.value.message)
            assert mutation_error.value.data == {"code": "NOPE"}
            assert mutation_error.value.log_lines == ()
            with pytest.raises(FunctionError) as action_error:
                client.action("greet:fail", {}, timeout=30)
            assert SERVER_ERROR.match(action_error.value.message)
        server.output.wait_for("RuntimeError: action internals")

        # HTTP actions answer with Convex's production body.
        crash = httpx.get(f"{server.url}/http/crash", timeout=30)
        assert crash.status_code == 500
        assert SERVER_ERROR.match(crash.json()["code"]) and set(crash.json()) == {"code"}
        server.output.wait_for("http internals")

        # Every admin route needs the key.
        for route in ("tables", "logs?follow=0", "env", "stats"):
            assert httpx.get(f"{server.url}/api/_pyconvex/{route}", timeout=10).status_code == 401
        deploy = httpx.post(f"{server.url}/api/_pyconvex/deploy", json={}, timeout=10)
        assert deploy.status_code == 401


def test_serve_keeps_serving_the_deployed_code(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    server = ProductionServer(project)
    with server:
        assert call(server, "query", "greet:hello")["value"] == "hello"
    # Editing the project's files changes nothing: serve runs what was deployed.
    make_project(tmp_path, GREET.replace('return "hello"', 'return "edited"'))
    with server:
        assert call(server, "query", "greet:hello")["value"] == "hello"
        server.output.wait_for("convex/ here differs: `pyconvex deploy` sends it")


def test_serve_refuses_to_start_with_code_that_does_not_import(tmp_path: Path) -> None:
    project = make_project(tmp_path, GREET + "\nimport no_such_module_anywhere\n")
    done = subprocess.run(
        [sys.executable, "-m", "pyconvex", "serve", "--port", "0"],
        cwd=project,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Could not load the deployed functions" in done.stderr
    assert "no_such_module_anywhere" in done.stderr
    # Fixed, it starts: the code that never served was not kept as the deployed one.
    make_project(tmp_path)
    with ProductionServer(project) as server:
        assert call(server, "query", "greet:hello")["value"] == "hello"
