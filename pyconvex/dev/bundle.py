"""A functions directory as ``pyconvex deploy`` ships it: its ``.py`` files (``_generated/``
included), by path, with one hash that names the code::

    bundle = Bundle.from_dir(Path("convex"))      # what the deploying side reads
    body = bundle.to_json()                       # {"name": "convex", "files": {...}}
    same = Bundle.from_json(body)                 # what the deployment receives (checked)
    same.write_to(Path("/tmp/x"))                 # /tmp/x/convex/messages.py ...
    bundle.hash == code_hash(loaded)              # the same code, loaded

The files are the ones the loader imports (:func:`module_sources.scan`: no ``__pycache__``,
``node_modules`` or hidden directories, only importable ``.py`` names), so the hash of a bundle
and of the code loaded from it agree.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pyconvex.errors import PyconvexError
from pyconvex.runtime.functions.loader import LoadedFunctions
from pyconvex.runtime.functions.module_sources import scan

#: At most this many files, and this many bytes of source in all (the HTTP body limit, 16 MiB,
#: bounds what one request carries anyway).
MAX_FILES = 5000
MAX_BYTES = 12 * 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.py)?$")


class BundleError(PyconvexError):
    """A bundle that is not a functions directory pyconvex can load (the message says why)."""


@dataclass(frozen=True, slots=True)
class Bundle:
    """The functions directory ``name`` (``"convex"``) and its files: POSIX path relative to
    it -> source bytes."""

    name: str
    files: dict[str, bytes]

    @classmethod
    def from_dir(cls, functions_dir: Path) -> Bundle:
        """The ``.py`` files of ``functions_dir`` as the loader sees them."""
        functions_dir = functions_dir.resolve()
        sources = scan(functions_dir, {}, set())
        files = {f.path.relative_to(functions_dir).as_posix(): f.source for f in sources.values()}
        return cls(functions_dir.name, files)

    @property
    def hash(self) -> str:
        return sources_hash(self.files.items())

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.files.values())

    def to_json(self) -> dict[str, Any]:
        """``{"name", "files": {path: text}}``; a file that is not UTF-8 travels as
        ``{"$base64": ...}``."""
        files: dict[str, Any] = {}
        for path, source in sorted(self.files.items()):
            try:
                files[path] = source.decode("utf-8")
            except UnicodeDecodeError:
                files[path] = {"$base64": base64.b64encode(source).decode()}
        return {"name": self.name, "files": files}

    @classmethod
    def from_json(cls, obj: Any) -> Bundle:
        """The inverse of :meth:`to_json`; raises :class:`BundleError` for anything that is not a
        functions directory (paths outside it, files that are not Python, too many or too big)."""
        if not isinstance(obj, dict):
            raise BundleError('The bundle must be an object {"name": ..., "files": {...}}.')
        name, raw = obj.get("name"), obj.get("files")
        if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
            raise BundleError(f"The functions directory's name {name!r} is not a directory name.")
        if not isinstance(raw, dict):
            raise BundleError('"files" must be an object of path -> source text.')
        if len(raw) > MAX_FILES:
            raise BundleError(
                f"The bundle has {len(raw)} files; pyconvex deploys at most {MAX_FILES}."
            )
        files: dict[str, bytes] = {}
        total = 0
        for path, text in raw.items():
            check_path(path)
            if isinstance(text, str):
                source = text.encode("utf-8")
            elif isinstance(text, dict) and isinstance(text.get("$base64"), str):
                try:
                    source = base64.b64decode(text["$base64"], validate=True)
                except ValueError:
                    raise BundleError(f"{path}: $base64 is not valid base64.") from None
            else:
                raise BundleError(f"{path}: the source must be text or {{'$base64': ...}}.")
            total += len(source)
            if total > MAX_BYTES:
                raise BundleError(
                    f"The bundle holds more than {MAX_BYTES // (1024 * 1024)} MiB of source; "
                    "pyconvex deploys functions directories up to that size."
                )
            files[path] = source
        return cls(name, files)

    def write_to(self, parent: Path) -> Path:
        """Write the files under ``parent/<name>/``; returns that directory."""
        root = parent / self.name
        root.mkdir(parents=True, exist_ok=True)
        for path, source in self.files.items():
            target = root.joinpath(*PurePosixPath(path).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_bytes(source)
            os.replace(tmp, target)
        return root


def prepare(functions_dir: Path) -> Bundle:
    """What ``pyconvex deploy`` sends: ``_generated/`` brought up to date (codegen, which also
    imports every module, so code that does not load here is never sent), then the files.

    Raises :class:`~pyconvex.runtime.functions.loader.ModuleLoadError` or
    :class:`~pyconvex.codegen.errors.CodegenError`."""
    from pyconvex.codegen import generate  # libcst: only the deploying side needs it

    generate(functions_dir)
    return Bundle.from_dir(functions_dir)


def check_path(path: Any) -> None:
    """A bundle path is relative, inside the directory, and names a ``.py`` file by Python
    names (what the loader would import)."""
    if not isinstance(path, str) or not path.endswith(".py") or "\\" in path:
        raise BundleError(f"{path!r} is not the path of a .py file (a/b.py, POSIX separators).")
    parts = path.split("/")
    if any(not _PART.match(part) for part in parts) or not parts[-1].endswith(".py"):
        raise BundleError(
            f"{path!r} is not a module path inside the functions directory (relative, Python "
            "names only, no '..')."
        )


def sources_hash(files: Iterable[tuple[str, bytes]]) -> str:
    """The hash naming some code: sha256 over its paths and sources, in path order."""
    digest = hashlib.sha256()
    for path, source in sorted(files):
        digest.update(f"{path}\0{len(source)}\0".encode())
        digest.update(source)
    return digest.hexdigest()


def code_hash(loaded: LoadedFunctions | None) -> str:
    """The hash of the code ``loaded`` was imported from ("" for none)."""
    if loaded is None or loaded.functions_dir is None:
        return ""
    root = loaded.functions_dir
    return sources_hash(
        (f.path.relative_to(root).as_posix(), f.source) for f in loaded.files.values()
    )
