"""Data benchmark: import, export and `pyconvex sql` of a real `pyconvex dev`, each beside
DuckDB doing the same job on the same data in the same run.

    .venv/bin/python bench/data_bench.py [--quick]      # --quick: 100,000 documents, not 1M

Progress goes to stderr; the LAST line on stdout is one JSON object
{"metrics": {...}, "reference": {...}, "machine": {...}}:

* ``import_jsonl_1m_docs_per_s``: a JSONL file of N documents (`name`, `n`, `cat`) imported
  into an empty table through the admin API (the file streamed, every row validated against
  the schema, one commit, durable). Reference ``duckdb_read_json_docs_per_s``: DuckDB's
  ``read_json`` of the same file into a table.
* ``export_parquet_1m_docs_per_s`` / ``export_zip_1m_docs_per_s``: the table exported (one
  snapshot, streamed to the client) as Parquet / as Convex's snapshot ZIP. Reference
  ``duckdb_copy_parquet_docs_per_s``: DuckDB's ``COPY ... TO parquet`` of that table.
* ``import_query_max_ms`` / ``import_query_p50_ms``: while the import runs, another client
  sends a trivial query over HTTP every 50 ms; its slowest and median answer — what the import
  costs everyone else (the longest loop turn the import takes shows as the slowest). Reference
  ``idle_query_p50_ms``: the same query with nothing else going on.
* ``import_mutation_max_ms`` / ``import_mutation_p50_ms``: the same for a third client's
  trivial mutation every 50 ms. Mutations wait while the import puts its documents into
  memory (so that none sees part of it): the slowest shows that wait.
* ``sql_groupby_1m_ms``: ``SELECT cat, count(*), avg(n) ... GROUP BY cat`` through
  ``pyconvex sql`` (the admin route, over the table's view). Reference
  ``duckdb_groupby_ms``: the same query on DuckDB's own table.

Names say 1m; with --quick they measure 100k documents (``machine.documents`` says which).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import httpx

from pyconvex.client.admin import AdminClient
from pyconvex.client.data_transfer import DataClient
from pyconvex.dev.launcher import DevServer

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "docs": define_table({"name": v.string(), "n": v.float64(), "cat": v.string()}),
})
"""
PING = """
from pyconvex import mutation, query


@query
async def ping(ctx) -> float:
    return 1.0


@mutation
async def touch(ctx) -> float:
    return 1.0
"""
GROUP_BY = "SELECT cat, count(*) AS c, avg(n) AS a FROM docs GROUP BY cat ORDER BY cat"


def log(msg: str) -> None:
    print(f"[data_bench] {msg}", file=sys.stderr, flush=True)


def write_jsonl(path: Path, count: int) -> None:
    with path.open("w") as f:
        for i in range(count):
            f.write(json.dumps({"name": f"doc {i}", "n": float(i % 1000), "cat": f"c{i % 17}"}))
            f.write("\n")


class Pinger:
    """Another client: a query over HTTP every ``every_s`` while running; its latencies."""

    def __init__(self, url: str, every_s: float = 0.05, kind: str = "query") -> None:
        self.url = url
        self.kind = kind
        self.every_s = every_s
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def ping(self, client: httpx.Client) -> float:
        t = time.perf_counter()
        path = "ping:ping" if self.kind == "query" else "ping:touch"
        r = client.post(f"{self.url}/api/{self.kind}", json={"path": path, "args": {}})
        r.raise_for_status()
        return time.perf_counter() - t

    def _run(self) -> None:
        with httpx.Client(timeout=120) as client:
            while not self._stop.is_set():
                self.latencies.append(self.ping(client))
                self._stop.wait(self.every_s)

    def __enter__(self) -> Pinger:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def idle_query_s(url: str) -> float:
    pinger = Pinger(url)
    with httpx.Client(timeout=10) as client:
        samples = sorted(pinger.ping(client) for _ in range(30))
    return samples[len(samples) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 documents")
    count = 100_000 if parser.parse_args().quick else 1_000_000
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        data = tmp / "docs.jsonl"
        write_jsonl(data, count)
        log(f"{count} documents, {data.stat().st_size / 1e6:.0f} MB of JSONL")

        con = duckdb.connect(str(tmp / "ref.duckdb"))
        t = time.perf_counter()
        con.execute(f"CREATE TABLE docs AS SELECT * FROM read_json('{data}')")
        ref_import_s = time.perf_counter() - t
        t = time.perf_counter()
        con.execute(f"COPY docs TO '{tmp / 'ref.parquet'}' (FORMAT parquet)")
        ref_parquet_s = time.perf_counter() - t
        ref_groupby = []
        for _ in range(5):
            t = time.perf_counter()
            con.execute(GROUP_BY).fetchall()
            ref_groupby.append(time.perf_counter() - t)
        con.close()

        project = tmp / "project"
        (project / "convex").mkdir(parents=True)
        (project / "convex" / "schema.py").write_text(SCHEMA)
        (project / "convex" / "ping.py").write_text(PING)
        with DevServer(project, "--typecheck", "disable", keep_lines=50) as server:
            client = DataClient(AdminClient(server.url, server.admin_key, timeout=600))
            idle_s = idle_query_s(server.url)
            log("import")
            with Pinger(server.url) as pinger, Pinger(server.url, kind="mutation") as writer:
                t = time.perf_counter()
                done = client.import_file(data, "jsonl", "docs", None)
                import_s = time.perf_counter() - t
            during = sorted(pinger.latencies)
            writes = sorted(writer.latencies)
            assert done["documents"] == {"docs": count}, done
            log(
                f"  {count / import_s:,.0f} docs/s; another client's query: slowest "
                f"{during[-1] * 1000:.0f} ms, median {during[len(during) // 2] * 1000:.1f} ms"
            )
            log("export parquet")
            t = time.perf_counter()
            described = client.export(io.BytesIO(), "parquet", ["docs"], False)
            parquet_s = time.perf_counter() - t
            assert described["documents"] == {"docs": count}
            log("export zip")
            t = time.perf_counter()
            client.export(io.BytesIO(), "zip", ["docs"], False)
            zip_s = time.perf_counter() - t
            log("sql group by")
            groupby = []
            for _ in range(5):
                t = time.perf_counter()
                with client.sql(GROUP_BY) as result:
                    rows = [row for batch in result.batches for row in batch]
                groupby.append(time.perf_counter() - t)
            assert sum(row[1] for row in rows) == count
    print(
        json.dumps(
            {
                "metrics": {
                    "import_jsonl_1m_docs_per_s": round(count / import_s),
                    "import_query_max_ms": round(during[-1] * 1000, 1),
                    "import_query_p50_ms": round(during[len(during) // 2] * 1000, 1),
                    "import_mutation_max_ms": round(writes[-1] * 1000, 1),
                    "import_mutation_p50_ms": round(writes[len(writes) // 2] * 1000, 1),
                    "export_parquet_1m_docs_per_s": round(count / parquet_s),
                    "export_zip_1m_docs_per_s": round(count / zip_s),
                    "sql_groupby_1m_ms": round(min(groupby) * 1000, 1),
                },
                "reference": {
                    "duckdb_read_json_docs_per_s": round(count / ref_import_s),
                    "idle_query_p50_ms": round(idle_s * 1000, 1),
                    "duckdb_copy_parquet_docs_per_s": round(count / ref_parquet_s),
                    "duckdb_groupby_ms": round(min(ref_groupby) * 1000, 1),
                },
                "machine": {
                    "nproc": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "documents": count,
                    "elapsed_s": round(time.monotonic() - started, 1),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
