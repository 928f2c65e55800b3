"""Every code block of README.md and of each template's README runs as written, in order, as a
user following it would run them.

The runner reads the blocks top to bottom in one scratch directory:

* ``sh``: each command (lines, and ``&&``-joined parts) runs with bash in the current directory.
  ``cd DIR`` moves it; ``python3 -m venv DIR`` makes DIR a stand-in for a new venv (its bin/
  points at this test environment, where pyconvex and the test extra are installed already);
  ``pip install ...`` is checked to be an install and skipped; ``pyconvex dev`` is started in
  the background (on a free port) until the README ends.
* ``python`` starting with ``# path/to/file.py``: written there (a served project reloads it:
  the runner waits for "ready"); any other ``python`` block runs as a script (against the
  server serving the current directory, if any: ``http://127.0.0.1:3210`` becomes its address).
* ``js``: runs with node and the pinned npm ``convex`` client, against the server serving the
  current directory (``http://127.0.0.1:3210`` becomes its real address).
* ``text``: what the script block before it prints, exactly (the README shows it, so it must be
  what a reader sees).

A block preceded by ``<!-- readme-test: skip (reason) -->`` is not run (README.md's test
command: it is this very suite).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.npm import node_with_client_deps

from pyconvex.dev.launcher import READY, DevServer

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = ROOT / "tests" / "clients"
SCRIPTS = Path(sys.executable).parent
DEFAULT_URL = "http://127.0.0.1:3210"
BLOCK = re.compile(r"(<!-- readme-test: skip[^>]*-->\s*\n)?^```(\w+)\n(.*?)^```", re.M | re.S)
FILE_HEADER = re.compile(r"^# ([\w./-]+\.py)\n")


@dataclass
class Block:
    language: str
    code: str
    skipped: bool


def blocks(markdown: str) -> list[Block]:
    return [Block(m.group(2), m.group(3), m.group(1) is not None) for m in BLOCK.finditer(markdown)]


@dataclass
class Reader:
    """Runs a README's blocks in order (see the module docstring)."""

    cwd: Path
    bin_dir: Path
    servers: dict[Path, DevServer] = field(default_factory=dict)
    scripts: int = 0
    #: What the last script block printed (a ``text`` block shows it).
    printed: str | None = None

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYCONVEX_")}
        env["PATH"] = os.pathsep.join([str(self.bin_dir), env.get("PATH", "")])
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("VIRTUAL_ENV", None)
        return env

    def run(self, block: Block) -> None:
        if block.language == "sh":
            for command in _commands(block.code):
                self.shell(command)
        elif block.language == "python":
            header = FILE_HEADER.match(block.code)
            if header:
                self.write(Path(header.group(1)), block.code)
            else:
                server = self.servers.get(self.cwd)
                code = block.code if server is None else block.code.replace(DEFAULT_URL, server.url)
                self.script("readme_script.py", code, [sys.executable])
        elif block.language == "js":
            self.js(block.code)
        elif block.language == "text":
            assert self.printed is not None, f"no script block before the output:\n{block.code}"
            assert self.printed == block.code, (
                f"the README shows:\n{block.code}\nit printed:\n{self.printed}"
            )
            self.printed = None
        else:
            pytest.fail(f"no runner for ```{block.language} blocks")

    def shell(self, command: str) -> None:
        words = shlex.split(command, comments=True)
        if not words:
            return
        if words[0] == "cd":
            self.cwd = (self.cwd / words[1]).resolve()
            assert self.cwd.is_dir(), command
        elif words[:3] in (["python3", "-m", "venv"], ["python", "-m", "venv"]):
            make_venv(self.cwd / words[3])
        elif _is_install(words):
            pass  # installed already: this environment is the one the README installs
        elif Path(words[0]).name == "pyconvex" and words[1:] == ["dev"]:
            self.serve(words[0])
        else:
            server = self.servers.get(self.cwd)
            if server is not None:
                command = command.replace(DEFAULT_URL, server.url)
            done = subprocess.run(
                command,
                shell=True,
                executable="/bin/bash",
                cwd=self.cwd,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, f"$ {command}\n{done.stdout}\n{done.stderr}"

    def serve(self, program: str) -> None:
        if "/" in program:
            executable = str((self.cwd / program).absolute())
        else:
            executable = str(self.bin_dir / program)
        server = DevServer(self.cwd, "--typecheck", "disable", program=[executable], env=self.env)
        self.servers[self.cwd] = server  # stopped by close(), whatever happens next
        server.start()
        server.output.wait_for(READY, timeout=60)

    def write(self, relative: Path, code: str) -> None:
        server = self.servers.get(self.cwd)
        start = server.output.mark() if server else 0
        path = self.cwd / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code)
        if server is not None and relative.parts[0] == "convex":
            server.output.wait_for(READY, start, timeout=60)

    def script(self, name: str, code: str, command: list[str]) -> None:
        self.scripts += 1
        path = self.cwd / f"{self.scripts}_{name}"
        path.write_text(code)
        try:
            done = subprocess.run(
                [*command, str(path)],
                cwd=self.cwd,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=120,
            )
        finally:
            path.unlink()
        assert done.returncode == 0, f"{code}\n{done.stdout}\n{done.stderr}"
        self.printed = done.stdout

    def js(self, code: str) -> None:
        node = node_with_client_deps("the README's JavaScript")
        server = self.servers.get(self.cwd)
        assert server is not None, f"no pyconvex dev serves {self.cwd} for:\n{code}"
        modules = self.cwd / "node_modules"
        if not modules.exists():
            modules.symlink_to(CLIENTS / "node_modules", target_is_directory=True)
        self.script("readme.mjs", code.replace(DEFAULT_URL, server.url), [node])

    def close(self) -> None:
        for server in self.servers.values():
            server.stop(signal.SIGINT)  # Ctrl-C, as the reader would


def _is_install(words: list[str]) -> bool:
    pip = Path(words[0]).name.startswith("pip") and words[1:2] == ["install"]
    return pip or words[1:4] == ["-m", "pip", "install"]


def _commands(code: str) -> Iterator[str]:
    for line in code.replace("\\\n", " ").splitlines():
        for part in line.split("&&"):
            if part.strip():
                yield part.strip()


def make_venv(path: Path) -> Path:
    """A stand-in for a new venv: bin/ links to this environment's interpreter and scripts."""
    bin_dir = path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        # A script, not a link: a linked interpreter would look for pyvenv.cfg beside the link.
        wrapper = bin_dir / name
        wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
        wrapper.chmod(0o755)
    for name in ("pyconvex", "mypy", "pip"):
        link = bin_dir / name
        if not link.exists():
            link.symlink_to(SCRIPTS / name)
    return bin_dir


def read(markdown: str, cwd: Path, bin_dir: Path) -> None:
    reader = Reader(cwd, bin_dir)
    try:
        ran = 0
        for block in blocks(markdown):
            if not block.skipped:
                reader.run(block)
                ran += 1
        assert ran >= 3
    finally:
        reader.close()


def test_the_readme_runs_as_written(tmp_path: Path) -> None:
    markdown = (ROOT / "README.md").read_text()
    skipped = [b for b in blocks(markdown) if b.skipped]
    assert [b.code for b in skipped] == [
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && "
        ".venv/bin/python -m pytest -q -p no:cacheprovider\n"
    ]  # only the command that runs this very suite
    read(markdown, tmp_path, make_venv(tmp_path / ".venv"))


@pytest.mark.parametrize("template", ["blank", "tasks", "chat"])
def test_each_template_readme_runs_as_written(tmp_path: Path, template: str) -> None:
    bin_dir = make_venv(tmp_path / ".venv")
    done = subprocess.run(
        [str(bin_dir / "pyconvex"), "init", "app", "--template", template],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    project = tmp_path / "app"
    markdown = (project / "README.md").read_text()
    assert not any(b.skipped for b in blocks(markdown))
    read(markdown, project, bin_dir)
