"""The dev loop in process: reloads, load errors, refused pushes and their retries, codegen order,
the watcher, ``--once`` and the data directory's lock."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from pyconvex.cli.main import app
from pyconvex.dev.codegen_step import Codegen
from pyconvex.dev.loop import DevLoop, busy_failure
from pyconvex.dev.serve import local_url
from pyconvex.project import (
    ProjectSettings,
    RunningDeployment,
    deployment_file,
    remove_deployment_file,
    running_deployment,
    write_deployment_file,
)
from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.functions.loader import LoadedFunctions
from pyconvex.server.schema import SchemaDefinition

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "messages": define_table({"author": v.string(), "body": v.string()}),
})
"""

MESSAGES = """
from pyconvex import mutation, query, v

from ._format import fmt


@query(args={})
async def hello(ctx):
    return fmt("hello")


@query(args={})
async def count(ctx):
    return len(await ctx.db.query("messages").collect())


@mutation(args={"author": v.string(), "body": v.string()})
async def send(ctx, author, body):
    return await ctx.db.insert("messages", {"author": author, "body": body})


@mutation(args={})
async def clear(ctx):
    for doc in await ctx.db.query("messages").collect():
        await ctx.db.delete(doc["_id"])
"""

FORMAT = """
def fmt(text):
    return text
"""

OTHER = """
from pyconvex import query


@query(args={})
async def ping(ctx):
    return "pong"
"""


def write(root: Path, rel: str, source: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip("\n"))
    return path


def make_project(tmp_path: Path) -> ProjectSettings:
    functions = tmp_path / "convex"
    write(functions, "schema.py", SCHEMA)
    write(functions, "messages.py", MESSAGES)
    write(functions, "_format.py", FORMAT)
    write(functions, "other.py", OTHER)
    return ProjectSettings(tmp_path.resolve(), functions.resolve(), tmp_path.resolve() / "data")


class Harness:
    def __init__(self, loop: DevLoop, out: io.StringIO, err: io.StringIO) -> None:
        self.loop = loop
        self._out = out
        self._err = err

    @property
    def dep(self) -> Deployment:
        assert self.loop.deployment is not None
        return self.loop.deployment

    @property
    def out(self) -> str:
        return self._out.getvalue()

    @property
    def err(self) -> str:
        return self._err.getvalue()

    def edit(self, rel: str, source: str) -> None:
        self.loop.notice({write(self.loop.functions_dir, rel, source)})

    def query(self, path: str, args: dict[str, Any] | None = None) -> Any:
        result = self.dep.run_query(path, args or {})
        return result.value if result.failure is None else result.failure.message


LoopFactory = Callable[..., "asyncio.Future[Harness]"]


@pytest.fixture
async def dev(tmp_path: Path) -> AsyncIterator[Any]:
    loops: list[DevLoop] = []

    async def start(codegen: Codegen | None = None, data_dir: Path | None = None) -> Harness:
        settings = make_project(tmp_path) if not (tmp_path / "convex").exists() else None
        if settings is None:
            settings = ProjectSettings(
                tmp_path.resolve(), (tmp_path / "convex").resolve(), tmp_path / "data"
            )
        out, err = io.StringIO(), io.StringIO()
        loop = DevLoop(
            settings,
            out=Console(file=out, width=200),
            err=Console(file=err, width=200),
            codegen=codegen or _no_codegen(),
        )
        loops.append(loop)
        await loop.open(data_dir)
        loop.announce_startup()
        return Harness(loop, out, err)

    yield start
    for loop in loops:
        await loop.close()


def _no_codegen() -> Codegen:
    codegen = Codegen()
    codegen.schema_step = None
    codegen.api_step = None
    return codegen


# -- reloading ------------------------------------------------------------------------------------


async def test_start_prints_ready(dev: Any) -> None:
    h = await dev()
    assert "pyconvex dev: ready in" in h.out and "5 functions" in h.out
    assert h.query("messages:hello") == "hello"


async def test_edit_a_function_reloads_only_what_depends_on_it(dev: Any) -> None:
    h = await dev()
    before = h.loop.serving
    assert before is not None
    h.edit("_format.py", "def fmt(text):\n    return text.upper() + '!'\n")
    assert await h.loop.step() is True
    assert h.query("messages:hello") == "HELLO!"
    after = h.loop.serving
    assert after is not None and after is not before
    assert after.modules["other"] is before.modules["other"]  # untouched and independent
    assert after.modules["messages"] is not before.modules["messages"]  # imports _format
    assert sorted(after.executed) == ["_format", "messages"]
    assert "reloaded _format.py, messages.py" in h.out


async def test_second_quick_edit_of_the_same_size_is_seen(dev: Any) -> None:
    h = await dev()
    for word in ("aaaaa", "bbbbb", "ccccc"):
        h.edit("_format.py", f"def fmt(text):\n    return '{word}'\n")
        assert await h.loop.step() is True
        assert h.query("messages:hello") == word


async def test_saving_unchanged_content_pushes_nothing(dev: Any) -> None:
    h = await dev()
    h.edit("other.py", OTHER)
    assert await h.loop.step() is None


async def test_syntax_error_keeps_the_old_code_and_names_file_and_line(dev: Any) -> None:
    h = await dev()
    h.edit("other.py", OTHER + "\n\ndef broken(:\n    pass\n")
    assert await h.loop.step() is False
    assert "convex/other.py:9" in h.err and "SyntaxError" in h.err
    assert h.query("other:ping") == "pong"
    h.edit("other.py", OTHER.replace('"pong"', '"fixed"'))
    assert await h.loop.step() is True
    assert h.query("other:ping") == "fixed"


async def test_import_error_in_a_helper_points_into_it(dev: Any) -> None:
    h = await dev()
    h.edit("_format.py", "import not_a_module_anywhere\n")
    assert await h.loop.step() is False
    assert "convex/_format.py:1" in h.err and "not_a_module_anywhere" in h.err
    assert h.query("messages:hello") == "hello"


async def test_removed_function_is_not_found_with_a_suggestion(dev: Any) -> None:
    h = await dev()
    h.edit("other.py", OTHER.replace("def ping", "def pings"))
    assert await h.loop.step() is True
    message = h.query("other:ping")
    assert "Could not find public function for 'other:ping'" in message
    assert "Did you mean 'other:pings'?" in message


async def test_new_module_and_deleted_module(dev: Any) -> None:
    h = await dev()
    h.edit("extra.py", OTHER.replace("ping", "extra"))
    assert await h.loop.step() is True
    assert h.query("extra:extra") == "pong"
    path = h.loop.functions_dir / "extra.py"
    path.unlink()
    h.loop.notice({path})
    assert await h.loop.step() is True
    assert "Could not find" in h.query("extra:extra")


# -- schema pushes --------------------------------------------------------------------------------


async def test_refused_push_retries_when_the_table_changes(dev: Any) -> None:
    h = await dev()
    await h.dep.run_mutation("messages:send", {"author": "ada", "body": "hi"})
    doc_id = next(iter(h.dep.store.tables["messages"].docs))
    h.edit(
        "schema.py", SCHEMA.replace('"body": v.string()', '"body": v.string(), "n": v.float64()')
    )
    h.edit("other.py", OTHER.replace('"pong"', '"new"'))
    assert await h.loop.step() is False
    assert "Schema push refused" in h.err
    assert f"document {doc_id}, field n" in h.err
    assert "expected: v.float64()" in h.err and "missing" in h.err
    assert h.query("other:ping") == "pong"  # the last good code keeps serving
    assert not h.loop.wants_push
    # The old code empties the table: the push is tried again by itself, and goes through.
    await h.dep.run_mutation("messages:clear", {})
    assert h.loop.wants_push
    assert await h.loop.step() is True
    assert h.query("other:ping") == "new"


@pytest.mark.parametrize(
    ("fields", "found", "hint"),
    [
        ('"body": v.string(), "n": v.float64()', "missing", "Make the field optional"),
        ('"body": v.float64()', "string 'hi'", "Let the validator accept the stored values"),
        ("", "string 'hi'", "Add the field to the table's validator"),
    ],
    ids=["missing", "mismatch", "extra"],
)
async def test_a_refused_push_says_what_to_do_about_the_field(
    dev: Any, fields: str, found: str, hint: str
) -> None:
    h = await dev()
    await h.dep.run_mutation("messages:send", {"author": "ada", "body": "hi"})
    body = ', "body": v.string()'
    h.edit("schema.py", SCHEMA.replace(body, f", {fields}" if fields else ""))
    assert await h.loop.step() is False
    err = " ".join(h.err.split())
    assert "Schema push refused" in err and found in err
    assert hint in err


async def test_commits_on_other_tables_do_not_retry(dev: Any) -> None:
    h = await dev()
    await h.dep.run_mutation("messages:send", {"author": "ada", "body": "hi"})
    h.edit(
        "schema.py",
        SCHEMA.replace('"body": v.string()', '"body": v.string(), "n": v.float64()').replace(
            "\n})", '\n    "other": define_table({"x": v.float64()}),\n})'
        ),
    )
    assert await h.loop.step() is False
    assert not h.loop.wants_push


async def test_start_with_data_the_schema_refuses_serves_no_functions(
    dev: Any, tmp_path: Path
) -> None:
    h = await dev(data_dir=tmp_path / "data")
    await h.dep.run_mutation("messages:send", {"author": "ada", "body": "hi"})
    await h.loop.close()
    write(
        tmp_path / "convex",
        "schema.py",
        SCHEMA.replace('"body": v.string()', '"body": v.string(), "n": v.float64()'),
    )
    again = await dev(data_dir=tmp_path / "data")
    assert "Schema push refused" in again.err
    assert "Could not find" in again.query("messages:hello")


async def test_accepted_schema_is_remembered_so_a_restart_checks_nothing(
    dev: Any, tmp_path: Path
) -> None:
    h = await dev(data_dir=tmp_path / "data")
    await h.dep.run_mutation("messages:send", {"author": "ada", "body": "hi"})
    await h.loop.close()
    again = await dev(data_dir=tmp_path / "data")
    assert again.loop.accepted is not None
    assert again.query("messages:hello") == "hello"


# -- codegen order --------------------------------------------------------------------------------


class RecordingCodegen(Codegen):
    """Writes _generated/server.py from the schema and _generated/api.py from the functions."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[str] = []
        self.schema_step = self._schema
        self.api_step = self._api

    def _schema(self, functions_dir: Path, schema: SchemaDefinition | None) -> None:
        tables = sorted(schema.tables) if schema is not None else []
        self.calls.append("schema")
        write(functions_dir, "_generated/server.py", f"TABLES = {tables!r}\n")

    def _api(self, functions_dir: Path, loaded: LoadedFunctions) -> None:
        self.calls.append("api")
        write(functions_dir, "_generated/api.py", f"PATHS = {sorted(loaded.functions)!r}\n")


USES_GENERATED = """
from pyconvex import query

from ._generated.api import PATHS
from ._generated.server import TABLES


@query(args={})
async def tables(ctx):
    return TABLES


@query(args={})
async def paths(ctx):
    return PATHS
"""


async def test_generated_server_is_written_before_modules_import_it(
    dev: Any, tmp_path: Path
) -> None:
    make_project(tmp_path)
    write(tmp_path / "convex", "gen.py", USES_GENERATED)
    codegen = RecordingCodegen(tmp_path)
    h = await dev(codegen=codegen)
    assert h.query("gen:tables") == ["messages"]
    # The first import saw an api.py without the new paths; the reload after codegen sees them.
    assert "gen:paths" in h.query("gen:paths")
    # api.py did not exist: the first load failed, and succeeded once it was bootstrapped.
    assert codegen.calls == ["schema", "api", "api"]  # schema once: it did not change
    codegen.calls.clear()
    h.edit(
        "schema.py",
        SCHEMA.replace("\n})", '\n    "channels": define_table({"name": v.string()}),\n})'),
    )
    assert await h.loop.step() is True
    assert h.query("gen:tables") == ["channels", "messages"]
    assert codegen.calls == ["schema", "api"]
    # Editing a function's body changes neither the schema nor any signature: no codegen.
    h.edit("other.py", OTHER.replace('"pong"', '"pang"'))
    assert await h.loop.step() is True
    assert h.query("other:ping") == "pang"
    assert codegen.calls == ["schema", "api"]
    # A new function changes the api only.
    h.edit("other.py", OTHER + "\n\n@query(args={})\nasync def pong(ctx):\n    return 1\n")
    assert await h.loop.step() is True
    assert codegen.calls == ["schema", "api", "api"]
    assert "other:pong" in h.query("gen:paths")


# -- the watcher ----------------------------------------------------------------------------------


async def test_watcher_pushes_saved_files(dev: Any) -> None:
    h = await dev()
    stop = asyncio.Event()
    # The readiness signal: watch() returns once the OS watches are in place, so a save made
    # right after it is seen (the dev server watches before its first load for this reason).
    await h.loop.watch(stop)
    task = asyncio.create_task(h.loop.run(stop))
    try:
        write(h.loop.functions_dir, "other.py", OTHER.replace('"pong"', '"watched"'))
        # Editor leftovers and generated files are ignored.
        write(h.loop.functions_dir, "_generated/api.py", "X = 1\n")
        (h.loop.functions_dir / "other.py~").write_text("backup")

        async def served() -> None:
            while h.query("other:ping") != "watched":
                await asyncio.sleep(0.02)

        await asyncio.wait_for(served(), 20)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


# -- the running deployment's file, --once, the lock ----------------------------------------------


def test_deployment_file_round_trip(tmp_path: Path) -> None:
    assert running_deployment(tmp_path) is None
    write_deployment_file(tmp_path, "http://127.0.0.1:4000")
    info = running_deployment(tmp_path)
    assert info == RunningDeployment("http://127.0.0.1:4000", os.getpid())
    remove_deployment_file(tmp_path)
    assert not deployment_file(tmp_path).exists()


def test_stale_deployment_file_is_ignored(tmp_path: Path) -> None:
    proc = __import__("subprocess").run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = int(proc.stdout)
    deployment_file(tmp_path).write_text(json.dumps({"url": "http://x:1", "pid": dead}))
    assert running_deployment(tmp_path) is None


def test_busy_names_the_other_server(tmp_path: Path) -> None:
    deployment_file(tmp_path).write_text(
        json.dumps({"url": "http://127.0.0.1:4321", "pid": os.getppid()})
    )
    failure = busy_failure(tmp_path)
    assert f"pid {os.getppid()}" in str(failure) and "http://127.0.0.1:4321" in str(failure)


def test_wildcard_hosts_are_reached_on_localhost() -> None:
    assert local_url("http://0.0.0.0:3210") == "http://127.0.0.1:3210"
    assert local_url("http://[::]:3210") == "http://127.0.0.1:3210"
    assert local_url("http://127.0.0.1:3210") == "http://127.0.0.1:3210"


def test_once_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["dev", "--once"])
    assert result.exit_code == 0, result.output
    assert "ready in" in result.output
    assert (tmp_path / ".pyconvex" / "admin_key").exists()
    assert (tmp_path / ".pyconvex" / "admin_key").stat().st_mode & 0o777 == 0o600
    assert not deployment_file(tmp_path / ".pyconvex").exists()

    write(tmp_path / "convex", "other.py", "def broken(:\n")
    result = runner.invoke(app, ["dev", "--once"])
    assert result.exit_code == 1
    assert "convex/other.py:1" in result.output


def test_once_refuses_while_another_dev_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    data = tmp_path / ".pyconvex"
    data.mkdir()
    deployment_file(data).write_text(
        json.dumps({"url": "http://127.0.0.1:4321", "pid": os.getppid()})
    )
    result = CliRunner().invoke(app, ["dev", "--once"])
    assert result.exit_code == 1
    assert "in use" in result.output and "http://127.0.0.1:4321" in result.output


async def test_restart_with_nothing_changed_skips_codegen(dev: Any, tmp_path: Path) -> None:
    make_project(tmp_path)
    write(tmp_path / "convex", "gen.py", USES_GENERATED)
    first = RecordingCodegen(tmp_path)
    h = await dev(codegen=first)
    assert first.calls  # generated at first start
    await h.loop.close()
    second = RecordingCodegen(tmp_path)
    h = await dev(codegen=second)
    assert second.calls == []  # <data_dir>/codegen.json says _generated/ is current
    assert h.query("gen:tables") == ["messages"]
    await h.loop.close()
    # A generated file edited by hand is regenerated.
    (tmp_path / "convex" / "_generated" / "server.py").write_text("TABLES = ['edited']\n")
    third = RecordingCodegen(tmp_path)
    h = await dev(codegen=third)
    assert third.calls == ["schema"]  # api.py was left alone: still current
    assert h.query("gen:tables") == ["messages"]


async def test_editing_the_package_init_reloads_everything_under_a_new_package(
    dev: Any, tmp_path: Path
) -> None:
    make_project(tmp_path)
    write(tmp_path / "convex", "__init__.py", "GREETING = 'hi'\n")
    write(
        tmp_path / "convex",
        "other.py",
        "from . import GREETING\n" + OTHER.replace('"pong"', "GREETING"),
    )
    h = await dev()
    assert h.query("other:ping") == "hi"
    old = h.loop.serving
    assert old is not None
    h.edit("__init__.py", "GREETING = 'hello'\n")
    assert await h.loop.step() is True
    assert h.query("other:ping") == "hello"
    new = h.loop.serving
    assert new is not None and new.package != old.package
    assert old.package not in sys.modules and new.package in sys.modules


async def test_start_with_a_broken_module_serves_once_it_is_fixed(dev: Any, tmp_path: Path) -> None:
    make_project(tmp_path)
    write(tmp_path / "convex", "other.py", OTHER + "\nraise RuntimeError('not yet')\n")
    h = await dev()
    assert "convex/other.py:8" in h.err and "not yet" in h.err
    assert "functions load as soon as it imports" in h.err
    assert "Could not find" in h.query("messages:hello")
    h.edit("other.py", OTHER)
    assert await h.loop.step() is True
    assert h.query("messages:hello") == "hello" and h.query("other:ping") == "pong"


# -- what the console says ------------------------------------------------------------------------


async def test_deleting_a_broken_file_recovers_and_says_so(dev: Any) -> None:
    h = await dev()
    h.edit("broken.py", "def broken(:\n")
    assert await h.loop.step() is False
    assert "convex/broken.py:1" in h.err
    ready_before = h.out.count("pyconvex dev: ready in")
    path = h.loop.functions_dir / "broken.py"
    path.unlink()
    h.loop.notice({path})
    assert await h.loop.step() is True
    assert h.out.count("pyconvex dev: ready in") == ready_before + 1
    assert "removed broken.py" in h.out.splitlines()[-1]
    assert h.query("other:ping") == "pong"
    # A later save without changes is quiet again.
    h.edit("other.py", OTHER)
    assert await h.loop.step() is None


async def test_fixing_a_broken_file_back_to_what_serves_says_ready(dev: Any) -> None:
    h = await dev()
    h.edit("other.py", "def broken(:\n")
    assert await h.loop.step() is False
    h.edit("other.py", OTHER)  # back to the code that serves: nothing to push, but say so
    assert await h.loop.step() is True
    assert h.out.splitlines()[-1].startswith("pyconvex dev: ready in")


async def test_reload_lines_name_the_users_files_not_generated_ones(dev: Any) -> None:
    h = await dev(codegen=Codegen())
    h.edit("uses.py", "from ._generated.api import api\n")
    assert await h.loop.step() is True
    # A new function changes _generated/api.py, which reloads too: only user files are named.
    h.edit("more.py", OTHER.replace("ping", "pong"))
    assert await h.loop.step() is True
    assert h.loop.serving is not None
    assert any(m.startswith("_generated") for m in h.loop.serving.executed)
    last = h.out.splitlines()[-1]
    assert "reloaded more.py, uses.py" in last and "_generated" not in last
