"""The DuckDB writer process dying (issue 10, item 6): a new one takes over, keeps the batches
the file holds and writes the rest again, so no mutation is lost or reported twice; one that
keeps dying is not restarted forever; clients never see a server path; the log says it once."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from support.deployment import ok

from pyconvex.errors import StorageError
from pyconvex.runtime.store.persistence import Batch, DocumentWrite
from pyconvex.runtime.store.process_persistence import MAX_RESPAWNS, ProcessPersistence
from pyconvex.runtime.store.writer_process import WriterProcess

MESSAGES = """
from pyconvex import mutation, query, v

@mutation(args={"body": v.string()})
async def send(ctx, body):
    return await ctx.db.insert("messages", {"body": body})

@query(args={})
async def list(ctx):
    return [d["body"] for d in await ctx.db.query("messages").collect()]
"""


async def kill_writer(dep: Any) -> None:
    writer = dep.persistence.inner  # behind the write-ahead log
    assert isinstance(writer, ProcessPersistence)
    os.kill(writer.pid, signal.SIGKILL)
    for _ in range(500):  # until the parent has noticed
        if writer.exited:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the writer's death went unnoticed")


async def test_a_new_writer_takes_over(deployment: Any, tmp_path: Path) -> None:
    dep = await deployment({"messages.py": MESSAGES}, persistent=True)
    ok(await dep.run_mutation("messages:send", {"body": "before"}))
    first = dep.persistence.inner.pid
    await kill_writer(dep)
    ok(await dep.run_mutation("messages:send", {"body": "after"}))
    await dep.checkpoint()  # DuckDB, behind the write-ahead log, has it too
    assert dep.persistence.inner.pid != first and dep.persistence.inner.respawns == 1
    await dep.close()
    again = await deployment({"messages.py": MESSAGES}, persistent=True)
    assert ok(again.run_query("messages:list", {})) == ["before", "after"]


async def test_a_writer_killed_mid_stream_loses_nothing(
    deployment: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "pyconvex.writer")
    dep = await deployment({"messages.py": MESSAGES}, persistent=True)
    sent = [f"m{i}" for i in range(400)]
    calls = [asyncio.ensure_future(dep.run_mutation("messages:send", {"body": b})) for b in sent]
    while dep.committer.committed < 50:  # some batches durable, others in flight
        await asyncio.sleep(0.001)
    await kill_writer(dep)
    results = await asyncio.gather(*calls)
    assert [r.failure for r in results] == [None] * len(sent)  # every one acknowledged...
    assert ok(dep.run_query("messages:list", {})) == sent  # ...once, in order
    await dep.close()
    again = await deployment({"messages.py": MESSAGES}, persistent=True)
    assert ok(again.run_query("messages:list", {})) == sent  # and durable
    took_over = [r for r in caplog.records if "took over" in r.getMessage()]
    assert len(took_over) == 1


async def test_a_writer_that_keeps_dying_is_not_restarted_forever(
    deployment: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    dep = await deployment({"messages.py": MESSAGES}, persistent=True)
    ok(await dep.run_mutation("messages:send", {"body": "kept"}))
    for _ in range(MAX_RESPAWNS):
        await kill_writer(dep)
        ok(await dep.run_mutation("messages:send", {"body": "kept"}))
        await dep.checkpoint()  # a new writer has it (DuckDB is behind the log)
    await kill_writer(dep)
    # Writes are taken (durable in the write-ahead log, replayed at the next start) until the
    # log hears that DuckDB takes no more; from then on every write is refused.
    taken = 0
    for _ in range(300):
        first_refused = await dep.run_mutation("messages:send", {"body": "after"})
        if first_refused.failure is not None:
            break
        taken += 1
        await asyncio.sleep(0.01)
    failures = [first_refused]
    failures += [await dep.run_mutation("messages:send", {"body": "after"}) for _ in range(4)]
    assert all(f.failure is not None for f in failures)
    for failed in failures:
        message = failed.failure.message if failed.failure is not None else ""
        assert "Restart the server" in message and "was not committed" in message, message
        assert str(tmp_path) not in message and "duckdb" not in message.lower()
    # Reads go on; nothing half-written.
    kept = ["kept"] * (MAX_RESPAWNS + 1) + ["after"] * taken
    assert ok(dep.run_query("messages:list", {})) == kept
    await dep.close()
    again = await deployment({"messages.py": MESSAGES}, persistent=True)
    assert ok(again.run_query("messages:list", {})) == kept  # every acknowledged write
    gone = [r for r in caplog.records if "writes are refused" in r.getMessage()]
    assert len(gone) == 1  # said once, not once per refused write
    refused = [r for r in caplog.records if "writes refused so far" in r.getMessage()]
    assert len(refused) <= 1


async def test_the_file_says_which_batches_were_committed(tmp_path: Path) -> None:
    writer = await WriterProcess.spawn(tmp_path / "data.duckdb")
    try:
        await writer.open()
        assert await writer.call("committed_ts") == 0
        await writer.write(Batch([DocumentWrite(5, 1, "x", {})], [(1, "t")], [], 5, 0))
        await writer.write(Batch([DocumentWrite(9, 1, "y", {})], [], [], 9, 5))
        assert await writer.call("committed_ts") == 9
        # A batch that does not follow the last one written is refused (one before it failed).
        with pytest.raises(StorageError, match="before it was not written"):
            await writer.write(Batch([DocumentWrite(12, 1, "z", {})], [], [], 12, 11))
        # A commit without documents at the end of a batch still counts.
        await writer.write(Batch([DocumentWrite(13, 1, "z", {})], [], [], 15, 9))
        assert await writer.call("committed_ts") == 15
    finally:
        await writer.close()


async def test_the_writer_outlives_ctrl_c_and_sigterm_to_its_group(tmp_path: Path) -> None:
    """The terminal's Ctrl-C reaches the whole process group; the server, not the signal,
    stops the writer (after its last batch)."""
    writer = await WriterProcess.spawn(tmp_path / "data.duckdb")
    try:
        await writer.open()
        for sig in (signal.SIGINT, signal.SIGTERM):
            os.kill(writer.pid, sig)
        await asyncio.sleep(0.3)
        assert not writer.exited
        assert await writer.call("committed_ts") == 0
    finally:
        await writer.close()
