"""`pyconvex import`: CSV / JSONL / JSON / Parquet / snapshot ZIPs, every row checked first (a bad
row imports nothing and names its line and field), modes, and an export -> import -> export round
trip that keeps _ids, int64s, bytes and files."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.cli import flat, invoke

from pyconvex.dev.launcher import DevServer
from pyconvex.failures import EXIT_USAGE

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "people": define_table({"name": v.string(), "age": v.float64(), "n": v.optional(v.int64()),
                            "raw": v.optional(v.bytes()), "photo": v.optional(v.id("_storage"))}),
    "pets": define_table({"name": v.string(), "owner": v.id("people")}),
})
"""
FUNCTIONS = """
from pyconvex import Int64, mutation, query


@mutation
async def seed(ctx, storage_id: str) -> None:
    ada = await ctx.db.insert("people", {"name": "Ada", "age": 36.0, "n": Int64(2**62),
                                         "raw": b"\\x00\\x01", "photo": storage_id})
    await ctx.db.insert("pets", {"name": "Rex", "owner": ada})


@mutation
async def upload_url(ctx) -> str:
    return await ctx.storage.generate_upload_url()


@query
async def everything(ctx):
    return {t: await ctx.db.query(t).collect() for t in ("people", "pets")}
"""


def make_project(root: Path) -> Path:
    (root / "convex").mkdir(parents=True)
    (root / "convex" / "schema.py").write_text(SCHEMA)
    (root / "convex" / "f.py").write_text(FUNCTIONS)
    return root


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevServer]:
    with DevServer(make_project(tmp_path / "a"), "--typecheck", "disable") as dev:
        yield dev


def everything(dev: DevServer) -> dict[str, list[dict[str, object]]]:
    r = httpx.post(f"{dev.url}/api/query", json={"path": "f:everything", "args": {},
                                                  "format": "convex_encoded_json"})  # fmt: skip
    assert "value" in r.json(), r.text[:500]
    value: dict[str, list[dict[str, object]]] = r.json()["value"]
    return value


def test_export_import_export_keeps_ids_int64_bytes_and_files(
    dev: DevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with httpx.Client(base_url=dev.url) as http:
        url = http.post("/api/mutation", json={"path": "f:upload_url", "args": {}}).json()["value"]
        storage_id = http.post(url, content=b"a photo").json()["storageId"]
        r = http.post("/api/mutation", json={"path": "f:seed", "args": {"storage_id": storage_id}})
        assert r.json()["status"] == "success", r.text
    before = everything(dev)
    snap = tmp_path / "snap.zip"
    r = invoke(dev.project, "export", "--path", str(snap), "--include-file-storage",
               monkeypatch=monkeypatch)  # fmt: skip
    assert r.exit_code == 0, r.output
    with DevServer(make_project(tmp_path / "b"), "--typecheck", "disable") as fresh:
        r = invoke(fresh.project, "import", str(snap), monkeypatch=monkeypatch)
        assert r.exit_code == 0, r.output
        assert "Imported 2 documents" in r.stdout and "1 files" in r.stdout
        assert everything(fresh) == before  # same _ids, _creationTimes, int64, bytes, references
        photo = httpx.get(f"{fresh.url}/api/storage/{storage_id}")
        assert photo.content == b"a photo"
        again = tmp_path / "again.zip"
        r = invoke(fresh.project, "export", "--path", str(again), "--include-file-storage",
                   monkeypatch=monkeypatch)  # fmt: skip
        with zipfile.ZipFile(snap) as one, zipfile.ZipFile(again) as two:
            for entry in (
                "people/documents.jsonl",
                "pets/documents.jsonl",
                f"_storage/{storage_id}",
            ):
                assert one.read(entry) == two.read(entry), entry


def test_a_zip_written_from_convexs_layout_imports(
    dev: DevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyconvex.values.ids import encode_id

    # The table numbers this deployment gave its tables (ids carry them): from its own export.
    r = invoke(
        dev.project, "export", "--path", str(tmp_path / "empty.zip"), monkeypatch=monkeypatch
    )
    with zipfile.ZipFile(tmp_path / "empty.zip") as z:
        listed = [json.loads(x) for x in z.read("_tables/documents.jsonl").splitlines()]
    numbers = {t["name"]: t["id"] for t in listed}
    person = encode_id(numbers["people"], bytes(range(16)))
    snap = tmp_path / "convex.zip"
    with zipfile.ZipFile(snap, "w") as z:
        z.writestr("README.md", "written by hand")
        z.writestr("_tables/documents.jsonl", "".join(
            json.dumps({"name": n, "id": i}) + "\n" for n, i in numbers.items()))  # fmt: skip
        z.writestr("people/documents.jsonl", json.dumps(
            {"_id": person, "_creationTime": 1700000000000.5, "name": "Grace", "age": 85.0,
             "n": 7, "raw": {"$bytes": "AAE="}}) + "\n")  # fmt: skip
        z.writestr("people/generated_schema.jsonl", '"uniform"\n')
        z.writestr("pets/documents.jsonl", json.dumps({"name": "Tom", "owner": person}) + "\n")
    r = invoke(dev.project, "import", str(snap), monkeypatch=monkeypatch)
    assert r.exit_code == 0, r.output
    data = everything(dev)
    [grace] = data["people"]
    assert grace["_id"] == person and grace["_creationTime"] == 1700000000000.5
    assert grace["n"] == {"$integer": "BwAAAAAAAAA="} and grace["raw"] == {"$bytes": "AAE="}
    assert data["pets"][0]["owner"] == person


def test_a_bad_row_imports_nothing_and_names_its_line(
    dev: DevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [{"name": f"p{i}", "age": float(i)} for i in range(10_000)]
    rows[6_789]["age"] = "old"
    path = tmp_path / "people.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = invoke(dev.project, "import", str(path), "--table", "people", monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_USAGE
    assert "people.jsonl:6790: field age" in flat(r.stderr)
    assert everything(dev)["people"] == []
    rows[6_789]["age"] = 1.0
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = invoke(dev.project, "import", str(path), "--table", "people", monkeypatch=monkeypatch)
    assert r.exit_code == 0, r.output
    r = invoke(dev.project, "sql", "SELECT count(*) AS n FROM people", "--format", "json",
               monkeypatch=monkeypatch)  # fmt: skip
    assert json.loads(r.stdout) == [{"n": 10_000}]


def test_modes_csv_and_parquet(
    dev: DevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv_path = tmp_path / "people.csv"
    csv_path.write_text("name,age\nAda,36\nBob,41.5\n")
    r = invoke(dev.project, "import", str(csv_path), "--table", "people", monkeypatch=monkeypatch)
    assert r.exit_code == 0, r.output
    assert sorted(p["age"] for p in everything(dev)["people"]) == [36.0, 41.5]  # float64s
    r = invoke(dev.project, "import", str(csv_path), "--table", "people", monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_USAGE
    assert "already holds 2 documents. Pass --append" in flat(r.stderr)
    r = invoke(dev.project, "import", str(csv_path), "--table", "people", "--append",
               monkeypatch=monkeypatch)  # fmt: skip
    assert len(everything(dev)["people"]) == 4
    parquet = tmp_path / "people.parquet"
    pq.write_table(
        pa.table({"name": ["Cy"], "age": [3.0], "n": pa.array([5], pa.int64())}), parquet
    )
    r = invoke(dev.project, "import", str(parquet), "--table", "people", "--replace", "-y",
               monkeypatch=monkeypatch)  # fmt: skip
    assert r.exit_code == 0, r.output
    [cy] = everything(dev)["people"]
    assert cy["name"] == "Cy" and cy["n"] == {"$integer": "BQAAAAAAAAA="}
    r = invoke(dev.project, "import", str(parquet), "--table", "people", "--replace",
               monkeypatch=monkeypatch)  # fmt: skip
    assert r.exit_code == EXIT_USAGE and "pass -y" in flat(r.stderr)
