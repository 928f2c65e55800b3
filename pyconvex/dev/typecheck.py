"""The type check in the dev loop: after each push, mypy (or pyright, when the project configures
it) checks the functions directory in the background, as ``npx convex dev`` runs ``tsc``.

The push never waits for it: the check's errors are printed when it finishes, a newer push
cancels a check still running, and a clean check after errors says so once::

    check = TypeCheck(settings.root, settings.functions_dir, mode="try", out=console)
    check.start()                       # after a push
    ok = await check.wait()             # pyconvex dev --once waits for it

Modes: ``enable`` (the checker must be installed; with ``--once`` errors fail), ``try`` (run it
when installed, default), ``disable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import shutil
import sys
import time
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from rich.console import Console
from rich.markup import escape


class TypecheckMode(StrEnum):
    enable = "enable"
    try_ = "try"
    disable = "disable"


@dataclass(frozen=True, slots=True)
class Checker:
    """A type checker: its name and the command that checks ``target``."""

    name: str
    command: tuple[str, ...]


def find_checker(root: Path, functions_dir: Path) -> Checker | None:
    """pyright when the project configures it (``[tool.pyright]`` or pyrightconfig.json) and it
    is installed, else mypy when installed, else None."""
    target = _relative(functions_dir, root)
    if _configures_pyright(root):
        pyright = shutil.which("pyright")
        if pyright is not None:
            return Checker("pyright", (pyright, target))
    if importlib.util.find_spec("mypy") is not None:
        command = (sys.executable, "-m", "mypy", "--no-error-summary", "--hide-error-context")
        return Checker("mypy", (*command, target))
    return None


class TypeCheck:
    """Runs the checker in the background after each push (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        functions_dir: Path,
        *,
        mode: TypecheckMode | str = TypecheckMode.try_,
        out: Console,
        checker: Checker | None = None,
    ) -> None:
        self.root = root
        self.mode = TypecheckMode(mode)
        self.out = out
        self.checker = checker if checker is not None else find_checker(root, functions_dir)
        self._task: asyncio.Task[bool] | None = None
        self._had_errors = False
        self._said_missing = False

    def start(self) -> None:
        """Check the code as it is now (cancelling a check still running)."""
        if self.mode is TypecheckMode.disable:
            return
        if self.checker is None:
            self._missing()
            return
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = asyncio.create_task(self._run(self.checker), name="pyconvex-typecheck")

    async def wait(self) -> bool:
        """Wait for the running check; False when it found errors (or, with ``enable``, there
        is no checker)."""
        if self.mode is TypecheckMode.disable:
            return True
        if self.checker is None:
            return self.mode is not TypecheckMode.enable
        if self._task is None:
            return True
        with contextlib.suppress(asyncio.CancelledError):
            return await asyncio.shield(self._task)
        return True

    async def close(self) -> None:
        """Stop a check still running."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _missing(self) -> None:
        if self.mode is TypecheckMode.enable and not self._said_missing:
            self._said_missing = True
            self.out.print(
                "[red]type check:[/red] mypy is not installed, so --typecheck enable cannot "
                "check your functions. Install it (pip install -e '.[dev]', or pip install mypy) "
                "or pass --typecheck try."
            )

    async def _run(self, checker: Checker) -> bool:
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *checker.command,
            cwd=self.root,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await process.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        seconds = time.perf_counter() - started
        lines = [line for line in output.decode(errors="replace").splitlines() if line.strip()]
        problems = [line for line in lines if _is_problem(line)]
        if process.returncode == 0 and not problems:
            if self._had_errors:
                self.out.print(f"type check: no errors now ({checker.name}, {seconds:.1f} s)")
            self._had_errors = False
            return True
        self._had_errors = True
        count = len([p for p in problems if " error" in p]) or len(problems) or 1
        self.out.print(
            f"[red]type check:[/red] {count} error{'s' if count != 1 else ''} "
            f"({checker.name}, {seconds:.1f} s; your functions are served anyway)"
        )
        for line in problems or lines:
            self.out.print(f"  {escape(line)}", highlight=False)
        return False


def _is_problem(line: str) -> bool:
    # mypy: "convex/notes.py:12: error: ..." (notes belong to the error above them);
    # pyright: "  /abs/convex/notes.py:12:5 - error: ...".
    return ": error" in line or " - error" in line or ": note:" in line


def _configures_pyright(root: Path) -> bool:
    if (root / "pyrightconfig.json").is_file():
        return True
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return isinstance(data.get("tool", {}).get("pyright"), dict)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
