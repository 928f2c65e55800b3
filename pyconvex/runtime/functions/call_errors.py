"""A failed function call, described in Convex's own words.

Apps and tests ported from Convex match on its error texts, so a failure reads as Convex's
backend writes it: a request line, then the error as its runtime reports it (ending in a
newline), then the user's frames::

    [Request ID: 0a8b5f0b3f9e1c2d] Server Error
    Uncaught ValueError: no such channel
        at send (convex/messages.py:25)

* an exception: ``Uncaught <Python class>: <message>`` (the class says more to a Python
  developer than JavaScript's ``Error``);
* a ``ConvexError``: its data as compact JSON (``{"code":"BAD","n":100}``, an int64 as
  ``"7n"``), or the string it was given;
* invalid arguments or results: ``ArgumentValidationError:`` / ``ReturnsValidationError:``
  and Convex's validation text, then pyconvex's explanation naming the function.

The request id is new for every call, and the same in the client's message, in
``pyconvex logs`` and in the dev console, so the failing call can be found.
"""

from __future__ import annotations

import contextlib
import traceback as tb
from pathlib import Path
from typing import Any

from pyconvex.errors import ConvexError, InvalidValueError, PyconvexError, ValidationError
from pyconvex.runtime.functions.results import PACKAGE_DIR, FunctionFailure, traceback_texts
from pyconvex.server.functions import FunctionDefinition
from pyconvex.values import to_value
from pyconvex.values.error_text import display_value, stringify_for_error


def uncaught(e: BaseException, functions_dir: Path | None) -> FunctionFailure:
    """What an exception that escaped a function's handler reports. A ``TaskGroup``'s group of
    one is reported as that one, as Convex reports ``Promise.all``'s first rejection."""
    while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
        e = e.exceptions[0]
    frames = user_frames(e, functions_dir)
    if isinstance(e, ConvexError):
        try:
            data = to_value(e.data)
        except InvalidValueError as bad:
            return FunctionFailure.server_error(f"ConvexError with invalid data: {bad}", frames)
        text = data if isinstance(data, str) else stringify_for_error(data)
        return FunctionFailure.server_error(
            uncaught_text(type(e).__name__, text), frames, is_convex_error=True, data=data
        )
    user, full = traceback_texts(e)
    message = str(e)
    if isinstance(e, BaseExceptionGroup):
        message += ": " + "; ".join(f"{type(x).__name__}: {x}" for x in e.exceptions)
    return FunctionFailure.server_error(
        uncaught_text(type(e).__name__, message), frames, traceback=user, full_traceback=full
    )


def uncaught_text(name: str, message: str) -> str:
    """``Uncaught <name>: <message>``, as Convex's runtime formats an uncaught error."""
    if name and message:
        return f"Uncaught {name}: {message}"
    return f"Uncaught {name or message}".rstrip()


def user_frames(e: BaseException, functions_dir: Path | None) -> list[str]:
    """The frames of ``e`` outside pyconvex, innermost first as JavaScript lists them:
    ``send (convex/messages.py:25)``."""
    root = None if functions_dir is None else functions_dir.resolve().parent
    frames = []
    for frame in reversed(tb.extract_tb(e.__traceback__)):
        if frame.filename.startswith(PACKAGE_DIR):
            continue
        where = frame.filename
        if root is not None:
            with contextlib.suppress(ValueError):  # not under the project: the full path
                where = Path(where).relative_to(root).as_posix()
        frames.append(f"{frame.name} ({where}:{frame.lineno})")
    return frames


class ArgsError(PyconvexError):
    """The arguments of a call do not match its ``args``."""


class ReturnsError(PyconvexError):
    """What a function returned does not match its ``returns``."""


def args_error(fn: FunctionDefinition, e: ValueError | None, args: Any = None) -> ArgsError:
    """Convex's ``ArgumentValidationError`` text, then pyconvex's explanation."""
    if e is None:
        return ArgsError(
            "Expected to receive an object as the function's argument. Instead received: "
            f"{display_value(args)}\n{fn.path} takes an object of arguments, got "
            f"{type(args).__name__}."
        )
    hint = ""
    assert fn.args is not None
    if isinstance(args, dict) and list(fn.args.fields) == ["args"] and "args" not in args:
        hint = (
            f" ({fn.name}(ctx, args) takes one argument named 'args': in pyconvex each "
            f"argument is its own keyword parameter, e.g. {fn.name}(ctx, "
            f"{', '.join(args) or 'name'}))"
        )
    if isinstance(e, ValidationError) and e.convex:
        return ArgsError(f"ArgumentValidationError: {e.convex}\n{fn.path}: {e.detail}{hint}")
    return ArgsError(f"ArgumentValidationError: {fn.path}: {e}{hint}")


def returns_error(fn: FunctionDefinition, e: ValueError) -> ReturnsError:
    """Convex's ``ReturnsValidationError`` text, then pyconvex's explanation."""
    tail = f"{fn.path} returned a value that does not match returns=: "
    if isinstance(e, ValidationError) and e.convex:
        return ReturnsError(f"ReturnsValidationError: {e.convex}\n{tail}{e.detail}")
    return ReturnsError(f"ReturnsValidationError: {tail}{e}")
