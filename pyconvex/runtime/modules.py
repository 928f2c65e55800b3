"""Loading a functions directory (``convex/``) into ``module:function`` paths.

The directory is imported as a package under a private, unique name (``_pyconvex_fn_<n>``), so
user module names never clash with installed packages — ``convex/`` next to the official
``convex`` PyPI client included — and relative imports (``from ._generated.server import
query``) work. Each load gets a fresh package name, so a reload never sees stale modules.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from pyconvex.errors import PyconvexError
from pyconvex.server.functions import FunctionDefinition
from pyconvex.server.schema import SchemaDefinition

_counter = itertools.count(1)
SPECIAL_MODULES = ("schema", "http", "crons", "auth_config")


class ModuleLoadError(PyconvexError):
    """A module of the functions directory failed to import (the cause is chained)."""


@dataclass(slots=True)
class LoadedFunctions:
    """What a functions directory defines."""

    functions: dict[str, FunctionDefinition] = field(default_factory=dict)
    schema: SchemaDefinition | None = None
    package: str = ""
    modules: dict[str, ModuleType] = field(default_factory=dict)


def module_paths(functions_dir: Path) -> list[str]:
    """Module paths ("messages", "admin/users") of every .py file, sorted; skips _generated."""
    out = []
    for p in sorted(functions_dir.rglob("*.py")):
        rel = p.relative_to(functions_dir)
        parts = rel.with_suffix("").parts
        if any(part.startswith((".", "_")) for part in parts) or "node_modules" in parts:
            continue
        out.append("/".join(parts))
    return out


def load_functions(functions_dir: Path) -> LoadedFunctions:
    """Import every module of ``functions_dir`` and collect its functions and schema."""
    functions_dir = functions_dir.resolve()
    if not functions_dir.is_dir():
        raise ModuleLoadError(
            f"The functions directory {functions_dir} does not exist. Create it (pyconvex init) "
            "or set [tool.pyconvex] functions = '...' in pyproject.toml."
        )
    package = f"_pyconvex_fn_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(
        package,
        functions_dir / "__init__.py",
        submodule_search_locations=[str(functions_dir)],
    )
    assert spec is not None
    pkg = importlib.util.module_from_spec(spec)
    sys.modules[package] = pkg
    if (functions_dir / "__init__.py").exists():
        assert spec.loader is not None
        spec.loader.exec_module(pkg)
    logging.getLogger(package).setLevel(logging.DEBUG)
    loaded = LoadedFunctions(package=package)
    for mod_path in module_paths(functions_dir):
        dotted = mod_path.replace("/", ".")
        try:
            module = importlib.import_module(f"{package}.{dotted}")
        except Exception as e:
            raise ModuleLoadError(
                f"Importing convex/{mod_path}.py failed: {type(e).__name__}: {e}"
            ) from e
        loaded.modules[mod_path] = module
        if mod_path == "schema":
            schema = getattr(module, "schema", None) or getattr(module, "default", None)
            if schema is not None and not isinstance(schema, SchemaDefinition):
                raise ModuleLoadError(
                    "convex/schema.py must set `schema = define_schema({...})`, got "
                    f"{type(schema).__name__}."
                )
            loaded.schema = schema
        for name, value in vars(module).items():
            if name.startswith("_") or not isinstance(value, FunctionDefinition):
                continue
            if getattr(value.handler, "__module__", None) != module.__name__:
                continue  # imported from another module: registered there
            value.path = f"{mod_path}:{name}"
            loaded.functions[value.path] = value
    return loaded


def unload(loaded: LoadedFunctions) -> None:
    """Forget a loaded package's modules (after a reload swapped it out)."""
    prefix = loaded.package + "."
    for name in [m for m in sys.modules if m == loaded.package or m.startswith(prefix)]:
        del sys.modules[name]
