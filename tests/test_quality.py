"""The codebase stays as STYLE.md asks: ruff- and mypy --strict-clean, layers importing one way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", "pyconvex", "tests", "bench", "--output-format", "concise")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = _run("mypy", "pyconvex")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_is_over_600_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "pyconvex").rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 600
    }
    assert not long, f"split these modules (STYLE.md: 600 lines at most): {long}"


CLIENT_FORBIDDEN = [
    "duckdb",
    "pyarrow",
    "libcst",
    "typer",
    "rich",
    "jinja2",
    "watchfiles",
    "starlette",
    "uvicorn",
    "pyconvex.runtime",
    "pyconvex.cli",
    "pyconvex.codegen",
]


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("pyconvex.runtime.functions.deployment", ["typer", "rich", "jinja2", "libcst", "watchfiles"]),
        ("pyconvex", ["duckdb", "typer", "rich", "starlette"]),
        ("pyconvex.values", ["duckdb", "starlette", "pyconvex.runtime"]),
        ("pyconvex.client", ["duckdb"]),
        # The client is usable from `pip install pyconvex` in any program: no engine, no
        # analytics, no code generation, no command line.
        (
            "pyconvex.client.blocking_client, pyconvex.client.async_client",
            CLIENT_FORBIDDEN,
        ),
        (
            "pyconvex.client.admin",
            ["duckdb", "typer", "rich", "starlette", "pyconvex.runtime", "httpx", "websockets"],
        ),
    ],
)
def test_layers_import_one_way(module: str, forbidden: list[str]) -> None:
    code = (
        f"import sys, {module}\n"
        f"bad = [m for m in {forbidden!r} if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "", f"importing {module} loaded {result.stdout.strip()}"


def test_values_layer_imports_nothing_above_it() -> None:
    # Importing pyconvex.values loads the package's author API too, so check the sources.
    for path in (ROOT / "pyconvex" / "values").glob("*.py"):
        text = path.read_text()
        for upper in ("pyconvex.server", "pyconvex.runtime", "pyconvex.cli", "pyconvex.client"):
            assert upper not in text, f"{path.name} imports {upper}"
