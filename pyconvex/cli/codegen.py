"""``pyconvex codegen``: write ``convex/_generated/`` (typed api, data model, server, api.js)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from pyconvex.failures import EXIT_FAILURE, EXIT_USAGE, CliFailure, render_failure
from pyconvex.project import ProjectError, ProjectSettings


def codegen() -> None:
    """Write convex/_generated/: typed `api` references, a TypedDict per table, ctx types and
    decorators bound to the schema, and api.js, api.d.ts and dataModel.d.ts (Doc, Id) for
    JavaScript and TypeScript frontends.

    Only files whose content changed are written; `pyconvex dev` does this on every save.
    """
    try:
        settings, changed = _generate()
    except CliFailure as failure:
        render_failure(failure)
        raise typer.Exit(failure.code) from None
    out = Console(highlight=False)
    generated = settings.functions_dir / "_generated"
    if not changed:
        out.print(f"{_shown(generated, settings.root)}/ is up to date.")
    for path in changed:
        out.print(f"wrote {_shown(path, settings.root)}")


def _generate() -> tuple[ProjectSettings, list[Path]]:
    try:
        settings = ProjectSettings.load(Path.cwd())
        settings.check()
    except ProjectError as e:
        raise CliFailure(
            "No pyconvex project here",
            detail=str(e),
            hint="Run pyconvex codegen in a project directory (pyconvex init creates one).",
            code=EXIT_USAGE,
        ) from None
    from pyconvex.codegen import CodegenError, generate
    from pyconvex.runtime.functions.loader import ModuleLoadError

    try:
        return settings, generate(settings.functions_dir)
    except ModuleLoadError as e:
        where = None
        if e.path is not None:
            where = _shown(e.path, settings.root) + (f":{e.line}" if e.line else "")
        raise CliFailure(
            "Could not load your functions",
            where=where,
            detail=e.details or str(e),
            hint="Fix the error and run pyconvex codegen again (the schema's modules are "
            "written as soon as convex/schema.py imports).",
            code=EXIT_FAILURE,
        ) from None
    except CodegenError as e:
        raise CliFailure(
            "Code generation failed",
            where=_shown(settings.functions_dir, settings.root) + "/",
            detail=str(e),
            hint="Rename the function or module named above and run pyconvex codegen again.",
            code=EXIT_FAILURE,
        ) from None


def _shown(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)
