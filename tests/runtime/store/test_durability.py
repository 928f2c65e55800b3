"""Durability: restart rebuilds memory from DuckDB, the per-table SQL views show live
documents, commit timestamps never go backwards, and a SIGKILLed process loses no
acknowledged write and leaves nothing half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from support.deployment import make_project, ok

from pyconvex import Int64
from pyconvex.values import id_table_number

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "messages": define_table({"channel": v.string(), "body": v.string(),
                              "likes": v.optional(v.float64())})
        .index("by_channel", ["channel"]),
    "pairs": define_table({"i": v.float64(), "side": v.string(),
                           "partner": v.optional(v.id("pairs")), "payload": v.string()})
        .index("by_i", ["i"]),
    "free": define_table(v.any()),
    "notes": define_table(v.any()),
})
"""

MESSAGES = """
from pyconvex import mutation, query, v


@mutation(args={"channel": v.string(), "body": v.string()})
async def send(ctx, channel, body):
    return await ctx.db.insert("messages", {"channel": channel, "body": body})


@mutation(args={"id": v.id("messages"), "body": v.string()})
async def edit(ctx, id, body):
    await ctx.db.patch(id, {"body": body})


@mutation(args={"id": v.id("messages")})
async def remove(ctx, id):
    await ctx.db.delete(id)


@mutation(args={"table": v.string(), "doc": v.any()})
async def insert_any(ctx, table, doc):
    return await ctx.db.insert(table, doc)


@query(args={"channel": v.string()})
async def list(ctx, channel):
    docs = await ctx.db.query("messages").with_index(
        "by_channel", lambda q: q.eq("channel", channel)).collect()
    return [d["body"] for d in docs]


@query(args={"table": v.string()})
async def all(ctx, table):
    return await ctx.db.query(table).collect()
"""

PAIRS = """
from pyconvex import mutation, query, v


@mutation(args={"i": v.float64()})
async def add(ctx, i):
    payload = "x" * 200
    a = await ctx.db.insert("pairs", {"i": i, "side": "a", "payload": payload})
    b = await ctx.db.insert("pairs", {"i": i, "side": "b", "partner": a, "payload": payload})
    await ctx.db.patch(a, {"partner": b})
    return {"a": a, "b": b}


@query
async def all(ctx):
    return await ctx.db.query("pairs").collect()
"""

FILES = {"schema.py": SCHEMA, "messages.py": MESSAGES, "pairs.py": PAIRS}


async def test_restart_rebuilds_memory_and_indexes(deployment: Any) -> None:
    dep = await deployment(FILES, persistent=True)
    a = ok(await dep.run_mutation("messages:send", {"channel": "a", "body": "one"}))
    b = ok(await dep.run_mutation("messages:send", {"channel": "a", "body": "two"}))
    ok(await dep.run_mutation("messages:send", {"channel": "b", "body": "three"}))
    ok(await dep.run_mutation("messages:edit", {"id": a, "body": "one, edited"}))
    ok(await dep.run_mutation("messages:edit", {"id": a, "body": "one, edited twice"}))
    ok(await dep.run_mutation("messages:remove", {"id": b}))
    values = {"n": Int64(5), "raw": b"\x01\x02", "f": 1.5, "nested": [{"k": None}]}
    free = ok(await dep.run_mutation("messages:insert_any", {"table": "free", "doc": values}))
    before = ok(dep.run_query("messages:all", {"table": "messages"}))
    last_ts = dep.latest_ts
    await dep.close()

    dep2 = await deployment(FILES, persistent=True)
    assert ok(dep2.run_query("messages:all", {"table": "messages"})) == before
    assert ok(dep2.run_query("messages:list", {"channel": "a"})) == ["one, edited twice"]
    assert ok(dep2.run_query("messages:list", {"channel": "b"})) == ["three"]
    (doc,) = ok(dep2.run_query("messages:all", {"table": "free"}))
    assert doc["_id"] == free and {k: doc[k] for k in values} == values
    assert type(doc["n"]) is Int64
    assert dep2.latest_ts >= last_ts
    # New writes after the restart: later timestamps, later creation times, same table ids.
    c = await dep2.run_mutation("messages:send", {"channel": "a", "body": "four"})
    assert ok(c) and c.ts > last_ts
    assert ok(dep2.run_query("messages:list", {"channel": "a"})) == ["one, edited twice", "four"]
    docs = ok(dep2.run_query("messages:all", {"table": "messages"}))
    assert docs[-1]["_creationTime"] > max(d["_creationTime"] for d in before)
    free2 = ok(await dep2.run_mutation("messages:insert_any", {"table": "free", "doc": {}}))
    assert id_table_number(free2) == id_table_number(free)  # same table number in the id


async def test_sql_view_per_table_shows_live_documents(deployment: Any) -> None:
    dep = await deployment(FILES, persistent=True)
    a = ok(await dep.run_mutation("messages:send", {"channel": "a", "body": "old"}))
    b = ok(await dep.run_mutation("messages:send", {"channel": "a", "body": "doomed"}))
    ok(await dep.run_mutation("messages:send", {"channel": "b", "body": "other"}))
    ok(await dep.run_mutation("messages:edit", {"id": a, "body": "new"}))
    ok(await dep.run_mutation("messages:remove", {"id": b}))
    ok(await dep.run_mutation("messages:insert_any", {"table": "notes", "doc": {"text": "free"}}))

    sql = dep.sql
    assert sorted(await sql("SELECT body FROM messages")) == [("new",), ("other",)]
    assert await sql("SELECT _id, channel FROM messages WHERE body = 'new'") == [(a, "a")]
    assert await sql("SELECT count(*) FROM messages WHERE _id = ?", [b]) == [(0,)]
    (row,) = await sql("SELECT json_extract_string(_document, '$.text') FROM notes")
    assert row == ("free",)
    (ct,) = await sql("SELECT _creationTime FROM messages WHERE _id = ?", [a])
    doc = next(d for d in ok(dep.run_query("messages:all", {"table": "messages"})) if d["_id"] == a)
    assert ct[0] == doc["_creationTime"]
    await dep.close()
    dep2 = await deployment(FILES, persistent=True)
    rows = await dep2.sql("SELECT body FROM messages ORDER BY body")
    assert rows == [("new",), ("other",)]


async def test_in_memory_deployment_starts_empty(deployment: Any) -> None:
    dep = await deployment(FILES)
    ok(await dep.run_mutation("messages:send", {"channel": "a", "body": "x"}))
    await dep.close()
    dep2 = await deployment(FILES)
    assert ok(dep2.run_query("messages:all", {"table": "messages"})) == []


async def test_clock_never_goes_backwards_across_restarts(deployment: Any, tmp_path: Path) -> None:
    dep = await deployment(FILES, persistent=True)
    r = await dep.run_mutation("messages:send", {"channel": "a", "body": "x"})
    await dep.close()
    # Pretend the previous run's clock was far ahead of this machine's wall clock.
    import duckdb

    future = r.ts + 10**15
    con = duckdb.connect(str(tmp_path / "data" / "data.duckdb"))
    con.execute("INSERT OR REPLACE INTO _meta VALUES ('max_ts', ?)", [str(future)])
    con.close()
    dep2 = await deployment(FILES, persistent=True)
    assert dep2.latest_ts >= future
    r2 = await dep2.run_mutation("messages:send", {"channel": "a", "body": "y"})
    assert r2.ts > future


async def test_second_process_cannot_open_the_same_data_dir(
    deployment: Any, tmp_path: Path
) -> None:
    await deployment(FILES, persistent=True)
    script = (
        "import asyncio, sys; from pathlib import Path\n"
        "from pyconvex.runtime.functions.deployment import Deployment\n"
        "asyncio.run(Deployment.open(Path(sys.argv[1]), Path(sys.argv[2])))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "convex"), str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "another pyconvex process" in out.stderr


# -- crash safety -------------------------------------------------------------------------------
WRITER = """
import asyncio, os, sys
from pathlib import Path

from pyconvex.runtime.functions.deployment import Deployment


async def main():
    dep = await Deployment.open(Path(sys.argv[1]), Path(sys.argv[2]))
    start = int(sys.argv[3])
    os.write(1, b"ready\\n")
    counter = iter(range(start, 10**9))

    async def worker():
        while True:
            i = next(counter)
            r = await dep.run_mutation("pairs:add", {"i": float(i)})
            if r.failure is not None:
                os.write(2, f"failed {i}: {r.failure.message}\\n".encode())
                os._exit(3)
            # One write per line: a line on stdout means the mutation was acknowledged.
            os.write(1, f"ack {i} {r.value['a']} {r.value['b']} {r.ts}\\n".encode())

    await asyncio.gather(*(worker() for _ in range(64)))


asyncio.run(main())
"""


def run_writer_and_kill(
    script: Path, functions_dir: Path, data_dir: Path, start: int, acks_before_kill: int
) -> list[tuple[int, str, str, int]]:
    """Run the writer, SIGKILL it after ``acks_before_kill`` acknowledgements, and return
    every acknowledgement it printed (including those still in the pipe)."""
    acks: list[tuple[int, str, str, int]] = []
    with subprocess.Popen(
        [sys.executable, str(script), str(functions_dir), str(data_dir), str(start)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            first = proc.stdout.readline()
            if first.strip() == "ready":
                for line in proc.stdout:
                    _, i, a, b, ts = line.split()
                    acks.append((int(i), a, b, int(ts)))
                    if len(acks) >= acks_before_kill:
                        break
            os.kill(proc.pid, signal.SIGKILL)
            for line in proc.stdout:
                parts = line.split()
                if len(parts) == 5:  # each line is one atomic os.write
                    acks.append((int(parts[1]), parts[2], parts[3], int(parts[4])))
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=60)
            errors = proc.stderr.read()
    assert proc.returncode == -signal.SIGKILL, errors
    assert len(acks) >= acks_before_kill, errors
    return acks


def check_pairs(docs: list[dict[str, Any]], acks: list[tuple[int, str, str, int]]) -> None:
    by_id = {d["_id"]: d for d in docs}
    # Every acknowledged write is there, exactly as written.
    for i, a, b, _ in acks:
        assert a in by_id and b in by_id, f"acknowledged mutation {i} lost"
        assert by_id[a]["partner"] == b and by_id[b]["partner"] == a
        assert by_id[a]["i"] == by_id[b]["i"] == float(i)
    # Nothing half-written: every mutation that made it is complete (both docs, linked).
    per_i: dict[float, list[dict[str, Any]]] = {}
    for d in docs:
        per_i.setdefault(d["i"], []).append(d)
        assert d["payload"] == "x" * 200
    for i, pair in per_i.items():
        assert sorted(d["side"] for d in pair) == ["a", "b"], f"mutation {i} half-written"
        a = next(d for d in pair if d["side"] == "a")
        b = next(d for d in pair if d["side"] == "b")
        assert a.get("partner") == b["_id"] and b["partner"] == a["_id"]


@pytest.mark.timeout(180)
async def test_sigkill_loses_no_acknowledged_write(deployment: Any, tmp_path: Path) -> None:
    functions_dir = make_project(tmp_path, FILES)
    data_dir = tmp_path / "data"
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(WRITER))

    acks1 = run_writer_and_kill(script, functions_dir, data_dir, 0, 1500)
    dep = await deployment(persistent=True)
    docs = ok(dep.run_query("pairs:all", {}))
    check_pairs(docs, acks1)
    last_ts1 = max(ts for *_, ts in acks1)
    assert dep.latest_ts >= last_ts1
    await dep.close()

    # Crash again on top of the recovered data: the clock keeps going forward.
    acks2 = run_writer_and_kill(script, functions_dir, data_dir, 10**6, 800)
    assert min(ts for *_, ts in acks2) > last_ts1
    dep = await deployment(persistent=True)
    docs = ok(dep.run_query("pairs:all", {}))
    check_pairs(docs, acks1 + acks2)
    last_ts2 = max(ts for *_, ts in acks2)
    assert dep.latest_ts >= last_ts2
    r = await dep.run_mutation("pairs:add", {"i": -1.0})
    assert ok(r) and r.ts > last_ts2


async def test_file_backed_deployment_commits_through_the_writer_process(
    deployment: Any,
) -> None:
    from pyconvex.runtime.store.logged_persistence import LoggedPersistence
    from pyconvex.runtime.store.process_persistence import ProcessPersistence

    dep = await deployment(FILES, persistent=True)
    assert isinstance(dep.persistence, LoggedPersistence)  # the log in front of DuckDB
    assert isinstance(dep.persistence.inner, ProcessPersistence)
    ok(await dep.run_mutation("messages:send", {"channel": "a", "body": "kept"}))
    await dep.close()
    dep2 = await deployment(FILES, persistent=True)
    assert ok(dep2.run_query("messages:list", {"channel": "a"})) == ["kept"]
    # (A writer process that dies is replaced: test_writer_respawn.py.)


async def test_a_failed_batch_in_the_writer_process_undoes_it_and_every_batch_behind_it(
    deployment: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    # Without the write-ahead log DuckDB's commit is the durability point (with it, a batch
    # DuckDB refuses stays safe in the log: test_wal.py).
    monkeypatch.setenv("PYCONVEX_WAL", "off")
    dep = await deployment(FILES, persistent=True)
    ok(await dep.run_mutation("messages:send", {"channel": "a", "body": "kept"}))
    # Make every write fail inside DuckDB, with enough mutations at once that the committer
    # pipelines a second batch behind the first.
    await dep.sql("ALTER TABLE _documents RENAME TO _documents_away")
    results = await asyncio.gather(
        *(dep.run_mutation("messages:send", {"channel": "a", "body": f"x{i}"}) for i in range(300))
    )
    assert all(r.failure is not None for r in results)
    assert ok(dep.run_query("messages:list", {"channel": "a"})) == ["kept"]
    await dep.sql("ALTER TABLE _documents_away RENAME TO _documents")
    ok(await dep.run_mutation("messages:send", {"channel": "a", "body": "after"}))
    assert ok(dep.run_query("messages:list", {"channel": "a"})) == ["kept", "after"]
    await dep.close()
    dep2 = await deployment(FILES, persistent=True)
    assert ok(dep2.run_query("messages:list", {"channel": "a"})) == ["kept", "after"]
