"""A new project: the template rendered, then ``convex/_generated/`` written by codegen.

result = create_project(Path("myapp"), "chat")
result.files       # the template's files
result.generated   # convex/_generated/...
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pyconvex import __version__
from pyconvex.scaffold.template_dir import DEFAULT_TEMPLATE, ScaffoldError, render_template

FUNCTIONS_DIR = "convex"


@dataclass(slots=True)
class InitResult:
    """What :func:`create_project` wrote."""

    root: Path
    template: str
    project_name: str
    files: list[Path] = field(default_factory=list)
    generated: list[Path] = field(default_factory=list)


def project_name_for(root: Path) -> str:
    """A valid distribution name from a directory name: ``"My App!"`` -> ``"my-app"``."""
    name = re.sub(r"[^a-z0-9._-]+", "-", root.resolve().name.lower()).strip("-._")
    return name or "pyconvex-app"


def create_project(
    root: Path,
    template: str = DEFAULT_TEMPLATE,
    *,
    force: bool = False,
    project_name: str | None = None,
) -> InitResult:
    """Render ``template`` into ``root`` and generate ``convex/_generated/`` for it.

    Raises :class:`~pyconvex.scaffold.template_dir.TemplateExistsError` rather than overwrite a file
    (unless ``force``), and :class:`ScaffoldError` when codegen fails (the rendered files stay:
    fix the cause and run ``pyconvex codegen``).
    """
    name = project_name or project_name_for(root)
    context = {"project_name": name, "pyconvex_version": __version__, "template": template}
    result = InitResult(root, template, name)
    result.files = render_template(template, root, context, force=force)
    result.generated = _codegen(root / FUNCTIONS_DIR)
    return result


def _codegen(functions_dir: Path) -> list[Path]:
    # Imported here: the CLI imports this module for every command, and libcst takes ~150 ms.
    from pyconvex.codegen import generate

    try:
        return generate(functions_dir)
    except Exception as e:
        raise ScaffoldError(
            f"The project was created, but generating {functions_dir / '_generated'} failed: "
            f"{type(e).__name__}: {e}\nFix the cause, then run `pyconvex codegen` in the project."
        ) from e
