"""`pyconvex import` / `export` / `sql` with no deployment running: the project's store is
opened in the command's own process (and closed again), with progress as plain lines when
the output is not a terminal."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from support.cli import flat, invoke

from pyconvex.dev.launcher import DevServer
from pyconvex.failures import EXIT_USAGE

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "people": define_table({"name": v.string(), "age": v.float64()}),
})
"""
FUNCTIONS = """
from pyconvex import query


@query
async def count(ctx) -> float:
    return float(len(await ctx.db.query("people").collect()))
"""


def make_project(root: Path) -> Path:
    (root / "convex").mkdir(parents=True)
    (root / "convex" / "schema.py").write_text(SCHEMA)
    (root / "convex" / "people.py").write_text(FUNCTIONS)
    return root


def test_import_export_and_sql_without_a_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p")
    people = tmp_path / "people.jsonl"
    people.write_text("".join(
        json.dumps({"name": f"p{i}", "age": float(i)}) + "\n" for i in range(1_000)))  # fmt: skip
    r = invoke(project, "import", str(people), "--table", "people", monkeypatch=monkeypatch)
    assert r.exit_code == 0, r.output
    assert "Imported 1000 documents (1000 into people)" in r.stdout
    assert "No deployment is running" in flat(r.stderr)
    assert "import: checking people 1,000/1,000 rows" in r.stderr  # plain lines, not a bar

    r = invoke(project, "sql", "SELECT count(*) AS n, max(age) AS oldest FROM people",
               "--format", "json", monkeypatch=monkeypatch)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == [{"n": 1000, "oldest": 999.0}]
    r = invoke(project, "sql", "DELETE FROM people", monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_USAGE and "read-only" in flat(r.stderr)

    r = invoke(project, "import", str(people), "--table", "people", monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_USAGE and "already holds 1000 documents" in flat(r.stderr)

    snap = tmp_path / "snap.zip"
    r = invoke(project, "export", "--path", str(snap), monkeypatch=monkeypatch)
    assert r.exit_code == 0, r.output
    assert "export: exporting people" in r.stderr
    with zipfile.ZipFile(snap) as z:
        assert len(z.read("people/documents.jsonl").splitlines()) == 1000

    # The store was closed each time: a server opens it and serves what was imported.
    with DevServer(project, "--typecheck", "disable") as dev:
        r = invoke(dev.project, "run", "people:count", monkeypatch=monkeypatch)
        assert r.exit_code == 0, r.output
        assert "1000" in r.stdout
