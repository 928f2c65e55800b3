"""``pyconvex deploy`` from one process to a ``pyconvex serve`` on another port, while the
official npm client stays subscribed: a refused deploy changes nothing, a dry run changes
nothing, and a deploy goes live without the client reconnecting."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.cli import flat
from support.npm import NodeScript, node_with_client_deps

from pyconvex.dev.launcher import ProductionServer, child_env

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({"notes": define_table({"body": BODY})})
"""

GREET = """
from pyconvex import mutation, query, v


@query(args={})
async def hello(ctx):
    return "hello"


@mutation(args={"body": v.any()})
async def add(ctx, body):
    return await ctx.db.insert("notes", {"body": body})
"""

LATER = """

@query(args={})
async def later(ctx):
    first = await ctx.db.query("notes").with_index("by_body").first()
    return "now here: " + str(first["body"])
"""


def project(root: Path, *, body: str, hello: str = "hello", later: bool = False) -> Path:
    functions = root / "convex"
    functions.mkdir(parents=True, exist_ok=True)
    table = f'define_table({{"body": {body}}})' + ('.index("by_body", ["body"])' if later else "")
    schema = SCHEMA.replace('define_table({"body": BODY})', table)
    (functions / "schema.py").write_text(textwrap.dedent(schema).lstrip("\n"))
    source = GREET.replace('return "hello"', f"return {hello!r}") + (LATER if later else "")
    (functions / "greet.py").write_text(textwrap.dedent(source).lstrip("\n"))
    return root


def deploy(root: Path, server: ProductionServer, *args: str) -> subprocess.CompletedProcess[str]:
    """``pyconvex deploy`` as its own process, naming the server by URL and admin key."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pyconvex",
            "deploy",
            "--url",
            server.url,
            "--admin-key",
            server.admin_key,
            *args,
        ],
        cwd=root,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def query(server: ProductionServer, path: str) -> Any:
    body = httpx.post(f"{server.url}/api/query", json={"path": path, "args": {}}, timeout=30)
    return body.json().get("value")


@pytest.fixture
def processes() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for p in reversed(started):
        p.close() if isinstance(p, NodeScript) else p.stop()


def test_deploy_to_serve_while_an_npm_client_stays_subscribed(
    tmp_path: Path, processes: list[Any]
) -> None:
    node = node_with_client_deps("the deploy test")
    server = ProductionServer(project(tmp_path / "server", body="v.any()")).start()
    processes.append(server)
    modules = server.project / ".pyconvex" / "modules"
    current = (modules / "current").read_text()
    bad = httpx.post(
        f"{server.url}/api/mutation", json={"path": "greet:add", "args": {"body": 42}}, timeout=30
    ).json()["value"]
    client = NodeScript(node, "dev_reload.mjs", server.url, "greet:hello", "greet:later")
    processes.append(client)
    first = client.expect("first")
    assert first["value"] == "hello"
    assert "Server Error" in first["later"]["error"]  # production: no details for clients

    # A schema the stored documents do not match: refused, as dev refuses it, nothing changes.
    strict = project(tmp_path / "strict", body="v.string()", hello="strict", later=True)
    refused = deploy(strict, server, "-y")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    said = flat(refused.stderr)
    assert "Schema push refused" in said
    assert f"convex/schema.py, table notes, document {bad}, field body" in said
    assert "A document in table 'notes' does not match the new schema." in said
    assert "expected: v.string()" in said and "Nothing was changed on the deployment." in said
    assert "Let the validator accept the stored values" in said  # a value, not a missing field
    assert query(server, "greet:hello") == "hello"
    assert (modules / "current").read_text() == current
    assert sorted(p.name for p in modules.iterdir()) == sorted(["current", current[:16]])

    # A dry run shows the changes and changes nothing.
    good = project(tmp_path / "good", body="v.any()", hello="hello v2", later=True)
    dry = deploy(good, server, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    shown = dry.stdout
    assert "+ notes.by_body" in shown and "backfilled from 1 documents" in shown
    assert "+ greet:later" in shown and "~ greet:hello" in shown
    assert "Dry run: nothing was changed" in shown
    assert query(server, "greet:hello") == "hello"

    # The deploy: the client sees the new code's results on the connection it had.
    done = deploy(good, server, "-y")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Deployed " in done.stdout and "serves the new code" in done.stdout
    client.send({"value": "hello v2", "later": "now here: 42.0"})
    shown_now = client.expect("shown")
    assert shown_now["connection"]["connectionCount"] == 1
    assert shown_now["connection"]["isWebSocketConnected"] is True
    assert (modules / "current").read_text() != current
    server.output.wait_for("pyconvex serve: deployed ")

    # Deploying the same code again is no change; a restart serves the deployed code.
    again = deploy(good, server, "-y")
    assert "already serves this code" in again.stdout
    server.restart()
    assert query(server, "greet:later") == "now here: 42.0"


def test_deploy_without_a_terminal_asks_for_yes(tmp_path: Path, processes: list[Any]) -> None:
    server = ProductionServer(project(tmp_path / "server", body="v.any()")).start()
    processes.append(server)
    other = project(tmp_path / "other", body="v.any()", hello="other")
    done = deploy(other, server)
    assert done.returncode == 2
    assert "Pass -y (--yes)" in flat(done.stderr)
    assert query(server, "greet:hello") == "hello"
    wrong = subprocess.run(
        [
            sys.executable,
            "-m",
            "pyconvex",
            "deploy",
            "--url",
            server.url,
            "--admin-key",
            "nope",
            "-y",
        ],
        cwd=other,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrong.returncode == 4 and "refused the admin key" in flat(wrong.stderr)
