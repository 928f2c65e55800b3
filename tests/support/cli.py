"""Running the command line against a real ``pyconvex dev``: the admin commands' shared
project (``messages`` with a few functions, ``GET /hello`` in http.py), a module-scoped server
over it, and the CLI run in
process (:func:`invoke`) or as a child process (:func:`pyconvex`).

    @pytest.fixture(scope="module")
    def dev(tmp_path_factory) -> Iterator[DevServer]:
        yield from serve_project(tmp_path_factory)

    def test_x(dev: DevServer, monkeypatch) -> None:
        r = invoke(dev.project, "run", "messages:count", monkeypatch=monkeypatch)
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner, Result

from pyconvex.cli.main import app
from pyconvex.dev.launcher import READY, DevServer, child_env

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "messages": define_table({"body": v.string(), "n": v.optional(v.int64())}),
    "empty": define_table({"x": v.float64()}),
})
"""

MESSAGES = """
from pyconvex import (
    ConvexError, action, env, internal_mutation, internal_query, mutation, query, v,
)


@mutation(args={"body": v.string()})
async def send(ctx, body):
    print("sending", body)
    if not body.strip():
        raise ConvexError({"code": "EMPTY_BODY", "hint": "say something"})
    return await ctx.db.insert("messages", {"body": body})


@query
async def count(ctx) -> float:
    return float(len(await ctx.db.query("messages").collect()))


@query
async def latest(ctx):
    return [m["body"] for m in await ctx.db.query("messages").order("desc").take(3)]


@internal_query
async def secret(ctx) -> str:
    return "internal ok"


@mutation
async def remind_later(ctx) -> str:
    return await ctx.scheduler.run_after(3600, "messages:noop", {})


@internal_mutation
async def noop(ctx) -> None:
    pass


@mutation
async def remind_soon(ctx) -> str:
    return await ctx.scheduler.run_after(0, "messages:reminded", {"note": "soon"})


@internal_mutation
async def reminded(ctx, note: str) -> None:
    print("reminded", note)


@action(args={"text": v.string()})
async def shout(ctx, text):
    print("shouting", text)
    if not text:
        raise ConvexError({"code": "NOTHING_TO_SHOUT"})
    return {"text": text.upper(), "count": await ctx.run_query("messages:count", {})}


@mutation
async def upload_url(ctx) -> str:
    return await ctx.storage.generate_upload_url()


@query
async def whoami(ctx):
    identity = await ctx.auth.get_user_identity()
    if identity is None:
        return None
    return {"subject": identity.subject, "name": identity.name}


@query
async def numbers(ctx):
    return {"f": 2.0, "i": 3, "big": __import__("pyconvex").Int64(5)}


@query(args={"x": v.string(), "n": v.float64(), "big": v.int64()})
async def echo(ctx, x, n, big):
    return {"x": x, "n": n, "big": big}


@query
async def typed(ctx):
    return {"n": __import__("pyconvex").Int64(7), "b": b"hi", "x": 1.5}


@query
async def greeting(ctx) -> str:
    return env.get("GREETING", "hello")


@query
async def crash(ctx):
    raise RuntimeError("boom")
"""


HTTP = """
from starlette.responses import PlainTextResponse

from pyconvex import HttpRouter

http = HttpRouter()


@http.route("/hello", method="GET")
async def hello(ctx, request):
    print("hello to", request.query_params.get("name"))
    return PlainTextResponse("hi")
"""


def make_project(root: Path) -> Path:
    (root / "convex").mkdir(parents=True)
    (root / "convex" / "schema.py").write_text(textwrap.dedent(SCHEMA))
    (root / "convex" / "messages.py").write_text(textwrap.dedent(MESSAGES))
    (root / "convex" / "http.py").write_text(HTTP)
    return root


def pyconvex(root: Path, *args: str) -> subprocess.Popen[str]:
    """``python -m pyconvex ARGS`` in ``root``, stdout and stderr merged, text mode (read it with
    :class:`pyconvex.dev.launcher.OutputLines`; stop it by its pid)."""
    return subprocess.Popen(
        [sys.executable, "-m", "pyconvex", *args],
        cwd=root,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def serve_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """Module fixture body: a project with MESSAGES served by a real `pyconvex dev`, its
    start-up push live ("ready in")."""
    with DevServer(make_project(tmp_path_factory.mktemp("project"))) as dev:
        dev.output.wait_for(READY)
        yield dev


def invoke(
    root: Path, *args: str, monkeypatch: pytest.MonkeyPatch, input: str | None = None
) -> Result:
    """Run the CLI in process from ``root`` (so it finds the deployment through .pyconvex/)."""
    monkeypatch.chdir(root)
    monkeypatch.delenv("PYCONVEX_URL", raising=False)
    monkeypatch.delenv("PYCONVEX_ADMIN_KEY", raising=False)
    return CliRunner().invoke(app, list(args), catch_exceptions=False, input=input)


def flat(text: str) -> str:
    """Output with rich's box drawing removed and whitespace collapsed, for substring checks."""
    return " ".join(re.sub(r"[╭╮╰╯│─┃━┏┓┗┛┡┩┣┫┳┻╇╋└┘┌┐├┤┬┴┼]", " ", text).split())


def assert_all_documented(*path: str) -> None:
    """Every parameter of the command at ``path`` has help text, as does the command."""
    command: Any = get_command(app)  # typer's own click: duck-typed
    for name in path:
        command = command.commands[name]
    assert command.help, f"{' '.join(path)} has no help"
    for param in command.params:
        assert getattr(param, "help", None), f"{' '.join(path)} {param.name} has no help"
