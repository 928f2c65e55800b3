"""The data layer over a real engine: SQL at one snapshot over typed columns that follow
commits, refusals that change nothing, an import that is one commit no query sees half of
while other work goes on, and exports that hold one timestamp."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from support.deployment import CommitLog, DeploymentFactory, ok

from pyconvex.runtime.data import import_commit
from pyconvex.runtime.data.import_files import ImportRefused
from pyconvex.runtime.data.service import DataProgress, DataService
from pyconvex.runtime.data.sql import SqlError
from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.values.id_minting import mint_ids
from pyconvex.values.ids import decode_id, encode_id

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "items": define_table({"name": v.string(), "n": v.int64(), "x": v.float64(),
                           "raw": v.optional(v.bytes()), "tags": v.array(v.string()),
                           "state": v.union(v.literal("a"), v.literal("b"))})
        .index("by_name", ["name"]),
    "ks": define_table({"k": v.float64()}),
})
"""
FUNCTIONS = """
from pyconvex import Int64, mutation, query, v


@mutation(args={"name": v.string(), "n": v.float64()})
async def add(ctx, name, n):
    return await ctx.db.insert("items", {"name": name, "n": Int64(int(n)), "x": n / 2,
                                         "tags": [name], "state": "a"})


@mutation(args={"id": v.id("items")})
async def remove(ctx, id):
    await ctx.db.delete(id)


@mutation(args={"k": v.float64()})
async def add_k(ctx, k):
    await ctx.db.insert("ks", {"k": k})


@query
async def names(ctx):
    return [i["name"] for i in await ctx.db.query("items").collect()]


@query
async def k_count(ctx) -> float:
    return float(len(await ctx.db.query("ks").collect()))


@mutation
async def k_count_now(ctx) -> float:
    return float(len(await ctx.db.query("ks").collect()))


@mutation
async def clear_ks(ctx) -> None:
    for doc in await ctx.db.query("ks").collect():
        await ctx.db.delete(doc["_id"])
"""


async def open_data(deployment: DeploymentFactory) -> tuple[Deployment, DataService]:
    dep = await deployment({"schema.py": SCHEMA, "f.py": FUNCTIONS})
    return dep, DataService(dep)  # type: ignore[arg-type]


async def rows(data: DataService, query: str) -> tuple[list[str], list[list[Any]]]:
    async with data.sql(query) as q:
        out = [row async for batch in q.batches() for row in batch]
        return q.types, out


async def test_sql_has_typed_columns_and_follows_commits(
    deployment: DeploymentFactory,
) -> None:
    dep, data = await open_data(deployment)
    try:
        first = ok(await dep.run_mutation("f:add", {"name": "a", "n": 1.0}))
        ok(await dep.run_mutation("f:add", {"name": "b", "n": 2.0}))
        types, got = await rows(data, "SELECT name, n, x, tags, state FROM items ORDER BY name")
        # (state, a union of string literals, is text.)
        assert types == ["VARCHAR", "BIGINT", "DOUBLE", "JSON", "VARCHAR"]
        assert got == [["a", 1, 0.5, '["a"]', "a"], ["b", 2, 1.0, '["b"]', "a"]]
        # The copy follows commits: a delete and an insert since the last query.
        ok(await dep.run_mutation("f:remove", {"id": first}))
        ok(await dep.run_mutation("f:add", {"name": "c", "n": 3.0}))
        _, got = await rows(data, "SELECT name FROM items ORDER BY name")
        assert got == [["b"], ["c"]]
        _, got = await rows(data, "SELECT _document->>'name' AS n FROM items ORDER BY n")
        assert got == [["b"], ["c"]]
        # A declared table with no documents yet is an empty table, not an error.
        _, got = await rows(data, "SELECT count(*) FROM ks")
        assert got == [[0]]
    finally:
        await data.close()


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM items",
        "COPY items TO 'x.csv'",
        "ATTACH ':memory:' AS other",
        "SELECT * FROM read_csv('/etc/hostname')",
        "SELECT 1; SELECT 2",
    ],
)
async def test_sql_refuses_writes_and_files(deployment: DeploymentFactory, query: str) -> None:
    dep, data = await open_data(deployment)
    try:
        ok(await dep.run_mutation("f:add", {"name": "a", "n": 1.0}))
        with pytest.raises(SqlError):
            await rows(data, query)
        _, got = await rows(data, "SELECT count(*) FROM items")
        assert got == [[1]]
    finally:
        await data.close()


async def test_a_query_reads_one_snapshot_while_commits_go_on(
    deployment: DeploymentFactory,
) -> None:
    dep, data = await open_data(deployment)
    try:
        for k in range(50):
            ok(await dep.run_mutation("f:add_k", {"k": float(k)}))
        async with data.sql("SELECT k FROM ks ORDER BY k") as q:
            for k in range(50, 80):  # committed after the snapshot was taken
                ok(await dep.run_mutation("f:add_k", {"k": float(k)}))
            got = [row async for batch in q.batches() for row in batch]
        assert got == [[float(k)] for k in range(50)]
        _, got = await rows(data, "SELECT count(*) FROM ks")
        assert got == [[80]]
    finally:
        await data.close()


def jsonl(path: Path, docs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


async def test_an_import_is_one_commit_that_queries_see_whole_or_not_at_all(
    deployment: DeploymentFactory, tmp_path: Path
) -> None:
    dep, data = await open_data(deployment)
    log = CommitLog(dep)
    try:
        ok(await dep.run_mutation("f:add_k", {"k": -1.0}))
        path = jsonl(tmp_path / "ks.jsonl", [{"k": float(k)} for k in range(30_000)])
        seen: set[float] = set()
        events: list[DataProgress] = []

        async def watch() -> None:
            # Queries and mutations go on while the import runs, and never see part of it.
            while True:
                seen.add(ok(dep.run_query("f:k_count", {})))
                ok(await dep.run_mutation("f:add", {"name": "during", "n": 0.0}))
                await asyncio.sleep(0)

        watcher = asyncio.ensure_future(watch())
        try:
            summary = await data.import_file(path, path.name, None, "ks", "append", events.append)
        finally:
            watcher.cancel()
        assert summary.documents == {"ks": 30_000}
        assert seen <= {1.0, 30_001.0} and 1.0 in seen  # before, or all of it
        assert ok(dep.run_query("f:k_count", {})) == 30_001.0
        # Other mutations committed while the rows were checked and written ahead.
        assert len(ok(dep.run_query("f:names", {}))) > 1
        assert len([e for e in events if e.phase == "checking"]) > 1
        writes = [c for c in log.commits if c.ts == summary.ts]
        assert len(writes) == 1 and len(writes[0].writes) == 30_000
    finally:
        await data.close()


async def import_watched(
    dep: Deployment, data: DataService, path: Path, mode: str
) -> tuple[int, set[float], asyncio.Future[Any]]:
    """Import ``path``; meanwhile, on every loop turn in which new mutations are held (the
    documents going in), query the count; and send one mutation reading it then. Returns the
    number of such turns, the counts seen, and the mutation."""
    held_turns = 0
    seen: set[float] = set()
    waited: list[asyncio.Future[Any]] = []

    async def watch() -> None:
        nonlocal held_turns
        while True:
            if dep.committer.gate.held:
                held_turns += 1
                seen.add(ok(dep.run_query("f:k_count", {})))
                if not waited:
                    waited.append(asyncio.ensure_future(dep.run_mutation("f:k_count_now")))
            await asyncio.sleep(0)

    watcher = asyncio.ensure_future(watch())
    try:
        await data.import_file(path, path.name, None, "ks", mode)
    finally:
        watcher.cancel()
    return held_turns, seen, waited[0]


async def test_the_import_goes_in_over_many_loop_turns_that_queries_serve_and_mutations_wait_out(
    deployment: DeploymentFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_commit, "BULK_CHUNK", 1_000)
    dep, data = await open_data(deployment)
    try:
        ok(await dep.run_mutation("f:add_k", {"k": -1.0}))
        for mode, count, before in (("append", 20_000, 1.0), ("replace", 5_000, 20_001.0)):
            path = jsonl(tmp_path / f"{mode}.jsonl", [{"k": float(k)} for k in range(count)])
            held_turns, seen, waited = await import_watched(dep, data, path, mode)
            assert held_turns > 5  # queries were answered all along
            assert seen == {before}  # and saw none of it until it was durable
            # The mutation ran once all of it was in memory (its commit follows the
            # import's), and saw all of it.
            after = count if mode == "replace" else count + before
            assert ok(await waited) == after
            assert ok(dep.run_query("f:k_count", {})) == after
    finally:
        await data.close()


async def test_replace_and_a_bad_row(deployment: DeploymentFactory, tmp_path: Path) -> None:
    dep, data = await open_data(deployment)
    try:
        for k in range(3):
            ok(await dep.run_mutation("f:add_k", {"k": float(k)}))
        with pytest.raises(ImportRefused, match="already holds 3 documents"):
            await data.import_file(
                jsonl(tmp_path / "a.jsonl", [{"k": 9.0}]), "a.jsonl", None, "ks", None
            )
        bad = jsonl(tmp_path / "b.jsonl", [{"k": 1.0}, {"k": 2.0}, {"k": "x"}])
        with pytest.raises(ImportRefused, match=r"b\.jsonl:3: field k"):
            await data.import_file(bad, "b.jsonl", None, "ks", "replace")
        assert ok(dep.run_query("f:k_count", {})) == 3.0
        good = jsonl(tmp_path / "c.jsonl", [{"k": 7.0}])
        await data.import_file(good, "c.jsonl", None, "ks", "replace")
        _, got = await rows(data, "SELECT k FROM ks")
        assert got == [[7.0]]
        # The rows a refused import wrote ahead are gone from the log.
        staged = await dep.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name "
                               "LIKE '%staged%'")  # fmt: skip
        assert staged == [(0,)]
    finally:
        await data.close()


async def test_a_line_that_is_not_json_late_in_a_big_file_imports_nothing(
    deployment: DeploymentFactory, tmp_path: Path
) -> None:
    dep, data = await open_data(deployment)
    try:
        ok(await dep.run_mutation("f:add_k", {"k": -1.0}))
        path = tmp_path / "ks.jsonl"
        lines = [json.dumps({"k": float(k)}) for k in range(50_000)]
        lines[45_000] = '{"k": 1.0'  # after rows before it were written ahead
        path.write_text("\n".join(lines) + "\n")
        with pytest.raises(ImportRefused, match=r"ks\.jsonl:45001: not JSON"):
            await data.import_file(path, path.name, None, "ks", "append")
        assert ok(dep.run_query("f:k_count", {})) == 1.0
        staged = await dep.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name "
                               "LIKE '%staged%'")  # fmt: skip
        assert staged == [(0,)]
    finally:
        await data.close()


async def test_export_json_and_parquet_of_the_engine(deployment: DeploymentFactory) -> None:
    dep, data = await open_data(deployment)
    try:
        ok(await dep.run_mutation("f:add", {"name": "a", "n": 2.0**40}))
        sink = io.BytesIO()
        summary = await data.export(sink, "zip", None)
        with zipfile.ZipFile(sink) as z:
            [doc] = [json.loads(x) for x in z.read("items/documents.jsonl").splitlines()]
        assert doc["n"] == 2**40 and doc["x"] == 2.0**39 and doc["state"] == "a"
        assert summary.documents == {"items": 1}  # (ks holds no document: no table yet)
        sink = io.BytesIO()
        summary = await data.export(sink, "parquet", ["items"])
        assert summary.documents == {"items": 1}
    finally:
        await data.close()


def test_minted_ids_are_valid_ids_of_their_table() -> None:
    for number in (10, 127, 128, 70_000):
        for doc_id in mint_ids(number, 50):
            table, random = decode_id(doc_id)
            assert table == number and encode_id(number, random) == doc_id


async def test_a_replace_that_writes_the_same_ids_again_keeps_each_document_once(
    deployment: DeploymentFactory, tmp_path: Path
) -> None:
    """A snapshot imported over itself (``--replace``, the same ``_id``s): each document is a
    new version of itself, found once through every index, and so after a restart (the log
    must not hold a deletion and an insert at one timestamp)."""
    files = {"schema.py": SCHEMA, "f.py": FUNCTIONS}
    dep = await deployment(files, persistent=True)
    data = DataService(dep)  # type: ignore[arg-type]
    try:
        for name in ("a", "b", "c"):
            ok(await dep.run_mutation("f:add", {"name": name, "n": 1.0}))
        ok(await dep.run_mutation("f:add_k", {"k": 1.0}))
        _, docs = await rows(data, "SELECT _id, _creationTime, name FROM items ORDER BY name")
        path = jsonl(
            tmp_path / "items.jsonl",
            [
                {
                    "_id": i,
                    "_creationTime": t,
                    "name": n + "2",
                    "n": {"$integer": "AgAAAAAAAAA="},
                    "x": 1.0,
                    "tags": [],
                    "state": "b",
                }
                for i, t, n in docs[:2]
            ],
        )
        await data.import_file(path, path.name, None, "items", "replace")
        assert sorted(ok(dep.run_query("f:names", {}))) == ["a2", "b2"]
    finally:
        await data.close()
        await dep.close()
    dep = await deployment(files, persistent=True)
    assert sorted(ok(dep.run_query("f:names", {}))) == ["a2", "b2"]


async def test_a_replace_that_brings_back_ids_just_replaced_away_keeps_each_document_once(
    deployment: DeploymentFactory, tmp_path: Path
) -> None:
    """A table replaced by other documents, then by its own export again, seconds later: the
    ids come back while their deleted versions (and those versions' index keys) are still
    retained for older snapshots. Each document is found once, through every index."""
    dep = await deployment({"schema.py": SCHEMA, "f.py": FUNCTIONS})
    data = DataService(dep)  # type: ignore[arg-type]

    def row(name: str, kept: tuple[str, float] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"name": name, "n": {"$integer": "AgAAAAAAAAA="}, "x": 1.0}
        out |= {"tags": [], "state": "a"}
        return out if kept is None else out | {"_id": kept[0], "_creationTime": kept[1]}

    try:
        for name in ("a", "b"):
            ok(await dep.run_mutation("f:add", {"name": name, "n": 1.0}))
        _, docs = await rows(data, "SELECT _id, _creationTime, name FROM items ORDER BY name")
        other = jsonl(tmp_path / "other.jsonl", [row("x"), row("y")])
        await data.import_file(other, other.name, None, "items", "replace")
        assert sorted(ok(dep.run_query("f:names", {}))) == ["x", "y"]
        back = jsonl(tmp_path / "back.jsonl", [row(n, (i, t)) for i, t, n in docs])
        await data.import_file(back, back.name, None, "items", "replace")
        assert sorted(ok(dep.run_query("f:names", {}))) == ["a", "b"]
        items = dep.store.tables["items"]
        for index in items.indexes.values():
            keys = list(index.keys)
            assert len(keys) == len(set(keys)), index.spec
    finally:
        await data.close()
        await dep.close()


async def test_an_import_into_an_undeclared_table_names_the_schemas_tables(
    deployment: DeploymentFactory, tmp_path: Path
) -> None:
    dep = await deployment({"schema.py": SCHEMA, "f.py": FUNCTIONS})
    data = DataService(dep)  # type: ignore[arg-type]
    path = jsonl(tmp_path / "a.jsonl", [{"k": 1.0}])
    try:
        with pytest.raises(ImportRefused) as typo:
            await data.import_file(path, path.name, None, "kss", None)
        with pytest.raises(ImportRefused) as other:
            await data.import_file(path, path.name, None, "foo", None)
    finally:
        await data.close()
        await dep.close()
    assert "no table 'kss' (its tables: items, ks). Did you mean 'ks'?" in str(typo.value)
    assert "no table 'foo' (its tables: items, ks). Import into" in str(other.value)


async def test_a_table_imported_alone_keeps_the_table_number_its_ids_carry(
    deployment: DeploymentFactory, tmp_path: Path
) -> None:
    """As in Convex: a new table takes the number of its rows' ``_id``s, so one table of an
    export goes into a fresh deployment with its ids (and the references to them) intact; ids
    that cannot be kept are refused, saying why and what to do."""
    dep = await deployment({"f.py": FUNCTIONS})  # no schema: no table exists yet
    data = DataService(dep)  # type: ignore[arg-type]
    people = [{"_id": i, "name": f"p{k}"} for k, i in enumerate(mint_ids(15, 2))]
    try:
        path = jsonl(tmp_path / "people.jsonl", people)
        await data.import_file(path, path.name, None, "people", None)
        table = dep.store.tables["people"]
        assert table.number == 15 and sorted(table.docs) == sorted(p["_id"] for p in people)
        with pytest.raises(ImportRefused, match="number 15, which is table 'people' here"):
            await data.import_file(path, path.name, None, "others", None)
        later = jsonl(tmp_path / "later.jsonl", [{"_id": mint_ids(16, 1)[0], "name": "q"}])
        with pytest.raises(ImportRefused, match="is number 15 here, so they cannot be kept"):
            await data.import_file(later, later.name, None, "people", "append")
        fresh = jsonl(tmp_path / "fresh.jsonl", [{"name": "r"}])
        await data.import_file(fresh, fresh.name, None, "others", None)
        assert dep.store.tables["others"].number == 16  # after every number in use
    finally:
        await data.close()
        await dep.close()


async def mutate_ahead(dep: Deployment) -> float:
    """Once an import puts its versions in (before its last step), add a ``ks`` document and
    count them, in mutations run at once; the count."""
    gate = dep.committer.gate
    while not (gate._lock.locked() and not gate.held):
        await asyncio.sleep(0)
    added = dep.apply_mutation("f:add_k", {"k": -1.0})
    counted = dep.apply_mutation("f:k_count_now", {})
    ok(await added.outcome())
    ok(await counted.outcome())
    return float(ok(counted.result))


async def test_mutations_run_while_the_import_puts_its_versions_in_and_never_see_them(
    deployment: DeploymentFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before its last step, an import's versions go in at a timestamp not made yet: other
    mutations keep running, see none of them, and commit before it (a mutation into the
    import's own table too). Into a table that had to stay empty, such a write refuses the
    import, and nothing of it stays."""
    monkeypatch.setattr(import_commit, "BULK_CHUNK", 1_000)
    dep, data = await open_data(deployment)
    try:
        path = jsonl(tmp_path / "ks.jsonl", [{"k": float(k)} for k in range(5_000)])
        writer = asyncio.ensure_future(mutate_ahead(dep))
        await data.import_file(path, path.name, None, "ks", "append")
        assert await writer == 1.0  # it ran before the import's last step
        assert ok(dep.run_query("f:k_count", {})) == 5_001.0
        ok(await dep.run_mutation("f:clear_ks"))
        writer = asyncio.ensure_future(mutate_ahead(dep))
        with pytest.raises(ImportRefused, match="already holds 1 documents"):
            await data.import_file(path, path.name, None, "ks", None)
        assert await writer == 1.0
        # The refused import left nothing: only the mutation's document, in every index.
        assert ok(dep.run_query("f:k_count", {})) == 1.0
        # (5,000 keys of the first import's versions are kept a while, not the refused one's)
        assert len(dep.store.tables["ks"].indexes["by_creation_time"].keys) < 2 * 5_000
        assert all(
            h[-1][0] <= dep.store.durable_ts for h in dep.store.tables["ks"].history.values()
        )
    finally:
        await data.close()
