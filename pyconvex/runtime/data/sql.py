"""``pyconvex sql``: one read-only query over the tables, at one snapshot, streamed.

The query must be ONE ``SELECT`` (or ``WITH ... SELECT``); any other statement (``INSERT``,
``DELETE``, ``COPY``, ``ATTACH``, ``SET``, ...) is refused before anything runs. It runs in a
read-only transaction over the columnar copy of the tables it names (:mod:`.mirror`), which
cannot reach files either. Rows come in Arrow batches as DuckDB produces them::

    async with read_only_query(mirror, "SELECT body, count(*) FROM messages GROUP BY 1") as q:
        q.columns, q.types          # ['body', 'count_star()'], ['VARCHAR', 'BIGINT']
        async for rows in q.batches():
            ...                     # lists of row lists, values as JSON can carry them
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from pyconvex.errors import PyconvexError
from pyconvex.runtime.data.mirror import SqlMirror

#: Rows per streamed batch.
BATCH_ROWS = 2_000

_parsers: list[duckdb.DuckDBPyConnection] = []


def _parser() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that only parses (made on first use)."""
    if not _parsers:
        _parsers.append(duckdb.connect(":memory:", config={"enable_external_access": False}))
    return _parsers[0]


class SqlError(PyconvexError):
    """The query was refused (``refused``: it would write, or holds several statements) or
    failed (bad SQL, an unknown column, an error while it ran). Nothing changed either way."""

    def __init__(self, message: str, *, refused: bool) -> None:
        super().__init__(message)
        self.message = message
        self.refused = refused

    @property
    def code(self) -> str:
        return "SqlRefused" if self.refused else "SqlError"


def check_read_only(query: str) -> set[str]:
    """Raise :class:`SqlError` unless ``query`` is one SELECT; returns the names it reads."""
    try:
        statements = _parser().extract_statements(query)
    except duckdb.Error as e:
        raise SqlError(str(e), refused=False) from None
    if len(statements) != 1:
        raise SqlError(
            f"Send one statement at a time (this text holds {len(statements)}).", refused=True
        )
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise SqlError(
            "pyconvex sql runs read-only queries (SELECT, WITH ... SELECT); this is a "
            f"{kind.name} statement. Change data with mutations, or with `pyconvex import`.",
            refused=True,
        )
    try:
        return set(_parser().get_table_names(query))
    except duckdb.Error as e:
        raise SqlError(str(e), refused=False) from None


def _message(error: duckdb.Error) -> str:
    text = str(error)
    if "file system operations are disabled" in text or "disabled by configuration" in text:
        return (
            "pyconvex sql reads the deployment's tables only; it cannot read or write files "
            f"({text.splitlines()[0]})."
        )
    return text


@dataclass
class SqlQuery:
    """A query bound in a snapshot: its columns, their DuckDB types, and its rows."""

    columns: list[str]
    types: list[str]
    ts: int
    _reader: pa.RecordBatchReader

    async def batches(self) -> AsyncIterator[list[list[Any]]]:
        """Rows, a batch at a time (DuckDB computes them on a worker thread)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                batch = await loop.run_in_executor(None, _next_batch, self._reader)
            except duckdb.Error as e:
                raise SqlError(_message(e), refused=False) from None
            if batch is None:
                return
            columns = [[sql_cell(v) for v in col.to_pylist()] for col in batch.columns]
            yield [list(row) for row in zip(*columns, strict=True)] if columns else []


def _next_batch(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None


@contextlib.asynccontextmanager
async def read_only_query(
    mirror: SqlMirror, query: str, batch_rows: int = BATCH_ROWS
) -> AsyncIterator[SqlQuery]:
    """Check ``query``, bring the tables it names up to date and bind it in one snapshot
    (raises :class:`SqlError`); the snapshot ends when the block does."""
    names = mirror.table_names(check_read_only(query))
    async with mirror.snapshot(names) as snap:
        loop = asyncio.get_running_loop()
        try:
            relation = await snap.relation(query)
            reader = await loop.run_in_executor(None, relation.to_arrow_reader, batch_rows)
            columns = list(relation.columns)
            types = [str(t) for t in relation.types]
        except duckdb.Error as e:
            raise SqlError(_message(e), refused=False) from None
        yield SqlQuery(columns, types, snap.ts, reader)


def sql_cell(value: Any) -> Any:
    """A value DuckDB returned, as JSON can carry it (dates in ISO 8601, bytes in base64,
    decimals and UUIDs as text, NaN and infinities as text)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [sql_cell(v) for v in value]
    if isinstance(value, dict):
        return {str(k): sql_cell(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)
