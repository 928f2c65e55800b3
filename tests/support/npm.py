"""The pinned npm packages the official-client tests run (tests/clients/package-lock.json).

Shared by tests/clients/conftest.py and tests/dev/test_e2e.py; :class:`NodeScript` runs one of
the js/ scripts and talks to it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pyconvex.dev.launcher import OutputLines, stop_process

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
CONVEX_NPM_VERSION = "1.48.0"


def node_with_client_deps(what: str) -> str:
    """The `node` binary, with tests/clients/node_modules installed from the lock file
    (`npm ci` when missing or stale); skips ``what`` when Node or npm is not installed."""
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    if node_bin is None or npm_bin is None:
        pytest.skip(f"node/npm not found on PATH: {what} need Node >= 18")
    if not _installed():
        done = subprocess.run(
            [npm_bin, "ci", "--no-audit", "--no-fund"],
            cwd=CLIENTS,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci failed in {CLIENTS}:\n{done.stdout}\n{done.stderr}")
    return node_bin


def _installed() -> bool:
    """Whether node_modules holds every package of package.json at its pinned version."""
    pinned = json.loads((CLIENTS / "package.json").read_text())["dependencies"]
    assert pinned["convex"] == CONVEX_NPM_VERSION
    for name, version in pinned.items():
        manifest = CLIENTS / "node_modules" / name / "package.json"
        if not manifest.exists() or json.loads(manifest.read_text())["version"] != version:
            return False
    return True


class NodeScript:
    """A js/ script the test talks to: "@@" JSON lines out, JSON lines in on stdin."""

    def __init__(self, node: str, script: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [node, str(CLIENTS / "js" / script), *args],
            cwd=CLIENTS,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        self.out = OutputLines(self.proc.stdout)
        self._next = 0  # each expect consumes its line: the next one looks after it

    def expect(self, event: str, timeout: float = 30) -> dict[str, Any]:
        def match(line: str) -> bool:
            if not line.startswith("@@"):
                return False
            data = json.loads(line[2:])
            if "error" in data and "event" not in data:
                pytest.fail("node script failed:\n" + "\n".join(self.out.lines))
            return bool(data.get("event") == event)

        index = self.out.wait_for(match, self._next, timeout)
        self._next = index + 1
        result: dict[str, Any] = json.loads(self.out.line(index)[2:])
        return result

    def send(self, value: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((value if isinstance(value, str) else json.dumps(value)) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.send("end")
            stop_process(self.proc, grace=15)
        self.out.join()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
