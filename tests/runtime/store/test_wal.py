"""The write-ahead log (``store/wal.py``, ``store/logged_persistence.py``): a commit is durable
once logged, DuckDB follows behind; start-up replays what DuckDB lacks, drops a torn last
record, and refuses — naming file and offset, changing nothing — a damaged or unknown log."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from support.deployment import make_project, ok

import pyconvex.runtime.store.logged_persistence as logged_module
import pyconvex.runtime.store.wal as wal_module
from pyconvex.errors import StorageError
from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.store.logged_persistence import LoggedPersistence, wal_dir
from pyconvex.runtime.store.persistence import Batch, DocumentWrite
from pyconvex.runtime.store.wal import (
    FORMAT_VERSION,
    MAGIC,
    WalDamaged,
    WalWriter,
    decode_batch,
    encode_batch,
    read_segment,
    segment_paths,
)

NOTES = """
from pyconvex import mutation, query, v

@mutation(args={"body": v.string()})
async def add(ctx, body):
    return await ctx.db.insert("notes", {"body": body})

@query(args={})
async def bodies(ctx):
    return [d["body"] for d in await ctx.db.query("notes").collect()]
"""


class HeldDuckDB:
    """Keeps batches from reaching DuckDB (the log has them) until ``release``."""

    def __init__(self, logged: LoggedPersistence) -> None:
        self.inner = logged.inner
        self.real: Callable[[Batch], asyncio.Future[int]] = logged.inner.append
        self.held: list[tuple[Batch, asyncio.Future[int]]] = []

    def append(self, batch: Batch) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.held.append((batch, future))
        return future

    def release(self) -> None:
        for batch, future in self.held:
            self.real(batch).add_done_callback(
                lambda d, f=future: f.set_exception(e) if (e := d.exception()) else f.set_result(0)
            )
        self.held = []


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    functions = make_project(tmp_path, {"notes.py": NOTES})
    deps: list[Deployment] = []

    async def open_(data_dir: Path) -> Deployment:
        dep = await Deployment.open(functions, data_dir)
        deps.append(dep)
        return dep

    yield open_
    for dep in deps:
        await dep.close()


async def crash_image(
    tmp_path: Path, opened: Callable[..., Any], logged: int, applied: int = 0
) -> Path:
    """A data directory as a crash would leave it: ``applied`` notes in DuckDB, then
    ``logged`` more acknowledged but only in the log."""
    data = tmp_path / "data"
    dep: Deployment = await opened(data)
    for i in range(applied):
        ok(await dep.run_mutation("notes:add", {"body": f"a{i}"}))
    await dep.checkpoint()
    logged_persistence = dep.persistence
    assert isinstance(logged_persistence, LoggedPersistence)
    held = HeldDuckDB(logged_persistence)
    logged_persistence.inner.append = held.append  # type: ignore[method-assign]
    try:
        for i in range(logged):
            ok(await dep.run_mutation("notes:add", {"body": f"l{i}"}))  # acknowledged
        for _ in range(500):  # until the log has tried to hand DuckDB the first of them
            if held.held:
                break
            await asyncio.sleep(0.01)
        assert held.held, "the log never handed DuckDB the batches"
        image = tmp_path / "image"
        shutil.copytree(data, image)
    finally:
        logged_persistence.inner.append = held.real  # type: ignore[method-assign]
        held.release()
    return image


def expected(applied: int, logged: int) -> list[str]:
    return [f"a{i}" for i in range(applied)] + [f"l{i}" for i in range(logged)]


def test_a_record_round_trips() -> None:
    batch = Batch(
        [DocumentWrite(7, 3, "abc", {"x": 1, "b": b"\x00\xff"}), DocumentWrite(7, 3, "d", None)],
        [(3, "t")],
        [("session", 1, 7, '{"ok": true}')],
        7,
        5,
        [("stagekey", 7)],
    )
    record = encode_batch(batch)
    payload = record[8:-4]
    assert decode_batch(payload) == batch


async def test_acknowledged_commits_only_in_the_log_are_replayed(
    tmp_path: Path, opened: Callable[..., Any]
) -> None:
    image = await crash_image(tmp_path, opened, logged=30, applied=5)
    assert segment_paths(wal_dir(image / "data.duckdb"))
    dep: Deployment = await opened(image)
    assert isinstance(dep.persistence, LoggedPersistence) and dep.persistence.replayed > 0
    assert ok(dep.run_query("notes:bodies", {})) == expected(5, 30)
    # DuckDB has them now (the SQL view), and the clock goes on after them.
    rows = await dep.sql("SELECT count(*) FROM notes")
    assert rows == [(35,)]
    ok(await dep.run_mutation("notes:add", {"body": "next"}))
    assert ok(dep.run_query("notes:bodies", {}))[-1] == "next"


async def test_a_torn_last_record_is_dropped(tmp_path: Path, opened: Callable[..., Any]) -> None:
    image = await crash_image(tmp_path, opened, logged=10)
    (segment,) = segment_paths(wal_dir(image / "data.duckdb"))
    whole = segment.read_bytes()
    torn = encode_batch(Batch([DocumentWrite(10**19, 1, "x", {"body": "torn"})], [], [], 1, 1))
    segment.write_bytes(whole + torn[: len(torn) // 2])  # the crash came mid-append
    dep: Deployment = await opened(image)
    assert ok(dep.run_query("notes:bodies", {})) == expected(0, 10)


async def test_a_flipped_byte_mid_log_stops_start_up_and_changes_nothing(
    tmp_path: Path, opened: Callable[..., Any]
) -> None:
    image = await crash_image(tmp_path, opened, logged=10)
    (segment,) = segment_paths(wal_dir(image / "data.duckdb"))
    data = bytearray(segment.read_bytes())
    offset = len(MAGIC) + 4  # the first record
    data[offset + 20] ^= 0x40
    segment.write_bytes(bytes(data))
    before = {p.name: p.read_bytes() for p in image.rglob("*") if p.is_file()}
    with pytest.raises(WalDamaged) as raised:
        await opened(image)
    message = str(raised.value)
    assert str(segment) in message and f"byte {offset}" in message
    assert "Nothing was changed" in message
    after = {p.name: p.read_bytes() for p in image.rglob("*") if p.is_file()}
    assert after == before


async def test_a_log_of_an_unknown_format_version_is_refused(
    tmp_path: Path, opened: Callable[..., Any]
) -> None:
    image = await crash_image(tmp_path, opened, logged=3)
    (segment,) = segment_paths(wal_dir(image / "data.duckdb"))
    data = segment.read_bytes()
    segment.write_bytes(MAGIC + (FORMAT_VERSION + 1).to_bytes(4, "little") + data[12:])
    kept = segment.read_bytes()
    with pytest.raises(WalDamaged, match=f"format version {FORMAT_VERSION + 1}") as raised:
        await opened(image)
    assert str(segment) in str(raised.value)
    assert segment.read_bytes() == kept


async def test_a_batch_duckdb_refuses_stays_in_the_log_and_is_applied_later(
    tmp_path: Path, opened: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logged_module, "RETRY_S", 0.01)
    dep: Deployment = await opened(tmp_path / "data")
    logged = dep.persistence
    assert isinstance(logged, LoggedPersistence)
    real = logged.inner.append
    refusals = 0

    def refuse_twice(batch: Batch) -> asyncio.Future[int]:
        nonlocal refusals
        if refusals < 2:
            refusals += 1
            failed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            failed.set_exception(StorageError("disk full"))
            return failed
        return real(batch)

    logged.inner.append = refuse_twice  # type: ignore[method-assign]
    results = await asyncio.gather(
        *(dep.run_mutation("notes:add", {"body": f"l{i}"}) for i in range(20))
    )
    assert all(r.failure is None for r in results)  # durable in the log
    await dep.checkpoint()  # waits until DuckDB took them, after the refusals
    assert refusals == 2
    assert await dep.sql("SELECT count(*) FROM notes") == [(20,)]
    await dep.close()
    again: Deployment = await opened(tmp_path / "data")
    assert ok(again.run_query("notes:bodies", {})) == expected(0, 20)


async def test_a_clean_close_leaves_no_log_to_replay(
    tmp_path: Path, opened: Callable[..., Any]
) -> None:
    dep: Deployment = await opened(tmp_path / "data")
    for i in range(5):
        ok(await dep.run_mutation("notes:add", {"body": f"l{i}"}))
    await dep.close()
    assert segment_paths(wal_dir(tmp_path / "data" / "data.duckdb")) == []
    again: Deployment = await opened(tmp_path / "data")
    assert isinstance(again.persistence, LoggedPersistence) and again.persistence.replayed == 0
    assert ok(again.run_query("notes:bodies", {})) == expected(0, 5)


async def test_an_import_acknowledged_only_in_the_log_survives_a_crash(
    tmp_path: Path, opened: Callable[..., Any]
) -> None:
    """An import's rows are staged in DuckDB ahead of its commit, whose log record names them;
    a crash before DuckDB applied the record must still find them at start-up."""
    from pyconvex.runtime.data.service import DataService

    data = tmp_path / "data"
    dep: Deployment = await opened(data)
    ok(await dep.run_mutation("notes:add", {"body": "before"}))
    await dep.checkpoint()
    logged = dep.persistence
    assert isinstance(logged, LoggedPersistence)
    held = HeldDuckDB(logged)
    logged.inner.append = held.append  # type: ignore[method-assign]
    source = tmp_path / "notes.jsonl"
    source.write_text("".join(f'{{"body": "i{i}"}}\n' for i in range(30)))
    try:
        summary = await DataService(dep).import_file(  # type: ignore[arg-type]
            source, "notes.jsonl", None, "notes", "append"
        )
        assert summary.documents == {"notes": 30}
        for _ in range(500):
            if held.held:
                break
            await asyncio.sleep(0.01)
        assert held.held
        image = tmp_path / "image"
        shutil.copytree(data, image)
    finally:
        logged.inner.append = held.real  # type: ignore[method-assign]
        held.release()
    again: Deployment = await opened(image)
    bodies = ok(again.run_query("notes:bodies", {}))
    assert sorted(bodies) == sorted(["before", *(f"i{i}" for i in range(30))])
    assert await again.sql("SELECT count(*) FROM notes") == [(31,)]


def before_each_append(logged: LoggedPersistence, before: Callable[[], None]) -> list[int]:
    """From now on ``before()`` runs ahead of every append to the log (a failure, a slow
    disk); returns the list of the threads the appends ran on, filled as they run."""
    real = logged._log.write
    threads: list[int] = []

    def write(records: list[bytes], first_ts: int, *, start_writeback: bool = False) -> int:
        threads.append(threading.get_ident())
        before()
        return real(records, first_ts, start_writeback=start_writeback)

    logged._log.write = write  # type: ignore[method-assign]
    return threads


async def test_after_a_quiet_spell_a_small_record_is_synced_on_the_event_loop(
    tmp_path: Path, opened: Callable[..., Any]
) -> None:
    """The first write after a pause skips the hand-off to the log's thread (and back); a
    failed write there fails that mutation alone."""
    dep: Deployment = await opened(tmp_path / "data")
    logged = dep.persistence
    assert isinstance(logged, LoggedPersistence)
    ok(await dep.run_mutation("notes:add", {"body": "l0"}))
    failures = ["disk full"]

    def fail_once() -> None:
        if failures:
            raise StorageError(failures.pop())

    threads = before_each_append(logged, fail_once)
    for body in ("x", "l1"):
        await asyncio.sleep(2 * logged_module.INLINE_AFTER_IDLE_S)  # quiet
        result = await dep.run_mutation("notes:add", {"body": body})
        assert (result.failure is None) == (body != "x")
    assert threads == [threading.get_ident()] * 2  # both on the loop's thread
    await dep.close()
    again: Deployment = await opened(tmp_path / "data")
    assert ok(again.run_query("notes:bodies", {})) == expected(0, 2)


async def test_a_failed_sync_on_the_event_loop_fails_that_mutation_alone(
    tmp_path: Path, opened: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record written on the loop is synced on its next turn: when that sync fails, the
    mutation fails, its record is cut from the log, and the next one is written after it."""
    dep: Deployment = await opened(tmp_path / "data")
    ok(await dep.run_mutation("notes:add", {"body": "l0"}))
    real_sync = wal_module.os.fdatasync
    failures = [OSError(5, "Input/output error")]
    failed_on: list[int] = []

    def fdatasync(fd: int) -> None:
        if failures:
            failed_on.append(threading.get_ident())
            raise failures.pop()
        real_sync(fd)

    monkeypatch.setattr(wal_module.os, "fdatasync", fdatasync)
    for body in ("x", "l1"):
        await asyncio.sleep(2 * logged_module.INLINE_AFTER_IDLE_S)  # quiet
        result = await dep.run_mutation("notes:add", {"body": body})
        assert (result.failure is None) == (body != "x"), result.failure
    assert failed_on == [threading.get_ident()]  # on the loop's thread
    assert ok(dep.run_query("notes:bodies", {})) == expected(0, 2)
    image = tmp_path / "image"  # as a crash would leave it: the log alone has l1
    shutil.copytree(tmp_path / "data", image)
    again: Deployment = await opened(image)
    assert ok(again.run_query("notes:bodies", {})) == expected(0, 2)


def os_error(*args: Any) -> None:
    raise OSError(*args)


def test_nothing_comes_between_a_write_and_its_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new segment (a checkpoint's, on the log's thread) waits for the sync of a record
    written before it; a failed sync cuts that record from its segment."""
    writer = WalWriter(tmp_path)
    record = encode_batch(Batch(max_ts=1, after_ts=0))
    writer.append([record], 1, 1)
    first = writer.path
    assert first is not None
    written = writer.write([encode_batch(Batch(max_ts=2, after_ts=1))], 2, start_writeback=True)
    opened_new = threading.Event()
    rotate = threading.Thread(target=lambda: (writer.open_new(3), opened_new.set()))
    rotate.start()
    assert not opened_new.wait(0.2)  # held until the sync
    writer.sync(written, 2)
    rotate.join(5)
    assert opened_new.is_set() and writer.path != first
    assert [b.max_ts for _, b in read_segment(first, False)] == [1, 2]
    written = writer.write([encode_batch(Batch(max_ts=3, after_ts=2))], 3)
    with monkeypatch.context() as patched:
        patched.setattr(wal_module.os, "fdatasync", lambda fd: os_error(5, "Input/output error"))
        with pytest.raises(StorageError, match="write-ahead log"):
            writer.sync(written, 3)
    writer.append([encode_batch(Batch(max_ts=4, after_ts=2))], 4, 4)
    assert writer.path is not None
    assert [b.max_ts for _, b in read_segment(writer.path, True)] == [4]
    writer.close()


async def test_slow_syncs_on_the_event_loop_send_the_next_ones_to_the_log_thread(
    tmp_path: Path, opened: Callable[..., Any]
) -> None:
    dep: Deployment = await opened(tmp_path / "data")
    logged = dep.persistence
    assert isinstance(logged, LoggedPersistence)
    threads = before_each_append(logged, lambda: time.sleep(2 * logged_module.INLINE_MAX_S))
    runs = logged_module.INLINE_SLOW_RUN
    for i in range(runs + 1):
        await asyncio.sleep(2 * logged_module.INLINE_AFTER_IDLE_S)  # quiet
        ok(await dep.run_mutation("notes:add", {"body": f"l{i}"}))
    loop_thread = threading.get_ident()
    assert threads[:runs] == [loop_thread] * runs and threads[runs] != loop_thread
    assert ok(dep.run_query("notes:bodies", {})) == expected(0, runs + 1)
