"""CSV and Parquet exports import back: every kind of field a schema declares comes back as it
was (objects, arrays, int64, bytes, null, literal unions, ids, absent optional fields) with
its _id into a fresh deployment, an empty
CSV cell of an optional field is a missing field, and a union of string literals is a text
column that SQL compares as text."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.deployment import DeploymentFactory, ok

from pyconvex.runtime.data.service import DataService
from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.values.encoding import encode_value

SCHEMA = """
from pyconvex import Int64, define_schema, define_table, v

schema = define_schema({
    "things": define_table({
        "name": v.string(),
        "text": v.string(),
        "note": v.optional(v.string()),
        "score": v.float64(),
        "due": v.optional(v.float64()),
        "count": v.int64(),
        "flag": v.boolean(),
        "done": v.optional(v.boolean()),
        "raw": v.optional(v.bytes()),
        "nothing": v.null(),
        "status": v.union(v.literal("backlog"), v.literal("todo"), v.literal("done")),
        "level": v.union(v.literal(Int64(1)), v.literal(Int64(2))),
        "parent": v.optional(v.id("things")),
        "either": v.union(v.string(), v.float64()),
        "maybe": v.union(v.string(), v.null()),
        "anything": v.any(),
        "tags": v.array(v.string()),
        "settings": v.object({
            "visibility": v.union(v.literal("public"), v.literal("private")),
            "notifications": v.object({"email": v.boolean(), "every": v.optional(v.float64())}),
        }),
        "comments": v.array(v.object({"user": v.string(), "at": v.float64()})),
        "custom": v.record(v.string(), v.any()),
    }).index("by_status", ["status"]),
    "others": define_table({"n": v.float64()}),
})
"""
FUNCTIONS = """
from pyconvex import Int64, mutation, query


@mutation
async def other(ctx):
    await ctx.db.insert("others", {"n": 1.0})


@mutation
async def seed(ctx):
    first = await ctx.db.insert("things", {
        "name": "first", "text": "123", "note": "a note", "score": 1 / 3, "due": 1.7e12,
        "count": Int64(2**62 + 1), "flag": True, "done": False, "raw": b"\\x00\\xff",
        "nothing": None, "status": "backlog", "level": Int64(1), "either": "12",
        "maybe": "null", "anything": "true", "tags": [], "comments": [],
        "settings": {"visibility": "public", "notifications": {"email": True, "every": 2.0}},
        "custom": {"n": Int64(-5), "b": b"hi", "f": 1.0, "deep": [{"x": None}, "s"]},
    })
    await ctx.db.insert("things", {
        "name": "second", "text": '{"a": 1}', "score": -2.5, "count": Int64(0),
        "flag": False, "nothing": None, "status": "todo", "level": Int64(2),
        "parent": first, "either": 12.0, "maybe": None, "anything": Int64(7),
        "tags": ["x", "y, z", 'quote "q"'],
        "settings": {"visibility": "private", "notifications": {"email": False}},
        "comments": [{"user": "ada", "at": 5.0}, {"user": "bob", "at": 6.5}],
        "custom": {},
    })
    await ctx.db.insert("things", {
        "name": "third", "text": "true", "score": 1e300, "count": Int64(-(2**63)),
        "flag": True, "nothing": None, "status": "done", "level": Int64(1), "either": "",
        "maybe": "", "anything": [Int64(1), 2.0, "3"], "tags": ["null"],
        "settings": {"visibility": "public", "notifications": {"email": True}},
        "comments": [], "custom": {"k": "v"},
    })


@query
async def everything(ctx):
    return await ctx.db.query("things").collect()
"""


def canonical(docs: list[dict[str, Any]]) -> list[str]:
    """Documents as sorted Convex JSON: an int64 and a float64 of the same number differ."""
    return sorted(json.dumps(encode_value(d), sort_keys=True) for d in docs)


async def export_one(dep: Deployment, fmt: str, table: str, to: Path) -> Path:
    data = DataService(dep)  # type: ignore[arg-type]
    try:
        sink = io.BytesIO()
        await data.export(sink, fmt, [table])
    finally:
        await data.close()
    with zipfile.ZipFile(sink) as z:
        path = to / f"{table}.{fmt}"
        path.write_bytes(z.read(f"{table}.{fmt}"))
    return path


async def import_one(dep: Deployment, path: Path, table: str) -> None:
    data = DataService(dep)  # type: ignore[arg-type]
    try:
        await data.import_file(path, path.name, None, table, None)
    finally:
        await data.close()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
async def test_an_export_imports_back_into_a_fresh_deployment_unchanged(
    deployment: DeploymentFactory, tmp_path: Path, fmt: str
) -> None:
    files = {"schema.py": SCHEMA, "f.py": FUNCTIONS}
    source = await deployment(files)
    ok(await source.run_mutation("f:other", {}))  # (things: not the first table's number)
    ok(await source.run_mutation("f:seed", {}))
    before = ok(source.run_query("f:everything", {}))
    path = await export_one(source, fmt, "things", tmp_path)

    fresh = await deployment(files)
    await import_one(fresh, path, "things")
    after = ok(fresh.run_query("f:everything", {}))
    assert canonical(after) == canonical(before)
    # Strings stay strings, whatever they look like; an absent optional field stays absent.
    by_name = {d["name"]: d for d in after}
    assert by_name["first"]["text"] == "123" and by_name["third"]["text"] == "true"
    assert by_name["first"]["anything"] == "true" and by_name["second"]["either"] == 12.0
    assert "note" not in by_name["second"] and "parent" not in by_name["first"]
    # The ids are kept (the table takes the number they carry), so references hold.
    assert by_name["second"]["parent"] == by_name["first"]["_id"]


async def test_an_empty_csv_cell_of_an_optional_field_is_a_missing_field(
    deployment: DeploymentFactory, tmp_path: Path
) -> None:
    schema = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "tasks": define_table({
        "title": v.string(),
        "code": v.string(),
        "description": v.optional(v.string()),
        "actual_hours": v.optional(v.float64()),
        "tags": v.optional(v.array(v.string())),
        "size": v.union(v.float64(), v.string()),
        "status": v.union(v.literal("todo"), v.literal("done")),
    }),
})
"""
    functions = """
from pyconvex import query


@query
async def everything(ctx):
    return await ctx.db.query("tasks").collect()
"""
    dep = await deployment({"schema.py": schema, "f.py": functions})
    path = tmp_path / "tasks.csv"
    path.write_text(
        "title,code,description,actual_hours,tags,size,status\n"
        "A,,,,,12,todo\n"
        'B,007,"some text",2.5,"[""x""]",big,done\n'
    )
    await import_one(dep, path, "tasks")
    docs = {d["title"]: d for d in ok(dep.run_query("f:everything", {}))}
    a = {k: v for k, v in docs["A"].items() if not k.startswith("_")}
    b = {k: v for k, v in docs["B"].items() if not k.startswith("_")}
    # A required string keeps its empty cell; the optional fields' empty cells are absent.
    assert a == {"title": "A", "code": "", "size": 12.0, "status": "todo"}
    assert type(a["size"]) is float
    assert b == {
        "title": "B",
        "code": "007",
        "description": "some text",
        "actual_hours": 2.5,
        "tags": ["x"],
        "size": "big",
        "status": "done",
    }


async def test_a_union_of_string_literals_is_a_text_column_in_sql(
    deployment: DeploymentFactory, tmp_path: Path
) -> None:
    dep = await deployment({"schema.py": SCHEMA, "f.py": FUNCTIONS})
    ok(await dep.run_mutation("f:seed", {}))
    data = DataService(dep)  # type: ignore[arg-type]
    try:
        query = "SELECT name, status, level FROM things WHERE status = 'todo'"
        async with data.sql(query) as q:
            got = [row async for batch in q.batches() for row in batch]
            assert q.types == ["VARCHAR", "VARCHAR", "BIGINT"]
        assert got == [["second", "todo", 2]]
    finally:
        await data.close()
    # The views over the DuckDB file type it as text too.
    assert await dep.sql("SELECT name FROM things WHERE status = 'backlog'") == [("first",)]
    # The CSV export writes the plain string, and the Parquet export a string column of it.
    path = await export_one(dep, "csv", "things", tmp_path)
    with path.open(newline="") as f:
        assert sorted(row["status"] for row in csv.DictReader(f)) == ["backlog", "done", "todo"]
    path = await export_one(dep, "parquet", "things", tmp_path)
    column = pq.read_table(path).column("status")
    assert column.type == pa.string()
    assert sorted(column.to_pylist()) == ["backlog", "done", "todo"]
