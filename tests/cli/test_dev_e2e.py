"""`pyconvex dev` end to end: a real server process, the official npm client subscribed to it,
and files edited on disk. The subscription follows every edit without reconnecting."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CLIENTS = REPO / "tests" / "clients"
SERVING = re.compile(r"pyconvex dev: serving (http://127\.0\.0\.1:\d+)")

# tests/ is not a package: load the shared npm helper by path, under a name of its own.
_spec = importlib.util.spec_from_file_location("_pyconvex_npm_deps", CLIENTS / "npm_deps.py")
assert _spec is not None and _spec.loader is not None
_npm_deps = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_npm_deps)

GREET = """
from pyconvex import query


@query(args={})
async def hello(ctx):
    return "hello"
"""


class Lines:
    """Lines of a child's stdout, read by a thread; wait for one matching a condition."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, predicate: Any, what: str, timeout: float = 30, start: int = 0) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if predicate(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._thread.is_alive()):
                    pytest.fail(f"no {what} within {timeout}s:\n" + "\n".join(self.lines[-80:]))
                self._cond.wait(min(left, 0.5))

    def close(self) -> None:
        self._thread.join(10)


class DevServer:
    def __init__(self, project: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "200"}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pyconvex", "dev", "--port", "0"],
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.out = Lines(self.proc)
        m = SERVING.search(self.out.wait_for(SERVING.search, "serving line"))
        assert m is not None
        self.url = m.group(1)
        self.out.wait_for(lambda line: "ready in" in line, "first 'ready in' line")

    def readies(self) -> int:
        return sum("ready in" in line for line in self.out.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.out.close()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class NodeScript:
    def __init__(self, node: str, script: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [node, str(CLIENTS / "js" / script), *args],
            cwd=CLIENTS,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.out = Lines(self.proc)

    def expect(self, event: str, timeout: float = 30) -> dict[str, Any]:
        def match(line: str) -> bool:
            if not line.startswith("@@"):
                return False
            data = json.loads(line[2:])
            if "error" in data and "event" not in data:
                pytest.fail("node script failed:\n" + "\n".join(self.out.lines))
            return bool(data.get("event") == event)

        line = self.out.wait_for(match, f"node event {event!r}", timeout)
        with self.out._cond:
            self.out.lines.remove(line)  # each expect consumes its line
        result: dict[str, Any] = json.loads(line[2:])
        return result

    def send(self, value: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((value if isinstance(value, str) else json.dumps(value)) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.send("end")
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.out.close()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture(scope="module")
def node() -> str:
    return _npm_deps.node_with_client_deps("the npm-client dev loop test")


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
    server = DevServer(tmp_path)
    processes.append(server)
    client = NodeScript(node, "dev_reload.mjs", server.url, "greet:hello", "greet:later")
    processes.append(client)
    first = client.expect("first")
    assert first["value"] == "hello"
    assert "Could not find public function for 'greet:later'" in first["later"]["error"]

    # Edit one function and add the one the client is already waiting for.
    mark = len(server.out.lines)
    write(
        tmp_path / "convex" / "greet.py",
        GREET.replace('"hello"', '"hello v2"')
        + '\n\n@query(args={})\nasync def later(ctx):\n    return "now here"\n',
    )
    client.send({"value": "hello v2", "later": "now here"})
    shown = client.expect("shown")
    assert shown["connection"]["connectionCount"] == 1  # never reconnected
    assert shown["connection"]["isWebSocketConnected"] is True
    server.out.wait_for(lambda line: "ready in" in line, "'ready in' after the edit", 20, mark)

    # A syntax error changes nothing and names the file and line; the fix goes live.
    write(tmp_path / "convex" / "greet.py", GREET + "\n\ndef broken(:\n    pass\n")
    server.out.wait_for(lambda line: "convex/greet.py:9" in line, "the error naming greet.py:9")
    write(tmp_path / "convex" / "greet.py", GREET.replace('"hello"', '"hello v3"'))
    client.send({"value": "hello v3"})
    shown = client.expect("shown")
    assert shown["connection"]["connectionCount"] == 1
    assert "Could not find" in shown["later"]["error"]  # later was removed again


@pytest.mark.parametrize("template", ["blank", "tasks", "chat"])
def test_init_then_dev_then_edit(
    tmp_path: Path, node: str, processes: list[Any], template: str
) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
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
    server = DevServer(project)
    processes.append(server)
    assert not any("error" in line for line in server.out.lines), "\n".join(server.out.lines)
    mark = len(server.out.lines)
    probe = project / "convex" / "probe.py"
    write(probe, GREET)
    server.out.wait_for(lambda line: "ready in" in line, "'ready in' for probe.py", 20, mark)
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
    first = DevServer(tmp_path)
    processes.append(first)
    info = json.loads((tmp_path / ".pyconvex" / "deployment.json").read_text())
    assert info == {"url": first.url, "pid": first.proc.pid}
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "pyconvex", "dev", "--port", "0"]
    second = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert second.returncode == 1
    assert "in use" in second.stderr
    assert f"pid {first.proc.pid}" in second.stderr and first.url in second.stderr
    # Without the file, DuckDB's own lock is reported the same way, not as a traceback.
    (tmp_path / ".pyconvex" / "deployment.json").unlink()
    second = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert second.returncode == 1, second.stdout + second.stderr
    assert "in use" in second.stderr and "Traceback" not in second.stderr
    first.stop()
    assert first.proc.returncode == 0
