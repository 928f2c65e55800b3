"""One hierarchy: every exception class pyconvex defines derives from PyconvexError."""

from __future__ import annotations

import importlib
import inspect
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
