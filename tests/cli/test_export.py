"""`pyconvex export`: one snapshot at one timestamp in Convex's ZIP layout (export JSON values,
files), JSONL, CSV and Parquet with typed columns — taken while writes stream in."""

from __future__ import annotations

import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pyarrow.parquet as pq
import pytest
from support.cli import invoke

from pyconvex.dev.launcher import DevServer
from pyconvex.failures import EXIT_USAGE

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "items": define_table({"name": v.string(), "n": v.int64(), "x": v.float64(),
                           "raw": v.bytes(), "tags": v.array(v.string()),
                           "maybe": v.optional(v.boolean())}),
    "left": define_table({"k": v.float64()}),
    "right": define_table({"k": v.float64(), "left": v.id("left")}),
})
"""
FUNCTIONS = """
from pyconvex import Int64, mutation, v


@mutation
async def seed(ctx) -> None:
    await ctx.db.insert("items", {"name": "a", "n": Int64(2**62), "x": 1.0, "raw": b"\\x00\\xff",
                                  "tags": ["t"], "maybe": True})
    await ctx.db.insert("items", {"name": "b", "n": Int64(-1), "x": 2.5, "raw": b"", "tags": []})


@mutation(args={"k": v.float64()})
async def pair(ctx, k):
    left = await ctx.db.insert("left", {"k": k})
    await ctx.db.insert("right", {"k": k, "left": left})


@mutation
async def upload_url(ctx) -> str:
    return await ctx.storage.generate_upload_url()
"""


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    root = tmp_path_factory.mktemp("export") / "project"
    (root / "convex").mkdir(parents=True)
    (root / "convex" / "schema.py").write_text(SCHEMA)
    (root / "convex" / "f.py").write_text(FUNCTIONS)
    with DevServer(root, "--typecheck", "disable") as dev:
        with httpx.Client(base_url=dev.url) as http:
            http.post("/api/mutation", json={"path": "f:seed", "args": {}}).raise_for_status()
            url = http.post("/api/mutation", json={"path": "f:upload_url", "args": {}}).json()
            posted = http.post(
                url["value"], content=b"file bytes", headers={"Content-Type": "text/plain"}
            )
            dev.storage_id = posted.json()["storageId"]  # type: ignore[attr-defined]
        yield dev


def test_zip_is_convex_snapshot_layout(
    dev: DevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = invoke(dev.project, "export", "--path", str(tmp_path / "snap.zip"),
               "--include-file-storage", monkeypatch=monkeypatch)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "Exported" in r.stdout and "1 files" in r.stdout
    with zipfile.ZipFile(tmp_path / "snap.zip") as z:
        names = set(z.namelist())
        assert {"README.md", "_tables/documents.jsonl", "items/documents.jsonl",
                "items/generated_schema.jsonl", "_storage/documents.jsonl"} <= names  # fmt: skip
        tables = [json.loads(line) for line in z.read("_tables/documents.jsonl").splitlines()]
        assert {t["name"] for t in tables} == {"items", "left", "right", "_storage"}
        assert all(isinstance(t["id"], int) for t in tables)
        items = [json.loads(line) for line in z.read("items/documents.jsonl").splitlines()]
        text = z.read("items/documents.jsonl").decode()
        a = next(i for i in items if i["name"] == "a")
        assert a["n"] == 2**62 and f'"n": {2**62}' in text  # int64: a bare integer
        assert '"x": 1.0' in text  # float64: a decimal point
        assert a["raw"] == {"$bytes": "AP8="} and a["tags"] == ["t"] and a["maybe"] is True
        assert set(a) >= {"_id", "_creationTime"}
        files = [json.loads(line) for line in z.read("_storage/documents.jsonl").splitlines()]
        storage_id = dev.storage_id  # type: ignore[attr-defined]
        assert [f["_id"] for f in files] == [storage_id] and files[0]["size"] == 10
        assert z.read(f"_storage/{storage_id}") == b"file bytes"


def test_parquet_and_csv_have_typed_columns(
    dev: DevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "items.parquet"
    r = invoke(dev.project, "export", "--path", str(target), "--format", "parquet",
               "--table", "items", monkeypatch=monkeypatch)  # fmt: skip
    assert r.exit_code == 0, r.output
    schema = pq.read_schema(target)
    assert str(schema.field("n").type) == "int64" and str(schema.field("x").type) == "double"
    assert str(schema.field("raw").type) == "binary" and str(schema.field("maybe").type) == "bool"
    rows = duckdb.sql(f"SELECT name, n, x, tags FROM '{target}' ORDER BY name").fetchall()
    assert rows == [("a", 2**62, 1.0, '["t"]'), ("b", -1, 2.5, "[]")]
    r = invoke(dev.project, "export", "--path", str(tmp_path / "csv"), "--format", "csv",
               monkeypatch=monkeypatch)  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == [
        "items.csv", "left.csv", "right.csv",
    ]  # fmt: skip
    header = (tmp_path / "csv" / "items.csv").read_text().splitlines()[0]
    assert header.startswith("_id,_creationTime,name,n,x,raw,tags,maybe")


def test_an_export_while_writes_stream_in_is_one_snapshot(
    dev: DevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stop = threading.Event()

    def write() -> None:
        with httpx.Client(base_url=dev.url) as http:
            k = 0
            while not stop.is_set() and k < 1000:
                http.post("/api/mutation", json={"path": "f:pair", "args": {"k": float(k)}})
                k += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for i in range(3):
            r = invoke(dev.project, "export", "--path", str(tmp_path / f"s{i}.zip"),
                       "--table", "left", "--table", "right", monkeypatch=monkeypatch)  # fmt: skip
            assert r.exit_code == 0, r.output
            with zipfile.ZipFile(tmp_path / f"s{i}.zip") as z:
                left = {json.loads(x)["_id"] for x in z.read("left/documents.jsonl").splitlines()}
                right = [json.loads(x) for x in z.read("right/documents.jsonl").splitlines()]
            # Every pair was written by one mutation: a snapshot has both halves or neither.
            assert len(left) == len(right) and {r["left"] for r in right} == left
    finally:
        stop.set()
        writer.join(60)


def test_bad_requests_are_usage_errors(
    dev: DevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = invoke(dev.project, "export", "--path", str(tmp_path / "x.zip"), "--table", "itemz",
               monkeypatch=monkeypatch)  # fmt: skip
    assert r.exit_code == EXIT_USAGE and "No table 'itemz'" in r.stderr
    r = invoke(dev.project, "export", "--path", str(tmp_path / "x"), "--format", "csv",
               "--include-file-storage", monkeypatch=monkeypatch)  # fmt: skip
    assert r.exit_code == EXIT_USAGE and "zip only" in r.stderr
