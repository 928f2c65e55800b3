"""What to type after ``pyconvex init``: commands that work as printed, from where the user is.

The commands name the Python environment that ran ``init`` (``../.venv/bin/pyconvex dev`` when
that environment is not on ``PATH``), and include installing the project's ``dev`` extra when its
test and type-check tools are missing there::

    for step in next_steps(Path("myapp"), cwd=Path.cwd()):
        print(step.command, "#", step.what)
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

#: The modules the project's ``dev`` extra installs (pytest-asyncio is ``pytest_asyncio``).
DEV_TOOLS = ("pytest", "pytest_asyncio", "mypy")


@dataclass(frozen=True, slots=True)
class Step:
    """One command to run, and what it does."""

    command: str
    what: str


def next_steps(
    root: Path,
    *,
    cwd: Path,
    executable: Path | None = None,
    missing_tools: list[str] | None = None,
    port: int = 3210,
) -> list[Step]:
    """The commands to run after creating a project in ``root``, as seen from ``cwd``.

    ``executable`` is the Python that ran ``init`` (default: this one); ``missing_tools`` the
    :data:`DEV_TOOLS` it lacks (default: looked up).
    """
    python = Path(executable or sys.executable)
    missing = _missing_tools() if missing_tools is None else missing_tools
    root = root.resolve()
    bin_prefix = _bin_prefix(python, root)
    steps = []
    if root != cwd.resolve():
        steps.append(Step(f"cd {_quoted(_relative(root, cwd.resolve()))}", "enter the project"))
    if (root / "package.json").is_file():
        steps.append(
            Step(
                "npm install && npm run build",
                f"build its web frontend (Node 20), which pyconvex dev serves at "
                f"http://127.0.0.1:{port}/",
            )
        )
    steps.append(
        Step(f"{bin_prefix}pyconvex dev", f"serve it on http://127.0.0.1:{port}, reloading on save")
    )
    run_python = f"{bin_prefix}python" if bin_prefix else "python"
    if missing:
        steps.append(
            Step(
                f"{run_python} -m pip install -e '.[dev]'",
                "install its test and type-check tools (the dev extra: "
                + ", ".join(t.replace("_", "-") for t in DEV_TOOLS)
                + ")",
            )
        )
    steps.append(Step(f"{run_python} -m pytest", "run its tests (in process, no server)"))
    steps.append(Step(f"{run_python} -m mypy convex tests", "type-check the functions and tests"))
    return steps


def _missing_tools() -> list[str]:
    return [name for name in DEV_TOOLS if importlib.util.find_spec(name) is None]


def _bin_prefix(python: Path, root: Path) -> str:
    """``""`` when this environment's scripts are the ones on PATH, else the path to its bin/
    directory as seen from the project (``../.venv/bin/``)."""
    bin_dir = python.parent
    on_path = shutil.which("pyconvex")
    if on_path is not None and Path(on_path).resolve().parent == bin_dir.resolve():
        return ""
    if not (bin_dir / "pyconvex").exists() and not (bin_dir / "pyconvex.exe").exists():
        return ""  # not a script install (e.g. python -m pyconvex): trust PATH
    return _quoted(_relative(bin_dir, root)) + os.sep


def _relative(path: Path, start: Path) -> str:
    """``path`` relative to ``start`` when that is shorter (``../.venv/bin``), else absolute."""
    absolute = str(path.absolute())
    try:
        relative = os.path.relpath(absolute, start)
    except ValueError:  # another drive on Windows
        return absolute
    return relative if len(relative) <= len(absolute) else absolute


def _quoted(text: str) -> str:
    return shlex.quote(text)
