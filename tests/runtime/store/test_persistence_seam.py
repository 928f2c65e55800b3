"""The persistence seam: the engine runs on any implementation of ``store/persistence.py`` — here
a plain Python one written in the test — and holds it to the contract: batches appended in
order, each naming the one before it; a failed batch fails every batch sent behind it, and the
next append follows the last durable batch; a restart reads back what was appended."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from support.deployment import make_project, ok

from pyconvex.errors import StorageError
from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.store.persistence import (
    Batch,
    DocumentChunk,
    LoadedState,
    Persistence,
    PersistenceUnavailable,
    ViewColumns,
    ViewTable,
)
from pyconvex.values import dumps_value

NOTES = """
from pyconvex import mutation, query, v

@mutation(args={"text": v.string()})
async def add(ctx, text):
    return await ctx.db.insert("notes", {"text": text})

@query(args={})
async def texts(ctx):
    return [d["text"] for d in await ctx.db.query("notes").collect()]
"""


class ListPersistence:
    """Batches kept in a list; appends answered when the test says (``hold``)."""

    def __init__(self, batches: list[Batch] | None = None) -> None:
        self.batches: list[Batch] = batches if batches is not None else []
        self.hold = False
        self.fail_next: Exception | None = None
        self.waiting: list[tuple[Batch, asyncio.Future[int]]] = []
        self.refused: list[Batch] = []

    @asynccontextmanager
    async def load(self, index_paths: dict[str, list[str]]) -> AsyncIterator[LoadedState]:
        tables: dict[str, int] = {}
        latest: dict[str, tuple[int, dict[str, Any] | None]] = {}
        for batch in self.batches:
            tables.update({name: number for number, name in batch.new_tables})
            for d in batch.documents:
                latest[d.doc_id] = (d.table_number, d.doc)

        def documents() -> Iterator[DocumentChunk]:
            for doc_id, (number, doc) in latest.items():
                if doc is not None:
                    yield number, [doc_id], [doc["_creationTime"]], [dumps_value(doc)], []

        yield LoadedState(tables, self.durable_ts, documents(), {})

    def append(self, batch: Batch) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.waiting.append((batch, future))
        if not self.hold:
            self.release()
        return future

    def release(self) -> None:
        waiting, self.waiting = self.waiting, []
        for batch, future in waiting:
            if self.fail_next is not None:
                future.set_exception(self.fail_next)
                self.fail_next = None
            elif batch.after_ts != self.durable_ts:
                self.refused.append(batch)
                future.set_exception(StorageError("does not follow the last durable batch"))
            else:
                self.batches.append(batch)
                future.set_result(0)

    @property
    def durable_ts(self) -> int:
        return self.batches[-1].max_ts if self.batches else 0

    async def checkpoint(self) -> int:
        return self.durable_ts

    async def prune(self, results_before_ts: int) -> int:
        return 0

    def set_view_columns(self, columns: ViewColumns) -> None:
        pass

    async def create_views(self, tables: list[ViewTable]) -> None:
        pass

    async def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return []

    async def stage_documents(
        self, key: str, table_number: int, docs: list[dict[str, Any]]
    ) -> list[int]:
        raise StorageError("this persistence stages nothing")

    async def stage_deletions(self, key: str, table_number: int, ids: list[str]) -> None:
        raise StorageError("this persistence stages nothing")

    async def drop_staged(self, key: str) -> None:
        pass

    async def close(self) -> None:
        pass


def _typed(p: ListPersistence) -> Persistence:
    return p  # mypy checks that the test's class fits the Protocol


async def open_on(tmp_path: Path, persistence: ListPersistence) -> Deployment:
    functions = make_project(tmp_path, {"notes.py": NOTES})
    return await Deployment.open(functions, None, persistence=_typed(persistence))


async def test_the_engine_runs_on_any_persistence_and_reads_it_back(tmp_path: Path) -> None:
    p = ListPersistence()
    dep = await open_on(tmp_path, p)
    for text in ("a", "b", "c"):
        ok(await dep.run_mutation("notes:add", {"text": text}))
    await dep.close()
    # Every batch names the one before it.
    assert [b.after_ts for b in p.batches] == [0] + [b.max_ts for b in p.batches[:-1]]
    again = await open_on(tmp_path, ListPersistence(p.batches))
    assert ok(again.run_query("notes:texts", {})) == ["a", "b", "c"]
    assert again.latest_ts == p.durable_ts
    await again.close()


async def test_a_failed_batch_fails_the_batches_behind_it_and_the_next_follows_it(
    tmp_path: Path,
) -> None:
    p = ListPersistence()
    dep = await open_on(tmp_path, p)
    ok(await dep.run_mutation("notes:add", {"text": "kept"}))
    dep.committer.pipeline_min_batch = 1  # a second batch goes out behind the first
    p.hold = True
    p.fail_next = OSError("disk full")
    first = asyncio.ensure_future(dep.run_mutation("notes:add", {"text": "lost1"}))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(dep.run_mutation("notes:add", {"text": "lost2"}))
    await asyncio.sleep(0)
    assert len(p.waiting) == 2
    p.release()
    for call in (first, second):
        failure = (await call).failure
        assert failure is not None and "was not committed" in failure.message
        assert "disk full" not in failure.message  # the server log has the details
    assert len(p.refused) == 1  # the batch sent behind the failed one was refused
    p.hold = False
    ok(await dep.run_mutation("notes:add", {"text": "after"}))
    assert ok(dep.run_query("notes:texts", {})) == ["kept", "after"]
    assert [b.after_ts for b in p.batches] == [0, p.batches[0].max_ts]
    await dep.close()


async def test_persistence_that_takes_no_more_writes_says_so_to_clients(tmp_path: Path) -> None:
    p = ListPersistence()
    dep = await open_on(tmp_path, p)
    p.fail_next = PersistenceUnavailable("The database takes no writes. Restart the server.")
    for _ in range(2):
        failure = (await dep.run_mutation("notes:add", {"text": "x"})).failure
        assert failure is not None and "Restart the server" in failure.message
    assert ok(dep.run_query("notes:texts", {})) == []
    await dep.close()


async def test_durable_answers_follow_the_listeners_and_skip_a_failed_batch(
    tmp_path: Path,
) -> None:
    p = ListPersistence()
    dep = await open_on(tmp_path, p)
    events: list[tuple[str, int]] = []
    dep.add_commit_listener(lambda ts, commits: events.append(("listener", ts)))
    p.hold = True
    first = dep.apply_mutation("notes:add", {"text": "a"})
    dep.answer_when_durable(first.wait_ts, lambda: events.append(("answer", first.wait_ts)))
    p.release()
    ok(await first.outcome())
    assert events == [("listener", first.wait_ts), ("answer", first.wait_ts)]
    events.clear()
    p.fail_next = OSError("disk full")
    failed = dep.apply_mutation("notes:add", {"text": "lost"})
    dep.answer_when_durable(failed.wait_ts, lambda: events.append(("answer", failed.wait_ts)))
    p.release()
    assert (await failed.outcome()).failure is not None
    assert events == []  # its future says it failed; no answer
    after = dep.apply_mutation("notes:add", {"text": "b"})
    p.release()
    ok(await after.outcome())
    assert events == [("listener", after.wait_ts)]  # the failed batch's answer stays dropped
    await dep.close()
