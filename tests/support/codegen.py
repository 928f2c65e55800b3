"""Helpers for the codegen tests: the example project and golden files under tests/codegen/, and
tiny projects written inline.

    functions = write_project(tmp_path, {"schema.py": SCHEMA, "messages.py": MESSAGES})
    generate(functions)
"""

from __future__ import annotations

import textwrap
from pathlib import Path

CODEGEN = Path(__file__).resolve().parents[1] / "codegen"
#: The example project (schema, typed functions, an action, an internal module).
PROJECT = CODEGEN / "project"
#: What codegen writes for the example projects, checked in (PYCONVEX_UPDATE_GOLDENS=1 rewrites).
GOLDEN = CODEGEN / "golden"


def write_project(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (path under ``convex/`` -> dedented source) and return ``root/convex``."""
    functions = root / "convex"
    functions.mkdir(parents=True, exist_ok=True)
    for rel, source in files.items():
        path = functions / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip("\n"))
    return functions
