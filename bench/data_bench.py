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
import time
from pathlib import Path

import duckdb

from pyconvex.client.admin import AdminClient
from pyconvex.client.data_transfer import DataClient
from pyconvex.dev.launcher import DevServer

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "docs": define_table({"name": v.string(), "n": v.float64(), "cat": v.string()}),
})
"""
GROUP_BY = "SELECT cat, count(*) AS c, avg(n) AS a FROM docs GROUP BY cat ORDER BY cat"


def log(msg: str) -> None:
    print(f"[data_bench] {msg}", file=sys.stderr, flush=True)


def write_jsonl(path: Path, count: int) -> None:
    with path.open("w") as f:
        for i in range(count):
            f.write(json.dumps({"name": f"doc {i}", "n": float(i % 1000), "cat": f"c{i % 17}"}))
            f.write("\n")


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
        with DevServer(project, "--typecheck", "disable", keep_lines=50) as server:
            client = DataClient(AdminClient(server.url, server.admin_key, timeout=600))
            log("import")
            t = time.perf_counter()
            done = client.import_file(data, "jsonl", "docs", None)
            import_s = time.perf_counter() - t
            assert done["documents"] == {"docs": count}, done
            log(f"  {count / import_s:,.0f} docs/s")
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
                    "export_parquet_1m_docs_per_s": round(count / parquet_s),
                    "export_zip_1m_docs_per_s": round(count / zip_s),
                    "sql_groupby_1m_ms": round(min(groupby) * 1000, 1),
                },
                "reference": {
                    "duckdb_read_json_docs_per_s": round(count / ref_import_s),
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
