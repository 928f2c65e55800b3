"""A columnar copy of tables in an in-memory DuckDB, brought up to one timestamp on demand.

``pyconvex sql`` and the CSV / Parquet exports read tables as typed columns
(:mod:`.columns`). The in-memory MVCC store is the truth; this keeps a copy of the tables that
were asked for in DuckDB, one table per user table under the ``_mirror`` schema and a view of
the table's own name over it (its columns plus ``_document``, the whole document as JSON)::

    mirror = SqlMirror(deployment)
    async with mirror.snapshot(["messages"]) as snap:  # every table at snap.ts
        reader = await snap.run("SELECT body, count(*) FROM messages GROUP BY body")

A table is copied whole the first time it is asked for (its documents read at one pinned
timestamp, a chunk per loop turn, so the server goes on serving); after that a commit listener
notes which documents changed, and the next snapshot replaces just those. A snapshot is a
read-only DuckDB transaction begun right after the copy reached its timestamp, so later
refreshes never show through it. Nothing in DuckDB here can reach files (external access is
off), and the copy is dropped after ``IDLE_S`` without use.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from pyconvex.runtime.data.columns import TableColumns, schema_kinds
from pyconvex.runtime.store.memory import Store, TableState, parse_document
from pyconvex.runtime.store.read_set import Commit, CommitListener
from pyconvex.runtime.store.schema_state import SchemaState

#: Documents read from the store per loop turn.
CHUNK = 10_000
#: The copy is dropped after this long without a snapshot.
IDLE_S = 600.0


class MirrorDeployment(Protocol):
    store: Store
    schema: SchemaState

    def add_commit_listener(self, listener: CommitListener) -> Callable[[], None]: ...


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class _Copy:
    """One mirrored table."""

    name: str
    number: int
    columns: TableColumns
    schema_kinds: dict[str, str]
    #: Every document was checked against the table's schema: no field outside it, and
    #: each field of its declared type.
    validated: bool = False
    #: Documents written (durably) since the copy was last brought up to date.
    dirty: set[str] = field(default_factory=set)
    ts: int = 0


def visible_documents(table: TableState, ids: list[str], ts: int) -> list[dict[str, Any]]:
    """The versions of ``ids`` visible at ``ts`` (documents kept as JSON text are parsed
    without keeping the parsed form)."""
    out = []
    history = table.history
    docs = table.docs
    for doc_id in ids:
        if doc_id in history:
            d = table.get(doc_id, ts)
        else:
            raw = docs.get(doc_id)
            d = parse_document(raw) if type(raw) is str else raw  # type: ignore[assignment]
        if d is not None:
            out.append(d)
    return out


def table_ids(table: TableState) -> list[str]:
    """Every id with a version in ``table``: the head documents, then deleted ones still
    in the history (a snapshot may see them)."""
    ids = list(table.docs)
    ids.extend(i for i in table.history if i not in table.docs)
    return ids


class SqlMirror:
    """See the module docstring."""

    def __init__(self, deployment: MirrorDeployment) -> None:
        self._dep = deployment
        self._con = duckdb.connect(
            ":memory:", config={"enable_external_access": False, "threads": 2}
        )
        self._con.execute("CREATE SCHEMA _mirror; CREATE TABLE _mirror._meta (ts UBIGINT)")
        self._copies: dict[str, _Copy] = {}
        self._lock = asyncio.Lock()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="pyconvex-sql-mirror")
        self._remove_listener: Callable[[], None] | None = None
        self._idle: asyncio.TimerHandle | None = None
        self.closed = False

    # -- commits ---------------------------------------------------------------------------
    def _on_commit(self, latest_ts: int, commits: list[Commit]) -> None:
        copies = self._copies
        for commit in commits:
            if not copies or copies.keys().isdisjoint(commit.writes.tables()):
                continue
            for entry in commit.writes.entries:
                copy = copies.get(entry.table)
                if copy is not None:
                    copy.dirty.add(entry.doc_id)

    # -- snapshots -------------------------------------------------------------------------
    def table_names(self, referenced: set[str]) -> list[str]:
        """The store's tables among names a query refers to (DuckDB matches names without
        regard to case)."""
        tables = set(self._dep.store.tables) | set(self._dep.schema.declared_tables())
        lower = {name.lower(): name for name in tables}
        out = []
        for name in referenced:
            found = name if name in tables else lower.get(name.lower())
            if found is not None:
                out.append(found)
        return sorted(set(out))

    def columns(self, name: str) -> dict[str, str]:
        """``{column: kind}`` of a table's copy (as of its last snapshot)."""
        return dict(self._copies[name].columns.kinds)

    @contextlib.asynccontextmanager
    async def snapshot(
        self, tables: list[str], progress: Callable[[str, int, int], None] | None = None
    ) -> AsyncIterator[Snapshot]:
        """Every table of ``tables`` brought up to the durable timestamp, and a read-only
        DuckDB transaction over them (closed on exit)."""
        if self.closed:
            raise RuntimeError("the SQL mirror is closed")
        loop = asyncio.get_running_loop()
        store = self._dep.store
        async with self._lock:
            if self._remove_listener is None:
                self._remove_listener = self._dep.add_commit_listener(self._on_commit)
            ts = store.durable_ts
            store.pin(ts)
            try:
                for name in tables:
                    await self._refresh(name, ts, progress)
            finally:
                store.unpin(ts)
            cursor = self._con.cursor()
            await loop.run_in_executor(self._executor, _begin, cursor)
        self._touch()
        try:
            yield Snapshot(cursor, ts, self._executor)
        finally:
            await loop.run_in_executor(None, _end, cursor)

    async def _refresh(
        self, name: str, ts: int, progress: Callable[[str, int, int], None] | None
    ) -> None:
        store = self._dep.store
        table = store.tables.get(name)
        copy = self._copies.get(name)
        definition = self._dep.schema.definition
        declared = definition.tables.get(name) if definition is not None else None
        kinds = schema_kinds(declared.document if declared is not None else None)
        if table is None and declared is not None:
            table = TableState(name, 0)  # declared, no document yet: an empty table
        if table is None:
            if copy is not None:
                del self._copies[name]
                await self._run(self._drop, name)
            return
        validated = self._dep.schema.document_validator(name) is not None
        if (
            copy is None
            or copy.number != table.number
            or copy.schema_kinds != kinds
            or copy.validated != validated
        ):
            copy = _Copy(name, table.number, TableColumns(kinds), kinds, validated)
            self._copies[name] = copy  # from here on its writes are noted
            await self._copy_whole(copy, table, ts, progress)
            return
        if not copy.dirty:
            return
        ids, copy.dirty = list(copy.dirty), set()
        for start in range(0, len(ids), CHUNK):
            part = ids[start : start + CHUNK]
            docs = visible_documents(table, part, ts)
            added = [] if copy.validated else copy.columns.extend(docs)
            batch = copy.columns.record_batch(docs, validated=copy.validated)
            await self._run(self._replace, copy, part, batch, added)
            await asyncio.sleep(0)
        copy.ts = ts

    async def _copy_whole(
        self,
        copy: _Copy,
        table: TableState,
        ts: int,
        progress: Callable[[str, int, int], None] | None,
    ) -> None:
        ids = table_ids(table)
        await self._run(self._create, copy)
        done = 0
        loop = asyncio.get_running_loop()
        inserting: asyncio.Future[None] | None = None
        for start in range(0, len(ids), CHUNK):
            docs = visible_documents(table, ids[start : start + CHUNK], ts)
            added = [] if copy.validated else copy.columns.extend(docs)
            batch = copy.columns.record_batch(docs, validated=copy.validated)
            if inserting is not None:
                await inserting  # one chunk goes into DuckDB while the next is read
            inserting = loop.run_in_executor(self._executor, self._insert, copy, batch, added)
            done += len(docs)
            if progress is not None:
                progress(copy.name, done, len(table.docs))
            await asyncio.sleep(0)
        if inserting is not None:
            await inserting
        copy.ts = ts

    async def _run(self, fn: Callable[..., None], *args: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- DuckDB (on the mirror's thread) ---------------------------------------------------
    def _create(self, copy: _Copy) -> None:
        cols = ", ".join(f"{quote(n)} {t}" for n, t in copy.columns.sql_types().items())
        self._con.execute(f"CREATE OR REPLACE TABLE _mirror.{quote(copy.name)} ({cols})")
        self._create_view(copy)

    def _create_view(self, copy: _Copy) -> None:
        parts = []
        for name, kind in copy.columns.kinds.items():
            key = "'" + name.replace("'", "''") + "'"
            if kind == "bytes":
                value = f"CASE WHEN {quote(name)} IS NULL THEN NULL ELSE json_object('$bytes', base64({quote(name)})) END"
            else:
                value = quote(name)
            parts.append(f"{key}, {value}")
        # json_merge_patch drops the members that are NULL: fields the document lacks.
        document = f"json_merge_patch('{{}}', json_object({', '.join(parts)}))"
        columns = ", ".join(quote(n) for n in copy.columns.kinds)
        self._con.execute(
            f"CREATE OR REPLACE VIEW main.{quote(copy.name)} AS SELECT {columns}, "
            f"{document} AS _document FROM _mirror.{quote(copy.name)}"
        )

    def _add_columns(self, copy: _Copy, added: list[str]) -> None:
        for name in added:
            self._con.execute(
                f"ALTER TABLE _mirror.{quote(copy.name)} ADD COLUMN {quote(name)} JSON"
            )
        self._create_view(copy)

    def _insert(self, copy: _Copy, batch: pa.RecordBatch, added: list[str]) -> None:
        if added:
            self._add_columns(copy, added)
        con = self._con.cursor()
        try:
            con.register("_pyconvex_rows", batch)
            con.execute(
                f"INSERT INTO _mirror.{quote(copy.name)} BY NAME SELECT * FROM _pyconvex_rows"
            )
        finally:
            con.close()

    def _replace(
        self, copy: _Copy, ids: list[str], batch: pa.RecordBatch, added: list[str]
    ) -> None:
        if added:
            self._add_columns(copy, added)
        con = self._con.cursor()
        try:
            con.register("_pyconvex_ids", pa.table({"_id": pa.array(ids, pa.string())}))
            con.register("_pyconvex_rows", batch)
            target = f"_mirror.{quote(copy.name)}"
            con.execute("BEGIN")
            con.execute(f"DELETE FROM {target} WHERE _id IN (SELECT _id FROM _pyconvex_ids)")
            con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM _pyconvex_rows")
            con.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    def _drop(self, name: str) -> None:
        self._con.execute(f"DROP VIEW IF EXISTS main.{quote(name)}")
        self._con.execute(f"DROP TABLE IF EXISTS _mirror.{quote(name)}")

    # -- lifetime --------------------------------------------------------------------------
    def _touch(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(IDLE_S, self._forget_soon)

    def _forget_soon(self) -> None:
        asyncio.get_running_loop().create_task(self.forget())

    async def forget(self) -> None:
        """Drop every copy (memory back); the next snapshot copies what it needs again."""
        async with self._lock:
            if self._remove_listener is not None:
                self._remove_listener()
                self._remove_listener = None
            names = list(self._copies)
            self._copies.clear()
            for name in names:
                await self._run(self._drop, name)

    async def close(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        await self.forget()
        self.closed = True
        self._executor.shutdown(wait=True)
        self._con.close()


def _begin(cursor: duckdb.DuckDBPyConnection) -> None:
    cursor.execute("BEGIN TRANSACTION READ ONLY")
    # DuckDB fixes a transaction's snapshot when it first reads the database.
    cursor.execute("SELECT count(*) FROM _mirror._meta").fetchall()


def _end(cursor: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):
        cursor.execute("ROLLBACK")
    cursor.close()


@dataclass
class Snapshot:
    """A read-only transaction over the copies, every table as of ``ts``."""

    cursor: duckdb.DuckDBPyConnection
    ts: int
    executor: ThreadPoolExecutor

    async def relation(self, query: str) -> duckdb.DuckDBPyRelation:
        """``query`` bound in this snapshot (DuckDB runs it as it is read)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.cursor.sql, query)
