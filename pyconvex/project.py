"""A pyconvex project on disk: its directory and the ``[tool.pyconvex]`` settings.

settings = ProjectSettings.load(Path.cwd())
settings.functions_dir  # Path(".../convex")
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PORT = 3210


class ProjectError(Exception):
    """The project directory or its pyproject.toml settings are unusable."""


@dataclass(frozen=True, slots=True)
class ProjectSettings:
    """Settings from ``[tool.pyconvex]`` in the project's pyproject.toml (all optional).

    ``functions`` (default ``"convex"``), ``port`` (default 3210) and ``data_dir`` (default
    ``".pyconvex"``); relative paths are relative to the project directory.
    """

    root: Path
    functions_dir: Path
    data_dir: Path
    port: int = DEFAULT_PORT

    @classmethod
    def load(cls, root: Path) -> ProjectSettings:
        root = root.resolve()
        table = _tool_table(root / "pyproject.toml")
        functions = _string(table, "functions", "convex")
        data_dir = _string(table, "data_dir", ".pyconvex")
        port = table.get("port", DEFAULT_PORT)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ProjectError(
                f"[tool.pyconvex] port in {root / 'pyproject.toml'} must be an integer "
                f"between 0 and 65535, got {port!r}."
            )
        return cls(root=root, functions_dir=root / functions, data_dir=root / data_dir, port=port)

    def check(self) -> None:
        """Raise :class:`ProjectError` unless the functions directory exists."""
        if not self.functions_dir.is_dir():
            raise ProjectError(
                f"No functions directory at {self.functions_dir}. Run pyconvex in a project "
                "directory (one with a convex/ folder), or set [tool.pyconvex] functions = "
                '"<dir>" in pyproject.toml.'
            )


def _tool_table(pyproject: Path) -> dict[str, Any]:
    if not pyproject.is_file():
        return {}
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"{pyproject} is not valid TOML: {exc}") from None
    table = data.get("tool", {}).get("pyconvex", {})
    if not isinstance(table, dict):
        raise ProjectError(f"[tool.pyconvex] in {pyproject} must be a table.")
    known = {"functions", "port", "data_dir"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ProjectError(
            f"Unknown [tool.pyconvex] setting(s) {unknown} in {pyproject}; "
            f"known settings: {sorted(known)}."
        )
    return table


def _string(table: dict[str, Any], key: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value:
        raise ProjectError(f"[tool.pyconvex] {key} must be a non-empty string, got {value!r}.")
    return value
