"""Function decorators: ``query``, ``mutation``, ``action`` and their internal twins."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, overload

from pyconvex.values.annotations import (
    args_validator_from_signature,
    returns_validator_from_signature,
)
from pyconvex.values.validators import ObjectValidator, Validator, v

FunctionType = Literal["query", "mutation", "action"]
Visibility = Literal["public", "internal"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(slots=True)
class FunctionDefinition:
    """A registered Convex function: what a decorator returns.

    ``path`` ("module:name") is filled in when the functions directory is loaded. Call
    ``definition.handler`` to reach the original Python function.
    """

    kind: FunctionType
    visibility: Visibility
    handler: Callable[..., Any]
    args: ObjectValidator | None
    returns: Validator | None
    path: str = ""
    #: Parameters declared as Python ``int``: handed to the handler as int.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.handler.__name__

    def __repr__(self) -> str:
        where = self.path or self.handler.__qualname__
        return f"<{self.visibility} {self.kind} {where}>"


def _where(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", "?")
    # The loader imports convex/ under a private package name: show the module as written.
    module = re.sub(r"^_pyconvex_fn_\d+\.?", "", module) or "__init__"
    return f"{module}.{getattr(fn, '__qualname__', '?')}"


def _build(
    kind: FunctionType,
    visibility: Visibility,
    fn: Callable[..., Any],
    args: Mapping[str, Validator] | ObjectValidator | None,
    returns: Validator | None,
) -> FunctionDefinition:
    if not callable(fn):
        raise TypeError(f"@{kind} decorates a function, got {type(fn).__name__}.")
    where = _where(fn)
    params = list(inspect.signature(fn).parameters.values())
    if not params:
        raise TypeError(
            f"{where}: a {kind} handler takes ctx as its first parameter: "
            f"async def {fn.__name__}(ctx, ...)."
        )
    if args is None:
        validator: ObjectValidator | None = args_validator_from_signature(fn, where)
    elif isinstance(args, ObjectValidator):
        validator = args
    elif isinstance(args, Mapping):
        validator = v.object(dict(args))
    else:
        raise TypeError(
            f"{where}: args= takes a dict of validators, e.g. args={{'body': v.string()}}, "
            f"got {type(args).__name__}."
        )
    if validator is not None:
        _check_parameters(where, fn, params[1:], validator)
    if returns is None:
        returns = returns_validator_from_signature(fn)
    return FunctionDefinition(kind, visibility, fn, validator, returns)


def _check_parameters(
    where: str, fn: Callable[..., Any], params: list[inspect.Parameter], args: ObjectValidator
) -> None:
    """Every declared argument must reach the handler as a keyword parameter."""
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = {p.name for p in params if p.kind in keyword}
    missing = [name for name in args.fields if name not in names]
    if not missing:
        return
    wanted = ", ".join(args.fields)
    if [p.name for p in params] == ["args"]:
        raise TypeError(
            f"{where}: arguments arrive as keyword parameters, not as one `args` object (the "
            f"TypeScript shape (ctx, args)): write async def {fn.__name__}(ctx, {wanted}) — or "
            f"(ctx, **args) for a dict."
        )
    raise TypeError(
        f"{where}: args= declares {', '.join(repr(m) for m in missing)}, but the handler has no "
        f"such parameter; each argument arrives as a keyword parameter: "
        f"async def {fn.__name__}(ctx, {wanted})."
    )


def _decorator(kind: FunctionType, visibility: Visibility) -> Any:
    @overload
    def deco(fn: Callable[..., Any], /) -> FunctionDefinition: ...

    @overload
    def deco(
        *,
        args: Mapping[str, Validator] | ObjectValidator | None = None,
        returns: Validator | None = None,
    ) -> Callable[[Callable[..., Any]], FunctionDefinition]: ...

    def deco(
        fn: Callable[..., Any] | None = None,
        /,
        *,
        args: Mapping[str, Validator] | ObjectValidator | None = None,
        returns: Validator | None = None,
    ) -> Any:
        if fn is not None:
            return _build(kind, visibility, fn, args, returns)

        def wrap(f: Callable[..., Any]) -> FunctionDefinition:
            return _build(kind, visibility, f, args, returns)

        return wrap

    deco.__name__ = f"{'internal_' if visibility == 'internal' else ''}{kind}"
    return deco


query = _decorator("query", "public")
query.__doc__ = """Define a public query: a read-only, deterministic, reactive function::

    @query(args={"channel": v.id("channels")})
    async def list(ctx, channel):
        return await ctx.db.query("messages").with_index(
            "by_channel", lambda q: q.eq("channel", channel)).collect()
"""
mutation = _decorator("mutation", "public")
mutation.__doc__ = """Define a public mutation: a serializable read-write transaction::

    @mutation(args={"body": v.string()})
    async def send(ctx, body):
        return await ctx.db.insert("messages", {"body": body})
"""
action = _decorator("action", "public")
action.__doc__ = """Define a public action: may do I/O, calls queries/mutations via ctx::

    @action
    async def fetch(ctx, url: str):
        ...
"""
internal_query = _decorator("query", "internal")
internal_query.__doc__ = "Like :func:`query`, but callable only from other functions and the admin."
internal_mutation = _decorator("mutation", "internal")
internal_mutation.__doc__ = "Like :func:`mutation`, but callable only from functions and the admin."
internal_action = _decorator("action", "internal")
internal_action.__doc__ = "Like :func:`action`, but callable only from functions and the admin."
