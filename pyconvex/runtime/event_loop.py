"""The event loop the server runs on: uvloop when it is installed, else asyncio's own.

Everything a deployment does happens on one loop thread (functions run on it without
yielding), so the loop's own per-callback and per-socket cost is a large share of each
request: uvloop roughly halves it. ``PYCONVEX_LOOP=asyncio`` forces the standard loop.

    from pyconvex.runtime.event_loop import run
    run(main())
"""

from __future__ import annotations

import asyncio
import os
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
    """``asyncio.run(main)`` on the loop :func:`loop_factory` picks."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
