"""What the client calls: a function named by a generated reference (``api.messages.send``) or
a ``"module:function"`` string, with its arguments in Convex's JSON.

    >>> function_path("messages:send")
    'messages:send'
    >>> function_path("messages.js:send"), function_path("messages")
    ('messages:send', 'messages:default')
    >>> wire_args({"n": 1, "body": "hi"})
    {'n': 1.0, 'body': 'hi'}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pyconvex.errors import InvalidValueError
from pyconvex.server.references import FunctionReference
from pyconvex.values import encode_value, to_value


def function_path(fn: object) -> str:
    """The canonical ``module:function`` path of a reference or a path string (Convex's
    normalisation: no colon means ``default``, a ``.js`` module suffix is dropped)."""
    if isinstance(fn, FunctionReference):
        path = fn.path
    elif isinstance(fn, str):
        path = fn
    else:
        raise TypeError(
            f"A function is named by a reference (api.messages.send) or a 'module:function' "
            f"string, not {type(fn).__name__} {fn!r}."
        )
    module, colon, name = path.rpartition(":")
    if not colon:
        module, name = path, "default"
    module = module.removesuffix(".js")
    if not module or not name:
        raise ValueError(
            f"{path!r} is not a function path: write 'module:function', e.g. 'messages:send'."
        )
    return f"{module}:{name}"


def wire_args(args: Mapping[str, Any] | None, where: str = "") -> dict[str, Any]:
    """The arguments as Convex JSON (an ``int`` becomes a float64, ``Int64`` an int64),
    raising ``InvalidValueError`` naming the bad field."""
    if args is None:
        return {}
    if not isinstance(args, Mapping):
        raise TypeError(
            f"Arguments{where} must be a dict of field -> value, not {type(args).__name__}."
        )
    try:
        encoded = encode_value(to_value(dict(args), path=".args"))
    except InvalidValueError as e:
        raise InvalidValueError(f"Invalid arguments{where}: {e}") from None
    assert isinstance(encoded, dict)
    return encoded


def query_token(path: str, args: dict[str, Any]) -> str:
    """One string per distinct (function, arguments): identical subscriptions share a query."""
    return path + "|" + json.dumps(args, sort_keys=True, separators=(",", ":"))
