"""One hierarchy: every exception class pyconvex defines derives from PyconvexError."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

from pyconvex.errors import PyconvexError

PACKAGE = Path(__file__).resolve().parent.parent / "pyconvex"


def _modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if "templates" in parts or "_generated" in parts or parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_exception_class_is_a_pyconvex_error() -> None:
    outside = []
    seen = 0
    for name in _modules():
        module = importlib.import_module(name)
        for cls_name, cls in vars(module).items():
            if (
                inspect.isclass(cls)
                and issubclass(cls, BaseException)
                and cls.__module__ == module.__name__
            ):
                seen += 1
                if not issubclass(cls, PyconvexError):
                    outside.append(f"{name}.{cls_name}")
    assert seen > 20  # the walk found the package's exceptions
    assert outside == []


def test_value_errors_stay_value_errors() -> None:
    # Callers (and users) catch these as ValueError.
    from pyconvex.errors import InvalidValueError, ValidationError
    from pyconvex.runtime.functions.env_vars import EnvVarError

    for cls in (InvalidValueError, ValidationError, EnvVarError):
        assert issubclass(cls, ValueError) and issubclass(cls, PyconvexError)


PROMISES = re.compile(
    r"later issue|later (pyconvex )?version|future version|coming (soon|in)", re.I
)


def test_no_message_promises_a_future_version() -> None:
    # A missing feature says plainly "pyconvex does not support X" (docstrings may plan ahead).
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and PROMISES.search(node.value)
            ):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.value[:80]}")
    assert found == []
