"""The DuckDB writer in its own process, so that commits never wait for the event loop's GIL.

A DuckDB ``execute`` called from a thread of the serving process re-acquires the GIL many
times while it runs; with the event loop busy, each re-acquisition waits up to the
interpreter's switch interval, so a ~2 ms commit of 32 documents took ~8-10 ms under load and
capped the mutation rate (bench/RESULTS.md). In a child process DuckDB has a GIL of its own:
the loop hands it each batch as one pickled message over a pipe and goes on running
mutations; the child serialises the documents, commits, and answers with one short message.

    writer = await ProcessPersistence.start(path)   # after the start-up load has closed it
    await writer.write(batch)                        # durable once it returns
    await writer.call("create_views", tables)        # any Persistence method, in order
    await writer.close()

Requests are answered strictly in order, so a ``call`` sees every write sent before it. If the
child dies, every pending and later request fails with :class:`WriterExited`; the committer
then starts a new writer and asks the file which batches were committed
(``committed_ts``). The child exits when its pipe closes, so a killed server does not leave it
holding the database lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import struct
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

from pyconvex.errors import StorageError
from pyconvex.runtime.store.duckdb_log import Batch, DocumentWrite

_HEADER = struct.Struct("!I")


class WriterExited(StorageError):
    """The writer process is gone: the outcome of what it was writing is unknown until a new
    one reads the file. The message names no server path (clients may see it)."""

    def __init__(self, code: int | None) -> None:
        super().__init__(
            f"The database writer process stopped (exit code {code}) before this write was "
            "confirmed."
        )
        self.code = code


class ProcessPersistence:
    """Parent side: talks to ``python -m pyconvex.runtime.store.writer_process PATH``."""

    def __init__(self, path: Path, proc: asyncio.subprocess.Process) -> None:
        self.path = path
        self._proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        self._stdin = proc.stdin
        self._stdout = proc.stdout
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._failure: StorageError | None = None
        self._view_columns: dict[str, dict[str, str]] = {}
        self._loop = asyncio.get_running_loop()
        self._reader = asyncio.create_task(self._read_responses(), name="pyconvex-writer-reader")

    @classmethod
    async def spawn(cls, path: Path) -> ProcessPersistence:
        """Start the child (it imports DuckDB while the parent loads; it opens the file only
        on :meth:`open`)."""
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[3])
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pyconvex.runtime.store.writer_process",
            str(path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        return cls(path, proc)

    async def open(self) -> None:
        """Open the database in the child (after the parent has closed its connection)."""
        await self._request(("open",))

    # -- the Persistence surface the deployment uses after start-up ------------------------

    @property
    def view_columns(self) -> dict[str, dict[str, str]]:
        return self._view_columns

    @view_columns.setter
    def view_columns(self, columns: dict[str, dict[str, str]]) -> None:
        self._view_columns = columns
        self._send(("set", "view_columns", columns))

    def write(self, batch: Batch) -> asyncio.Future[Any]:
        """Send a batch; the future resolves once it is committed (raises StorageError if not)
        with the nanoseconds the child spent writing it."""
        # Plain tuples pickle several times faster than slotted dataclasses.
        docs = [(d.ts, d.table_number, d.doc_id, d.doc) for d in batch.documents]
        return self._send(
            ("write", docs, batch.new_tables, batch.session_requests, batch.max_ts, batch.staged)
        )

    def reset(self) -> asyncio.Future[Any]:
        """After a failed write: the child refuses later writes until this arrives (they may
        depend on the failed one; the committer has undone them)."""
        return self._send(("reset",))

    async def call(self, method: str, *args: Any) -> Any:
        """Run ``Persistence.<method>(*args)`` in the child, after every earlier request."""
        return await self._request(("call", method, args))

    def __getattr__(self, method: str) -> Any:
        """Any other Persistence method, as a blocking call for the committer's thread
        (``await committer.call(persistence.create_views, tables)`` works as in-process)."""
        if method.startswith("_"):
            raise AttributeError(method)
        loop = self._loop

        def blocking(*args: Any) -> Any:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                raise RuntimeError(
                    f"ProcessPersistence.{method}() blocks; on the event loop use "
                    f"`await persistence.call({method!r}, ...)` or committer.call()."
                )
            return asyncio.run_coroutine_threadsafe(self.call(method, *args), loop).result()

        return blocking

    async def close(self) -> None:
        if self._proc.returncode is None:
            with contextlib.suppress(StorageError):
                await self._request(("close",))
            with contextlib.suppress(Exception):
                self._stdin.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._proc.wait(), 10)
            if self._proc.returncode is None:
                self._proc.kill()
                await self._proc.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader

    # -- plumbing --------------------------------------------------------------------------

    def _send(self, message: tuple[Any, ...]) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._failure is not None:
            fut.set_exception(self._failure)
            return fut
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._waiting.append(fut)
        self._stdin.write(_HEADER.pack(len(payload)) + payload)
        return fut

    async def _request(self, message: tuple[Any, ...]) -> Any:
        return await self._send(message)

    async def _read_responses(self) -> None:
        try:
            while True:
                header = await self._stdout.readexactly(_HEADER.size)
                payload = await self._stdout.readexactly(_HEADER.unpack(header)[0])
                ok, value = pickle.loads(payload)
                fut = self._waiting.popleft()
                if fut.done():
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(StorageError(value))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            self._fail(WriterExited(await self._proc.wait()))

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def exited(self) -> bool:
        return self._failure is not None

    def _fail(self, error: StorageError) -> None:
        self._failure = error
        while self._waiting:
            fut = self._waiting.popleft()
            if not fut.done():
                fut.set_exception(error)


# -- the child -------------------------------------------------------------------------------


def _serve(path: Path) -> None:
    # Everything this process creates is the database and its WAL: private to this user.
    os.umask(0o077)
    stdin = sys.stdin.buffer
    # Keep the protocol's pipe private: anything printed (warnings, a library's chatter) goes
    # to stderr, never into a reply.
    stdout = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)

    def reply(ok: bool, value: Any) -> None:
        payload = pickle.dumps((ok, value), protocol=pickle.HIGHEST_PROTOCOL)
        stdout.write(_HEADER.pack(len(payload)) + payload)
        stdout.flush()

    # The server died mid-request: exit quietly (releasing the database lock).
    with contextlib.suppress(BrokenPipeError, ConnectionError):
        _serve_requests(stdin, reply, path)


def _serve_requests(stdin: Any, reply: Any, path: Path) -> None:
    from pyconvex.runtime.store.duckdb_log import Persistence

    persistence: Persistence | None = None
    failed = False  # a write failed: refuse writes until the parent resets
    while True:
        header = stdin.read(_HEADER.size)
        if len(header) < _HEADER.size:
            break  # the server is gone: stop (releasing the database lock)
        message = pickle.loads(stdin.read(_HEADER.unpack(header)[0]))
        op = message[0]
        try:
            if op == "open":
                persistence = Persistence(path, literal_rows=6)
                # Commits are small and serial: DuckDB's worker threads only compete with the
                # server for the CPU (measured: 2.9 -> 2.5 ms per 30-document batch).
                persistence.con.execute("SET threads = 1")
                reply(True, None)
                continue
            if op == "close":
                reply(True, None)
                break
            if persistence is None:
                raise StorageError("The writer process got a request before open.")
            if op == "reset":
                failed = False
                reply(True, None)
            elif op == "write" and failed:
                reply(False, "Not written: an earlier batch failed and was rolled back.")
            elif op == "write":
                _, docs, new_tables, requests, max_ts, staged = message
                batch = Batch(
                    [DocumentWrite(*d) for d in docs], new_tables, requests, max_ts, staged
                )
                started = time.perf_counter_ns()
                try:
                    persistence.write_batch(batch)
                except Exception:
                    failed = True
                    raise
                reply(True, time.perf_counter_ns() - started)
            elif op == "set":
                setattr(persistence, message[1], message[2])
                reply(True, None)
            elif op == "call" and message[1] == "sql":
                # Analytics may use every core for the one query.
                persistence.con.execute(f"SET threads = {os.cpu_count() or 1}")
                try:
                    reply(True, getattr(persistence, message[1])(*message[2]))
                finally:
                    persistence.con.execute("SET threads = 1")
            elif op == "call":
                reply(True, getattr(persistence, message[1])(*message[2]))
            else:
                raise StorageError(f"Unknown writer request {op!r}.")
        except (BrokenPipeError, ConnectionError):
            raise
        except Exception as e:  # reported to the parent; the child goes on serving
            reply(False, str(e) if isinstance(e, StorageError) else f"{type(e).__name__}: {e}")
    if persistence is not None:
        persistence.close()


if __name__ == "__main__":
    _serve(Path(sys.argv[1]))
