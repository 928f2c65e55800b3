"""The persistence seam: how committed batches become durable and how start-up reads them back.

The committer (``committer.py``) and the deployment talk to persistence only through
:class:`Persistence`; an implementation owns where the bytes go. Two exist today:

* :class:`~.process_persistence.ProcessPersistence` — a DuckDB file written by the writer
  process (``writer_process.py``), which is replaced if it dies;
* :class:`~.thread_persistence.ThreadPersistence` — DuckDB on a thread of this process (an
  in-memory deployment, or ``PYCONVEX_WRITER=thread``).

A backend for several nodes (PostgreSQL, say) would be a third, and the engine would not change.

The contract, in the order a deployment uses it::

    persistence = ProcessPersistence(path)
    async with persistence.load(index_paths) as state:  # read back what is durable
        store.load(state.documents, index_paths)          # (documents stream while inside)
    persistence.set_view_columns(columns)
    await persistence.create_views(tables)
    durable = persistence.append(batch)   # resolves once the batch is durable, in order
    ts = await persistence.checkpoint()   # the store of record holds everything durable
    await persistence.close()

Appends are durable in the order they are made. A batch names the batch it follows
(``after_ts``, the ``max_ts`` of the one appended before it); an append whose predecessor is
not the newest durable batch is refused, so after a failed append every batch already sent
behind it fails too (they may have read its writes) until the committer, having undone them,
appends again after the last durable batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyconvex.errors import StorageError

#: Start-up's documents, streamed: (table number, ids, _creationTimes, JSON texts, and for each
#: index path of the table the JSON text of that field, None if missing).
DocumentChunk = tuple[int, list[str], list[float], list[str], list[list[str | None]]]
#: Typed columns of each table's SQL view: table name -> field -> DuckDB type.
ViewColumns = dict[str, dict[str, str]]
#: One table's SQL view: (name, table number, its typed columns).
ViewTable = tuple[str, int, dict[str, str]]


#: Mutation results kept per session for re-sends (in memory: ``SessionResults``; in the log:
#: pruning drops a session's older ones).
RESULTS_PER_SESSION = 1_000


class PersistenceUnavailable(StorageError):
    """Persistence can take no more writes until the server restarts. The message is for
    clients: it names no server path and says what to do."""


@dataclass(slots=True)
class DocumentWrite:
    """One document version to persist (``doc`` None: a deletion)."""

    ts: int
    table_number: int
    doc_id: str
    doc: dict[str, Any] | None


@dataclass(slots=True)
class Batch:
    """Everything one append makes durable: the writes of consecutive commits.

    ``session_requests`` are ``(session id, request id, commit ts, result as Convex JSON)``
    kept so a client's re-send is answered, not run again. ``max_ts`` is the newest commit's
    timestamp; ``after_ts`` the ``max_ts`` of the batch appended before this one.
    """

    documents: list[DocumentWrite] = field(default_factory=list)
    new_tables: list[tuple[int, str]] = field(default_factory=list)
    session_requests: list[tuple[str, int, int, str]] = field(default_factory=list)
    max_ts: int = 0
    after_ts: int = 0
    #: Rows written ahead by :meth:`DuckDBLog.stage_rows` (an import), as ``(key, ts)``:
    #: this batch moves them into the log at ``ts``.
    staged: list[tuple[str, int]] = field(default_factory=list)


@dataclass(slots=True)
class LoadedState:
    """What start-up reads back."""

    tables: dict[str, int]
    max_ts: int
    documents: Iterator[DocumentChunk]
    session_requests: dict[tuple[str, int], tuple[int, str]]


class Persistence(Protocol):
    """Durable storage behind the in-memory store (see the module docstring)."""

    # -- start-up ------------------------------------------------------------------------
    def load(self, index_paths: dict[str, list[str]]) -> AbstractAsyncContextManager[LoadedState]:
        """Read back everything durable: tables, the clock, live documents (with the JSON of
        the fields at ``index_paths[table]`` cut out for index building) and the results kept
        for re-sends. Documents stream while the context is open; once it closes the
        persistence takes appends."""
        ...

    # -- the commit path -----------------------------------------------------------------
    def append(self, batch: Batch) -> asyncio.Future[int]:
        """Make ``batch`` durable; the future resolves (with the nanoseconds the writer spent
        on it, 0 if unknown) once it is. If it fails, the batch is not durable: the error goes
        to the server log, clients hear that the write failed — except for
        :class:`PersistenceUnavailable`, whose message clients see."""
        ...

    @property
    def durable_ts(self) -> int:
        """``max_ts`` of the newest durable batch: where a restart resumes the clock."""
        ...

    async def checkpoint(self) -> int:
        """Bring the store of record (the DuckDB file) up to every durable batch and return
        the timestamp it now holds: a consistent snapshot for readers of the file."""
        ...

    async def prune(self, results_before_ts: int) -> int:
        """Drop superseded document versions, deletions and re-send results older than
        ``results_before_ts``; returns how many records went."""
        ...

    # -- the SQL face (``pyconvex sql``, schema pushes) ----------------------------------
    def set_view_columns(self, columns: ViewColumns) -> None:
        """The typed columns of each table's view, used for tables created from now on."""
        ...

    async def create_views(self, tables: list[ViewTable]) -> None:
        """(Re)create one SQL view per user table with the newest version of each document."""
        ...

    async def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one SQL statement after every append made so far; return its rows."""
        ...

    # -- rows written ahead of their commit (an import) ---------------------------------
    async def stage_documents(
        self, key: str, table_number: int, docs: list[dict[str, Any]]
    ) -> list[int]:
        """Write documents ahead of the commit that names ``key`` in ``Batch.staged`` (so a
        million-row import is durable in chunks while other commits go on); returns the
        length of each one's JSON text."""
        ...

    async def stage_deletions(self, key: str, table_number: int, ids: list[str]) -> None:
        """Write deletions of documents ahead of the commit that names ``key``, as
        :meth:`stage_documents` does documents (an import's replace of a big table)."""
        ...

    async def drop_staged(self, key: str) -> None:
        """Forget the rows staged under ``key`` (an import refused or failed)."""
        ...

    async def close(self) -> None:
        """Finish what was appended and release the files."""
        ...
