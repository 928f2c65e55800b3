"""A pyconvex project on disk: its directory, the ``[tool.pyconvex]`` settings, and the two
files in its data directory that say how to reach the deployment serving it::

    settings = ProjectSettings.load(Path.cwd())
    settings.functions_dir                       # Path(".../convex")
    running_deployment(settings.data_dir)        # RunningDeployment(url=..., pid=...) or None
    read_admin_key(settings.data_dir)            # the key `pyconvex dev` created, or None

``<data_dir>/deployment.json`` (``{"url", "pid"}``) exists while ``pyconvex dev`` serves;
``<data_dir>/admin_key`` (mode 0600) is created at its first start.

The data directory holds every document and the admin key, so it is private to its user: the
directory is mode 0700 and the files pyconvex writes in it 0600 (:func:`ensure_private_dir`,
:func:`private_files`), whatever the umask.
"""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyconvex.errors import PyconvexError

DEFAULT_PORT = 3210
ADMIN_KEY_FILE = "admin_key"
DEV_SIGNING_KEY_FILE = "dev_signing_key.pem"
DEPLOYMENT_FILE = "deployment.json"
#: Modes of the data directory and of the files in it: this user only.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


class ProjectError(PyconvexError):
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


# -- the data directory's well-known files -------------------------------------------------------


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) as a directory only this user can enter (0700), and
    tighten the files directly in it to 0600: a directory made by an older pyconvex, or under
    a lax umask, is fixed at the next start. Returns ``path``.
    """
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    _tighten(path, PRIVATE_DIR_MODE)
    with contextlib.suppress(OSError):
        for entry in os.scandir(path):
            if entry.is_file(follow_symlinks=False):
                _tighten(Path(entry.path), PRIVATE_FILE_MODE)
    return path


def _tighten(path: Path, mode: int) -> None:
    with contextlib.suppress(OSError):  # not ours (e.g. a shared parent): leave it
        st = path.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o777 & ~mode:
            path.chmod(mode)


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """Files created inside the block (by this process, or a library such as DuckDB) are
    0600 and directories 0700: the umask is 0o077 until the block ends."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def admin_key_path(data_dir: Path) -> Path:
    """``<data_dir>/admin_key``: the deployment's admin key (mode 0600)."""
    return data_dir / ADMIN_KEY_FILE


def dev_signing_key_path(data_dir: Path) -> Path:
    """``<data_dir>/dev_signing_key.pem``: the dev sign-in provider's key (mode 0600)."""
    return data_dir / DEV_SIGNING_KEY_FILE


def read_admin_key(data_dir: Path) -> str | None:
    """The admin key stored in ``data_dir``, or None when there is none yet."""
    try:
        text = admin_key_path(data_dir).read_text().strip()
    except FileNotFoundError:
        return None
    return text or None


@dataclass(frozen=True, slots=True)
class RunningDeployment:
    """The process serving a data directory, and the URL that reaches it."""

    url: str
    pid: int


def deployment_file(data_dir: Path) -> Path:
    """``<data_dir>/deployment.json``: ``{"url": ..., "pid": ...}`` while ``pyconvex dev`` runs."""
    return data_dir / DEPLOYMENT_FILE


def running_deployment(data_dir: Path) -> RunningDeployment | None:
    """The live process serving ``data_dir``, or None.

    A file left behind by a process that is gone counts as none.
    """
    try:
        info = json.loads(deployment_file(data_dir).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    url, pid = info.get("url"), info.get("pid")
    if not isinstance(url, str) or isinstance(pid, bool) or not isinstance(pid, int):
        return None
    return RunningDeployment(url, pid) if _alive(pid) else None


def write_deployment_file(data_dir: Path, url: str) -> None:
    """Record this process as the one serving ``data_dir`` at ``url`` (written atomically)."""
    path = deployment_file(data_dir)
    tmp = path.with_suffix(".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps({"url": url, "pid": os.getpid()}) + "\n")
    tmp.replace(path)


def remove_deployment_file(data_dir: Path) -> None:
    """Remove ``deployment.json`` if this process wrote it (on exit)."""
    path = deployment_file(data_dir)
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True
