"""Writing ``convex/_generated/``: the schema's modules first, then the api modules.

User modules import ``._generated.server``, so ``data_model.py`` and ``server.py`` are
generated from ``schema.py`` alone (the loader's ``on_schema`` hook runs between importing
``schema.py`` and the other modules); ``api.py``, ``api.js`` and ``api.d.ts`` follow from the
loaded functions. Until then a missing ``api.py`` is written without functions (its ``api``
still hands out references by attribute, like Convex's ``anyApi``), so modules importing it
load. Only files whose content changed are written (atomically), so a save that changes
nothing touches nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from pyconvex.codegen.api_module import api_plan
from pyconvex.codegen.data_model import data_model_plan, table_types
from pyconvex.codegen.python_source import HEADER, render_module
from pyconvex.codegen.server_module import server_plan
from pyconvex.codegen.typescript import API_JS, api_dts
from pyconvex.codegen.typescript_data_model import data_model_dts
from pyconvex.runtime.functions.loader import LoadedFunctions, load_functions, unload
from pyconvex.server.schema import SchemaDefinition

GENERATED_DIR = "_generated"
INIT = f'{HEADER}\n"""Modules generated from convex/ by ``pyconvex codegen``: data_model, server, api."""\n'


def generate(functions_dir: Path) -> list[Path]:
    """Write ``functions_dir/_generated/`` for the project; the files that changed.

    >>> generate(Path("convex"))  # doctest: +SKIP
    [PosixPath('convex/_generated/api.py')]

    Raises :class:`~pyconvex.runtime.functions.loader.ModuleLoadError` when a module (``schema.py``
    included) fails to import, with the schema's modules written if ``schema.py`` imported;
    :class:`~pyconvex.codegen.errors.CodegenError` when a function and a module clash in
    ``api``.
    """
    changed: list[Path] = []

    def on_schema(schema: SchemaDefinition | None) -> None:
        changed.extend(generate_schema_modules(functions_dir, schema))

    loaded = load_functions(functions_dir, on_schema=on_schema)
    try:
        changed += generate_api_modules(functions_dir, loaded)
    finally:
        unload(loaded)
    return list(dict.fromkeys(changed))


def generate_schema_modules(functions_dir: Path, schema: SchemaDefinition | None) -> list[Path]:
    """Write ``__init__.py``, ``data_model.py``, ``server.py`` and ``dataModel.d.ts`` for
    ``schema`` (None: the project has no schema), and an ``api.py`` without functions if there
    is none yet; the files that changed."""
    tables = table_types(schema)
    data_model, known = data_model_plan(schema, tables)
    files = {
        "__init__.py": INIT,
        "data_model.py": render_module(data_model),
        "server.py": render_module(server_plan(tables)),
        "dataModel.d.ts": data_model_dts(schema),
    }
    directory = functions_dir / GENERATED_DIR
    if not (directory / "api.py").exists():
        files["api.py"] = render_module(api_plan([], known))
    return write_changed(directory, files)


def generate_api_modules(functions_dir: Path, loaded: LoadedFunctions) -> list[Path]:
    """Write ``api.py``, ``api.js`` and ``api.d.ts`` for already loaded functions (as the dev
    loop has them); the files that changed."""
    tables = table_types(loaded.schema)
    _, known = data_model_plan(loaded.schema, tables)
    functions = list(loaded.functions.values())
    files = {
        "api.py": render_module(api_plan(functions, known)),
        "api.js": API_JS,
        "api.d.ts": api_dts(functions),
    }
    return write_changed(functions_dir / GENERATED_DIR, files)


def write_changed(directory: Path, files: dict[str, str]) -> list[Path]:
    """Write each file whose content differs (via a temporary file and a rename, so readers
    never see half a file); the paths written, in ``files`` order."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in files.items():
        path = directory / name
        data = text.encode()
        try:
            if path.read_bytes() == data:
                continue
        except FileNotFoundError:
            pass
        tmp = directory / f".{name}.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, path)
        changed.append(path)
    return changed
