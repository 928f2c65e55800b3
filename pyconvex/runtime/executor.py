"""Running handlers deterministically: frozen time, seeded randomness, captured logs.

Queries and mutations are driven to completion without ever yielding to the event loop: every
pyconvex call they await returns at once, so one ``send(None)`` finishes the coroutine. If the
handler suspends (it awaited real I/O or a sleep), that is an error pointing to actions.

``time.time``/``time.time_ns`` and the ``random`` module's functions are replaced once by
proxies that answer from the current execution scope (frozen clock, seeded generator) while a
query or mutation runs, and behave as usual otherwise. ``print`` output and log records are
collected as the call's log lines ("[LOG] …", "[INFO] …").
"""

from __future__ import annotations

import io
import logging
import random
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, ClassVar, TextIO

from pyconvex.errors import TransactionIOError

USER_LOGGER = "pyconvex.user"


class ExecutionScope:
    """Per-execution state the proxies read: frozen time, lazy seeded RNG, log lines."""

    __slots__ = ("_rng", "deterministic", "log_lines", "now_ns", "partial", "seed")

    def __init__(self, now_ns: int, seed: int, deterministic: bool = True) -> None:
        self.now_ns = now_ns
        self.seed = seed
        self.deterministic = deterministic
        self.log_lines: list[str] = []
        self.partial = ""
        self._rng: random.Random | None = None

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
        return scope.now_ns / 1e9
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


def install() -> None:
    """Install the time/random/uuid proxies and the log handler (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    time.time = _proxy_time
    time.time_ns = _proxy_time_ns
    for name in _RANDOM_FUNCS:
        if hasattr(random, name):
            _real_random[name] = getattr(random, name)
            setattr(random, name, _make_random_proxy(name))
    uuid.uuid4 = _proxy_uuid4
    handler = _ScopeLogHandler(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    user = logging.getLogger(USER_LOGGER)
    user.setLevel(logging.DEBUG)


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
    return _scope_var.set(s)


def exit(s: ExecutionScope, token: Token[ExecutionScope | None]) -> None:
    """Leave the scope entered with :func:`enter`."""
    global _active
    _scope_var.reset(token)
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


def drive(coro: Any, where: str) -> Any:
    """Run a handler's coroutine to completion without yielding to the event loop."""
    if not isinstance(coro, Coroutine):
        return coro  # a plain (non-async) handler already returned its value
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise TransactionIOError(
        f"{where} awaited {_describe(yielded)}, which would suspend the transaction. Queries and "
        "mutations must be deterministic and may not do I/O or sleep: await only ctx.db / "
        "ctx.storage / ctx.scheduler calls here, and move network, file or timer work into an "
        "action (@action), which can call this function with ctx.run_query / ctx.run_mutation."
    )


def _describe(obj: object) -> str:
    if obj is None:
        return "a bare yield (e.g. asyncio.sleep(0))"
    return f"{type(obj).__module__}.{type(obj).__qualname__}"
