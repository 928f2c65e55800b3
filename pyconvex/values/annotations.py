"""Validators derived from Python type annotations (DESIGN.md §1).

When a function is declared without ``args=``, its parameters' annotations say what it accepts::

    >>> async def send(ctx, channel: Id["channels"], body: str, silent: bool = False) -> None: ...
    >>> args_validator_from_signature(send)
    v.object({"channel": v.id("channels"), "body": v.string(), "silent": v.optional(v.boolean())})
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Generic, Literal, NotRequired, Required, TypeVar, Union

from pyconvex.values.validators import (
    IntValidator,
    ObjectValidator,
    UnionValidator,
    Validator,
    v,
)
from pyconvex.values.value import Int64, Unset

TableName = TypeVar("TableName", bound=str)

SUPPORTED = (
    "str, float, int, bool, bytes, None, Int64, Any, list[T], dict[str, T], a TypedDict, "
    'Literal[...], X | None, Optional[X], A | B, Id["table"], Annotated[T, v.<validator>]'
)


class _IdTable:
    """Marker inside ``Annotated[Id, ...]`` naming the table of an ``Id[...]`` annotation."""

    __slots__ = ("table",)

    def __init__(self, table: str) -> None:
        self.table = table

    def __repr__(self) -> str:
        return f"table={self.table!r}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _IdTable) and other.table == self.table

    def __hash__(self) -> int:
        return hash(self.table)


class Id(str, Generic[TableName]):
    """A document ID of one table, for annotations: ``Id[Literal["messages"]]``.

    At runtime IDs are plain strings; the annotation becomes ``v.id("messages")``::

        >>> validator_from_annotation(Id[Literal["messages"]])
        v.id("messages")

    Write ``Id[Literal["messages"]]`` in code that mypy checks: the shorter ``Id["messages"]``
    works at runtime, but a type checker reads ``"messages"`` as a forward reference to a
    class named ``messages`` and reports it.
    """

    __slots__ = ()

    def __class_getitem__(cls, table: Any) -> Any:
        # A bare string would become a ForwardRef that get_type_hints tries (and fails) to
        # resolve as a class name; carry the table name as Annotated metadata instead.
        return Annotated[cls, _IdTable(_table_name(table))]


def _table_name(table: Any) -> str:
    if isinstance(table, str):
        return table
    if isinstance(table, typing.ForwardRef):
        return table.__forward_arg__
    if typing.get_origin(table) is Literal:
        args = typing.get_args(table)
        if len(args) == 1 and isinstance(args[0], str):
            return args[0]
    raise TypeError(f'Id[...] takes a table name, like Id["messages"]; got {table!r}')


def _describe(tp: object) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__qualname__
    return repr(tp).replace("typing.", "")


def _unsupported(tp: object, where: str, why: str = "") -> TypeError:
    location = f"{where}: " if where else ""
    reason = f" ({why})" if why else ""
    return TypeError(
        f"{location}the annotation {_describe(tp)} is not supported{reason}; "
        f"supported annotations are {SUPPORTED}"
    )


_SIMPLE: dict[object, Callable[[], Validator]] = {
    str: v.string,
    float: v.float64,
    int: IntValidator,
    bool: v.boolean,
    bytes: v.bytes,
    None: v.null,
    type(None): v.null,
    Int64: v.int64,
    Any: v.any,
    object: v.any,
}


def validator_from_annotation(tp: object, where: str = "") -> Validator:
    """The validator for a type annotation; ``TypeError`` naming ``where`` if unsupported.

    >>> validator_from_annotation(list[str] | None)
    v.union(v.array(v.string()), v.null())
    >>> validator_from_annotation(int)
    int
    """
    try:
        simple = _SIMPLE.get(tp)
    except TypeError:  # unhashable annotation objects
        simple = None
    if simple is not None:
        return simple()
    if isinstance(tp, Validator):
        return tp
    if isinstance(tp, str | typing.ForwardRef):
        raise _unsupported(
            tp, where, "an unresolved string annotation; define the type before the function"
        )
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Annotated:
        for meta in args[1:]:
            if isinstance(meta, _IdTable):
                return v.id(meta.table)
            if isinstance(meta, Validator):
                return meta
        return validator_from_annotation(args[0], where)
    if origin is Union or origin is types.UnionType:
        # `X | Unset` (a patch field that UNSET removes): on the wire a missing field; the
        # field or parameter is optional already (NotRequired, total=False, or a default).
        args = tuple(arg for arg in args if arg is not Unset)
        if len(args) == 1:
            return validator_from_annotation(args[0], where)
        members: list[Validator] = []
        for arg in args:
            member = validator_from_annotation(arg, where)
            # `Literal["a", "b"] | None` is one union of three members, as Convex writes it.
            if isinstance(member, UnionValidator) and not member.is_optional:
                members.extend(member.members)
            else:
                members.append(member)
        # Put null last so `X | None` reads like Convex's v.union(X, v.null()).
        members.sort(key=lambda m: m.kind == "null")
        return v.union(*members)
    if origin is Literal:
        literals = [_literal(arg, tp, where) for arg in args]
        return literals[0] if len(literals) == 1 else v.union(*literals)
    if tp is list or origin is list:
        return v.array(validator_from_annotation(args[0], where) if args else v.any())
    if tp is dict or origin is dict:
        if not args:
            return v.record(v.string(), v.any())
        keys = validator_from_annotation(args[0], where)
        try:
            return v.record(keys, validator_from_annotation(args[1], where))
        except TypeError:
            raise _unsupported(
                tp, where, "dict keys must be str, Id[...] or str literals"
            ) from None
    if typing.is_typeddict(tp):
        return _typed_dict(tp, where)
    if origin is not None and typing.is_typeddict(origin):
        # A generic TypedDict given its parameters: PaginationResult[MessagesDoc].
        params = getattr(origin, "__parameters__", ())
        return _typed_dict(origin, where, dict(zip(params, args, strict=False)))
    if tp is Id:
        raise _unsupported(tp, where, 'Id needs a table name: Id["messages"]')
    supertype = getattr(tp, "__supertype__", None)  # typing.NewType
    if supertype is not None:
        return validator_from_annotation(supertype, where)
    raise _unsupported(tp, where)


def _literal(arg: object, tp: object, where: str) -> Validator:
    if arg is None:
        return v.null()
    if isinstance(arg, str | bool | int | float):
        return v.literal(arg)
    raise _unsupported(tp, where, f"literal {arg!r} is not a str, number or bool")


def _typed_dict(tp: Any, where: str, bindings: dict[Any, Any] | None = None) -> ObjectValidator:
    try:
        hints = typing.get_type_hints(tp, include_extras=True)
    except Exception as e:
        raise _unsupported(tp, where, f"its annotations cannot be resolved: {e}") from None
    if bindings:
        hints = {name: _substitute(hint, bindings) for name, hint in hints.items()}
    optional_keys: frozenset[str] = getattr(tp, "__optional_keys__", frozenset())
    fields: dict[str, Validator] = {}
    for name, hint in hints.items():
        # With `from __future__ import annotations`, Python 3.11 cannot see NotRequired/Required
        # when it builds __optional_keys__, so the wrappers (kept by include_extras) decide.
        optional = name in optional_keys
        while typing.get_origin(hint) in (NotRequired, Required):
            optional = typing.get_origin(hint) is NotRequired
            hint = typing.get_args(hint)[0]
        field = validator_from_annotation(hint, f"{where} field {name!r}".strip())
        fields[name] = field.as_optional() if optional else field
    return v.object(fields)


def _substitute(hint: Any, bindings: dict[Any, Any]) -> Any:
    """``hint`` with the type variables of a generic TypedDict replaced by their arguments."""
    if isinstance(hint, typing.TypeVar):
        return bindings.get(hint, hint)
    params = getattr(hint, "__parameters__", ())
    if params:
        return hint[tuple(bindings.get(p, p) for p in params)]
    return hint


def _hints(fn: Callable[..., Any], where: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception as e:
        location = f"{where}: " if where else ""
        raise TypeError(
            f"{location}cannot resolve the type annotations of {fn.__qualname__}: {e}; "
            "import every type the annotations name at module level"
        ) from None


def args_validator_from_signature(fn: Callable[..., Any], where: str = "") -> ObjectValidator:
    """The arguments validator of a handler ``async def f(ctx, a: str, b: int = 0)``.

    The first parameter (``ctx``) is skipped; a parameter with a default is optional; one
    without an annotation accepts ``v.any()``::

        >>> async def f(ctx, a: str, b: int = 0, c=None): ...
        >>> args_validator_from_signature(f)
        v.object({"a": v.string(), "b": v.optional(int), "c": v.optional(v.any())})
    """
    location = where or getattr(fn, "__qualname__", repr(fn))
    params = list(inspect.signature(fn).parameters.values())
    if not params:
        raise TypeError(
            f"{location}: a handler takes ctx as its first parameter, like async def f(ctx, ...)"
        )
    hints = _hints(fn, where)
    fields: dict[str, Validator] = {}
    for param in params[1:]:
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            raise TypeError(
                f"{location}: *{param.name} is not supported; arguments are passed by name, "
                "declare each one as a parameter"
            )
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            raise TypeError(
                f"{location}: **{param.name} is not supported when args are derived from "
                "annotations; declare each argument, or pass args={...} to the decorator"
            )
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise TypeError(
                f"{location}: parameter {param.name!r} is positional-only; arguments are "
                "passed by name"
            )
        hint = hints.get(param.name, inspect.Parameter.empty)
        field = (
            v.any()
            if hint is inspect.Parameter.empty
            else validator_from_annotation(hint, f"{location} parameter {param.name!r}")
        )
        if param.default is not inspect.Parameter.empty:
            field = field.as_optional()
        fields[param.name] = field
    return v.object(fields)


def returns_validator_from_signature(fn: Callable[..., Any], where: str = "") -> Validator | None:
    """The validator of a handler's return annotation (the awaited type), or None if absent.

    >>> async def f(ctx) -> list[str]: ...
    >>> returns_validator_from_signature(f)
    v.array(v.string())
    """
    hints = _hints(fn, where)
    if "return" not in hints:
        return None
    location = where or getattr(fn, "__qualname__", repr(fn))
    return validator_from_annotation(hints["return"], f"{location} return annotation")
