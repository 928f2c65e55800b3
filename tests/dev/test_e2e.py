"""`pyconvex dev` end to end: a real server process, the official npm client subscribed to it,
and files edited on disk. The subscription follows every edit without reconnecting."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.npm import NodeScript, node_with_client_deps

from pyconvex.dev.launcher import READY, DevServer, child_env

GREET = """
from pyconvex import query


@query(args={})
async def hello(ctx):
    return "hello"
"""


def start_dev(project: Path, processes: list[Any]) -> DevServer:
    """A `pyconvex dev` serving ``project``, its start-up push live; stopped by ``processes``."""
    server = DevServer(project).start()
    processes.append(server)
    server.output.wait_for(READY)
    return server


@pytest.fixture(scope="module")
def node() -> str:
    return node_with_client_deps("the npm-client dev loop test")


@pytest.fixture
def processes() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for p in reversed(started):
        p.close() if isinstance(p, NodeScript) else p.stop()


def write(path: Path, source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip("\n"))


def test_subscriptions_follow_edits_without_reconnecting(
    tmp_path: Path, node: str, processes: list[Any]
) -> None:
    write(tmp_path / "convex" / "greet.py", GREET)
    server = start_dev(tmp_path, processes)
    client = NodeScript(node, "dev_reload.mjs", server.url, "greet:hello", "greet:later")
    processes.append(client)
    first = client.expect("first")
    assert first["value"] == "hello"
    assert "Could not find public function for 'greet:later'" in first["later"]["error"]

    # Edit one function and add the one the client is already waiting for.
    mark = server.output.mark()
    write(
        tmp_path / "convex" / "greet.py",
        GREET.replace('"hello"', '"hello v2"')
        + '\n\n@query(args={})\nasync def later(ctx):\n    return "now here"\n',
    )
    client.send({"value": "hello v2", "later": "now here"})
    shown = client.expect("shown")
    assert shown["connection"]["connectionCount"] == 1  # never reconnected
    assert shown["connection"]["isWebSocketConnected"] is True
    server.output.wait_for(READY, mark, 20)

    # A syntax error changes nothing and names the file and line; the fix goes live.
    write(tmp_path / "convex" / "greet.py", GREET + "\n\ndef broken(:\n    pass\n")
    server.output.wait_for("convex/greet.py:9")
    write(tmp_path / "convex" / "greet.py", GREET.replace('"hello"', '"hello v3"'))
    client.send({"value": "hello v3"})
    shown = client.expect("shown")
    assert shown["connection"]["connectionCount"] == 1
    assert "Could not find" in shown["later"]["error"]  # later was removed again


@pytest.mark.parametrize("template", ["blank", "tasks", "chat"])
def test_init_then_dev_then_edit(
    tmp_path: Path, node: str, processes: list[Any], template: str
) -> None:
    env = child_env()
    done = subprocess.run(
        [sys.executable, "-m", "pyconvex", "init", "app", "--template", template],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    project = tmp_path / "app"
    server = start_dev(project, processes)
    assert not any("error" in line for line in server.output.lines), server.output.tail()
    mark = server.output.mark()
    probe = project / "convex" / "probe.py"
    write(probe, GREET)
    server.output.wait_for(READY, mark, 20)
    client = NodeScript(node, "dev_reload.mjs", server.url, "probe:hello")
    processes.append(client)
    assert client.expect("first")["value"] == "hello"
    write(probe, GREET.replace('"hello"', '"edited"'))
    client.send({"value": "edited"})
    assert client.expect("shown")["connection"]["connectionCount"] == 1


def test_second_dev_on_the_same_project_names_the_first(
    tmp_path: Path, processes: list[Any]
) -> None:
    write(tmp_path / "convex" / "greet.py", GREET)
    first = start_dev(tmp_path, processes)
    info = json.loads((tmp_path / ".pyconvex" / "deployment.json").read_text())
    assert info == {"url": first.url, "pid": first.pid}
    env = child_env()
    command = [sys.executable, "-m", "pyconvex", "dev", "--port", "0"]
    second = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert second.returncode == 1
    assert "in use" in second.stderr
    assert f"pid {first.pid}" in second.stderr and first.url in second.stderr
    # Without the file, DuckDB's own lock is reported the same way, not as a traceback.
    (tmp_path / ".pyconvex" / "deployment.json").unlink()
    second = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert second.returncode == 1, second.stdout + second.stderr
    assert "in use" in second.stderr and "Traceback" not in second.stderr
    assert first.stop(signal.SIGINT) == 0
