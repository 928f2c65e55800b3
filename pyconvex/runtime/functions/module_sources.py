"""The functions directory's source files: scanning them, tracking who imports whom, and
executing a module from the exact bytes read (no ``.pyc``).

    files = scan(functions_dir)                 # {dotted name: SourceFile}
    changed = changed_names(old_files, files)   # what to re-execute, with importers(...)
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import linecache
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, ModuleType

from pyconvex.runtime.functions import sandbox

_SKIP_DIRS = {"__pycache__", "node_modules"}


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One ``.py`` file of the functions directory as last read."""

    name: str  # dotted, relative to the package: "messages", "admin.users", "" for __init__
    path: Path
    mtime_ns: int
    size: int
    source: bytes
    is_package: bool
    #: Modules of the directory it imports (dotted names), parents included.
    imports: frozenset[str]
    #: It imports by computed name (``importlib.import_module``): depends on everything.
    dynamic: bool



# -- finding and executing sources ---------------------------------------------------------------


class SourceLoader(importlib.abc.Loader):
    """Executes a module from the bytes read when its change was detected."""

    def __init__(self, source: SourceFile) -> None:
        self.source = source

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        exec(_compile(self.source), module.__dict__)
        # `from datetime import datetime` gets the frozen-clock twin (see sandbox).
        sandbox.bind_clock_twins(module.__dict__)

    def get_source(self, fullname: str) -> str:
        return self.source.source.decode("utf-8", "replace")


def _compile(source: SourceFile) -> CodeType:
    filename = str(source.path)
    # Tracebacks show the lines that were loaded, even after the file changes again.
    text = source.source.decode("utf-8", "replace")
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    return compile(source.source, filename, "exec", dont_inherit=True)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the modules of loaded functions packages among the sources read for them."""

    def __init__(self) -> None:
        self.packages: dict[str, dict[str, SourceFile]] = {}

    def install(self) -> None:
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, rest = fullname.partition(".")
        files = self.packages.get(package)
        if files is None or not rest:
            return None
        source = files.get(rest)
        if source is None:
            return None  # a namespace package, or a file that is not Python source
        return importlib.util.spec_from_file_location(
            fullname,
            source.path,
            loader=SourceLoader(source),
            submodule_search_locations=[str(source.path.parent)] if source.is_package else None,
        )


finder = _Finder()


def is_within(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


# -- change detection ----------------------------------------------------------------------------


def scan(
    functions_dir: Path, old: dict[str, SourceFile], forced: set[Path]
) -> dict[str, SourceFile]:
    """Every .py file under ``functions_dir``; unchanged ones (same size and mtime, not in
    ``forced``) are taken from ``old`` without being read."""
    files: dict[str, SourceFile] = {}
    for dirpath, dirnames, filenames in os.walk(functions_dir):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        base = Path(dirpath)
        rel_parts = base.relative_to(functions_dir).parts
        for filename in filenames:
            if not filename.endswith(".py") or filename.startswith("."):
                continue
            stem = filename[:-3]
            if not stem.isidentifier():
                continue  # not importable (editor backups such as "x.py~" do not end in .py)
            is_package = stem == "__init__"
            name = ".".join(rel_parts if is_package else (*rel_parts, stem))
            path = base / filename
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            prev = old.get(name)
            if (
                prev is not None
                and prev.mtime_ns == st.st_mtime_ns
                and prev.size == st.st_size
                and path not in forced
            ):
                files[name] = prev
                continue
            try:
                source = path.read_bytes()
            except FileNotFoundError:
                continue
            if prev is not None and prev.source == source:
                imports, dynamic = prev.imports, prev.dynamic
            else:
                imports, dynamic = _imports_of(source, name, is_package)
            files[name] = SourceFile(
                name, path, st.st_mtime_ns, len(source), source, is_package, imports, dynamic
            )
    return files


def differs(a: SourceFile | None, b: SourceFile | None) -> bool:
    if a is None or b is None:
        return a is not b
    return a.source != b.source


def changed_names(old: dict[str, SourceFile], new: dict[str, SourceFile]) -> set[str]:
    names = {n for n, f in new.items() if differs(old.get(n), f)}
    return names | (set(old) - set(new))


def importers(files: dict[str, SourceFile], changed: set[str]) -> set[str]:
    """``changed`` and every module importing one of them, directly or not."""
    if not changed:
        return set()
    by_import: dict[str, set[str]] = {}
    dynamic = set()
    for name, f in files.items():
        if f.dynamic:
            dynamic.add(name)
        for dep in f.imports:
            by_import.setdefault(dep, set()).add(name)
    out = set(changed) | dynamic
    todo = list(out)
    while todo:
        for importer in by_import.get(todo.pop(), ()):
            if importer not in out:
                out.add(importer)
                todo.append(importer)
    return out


def _imports_of(source: bytes, name: str, is_package: bool) -> tuple[frozenset[str], bool]:
    """Dotted names (relative to the package) a module may import, and whether it imports by
    computed names. A file that does not parse imports nothing (importing it will fail)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return frozenset(), False
    parts = name.split(".") if name else []
    package = parts if is_package else parts[:-1]
    found: set[str] = set()
    dynamic = False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            if node.level - 1 > len(package):
                continue
            anchor = package[: len(package) - (node.level - 1)]
            target = anchor + (node.module.split(".") if node.module else [])
            found.add(".".join(target))
            for alias in node.names:
                found.add(".".join([*target, alias.name]))
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in ("import_module", "__import__"):
                dynamic = True
    # Importing a.b.c runs a and a.b first; a module's own parent packages run before it.
    found.update(".".join(parts[:i]) for i in range(1, len(parts)))
    for dotted in list(found):
        pieces = dotted.split(".") if dotted else []
        for i in range(1, len(pieces)):
            found.add(".".join(pieces[:i]))
    found.discard(name)
    return frozenset(found), dynamic
