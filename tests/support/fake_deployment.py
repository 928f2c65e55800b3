"""A tiny in-memory stand-in for ``Deployment``, for the server-side protocol tests.

Functions are plain Python callables registered by path. Queries read through a
:class:`FakeReader` that records real :class:`ReadSet` ranges: ``all(table)`` reads the whole
``by_id`` index, ``where(table, field, value)`` one point of the ``by_<field>`` index, and
``get(table, id)`` one document id. Writes produce matching :class:`WriteSet` entries, so the
subscription manager's invalidation runs exactly as against the engine.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

from pyconvex.errors import StorageError
from pyconvex.runtime.functions.function_path import normalize_path
from pyconvex.runtime.functions.results import (
    AppliedMutation,
    FunctionFailure,
    FunctionKind,
    FunctionResult,
)
from pyconvex.runtime.store.read_set import (
    Commit,
    CommitListener,
    ReadSet,
    WriteEntry,
    WriteSet,
)
from pyconvex.runtime.store.write_gate import WriteGate

Doc = dict[str, Any]
Tables = dict[str, dict[str, Doc]]


class FakeConvexError(Exception):
    def __init__(self, data: Any) -> None:
        super().__init__("ConvexError")
        self.data = data


def _key(value: Any) -> bytes:
    return repr(value).encode()


def _point(key: bytes) -> tuple[bytes, bytes]:
    return key, key + b"\x00"


class FakeReader:
    def __init__(self, tables: Tables) -> None:
        self._tables = tables
        self.read_set = ReadSet()
        self.log_lines: list[str] = []

    def log(self, message: str) -> None:
        self.log_lines.append(f"[LOG] {message!r}")

    def all(self, table: str) -> list[Doc]:
        self.read_set.add_range(table, "by_id", None, None)
        docs = self._tables.get(table, {})
        return [copy.deepcopy(docs[k]) for k in sorted(docs)]

    def where(self, table: str, field: str, value: Any) -> list[Doc]:
        lo, hi = _point(_key(value))
        self.read_set.add_range(table, f"by_{field}", lo, hi)
        docs = self._tables.get(table, {})
        return [copy.deepcopy(docs[k]) for k in sorted(docs) if docs[k].get(field) == value]

    def get(self, table: str, doc_id: str) -> Doc | None:
        self.read_set.add_id(doc_id)
        doc = self._tables.get(table, {}).get(doc_id)
        return copy.deepcopy(doc)


class FakeWriter(FakeReader):
    def __init__(self, tables: Tables, ids: itertools.count[int]) -> None:
        super().__init__(tables)
        self._ids = ids
        self.writes = WriteSet()

    def insert(self, table: str, doc: Doc) -> str:
        doc_id = f"{table}_{next(self._ids):08d}"
        new = {**doc, "_id": doc_id}
        self._tables.setdefault(table, {})[doc_id] = new
        self._record(table, doc_id, None, new)
        return doc_id

    def patch(self, table: str, doc_id: str, fields: Doc) -> None:
        old = self._tables[table][doc_id]
        new = {**old, **fields}
        self._tables[table][doc_id] = new
        self._record(table, doc_id, old, new)

    def delete(self, table: str, doc_id: str) -> None:
        old = self._tables[table].pop(doc_id)
        self._record(table, doc_id, old, None)

    def _record(self, table: str, doc_id: str, old: Doc | None, new: Doc | None) -> None:
        keys: list[tuple[str, bytes]] = [("by_id", doc_id.encode())]
        for doc in (old, new):
            if doc is not None:
                keys.extend((f"by_{f}", _key(v)) for f, v in doc.items() if f != "_id")
        self.writes.entries.append(WriteEntry(table, doc_id, tuple(keys)))


QueryFn = Callable[[FakeReader, dict[str, Any]], Any]
MutationFn = Callable[[FakeWriter, dict[str, Any]], Any]
ActionFn = Callable[[dict[str, Any]], Awaitable[Any]]


def _failure(exc: Exception) -> FunctionFailure:
    if isinstance(exc, FakeConvexError):
        return FunctionFailure("ConvexError", is_convex_error=True, data=exc.data)
    return FunctionFailure(f"Uncaught {type(exc).__name__}: {exc}")


class FakeDeployment:
    """In-memory tables, registered functions, commit listeners, idempotent mutations.

    Mutations pipeline as in the engine: ``apply_mutation`` applies to memory at once, and
    everything applied during one loop turn becomes durable together at the next (one
    "batch"). ``listeners_first``: call the commit listeners before the batch's futures
    resolve (True) or after, from a later loop callback (False) — the session must cope with
    both orders. ``fail_next_batch``: the next batch fails, as a storage error would.
    """

    def __init__(self, *, start_ts: int = 1_000_000, listeners_first: bool = False) -> None:
        self.tables: Tables = {}
        self._snapshots: list[tuple[int, Tables]] = [(start_ts, {})]
        self._ts = start_ts  # durable
        self._head_ts = start_ts  # applied to memory
        self._durable_tables: Tables = {}
        self._batch: list[tuple[int, WriteSet, asyncio.Future[int]]] = []
        self._answers: list[tuple[int, Callable[[], None]]] = []  # answer_when_durable's
        self.fail_next_batch = False
        self.batches = 0
        self._ids = itertools.count(1)
        self._listeners: list[CommitListener] = []
        self._idempotent: dict[tuple[str, int], FunctionResult] = {}
        self.queries: dict[str, QueryFn] = {}
        self.mutations: dict[str, MutationFn] = {}
        self.actions: dict[str, ActionFn] = {}
        self.listeners_first = listeners_first
        self.query_runs: list[str] = []
        self.mutation_runs: list[str] = []
        self.identities: list[object] = []
        self.write_gate = WriteGate()

    # -- registration -------------------------------------------------------------------------

    def query(self, path: str) -> Callable[[QueryFn], QueryFn]:
        def register(fn: QueryFn) -> QueryFn:
            self.queries[normalize_path(path)] = fn
            return fn

        return register

    def mutation(self, path: str) -> Callable[[MutationFn], MutationFn]:
        def register(fn: MutationFn) -> MutationFn:
            self.mutations[normalize_path(path)] = fn
            return fn

        return register

    def action(self, path: str) -> Callable[[ActionFn], ActionFn]:
        def register(fn: ActionFn) -> ActionFn:
            self.actions[normalize_path(path)] = fn
            return fn

        return register

    # -- the Deployment surface -----------------------------------------------------------------

    @property
    def latest_ts(self) -> int:
        return self._ts

    def function_kind(self, path: str, *, public_only: bool = False) -> FunctionKind | None:
        path = normalize_path(path)
        if path in self.queries:
            return "query"
        if path in self.mutations:
            return "mutation"
        if path in self.actions:
            return "action"
        return None

    def add_commit_listener(
        self, listener: CommitListener, *, prepare: bool = False, first: bool = False
    ) -> Callable[[], None]:
        """(The fake's writes are durable at once: it never has a batch to prepare for.)"""
        if prepare:
            return lambda: None
        if first:
            self._listeners.insert(0, listener)
        else:
            self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _snapshot_at(self, ts: int) -> Tables:
        best = self._snapshots[0][1]
        for snap_ts, tables in self._snapshots:
            if snap_ts <= ts:
                best = tables
        return best

    def run_query(
        self,
        path: str,
        args: dict[str, Any],
        *,
        identity: object = None,
        ts: int | None = None,
        journal: str | None = None,
        allow_internal: bool = False,
        speculative: bool = False,
    ) -> FunctionResult:
        path = normalize_path(path)
        self.identities.append(identity)
        fn = self.queries.get(path)
        if fn is None:
            return FunctionResult(
                failure=FunctionFailure(f"Could not find public function for '{path}'")
            )
        self.query_runs.append(path)
        read_ts = self._ts if ts is None else ts
        reader = FakeReader(self._snapshot_at(read_ts))
        try:
            value = fn(reader, args)
        except Exception as exc:
            return FunctionResult(
                failure=_failure(exc),
                log_lines=reader.log_lines,
                ts=read_ts,
                read_set=reader.read_set,
            )
        return FunctionResult(
            value=value,
            log_lines=reader.log_lines,
            ts=read_ts,
            read_set=reader.read_set,
            journal=journal,
        )

    async def run_mutation(
        self,
        path: str,
        args: dict[str, Any],
        *,
        identity: object = None,
        allow_internal: bool = False,
        idempotency_key: tuple[str, int] | None = None,
    ) -> FunctionResult:
        applied = self.apply_mutation(path, args, idempotency_key=idempotency_key)
        return await applied.outcome()

    def apply_mutation(
        self,
        path: str,
        args: dict[str, Any],
        *,
        identity: object = None,
        allow_internal: bool = False,
        idempotency_key: tuple[str, int] | None = None,
    ) -> AppliedMutation:
        path = normalize_path(path)
        if idempotency_key is not None and idempotency_key in self._idempotent:
            return AppliedMutation(self._idempotent[idempotency_key])
        fn = self.mutations.get(path)
        if fn is None:
            return AppliedMutation(
                FunctionResult(
                    failure=FunctionFailure(f"Could not find public function for '{path}'")
                )
            )
        self.mutation_runs.append(path)
        working = copy.deepcopy(self.tables)
        writer = FakeWriter(working, self._ids)
        pending = self._batch[-1] if self._batch else None
        wait = (pending[0], pending[2]) if pending else (0, None)
        try:
            value = fn(writer, args)
        except Exception as exc:
            return AppliedMutation(
                FunctionResult(failure=_failure(exc), log_lines=writer.log_lines), *wait
            )
        if not writer.writes.entries:
            result = FunctionResult(
                value=value, log_lines=writer.log_lines, ts=max(self._ts, wait[0])
            )
            return AppliedMutation(result, *wait)
        self._head_ts += 1
        ts = self._head_ts
        self.tables = working
        self._snapshots.append((ts, copy.deepcopy(working)))
        durable: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if not self._batch:
            asyncio.get_running_loop().call_soon(self._commit_batch)
        self._batch.append((ts, writer.writes, durable))
        result = FunctionResult(value=value, log_lines=writer.log_lines, ts=ts)
        if idempotency_key is not None:
            self._idempotent[idempotency_key] = result
        return AppliedMutation(result, ts, durable)

    def _commit_batch(self) -> None:
        batch, self._batch = self._batch, []
        if self.fail_next_batch:
            self.fail_next_batch = False
            self.tables = copy.deepcopy(self._durable_tables)
            self._head_ts = self._ts
            self._snapshots = [(t, tables) for t, tables in self._snapshots if t <= self._ts]
            for _, _, fut in batch:
                fut.set_exception(StorageError("the disk is full"))
            self._answers = []
            return
        self.batches += 1
        latest = batch[-1][0]
        self._ts = latest
        self._durable_tables = copy.deepcopy(self.tables)
        commits = [Commit(ts, writes) for ts, writes, _ in batch]
        if self.listeners_first:
            self._notify(latest, commits)
        for ts, _, fut in batch:
            fut.set_result(ts)
        if not self.listeners_first:
            asyncio.get_running_loop().call_soon(self._notify, latest, commits)

    async def run_action(
        self,
        path: str,
        args: dict[str, Any],
        *,
        identity: object = None,
        allow_internal: bool = False,
    ) -> FunctionResult:
        fn = self.actions.get(normalize_path(path))
        if fn is None:
            return FunctionResult(
                failure=FunctionFailure(f"Could not find public function for '{path}'")
            )
        try:
            return FunctionResult(value=await fn(args))
        except Exception as exc:
            return FunctionResult(failure=_failure(exc))

    # -- test helpers ---------------------------------------------------------------------------

    def commit(self, tables: Tables, writes: WriteSet, *, notify: bool = True) -> int:
        """Make ``tables`` the new state at a fresh ts; tell the listeners if ``notify``."""
        self._head_ts += 1
        self._ts = self._head_ts
        self.tables = tables
        self._durable_tables = copy.deepcopy(tables)
        self._snapshots.append((self._ts, copy.deepcopy(tables)))
        if notify:
            self._notify(self._ts, [Commit(self._ts, writes)])
        return self._ts

    def write(self, fn: Callable[[FakeWriter], Any], *, notify: bool = True) -> int:
        """Apply a write outside any client, as another process would; returns its ts."""
        working = copy.deepcopy(self.tables)
        writer = FakeWriter(working, self._ids)
        fn(writer)
        return self.commit(working, writer.writes, notify=notify)

    def write_batch(self, *fns: Callable[[FakeWriter], Any]) -> int:
        """Several commits announced to the listeners as one durable batch."""
        commits = []
        for fn in fns:
            working = copy.deepcopy(self.tables)
            writer = FakeWriter(working, self._ids)
            fn(writer)
            ts = self.commit(working, writer.writes, notify=False)
            commits.append(Commit(ts, writer.writes))
        self._notify(self._ts, commits)
        return self._ts

    def _notify(self, latest_ts: int, commits: list[Commit]) -> None:
        for listener in list(self._listeners):
            listener(latest_ts, commits)
        due = [a for a in self._answers if a[0] <= latest_ts]
        self._answers = [a for a in self._answers if a[0] > latest_ts]
        for _, answer in due:
            answer()

    def answer_when_durable(self, ts: int, callback: Callable[[], None]) -> None:
        """Like the Committer's: ``callback()`` after the listeners hear of ``ts``."""
        self._answers.append((ts, callback))
