"""The event loop the server runs on: uvloop when it is installed, else asyncio's own.

Everything a deployment does happens on one loop thread (functions run on it without
yielding), so the loop's own per-callback and per-socket cost is a large share of each
request: uvloop roughly halves it. ``PYCONVEX_LOOP=asyncio`` forces the standard loop.

    from pyconvex.runtime.net.event_loop import run
    run(main())
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's ``new_event_loop`` when available and not disabled, else None (asyncio's)."""
    if os.environ.get("PYCONVEX_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop :func:`loop_factory` picks, with :func:`tune_gc` and
    :func:`tune_malloc`."""
    tune_gc()
    tune_malloc()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


def tune_gc() -> None:
    """Collect cyclic garbage less often than CPython's defaults (700, 10, 10).

    A server allocates a few dozen objects per request, nearly all freed by reference counting;
    with the defaults it ran a young collection every ~20 requests and a full one — a pause of
    ~50 ms with 40k documents in memory, growing with the store — every few seconds, which
    showed up as latency spikes (measured: 10 full collections in a 6 s mutation burst; none
    with these settings, and ~10 % more mutations per second).
    """
    gc.set_threshold(20_000, 20, 100)


#: glibc's mallopt() parameter for the size from which allocations are mmap()ed.
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024


def tune_malloc() -> bool:
    """Make glibc hand large freed blocks back to the OS (Linux only; a no-op elsewhere).

    Large buffers come and go in a server: query results, and the frames queued for a client
    that reads slowly (up to 32 MiB per socket). glibc serves blocks of 128 KiB and more with
    mmap() and returns them on free(), but each such free raises that threshold (up to 32 MiB),
    so later large buffers come from the heap, which does not shrink: measured, eight slow
    readers closed as overloaded left the process at 504 MB instead of its 139 MB before them.
    Fixing the threshold (which turns the raising off) gives the memory back. Returns whether
    it was set.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def freeze_loaded_state() -> None:
    """Move everything alive now (the loaded store, the imported code) out of the collector's
    sight: it lives as long as the server, so scanning it in every full collection is waste."""
    gc.collect()
    gc.freeze()


def thaw_frozen_state() -> None:
    """Undo :func:`freeze_loaded_state` before exit, so that shutdown frees what it froze
    (DuckDB's bindings report every object still alive when the interpreter ends)."""
    gc.unfreeze()
    gc.collect()
