"""The DuckDB writer in its own process, so that commits never wait for the event loop's GIL.

A DuckDB ``execute`` called from a thread of the serving process re-acquires the GIL many
times while it runs; with the event loop busy, each re-acquisition waits up to the
interpreter's switch interval, so a ~2 ms commit of 32 documents took ~8-10 ms under load and
capped the mutation rate (bench/RESULTS.md). In a child process DuckDB has a GIL of its own:
the loop hands it each batch as one pickled message over a pipe and goes on running
mutations; the child serialises the documents, commits, and answers with one short message.

    writer = await WriterProcess.spawn(path)
    await writer.open()                               # after the start-up load has closed it
    await writer.write(batch)                         # durable once it returns
    await writer.call("create_views", tables)         # any DuckDBLog method, in order
    await writer.close()

Requests are answered strictly in order, so a ``call`` sees every write sent before it. If the
child dies, every pending and later request fails with :class:`WriterExited`;
``process_persistence.py`` then starts a new writer and asks the file which batches were
committed (``committed_ts``). The child exits when its pipe closes, so a killed server does not
leave it holding the database lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyconvex.errors import StorageError
from pyconvex.runtime.store.persistence import Batch, DocumentWrite

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

_HEADER = struct.Struct("!I")
#: The ``DuckDBLog`` methods the parent may call.
_CALLS = frozenset(
    {
        "committed_ts",
        "checkpoint",
        "prune",
        "create_views",
        "sql",
        "stage_documents",
        "stage_deletions",
        "drop_staged",
    }
)


class WriterExited(StorageError):
    """The writer process is gone: the outcome of what it was writing is unknown until a new
    one reads the file. The message names no server path (clients may see it)."""

    def __init__(self, code: int | None) -> None:
        super().__init__(
            f"The database writer process stopped (exit code {code}) before this write was "
            "confirmed."
        )
        self.code = code


class WriterProcess:
    """Parent side: talks to ``python -m pyconvex.runtime.store.writer_process PATH``."""

    def __init__(self, path: Path, proc: asyncio.subprocess.Process) -> None:
        self.path = path
        self._proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        self._stdin = proc.stdin
        self._stdout = proc.stdout
        _widen(proc.stdin.transport)
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._failure: StorageError | None = None
        #: Called once with this writer when it is found dead.
        self.on_exit: Callable[[WriterProcess], None] | None = None
        self._reader = asyncio.create_task(self._read_responses(), name="pyconvex-writer-reader")

    @classmethod
    async def spawn(cls, path: Path, nice: int = 0) -> WriterProcess:
        """Start the child (it imports DuckDB while the parent loads; it opens the file only
        on :meth:`open`), ``nice`` added to its niceness."""
        env = dict(os.environ)
        env["PYCONVEX_WRITER_NICE"] = str(int(nice))
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
        await self._send(("open",))

    def set_view_columns(self, columns: dict[str, dict[str, str]]) -> None:
        """The typed view columns for tables created from now on (see ``DuckDBLog``)."""
        self._send(("set", "view_columns", columns))

    def write(self, batch: Batch) -> asyncio.Future[Any]:
        """Send a batch; the future resolves once it is committed (raises StorageError if not)
        with the nanoseconds the child spent writing it."""
        # Plain tuples pickle several times faster than slotted dataclasses.
        docs = [(d.ts, d.table_number, d.doc_id, d.doc) for d in batch.documents]
        return self._send(
            (
                "write",
                docs,
                batch.new_tables,
                batch.session_requests,
                batch.max_ts,
                batch.after_ts,
                batch.staged,
            )
        )

    async def call(self, method: str, *args: Any) -> Any:
        """Run ``DuckDBLog.<method>(*args)`` in the child, after every earlier request."""
        return await self._send(("call", method, args))

    async def close(self) -> None:
        self.on_exit = None  # its exit from here on is expected
        if self._proc.returncode is None:
            with contextlib.suppress(StorageError):
                await self._send(("close",))
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
    def exit_code(self) -> int | None:
        return self._proc.returncode

    @property
    def exited(self) -> bool:
        return self._failure is not None

    def _fail(self, error: StorageError) -> None:
        self._failure = error
        while self._waiting:
            fut = self._waiting.popleft()
            if not fut.done():
                fut.set_exception(error)
        if self.on_exit is not None:
            self.on_exit(self)


#: What the pipe to the child holds: a request leaves the loop's buffer only as far as the pipe
#: takes it on each loop turn, so with the kernel's default (64 KiB for a pipe, ~208 KiB for
#: uvloop's socket pair) an import's 1-2 MB chunk of documents took many turns to arrive and the
#: child sat idle meanwhile.
PIPE_BYTES = 4 << 20


def _widen(transport: asyncio.BaseTransport) -> None:
    """Let the pipe to the child hold :data:`PIPE_BYTES` (as far as the system allows)."""
    with contextlib.suppress(OSError, AttributeError, ValueError):
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PIPE_BYTES)
            return
        pipe = transport.get_extra_info("pipe")
        if pipe is not None and hasattr(fcntl, "F_SETPIPE_SZ"):  # Linux
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, min(PIPE_BYTES, _pipe_max()))


def _pipe_max() -> int:
    try:
        return int(Path("/proc/sys/fs/pipe-max-size").read_text())
    except (OSError, ValueError):
        return 1 << 20


# -- the child -------------------------------------------------------------------------------


def _serve(path: Path) -> None:
    # Everything this process creates is the database and its WAL: private to this user.
    os.umask(0o077)
    # Ctrl-C in a terminal (and a SIGTERM to the process group) reaches this child too; the
    # server stops it itself, by closing the pipe, once the last batch is written. Stopping
    # here first would lose that batch to a writer respawned during the shutdown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    nice = int(os.environ.get("PYCONVEX_WRITER_NICE", "0") or 0)
    if nice:
        with contextlib.suppress(OSError):
            os.nice(nice)
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
    from pyconvex.runtime.store.duckdb_log import DuckDBLog

    log: DuckDBLog | None = None
    while True:
        header = stdin.read(_HEADER.size)
        if len(header) < _HEADER.size:
            break  # the server is gone: stop (releasing the database lock)
        message = pickle.loads(stdin.read(_HEADER.unpack(header)[0]))
        op = message[0]
        try:
            if op == "open":
                log = DuckDBLog(path, literal_rows=6)
                # Commits are small and serial: DuckDB's worker threads only compete with the
                # server for the CPU (measured: 2.9 -> 2.5 ms per 30-document batch).
                log.con.execute("SET threads = 1")
                reply(True, None)
                continue
            if op == "close":
                reply(True, None)
                break
            if log is None:
                raise StorageError("The writer process got a request before open.")
            if op == "write":
                # A batch that does not follow the last one written is refused by the log.
                _, docs, new_tables, requests, max_ts, after_ts, staged = message
                writes = [DocumentWrite(*d) for d in docs]
                batch = Batch(writes, new_tables, requests, max_ts, after_ts, staged)
                started = time.perf_counter_ns()
                log.write_batch(batch)
                reply(True, time.perf_counter_ns() - started)
            elif op == "set":
                setattr(log, message[1], message[2])
                reply(True, None)
            elif op == "call" and message[1] == "sql":
                # Analytics may use every core for the one query.
                log.con.execute(f"SET threads = {os.cpu_count() or 1}")
                try:
                    reply(True, log.sql(*message[2]))
                finally:
                    log.con.execute("SET threads = 1")
            elif op == "call" and message[1] in _CALLS:
                reply(True, getattr(log, message[1])(*message[2]))
            else:
                raise StorageError(f"Unknown writer request {op!r}.")
        except (BrokenPipeError, ConnectionError):
            raise
        except Exception as e:  # reported to the parent; the child goes on serving
            reply(False, str(e) if isinstance(e, StorageError) else f"{type(e).__name__}: {e}")
    if log is not None:
        log.close()


if __name__ == "__main__":
    _serve(Path(sys.argv[1]))
