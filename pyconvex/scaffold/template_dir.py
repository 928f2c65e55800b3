"""Rendering one template directory of ``pyconvex/templates/`` into a destination directory.

Every file of a template is a jinja2 template named ``<output name>.jinja`` (so the package's
ruff and mypy never mistake a template for code); a path part ``dot-x`` becomes ``.x``
(``dot-gitignore.jinja`` -> ``.gitignore``), because a real ``.gitignore`` inside the package
would apply to this repository::

    render_template("blank", Path("myapp"), {"project_name": "myapp"})
    # [Path('myapp/.gitignore'), Path('myapp/README.md'), Path('myapp/convex/__init__.py'), ...]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pyconvex.errors import PyconvexError

DEFAULT_TEMPLATE = "chat"
SUFFIX = ".jinja"
_DOT = "dot-"


class ScaffoldError(PyconvexError):
    """A template is unknown or cannot be rendered, or the destination is unusable."""


class TemplateExistsError(ScaffoldError):
    """Rendering would overwrite files that exist with other contents (``existing``, relative
    paths)."""

    def __init__(self, dest: Path, existing: list[str]) -> None:
        self.dest = dest
        self.existing = existing
        shown = ", ".join(existing[:8]) + (", ..." if len(existing) > 8 else "")
        super().__init__(
            f"{dest} already has {len(existing)} of the template's files, with other contents: "
            f"{shown}"
        )


def _root() -> Traversable:
    return files("pyconvex").joinpath("templates")


def template_names() -> list[str]:
    """The templates shipped with pyconvex, sorted (``["blank", "chat", "tasks"]``)."""
    return sorted(
        entry.name
        for entry in _root().iterdir()
        if entry.is_dir() and not entry.name.startswith(("_", "."))
    )


def _template_dir(name: str) -> Traversable:
    names = template_names()
    if name not in names:
        raise ScaffoldError(f"Unknown template {name!r}; the templates are: {', '.join(names)}.")
    return _root().joinpath(name)


def _walk(
    entry: Traversable, prefix: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], Traversable]]:
    for child in sorted(entry.iterdir(), key=lambda c: c.name):
        if child.name == "__pycache__" or child.name.startswith("."):
            continue
        if child.is_dir():
            yield from _walk(child, (*prefix, _output_part(child.name)))
        elif child.name.endswith(SUFFIX):
            yield (*prefix, _output_part(child.name[: -len(SUFFIX)])), child


def _output_part(part: str) -> str:
    return "." + part[len(_DOT) :] if part.startswith(_DOT) else part


def planned_files(name: str) -> list[str]:
    """The files template ``name`` writes, as sorted relative POSIX paths."""
    return sorted("/".join(parts) for parts, _ in _walk(_template_dir(name), ()))


def render_template(
    name: str, dest: Path, context: Mapping[str, Any], *, force: bool = False
) -> list[Path]:
    """Render template ``name`` into ``dest`` (created if needed); returns the template's files.

    Refuses with :class:`TemplateExistsError` when any of the files exists with other contents,
    unless ``force``; a file that is already exactly as rendered is left alone (so rendering
    again into an untouched project does nothing), and other files in ``dest`` are never
    touched. Every file is rendered before the
    first is written, so a template error leaves ``dest`` unchanged.
    """
    if dest.exists() and not dest.is_dir():
        raise ScaffoldError(f"{dest} exists and is not a directory; choose another directory.")
    # Imported here: every CLI command imports this module, and jinja2 costs ~50 ms to load.
    import jinja2

    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    rendered: list[tuple[str, str]] = []
    for parts, source in _walk(_template_dir(name), ()):
        rel = "/".join(parts)
        try:
            text = env.from_string(source.read_text(encoding="utf-8")).render(**context)
        except jinja2.TemplateError as e:
            raise ScaffoldError(f"Template {name}/{rel}{SUFFIX} failed to render: {e}") from e
        rendered.append((rel, text))
    existing = [
        rel for rel, text in rendered if (dest / rel).exists() and not _same(dest / rel, text)
    ]
    if existing and not force:
        raise TemplateExistsError(dest, existing)
    files = []
    for rel, text in rendered:
        path = dest / rel
        files.append(path)
        if rel not in existing and path.exists():
            continue  # already as rendered
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return files


def _same(path: Path, text: str) -> bool:
    try:
        return path.is_file() and path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False
