"""Each scaffold as a user gets it: rendered, codegen run, then its own tests, `mypy --strict`
and ruff run on it in subprocesses — what `pyconvex init` promises works out of the box."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pyconvex.scaffold import create_project

TEMPLATES = ["blank", "chat", "tasks"]


@pytest.fixture(scope="module", params=TEMPLATES)
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scaffold") / f"my-{request.param}"
    create_project(root, request.param)
    return root


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One cache for the three projects: pyconvex itself is checked once.
    return tmp_path_factory.mktemp("mypy-cache")


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_codegen_wrote_the_generated_modules(project: Path) -> None:
    generated = project / "convex" / "_generated"
    for name in ("__init__.py", "api.py", "data_model.py", "server.py", "api.js", "api.d.ts"):
        assert (generated / name).is_file(), name


@pytest.mark.timeout(600)
def test_the_scaffolds_own_tests_pass(project: Path) -> None:
    result = run(project, "pytest", "-q", "-p", "no:cacheprovider")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "skipped" not in result.stdout


@pytest.mark.timeout(600)
def test_mypy_strict_passes_on_the_functions_and_tests(project: Path, mypy_cache: Path) -> None:
    result = run(project, "mypy", "--strict", "--cache-dir", str(mypy_cache), "convex", "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean_on_the_scaffold(project: Path) -> None:
    check = run(project, "ruff", "check", "--output-format", "concise", ".")
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = run(project, "ruff", "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


PROBE = """
from pyconvex.testing import ConvexTest

from convex._generated.api import api


async def probe(t: ConvexTest) -> None:
    await t.mutation(api.notes.add, {"body": 3})
    notes = await t.query(api.notes.recent, {})
    print(notes[0]["bodyy"])
    # Fine: a result used where a supertype is expected (references are covariant in it).
    print(len(await t.query(api.notes.recent, {})))
"""


@pytest.mark.timeout(600)
def test_mypy_catches_wrong_arguments_and_fields_in_tests(
    tmp_path_factory: pytest.TempPathFactory, mypy_cache: Path
) -> None:
    # ConvexTest is typed by the generated references, like ctx.run_query.
    root = tmp_path_factory.mktemp("probe") / "app"
    create_project(root, "blank")
    (root / "probe.py").write_text(PROBE)
    result = run(root, "mypy", "--strict", "--cache-dir", str(mypy_cache), "probe.py")
    assert result.returncode == 1
    assert 'incompatible type "dict[str, int]"; expected "NotesAddArgs' in result.stdout
    assert '"NotesDoc" has no key "bodyy"' in result.stdout, result.stdout
    assert "Found 2 errors" in result.stdout, result.stdout


# A wrong table name, a wrong field type in insert and a wrong argument type through api.x.y,
# in a module of each scaffold: mypy --strict must flag exactly the marked lines.
MISTAKES = {
    "blank": (
        "notes",
        '{"body": 1, "author": "a"}',
        "api.notes.add",
        '{"body": 1}',
        "",
    ),
    "chat": (
        "users",
        '{"name": 1, "email": "e"}',
        "api.messages.send",
        '{"conversation_id": c, "sender_id": u, "content": 1}',
        'c: Id[Literal["conversations"]], u: Id[Literal["users"]]',
    ),
    "tasks": (
        "users",
        '{"name": 1, "email": "e"}',
        "api.tasks.create",
        '{"project_id": p, "title": 1}',
        'p: Id[Literal["projects"]]',
    ),
}

MISTAKES_MODULE = """
from typing import Literal

from pyconvex import Id

from ._generated.api import api
from ._generated.server import ActionCtx, MutationCtx, QueryCtx, action, mutation, query


@query
async def wrong_table(ctx: QueryCtx) -> int:
    docs = await ctx.db.query("{table}s_typo").collect()  # error
    return len(docs)


@mutation
async def wrong_field(ctx: MutationCtx) -> None:
    await ctx.db.insert("{table}", {doc})  # error


@action
async def wrong_argument(ctx: ActionCtx, {params}) -> None:
    await ctx.run_mutation({ref}, {args})  # error
"""


@pytest.mark.timeout(600)
@pytest.mark.parametrize("template", TEMPLATES)
def test_mypy_flags_wrong_table_field_and_argument_in_each_scaffold(
    template: str, tmp_path_factory: pytest.TempPathFactory, mypy_cache: Path
) -> None:
    root = tmp_path_factory.mktemp("mistakes") / f"app-{template}"
    create_project(root, template)
    table, doc, ref, args, params = MISTAKES[template]
    source = MISTAKES_MODULE.format(table=table, doc=doc, ref=ref, args=args, params=params)
    source = source.replace("ctx: ActionCtx, )", "ctx: ActionCtx)")
    (root / "convex" / "mistakes.py").write_text(source)
    marked = {i for i, line in enumerate(source.splitlines(), 1) if line.endswith("# error")}
    result = run(root, "mypy", "--strict", "--cache-dir", str(mypy_cache), "convex")
    assert result.returncode == 1, result.stdout
    flagged = {
        int(line.split(":")[1])
        for line in result.stdout.splitlines()
        if line.startswith("convex/mistakes.py:") and ": error:" in line
    }
    assert flagged == marked, result.stdout
    # Nothing else in the scaffold is affected.
    others = [
        line
        for line in result.stdout.splitlines()
        if ": error:" in line and "mistakes.py" not in line
    ]
    assert others == [], result.stdout
