"""Start ``pyconvex dev`` as a child process on a free port, wait until it answers, stop it.

For tests, benchmarks and scripts that need a real server (the test suite and ``bench/`` start
every server through it)::

    from pyconvex.dev.launcher import DevServer

    with DevServer(Path("my-app")) as server:  # `pyconvex dev --port 0` in my-app/
        httpx.post(f"{server.url}/api/query", json={"path": "messages:list", "args": {}})
    # stopped here (SIGTERM, then SIGKILL), by pid, even when the block raised

The server binds 127.0.0.1 on a port the OS picks; the launcher reads the URL from the
``pyconvex dev: serving URL`` line and polls ``GET /version`` until it answers 200 (so the
start-up push's ``ready in`` line, printed before the server listens, is already in
:attr:`DevServer.output`). Everything the child prints (stdout and stderr together) is kept in
:attr:`DevServer.output`, read on a thread so the child never blocks on a full pipe.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

from pyconvex.errors import PyconvexError

#: The line ``pyconvex dev`` (or ``serve``) prints once its socket listens (pyconvex.dev.serve).
SERVING = re.compile(r"pyconvex (?:dev|serve): serving (http://\S+:(\d+))")
#: The line it prints right after: where the HTTP actions of convex/http.py are served.
SITE = re.compile(r"pyconvex (?:dev|serve): HTTP actions at (http://\S+:(\d+))")
#: The line it prints once a push has gone live.
READY = re.compile(r"pyconvex dev: ready in")

LinePredicate = str | re.Pattern[str] | Callable[[str], bool]


class DevServerError(PyconvexError):
    """``pyconvex dev`` did not start (it exited, or did not answer in time); the message ends
    with the last lines it printed."""


class OutputLines:
    """The lines a child process prints, read on a thread; wait for one with a timeout.

    ``keep`` bounds how many lines are kept (the oldest go first); indexes stay absolute, so a
    :meth:`mark` taken before an action still finds the lines printed after it.
    """

    def __init__(self, stream: IO[str], keep: int | None = None) -> None:
        self.lines: list[str] = []
        #: Lines dropped from the front of :attr:`lines` (``keep``).
        self.dropped = 0
        self.ended = False
        self._keep = keep
        self._changed = threading.Condition()
        self._thread = threading.Thread(
            target=self._read, args=(stream,), name="pyconvex-child-output", daemon=True
        )
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    if self._keep is not None and len(self.lines) > self._keep:
                        extra = len(self.lines) - self._keep
                        del self.lines[:extra]
                        self.dropped += extra
                    self._changed.notify_all()
        except ValueError:  # the stream was closed under us: nothing more to read
            pass
        finally:
            with self._changed:
                self.ended = True
                self._changed.notify_all()

    def mark(self) -> int:
        """The index the next line will have: pass it as ``start`` to wait for later lines."""
        with self._changed:
            return self.dropped + len(self.lines)

    def find(self, match: LinePredicate, start: int = 0) -> int | None:
        """The index of the first line from ``start`` on that matches, if any yet."""
        test = _predicate(match)
        with self._changed:
            for i in range(max(start - self.dropped, 0), len(self.lines)):
                if test(self.lines[i]):
                    return self.dropped + i
        return None

    def wait_for(self, match: LinePredicate, start: int = 0, timeout: float = 30.0) -> int:
        """The index of the first line from ``start`` on that matches ``match`` (a regular
        expression searched in the line, or a predicate), waiting up to ``timeout`` seconds.

        Raises :class:`TimeoutError`, with the last lines printed, when none comes in time or
        the child's output ends without one."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self.find(match, start)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self.ended:
                    why = "the output ended" if self.ended else f"none within {timeout:g} s"
                    raise TimeoutError(
                        f"no line matching {_describe(match)} ({why}); last lines:\n{self.tail()}"
                    )
                self._changed.wait(left)

    def line(self, index: int) -> str:
        """The line at absolute ``index`` (as returned by :meth:`wait_for`)."""
        with self._changed:
            return self.lines[index - self.dropped]

    def since(self, start: int) -> list[str]:
        """The lines from absolute index ``start`` on."""
        with self._changed:
            return self.lines[max(start - self.dropped, 0) :]

    def tail(self, n: int = 60) -> str:
        with self._changed:
            return "\n".join(self.lines[-n:])

    def join(self, timeout: float = 10.0) -> None:
        """Wait for the reader to reach the end of the stream (the child has exited)."""
        self._thread.join(timeout)


def _predicate(match: LinePredicate) -> Callable[[str], bool]:
    if callable(match) and not isinstance(match, re.Pattern):
        return match
    regex = re.compile(match)
    return lambda line: regex.search(line) is not None


def _describe(match: LinePredicate) -> str:
    if isinstance(match, re.Pattern):
        return repr(match.pattern)
    return repr(match) if isinstance(match, str) else getattr(match, "__name__", "the predicate")


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a ``python -m pyconvex`` child: unbuffered, uncoloured, wide (rich
    does not wrap), and importing the same pyconvex as this process."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "200"}
    source_root = str(Path(__file__).resolve().parents[2])  # holds this pyconvex/
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source_root, env.get("PYTHONPATH")) if p)
    env.update(extra or {})
    return env


def stop_process(
    proc: subprocess.Popen[str] | subprocess.Popen[bytes],
    sig: int = signal.SIGTERM,
    grace: float = 10.0,
) -> int:
    """Send ``sig`` to ``proc`` (by its pid), wait ``grace`` seconds, then SIGKILL it; return its
    exit code (negative for a signal, as :attr:`subprocess.Popen.returncode`)."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    assert proc.returncode is not None
    return proc.returncode


class DevServer:
    """``python -m pyconvex dev`` serving ``project`` (a directory with ``convex/``), started by
    :meth:`start` (or ``with``) and stopped by :meth:`stop`, always by its pid.

    ``args`` are more ``pyconvex dev`` options (``"-v"``, ``"--typecheck", "disable"``);
    ``program`` is how to run pyconvex (default this interpreter's ``-m pyconvex``; a venv's
    ``bin/pyconvex`` works too); ``env`` is the child's whole environment (default
    :func:`child_env`); ``keep_lines`` bounds the output kept (long runs).
    """

    def __init__(
        self,
        project: Path,
        *args: str,
        host: str = "127.0.0.1",
        port: int = 0,
        program: Sequence[str] = (sys.executable, "-m", "pyconvex"),
        env: Mapping[str, str] | None = None,
        start_timeout: float = 60.0,
        keep_lines: int | None = None,
    ) -> None:
        self.project = Path(project)
        self.args: Sequence[str] = args
        self.program = tuple(program)
        self.host = host
        #: The port asked for (0: any), then the one the server chose.
        self.port = port
        self.url = ""
        #: Where the HTTP actions are served (the site port), once started.
        self.site_url = ""
        self.site_port: int | None = None
        self.start_timeout = start_timeout
        self.returncode: int | None = None
        self._env = env
        self._keep = keep_lines
        self._proc: subprocess.Popen[str] | None = None
        self._output: OutputLines | None = None

    # -- the child ------------------------------------------------------------------------------

    @property
    def proc(self) -> subprocess.Popen[str]:
        if self._proc is None:
            raise DevServerError("the dev server is not started: call start() first")
        return self._proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def output(self) -> OutputLines:
        """What the child printed (the last run's, after :meth:`stop`)."""
        if self._output is None:
            raise DevServerError("the dev server was never started: call start() first")
        return self._output

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def admin_key(self) -> str:
        """The deployment's admin key (``.pyconvex/admin_key`` unless the project moved its
        data directory)."""
        return (self.project / ".pyconvex" / "admin_key").read_text().strip()

    #: The pyconvex command that serves.
    subcommand = "dev"

    def command(self, port: int, site_port: int | None = None) -> list[str]:
        site = [] if site_port is None else ["--site-port", str(site_port)]
        return [
            *self.program,
            self.subcommand,
            "--port",
            str(port),
            "--host",
            self.host,
            *site,
            *self.args,
        ]

    # -- start and stop -------------------------------------------------------------------------

    def start(self, port: int | None = None, site_port: int | None = None) -> DevServer:
        """Spawn the server (on ``port``, default the one given or last chosen; HTTP actions on
        ``site_port``, default the last chosen with the last port, else ``port + 1`` or a free
        one for port 0) and return once ``GET /version`` answers 200. Raises
        :class:`DevServerError` (after stopping the child) when it exits or does not answer
        within ``start_timeout`` seconds."""
        if self.running:
            raise DevServerError(f"the dev server is already running (pid {self.pid})")
        if port is None and site_port is None:
            # Started again on the port a port of 0 chose: its site port too (port + 1 may
            # well be taken, by one of the clients' own sockets even).
            site_port = self.site_port
        want = self.port if port is None else port
        deadline = time.monotonic() + self.start_timeout
        self.returncode = None
        self._proc = subprocess.Popen(
            self.command(want, site_port),
            cwd=self.project,
            env=dict(self._env) if self._env is not None else child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self._proc.stdout is not None
        self._output = OutputLines(self._proc.stdout, keep=self._keep)
        try:
            self._await_serving(want, deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _await_serving(self, want: int, deadline: float) -> None:
        try:
            index = self.output.wait_for(SERVING, timeout=max(deadline - time.monotonic(), 0))
        except TimeoutError:
            if self.output.ended:  # it closed its output: it is exiting, wait for its code
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(10)
            why = (
                f"exited with code {self.proc.returncode}"
                if self.proc.returncode is not None
                else f"printed no 'serving' line within {self.start_timeout:g} s"
            )
            raise DevServerError(
                f"pyconvex dev in {self.project} {why}:\n{self.output.tail()}"
            ) from None
        m = SERVING.search(self.output.line(index))
        assert m is not None
        self.url, self.port = m.group(1), int(m.group(2))
        if want not in (0, self.port):
            raise DevServerError(f"asked pyconvex dev for port {want}, it chose {self.port}")
        # Printed right after the serving line, by the same call.
        with contextlib.suppress(TimeoutError):
            site = SITE.search(self.output.line(self.output.wait_for(SITE, index, timeout=5)))
            if site is not None:
                self.site_url, self.site_port = site.group(1), int(site.group(2))
        while not self._answers():
            if self.proc.poll() is not None:
                raise DevServerError(
                    f"pyconvex dev exited with code {self.proc.returncode} after serving:\n"
                    + self.output.tail()
                )
            if time.monotonic() > deadline:
                raise DevServerError(
                    f"GET {self.url}/version never answered 200 within {self.start_timeout:g} s:\n"
                    + self.output.tail()
                )
            time.sleep(0.01)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/version", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, sig: int = signal.SIGTERM, grace: float = 10.0) -> int | None:
        """Send ``sig`` (SIGTERM; SIGINT is Ctrl-C), SIGKILL after ``grace`` seconds; wait for
        the output to end. Returns the exit code (None if it was never started); idempotent."""
        proc = self._proc
        if proc is None:
            return self.returncode
        try:
            self.returncode = stop_process(proc, sig, grace)
        finally:
            if self._output is not None:
                self._output.join()
            if proc.stdout is not None:
                proc.stdout.close()
            self._proc = None
        return self.returncode

    def restart(self) -> DevServer:
        """Stop, then start again on the same ports (same data directory): the site port too,
        which a port of 0 had chosen freely, so ``port + 1`` may well be taken."""
        self.stop()
        return self.start()

    def __enter__(self) -> DevServer:
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ProductionServer(DevServer):
    """``python -m pyconvex serve`` in ``project``: the production server, started and stopped
    like :class:`DevServer`::

        with ProductionServer(Path("my-app")) as server:
            httpx.get(f"{server.url}/health")
    """

    subcommand = "serve"
