"""Running handlers deterministically: frozen time, seeded randomness, captured logs.

Queries and mutations are driven to completion without ever yielding to the event loop: every
pyconvex call they await returns at once, so one ``send(None)`` finishes the coroutine. If the
handler suspends (it awaited real I/O or a sleep), that is an error pointing to actions.

``time.time``/``time.time_ns`` and the ``random`` module's functions are replaced once by
proxies that answer from the current execution scope (frozen clock, seeded generator) while a
query or mutation runs, and behave as usual otherwise. ``datetime.datetime`` and
``datetime.date`` are C types whose ``now()``/``today()`` read the C clock, so while a query or
mutation runs the ``datetime`` module's names point to twins whose clock is the frozen one
(:class:`FrozenClockDatetime`); user modules that bound the classes by name
(``from datetime import datetime``) get the twins at load time. The twins only ever make real
``datetime``/``date`` objects, and ``isinstance`` against them answers as for the real classes. ``print`` output and log records are
collected as the call's log lines ("[LOG] …", "[INFO] …").
"""

from __future__ import annotations

import datetime as _datetime
import io
import logging
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, ClassVar, SupportsIndex, TextIO

from pyconvex.errors import TransactionIOError

USER_LOGGER = "pyconvex.user"


class ExecutionScope:
    """Per-execution state the proxies read: frozen time, lazy seeded RNG, log lines.

    ``where`` names the execution in errors ("query messages:list"); ``loop_thread`` is the
    thread of the event loop an action runs on (0 for queries and mutations): a blocking call
    made there stalls the server, and is reported once (``warned``).
    """

    __slots__ = (
        "_rng",
        "deterministic",
        "log_lines",
        "loop_thread",
        "now_ns",
        "partial",
        "seed",
        "warned",
        "where",
    )

    def __init__(self, now_ns: int, seed: int, deterministic: bool = True, where: str = "") -> None:
        # Microseconds: what datetime can hold, so every clock a function reads agrees.
        self.now_ns = now_ns - now_ns % 1000
        self.seed = seed
        self.deterministic = deterministic
        self.log_lines: list[str] = []
        self.partial = ""
        self._rng: random.Random | None = None
        self.where = where
        self.loop_thread = 0
        self.warned = False

    @property
    def rng(self) -> random.Random:
        if self._rng is None:
            self._rng = random.Random(self.seed)
        return self._rng

    def log(self, level: str, message: str) -> None:
        self.log_lines.append(f"[{level}] {message}")


_scope_var: ContextVar[ExecutionScope | None] = ContextVar("pyconvex_scope", default=None)
_installed = False
_real_time = time.time
_real_time_ns = time.time_ns
_real_random: dict[str, Callable[..., Any]] = {}
_RANDOM_FUNCS = (
    "random", "uniform", "randint", "randrange", "choice", "choices", "shuffle", "sample",
    "getrandbits", "gauss", "normalvariate", "triangular", "betavariate", "expovariate",
    "randbytes",
)  # fmt: skip


def _proxy_time() -> float:
    scope = _scope_var.get()
    if scope is not None and scope.deterministic:
        return scope.now_ns / 1_000_000_000  # int / int: correctly rounded, like datetime's
    return _real_time()


def _proxy_time_ns() -> int:
    scope = _scope_var.get()
    if scope is not None and scope.deterministic:
        return scope.now_ns
    return _real_time_ns()


def _make_random_proxy(name: str) -> Callable[..., Any]:
    real = _real_random[name]

    def proxy(*args: Any, **kwargs: Any) -> Any:
        scope = _scope_var.get()
        if scope is not None and scope.deterministic:
            return getattr(scope.rng, name)(*args, **kwargs)
        return real(*args, **kwargs)

    proxy.__name__ = name
    proxy.__doc__ = real.__doc__
    return proxy


_real_uuid4 = uuid.uuid4


def _proxy_uuid4() -> uuid.UUID:
    scope = _scope_var.get()
    if scope is not None and scope.deterministic:
        return uuid.UUID(int=scope.rng.getrandbits(128), version=4)
    return _real_uuid4()


class _ScopeLogHandler(logging.Handler):
    _LEVELS: ClassVar[dict[str, str]] = {
        "DEBUG": "DEBUG",
        "INFO": "INFO",
        "WARNING": "WARN",
        "ERROR": "ERROR",
        "CRITICAL": "ERROR",
    }

    def emit(self, record: logging.LogRecord) -> None:
        scope = _scope_var.get()
        if scope is None:
            return
        try:
            scope.log(self._LEVELS.get(record.levelname, "LOG"), record.getMessage())
        except Exception:
            self.handleError(record)


class _StdoutRouter(io.TextIOBase):
    """Stands in for sys.stdout while executions run: printed lines of the current execution
    (a context variable, so concurrent actions keep theirs apart) become its [LOG] lines;
    anything else goes to the stdout that was there before."""

    def __init__(self, fallback: TextIO) -> None:
        self.fallback = fallback

    def write(self, s: str) -> int:
        scope = _scope_var.get()
        if scope is None:
            return self.fallback.write(s)
        text = scope.partial + s
        *lines, scope.partial = text.split("\n")
        for line in lines:
            scope.log("LOG", line)
        return len(s)

    def flush(self) -> None:
        if _scope_var.get() is None:
            self.fallback.flush()


_router: _StdoutRouter | None = None
_active = 0


_RealDatetime = _datetime.datetime
_RealDate = _datetime.date


def _frozen_now_ns() -> int | None:
    scope = _scope_var.get()
    if scope is not None and scope.deterministic:
        return scope.now_ns
    return None


class _TwinMeta(type):
    """isinstance/issubclass against a clock twin answer as for the real class."""

    _real: type

    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, cls._real)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, cls._real)


class FrozenClockDatetime(_RealDatetime, metaclass=_TwinMeta):
    """``datetime.datetime`` whose ``now()``, ``utcnow()`` and ``today()`` read the frozen clock
    inside queries and mutations; everything it makes is a real ``datetime``::

        from datetime import datetime, timezone
        datetime.now(timezone.utc)  # inside a mutation: its frozen start time
    """

    _real = _RealDatetime

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _RealDatetime(*args, **kwargs)

    @classmethod
    def now(cls, tz: _datetime.tzinfo | None = None) -> Any:
        ns = _frozen_now_ns()
        if ns is None:
            return _RealDatetime.now(tz)
        return _RealDatetime.fromtimestamp(ns / 1_000_000_000, tz)

    @classmethod
    def utcnow(cls) -> Any:
        ns = _frozen_now_ns()
        if ns is None:
            return _RealDatetime.now(_datetime.UTC).replace(tzinfo=None)
        utc = _RealDatetime.fromtimestamp(ns / 1_000_000_000, _datetime.UTC)
        return utc.replace(tzinfo=None)

    @classmethod
    def today(cls) -> Any:
        return cls.now()


class FrozenClockDate(_RealDate, metaclass=_TwinMeta):
    """``datetime.date`` whose ``today()`` reads the frozen clock inside queries and
    mutations; everything it makes is a real ``date``."""

    _real = _RealDate

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _RealDate(*args, **kwargs)

    @classmethod
    def today(cls) -> Any:
        ns = _frozen_now_ns()
        if ns is None:
            return _RealDate.today()
        return _RealDatetime.fromtimestamp(ns / 1_000_000_000).date()


_CLOCK_TWINS: dict[int, type] = {
    id(_RealDatetime): FrozenClockDatetime,
    id(_RealDate): FrozenClockDate,
}
_deterministic_active = 0


def bind_clock_twins(namespace: dict[str, Any]) -> None:
    """Rebind names of a user module that hold ``datetime.datetime`` / ``datetime.date``
    (``from datetime import datetime``) to their frozen-clock twins."""
    for name, value in list(namespace.items()):
        twin = _CLOCK_TWINS.get(id(value))
        if twin is not None and value in (_RealDatetime, _RealDate):
            namespace[name] = twin


#: Audit events (``sys.addaudithook``) of blocking or outside-world operations: forbidden in
#: queries and mutations, reported in actions when made on the event loop's thread.
_IO_EVENTS = frozenset(
    {
        "socket.connect",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.sendto",
        "time.sleep",
        "subprocess.Popen",
        "os.system",
        "os.posix_spawn",
        "os.fork",
        "urllib.Request",
        "http.client.connect",
        "smtplib.connect",
        "ftplib.connect",
    }
)


def _describe_event(event: str, args: tuple[Any, ...]) -> str:
    if event == "time.sleep":
        return f"time.sleep({args[0]!r})" if args else "time.sleep()"
    if event == "urllib.Request" and args:
        return f"urllib.request for {args[1]!s}" if len(args) > 1 else "urllib.request"
    if event in ("socket.connect", "socket.sendto") and len(args) > 1:
        return f"a network connection to {args[-1]!r} ({event})"
    if event.startswith("socket.get") and args:
        return f"a DNS lookup of {args[0]!r} ({event})"
    if event in ("subprocess.Popen", "os.system", "os.posix_spawn"):
        return f"starting a process ({event})"
    return event


def _blocks(event: str, args: tuple[Any, ...]) -> bool:
    """Whether the operation waits (a non-blocking socket's connect returns at once)."""
    if event == "socket.connect" and args:
        timeout = getattr(args[0], "gettimeout", None)
        return timeout is None or timeout() != 0.0
    if event == "time.sleep":
        return bool(args) and bool(args[0])
    return event not in ("subprocess.Popen", "os.posix_spawn", "os.fork", "socket.sendto")


_real_sleep = time.sleep


def _proxy_sleep(secs: float | SupportsIndex, /) -> None:
    # Python < 3.12 raises no audit event for time.sleep.
    _audit("time.sleep", (secs,))
    _real_sleep(secs)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event not in _IO_EVENTS:
        return
    scope = _scope_var.get()
    if scope is None:
        return
    if scope.deterministic:
        what = scope.where or "this query or mutation"
        raise TransactionIOError(
            f"{what} tried {_describe_event(event, args)}. Queries and mutations are "
            "deterministic transactions and may not do I/O, sleep or start processes: do it in "
            "an action (@action), which can then call this function with ctx.run_query / "
            "ctx.run_mutation."
        )
    if scope.warned or scope.loop_thread != threading.get_ident() or not _blocks(event, args):
        return
    scope.warned = True
    message = (
        f"{scope.where or 'this action'} called {_describe_event(event, args)} on the server's "
        "event loop, which stalls every other request until it returns. Use an async API "
        "(await asyncio.sleep, httpx.AsyncClient) or run blocking code with "
        "`await ctx.run_blocking(fn, *args)`."
    )
    # A log line of the action (shown to its caller and in the dev console and logs).
    scope.log("WARN", message)


def install() -> None:
    """Install the time/random/uuid proxies, the I/O audit hook and the log handler
    (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    sys.addaudithook(_audit)
    time.time = _proxy_time
    time.time_ns = _proxy_time_ns
    if sys.version_info < (3, 12):
        time.sleep = _proxy_sleep
    for name in _RANDOM_FUNCS:
        if hasattr(random, name):
            _real_random[name] = getattr(random, name)
            setattr(random, name, _make_random_proxy(name))
    uuid.uuid4 = _proxy_uuid4
    handler = _ScopeLogHandler(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    user = logging.getLogger(USER_LOGGER)
    user.setLevel(logging.DEBUG)


def current_scope() -> ExecutionScope | None:
    """The scope of the function running now (None outside one)."""
    return _scope_var.get()


def real_time_ns() -> int:
    """The wall clock, even inside a deterministic scope."""
    return _real_time_ns()


def enter(s: ExecutionScope) -> Token[ExecutionScope | None]:
    """Make ``s`` the current scope; printed lines become its log lines. Pair with exit()."""
    global _router, _active
    if _active == 0 or _router is None or sys.stdout is not _router:
        _router = _StdoutRouter(sys.stdout)
        sys.stdout = _router
    _active += 1
    if s.deterministic:
        global _deterministic_active
        if _deterministic_active == 0:
            _datetime.datetime = FrozenClockDatetime  # type: ignore[misc]
            _datetime.date = FrozenClockDate  # type: ignore[misc]
        _deterministic_active += 1
    return _scope_var.set(s)


def exit(s: ExecutionScope, token: Token[ExecutionScope | None]) -> None:
    """Leave the scope entered with :func:`enter`."""
    global _active, _deterministic_active
    _scope_var.reset(token)
    if s.deterministic:
        _deterministic_active -= 1
        if _deterministic_active == 0:
            _datetime.datetime = _RealDatetime  # type: ignore[misc]
            _datetime.date = _RealDate  # type: ignore[misc]
    if s.partial:
        s.log("LOG", s.partial)
        s.partial = ""
    _active -= 1
    if _active == 0 and _router is not None and sys.stdout is _router:
        sys.stdout = _router.fallback


@contextmanager
def scope(s: ExecutionScope) -> Iterator[ExecutionScope]:
    """Context-manager form of :func:`enter` / :func:`exit`."""
    token = enter(s)
    try:
        yield s
    finally:
        exit(s, token)
