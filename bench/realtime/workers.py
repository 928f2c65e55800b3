"""Client worker processes: the load comes from several processes so the client never limits.

A worker runs `async def fn(ctl, params)` from a module of this package in a fresh (spawned)
process. The coordinator and the workers talk over a pipe:
  worker → coordinator: ("ready", info), ("msg", obj), ("done", result, cpu_seconds), ("error", text)
  coordinator → worker: ("go", obj), ("cmd", obj), ("stop", None)
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import multiprocessing as mp
import resource
import time
import traceback
from multiprocessing.connection import Connection, wait
from typing import Any

_ctx = mp.get_context("spawn")


class WorkerControl:
    """The worker's side of the pipe, for use inside its event loop."""

    def __init__(self, conn: Connection, index: int, count: int) -> None:
        self.conn, self.index, self.count = conn, index, count
        self.inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.stop_requested = asyncio.Event()
        self.cpu_at_ready = 0.0

    def _attach(self) -> None:
        loop = asyncio.get_running_loop()

        def readable() -> None:
            try:
                kind, obj = self.conn.recv()
            except EOFError:
                loop.remove_reader(self.conn.fileno())
                self.stop_requested.set()
                return
            if kind == "stop":
                self.stop_requested.set()
            self.inbox.put_nowait((kind, obj))

        loop.add_reader(self.conn.fileno(), readable)

    def ready(self, info: Any = None) -> None:
        """Setup is done: CPU is counted from here (connecting is not the measured work)."""
        self.cpu_at_ready = _cpu()
        self.conn.send(("ready", info))

    def send(self, obj: Any) -> None:
        self.conn.send(("msg", obj))

    async def receive(self, kind: str) -> Any:
        """Wait for the next coordinator message of `kind` (a stop always ends the wait)."""
        while True:
            got, obj = await self.inbox.get()
            if got == kind:
                return obj
            if got == "stop":
                raise asyncio.CancelledError("stopped by the coordinator")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _worker_entry(
    module: str, fn: str, conn: Connection, index: int, count: int, params: Any
) -> None:
    func = getattr(importlib.import_module(module), fn)

    ctl: WorkerControl | None = None

    async def main() -> Any:
        nonlocal ctl
        ctl = WorkerControl(conn, index, count)
        ctl._attach()
        return await func(ctl, params)

    try:
        result = asyncio.run(main())
        assert ctl is not None
        conn.send(("done", result, _cpu() - ctl.cpu_at_ready))
    except BaseException:
        conn.send(("error", traceback.format_exc()))


class WorkerPool:
    """Spawn `count` workers running `module.fn`; the coordinator drives them."""

    def __init__(self, module: str, fn: str, count: int, params: Any) -> None:
        self.count = count
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        for i in range(count):
            mine, theirs = _ctx.Pipe()
            p = _ctx.Process(
                target=_worker_entry, args=(module, fn, theirs, i, count, params), daemon=True
            )
            p.start()
            theirs.close()
            self.conns.append(mine)
            self.procs.append(p)
        self.results: list[Any] = [None] * count
        self.cpu = [0.0] * count
        self.ready_info: list[Any] = [None] * count

    def _recv(self, i: int) -> tuple[str, Any]:
        msg = self.conns[i].recv()
        if msg[0] == "error":
            raise RuntimeError(f"worker {i} failed:\n{msg[1]}")
        return msg[0], msg[1:]

    def wait_ready(self, timeout: float) -> list[Any]:
        pending = set(range(self.count))
        deadline = time.monotonic() + timeout
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(pending)} workers not ready after {timeout}s")
            for c in wait([self.conns[i] for i in pending], left):
                i = self.conns.index(c)  # type: ignore[arg-type]
                kind, rest = self._recv(i)
                if kind == "ready":
                    self.ready_info[i] = rest[0]
                    pending.discard(i)
        return self.ready_info

    def broadcast(self, kind: str, obj: Any = None) -> None:
        for c in self.conns:
            with contextlib.suppress(OSError):  # a worker that already exited
                c.send((kind, obj))

    def messages(self, timeout: float) -> list[tuple[int, Any]]:
        """Messages that arrive within `timeout` seconds (returns as soon as any arrive)."""
        out = []
        for c in wait(self.conns, timeout):
            i = self.conns.index(c)  # type: ignore[arg-type]
            kind, rest = self._recv(i)
            if kind == "msg":
                out.append((i, rest[0]))
            elif kind == "done":
                self.results[i], self.cpu[i] = rest
        return out

    def finish(self, timeout: float) -> tuple[list[Any], float]:
        """Ask every worker to stop; return their results and their total CPU seconds."""
        self.broadcast("stop")
        deadline = time.monotonic() + timeout
        done = {i for i in range(self.count) if self.results[i] is not None}
        while len(done) < self.count and time.monotonic() < deadline:
            for c in wait([self.conns[i] for i in range(self.count) if i not in done], 0.2):
                i = self.conns.index(c)  # type: ignore[arg-type]
                try:
                    kind, rest = self._recv(i)
                except EOFError:
                    done.add(i)
                    continue
                if kind == "done":
                    self.results[i], self.cpu[i] = rest
                    done.add(i)
        self.kill()
        return self.results, sum(self.cpu)

    def kill(self) -> None:
        for p in self.procs:
            p.join(1)
            if p.is_alive():
                p.kill()
                p.join(2)
