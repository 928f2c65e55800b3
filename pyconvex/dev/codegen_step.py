"""Codegen in the dev loop: ``pyconvex.codegen``'s two steps, run only when their inputs change.

``_generated/server.py`` and ``data_model.py`` follow from the schema alone, ``api.py`` & co.
from the schema and each function's signature; most saves change a function body, which needs
neither. What ``_generated/`` was last written from is also kept in ``<data_dir>/codegen.json``
(with a hash of each generated file), so a restart with nothing changed skips codegen — and
importing libcst, a good part of ``pyconvex dev``'s start-up.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyconvex.runtime.functions.loader import LoadedFunctions, load_functions, unload
from pyconvex.runtime.functions.schema_push import schema_json
from pyconvex.server.schema import SchemaDefinition

SchemaStep = Callable[[Path, SchemaDefinition | None], object]
ApiStep = Callable[[Path, LoadedFunctions], object]
CACHE_FILE = "codegen.json"
_LAZY: Any = object()


class Codegen:
    """``pyconvex.codegen``'s split steps, imported on first use (None: not available)."""

    _schema_step: Any = _LAZY
    _api_step: Any = _LAZY

    @property
    def schema_step(self) -> SchemaStep | None:
        if self._schema_step is _LAZY:
            self._resolve()
        step: SchemaStep | None = self._schema_step
        return step

    @schema_step.setter
    def schema_step(self, step: SchemaStep | None) -> None:
        self._schema_step = step

    @property
    def api_step(self) -> ApiStep | None:
        if self._api_step is _LAZY:
            self._resolve()
        step: ApiStep | None = self._api_step
        return step

    @api_step.setter
    def api_step(self, step: ApiStep | None) -> None:
        self._api_step = step

    def _resolve(self) -> None:
        from pyconvex import codegen  # libcst: imported only when something is generated

        if self._schema_step is _LAZY:
            self._schema_step = codegen.generate_schema_modules
        if self._api_step is _LAZY:
            self._api_step = codegen.generate_api_modules


class DevCodegen:
    """Runs the codegen steps for one functions directory when (and only when) needed."""

    def __init__(self, functions_dir: Path, cache_dir: Path | None, codegen: Codegen) -> None:
        self.functions_dir = functions_dir
        self.generated = functions_dir / "_generated"
        self.codegen = codegen
        self.cache_path = None if cache_dir is None else cache_dir / CACHE_FILE
        self._written: dict[str, str] = {}  # step -> fingerprint it last wrote (or found fresh)
        self._disk = self._read_cache()

    def schema_modules(self, schema: SchemaDefinition | None) -> None:
        """The loader's ``on_schema`` hook: write ``server.py`` & co. if the schema changed."""
        fingerprint = json.dumps(schema_json(schema), sort_keys=True)
        if self._fresh("schema", fingerprint, "server.py"):
            return
        step = self.codegen.schema_step
        if step is not None:
            step(self.functions_dir, schema)
            self._record("schema", fingerprint)

    def api_modules(self, loaded: LoadedFunctions) -> bool:
        """Write ``api.py`` & co. if a signature changed; whether it ran (reload then)."""
        fingerprint = api_fingerprint(loaded)
        if self._fresh("api", fingerprint, "api.py"):
            return False
        step = self.codegen.api_step
        if step is None:
            return False
        step(self.functions_dir, loaded)
        self._record("api", fingerprint)
        return True

    def bootstrap(self) -> bool:
        """Write ``api.py`` from the modules that do import, for those that import it before it
        lists them (or exists). False when there is no codegen to do it."""
        step = self.codegen.api_step
        if step is None:
            return False
        probe = load_functions(self.functions_dir, on_schema=self.schema_modules, keep_going=True)
        try:
            step(self.functions_dir, probe)
        finally:
            unload(probe)
        self._written.pop("api", None)
        return True

    # -- what was generated from what ------------------------------------------------------

    def _fresh(self, step: str, fingerprint: str, output: str) -> bool:
        if self._written.get(step) == fingerprint and (self.generated / output).exists():
            return True
        disk = self._disk
        if (
            disk.get(step) == fingerprint
            and disk.get("stamp") == _codegen_stamp()
            and disk.get("files") == _hashes(self.generated)
        ):
            self._written[step] = fingerprint
            return True
        return False

    def _record(self, step: str, fingerprint: str) -> None:
        self._written[step] = fingerprint
        if self.cache_path is None:
            return
        self._disk = {
            **self._disk,
            step: fingerprint,
            "stamp": _codegen_stamp(),
            "files": _hashes(self.generated),
        }
        # The other step's record only stays valid if its files are unchanged: they are
        # hashed together, so it does (its own outputs were not rewritten by this step).
        with contextlib.suppress(OSError):
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._disk, sort_keys=True))
            os.replace(tmp, self.cache_path)

    def _read_cache(self) -> dict[str, Any]:
        if self.cache_path is None:
            return {}
        try:
            data = json.loads(self.cache_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


def api_fingerprint(loaded: LoadedFunctions) -> str:
    """Everything ``_generated/api.py`` is made of: the schema and each function's signature."""
    functions = [
        (
            path,
            fn.kind,
            fn.visibility,
            None if fn.args is None else fn.args.to_json(),
            None if fn.returns is None else fn.returns.to_json(),
            sorted(fn.extra),
        )
        for path, fn in sorted(loaded.functions.items())
    ]
    return json.dumps([schema_json(loaded.schema), functions], sort_keys=True, default=repr)


def _hashes(directory: Path) -> dict[str, str]:
    out = {}
    with contextlib.suppress(FileNotFoundError):
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            if entry.is_file() and not entry.name.startswith("."):
                out[entry.name] = hashlib.sha256(Path(entry.path).read_bytes()).hexdigest()
    return out


def _codegen_stamp() -> str:
    """Which codegen wrote the files: its source files' sizes and mtimes (without importing it)."""
    spec = importlib.util.find_spec("pyconvex.codegen")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    parts = []
    for location in locations:
        with contextlib.suppress(FileNotFoundError):
            for entry in sorted(os.scandir(location), key=lambda e: e.name):
                if entry.name.endswith(".py"):
                    st = entry.stat()
                    parts.append(f"{entry.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()
