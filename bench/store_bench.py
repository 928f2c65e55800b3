"""Store benchmark (issue 2): durable insert mutations/s, db.get and take(50) latency inside
queries, and start-up load of 1M documents — each with a reference measured in the same run.

    python bench/store_bench.py [--quick]

* ``insert_mutations_per_s_{256,64,1}`` — insert mutations with that many in flight, each
  acknowledged once durable. References: DuckDB and SQLite (WAL) committing one row per
  transaction, and ``duckdb_batched_rows_per_s``: DuckDB committing log-shaped rows in
  transactions of ``duckdb_batch_rows`` rows, the mean batch the engine committed with 256 in
  flight (``insert_256_mutations_per_batch``) — the same work per commit, done by DuckDB alone.
  ``insert_256_vs_duckdb_commits`` compares with single-row commits (what group commit buys),
  ``insert_256_vs_duckdb_batched`` with batched ones (what the engine costs on top of DuckDB).
  ``log_append_fsync_p50_us`` (and after 50 ms idle): a 200-byte append and ``fdatasync`` to a
  plain file — the floor of a commit acknowledged at the write-ahead log;
  ``log_append_fsync_then_150us_work_after_idle_p50_us`` against
  ``log_append_writeback_150us_work_fsync_after_idle_p50_us``: 150 µs of work (a subscription's
  re-run) after the sync, or between starting the record's writeback and the sync (the log's
  way after idle: ``store/logged_persistence.py``);
* ``db_get_p50_us``, ``take50_p50_us`` (and p99) — timed inside a query, microseconds;
* ``restart_load_1m_s`` — start-up over a log of 1M live documents that also holds superseded
  versions (a fifth of them updated once) and deletions (100k more inserted, then deleted), as
  a real log does, and a write-ahead log tail DuckDB lacks (``TAIL_RECORDS`` records, replayed
  into DuckDB first, as after a crash); ``rss_1m_mb`` the memory after it. Reference ``duckdb_scan_latest_1m_s``:
  DuckDB reading the live versions of the same log into Arrow. ``--quick`` loads 100k
  documents under ``_100k_`` names.

The last line printed is one JSON object: {"metrics": {...}, "reference": {...}, "machine": {...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb

SCHEMA = """
from pyconvex import define_schema, define_table, v
schema = define_schema({
    "items": define_table({"owner": v.string(), "n": v.float64(), "body": v.string()})
        .index("by_owner", ["owner", "n"]),
})
"""

FUNCS = """
import time
from pyconvex import mutation, query, v

@mutation(args={"owner": v.string(), "n": v.float64(), "body": v.string()})
async def insert(ctx, owner, n, body):
    return await ctx.db.insert("items", {"owner": owner, "n": n, "body": body})

@query(args={"ids": v.array(v.string())})
async def time_gets(ctx, ids):
    out = []
    clock = time.perf_counter_ns
    for i in ids:
        t0 = clock()
        await ctx.db.get(i)
        out.append(float(clock() - t0))
    return out

@query(args={"owners": v.array(v.string())})
async def time_take50(ctx, owners):
    out = []
    clock = time.perf_counter_ns
    for o in owners:
        t0 = clock()
        docs = await ctx.db.query("items").with_index("by_owner", lambda q: q.eq("owner", o)).take(50)
        out.append(float(clock() - t0))
        assert len(docs) == 50, len(docs)
    return out
"""


def make_project(root: Path) -> Path:
    fdir = root / "convex"
    fdir.mkdir(parents=True)
    (fdir / "schema.py").write_text(SCHEMA)
    (fdir / "bench.py").write_text(FUNCS)
    return fdir


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


async def insert_rate(dep, total: int, in_flight: int) -> float:
    body = "x" * 120
    counter = iter(range(total))

    async def worker(w: int) -> None:
        for i in counter:
            r = await dep.run_mutation(
                "bench:insert", {"owner": f"o{i % 100}", "n": float(i), "body": body}
            )
            if r.failure is not None:
                raise RuntimeError(r.failure.message)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(in_flight)))
    return total / (time.perf_counter() - t0)


async def engine_metrics(quick: bool) -> dict[str, float]:
    from pyconvex.runtime.functions.deployment import Deployment

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fdir = make_project(root)
        dep = await Deployment.open(fdir, root / ".pyconvex")
        try:
            await insert_rate(dep, 2000, 64)  # warm-up
            n = 20_000 if quick else 60_000
            batches0, committed0 = dep.committer.batches, dep.committer.committed
            out["insert_mutations_per_s_256"] = await insert_rate(dep, n, 256)
            out["insert_256_mutations_per_batch"] = (dep.committer.committed - committed0) / max(
                dep.committer.batches - batches0, 1
            )
            out["insert_mutations_per_s_64"] = await insert_rate(dep, n, 64)
            out["insert_mutations_per_s_1"] = await insert_rate(dep, 500 if quick else 2000, 1)
            table = dep.store.tables["items"]
            ids = list(table.docs)[:: max(1, len(table.docs) // 5000)][:5000]
            gets: list[float] = []
            for _ in range(3):
                r = dep.run_query("bench:time_gets", {"ids": ids})
                assert r.failure is None, r.failure
                gets.extend(r.value)
            out["db_get_p50_us"] = pct(gets, 0.5) / 1000
            out["db_get_p99_us"] = pct(gets, 0.99) / 1000
            takes: list[float] = []
            for _ in range(10):
                r = dep.run_query("bench:time_take50", {"owners": [f"o{i}" for i in range(100)]})
                assert r.failure is None, r.failure
                takes.extend(r.value)
            out["take50_p50_us"] = pct(takes, 0.5) / 1000
            out["take50_p99_us"] = pct(takes, 0.99) / 1000
            out["documents"] = float(len(table.docs))
        finally:
            await dep.close()
    return out


LOAD_CHILD = textwrap.dedent(
    """
    import asyncio, json, resource, sys, time
    from pathlib import Path
    from pyconvex.runtime.functions.deployment import Deployment
    async def main():
        t0 = time.perf_counter()
        dep = await Deployment.open(Path(sys.argv[1]), Path(sys.argv[2]))
        load = time.perf_counter() - t0
        docs = dep.store.tables["items"].docs
        n = len(docs)
        doc = docs[sys.argv[3]]
        version = json.loads(doc)["v"] if isinstance(doc, str) else doc["v"]
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        writer = getattr(dep.persistence, "inner", dep.persistence)  # behind the log
        writer_pid = getattr(writer, "pid", None)
        writer_rss = 0.0
        if writer_pid is not None:  # the DuckDB writer process, reported apart
            for line in open(f"/proc/{writer_pid}/status"):
                if line.startswith("VmRSS:"):
                    writer_rss = int(line.split()[1]) / 1024
        await dep.close()
        print(json.dumps({"load_s": load, "rss_mb": rss, "writer_rss_mb": writer_rss, "docs": n,
                          "updated_version": version}))
    asyncio.run(main())
    """
)


def count_label(n: int) -> str:
    """1_000_000 -> "1m", 100_000 -> "100k": figure names say how much they measured."""
    return f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k"


def write_log(path: Path, n_docs: int) -> tuple[str, int, int]:
    """A DuckDB log of ``n_docs`` live ~200-byte documents, written straight into it: every
    document inserted, a fifth of them updated later (superseded versions), and ``n_docs / 10``
    more inserted and then deleted. Returns an updated document's id, the row count and the
    newest timestamp."""
    import pyarrow as pa

    from pyconvex.runtime.store.duckdb_log import DuckDBLog
    from pyconvex.values import encode_id

    p = DuckDBLog(path)
    p.con.execute("INSERT INTO _tables VALUES (10, 'items')")
    ts = time.time_ns()
    body = "y" * 100
    rows = 0

    def append(ids: list[str], numbers: range, version: int, deleted: bool = False) -> None:
        # Document ``numbers[k]`` has id ``ids[k]``; an update keeps its creation time.
        nonlocal ts, rows
        values = [
            None
            if deleted
            else json.dumps(
                {
                    "owner": f"owner{i % 1000}",
                    "n": float(i),
                    "body": body,
                    "v": version,
                    "_id": doc_id,
                    "_creationTime": 1.7e12 + i,
                }
            )
            for i, doc_id in zip(numbers, ids, strict=True)
        ]
        tbl = pa.table(
            {
                "ts": pa.array(range(ts, ts + len(ids)), pa.uint64()),
                "table_number": pa.array([10] * len(ids), pa.int32()),
                "id": pa.array(ids),
                "deleted": pa.array([deleted] * len(ids)),
                "value": pa.array(values, pa.string()),
            }
        )
        ts += len(ids)
        rows += len(ids)
        p.con.register("_b", tbl)
        p.con.execute("INSERT INTO _documents SELECT * FROM _b")
        p.con.unregister("_b")

    chunk = 100_000
    live: list[str] = []
    for start in range(0, n_docs, chunk):
        numbers = range(start, min(n_docs, start + chunk))
        ids = [encode_id(10, os.urandom(16)) for _ in numbers]
        append(ids, numbers, 1)
        live += ids
    updated = live[::5]
    for start in range(0, len(updated), chunk):
        part = updated[start : start + chunk]
        append(part, range(start * 5, (start + len(part)) * 5, 5), 2)
    gone = [encode_id(10, os.urandom(16)) for _ in range(n_docs // 10)]
    append(gone, range(n_docs, n_docs + len(gone)), 1)
    append(gone, range(n_docs, n_docs + len(gone)), 1, deleted=True)
    p.con.execute("INSERT OR REPLACE INTO _meta VALUES ('max_ts', ?)", [str(ts)])
    p.close()
    return updated[len(updated) // 2], rows, ts


#: The write-ahead log's tail at a restart: records DuckDB does not hold yet (a crash before
#: they were applied), each a batch of TAIL_BATCH inserts.
TAIL_RECORDS = 200
TAIL_BATCH = 50


def write_log_tail(db_path: Path, after_ts: int, updated_id: str) -> int:
    """Records in the write-ahead log after ``after_ts``: ``TAIL_RECORDS`` batches of new
    documents, the last one also updating ``updated_id`` to version 3. Returns documents added."""
    from pyconvex.runtime.store.logged_persistence import wal_dir
    from pyconvex.runtime.store.persistence import Batch, DocumentWrite
    from pyconvex.runtime.store.wal import WalWriter, encode_batch
    from pyconvex.values import encode_id

    directory = wal_dir(db_path)
    directory.mkdir(mode=0o700, exist_ok=True)
    log = WalWriter(directory)
    ts = after_ts
    for r in range(TAIL_RECORDS):
        writes = []
        for k in range(TAIL_BATCH):
            ts += 1
            i = r * TAIL_BATCH + k
            doc_id = encode_id(10, os.urandom(16))
            doc = {"owner": "tail", "n": float(i), "body": "z" * 100, "v": 1, "_id": doc_id,
                   "_creationTime": 1.8e12 + i}  # fmt: skip
            writes.append(DocumentWrite(ts, 10, doc_id, doc))
        if r == TAIL_RECORDS - 1:
            ts += 1
            doc = {"owner": "x", "n": 0.0, "body": "", "v": 3, "_id": updated_id,
                   "_creationTime": 1.7e12}  # fmt: skip
            writes.append(DocumentWrite(ts, 10, updated_id, doc))
        batch = Batch(writes, [], [], ts, writes[0].ts - 1 if r else after_ts)
        log.append([encode_batch(batch)], batch.max_ts, batch.max_ts)
    log.close()
    return TAIL_RECORDS * TAIL_BATCH


def duckdb_scan_latest_s(path: Path) -> float:
    """DuckDB alone: the live version of every document of the log, into Arrow."""
    con = duckdb.connect(str(path), read_only=True)
    t0 = time.perf_counter()
    table = con.sql(
        "SELECT id, value FROM _documents WHERE table_number >= 0 "
        "QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts DESC) = 1 AND NOT deleted"
    ).arrow()
    if hasattr(table, "read_all"):  # newer DuckDB hands out a stream
        table = table.read_all()
    elapsed = time.perf_counter() - t0
    assert table.num_rows > 0
    con.close()
    return elapsed


def restart_metrics(n_docs: int) -> tuple[dict[str, float], dict[str, float]]:
    """Start-up over a log with history (:func:`write_log`), in a fresh process; and DuckDB
    scanning the same log's live versions (before the start-up compacts it)."""
    from pyconvex.runtime.store.duckdb_log import DB_FILE_DEFAULT

    label = count_label(n_docs)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fdir = make_project(root)
        data = root / ".pyconvex"
        updated_id, rows, last_ts = write_log(data / DB_FILE_DEFAULT, n_docs)
        scan = duckdb_scan_latest_s(data / DB_FILE_DEFAULT)
        # (PYCONVEX_WAL=off, for comparison: no write-ahead log, no tail.)
        wal = os.environ.get("PYCONVEX_WAL", "on").lower() not in ("off", "0", "false", "no")
        added = write_log_tail(data / DB_FILE_DEFAULT, last_ts, updated_id) if wal else 0
        res = subprocess.run(
            [sys.executable, "-c", LOAD_CHILD, str(fdir), str(data), updated_id],
            capture_output=True,
            text=True,
            check=True,
        )
        child = json.loads(res.stdout.strip().splitlines()[-1])
        assert child["docs"] == n_docs + added, child  # deletions gone, the log's tail there
        assert child["updated_version"] == (3 if wal else 2), child  # the newest version won
        metrics = {
            f"restart_load_{label}_s": child["load_s"],
            f"rss_{label}_mb": child["rss_mb"],
            f"writer_process_rss_{label}_mb": child["writer_rss_mb"],
            f"restart_log_rows_{label}": float(rows),
            f"restart_log_tail_records_{label}": float(TAIL_RECORDS if wal else 0),
        }
        return metrics, {f"duckdb_scan_latest_{label}_s": scan}


def duckdb_commits_per_s(seconds: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "ref.duckdb"))
        con.execute("CREATE TABLE t (id VARCHAR, value VARCHAR)")
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            con.execute("BEGIN")
            con.execute("INSERT INTO t VALUES (?, ?)", [str(n), "x" * 150])
            con.execute("COMMIT")
            n += 1
        rate = n / (time.perf_counter() - t0)
        con.close()
        return rate


def duckdb_batched_rows_per_s(batch: int, seconds: float) -> float:
    """Rows/s DuckDB commits in transactions of ``batch`` log-shaped rows (id, ts, ~200-byte
    JSON), inserted through Arrow as the engine's writer does for big batches."""
    import pyarrow as pa

    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "ref.duckdb"))
        con.execute(
            "CREATE TABLE _documents (ts UBIGINT, table_number INTEGER, id VARCHAR, "
            "deleted BOOLEAN, value VARCHAR)"
        )
        value = json.dumps({"owner": "o1", "n": 1.0, "body": "x" * 120, "_id": "i" * 32})
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            _b = pa.table(  # found by name by DuckDB's replacement scan
                {
                    "ts": pa.array(range(n, n + batch), pa.uint64()),
                    "table_number": pa.array([10] * batch, pa.int32()),
                    "id": pa.array([f"{i:032d}" for i in range(n, n + batch)]),
                    "deleted": pa.array([False] * batch),
                    "value": pa.array([value] * batch),
                }
            )
            con.execute("BEGIN; INSERT INTO _documents SELECT * FROM _b; COMMIT")
            n += batch
        rate = n / (time.perf_counter() - t0)
        con.close()
        return rate


def log_append_fsync_us(
    count: int, pause_s: float, work_us: float = 0.0, writeback_first: bool = False
) -> float:
    """p50 of appending a 200-byte record to a plain file and ``fdatasync``-ing it (what the
    write-ahead log does per batch), ``pause_s`` apart; microseconds. With ``work_us``, that
    much CPU work is done too: after the sync, or (``writeback_first``) between asking the
    kernel to start writing the record back and the sync, as the log does after idle."""
    with tempfile.TemporaryDirectory() as tmp:
        fd = os.open(Path(tmp) / "ref.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        times = []
        size = 0
        for _ in range(count):
            time.sleep(pause_s)
            t0 = time.perf_counter_ns()
            os.write(fd, b"x" * 200)
            if writeback_first:
                os.posix_fadvise(fd, size, 200, os.POSIX_FADV_DONTNEED)
                _spin(t0 + work_us * 1000)
                os.fdatasync(fd)
            else:
                os.fdatasync(fd)
                _spin(time.perf_counter_ns() + work_us * 1000)
            size += 200
            times.append((time.perf_counter_ns() - t0) / 1000)
        os.close(fd)
    return pct(times, 0.5)


def _spin(until_ns: float) -> None:
    while time.perf_counter_ns() < until_ns:
        pass


def sqlite_commits_per_s(seconds: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        con = sqlite3.connect(str(Path(tmp) / "ref.sqlite"), isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE t (id TEXT, value TEXT)")
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            con.execute("BEGIN")
            con.execute("INSERT INTO t VALUES (?, ?)", (str(n), "x" * 150))
            con.execute("COMMIT")
            n += 1
        rate = n / (time.perf_counter() - t0)
        con.close()
        return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller runs; loads 100k documents")
    ap.add_argument("--docs", type=int, default=1_000_000, help="documents for the load test")
    args = ap.parse_args()
    t0 = time.perf_counter()
    reference: dict[str, float] = {
        "duckdb_single_row_commits_per_s": duckdb_commits_per_s(1.0 if args.quick else 3.0),
        "sqlite_wal_single_row_commits_per_s": sqlite_commits_per_s(1.0 if args.quick else 3.0),
        "log_append_fsync_p50_us": log_append_fsync_us(200, 0.0),
        "log_append_fsync_after_50ms_idle_p50_us": log_append_fsync_us(60, 0.05),
        "log_append_fsync_then_150us_work_after_idle_p50_us": log_append_fsync_us(60, 0.05, 150),
        "log_append_writeback_150us_work_fsync_after_idle_p50_us": log_append_fsync_us(
            60, 0.05, 150, writeback_first=True
        ),
    }
    # The loop `pyconvex dev` serves on (uvloop when installed).
    from pyconvex.runtime.net.event_loop import run

    metrics = run(engine_metrics(args.quick))
    batch = max(1, round(metrics["insert_256_mutations_per_batch"]))
    reference["duckdb_batch_rows"] = batch
    reference["duckdb_batched_rows_per_s"] = duckdb_batched_rows_per_s(
        batch, 1.0 if args.quick else 3.0
    )
    restart, restart_reference = restart_metrics(100_000 if args.quick else args.docs)
    metrics.update(restart)
    reference.update(restart_reference)
    metrics["insert_256_vs_duckdb_commits"] = (
        metrics["insert_mutations_per_s_256"] / reference["duckdb_single_row_commits_per_s"]
    )
    metrics["insert_256_vs_duckdb_batched"] = (
        metrics["insert_mutations_per_s_256"] / reference["duckdb_batched_rows_per_s"]
    )
    machine = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "duckdb": duckdb.__version__,
        "bench_seconds": round(time.perf_counter() - t0, 1),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps({"metrics": metrics, "reference": reference, "machine": machine}))


if __name__ == "__main__":
    main()
