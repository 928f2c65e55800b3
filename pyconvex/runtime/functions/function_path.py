"""Function paths as clients send them, normalised to ``"<module path>:<name>"``.

Clients disagree on how they spell a function (PROTOCOL.md §5): the npm HTTP client sends the
default export as ``"messages"``, the Rust/Python client sends ``"messages.js:list"`` after a
reconnect. Every entry point normalises with :func:`normalize_path` before looking a function up::

    >>> normalize_path("messages.js:list")
    'messages:list'
    >>> normalize_path("admin/users")
    'admin/users:default'
"""

from __future__ import annotations

import re
from typing import Any

from pyconvex.errors import PyconvexError

MAX_IDENTIFIER_LENGTH = 64
#: No function path is longer (module parts and the name are at most 64 characters each).
MAX_PATH_LENGTH = 1024

_MODULE_PART = re.compile(r"[A-Za-z0-9_.]+")
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def split_path(path: str) -> tuple[str, str]:
    """Split a function path into ``(module path, function name)``, normalised and validated.

    ``split_path("dir/mod.js:fn") == ("dir/mod", "fn")``. Raises ``ValueError`` with a message
    that names the path and what is wrong with it.
    """
    if not isinstance(path, str):
        raise ValueError(
            f"Function path must be a string like 'messages:list', got {type(path).__name__}."
        )
    if len(path) > MAX_PATH_LENGTH:
        raise ValueError(
            f"Invalid function path {path[:60]!r}... ({len(path)} characters): a function path "
            f"is at most {MAX_PATH_LENGTH} characters, e.g. 'messages:list'."
        )
    module, colon, name = path.rpartition(":")
    if not colon:
        module, name = path, "default"
    if module.endswith(".js"):
        module = module[: -len(".js")]
    _check_module(path, module)
    _check_name(path, name)
    return module, name


def normalize_path(path: str) -> str:
    """Return the canonical ``"module:name"`` form of a function path.

    Splits at the last ``:`` (no colon means the ``default`` export) and drops a trailing
    ``.js`` from the module, then validates it like the Convex backend does::

        normalize_path("messages")          # 'messages:default'
        normalize_path("dir/mod.js:send")   # 'dir/mod:send'

    Raises ``ValueError`` when the path cannot name a function.
    """
    if type(path) is str:
        cached = _NORMALIZED.get(path)
        if cached is not None:
            return cached
    module, name = split_path(path)
    normalized = f"{module}:{name}"
    if len(_NORMALIZED) < 10_000:  # every request names a function: remember the answers
        _NORMALIZED[path] = normalized
    return normalized


_NORMALIZED: dict[str, str] = {}


def is_system_path(path: str) -> bool:
    """True for functions under ``_system/`` (normalised or not)."""
    return path.startswith("_system/")


def _check_module(path: str, module: str) -> None:
    hint = "Expected '<module path>:<function name>', e.g. 'messages:list' or 'dir/module:fn'."
    if not module:
        raise ValueError(f"Invalid function path {path!r}: the module path is empty. {hint}")
    if module.startswith("/"):
        raise ValueError(
            f"Invalid function path {path!r}: the module path must be relative to the "
            f"functions directory (drop the leading '/'). {hint}"
        )
    parts = module.split("/")
    for part in parts:
        if not part:
            raise ValueError(f"Invalid function path {path!r}: empty path segment. {hint}")
        if len(part) > MAX_IDENTIFIER_LENGTH:
            raise ValueError(
                f"Invalid function path {path!r}: path segment {part!r} is longer than "
                f"{MAX_IDENTIFIER_LENGTH} characters."
            )
        if not _MODULE_PART.fullmatch(part) or not any(c.isalnum() for c in part):
            raise ValueError(
                f"Invalid function path {path!r}: path segment {part!r} may only contain "
                f"letters, digits, '_' and '.', and needs at least one letter or digit. {hint}"
            )
    last = parts[-1]
    if "." in last.strip("."):
        stem, extension = last.rsplit(".", 1)
        suggestion = "/".join([*parts[:-1], stem])
        raise ValueError(
            f"Invalid function path {path!r}: modules are named without an extension "
            f"(got '.{extension}'); use {suggestion!r} as the module path, e.g. "
            f"'{suggestion}:<function name>'."
        )


def _check_name(path: str, name: str) -> None:
    if not name:
        raise ValueError(
            f"Invalid function path {path!r}: the function name after ':' is empty "
            "(e.g. 'messages:list')."
        )
    if len(name) > MAX_IDENTIFIER_LENGTH:
        raise ValueError(
            f"Invalid function path {path!r}: the function name is longer than "
            f"{MAX_IDENTIFIER_LENGTH} characters."
        )
    if not _FUNCTION_NAME.fullmatch(name):
        raise ValueError(
            f"Invalid function path {path!r}: the function name {name!r} must be an "
            "identifier (a letter or '_', then letters, digits or '_')."
        )


def function_ref_path(fn: Any) -> str:
    """The path of a function reference: a "module:name" string, a FunctionDefinition, or a
    generated reference (anything with a ``path`` or ``function_path`` attribute)."""
    if isinstance(fn, str):
        return fn
    for attr in ("path", "function_path"):
        p = getattr(fn, attr, None)
        if isinstance(p, str) and p:
            return p
    raise PyconvexError(
        f"Expected a function reference (api.module.fn or 'module:fn'), got {type(fn).__name__}."
    )
