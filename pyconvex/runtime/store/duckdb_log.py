"""DuckDB, the system of record: an append-only document log written in batches.

Layout (all in one DuckDB file):

* ``_documents(ts, table_number, id, deleted, value)`` — every document version, ``value``
  being the document in Convex JSON. Appended through Arrow, one DuckDB transaction per batch
  of mutations: a DuckDB commit costs ~1-2 ms whatever it holds, so batching is the point.
* ``_tables(number, name)``, ``_meta(key, value)`` (``max_ts``: the clock never goes back across
  restarts), ``_session_requests`` (results of mutations by (session, request) so a client's
  re-send after a reconnect is answered, not re-applied).
* One view per user table with the latest version of each live document and typed columns
  where the schema allows — plain SQL (``pyconvex sql``, exports) reads those.

This class is DuckDB's half of the persistence seam (``persistence.py``): synchronous, used
by one thread at a time. After start-up a file's connection belongs to the writer process
(``writer_process.py``), which runs this class there; an in-memory database stays in the
server, on a thread of its own (``thread_persistence.py``).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pyconvex.errors import StorageError
from pyconvex.project import ensure_private_dir, private_files
from pyconvex.runtime.store.persistence import (
    RESULTS_PER_SESSION,
    Batch,
    DocumentChunk,
    DocumentWrite,
    LoadedState,
)
from pyconvex.values import dumps_value, dumps_values

__all__ = ["DB_FILE_DEFAULT", "Batch", "DocumentWrite", "DuckDBLog", "LoadedState"]

FORMAT_VERSION = "1"
DB_FILE_DEFAULT = "data.duckdb"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS _documents (
    ts UBIGINT NOT NULL, table_number INTEGER NOT NULL, id VARCHAR NOT NULL,
    deleted BOOLEAN NOT NULL, value VARCHAR
);
CREATE TABLE IF NOT EXISTS _tables (number INTEGER PRIMARY KEY, name VARCHAR NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS _meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS _session_requests (
    session_id VARCHAR NOT NULL, request_id BIGINT NOT NULL, ts UBIGINT NOT NULL,
    result VARCHAR NOT NULL
);
"""


_LITERAL_ROWS = 16
#: The table number of the log rows that keep mutation results for idempotent re-sends.
SESSION_REQUESTS_TABLE = -1
PreparedBatch = tuple[str, "pa.Table | None"]


def session_request_key(session: str, request: int) -> str:
    """The log ``id`` of a mutation result: session id and request id (NUL never appears in
    a session id, which is a UUID)."""
    return f"{session}\x00{int(request)}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _staged_table(key: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9]+", key):
        raise StorageError(f"Bad staging key {key!r}.")
    return f"_staged_{key}"


def _connect_waiting_for_lock(path: Path, wait_s: float = 5.0) -> duckdb.DuckDBPyConnection:
    """Open ``path``, waiting a little while another process holds its lock: the writer
    process of a server that was just killed exits as soon as it notices (its pipe closes)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as e:
            if "lock" not in str(e).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class DuckDBLog:
    """The DuckDB file (or an in-memory database when ``path`` is None)."""

    def __init__(self, path: Path | None, *, literal_rows: int = _LITERAL_ROWS) -> None:
        self.path = path
        #: Batches with more rows than this go through Arrow, smaller ones as SQL literals.
        #: Arrow is faster from ~4 rows on, but its scan needs the GIL many times, which a busy
        #: event loop in the same process makes slow; the writer process (its own GIL) sets 6.
        self.literal_rows = literal_rows
        #: Typed columns of each table's SQL view (set from the schema by the deployment).
        self.view_columns: dict[str, dict[str, str]] = {}
        try:
            if path is not None:
                ensure_private_dir(path.parent)
                with private_files():  # the database and its WAL: 0600
                    self.con = _connect_waiting_for_lock(path)
            else:
                self.con = duckdb.connect(":memory:")
        except duckdb.Error as e:  # e.g. another process holds the file
            raise StorageError(
                f"Cannot open the database {path}: {e}. Is another pyconvex process serving "
                "this project? DuckDB allows one writer process; stop it or use its admin API."
            ) from e
        self.con.execute(_SCHEMA)
        rows = self.con.execute("SELECT value FROM _meta WHERE key = 'format'").fetchall()
        row = rows[0] if rows else None
        if row is None:
            self.con.execute("INSERT INTO _meta VALUES ('format', ?)", [FORMAT_VERSION])
        elif row[0] != FORMAT_VERSION:
            raise StorageError(
                f"{path} was written by an incompatible pyconvex (format {row[0]}, this one reads "
                f"{FORMAT_VERSION}). Export it with the version that wrote it."
            )
        #: ``max_ts`` of the newest batch written: the next one must name it as ``after_ts``.
        self.last_ts = self.committed_ts()

    def close(self) -> None:
        self.con.close()

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one SQL statement and return its rows (the per-table views make it useful)."""
        return self.con.execute(query, params).fetchall()

    # -- start-up ------------------------------------------------------------------------
    def committed_ts(self) -> int:
        """The newest commit timestamp in the file: every batch with ``max_ts`` at or below it
        is committed (a batch writes its ``max_ts`` in its own transaction), every later one
        is not. A new writer process asks this after the last one died mid-batch."""
        rows = self.con.execute("SELECT value FROM _meta WHERE key = 'max_ts'").fetchall()
        meta_ts = int(rows[0][0]) if rows else 0
        rows = self.con.execute("SELECT max(ts) FROM _documents").fetchall()
        return max(meta_ts, int(rows[0][0]) if rows and rows[0][0] is not None else 0)

    def load(self, index_paths: dict[str, list[str]] | None = None) -> LoadedState:
        """Read the tables, the clock and the session results; documents come lazily, with the
        JSON of the fields at ``index_paths[table name]`` cut out for index building."""
        con = self.con
        self.drop_staged()
        tables = {
            name: number
            for number, name in con.execute("SELECT number, name FROM _tables").fetchall()
        }
        # Mutation results: log rows of table -1 (and the table older files kept them in).
        requests = {
            (s, int(r)): (int(ts), result)
            for s, r, ts, result in con.execute(
                "SELECT session_id, request_id, ts, result FROM _session_requests"
            ).fetchall()
        }
        for key, ts, result in con.execute(
            f"SELECT id, ts, value FROM _documents WHERE table_number = {SESSION_REQUESTS_TABLE}"
        ).fetchall():
            session, _, request = key.rpartition("\x00")
            requests[(session, int(request))] = (int(ts), result)
        paths = {tables[name]: p for name, p in (index_paths or {}).items() if name in tables}
        return LoadedState(tables, self.committed_ts(), self._latest_documents(paths), requests)

    def _latest_documents(self, index_paths: dict[int, list[str]]) -> Iterator[DocumentChunk]:
        """Batches of live documents: (table number, ids, _creationTimes, JSON texts, and for
        each path of ``index_paths[table]`` the JSON text of that field, None if missing).

        The log is compacted first when it holds superseded versions or deletions, so the
        read is a plain scan rather than a window over every version. Indexed fields are cut
        out by DuckDB, so documents need not be parsed to build the indexes.
        """
        ((dupes, deletes),) = self.con.execute(
            "SELECT count(*) - count(DISTINCT id), coalesce(bool_or(deleted), false) FROM _documents"
        ).fetchall()
        if dupes or deletes:
            self.compact()
        numbers = [
            n
            for (n,) in self.con.execute(
                "SELECT DISTINCT table_number FROM _documents WHERE table_number >= 0"
            ).fetchall()
        ]
        for number in numbers:
            paths = index_paths.get(number, [])
            extracts = "".join(
                ", json_extract(value, '$." + ".".join(f'"{p}"' for p in path.split(".")) + "')"
                for path in paths
            )
            reader = self.con.sql(
                "SELECT id, CAST(json_extract(value, '$._creationTime') AS DOUBLE), value"
                f"{extracts} FROM _documents WHERE table_number = {int(number)} ORDER BY ts"
            ).to_arrow_reader(200_000)
            for batch in reader:
                cols = [c.to_pylist() for c in batch.columns]
                yield number, cols[0], cols[1], cols[2], cols[3:]

    def compact(self) -> int:
        """Drop superseded versions and deletions from the log; returns rows removed."""
        con = self.con
        ((before,),) = con.execute("SELECT count(*) FROM _documents").fetchall()
        con.execute("BEGIN")
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _keep AS
            SELECT * FROM _documents
            QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts DESC) = 1 AND NOT deleted
            """
        )
        con.execute("DELETE FROM _documents")
        con.execute("INSERT INTO _documents SELECT * FROM _keep")
        con.execute("DROP TABLE _keep")
        self._record_max_ts(self.last_ts)
        con.execute("COMMIT")
        ((after,),) = con.execute("SELECT count(*) FROM _documents").fetchall()
        return int(before) - int(after)

    def checkpoint(self) -> int:
        """Write DuckDB's own WAL into the file; returns the newest batch it holds."""
        self.con.execute("CHECKPOINT")
        return self.last_ts

    def _record_max_ts(self, max_ts: int) -> None:
        """Keep the clock in ``_meta`` (inside the caller's transaction)."""
        self.con.execute(
            "INSERT OR REPLACE INTO _meta SELECT 'max_ts', CAST(greatest(?, "
            "COALESCE((SELECT CAST(value AS UBIGINT) FROM _meta WHERE key = 'max_ts'), 0)) "
            "AS VARCHAR)",
            [int(max_ts)],
        )

    def prune(self, results_before_ts: int = 0) -> int:
        """Drop the versions a newer one superseded, then deletions, from the document log
        (the SQL views and the next start-up read only the newest); returns rows removed.
        Freed blocks are reused by later writes, so the file stops growing under updates."""
        con = self.con
        ((before,),) = con.execute("SELECT count(*) FROM _documents").fetchall()
        con.execute("BEGIN")
        con.execute(
            """
            DELETE FROM _documents AS d USING (
                SELECT id, max(ts) AS newest FROM _documents WHERE table_number >= 0 GROUP BY id
            ) AS n
            WHERE d.id = n.id AND d.ts < n.newest AND d.table_number >= 0
            """
        )
        con.execute("DELETE FROM _documents WHERE deleted AND table_number >= 0")
        # Mutation results older than the re-send window (session_results.py).
        con.execute(
            f"DELETE FROM _documents WHERE table_number = {SESSION_REQUESTS_TABLE} AND ts < ?",
            [int(results_before_ts)],
        )
        # ...and beyond each session's newest RESULTS_PER_SESSION (as SessionResults keeps).
        con.execute(
            f"""
            DELETE FROM _documents AS d USING (
                SELECT id, ts FROM _documents WHERE table_number = {SESSION_REQUESTS_TABLE}
                QUALIFY row_number() OVER (
                    PARTITION BY split_part(id, chr(0), 1) ORDER BY ts DESC
                ) > {int(RESULTS_PER_SESSION)}
            ) AS old
            WHERE d.table_number = {SESSION_REQUESTS_TABLE} AND d.id = old.id AND d.ts = old.ts
            """
        )
        self._record_max_ts(self.last_ts)  # the clock must not go back with what was pruned
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
        ((after,),) = con.execute("SELECT count(*) FROM _documents").fetchall()
        return int(before) - int(after)

    # -- the write path ------------------------------------------------------------------
    #
    # A batch is written in two steps: ``prepare`` renders the whole transaction as one SQL
    # text (small batches inline their rows as literals, big ones scan an Arrow table), and
    # ``write_prepared`` runs it with one ``execute``. In the writer process both run back to
    # back. On the in-memory path ``prepare`` runs on the event loop and ``write_prepared`` on
    # the committer's thread, which then needs the GIL as rarely as DuckDB allows: waiting for a
    # GIL held by a busy event loop made a 32-document commit take ~25 ms instead of ~2 ms.

    def prepare(self, batch: Batch) -> PreparedBatch:
        """The batch's transaction: SQL text, plus an Arrow table of its log rows when there
        are more than ``literal_rows`` of them (else they are inlined as literals).

        Every row goes into ``_documents`` with one INSERT — mutation results for idempotent
        re-sends too, as rows of table number -1 — because DuckDB spends ~0.5 ms of CPU on
        each statement whatever it holds.
        """
        dumps = dumps_value
        statements = ["BEGIN"]
        if batch.new_tables:
            values = ", ".join(f"({int(n)}, {_literal(name)})" for n, name in batch.new_tables)
            statements.append(f"INSERT INTO _tables VALUES {values}")
        docs = batch.documents
        requests = batch.session_requests
        arrow = None
        if len(docs) + len(requests) > self.literal_rows:
            # DuckDB binds VALUES lists at ~45 us a row: big batches go through Arrow.
            ts = [d.ts for d in docs]
            numbers = [d.table_number for d in docs]
            ids = [d.doc_id for d in docs]
            deleted = [d.doc is None for d in docs]
            values_ = [None if d.doc is None else dumps(d.doc) for d in docs]
            for session, request, request_ts, result in requests:
                ts.append(request_ts)
                numbers.append(SESSION_REQUESTS_TABLE)
                ids.append(session_request_key(session, request))
                deleted.append(False)
                values_.append(result)
            arrow = pa.Table.from_arrays(
                [
                    pa.array(ts, pa.uint64()),
                    pa.array(numbers, pa.int32()),
                    pa.array(ids, pa.string()),
                    pa.array(deleted, pa.bool_()),
                    pa.array(values_, pa.string()),
                ],
                names=["ts", "table_number", "id", "deleted", "value"],
            )
            # Found by name in write_prepared's frame (DuckDB's replacement scan): cheaper
            # than registering a view per batch.
            statements.append("INSERT INTO _documents SELECT * FROM _pyconvex_batch")
        elif docs or requests:
            rows = [
                f"({int(d.ts)},{int(d.table_number)},{_literal(d.doc_id)},true,NULL)"
                if d.doc is None
                else f"({int(d.ts)},{int(d.table_number)},{_literal(d.doc_id)},false,"
                f"{_literal(dumps(d.doc))})"
                for d in docs
            ]
            rows += [
                f"({int(request_ts)},{SESSION_REQUESTS_TABLE},"
                f"{_literal(session_request_key(session, request))},false,{_literal(result)})"
                for session, request, request_ts, result in requests
            ]
            statements.append(f"INSERT INTO _documents VALUES {','.join(rows)}")
        for key, staged_ts in batch.staged:
            table = _staged_table(key)
            statements.append(
                f"INSERT INTO _documents SELECT {int(staged_ts)}, table_number, id, deleted, "
                f"value FROM {table}"
            )
            statements.append(f"DROP TABLE {table}")
        newest = max(
            max((d.ts for d in docs), default=0),
            max((r[2] for r in requests), default=0),
            max((ts for _, ts in batch.staged), default=0),
        )
        if newest < batch.max_ts:
            # The clock is max(ts) of the log; record it only when the log can't show it
            # (committed_ts must name this batch, or a new writer would write it again).
            statements.append(
                f"INSERT OR REPLACE INTO _meta VALUES ('max_ts', '{int(batch.max_ts)}')"
            )
        statements.append("COMMIT")
        return ";\n".join(statements), arrow

    def write_prepared(self, prepared: PreparedBatch, batch: Batch) -> None:
        """Run a prepared batch's transaction. Raises StorageError if it did not commit, or
        if it does not follow the last batch written (one before it failed: see
        ``persistence.py``)."""
        if batch.after_ts != self.last_ts:
            raise StorageError(
                "Not written: the batch before it was not written (it failed, and this one "
                "may depend on it)."
            )
        con = self.con
        sql, _pyconvex_batch = prepared  # the name the SQL scans (see prepare)
        new_tables = batch.new_tables
        try:
            con.execute(sql)
            self.last_ts = max(self.last_ts, batch.max_ts)
            if new_tables:
                self.create_views(
                    (name, number, self.view_columns.get(name, {}))
                    for number, name in new_tables
                    if not name.startswith("_")
                )
        except Exception as e:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise StorageError(f"Writing to {self.path or 'the database'} failed: {e}") from e
        finally:
            del _pyconvex_batch

    def write_batch(self, batch: Batch) -> None:
        """Prepare and write a batch in one go (tools and tests; the committer splits it)."""
        self.write_prepared(self.prepare(batch), batch)

    # -- staged rows (imports) ------------------------------------------------------------
    def stage_rows(self, key: str, rows: pa.Table) -> None:
        """Write log rows ahead of their commit (``table_number``, ``id``, ``deleted``,
        ``value``) into a table of their own; a batch naming ``key`` in ``staged`` moves them
        into the log in its transaction. An import sends a million documents this way, in
        chunks, while other commits go on."""
        table = _staged_table(key)
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (table_number INTEGER, id VARCHAR, "
            "deleted BOOLEAN, value VARCHAR)"
        )
        _pyconvex_rows = rows
        self.con.execute(f"INSERT INTO {table} SELECT * FROM _pyconvex_rows")

    def stage_documents(self, key: str, table_number: int, docs: list[dict[str, Any]]) -> list[int]:
        """:meth:`stage_rows` of documents, serialised here (in the writer process, off the
        server's event loop); returns the length of each one's JSON text."""
        texts = dumps_values(docs)
        self.stage_rows(
            key,
            pa.table(
                {
                    "table_number": pa.array([table_number] * len(docs), pa.int32()),
                    "id": pa.array([d["_id"] for d in docs], pa.string()),
                    "deleted": pa.array([False] * len(docs), pa.bool_()),
                    "value": pa.array(texts, pa.string()),
                }
            ),
        )
        return [len(t) for t in texts]

    def stage_deletions(self, key: str, table_number: int, ids: list[str]) -> None:
        """:meth:`stage_rows` of deletions (an import's replace)."""
        self.stage_rows(
            key,
            pa.table(
                {
                    "table_number": pa.array([table_number] * len(ids), pa.int32()),
                    "id": pa.array(ids, pa.string()),
                    "deleted": pa.array([True] * len(ids), pa.bool_()),
                    "value": pa.nulls(len(ids), pa.string()),
                }
            ),
        )

    def drop_staged(self, key: str | None = None) -> None:
        """Forget staged rows: of ``key``, or all of them (at start-up: an import that never
        committed)."""
        if key is not None:
            self.con.execute(f"DROP TABLE IF EXISTS {_staged_table(key)}")
            return
        for (name,) in self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE starts_with(table_name, '_staged_')"
        ).fetchall():
            self.con.execute(f"DROP TABLE IF EXISTS {_quote(name)}")

    # -- SQL-friendly views --------------------------------------------------------------
    def create_views(self, tables: Iterable[tuple[str, int, dict[str, str]]]) -> None:
        """(Re)create one view per user table: ``_id``, ``_creationTime``, typed columns, and
        ``_document`` (the whole document as JSON).

        ``columns`` maps a top-level field to a DuckDB type (VARCHAR, DOUBLE, BOOLEAN, JSON).
        """
        con = self.con
        for name, number, columns in tables:
            if not _IDENT.match(name):
                continue
            cols = []
            for fname, sqltype in sorted(columns.items()):
                if not _IDENT.match(fname):
                    continue
                path = "'$.\"" + fname + "\"'"
                if sqltype == "VARCHAR":
                    expr = f"json_extract_string(value, {path})"
                elif sqltype == "JSON":
                    expr = f"json_extract(value, {path})"
                else:
                    expr = f"TRY_CAST(json_extract(value, {path}) AS {sqltype})"
                cols.append(f"{expr} AS {_quote(fname)}")
            extra = "".join(", " + c for c in cols)
            con.execute(
                f"""
                CREATE OR REPLACE VIEW {_quote(name)} AS
                SELECT id AS _id,
                       CAST(json_extract(value, '$._creationTime') AS DOUBLE) AS _creationTime
                       {extra},
                       CAST(value AS JSON) AS _document
                FROM _documents WHERE table_number = {int(number)}
                QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts DESC) = 1 AND NOT deleted
                """
            )
