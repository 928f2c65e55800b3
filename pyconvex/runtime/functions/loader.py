"""Loading a functions directory (``convex/``) into ``module:function`` paths, and reloading it.

The directory is imported as a package under a private, unique name (``_pyconvex_fn_<n>``), so
user module names never clash with installed packages — ``convex/`` next to the official
``convex`` PyPI client included — and relative imports (``from ._generated.server import
query``) work::

    loaded = load_functions(Path("convex"))
    loaded.functions["messages:send"]          # a FunctionDefinition
    loaded = load_functions(Path("convex"), previous=loaded)   # after an edit

A reload given the ``previous`` load re-executes only what changed and the modules that import
it (found from their ``import`` statements), in the same package; every other module object is
reused. Sources are compiled from the bytes read when the change was detected (no ``.pyc``,
whose one-second mtime check can miss a quick second save). A load that fails leaves
``sys.modules`` as it was, so the code serving keeps working. A change to the package's
``__init__.py`` reloads everything under a fresh package name.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import itertools
import logging
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from pyconvex.errors import PyconvexError
from pyconvex.runtime.auth.providers import AuthConfigError, Provider, parse_providers
from pyconvex.runtime.functions.function_path import function_ref_path, normalize_path
from pyconvex.runtime.functions.module_sources import (
    SourceFile,
    SourceLoader,
    changed_names,
    differs,
    finder,
    importers,
    is_within,
    scan,
)
from pyconvex.server.crons import Crons
from pyconvex.server.functions import FunctionDefinition
from pyconvex.server.http_router import HttpRouter
from pyconvex.server.schema import SchemaDefinition
from pyconvex.values import to_value

_counter = itertools.count(1)
SPECIAL_MODULES = ("schema", "http", "crons", "auth_config")


class ModuleLoadError(PyconvexError):
    """A module of the functions directory failed to import (the cause is chained).

    ``path`` and ``line`` point at the user's code where it failed (the innermost frame in the
    functions directory, or the syntax error's position); ``details`` is the traceback limited
    to the user's files.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | None = None,
        line: int | None = None,
        details: str = "",
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.details = details


@dataclass(slots=True)
class LoadedFunctions:
    """What a functions directory defines."""

    functions: dict[str, FunctionDefinition] = field(default_factory=dict)
    schema: SchemaDefinition | None = None
    package: str = ""
    modules: dict[str, ModuleType] = field(default_factory=dict)
    functions_dir: Path | None = None
    #: Every source file, by dotted name, as this load saw it (the next reload diffs them).
    files: dict[str, SourceFile] = field(default_factory=dict)
    #: Dotted names of the modules this load (re)executed, and of the files gone since the
    #: previous load: both empty when nothing had changed.
    executed: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()
    #: With ``keep_going``: the modules that failed to import (their functions are missing).
    errors: list[ModuleLoadError] = field(default_factory=list)
    #: ``crons`` of ``crons.py`` (None without one).
    crons: Crons | None = None
    #: ``http`` of ``http.py``: the HTTP action routes (None without one).
    http: HttpRouter | None = None
    #: ``providers`` of ``auth_config.py``: who may sign users in (none without one).
    auth_providers: list[Provider] = field(default_factory=list)


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


def _exported(files: dict[str, SourceFile]) -> list[str]:
    """Module paths of the files whose functions are served (as :func:`module_paths`)."""
    names = (
        name.split(".")
        for name, f in files.items()
        if not f.is_package and not any(p.startswith("_") for p in name.split("."))
    )
    return sorted("/".join(parts) for parts in names)


def load_functions(
    functions_dir: Path,
    *,
    previous: LoadedFunctions | None = None,
    changed: Iterable[Path] = (),
    on_schema: Callable[[SchemaDefinition | None], None] | None = None,
    keep_going: bool = False,
) -> LoadedFunctions:
    """Import every module of ``functions_dir`` and collect its functions and schema.

    With ``previous`` (a load of the same directory), only changed modules and their importers
    are executed again; ``changed`` names files known to have changed (they are re-read even if
    their size and mtime look the same). ``on_schema`` runs after ``schema.py`` is imported and
    before any other module (codegen writes ``_generated/server.py`` there).
    Raises :class:`ModuleLoadError`; ``sys.modules`` is then as it was before the call.
    ``keep_going`` collects the failures of function modules in ``errors`` instead (what
    codegen needs to bootstrap ``_generated/api.py`` for modules that import it).
    """
    functions_dir = functions_dir.resolve()
    if not functions_dir.is_dir():
        raise ModuleLoadError(
            f"The functions directory {functions_dir} does not exist. Create it (pyconvex init) "
            "or set [tool.pyconvex] functions = '...' in pyproject.toml."
        )
    forced = {p.resolve() for p in changed}
    incremental = (
        previous is not None
        and previous.functions_dir == functions_dir
        and previous.package in sys.modules
        and previous.package in finder.packages
    )
    old_files = previous.files if previous is not None and incremental else {}
    files = scan(functions_dir, old_files, forced)
    if incremental and differs(old_files.get(""), files.get("")):
        incremental = False  # the package's own __init__ changed: start afresh
    if incremental:
        assert previous is not None
        load = _Load(functions_dir, previous.package, files, old_files, forced)
    else:
        load = _Load(functions_dir, f"_pyconvex_fn_{next(_counter)}", files, {}, forced)
    load.keep_going = keep_going
    return load.run(on_schema)


def unload(loaded: LoadedFunctions) -> None:
    """Forget a loaded package's modules (after a reload under a new package swapped it out)."""
    prefix = loaded.package + "."
    for name in [m for m in sys.modules if m == loaded.package or m.startswith(prefix)]:
        del sys.modules[name]
    finder.packages.pop(loaded.package, None)


# -- one load ------------------------------------------------------------------------------------


class _Load:
    """Executes the modules a load needs, and undoes everything if one of them fails."""

    def __init__(
        self,
        functions_dir: Path,
        package: str,
        files: dict[str, SourceFile],
        old_files: dict[str, SourceFile],
        forced: set[Path],
    ) -> None:
        self.dir = functions_dir
        self.package = package
        self.files = files
        self.old_files = old_files
        self.forced = forced
        self.fresh_package = package not in sys.modules
        self.saved_modules: dict[str, ModuleType | None] = {}
        self.saved_attrs: list[tuple[ModuleType, str, object]] = []
        self.old_sources = finder.packages.get(package)
        self.dirty: set[str] = set()
        self.keep_going = False

    def run(self, on_schema: Callable[[SchemaDefinition | None], None] | None) -> LoadedFunctions:
        finder.install()
        try:
            if self.fresh_package:
                self._create_package()
            self._invalidate(changed_names(self.old_files, self.files))
            schema = self._load_schema()
            if on_schema is not None:
                on_schema(schema)
                # It may have (re)written generated modules: pick those up before importing.
                files = scan(self.dir, self.files, self.forced)
                self._invalidate(changed_names(self.files, files), files)
                if "schema" in self.dirty and "schema" not in sys.modules:
                    schema = self._load_schema()
            loaded = self._load_modules(schema)
        except BaseException:
            self._rollback()
            raise
        return loaded

    def _create_package(self) -> None:
        init = self.files.get("")
        spec = importlib.util.spec_from_file_location(
            self.package,
            self.dir / "__init__.py",
            loader=SourceLoader(init) if init is not None else None,
            submodule_search_locations=[str(self.dir)],
        )
        assert spec is not None
        pkg = importlib.util.module_from_spec(spec)
        finder.packages[self.package] = self.files
        sys.modules[self.package] = pkg
        self.dirty = set(self.files)
        if init is not None:
            exec_user_module(init, pkg, self.dir)
        logging.getLogger(self.package).setLevel(logging.DEBUG)

    def _invalidate(self, changed: set[str], files: dict[str, SourceFile] | None = None) -> None:
        """Forget every module that changed or imports one that did, so importing runs it."""
        if files is not None:
            self.files = files
        finder.packages[self.package] = self.files
        if self.fresh_package and files is None:
            return  # everything runs anyway
        dirty = importers(self.files, changed) - self.dirty
        for name in sorted(dirty, key=len, reverse=True):
            full = f"{self.package}.{name}"
            if full not in self.saved_modules:
                self.saved_modules[full] = sys.modules.get(full)
            sys.modules.pop(full, None)
            parent_name, _, attr = full.rpartition(".")
            parent = sys.modules.get(parent_name)
            if parent is not None and attr in vars(parent):
                self.saved_attrs.append((parent, attr, vars(parent)[attr]))
                delattr(parent, attr)
        self.dirty |= dirty

    def _import(self, name: str) -> ModuleType:
        try:
            return importlib.import_module(f"{self.package}.{name}")
        except ModuleLoadError:
            raise
        except Exception as e:
            raise _load_error(self.dir, name, e) from e

    def _load_schema(self) -> SchemaDefinition | None:
        if "schema" not in self.files:
            return None
        module = self._import("schema")
        schema = getattr(module, "schema", None) or getattr(module, "default", None)
        if schema is not None and not isinstance(schema, SchemaDefinition):
            raise ModuleLoadError(
                f"{self.dir.name}/schema.py must set `schema = define_schema({{...}})`, got "
                f"{type(schema).__name__}.",
                path=self.dir / "schema.py",
            )
        return schema

    def _load_modules(self, schema: SchemaDefinition | None) -> LoadedFunctions:
        loaded = LoadedFunctions(
            schema=schema,
            package=self.package,
            functions_dir=self.dir,
            files=self.files,
            executed=frozenset(self.dirty & set(self.files)),
            removed=frozenset(set(self.old_files) - set(self.files)),
        )
        for mod_path in _exported(self.files):
            try:
                module = self._import(mod_path.replace("/", "."))
            except ModuleLoadError as e:
                if not self.keep_going:
                    raise
                loaded.errors.append(e)
                continue
            loaded.modules[mod_path] = module
            for name, value in vars(module).items():
                if name.startswith("_") or not isinstance(value, FunctionDefinition):
                    continue
                if getattr(value.handler, "__module__", None) != module.__name__:
                    continue  # imported from another module: registered there
                value.path = f"{mod_path}:{name}"
                loaded.functions[value.path] = value
        self._load_crons(loaded)
        self._load_http(loaded)
        self._load_auth(loaded)
        return loaded

    def _load_auth(self, loaded: LoadedFunctions) -> None:
        """``providers`` of ``auth_config.py``, each entry checked."""
        module = loaded.modules.get("auth_config")
        if module is None:
            return
        raw = getattr(module, "providers", None)
        try:
            loaded.auth_providers = parse_providers(raw, f"{self.dir.name}/auth_config.py")
        except AuthConfigError as e:
            error = ModuleLoadError(str(e), path=self.dir / "auth_config.py")
            if not self.keep_going:
                raise error from None
            loaded.errors.append(error)

    def _load_http(self, loaded: LoadedFunctions) -> None:
        """``http`` of ``http.py`` (an HttpRouter)."""
        module = loaded.modules.get("http")
        if module is None:
            return
        router = getattr(module, "http", None)
        if router is None:
            router = getattr(module, "default", None)
        if router is None or isinstance(router, HttpRouter):
            loaded.http = router
            return
        error = ModuleLoadError(
            f"{self.dir.name}/http.py must set `http = HttpRouter()`, got {type(router).__name__}.",
            path=self.dir / "http.py",
        )
        if not self.keep_going:
            raise error
        loaded.errors.append(error)

    def _load_crons(self, loaded: LoadedFunctions) -> None:
        """``crons`` of ``crons.py``, each job naming a mutation or action that exists."""
        module = loaded.modules.get("crons")
        if module is None:
            return
        where = self.dir / "crons.py"
        crons = getattr(module, "crons", None)
        if crons is None:
            crons = getattr(module, "default", None)
        if crons is None:
            return  # no cron jobs (yet)
        problem = None
        if not isinstance(crons, Crons):
            problem = f"must set `crons = Crons()`, got {type(crons).__name__}"
        else:
            for job in crons:
                problem = _cron_problem(job.name, job.function, job.args, loaded.functions)
                if problem is not None:
                    break
        if problem is None:
            loaded.crons = crons
            return
        error = ModuleLoadError(f"{self.dir.name}/crons.py {problem}.", path=where)
        if not self.keep_going:
            raise error
        loaded.errors.append(error)

    def _rollback(self) -> None:
        if self.fresh_package:
            prefix = self.package + "."
            for name in [m for m in sys.modules if m == self.package or m.startswith(prefix)]:
                del sys.modules[name]
            finder.packages.pop(self.package, None)
            return
        for name in self.dirty:
            sys.modules.pop(f"{self.package}.{name}", None)
        for full, module in self.saved_modules.items():
            if module is not None:
                sys.modules[full] = module
        for parent, attr, value in reversed(self.saved_attrs):
            setattr(parent, attr, value)
        if self.old_sources is not None:
            finder.packages[self.package] = self.old_sources


def _cron_problem(
    name: str, fn: object, args: Mapping[str, object], functions: dict[str, FunctionDefinition]
) -> str | None:
    try:
        path = normalize_path(function_ref_path(fn))
    except (PyconvexError, ValueError) as e:
        return f"has cron {name!r} with a function that is not one: {e}"
    found = functions.get(path)
    if found is None:
        return f"has cron {name!r} running {path}, which does not exist"
    try:
        to_value(dict(args))
    except (PyconvexError, ValueError) as e:
        return f"has cron {name!r} with arguments that are not Convex values: {e}"
    if found.kind not in ("mutation", "action"):
        return f"has cron {name!r} running {path}, a {found.kind}: crons run mutations and actions"
    return None


def _load_error(functions_dir: Path, name: str, e: BaseException) -> ModuleLoadError:
    """An import failure pointing at the user's code (their frames only in the traceback)."""
    rel = name.replace(".", "/") if name else "__init__"
    where_path: Path | None = None
    where_line: int | None = None
    frames = [
        f
        for f in traceback.extract_tb(e.__traceback__)
        if is_within(Path(f.filename), functions_dir)
    ]
    if frames:
        where_path, where_line = Path(frames[-1].filename), frames[-1].lineno
    if isinstance(e, SyntaxError) and e.filename and is_within(Path(e.filename), functions_dir):
        where_path, where_line = Path(e.filename), e.lineno
    details = "".join(traceback.format_list(frames))
    details += "".join(traceback.format_exception_only(type(e), e))
    location = ""
    if where_path is not None:
        shown = f"{functions_dir.name}/{where_path.relative_to(functions_dir).as_posix()}"
        location = f" ({shown}:{where_line})" if where_line else f" ({shown})"
    return ModuleLoadError(
        f"Importing {functions_dir.name}/{rel}.py failed{location}: {type(e).__name__}: {e}",
        path=where_path,
        line=where_line,
        details=details,
    )


def exec_user_module(source: SourceFile, module: ModuleType, functions_dir: Path) -> None:
    try:
        SourceLoader(source).exec_module(module)
    except Exception as e:
        raise _load_error(functions_dir, source.name, e) from e
