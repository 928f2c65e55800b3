"""Fixtures for the official-client conformance tests.

These drive the real, unmodified Convex clients (npm `convex` pinned in package-lock.json, PyPI
`convex` pinned in pyproject.toml) against a real `python -m pyconvex dev` server started on a
free port in a copy of `project/` (pyconvex.dev.launcher.DevServer). Node scripts live in `js/`, PyPI-client scripts in `py/`; each
prints "@@"-prefixed JSON lines that the tests assert on.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.npm import node_with_client_deps

from pyconvex.dev.launcher import DevServer

HERE = Path(__file__).parent
PROJECT = HERE / "project"
JS = HERE / "js"
PY = HERE / "py"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "clients: drives the official Convex clients (npm and PyPI) against a server"
    )


def _start(tmp: Path) -> DevServer:
    project = tmp / "project"
    shutil.copytree(
        PROJECT, project, ignore=shutil.ignore_patterns("__pycache__", ".pyconvex", "_generated")
    )
    return DevServer(project)


@pytest.fixture(scope="session")
def node() -> str:
    """The `node` binary, with tests/clients/node_modules installed from the lock file."""
    return node_with_client_deps("the npm-client conformance tests")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """One server per test module (tests isolate themselves by author / tag)."""
    with _start(tmp_path_factory.mktemp("clients")) as srv:
        yield srv


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[DevServer]:
    """A server of the test's own, for tests that restart it."""
    with _start(tmp_path) as srv:
        yield srv


def parse_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line[2:]) for line in stdout.splitlines() if line.startswith("@@")]


class ScriptResult:
    def __init__(self, lines: list[dict[str, Any]]) -> None:
        self.lines = lines

    def step(self, name: str, key: str = "step") -> dict[str, Any]:
        found = [line for line in self.lines if line.get(key) == name]
        assert found, f"no output line with {key}={name!r} in {self.lines}"
        return found[0]

    def all(self, key: str, value: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get(key) == value]


def _check(
    cmd: list[str], done: subprocess.CompletedProcess[str], server: DevServer
) -> ScriptResult:
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited with {done.returncode}\n--- stdout\n{done.stdout}\n"
            f"--- stderr\n{done.stderr[-4000:]}\n--- server log\n{server.output.tail()}"
        )
    lines = parse_lines(done.stdout)
    assert lines and lines[-1] == {"done": True}, f"script did not finish cleanly:\n{done.stdout}"
    return ScriptResult(lines)


def _run_node(
    node: str, script: str, server: DevServer, *args: str, timeout: float = 60
) -> ScriptResult:
    cmd = [node, str(JS / script), server.url, *args]
    try:
        done = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(
            f"{script} still running after {timeout}s\n{e.stdout}\n{e.stderr}\n{server.output.tail()}"
        )
    return _check(cmd, done, server)


def _run_python(script: str, server: DevServer, timeout: float = 60) -> ScriptResult:
    cmd = [sys.executable, str(PY / script), server.url]
    try:
        done = subprocess.run(cmd, cwd=PY, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(
            f"{script} still running after {timeout}s\n{e.stdout}\n{e.stderr}\n{server.output.tail()}"
        )
    return _check(cmd, done, server)


class NodeSession:
    """A Node script the test talks to: reads its "@@" lines as they come, writes stdin lines."""

    def __init__(self, node: str, script: str, server: DevServer, *args: str) -> None:
        self.server = server
        self.cmd = [node, str(JS / script), server.url, *args]
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.stderr: list[str] = []
        self._cond = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.raw.append(line.rstrip("\n"))
                if line.startswith("@@"):
                    self.lines.append(json.loads(line[2:]))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))

    def report(self) -> str:
        return (
            f"{' '.join(self.cmd)} (exit {self.proc.poll()})\n--- stdout\n"
            + "\n".join(self.raw)
            + "\n--- stderr\n"
            + "\n".join(self.stderr[-80:])
            + f"\n--- server log\n{self.server.output.tail()}"
        )

    def expect(self, event: str, timeout: float = 30) -> dict[str, Any]:
        """Wait for the line with `event`; fail with everything printed so far otherwise."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if line.get("event") == event:
                        return line
                    if "error" in line:
                        pytest.fail(f"script failed while waiting for {event!r}:\n{self.report()}")
                if self.proc.poll() is not None and not any(
                    line.get("event") == event for line in self.lines
                ):
                    # Let the reader thread catch up with the last lines before giving up.
                    if not self._cond.wait(0.2):
                        pytest.fail(f"script exited before {event!r}:\n{self.report()}")
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no {event!r} within {timeout}s:\n{self.report()}")
                self._cond.wait(min(left, 0.5))

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 30) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.close()
            pytest.fail(f"script still running after {timeout}s:\n{self.report()}")
        for reader in self._readers:
            reader.join(5)  # its last lines: the readers reach EOF now that it has exited
        if self.proc.returncode != 0 or not self.lines or self.lines[-1] != {"done": True}:
            pytest.fail(f"script failed:\n{self.report()}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for reader in self._readers:
            reader.join(5)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


@pytest.fixture
def npm(node: str) -> Any:
    """`npm(script, server, *args, timeout=60)`: run a js/ script to completion, return its lines."""

    def run(script: str, server: DevServer, *args: str, timeout: float = 60) -> ScriptResult:
        return _run_node(node, script, server, *args, timeout=timeout)

    return run


@pytest.fixture
def npm_session(node: str) -> Iterator[Any]:
    """`npm_session(script, server, *args)`: start a js/ script to talk to; killed at the end."""
    sessions: list[NodeSession] = []

    def start(script: str, server: DevServer, *args: str) -> NodeSession:
        session = NodeSession(node, script, server, *args)
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        session.close()


@pytest.fixture
def pypi() -> Any:
    """`pypi(script, server, timeout=60)`: run a py/ script (PyPI `convex` client) to completion."""
    return _run_python
