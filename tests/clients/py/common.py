"""Shared helpers for the PyPI `convex` client scripts (run as subprocesses by the tests).

The WebSocket client's Rust core blocks while holding the GIL (PROTOCOL.md §8), so these scripts
run in their own process, under their own SIGALRM time limit, and print JSON lines on stdout.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from convex import ConvexInt64, convex_to_json


def out(**fields: Any) -> None:
    # Prefixed: the client prints function log lines to stdout too.
    print("@@" + json.dumps(fields), flush=True)


def enc(value: Any) -> Any:
    return convex_to_json(value)


def special_values() -> dict[str, Any]:
    return {
        "int": ConvexInt64(123),
        "negInt": ConvexInt64(-1),
        "bigInt": ConvexInt64(2**62 + 7),
        "minInt": ConvexInt64(-(2**63)),
        "bytes": b"\x00\x01\x02\xfe\xff",
        "emptyBytes": b"",
        "nan": math.nan,
        "inf": math.inf,
        "negInf": -math.inf,
        "negZero": -0.0,
        "zero": 0.0,
        "float": 1.5,
        "intFloat": 7,  # a Python int is sent as Float64 by this client
        "str": "héllo ✓",
        "bool": False,
        "nil": None,
        "arr": [1.0, "two", None, ConvexInt64(3), [True]],
        "nested": {"a": {"b": [b"\x09", -0.0]}},
    }


@contextlib.contextmanager
def deadline(what: str, seconds: int = 10) -> Iterator[None]:
    """Fail with `what` if the block takes longer than `seconds` (the client can hang forever)."""

    def on_alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"{what}: no result within {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    remaining = signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        if remaining:
            signal.alarm(max(1, remaining - seconds))


def run(main: Callable[[str], None], limit_s: int = 60) -> None:
    def on_alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"overall time limit of {limit_s} s reached")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit_s)
    try:
        main(sys.argv[1])
    except BaseException as e:  # report everything, including the timeout
        out(error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
        sys.stdout.flush()
        os._exit(1)  # the Rust client's threads may hold the process open
    out(done=True)
    sys.stdout.flush()
    os._exit(0)
