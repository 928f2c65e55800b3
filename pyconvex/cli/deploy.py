"""``pyconvex deploy``: send the functions directory to a running ``serve`` (or ``dev``).

The deployment computes the plan and switches (:mod:`pyconvex.dev.deployer`); this command
prepares the bundle (:func:`pyconvex.dev.bundle.prepare`), shows the plan, asks, and reports.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from pyconvex.cli.admin_command import AdminKeyOption, UrlOption, admin_client, reported_failures
from pyconvex.failures import EXIT_FAILURE, EXIT_USAGE, CliFailure, render_failure
from pyconvex.project import ProjectError, ProjectSettings

if TYPE_CHECKING:
    from pyconvex.dev.bundle import Bundle

out = Console(highlight=False)
NOTHING_CHANGED = "Nothing was changed on the deployment."


def deploy(
    url: UrlOption = None,
    admin_key: AdminKeyOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change, and change nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Deploy without asking.")] = False,
) -> None:
    """Deploy ./convex to a running deployment: the schema is checked against its data and the
    changes (tables, indexes, functions) shown before anything changes; new indexes are built
    before one atomic switch; connected clients stay connected and see the new code's results.
    """
    from pyconvex.dev.deploy_plan import DeployPlan, violation_from_json
    from pyconvex.dev.loop import violation_failure

    with reported_failures():
        settings = _settings()
        client = admin_client(url, admin_key)
        bundle = _prepare(settings)
        plan = DeployPlan.from_json(client.deploy_plan(bundle.to_json()))
        schema_file = f"{settings.functions_dir.name}/schema.py"
        out.print(f"Deploying {escape(settings.functions_dir.name)}/ to {escape(client.url)}")
        for line in plan.lines():
            out.print(escape(line))
        if plan.violations:
            for v in plan.violations:
                render_failure(violation_failure(v, schema_file, NOTHING_CHANGED))
            raise typer.Exit(EXIT_FAILURE)
        if not plan.changes:
            out.print("The deployment already serves this code: nothing to deploy.")
            return
        if dry_run:
            out.print(f"Dry run: {NOTHING_CHANGED[0].lower()}{NOTHING_CHANGED[1:]}")
            return
        _confirm(yes)
        outcome = client.deploy(bundle.to_json(), plan.base)
        if outcome.get("status") == "refused":
            for raw in outcome.get("violations", []):
                v = violation_from_json(raw)
                render_failure(violation_failure(v, schema_file, NOTHING_CHANGED))
            raise typer.Exit(EXIT_FAILURE)
    ms = float(outcome.get("switchMs", 0.0))
    out.print(
        f"Deployed {bundle.hash[:12]}: {escape(client.url)} serves the new code "
        f"(switched {ms:.0f} ms after the deploy was accepted)."
    )


def _settings() -> ProjectSettings:
    try:
        settings = ProjectSettings.load(Path.cwd())
        settings.check()
    except ProjectError as e:
        raise CliFailure("No pyconvex project here", detail=str(e), code=EXIT_USAGE) from None
    return settings


def _prepare(settings: ProjectSettings) -> Bundle:
    from pyconvex.codegen import CodegenError
    from pyconvex.dev.bundle import prepare
    from pyconvex.runtime.functions.loader import ModuleLoadError

    try:
        return prepare(settings.functions_dir)
    except (ModuleLoadError, CodegenError) as e:
        where = getattr(e, "path", None)
        raise CliFailure(
            "Could not load your functions",
            where=str(where) if where else None,
            detail=getattr(e, "details", "") or str(e),
            hint=f"Fix the error and deploy again. {NOTHING_CHANGED}",
        ) from None


def _confirm(yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliFailure(
            "Deploy needs a confirmation",
            detail="stdin is not a terminal, so pyconvex deploy cannot ask.",
            hint=f"Pass -y (--yes) to deploy without asking. {NOTHING_CHANGED}",
            code=EXIT_USAGE,
        )
    if not typer.confirm("Deploy?", default=False):
        raise CliFailure("Deploy cancelled", detail=NOTHING_CHANGED)
