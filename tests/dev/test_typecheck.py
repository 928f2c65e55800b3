"""The type check in the dev loop: mypy (or pyright when configured) after each push, in the
background; errors printed, the push never blocked; --typecheck enable|try|disable."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
import textwrap
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from pyconvex.cli.main import app
from pyconvex.dev.typecheck import Checker, TypeCheck, find_checker


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200), buffer


def _fake(script: str) -> Checker:
    return Checker("fake", (sys.executable, "-c", textwrap.dedent(script)))


ERRORS = _fake(
    """
    print("convex/a.py:3: error: Incompatible types in assignment  [assignment]")
    print("convex/a.py:3: note: See the docs")
    raise SystemExit(1)
    """
)
CLEAN = _fake("pass")


async def test_errors_are_printed_and_a_clean_check_says_so_once(tmp_path: Path) -> None:
    out, buffer = _console()
    check = TypeCheck(tmp_path, tmp_path / "convex", out=out, checker=ERRORS)
    check.start()
    assert await check.wait() is False
    text = buffer.getvalue()
    assert "type check: 1 error (fake" in text and "served anyway" in text
    assert "  convex/a.py:3: error: Incompatible types" in text
    check.checker = CLEAN
    check.start()
    assert await check.wait() is True
    assert "type check: no errors now (fake" in buffer.getvalue()
    check.start()
    assert await check.wait() is True
    assert buffer.getvalue().count("no errors now") == 1  # said once, not after every push


async def test_a_new_push_cancels_the_running_check(tmp_path: Path) -> None:
    out, _ = _console()
    pid_file = tmp_path / "pid"
    slow = _fake(
        f"""
        import os, pathlib, time
        pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))
        time.sleep(60)
        """
    )
    check = TypeCheck(tmp_path, tmp_path, out=out, checker=slow)
    check.start()
    first = check._task
    assert first is not None
    check.checker = CLEAN
    check.start()  # cancels the slow one (its process is killed)
    assert await check.wait() is True
    with contextlib.suppress(asyncio.CancelledError):
        await first  # its process killed and reaped
    assert first.cancelled()
    await check.close()
    if pid_file.exists():
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid_file.read_text()), 0)


async def test_modes(tmp_path: Path) -> None:
    out, buffer = _console()
    disabled = TypeCheck(tmp_path, tmp_path, mode="disable", out=out, checker=ERRORS)
    disabled.start()
    assert await disabled.wait() is True and buffer.getvalue() == ""
    missing = TypeCheck(tmp_path, tmp_path, mode="try", out=out)
    missing.checker = None
    missing.start()
    assert await missing.wait() is True and buffer.getvalue() == ""  # try: quietly skipped
    required = TypeCheck(tmp_path, tmp_path, mode="enable", out=out)
    required.checker = None
    required.start()
    required.start()
    assert await required.wait() is False
    assert buffer.getvalue().count("mypy is not installed") == 1


def test_pyright_when_the_project_configures_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "convex").mkdir()
    assert find_checker(tmp_path, tmp_path / "convex") == Checker(
        "mypy",
        (sys.executable, "-m", "mypy", "--no-error-summary", "--hide-error-context", "convex"),
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "pyright"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ.get("PATH", ""))
    assert find_checker(tmp_path, tmp_path / "convex") is not None
    assert find_checker(tmp_path, tmp_path / "convex").name == "mypy"  # type: ignore[union-attr]
    (tmp_path / "pyproject.toml").write_text("[tool.pyright]\nstrict = ['convex']\n")
    assert find_checker(tmp_path, tmp_path / "convex") == Checker("pyright", (str(fake), "convex"))


BAD = """
from pyconvex import query


@query
async def count(ctx) -> int:
    return "many"
"""


@pytest.mark.parametrize(("mode", "code"), [("try", 0), ("enable", 1), ("disable", 0)])
def test_dev_once_runs_mypy_on_the_functions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, code: int
) -> None:
    (tmp_path / "convex").mkdir()
    (tmp_path / "convex" / "numbers.py").write_text(BAD.lstrip())
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["dev", "--once", "--typecheck", mode])
    assert result.exit_code == code, result.output
    assert "ready in" in result.output  # the push did not wait for the check
    shown = "numbers.py:6: error: Incompatible return value type" in result.output
    assert shown == (mode != "disable"), result.output
