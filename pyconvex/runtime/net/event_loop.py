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
    """``asyncio.run(main)`` on the loop :func:`loop_factory` picks, with :func:`tune_gc`."""
    tune_gc()
    tune_switch_interval()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


#: How long the event loop's thread keeps the GIL while another thread waits for it.
SWITCH_INTERVAL_S = 0.0005


def tune_switch_interval() -> None:
    """Let a waiting thread have the GIL after 0.5 ms instead of CPython's 5 ms.

    The write-ahead log's thread returns from ``fdatasync`` needing the GIL to say the batch is
    durable; while mutations keep the event loop busy it waited up to the whole interval, and
    every acknowledgement with it (measured, 256 mutations in flight: 14,500-15,300/s at 5 ms,
    18,400-20,800/s at 0.5 ms, 20,800-26,000/s without the log). The interval only matters
    while a thread waits, so an idle or single-threaded server pays nothing for it.
    """
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def tune_gc() -> None:
    """Collect cyclic garbage less often than CPython's defaults (700, 10, 10).

    A server allocates a few dozen objects per request, nearly all freed by reference counting;
    with the defaults it ran a young collection every ~20 requests and a full one — a pause of
    ~50 ms with 40k documents in memory, growing with the store — every few seconds, which
    showed up as latency spikes (measured: 10 full collections in a 6 s mutation burst; none
    with these settings, and ~10 % more mutations per second).
    """
    gc.set_threshold(20_000, 20, 100)


def _libc_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return None
    return trim


_malloc_trim = _libc_malloc_trim()


def release_free_memory() -> bool:
    """Give the pages of freed memory back to the OS (glibc's ``malloc_trim``; Linux only, a
    no-op elsewhere). Returns whether it ran.

    Large buffers come and go in a server: the frames queued for a client that reads slowly
    (up to 32 MiB per socket) are freed when it is closed, but glibc keeps most of such memory
    in its heap: measured, eight slow readers closed as overloaded left the process at 504 MB,
    against 139 MB before them. The sync endpoint calls this once such sockets are gone
    (at most once a second). Fixing glibc's mmap threshold instead would do it too, but cost
    ~15 % of mutation throughput (every large allocation an mmap).
    """
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True


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
